"""``agent local`` and ``execute``: run scheduled flow runs."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from . import echo_json, main, parse_parameters

if TYPE_CHECKING:
    from ..agents import Agent


@main.group()
def agent() -> None:
    """Agents claim scheduled flow runs whose labels they have, and run them."""


_AGENT_OPTIONS = (
    click.option("-l", "--label", "labels", multiple=True, help="Agent label (repeatable)."),
    click.option("--no-hostname-label", is_flag=True, help="Do not add this host's name."),
    click.option("--once", is_flag=True, help="Run what is scheduled now, then exit."),
    click.option("--poll-interval", type=float, default=2.0, show_default=True),
    click.option("--concurrency", type=int, default=1, show_default=True, help="Runs at a time."),
    click.option("--name", help="Agent name recorded on the runs it claims."),
)


def _agent_options(command: Callable[..., None]) -> Callable[..., None]:
    """The options every agent command has."""
    for option in reversed(_AGENT_OPTIONS):
        command = option(command)
    return command


def _agent_kwargs(
    labels: tuple[str, ...], no_hostname_label: bool, concurrency: int, name: str | None
) -> dict[str, Any]:
    return {
        "labels": list(labels),
        "hostname_label": not no_hostname_label,
        "concurrency": concurrency,
        "name": name,
    }


@agent.command("local")
@_agent_options
def agent_local(once: bool, poll_interval: float, **options: Any) -> None:
    """Run flows as local processes (each in a fresh `prefect-storage execute`)."""
    from ..agents import LocalAgent

    _serve(LocalAgent(**_agent_kwargs(**options)), once, poll_interval)


@agent.command("docker")
@_agent_options
@click.option("--base-url", help="Docker engine URL (default: DOCKER_HOST).")
@click.option("--network", default="host", show_default=True, help="Container network mode.")
def agent_docker(
    once: bool, poll_interval: float, base_url: str | None, network: str, **options: Any
) -> None:
    """Run flows in containers: Docker storage images, or DockerRun(image=...)."""
    from ..agents import DockerAgent

    _serve(
        DockerAgent(**_agent_kwargs(**options), base_url=base_url, network=network),
        once,
        poll_interval,
    )


def _serve(chosen: Agent, once: bool, poll_interval: float) -> None:
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if once:
        done = chosen.run_once()
        click.echo(f"Agent {chosen.name} executed {len(done)} flow run(s).")
        return
    try:
        chosen.start(poll_interval=poll_interval)
    except KeyboardInterrupt:
        click.echo("Agent stopped.")


@main.command()
@click.argument("run_id", required=False)
@click.option("--flow", "flow_name", help="Without RUN_ID: the flow to load from --storage.")
@click.option("--storage", "storage_json", help="Serialized storage (JSON); default: stdin.")
@click.option("--sha256", "expected_sha256", help="Refuse the flow unless it has this digest.")
@click.option("-p", "--param", "params", multiple=True, help="Parameter KEY=VALUE.")
@click.option("--json", "as_json", is_flag=True, help="Print the final state as JSON.")
def execute(
    run_id: str | None,
    flow_name: str | None,
    storage_json: str | None,
    expected_sha256: str | None,
    params: tuple[str, ...],
    as_json: bool,
) -> None:
    """Execute flow run RUN_ID (what an agent starts), or load --flow from a storage payload."""
    if run_id is not None:
        from ..agents import execute_flow_run

        sys.exit(0 if execute_flow_run(run_id) else 1)
    if flow_name is None:
        raise click.UsageError("Give a RUN_ID, or --flow with a serialized storage.")

    from ..engine.context import context
    from ..engine.runner import FlowRunner
    from ..secrets import resolve_secrets
    from ..storage import Storage

    storage = Storage.deserialize(json.loads(storage_json or sys.stdin.read()))
    with context(secrets=resolve_secrets(storage.secrets)):
        flow = storage.get_flow(flow_name, expected_sha256=expected_sha256)
        state = FlowRunner(flow).run(parameters=parse_parameters(params))
    tasks = {task.name: task_state for task, task_state in state.result.items()}
    if as_json:
        echo_json(
            {
                "flow": flow.name,
                "state": type(state).__name__,
                "message": state.message,
                "tasks": {
                    name: {"state": type(s).__name__, "result": _jsonable(s.result)}
                    for name, s in tasks.items()
                },
            }
        )
    else:
        click.echo(f"Flow {flow.name!r}: {type(state).__name__} ({state.message})")
        for name, task_state in tasks.items():
            click.echo(f"  {name}: {type(task_state).__name__} -> {task_state.result!r}")
    sys.exit(0 if state.is_successful() else 1)


def _jsonable(value: object) -> object:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value
