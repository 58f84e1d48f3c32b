"""A registry outage does not kill a long-running agent: a real PostgreSQL server is shut down
for ~6 s under a running agent (and a run being finalised), then started again on the same
port. The agent logs the outage once, records the run's end, and runs the next run."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from prefect_storage.engine.flow import Flow
from prefect_storage.registry import REGISTRY_URL_ENV, FlowRegistry, RunState
from tests.registry.agent_rigs import register_flows, start_agent
from tests.registry.conftest import CLI, stop_process, wait_until
from tests.servers.postgres import PostgresServer

OUTAGE_SECONDS = 6.0


@pytest.fixture
def private_postgres(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[PostgresServer, str]]:
    """A PostgreSQL server of this test's own (it is shut down mid-test); its registry URL
    is set as PREFECT_STORAGE_REGISTRY_URL."""
    server = PostgresServer().start()
    try:
        url = server.url(server.create_database())
        monkeypatch.setenv(REGISTRY_URL_ENV, url)
        yield server, url
    finally:
        server.stop()


def test_an_agent_rides_out_a_registry_outage(
    private_postgres: tuple[PostgresServer, str],
    load_flow: Callable[[str, str], Flow],
    cli: CLI,
    tmp_path: Path,
) -> None:
    server, url = private_postgres
    registry = FlowRegistry(url)
    register_flows(load_flow, registry, tmp_path)
    agent = start_agent(cli, tmp_path, "agent-outage")
    try:
        marker, gate = tmp_path / "gated-started", tmp_path / "gate"
        gated = registry.create_flow_run(
            "gated", parameters={"marker": str(marker), "gate": str(gate)}
        )
        wait_until(marker.exists, "the gated run to start")
        registry.engine.dispose()  # the test's own connections do not outlive the server

        server.shut_down()
        down_at = time.monotonic()
        wait_until(lambda: "unreachable" in agent.output()[1], "the agent to notice the outage")
        gate.touch()  # the run ends while the registry is down: its end must still be recorded
        wait_until(lambda: time.monotonic() - down_at >= OUTAGE_SECONDS, "the outage to last")
        assert agent.process.poll() is None, agent.output()
        server.start_again()

        wait_until(
            lambda: registry.get_flow_run(gated.id).state in RunState.FINAL,
            "the gated run's end to be recorded",
        )
        final = registry.get_flow_run(gated.id)
        assert final.state == RunState.SUCCESS, final.message
        assert any(t["result"] == "'through'" for t in (final.task_states or {}).values())

        after = registry.create_flow_run("quick")
        wait_until(
            lambda: registry.get_flow_run(after.id).state in RunState.FINAL,
            "the agent to run a run scheduled after the outage",
        )
        assert registry.get_flow_run(after.id).state == RunState.SUCCESS
        wait_until(lambda: "reachable again" in agent.output()[1], "the agent's recovery line")
        assert agent.process.poll() is None, agent.output()
    finally:
        stop_process(agent.process)
        registry.engine.dispose()
    stdout, stderr = agent.output()
    assert agent.process.returncode == 0, stderr
    assert "Agent stopped (SIGINT): agent-outage; 0 flow run(s)" in stdout
    assert stderr.count("The flow registry is unreachable") == 1, stderr
    assert stderr.count("The flow registry is reachable again after") == 1, stderr
