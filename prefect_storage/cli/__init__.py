"""The ``prefect-storage`` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from typing import Any

import click

from ..exceptions import FlowStorageError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="prefect-storage")
def main() -> None:
    """Store flow definitions durably and load exactly those flows back at run time."""


def _parse_parameters(pairs: tuple[str, ...]) -> dict[str, Any]:
    parameters: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="-p")
        try:
            parameters[key] = json.loads(raw)
        except ValueError:
            parameters[key] = raw
    return parameters


@main.command()
@click.option("--storage", "storage_json", help="Serialized storage (JSON); default: stdin.")
@click.option("--flow", "flow_name", required=True, help="Name of the flow to load and run.")
@click.option("--sha256", "expected_sha256", help="Refuse the flow unless it has this digest.")
@click.option("-p", "--param", "params", multiple=True, help="Flow parameter KEY=VALUE.")
@click.option("--json", "as_json", is_flag=True, help="Print the final state as JSON.")
def execute(
    storage_json: str | None,
    flow_name: str,
    expected_sha256: str | None,
    params: tuple[str, ...],
    as_json: bool,
) -> None:
    """Load a flow from its serialized storage and run it (what an agent's child does)."""
    from .. import context
    from ..engine.runner import FlowRunner
    from ..secrets import resolve_secrets
    from ..storage import Storage

    try:
        storage = Storage.deserialize(json.loads(storage_json or sys.stdin.read()))
        secrets = resolve_secrets(storage.secrets)
        with context(secrets=secrets):
            flow = storage.get_flow(flow_name, expected_sha256=expected_sha256)
            state = FlowRunner(flow).run(parameters=_parse_parameters(params))
    except (FlowStorageError, ValueError, TypeError) as exc:
        raise click.ClickException(str(exc)) from None
    tasks = {task.name: task_state for task, task_state in state.result.items()}
    if as_json:
        summary = {
            "flow": flow.name,
            "state": type(state).__name__,
            "message": state.message,
            "tasks": {
                name: {"state": type(s).__name__, "result": _jsonable(s.result)}
                for name, s in tasks.items()
            },
        }
        click.echo(json.dumps(summary))
    else:
        click.echo(f"Flow {flow.name!r}: {type(state).__name__} ({state.message})")
        for name, task_state in tasks.items():
            click.echo(f"  {name}: {type(task_state).__name__} -> {task_state.result!r}")
    sys.exit(0 if state.is_successful() else 1)


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value


@main.command()
@click.option(
    "--home",
    type=click.Path(file_okay=False),
    help="Home folder to use (default: a fresh temporary one).",
)
def demo(home: str | None) -> None:
    """Store an example flow on the embedded default and run it from a fresh process."""
    from rich.console import Console

    console = Console(highlight=False, soft_wrap=True)
    home = str(home or tempfile.mkdtemp(prefix="prefect-storage-demo-"))
    os.environ["PREFECT_STORAGE_HOME"] = home
    from ..demo_flow import flow
    from ..results import LocalResult
    from ..storage import Local

    console.print(f"[bold]prefect-storage demo[/] (home: {home})")
    result = LocalResult()
    storage = Local(result=result)
    flow.storage = storage
    flow.result = result  # the pairing rule registration applies
    location = storage.add_flow(flow)
    storage.build()
    digest = storage.digests[flow.name]
    assert digest is not None  # a pickle was just written
    console.print(f"1. stored flow {flow.name!r} with Local storage at {location}")
    console.print(f"   {os.path.getsize(location)} bytes, sha256 {digest}")
    console.print(f"   labels: {storage.labels}; paired result: {result.dir}")

    payload = json.dumps(storage.serialize())
    console.print("2. loading it back in a fresh process from the serialized storage:")
    console.print(f"   {payload}")
    child = subprocess.run(
        [
            sys.executable,
            "-m",
            "prefect_storage.cli",
            "execute",
            "--flow",
            flow.name,
            "--sha256",
            digest,
            "-p",
            "count=5",
            "--json",
        ],
        input=payload,
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        check=False,
    )
    if child.returncode != 0:
        console.print(child.stderr)
        raise click.ClickException("the flow run failed in the fresh process")
    summary = json.loads(child.stdout.strip().splitlines()[-1])
    console.print(f"3. ran it with count=5: [bold]{summary['state']}[/] ({summary['message']})")
    for name, task in summary["tasks"].items():
        console.print(f"   {name}: {task['state']} -> {task['result']!r}")


@main.group()
def secret() -> None:
    """Manage the local secrets file (<home>/secrets.toml, mode 0600)."""


@secret.command("set")
@click.argument("name")
@click.argument("value", required=False)
def secret_set(name: str, value: str | None) -> None:
    """Store secret NAME. Without VALUE it is read from stdin or a hidden prompt."""
    from ..secrets import set_secret

    if value is None:
        if sys.stdin.isatty():
            value = click.prompt(f"Value for {name}", hide_input=True)
        else:
            value = sys.stdin.read().rstrip("\n")
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

    try:
        delete_secret(name)
    except FlowStorageError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Secret {name!r} deleted.")
