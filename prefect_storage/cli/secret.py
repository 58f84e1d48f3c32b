"""``prefect-storage secret set|ls|rm``: the local secrets file (``<home>/secrets.toml``)."""

from __future__ import annotations

import json
import sys

import click

from .app import main


@main.group()
def secret() -> None:
    """Manage the local secrets file (<home>/secrets.toml, mode 0600)."""


@secret.command("set")
@click.argument("name")
@click.argument("value", required=False)
@click.option("--allow-empty", is_flag=True, help="Store an empty value instead of refusing it.")
def secret_set(name: str, value: str | None, allow_empty: bool) -> None:
    """Store secret NAME. Without VALUE it is read from stdin or a hidden prompt."""
    from ..secrets import set_secret

    if value is None:
        if sys.stdin.isatty():
            value = click.prompt(f"Value for {name}", hide_input=True)
        else:
            value = sys.stdin.read().rstrip("\n")
    if not value and not allow_empty:
        # An empty value is nearly always a mistake: an unset shell variable, empty stdin.
        raise click.ClickException(
            f"The value for secret {name!r} is empty; give a value (argument or stdin), or "
            "pass --allow-empty to store an empty secret."
        )
    set_secret(name, value)
    click.echo(f"Secret {name!r} saved.")


@secret.command("ls")
@click.option("--json", "as_json", is_flag=True, help="Print the names as a JSON list.")
def secret_ls(as_json: bool) -> None:
    """List the names of stored secrets (never their values)."""
    from ..secrets import list_secret_names

    names = list_secret_names()
    click.echo(json.dumps(names) if as_json else "\n".join(names))


@secret.command("rm")
@click.argument("name")
def secret_rm(name: str) -> None:
    """Delete secret NAME from the secrets file."""
    from ..secrets import delete_secret

    delete_secret(name)
    click.echo(f"Secret {name!r} deleted.")
