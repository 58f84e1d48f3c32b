"""Leases: a run whose agent (and process) died does not stay Claimed or Running forever. It
is ended ``Failed`` ("agent lost") by the next reaper; a stopped agent ends its runs cleanly."""

from __future__ import annotations

import json
import os
import signal
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from prefect_storage.engine.flow import Flow
from prefect_storage.registry import FlowRegistry, RunState
from prefect_storage.run_configs import LocalRun
from tests.registry.agent_rigs import (
    LABEL,
    BackgroundAgent,
    kill_group,
    register_flows,
    start_agent,
    start_sleepy,
)
from tests.registry.conftest import (
    CLI,
    REPO_ROOT,
    STOP_TIMEOUT,
    group_alive,
    pid_alive,
    read_logs,
    stop_process,
    wait_until,
)


@pytest.fixture
def agents() -> Iterator[list[BackgroundAgent]]:
    """Background agents a test starts; any still running is stopped after it."""
    started: list[BackgroundAgent] = []
    yield started
    for agent in started:
        stop_process(agent.process)


def _db_now() -> datetime:
    return datetime.now(timezone.utc)


def lost_logs(registry: FlowRegistry, run_id: str) -> list[str]:
    return [e["message"] for e in registry.get_logs(run_id) if "agent lost" in e["message"]]


# -- the registry's lease API -----------------------------------------------------------------
def test_an_unrenewed_lease_ends_the_run_failed_once(
    registry: FlowRegistry, load_flow: Callable[[str, str], Flow], tmp_path: Path
) -> None:
    register_flows(load_flow, registry, tmp_path)
    run = registry.create_flow_run("quick")
    [claimed] = registry.claim_flow_runs([LABEL], agent="agent-X", lease_seconds=1.5)
    assert claimed.state == RunState.CLAIMED
    assert claimed.lease_expires_at is not None and claimed.claimed_at is not None
    assert claimed.lease_expires_at > claimed.claimed_at
    assert registry.expire_leases() == []  # not expired yet: nothing happens

    # Renewing by another agent's name does not extend agent-X's lease.
    assert registry.renew_leases([run.id], 60, agent="agent-Y") == {run.id: RunState.CLAIMED}
    assert registry.get_flow_run(run.id).lease_expires_at == claimed.lease_expires_at

    reaped = wait_until(registry.expire_leases, "the lease to expire")
    assert reaped == [run.id]
    final = registry.get_flow_run(run.id)
    assert final.state == RunState.FAILED
    assert (final.message or "").startswith("agent lost: agent-X stopped renewing its lease")
    assert "while the run was Claimed" in (final.message or "")
    assert final.finished_at is not None
    assert lost_logs(registry, run.id) == [final.message]
    assert registry.expire_leases() == []  # a final run is never reaped again


def test_a_renewed_lease_keeps_the_run(
    registry: FlowRegistry, load_flow: Callable[[str, str], Flow], tmp_path: Path
) -> None:
    register_flows(load_flow, registry, tmp_path)
    run = registry.create_flow_run("quick")
    [claimed] = registry.claim_flow_runs([LABEL], agent="agent-X", lease_seconds=1)
    assert registry.renew_leases([run.id], 600, agent="agent-X") == {run.id: RunState.CLAIMED}
    renewed = registry.get_flow_run(run.id)
    assert renewed.lease_expires_at is not None and claimed.lease_expires_at is not None
    assert (renewed.lease_expires_at - claimed.lease_expires_at).total_seconds() > 500
    assert registry.expire_leases() == []
    assert registry.get_flow_run(run.id).state == RunState.CLAIMED


