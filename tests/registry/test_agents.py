"""The local agent: atomic claims, label matching, and runs that end in a final state with
their reason, whatever goes wrong. Every run executes in a fresh process, as in production."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from prefect_storage.engine.flow import Flow
from prefect_storage.registry import FlowRegistry, RunState
from prefect_storage.storage import Local
from tests.registry.conftest import CLI, read_logs, stop_process

RECORD_FLOW = """
from prefect_storage import Flow, Parameter, context, task

@task
def record(out):
    # One short O_APPEND write per execution: lines from concurrent runs never interleave.
    with open(out, "a") as file:
        file.write(context["flow_run_id"] + "\\n")
    return out

with Flow("record") as flow:
    record(Parameter("out", required=True))
"""

TWO_AGENTS_RUNS = 50


def local_storage(tmp_path: Path, **kwargs: object) -> Local:
    return Local(directory=str(tmp_path / "flows"), **kwargs)  # type: ignore[arg-type]


def register(
    load_flow: Callable[[str, str], Flow],
    source: str,
    name: str,
    registry: FlowRegistry,
    storage: Local,
    labels: list[str] | None = None,
) -> Flow:
    flow = load_flow(source, name)
    flow.storage = storage
    flow.register(labels=labels, registry=registry)
    return flow


# -- two agents, fifty runs ---------------------------------------------------------------------
def test_two_agents_started_at_once_run_each_flow_run_exactly_once(
    registry: FlowRegistry,
    load_flow: Callable[[str, str], Flow],
    cli: CLI,
    tmp_path: Path,
) -> None:
    register(
        load_flow,
        RECORD_FLOW,
        "record",
        registry,
        local_storage(tmp_path, add_default_labels=False),
        labels=["L"],
    )
    out = tmp_path / "executions.txt"
    created = {
        registry.create_flow_run("record", parameters={"out": str(out)}).id
        for _ in range(TWO_AGENTS_RUNS)
    }
    assert len(created) == TWO_AGENTS_RUNS

    agents = [
        cli.popen(
            "agent",
            "local",
            "--once",
            "--no-hostname-label",
            "-l",
            "L",
            "--concurrency",
            "2",
            "--name",
            name,
            logs=tmp_path / "agents" / name,
        )
        for name in ("agent-A", "agent-B")
    ]
    try:
        for agent in agents:
            agent.wait(timeout=240)
    finally:
        for agent in agents:
            stop_process(agent)
    outputs = [read_logs(tmp_path / "agents" / name) for name in ("agent-A", "agent-B")]
    for agent, (_, stderr) in zip(agents, outputs, strict=True):
        assert agent.returncode == 0, stderr[-2000:]

    lines = out.read_text().splitlines()
    assert len(lines) == TWO_AGENTS_RUNS, Counter(lines).most_common(3)
    assert set(lines) == created

    runs = registry.list_flow_runs("record")
    assert len(runs) == TWO_AGENTS_RUNS
    assert Counter(r.state for r in runs) == {RunState.SUCCESS: TWO_AGENTS_RUNS}
    assert all(r.finished_at is not None for r in runs)
    by_agent = Counter(r.agent for r in runs)
    assert set(by_agent) == {"agent-A", "agent-B"}, by_agent  # both took a share
    reported = sorted(int(stdout.split("executed ")[1].split()[0]) for stdout, _ in outputs)
    assert reported == sorted(by_agent.values())


# -- labels -------------------------------------------------------------------------------------
def test_a_run_goes_only_to_an_agent_with_all_its_labels(
    registry: FlowRegistry, load_flow: Callable[[str, str], Flow], tmp_path: Path
) -> None:
    from prefect_storage.agents import LocalAgent

    register(
        load_flow,
        RECORD_FLOW,
        "record",
        registry,
        local_storage(tmp_path, add_default_labels=False),
        labels=["a", "b"],
    )
    out = tmp_path / "executions.txt"
    run = registry.create_flow_run("record", parameters={"out": str(out)})
    assert sorted(run.labels) == ["a", "b"]

    only_a = LocalAgent(labels=["a"], hostname_label=False, registry=registry)
    assert only_a.labels == ["a"]
    assert only_a.run_once() == []
    assert registry.get_flow_run(run.id).state == RunState.SCHEDULED
    assert not out.exists()

    superset = LocalAgent(
        labels=["a", "b", "c"], hostname_label=False, registry=registry, name="abc"
    )
    assert superset.run_once() == [run.id]
    final = registry.get_flow_run(run.id)
    assert (final.state, final.agent) == (RunState.SUCCESS, "abc"), final.message
    assert out.read_text().splitlines() == [run.id]


def test_local_pickle_flow_stays_on_the_host_that_registered_it(
    registry: FlowRegistry, load_flow: Callable[[str, str], Flow], tmp_path: Path
) -> None:
    import socket

    from prefect_storage.agents import LocalAgent

    register(load_flow, RECORD_FLOW, "record", registry, local_storage(tmp_path))
    out = tmp_path / "executions.txt"
    run = registry.create_flow_run("record", parameters={"out": str(out)})
    assert run.labels == [socket.gethostname()]

    elsewhere = LocalAgent(hostname_label=False, registry=registry)
    assert elsewhere.labels == []
    assert elsewhere.run_once() == []
    assert registry.get_flow_run(run.id).state == RunState.SCHEDULED

    here = LocalAgent(registry=registry)
    assert socket.gethostname() in here.labels
    assert here.run_once() == [run.id]
    assert registry.get_flow_run(run.id).state == RunState.SUCCESS
    assert out.read_text().splitlines() == [run.id]


# -- runs that go wrong end Failed, with the reason -------------------------------------------
def run_through_agent(registry: FlowRegistry, name: str, **parameters: object) -> str:
    from prefect_storage.agents import LocalAgent

    run = registry.create_flow_run(name, parameters=parameters)
    agent = LocalAgent(hostname_label=False, labels=["t"], registry=registry)
    assert agent.run_once() == [run.id]
    return run.id


def test_flow_modified_after_registration_fails_with_a_digest_mismatch(
    registry: FlowRegistry, load_flow: Callable[[str, str], Flow], tmp_path: Path
) -> None:
    flow = register(
        load_flow,
        RECORD_FLOW,
        "record",
        registry,
        local_storage(tmp_path, add_default_labels=False),
        labels=["t"],
    )
    stored = Path(flow.storage.flows["record"])
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit of one byte, inside the pickled payload
    stored.write_bytes(bytes(data))

    out = tmp_path / "executions.txt"
    run_id = run_through_agent(registry, "record", out=str(out))
    final = registry.get_flow_run(run_id)
    assert final.state == RunState.FAILED
    assert "Digest mismatch" in (final.message or "")
    assert registry.get_flow("record").sha256 in (final.message or "")
    assert final.finished_at is not None
    assert not out.exists()  # the tampered flow never ran
    assert any("Digest mismatch" in e["message"] for e in registry.get_logs(run_id))


FAILING_FLOW = """
import os
from prefect_storage import Flow, Parameter, context, task

