"""``prefect-storage demo``: the main job end to end on the embedded default."""

from __future__ import annotations

import os
import tempfile

import click

from .app import main


@main.command()
@click.option(
    "--home",
    type=click.Path(file_okay=False),
    help="Home folder to use (default: a fresh temporary one).",
)
def demo(home: str | None) -> None:
    """Register an example flow, run it through a local agent, and show what happened."""
    from rich.console import Console

    console = Console(highlight=False, soft_wrap=True)
    home = str(home or tempfile.mkdtemp(prefix="prefect-storage-demo-"))
    os.environ["PREFECT_STORAGE_HOME"] = home

    from ..agents import LocalAgent
    from ..demo_flow import flow
    from ..registry import FlowRegistry
    from ..storage import Local

    registry = FlowRegistry()
    console.print(f"[bold]prefect-storage demo[/]  home: {home}  registry: {registry.display_url}")

    flow.storage = Local()
    flow_id = flow.register(registry=registry)
    record = registry.get_flow(flow.name)
    console.print(f"1. registered flow {flow.name!r} v{record.version} (id {flow_id})")
    console.print(f"   storage: Local, pickle at {record.storage['flows'][flow.name]}")
    console.print(f"   sha256: {record.sha256}")
    console.print(f"   labels: {record.labels}; result: {flow.result.dir}")  # type: ignore[union-attr]

    flow_run = registry.create_flow_run(flow.name, parameters={"count": 5})
    console.print(f"2. scheduled flow run {flow_run.id} with count=5")

    agent = LocalAgent(registry=registry)
    agent.run_once()
    flow_run = registry.get_flow_run(flow_run.id)
    console.print(
        f"3. agent {agent.name} (labels {agent.labels}) ran it in a fresh process: "
        f"[bold]{flow_run.state}[/] ({flow_run.message})"
    )
    for slug, task in (flow_run.task_states or {}).items():
        console.print(f"   {slug}: {task['state']} -> {task['result']}")
    console.print("4. its logs:")
    for entry in registry.get_logs(flow_run.id):
        console.print(f"   {entry['level']:<7} {entry['message']}")
    if flow_run.state != "Success":
        raise click.ClickException("the demo flow run did not succeed")
