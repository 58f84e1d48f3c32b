"""The Docker agent: flows registered with Docker storage (pushed to the local registry) run in
containers of their image, which sees the test's home (the SQLite registry) at the same path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker.errors
import pytest

from prefect_storage.agents import DockerAgent, LocalAgent
from prefect_storage.engine.flow import Flow
from prefect_storage.registry import FlowRegistry, RunState
from prefect_storage.run_configs import DockerRun
from prefect_storage.secrets import ENV_PREFIX, set_secret
from prefect_storage.storage import Docker, Local
from tests.docker.conftest import unique
from tests.servers.docker import REPO_ROOT, DockerDaemon, LocalRegistry

pytestmark = [pytest.mark.docker, pytest.mark.slow]

LABEL = "docker-agent-test"

AGENT_FLOWS = """
import os

from prefect_storage import Flow, Parameter, task
from prefect_storage.secrets import Secret


@task
def double(x):
    return x * 2


@task
def in_a_container():
    return os.path.exists("/.dockerenv")


@task
def crash():
    print("about to crash", flush=True)
    os._exit(3)


@task
def token_length():
    return len(Secret("DOCKER_AGENT_TOKEN").get())


with Flow("docker agent ok") as ok:
    x = Parameter("x", default=1)
    double(x)
    in_a_container()

with Flow("docker agent crash") as crashing:
    crash()

with Flow("docker agent secret") as secret:
    token_length()
"""


@pytest.fixture
def registry(home: Path) -> Iterator[FlowRegistry]:
    """The default registry: SQLite under this test's home."""
    flow_registry = FlowRegistry()
    assert flow_registry.url == f"sqlite:///{home / 'registry.db'}"
    yield flow_registry
    if flow_registry._engine is not None:
        flow_registry._engine.dispose()


@pytest.fixture
def register(
    flow_from: Callable[[str, str], Flow],
    docker_kwargs: dict[str, Any],
    docker_registry: LocalRegistry,
    registry: FlowRegistry,
    docker_env: DockerDaemon,
) -> Callable[..., Docker]:
    """``register(flow_name, **docker_options)``: build and push the flow's image and record
    the flow in this test's registry with the label ``LABEL``; returns its storage."""

    def make(flow_name: str, **options: Any) -> Docker:
        flow = flow_from(AGENT_FLOWS, flow_name)
        flow.storage = Docker(
            registry_url=docker_registry.url,
            image_name=unique(flow_name.replace(" ", "-")),
            **docker_kwargs,
            **options,
        )
        flow.register(labels=[LABEL], registry=registry)
        return flow.storage

    return make


def agent(registry: FlowRegistry, daemon: DockerDaemon) -> DockerAgent:
    return DockerAgent(
        labels=[LABEL], registry=registry, hostname_label=False, base_url=daemon.host
    )


def logs(registry: FlowRegistry, run_id: str) -> str:
    return "\n".join(entry["message"] for entry in registry.get_logs(run_id))


def test_a_pushed_image_is_pulled_and_the_flow_runs_in_it(
    register: Callable[..., Docker], registry: FlowRegistry, docker_daemon: DockerDaemon
) -> None:
    storage = register("docker agent ok")
    client = docker_daemon.client()
    try:
        client.images.remove(storage.image, force=True)  # only the registry has it now
        with pytest.raises(docker.errors.ImageNotFound):
            client.images.get(storage.image)
        run = registry.create_flow_run("docker agent ok", parameters={"x": 21})
        assert agent(registry, docker_daemon).run_once() == [run.id]
        final = registry.get_flow_run(run.id)
        assert final.state == RunState.SUCCESS, (final.message, logs(registry, run.id))
        assert final.task_states is not None
        results = {state["task"]: state["result"] for state in final.task_states.values()}
        assert results == {"x": "21", "double": "42", "in_a_container": "True"}
        assert "Loading flow 'docker agent ok' version 1" in logs(registry, run.id)
        assert storage.image in client.images.get(storage.image).tags  # pulled back
        assert client.containers.list(all=True) == []  # the run's container is removed
    finally:
        client.close()


def test_a_crashing_container_fails_the_run_with_its_exit_code(
    register: Callable[..., Docker], registry: FlowRegistry, docker_daemon: DockerDaemon
) -> None:
    register("docker agent crash")
    run = registry.create_flow_run("docker agent crash")
    agent(registry, docker_daemon).run_once()
    final = registry.get_flow_run(run.id)
    assert final.state == RunState.FAILED
    assert final.message == "The flow run process exited with code 3 before finishing."
    assert "about to crash" in logs(registry, run.id)


