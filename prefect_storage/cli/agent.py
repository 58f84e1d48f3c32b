"""``agent local`` and ``execute``: run scheduled flow runs."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from ..exceptions import StorageConfigError
from ..registry import DEFAULT_LEASE_SECONDS, LEASE_SECONDS_ENV
from .app import echo_json, main, parse_parameters

if TYPE_CHECKING:
    from ..agents import Agent


@main.group()
def agent() -> None:
    """Agents claim scheduled flow runs whose labels they have, and run them."""


class _BadAgentOption(click.ClickException):
    """A nonsensical agent option: one ``Error:`` line naming it, usage-error exit code."""

    exit_code = 2


def _at_least(minimum: float, open_interval: bool, unit: str) -> Callable[..., Any]:
    def check(_ctx: click.Context, param: click.Parameter, value: float | None) -> Any:
        if value is None:
            return value
        if value < minimum or (open_interval and value == minimum) or value != value:
            bound = f"more than {minimum:g}" if open_interval else f"at least {minimum:g}"
            raise _BadAgentOption(
                f"Invalid value for '{param.opts[0]}': {value:g} is not a valid {unit}; "
                f"give {bound}."
            )
        return value

    return check


_AGENT_OPTIONS = (
    click.option("-l", "--label", "labels", multiple=True, help="Agent label (repeatable)."),
    click.option("--no-hostname-label", is_flag=True, help="Do not add this host's name."),
    click.option("--once", is_flag=True, help="Run what is scheduled now, then exit."),
    click.option(
        "--poll-interval",
        type=float,
        default=2.0,
        show_default=True,
        callback=_at_least(0, True, "number of seconds"),
        help="Seconds between polls for scheduled runs.",
    ),
    click.option(
        "--concurrency",
        type=int,
        default=1,
        show_default=True,
        callback=_at_least(1, False, "number of runs"),
        help="Runs at a time.",
    ),
    click.option("--name", help="Agent name recorded on the runs it claims."),
    click.option(
        "--lease-seconds",
        type=float,
        callback=_at_least(0, True, "number of seconds"),
        help=f"Lease of a claimed run, renewed every third of it [default: "
        f"${LEASE_SECONDS_ENV} or {DEFAULT_LEASE_SECONDS:g}].",
    ),
    click.option(
        "--grace-seconds",
        type=float,
        default=10.0,
        show_default=True,
        callback=_at_least(0, False, "number of seconds"),
        help="A stopped run's process gets this long between SIGTERM and SIGKILL.",
    ),
)

_LEASE_POLICY = """

Leases: a claimed run has a lease the agent renews every third of --lease-seconds (the
run's own process renews it too). A run whose lease expires (its agent and process were
killed) is ended by the next agent poll, `run --wait` or `runs ls`: Failed with "agent
lost: <agent> stopped renewing its lease ...", or Cancelled if a cancel was pending.

Stopping: SIGINT (Ctrl-C) and SIGTERM stop the agent cleanly: it claims nothing more,
sends SIGTERM to each run's process group (SIGKILL after --grace-seconds, or at once on a
second signal), records those runs Failed ("agent stopped (SIGTERM) while the run was
Running"), and exits 0. `prefect-storage runs cancel RUN_ID` stops one run the same way
(state Cancelled). If the agent itself is SIGKILLed, its runs' processes (each in its own
session) finish their runs normally.

Registry outages: the agent retries with backoff (up to 30 s apart), logs one warning
when the outage starts and one line when it ends, and carries on.
"""


def _agent_options(command: Callable[..., None]) -> Callable[..., None]:
    """The options every agent command has, and the policy they share in ``--help``."""
    command.__doc__ = (command.__doc__ or "") + _LEASE_POLICY
    for option in reversed(_AGENT_OPTIONS):
        command = option(command)
    return command


def _agent_kwargs(
    labels: tuple[str, ...],
    no_hostname_label: bool,
    concurrency: int,
    name: str | None,
    lease_seconds: float | None,
    grace_seconds: float,
) -> dict[str, Any]:
    return {
        "labels": list(labels),
        "hostname_label": not no_hostname_label,
        "concurrency": concurrency,
        "name": name,
        "lease_seconds": lease_seconds,
        "grace_seconds": grace_seconds,
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
    else:
        chosen.start(poll_interval=poll_interval)
    if chosen.stop_reason is not None:
        click.echo(
            f"Agent stopped ({chosen.stop_reason}): {chosen.name}; "
            f"{len(chosen.stopped_runs)} flow run(s) stopped and recorded Failed."
        )
    elif once:
        click.echo(f"Agent {chosen.name} executed {len(done)} flow run(s).")


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
        import os
        import signal

        from ..agents import execute_flow_run

        def stop_now(*_: object) -> None:
            os._exit(128 + signal.SIGTERM)  # as SIGTERM's default, also as a container's PID 1

        signal.signal(signal.SIGTERM, stop_now)
        sys.exit(0 if execute_flow_run(run_id, on_cancel=stop_now) else 1)
    if flow_name is None:
        raise click.UsageError("Give a RUN_ID, or --flow with a serialized storage.")

    from ..agents.execution import run_stored_flow

    flow, state = run_stored_flow(
        _storage_payload(storage_json),
        flow_name,
        parse_parameters(params),
        expected_sha256=expected_sha256,
    )
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


def _storage_payload(storage_json: str | None) -> Any:
    """``--storage``, else stdin, as JSON (what ``Storage.serialize()`` returned)."""
    source = "--storage" if storage_json else "stdin"
    try:
        return json.loads(storage_json or sys.stdin.read())
    except ValueError as exc:
        raise StorageConfigError(
            f"The serialized storage ({source}) is not JSON: {exc}; give the JSON that "
            "Storage.serialize() returns."
        ) from None


def _jsonable(value: object) -> object:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value