def test_two_reapers_at_once_end_each_run_exactly_once(
    registry: FlowRegistry, load_flow: Callable[[str, str], Flow], tmp_path: Path
) -> None:
    register_flows(load_flow, registry, tmp_path)
    runs = [registry.create_flow_run("quick").id for _ in range(5)]
    registry.claim_flow_runs([LABEL], agent="agent-X", lease_seconds=0.5)
    wait_until(
        lambda: all(
            r.lease_expires_at is not None and r.lease_expires_at < _db_now()
            for r in registry.list_flow_runs()
        ),
        "the leases to expire",
    )
    results: list[list[str]] = []
    barrier = threading.Barrier(4)

    def reap() -> None:
        barrier.wait()
        results.append(FlowRegistry(registry.url).expire_leases())

    threads = [threading.Thread(target=reap) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    reaped = Counter(run_id for result in results for run_id in result)
    assert reaped == dict.fromkeys(runs, 1)
    for run_id in runs:
        assert registry.get_flow_run(run_id).state == RunState.FAILED
        assert len(lost_logs(registry, run_id)) == 1


def test_an_expired_lease_on_a_cancelling_run_ends_it_cancelled(
    registry: FlowRegistry, load_flow: Callable[[str, str], Flow], tmp_path: Path
) -> None:
    register_flows(load_flow, registry, tmp_path)
    run = registry.create_flow_run("quick")
    registry.claim_flow_runs([LABEL], agent="agent-X", lease_seconds=1)
    assert registry.cancel_flow_run(run.id).state == RunState.CANCELLING
    assert wait_until(registry.expire_leases, "the lease to expire") == [run.id]
    final = registry.get_flow_run(run.id)
    assert final.state == RunState.CANCELLED
    assert "agent lost: agent-X" in (final.message or "")


# -- agents and run processes killed for real ---------------------------------------------------
def test_agent_and_run_killed_while_running_ends_failed_and_run_wait_exits(
    registry: FlowRegistry,
    load_flow: Callable[[str, str], Flow],
    cli: CLI,
    tmp_path: Path,
    agents: list[BackgroundAgent],
) -> None:
    register_flows(load_flow, registry, tmp_path)
    agents.append(agent := start_agent(cli, tmp_path, "agent-doomed"))
    marker = tmp_path / "marker.json"
    waiter = cli.popen("run", "sleepy", "-p", f"marker={marker}", "--wait", logs=tmp_path / "wait")
    try:
        wait_until(marker.exists, "the run to start")
        [run] = registry.list_flow_runs("sleepy")
        assert registry.get_flow_run(run.id).state == RunState.RUNNING
        pid = int(json.loads(marker.read_text())["pid"])

        agent.kill9()
        kill_group(pid)  # the run's process and its helper: nobody renews the lease now

        # `run --wait` without --timeout does not wait forever: the lease expires.
        assert waiter.wait(timeout=STOP_TIMEOUT) == 1, read_logs(tmp_path / "wait")
    finally:
        stop_process(waiter)
    stdout, _ = read_logs(tmp_path / "wait")
    final = registry.get_flow_run(run.id)
    assert final.state == RunState.FAILED
    assert (final.message or "").startswith("agent lost: agent-doomed stopped renewing its lease")
    assert "while the run was Running" in (final.message or "")
    assert f"Flow run {run.id}: Failed (agent lost: agent-doomed" in stdout
    messages = [e["message"] for e in registry.get_logs(run.id)]
    assert any("sleeping in process" in m for m in messages)  # the run's logs are kept


SITECUSTOMIZE = """
import json, os, time
if os.environ.get("BLOCK_MARKER"):
    # The run's process stops before it can mark the run Running: the run stays Claimed.
    with open(os.environ["BLOCK_MARKER"] + ".tmp", "w") as file:
        json.dump({"pid": os.getpid()}, file)
    os.replace(os.environ["BLOCK_MARKER"] + ".tmp", os.environ["BLOCK_MARKER"])
    time.sleep(300)
"""


def test_agent_killed_while_claimed_is_reaped_by_a_new_agent(
    registry: FlowRegistry,
    load_flow: Callable[[str, str], Flow],
    cli: CLI,
    tmp_path: Path,
    agents: list[BackgroundAgent],
) -> None:
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(SITECUSTOMIZE)
    marker = tmp_path / "blocked.json"
    env = {"PYTHONPATH": f"{blocker}{os.pathsep}{REPO_ROOT}", "BLOCK_MARKER": str(marker)}
    register_flows(load_flow, registry, tmp_path, run_config=LocalRun(env=env))
    run = registry.create_flow_run("quick")
    agents.append(doomed := start_agent(cli, tmp_path, "agent-A"))
    wait_until(marker.exists, "the run's process to start")
    assert registry.get_flow_run(run.id).state == RunState.CLAIMED
    doomed.kill9()
    kill_group(int(json.loads(marker.read_text())["pid"]))

    agents.append(rescuer := start_agent(cli, tmp_path, "agent-B"))
    wait_until(
        lambda: registry.get_flow_run(run.id).state == RunState.FAILED,
        "the new agent to reap the lost run",
    )
    final = registry.get_flow_run(run.id)
    assert (final.message or "").startswith("agent lost: agent-A stopped renewing its lease")
    assert "while the run was Claimed" in (final.message or "")
    assert final.agent == "agent-A"  # reaped, not run again by agent-B
    assert stop_process(rescuer.process) == 0, rescuer.output()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_to_the_agents_group_stops_its_runs_cleanly(
    signum: int,
    registry: FlowRegistry,
    load_flow: Callable[[str, str], Flow],
    cli: CLI,
    tmp_path: Path,
    agents: list[BackgroundAgent],
) -> None:
    """As ``systemctl stop`` (SIGTERM to the service's group) or Ctrl-C (SIGINT) does."""
    register_flows(load_flow, registry, tmp_path)
    agents.append(agent := start_agent(cli, tmp_path, "agent-stopped", new_session=True))
    sleeping = start_sleepy(registry, tmp_path)
    assert [a.name for a in registry.list_agents()] == ["agent-stopped"]

    os.killpg(agent.process.pid, signum)

    assert agent.process.wait(timeout=STOP_TIMEOUT) == 0, agent.output()
    stdout, stderr = agent.output()
    name = signal.Signals(signum).name
    assert f"Agent stopped ({name}): agent-stopped; 1 flow run(s)" in stdout, stdout
    assert "Traceback" not in stderr, stderr
    final = registry.get_flow_run(sleeping.run.id)
    assert final.state == RunState.FAILED
    assert final.message == f"agent stopped ({name}) while the run was Running"
    assert any("sleeping in process" in e["message"] for e in registry.get_logs(final.id))
    # No orphans: the run's process and what it started are gone; so is the agent's row.
    wait_until(lambda: not pid_alive(sleeping.pid), "the run's process to be gone")
    wait_until(lambda: not pid_alive(sleeping.helper), "the run's helper process to be gone")
    assert not group_alive(sleeping.pid)
    assert registry.list_agents() == []


def test_a_run_whose_agent_was_killed_but_whose_process_lives_finishes_normally(
    registry: FlowRegistry,
    load_flow: Callable[[str, str], Flow],
    cli: CLI,
    tmp_path: Path,
    agents: list[BackgroundAgent],
) -> None:
    """The run's process renews its own lease: it is not reaped while it still runs."""
    register_flows(load_flow, registry, tmp_path)
    agents.append(agent := start_agent(cli, tmp_path, "agent-killed"))
    sleeping = start_sleepy(registry, tmp_path)
    agent.kill9()
    try:
        first = registry.get_flow_run(sleeping.run.id).lease_expires_at
        assert first is not None
        # Past the lease the dead agent last gave the run: only the run's process renews it.
        wait_until(
            lambda: _db_now() > first + timedelta(seconds=1), "the agent's last lease to run out"
        )
        assert registry.expire_leases() == []
        alive = registry.get_flow_run(sleeping.run.id)
        assert alive.state == RunState.RUNNING
        assert alive.lease_expires_at is not None and alive.lease_expires_at > first
        assert pid_alive(sleeping.pid)
    finally:
        kill_group(sleeping.pid)
