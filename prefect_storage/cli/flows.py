"""``flows ls|show``, ``run`` and ``runs ls|logs``: what is registered and what ran."""

from __future__ import annotations

import re
import sys
import time
from dataclasses import asdict
from typing import Any

import click

from .app import echo_json, main, parse_parameters

_SENSITIVE_KEY = re.compile(
    r"token|passw|authorization|credential|api[-_]?key|secret|cookie|session", re.I
)
_NAME_ONLY_KEY = re.compile(r"(_secret|_secret_name|^secrets)$")
_SENSITIVE_HEADER = re.compile(r"auth|token|key|secret|session|cookie|passw|credential|sig", re.I)
_MASK = "********"


def obfuscate(value: Any, key: str = "", parent: str = "") -> Any:
    """Mask literal credentials for display: values under sensitive keys, headers named like
    credentials, every cookie, the password of an ``auth`` pair, and ``user:PASS@`` or query
    tokens inside URLs. ``${NAME}`` templates and secret *names* stay visible."""
    from ..secrets import CREDENTIAL_PARAMETER, redact_urls

    if isinstance(value, dict):
        return {k: obfuscate(v, str(k), key) for k, v in value.items()}
    lowered = key.lower()
    if lowered == "auth" and isinstance(value, (list, tuple)) and len(value) == 2:
        return [value[0], _masked(value[1])]
    if isinstance(value, (list, tuple)):
        if lowered == "params" and all(isinstance(p, (list, tuple)) and len(p) == 2 for p in value):
            return [[name, obfuscate(v, str(name), key)] for name, v in value]
        return [obfuscate(v, key, parent) for v in value]
    if value is None or isinstance(value, bool):
        return value
    sensitive = (
        lowered in ("auth", "cookies")
        or parent.lower() == "cookies"
        or (parent.lower() == "headers" and _SENSITIVE_HEADER.search(key))
        or (parent.lower() == "params" and CREDENTIAL_PARAMETER.fullmatch(key))
        or (_SENSITIVE_KEY.search(key) and not _NAME_ONLY_KEY.search(key))
    )
    if sensitive:
        return _masked(value)
    return redact_urls(value, _MASK) if isinstance(value, str) else value


def _masked(value: Any) -> Any:
    return value if isinstance(value, str) and "${" in value else _MASK


@main.group()
def flows() -> None:
    """Registered flows."""


@flows.command("ls")
@click.option("--all-versions", is_flag=True, help="List every version, not only the latest.")
@click.option("--json", "as_json", is_flag=True)
def flows_ls(all_versions: bool, as_json: bool) -> None:
    """List registered flows."""
    from ..registry import FlowRegistry

    records = FlowRegistry().list_flows(all_versions=all_versions)
    if as_json:
        echo_json([_flow_summary(r) for r in records])
        return
    for record in records:
        click.echo(
            f"{record.name}  v{record.version}  {record.storage.get('type')}  "
            f"labels={record.labels}  sha256={(record.sha256 or '-')[:12]}"
        )


@flows.command("show")
@click.argument("name")
@click.option("--version", type=int, help="A version (default: the latest).")
@click.option("--json", "as_json", is_flag=True)
def flows_show(name: str, version: int | None, as_json: bool) -> None:
    """Show a registered flow: storage (secret values masked), labels, digest."""
    from ..registry import FlowRegistry

    record = FlowRegistry().get_flow(name, version)
    details = {**_flow_summary(record), "storage": obfuscate(record.storage)}
    details["run_config"] = obfuscate(record.run_config)
    details["parameters"] = record.parameters
    if as_json:
        echo_json(details)
        return
    for key, value in details.items():
        click.echo(f"{key}: {value}")


def _flow_summary(record: Any) -> dict[str, Any]:
    return {
        "id": record.id,
        "name": record.name,
        "version": record.version,
        "project": record.project,
        "storage_type": record.storage.get("type"),
        "location": record.storage.get("flows", {}).get(record.name),
        "labels": record.labels,
        "sha256": record.sha256,
        "created_at": record.created_at,
    }


