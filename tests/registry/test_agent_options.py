"""Nonsensical agent options are refused with one line naming the option; ``run --wait`` says
when no agent could take the run, and keeps waiting for one."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from prefect_storage.agents import DockerAgent, LocalAgent
from prefect_storage.agents.base import execute_command
from prefect_storage.config import HOME_ENV, home_dir
from prefect_storage.engine.flow import Flow
from prefect_storage.exceptions import SettingError
from prefect_storage.registry import (
    LEASE_SECONDS_ENV,
    REGISTRY_URL_ENV,
    FlowRegistry,
    RunState,
)
from tests.registry.agent_rigs import LABEL, register_flows, start_agent
from tests.registry.conftest import CLI, STOP_TIMEOUT, read_logs, stop_process, wait_until
from tests.registry.test_cli import one_line_error


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--poll-interval", "-1"),
        ("--poll-interval", "0"),
        ("--concurrency", "0"),
        ("--lease-seconds", "0"),
        ("--lease-seconds", "-3"),
        ("--grace-seconds", "-1"),
    ],
)
@pytest.mark.parametrize("kind", ["local", "docker"])
def test_nonsensical_agent_options_are_one_line_usage_errors(
    kind: str, option: str, value: str, cli: CLI
) -> None:
    done = cli("agent", kind, option, value)
    message = one_line_error(done)
    assert done.returncode == 2
    assert f"Invalid value for '{option}'" in message
    assert value.lstrip("-") in message


def test_a_bad_lease_in_the_environment_is_a_one_line_error(
    cli: CLI, registry: FlowRegistry
) -> None:
    registry.check()
    message = one_line_error(cli("agent", "local", "--once", **{LEASE_SECONDS_ENV: "soon"}))
    assert LEASE_SECONDS_ENV in message and "'soon'" in message


def test_run_wait_says_once_that_no_agent_has_the_labels_then_waits_for_one(
    registry: FlowRegistry, load_flow: Callable[[str, str], Flow], cli: CLI, tmp_path: Path
) -> None:
    register_flows(load_flow, registry, tmp_path)
    waiter = cli.popen("run", "quick", "--wait", logs=tmp_path / "wait")
    agent = None
    try:
        wait_until(lambda: "No agent" in read_logs(tmp_path / "wait")[1], "the no-agent hint")
        [run] = registry.list_flow_runs("quick")
        assert registry.get_flow_run(run.id).state == RunState.SCHEDULED
        assert waiter.poll() is None  # still waiting: an agent may come

        agent = start_agent(cli, tmp_path, "agent-late")
        assert waiter.wait(timeout=STOP_TIMEOUT) == 0, read_logs(tmp_path / "wait")
    finally:
        stop_process(waiter)
        if agent is not None:
            stop_process(agent.process)
    stdout, stderr = read_logs(tmp_path / "wait")
    assert stderr.count("No agent") == 1, stderr
    assert f"['{LABEL}']" in stderr and f"prefect-storage agent local -l {LABEL}" in stderr
    assert "Success" in stdout


def test_run_wait_gives_no_hint_when_a_live_agent_has_the_labels(
    registry: FlowRegistry, load_flow: Callable[[str, str], Flow], cli: CLI, tmp_path: Path
) -> None:
    register_flows(load_flow, registry, tmp_path)
    agent = start_agent(cli, tmp_path, "agent-early")
    try:
        wait_until(lambda: registry.list_agents(), "the agent to record itself")
        done = cli("run", "quick", "--wait")
    finally:
        stop_process(agent.process)
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert "No agent" not in done.stderr


def test_agent_once_on_an_unreachable_registry_is_a_one_line_error(
    cli: CLI, unreachable_registry_url: str
) -> None:
    message = one_line_error(
        cli("agent", "local", "--once", **{REGISTRY_URL_ENV: unreachable_registry_url})
    )
    assert "registry" in message and "127.0.0.1" in message


@pytest.mark.parametrize(
    ("argument", "value"),
    [("concurrency", 0), ("lease_seconds", 0.0), ("lease_seconds", -3.0), ("grace_seconds", -1.0)],
)
def test_nonsensical_agent_arguments_are_setting_errors_naming_them(
    argument: str, value: float, registry: FlowRegistry
) -> None:
    for make in (LocalAgent, DockerAgent):
        with pytest.raises(SettingError, match=f"`{argument}`") as raised:
            make(registry=registry, **{argument: value})
        assert isinstance(raised.value, ValueError)
    with pytest.raises(SettingError, match="`poll_interval`"):
        LocalAgent(registry=registry).start(poll_interval=0)


def test_both_agents_build_a_run_environment_alike(registry: FlowRegistry) -> None:
    record = registry.register_flow(
        "with-env",
        storage={"type": "Local", "flows": {"with-env": "/nowhere"}, "secrets": []},
        sha256=None,
        run_config={"type": "LocalRun", "env": {"FROM_RUN_CONFIG": "1", "KEPT": "run config"}},
    )
    agent = LocalAgent(registry=registry, lease_seconds=7.5)
    environment = agent._child_environment(record, {"INHERITED": "x", "KEPT": "inherited"})
    assert environment == {
        "INHERITED": "x",
        "KEPT": "run config",  # the run config has the last word
        "FROM_RUN_CONFIG": "1",
        REGISTRY_URL_ENV: registry.url,
        HOME_ENV: str(home_dir()),
        LEASE_SECONDS_ENV: "7.5",
    }
    docker = DockerAgent(registry=registry, lease_seconds=7.5)
    assert docker._child_environment(record, {"INHERITED": "x", "KEPT": "inherited"}) == environment
    assert execute_command("run-1") == ["-m", "prefect_storage.cli", "execute", "run-1"]
