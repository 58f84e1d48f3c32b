"""``registry upgrade|version``: the flow registry's schema revision, and migrating it now.

Opening a registry migrates it anyway; ``upgrade`` lets an operator do it at a chosen moment
(e.g. before restarting agents on many machines) and see what changed.
"""

from __future__ import annotations

import click

from .app import echo_json, main


@main.group()
def registry() -> None:
    """The flow registry's schema (PREFECT_STORAGE_REGISTRY_URL, default <home>/registry.db)."""


@registry.command("upgrade")
@click.option("--json", "as_json", is_flag=True)
def registry_upgrade(as_json: bool) -> None:
    """Migrate the registry's schema to this prefect-storage's revision (idempotent)."""
    from ..registry import FlowRegistry

    flow_registry = FlowRegistry()
    before, after = flow_registry.upgrade_schema()
    if as_json:
        echo_json(
            {
                "registry": flow_registry.display_url,
                "from": before,
                "to": after,
                "upgraded": before != after,
            }
        )
    elif before == after:
        click.echo(f"The flow registry at {flow_registry.display_url} is at schema {after}.")
    else:
        click.echo(
            f"Upgraded the flow registry at {flow_registry.display_url}: schema "
            f"{before or 'none (empty)'} -> {after}."
        )


@registry.command("version")
@click.option("--json", "as_json", is_flag=True)
def registry_version(as_json: bool) -> None:
    """Show the registry's schema revision and this prefect-storage's (changes nothing)."""
    from .._version import __version__
    from ..registry import FlowRegistry

    flow_registry = FlowRegistry()
    current, head = flow_registry.schema_version()
    if as_json:
        echo_json(
            {
                "registry": flow_registry.display_url,
                "schema": current,
                "code_schema": head,
                "prefect_storage": __version__,
            }
        )
        return
    if current is None:
        state = "none (empty; created on first use)"
    elif current == head:
        state = f"{current} (up to date)"
    elif current.isdigit() and current < head:
        state = f"{current} (older: migrated on first use or by `prefect-storage registry upgrade`)"
    else:
        state = f"{current} (newer than this prefect-storage: upgrade prefect-storage)"
    click.echo(f"registry:      {flow_registry.display_url}")
    click.echo(f"schema:        {state}")
    click.echo(f"code's schema: {head} (prefect-storage {__version__})")