@main.command()
@click.argument("name")
@click.option("-p", "--param", "params", multiple=True, help="Parameter KEY=VALUE (repeatable).")
@click.option("--version", type=int, help="Flow version (default: the latest).")
@click.option("--wait", is_flag=True, help="Stream the run's logs; exit non-zero if it fails.")
@click.option("--timeout", type=float, help="With --wait: give up after this many seconds.")
@click.option("--json", "as_json", is_flag=True)
def run(
    name: str,
    params: tuple[str, ...],
    version: int | None,
    wait: bool,
    timeout: float | None,
    as_json: bool,
) -> None:
    """Schedule a run of flow NAME for an agent to pick up.

    \b
    With --wait (and no --timeout), while the run is Scheduled it waits for an agent to
    come, saying once (on stderr) if no live agent has the run's labels. Once an agent has
    claimed it, the run's lease guarantees an end: if the agent and the run's process die,
    the lease expires and the run ends Failed ("agent lost: ..."), and --wait exits 1.
    """
    from ..registry import FlowRegistry, RunState

    registry = FlowRegistry()
    flow_run = registry.create_flow_run(name, parameters=parse_parameters(params), version=version)
    if not wait:
        if as_json:
            echo_json(asdict(flow_run))
        else:
            click.echo(f"Scheduled flow run {flow_run.id} of {name!r} v{flow_run.flow_version}")
        return
    click.echo(f"Scheduled flow run {flow_run.id}; waiting for an agent...", err=as_json)
    deadline = None if timeout is None else time.monotonic() + timeout
    last_log = 0
    hinted = timeout is not None  # with a timeout, the timeout says it all
    next_reap = time.monotonic()

    def print_logs() -> None:
        nonlocal last_log
        for entry in registry.get_logs(flow_run.id, after_id=last_log):
            last_log = entry["id"]
            click.echo(
                f"{entry['timestamp']:%H:%M:%S} {entry['level']:<7} {entry['message']}", err=as_json
            )

    while True:
        print_logs()
        if time.monotonic() >= next_reap:
            registry.expire_leases()  # a run whose agent died ends here, not never
            next_reap = time.monotonic() + 1.0
        flow_run = registry.get_flow_run(flow_run.id)
        if flow_run.state in RunState.FINAL:
            break
        if not hinted and flow_run.state == RunState.SCHEDULED:
            hinted = True
            _hint_if_no_agent(registry, flow_run.labels)
        if deadline is not None and time.monotonic() > deadline:
            raise click.ClickException(f"Flow run {flow_run.id} is still {flow_run.state}")
        time.sleep(0.3)
    print_logs()  # the lines written with the final state
    if as_json:
        echo_json(asdict(flow_run))
    else:
        click.echo(f"Flow run {flow_run.id}: {flow_run.state} ({flow_run.message})")
    sys.exit(0 if flow_run.state == RunState.SUCCESS else 1)


def _hint_if_no_agent(registry: Any, labels: list[str]) -> None:
    """Say (on stderr) how to start an agent when no live one could take the run."""
    from ..registry import LIVE_AGENT_LEASES, lease_seconds_from_env

    window = LIVE_AGENT_LEASES * lease_seconds_from_env()
    if any(set(labels) <= set(a.labels) for a in registry.list_agents(seen_within=window)):
        return
    options = " ".join(f"-l {label}" for label in sorted(labels))
    click.echo(
        f"No agent seen in the last {window:g} s has the run's labels {sorted(labels)}; "
        f"start one with: prefect-storage agent local {options}".rstrip()
        + " (still waiting; Ctrl-C stops waiting, the run stays scheduled)",
        err=True,
    )


@main.group()
def runs() -> None:
    """Flow runs."""


@runs.command("ls")
@click.option("--flow", "flow_name", help="Only runs of this flow.")
@click.option("--json", "as_json", is_flag=True)
def runs_ls(flow_name: str | None, as_json: bool) -> None:
    """List flow runs, oldest first (ending first those whose agent was lost)."""
    from ..registry import FlowRegistry

    registry = FlowRegistry()
    registry.expire_leases()
    records = registry.list_flow_runs(flow_name)
    if as_json:
        echo_json([asdict(r) for r in records])
        return
    for r in records:
        click.echo(f"{r.id}  {r.flow_name} v{r.flow_version}  {r.state}  {r.message or ''}")


@runs.command("cancel")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True)
def runs_cancel(run_id: str, as_json: bool) -> None:
    """Cancel flow run RUN_ID.

    A Scheduled run is Cancelled at once. A Claimed or Running one becomes Cancelling: its
    agent (at its next heartbeat, a third of its lease) stops the run's process (SIGTERM
    to its process group, SIGKILL after the grace period; the container for a Docker
    agent) and records Cancelled. The states and logs the run recorded so far are kept. A
    run that already ended is an error.
    """
    from ..registry import FlowRegistry, RunState

    registry = FlowRegistry()
    registry.expire_leases()
    flow_run = registry.cancel_flow_run(run_id)
    if as_json:
        echo_json(asdict(flow_run))
    elif flow_run.state == RunState.CANCELLED:
        click.echo(f"Flow run {flow_run.id}: Cancelled")
    else:
        click.echo(
            f"Flow run {flow_run.id}: {flow_run.state}; agent {flow_run.agent} is stopping it"
        )


@runs.command("logs")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True)
def runs_logs(run_id: str, as_json: bool) -> None:
    """Print the logs of flow run RUN_ID."""
    from ..registry import FlowRegistry

    registry = FlowRegistry()
    registry.get_flow_run(run_id)  # a clear error for an unknown id
    entries = registry.get_logs(run_id)
    if as_json:
        echo_json(entries)
        return
    for entry in entries:
        stamp = f"{entry['timestamp']:%H:%M:%S}"
        click.echo(f"{stamp} {entry['level']:<7} {entry['logger']}: {entry['message']}")
