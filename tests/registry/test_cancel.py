"""``runs cancel``: a Scheduled run is Cancelled at once; a Running one is stopped by its agent
(the run's process group is gone) and ends Cancelled, with its logs so far kept."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from prefect_storage.engine.flow import Flow
from prefect_storage.registry import FlowRegistry, RunState
from tests.registry.agent_rigs import (
    LABEL,
    BackgroundAgent,
    kill_group,
    register_flows,
    start_agent,
    start_sleepy,
)
from tests.registry.conftest import CLI, group_alive, pid_alive, stop_process, wait_until
from tests.registry.test_cli import one_line_error


@pytest.fixture
def agent(
    cli: CLI, registry: FlowRegistry, load_flow: Callable[[str, str], Flow], tmp_path: Path
) -> Iterator[BackgroundAgent]:
    register_flows(load_flow, registry, tmp_path)
    background = start_agent(cli, tmp_path, "agent-cancel")
    yield background
    stop_process(background.process)


def test_cancel_a_running_run_stops_its_process_and_ends_cancelled(
    agent: BackgroundAgent, registry: FlowRegistry, cli: CLI, tmp_path: Path
) -> None:
    sleeping = start_sleepy(registry, tmp_path)
    try:
        done = cli("runs", "cancel", sleeping.run.id)
        assert done.returncode == 0, done.stderr
        assert f"Flow run {sleeping.run.id}: Cancelling; agent agent-cancel" in done.stdout

        wait_until(
            lambda: registry.get_flow_run(sleeping.run.id).state == RunState.CANCELLED,
            "the agent to stop the cancelled run",
        )
        wait_until(lambda: not pid_alive(sleeping.pid), "the run's process to be gone")
        wait_until(lambda: not group_alive(sleeping.pid), "the run's process group to be gone")
    finally:
        kill_group(sleeping.pid)
    final = registry.get_flow_run(sleeping.run.id)
    assert final.message is not None and final.message.startswith("Cancelled")
    assert final.finished_at is not None
    messages = [e["message"] for e in registry.get_logs(final.id)]
    assert any("sleeping in process" in m for m in messages)  # the logs so far are kept

    # The agent carries on: it runs the next run.
    quick = registry.create_flow_run("quick")
    wait_until(
        lambda: registry.get_flow_run(quick.id).state == RunState.SUCCESS, "the next run to end"
    )
    assert agent.process.poll() is None

    again = one_line_error(cli("runs", "cancel", sleeping.run.id))
    assert "already Cancelled" in again


def test_cancel_a_scheduled_run_ends_it_at_once(
    registry: FlowRegistry, load_flow: Callable[[str, str], Flow], cli: CLI, tmp_path: Path
) -> None:
    register_flows(load_flow, registry, tmp_path)
    run = registry.create_flow_run("quick")
    done = cli("runs", "cancel", run.id, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["state"] == RunState.CANCELLED
    assert registry.get_flow_run(run.id).state == RunState.CANCELLED

    once = cli("agent", "local", "--once", "--no-hostname-label", "-l", LABEL)
    assert once.returncode == 0, once.stderr
    assert "executed 0 flow run(s)" in once.stdout
    assert registry.get_flow_run(run.id).state == RunState.CANCELLED


def test_cancel_of_a_finished_or_unknown_run_is_a_one_line_error(
    registry: FlowRegistry, load_flow: Callable[[str, str], Flow], cli: CLI, tmp_path: Path
) -> None:
    register_flows(load_flow, registry, tmp_path)
    run = registry.create_flow_run("quick")
    registry.set_flow_run_state(run.id, RunState.SUCCESS)
    assert "already Success" in one_line_error(cli("runs", "cancel", run.id))
    assert registry.get_flow_run(run.id).state == RunState.SUCCESS
    assert "No flow run" in one_line_error(cli("runs", "cancel", "no-such-run"))