@pytest.mark.parametrize("source", ["secrets file", "agent environment"])
def test_secrets_reach_the_container_but_not_the_image(
    source: str,
    register: Callable[..., Docker],
    registry: FlowRegistry,
    docker_daemon: DockerDaemon,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    value = "s3cr3t-docker-agent-value"
    if source == "secrets file":
        set_secret("DOCKER_AGENT_TOKEN", value)  # in the home, which the container sees
    else:
        monkeypatch.setenv(f"{ENV_PREFIX}DOCKER_AGENT_TOKEN", value)
    storage = register("docker agent secret", secrets=["DOCKER_AGENT_TOKEN"])
    run = registry.create_flow_run("docker agent secret")
    agent(registry, docker_daemon).run_once()
    final = registry.get_flow_run(run.id)
    assert final.state == RunState.SUCCESS, (final.message, logs(registry, run.id))
    assert final.task_states is not None
    assert [s["result"] for s in final.task_states.values()] == [str(len(value))]
    assert value not in json.dumps(storage.serialize())
    assert value not in logs(registry, run.id)
    client = docker_daemon.client()
    try:
        assert value not in json.dumps(client.api.inspect_image(storage.image))
        assert value not in json.dumps(client.api.history(storage.image))
    finally:
        client.close()


def test_the_local_agent_refuses_docker_storage(
    register: Callable[..., Docker], registry: FlowRegistry
) -> None:
    register("docker agent ok")
    run = registry.create_flow_run("docker agent ok")
    assert LocalAgent(labels=[LABEL], registry=registry, hostname_label=False).run_once() == [
        run.id
    ]
    final = registry.get_flow_run(run.id)
    assert final.state == RunState.FAILED
    message = final.message or ""
    assert "Unsupported Storage type: Docker" in message, message
    assert "prefect-storage agent docker" in message


def test_a_docker_run_config_runs_local_storage_in_its_image(
    register: Callable[..., Docker],
    flow_from: Callable[[str, str], Flow],
    registry: FlowRegistry,
    docker_daemon: DockerDaemon,
) -> None:
    image = register("docker agent ok").image  # any image with this package in it
    flow = flow_from(AGENT_FLOWS, "docker agent ok")
    flow.name = "local storage in a container"
    flow.storage = Local(add_default_labels=False)  # under the home, which the agent mounts
    flow.run_config = DockerRun(image=image, labels=[LABEL])
    flow.register(registry=registry)
    run = registry.create_flow_run("local storage in a container", parameters={"x": 5})
    agent(registry, docker_daemon).run_once()
    final = registry.get_flow_run(run.id)
    assert final.state == RunState.SUCCESS, (final.message, logs(registry, run.id))
    assert final.task_states is not None
    results = {state["task"]: state["result"] for state in final.task_states.values()}
    assert results["double"] == "10" and results["in_a_container"] == "True"


def test_agent_docker_cli_once(
    register: Callable[..., Docker],
    registry: FlowRegistry,
    docker_daemon: DockerDaemon,
    home: Path,
    tmp_path: Path,
) -> None:
    register("docker agent ok")
    run = registry.create_flow_run("docker agent ok", parameters={"x": 4})
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    env["PREFECT_STORAGE_HOME"] = str(home)
    env.pop("DOCKER_HOST", None)  # --base-url says where the engine is
    command = [sys.executable, "-m", "prefect_storage.cli", "agent", "docker", "--once"]
    command += ["--no-hostname-label", "-l", LABEL, "--base-url", docker_daemon.host]
    done = subprocess.run(
        command,
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "executed 1 flow run(s)" in done.stdout
    final = registry.get_flow_run(run.id)
    assert final.state == RunState.SUCCESS, (final.message, logs(registry, run.id))
    assert final.agent is not None and final.agent.startswith("docker-agent-")


def test_a_sqlite_registry_outside_the_home_reaches_the_container(
    register: Callable[..., Docker], docker_daemon: DockerDaemon, tmp_path: Path, home: Path
) -> None:
    # PREFECT_STORAGE_REGISTRY_URL may name any SQLite file; the container must see that one,
    # not create an empty database of its own at the same path.
    elsewhere = FlowRegistry(f"sqlite:///{tmp_path / 'shared' / 'registry.db'}")
    assert not (tmp_path / "shared").is_relative_to(home)
    storage = register("docker agent ok")
    elsewhere.register_flow(
        "docker agent ok",
        storage=storage.serialize(),
        sha256=storage.digests["docker agent ok"],
        labels=[LABEL],
    )
    run = elsewhere.create_flow_run("docker agent ok")
    agent(elsewhere, docker_daemon).run_once()
    final = elsewhere.get_flow_run(run.id)
    assert final.state == RunState.SUCCESS, (final.message, logs(elsewhere, run.id))


SLEEPY_FLOW = """
import time
from prefect_storage import Flow, Parameter, task


@task
def sleep_long(marker):
    open(marker, "w").close()  # in the home, which the container shares with the test
    time.sleep(300)


with Flow("docker agent sleepy") as sleepy:
    sleep_long(Parameter("marker", required=True))
"""


def _wait_until(condition: Callable[[], object], what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_cancelling_a_run_stops_its_container(
    register: Callable[..., Docker],
    flow_from: Callable[[str, str], Flow],
    registry: FlowRegistry,
    docker_daemon: DockerDaemon,
    home: Path,
) -> None:
    image = register("docker agent ok").image  # any image with this package in it
    flow = flow_from(SLEEPY_FLOW, "docker agent sleepy")
    flow.storage = Local(add_default_labels=False)
    flow.run_config = DockerRun(image=image, labels=[LABEL])
    flow.register(registry=registry)
    marker = home / "sleepy-started"
    run = registry.create_flow_run("docker agent sleepy", parameters={"marker": str(marker)})
    docker_agent = DockerAgent(
        labels=[LABEL],
        registry=registry,
        hostname_label=False,
        base_url=docker_daemon.host,
        lease_seconds=2,
        grace_seconds=5,
    )
    serving = threading.Thread(target=docker_agent.run_once)
    serving.start()
    client = docker_daemon.client()
    try:
        _wait_until(marker.exists, "the run's container to start")
        assert len(client.containers.list()) == 1
        assert registry.cancel_flow_run(run.id).state == RunState.CANCELLING
        _wait_until(
            lambda: registry.get_flow_run(run.id).state == RunState.CANCELLED,
            "the agent to stop the container",
        )
        serving.join(timeout=120)
        assert not serving.is_alive()
        assert client.containers.list(all=True) == []  # stopped and removed
    finally:
        docker_agent.stop()
        serving.join()
        client.close()
    final = registry.get_flow_run(run.id)
    assert (final.message or "").startswith("Cancelled"), final.message