@task
def prepare(n):
    context["logger"].info("preparing %s items", n)
    return n

@task
def explode(n):
    raise ValueError(f"boom at {n}")

@task
def crash(n):
    context["logger"].info("about to crash")
    os._exit(3)

with Flow("raises") as raises:
    explode(prepare(Parameter("n", default=7)))

with Flow("crashes") as crashes:
    crash(prepare(Parameter("n", default=7)))
"""


def test_a_flow_that_raises_ends_failed_with_task_states_and_logs(
    registry: FlowRegistry, load_flow: Callable[[str, str], Flow], tmp_path: Path, cli: CLI
) -> None:
    register(
        load_flow,
        FAILING_FLOW,
        "raises",
        registry,
        local_storage(tmp_path, add_default_labels=False),
        labels=["t"],
    )
    run_id = run_through_agent(registry, "raises")

    final = registry.get_flow_run(run_id)
    assert final.state == RunState.FAILED
    states = {slug: (s["task"], s["state"]) for slug, s in (final.task_states or {}).items()}
    assert ("prepare", "Success") in states.values(), states
    assert ("explode", "Failed") in states.values(), states
    explode = next(s for s in (final.task_states or {}).values() if s["task"] == "explode")
    assert "boom at 7" in explode["result"]
    messages = "\n".join(e["message"] for e in registry.get_logs(run_id))
    assert "preparing 7 items" in messages
    assert "boom at 7" in messages

    logs = cli("runs", "logs", run_id)
    assert logs.returncode == 0, logs.stderr
    assert "preparing 7 items" in logs.stdout
    assert "prefect_storage.Task.prepare" in logs.stdout  # the task's logger is named


def test_a_crashing_flow_run_process_ends_failed_with_its_exit_code(
    registry: FlowRegistry, load_flow: Callable[[str, str], Flow], tmp_path: Path
) -> None:
    register(
        load_flow,
        FAILING_FLOW,
        "crashes",
        registry,
        local_storage(tmp_path, add_default_labels=False),
        labels=["t"],
    )
    started = time.monotonic()
    run_id = run_through_agent(registry, "crashes", n=5)
    assert time.monotonic() - started < 60

    final = registry.get_flow_run(run_id)
    assert final.state == RunState.FAILED
    assert "exited with code 3" in (final.message or ""), final.message
    assert final.finished_at is not None


def test_logs_written_before_a_crash_are_kept(
    registry: FlowRegistry, load_flow: Callable[[str, str], Flow], tmp_path: Path, cli: CLI
) -> None:
    """A crash is when the logs leading up to it matter most: they must reach the registry."""
    register(
        load_flow,
        FAILING_FLOW,
        "crashes",
        registry,
        local_storage(tmp_path, add_default_labels=False),
        labels=["t"],
    )
    run_id = run_through_agent(registry, "crashes", n=5)
    assert registry.get_flow_run(run_id).state == RunState.FAILED

    logs = cli("runs", "logs", run_id)
    assert logs.returncode == 0, logs.stderr
    assert "preparing 5 items" in logs.stdout
    assert "about to crash" in logs.stdout


def test_docker_storage_is_refused_by_the_local_agent(registry: FlowRegistry) -> None:
    registry.register_flow(
        "in-an-image",
        storage={
            "type": "Docker",
            "__version__": "0",
            "secrets": [],
            "image_name": "flows",
            "image_tag": "1",
            "flows": {"in-an-image": "/opt/prefect/flows/in-an-image.prefect"},
        },
        sha256=None,
        labels=["t"],
    )
    run_id = run_through_agent(registry, "in-an-image")
    final = registry.get_flow_run(run_id)
    assert final.state == RunState.FAILED
    message = final.message or ""
    assert "Docker" in message and "Unsupported Storage type" in message, message
    assert "agent docker" in message


def test_agent_cli_once_reports_what_it_ran(
    registry: FlowRegistry, load_flow: Callable[[str, str], Flow], tmp_path: Path, cli: CLI
) -> None:
    register(
        load_flow,
        RECORD_FLOW,
        "record",
        registry,
        local_storage(tmp_path, add_default_labels=False),
        labels=["x"],
    )
    out = tmp_path / "executions.txt"
    run = registry.create_flow_run("record", parameters={"out": str(out)})

    none = cli("agent", "local", "--once", "--no-hostname-label", "-l", "y")
    assert none.returncode == 0, none.stderr
    assert "executed 0 flow run(s)" in none.stdout
    assert registry.get_flow_run(run.id).state == RunState.SCHEDULED

    one = cli("agent", "local", "--once", "--no-hostname-label", "-l", "x", "-l", "y")
    assert one.returncode == 0, one.stderr
    assert "executed 1 flow run(s)" in one.stdout
    assert registry.get_flow_run(run.id).state == RunState.SUCCESS

    bad = cli("agent", "local", "--once", "--concurrency", "0")
    assert bad.returncode != 0
    assert bad.stderr.startswith("Error:") and len(bad.stderr.strip().splitlines()) == 1


def test_execute_of_an_unknown_run_is_a_one_line_error(registry: FlowRegistry, cli: CLI) -> None:
    registry.check()
    done = cli("execute", "no-such-run")
    assert done.returncode != 0
    assert done.stderr.startswith("Error:"), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
