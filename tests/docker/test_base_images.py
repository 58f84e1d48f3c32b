"""Docker storage on base images as they come: Debian's own Python (``python3`` only, pip
refusing system-wide installs), an image that already has this package and the flows'
dependencies, and an image without Python. The Dockerfile picks the image's interpreter at
build time; the health check, the flows and the Docker agent all run with it."""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from prefect_storage._version import __version__
from prefect_storage.agents import DockerAgent
from prefect_storage.backends.docker import in_image_python
from prefect_storage.engine.flow import Flow
from prefect_storage.exceptions import BackendError
from prefect_storage.registry import FlowRegistry, RunState
from prefect_storage.storage import Docker
from tests.docker.conftest import load_flows, run_in_image, unique, write_script
from tests.servers.docker import DockerDaemon, build_image

pytestmark = [pytest.mark.docker, pytest.mark.slow]

FLOWS = """
import importlib.metadata
import sys

from prefect_storage import Flow, task


@task
def interpreter():
    return sys.executable


@task
def dependency():
    import tomli_w

    return tomli_w.dumps({"a": 1}).strip()


@task
def package_is_preinstalled():
    import prefect_storage._version as version

    return getattr(version, "PREINSTALLED", False)


with Flow("on debian python") as flow:
    interpreter()
    dependency()
    package_is_preinstalled()
"""

DEPENDENCIES = ["tomli-w>=1.0,<2"]
PREINSTALLED_MARK = "PREINSTALLED = True"
"""Appended to the preinstalled copy's ``_version.py``: a reinstall from the wheel drops it."""


@contextlib.contextmanager
def build_log() -> Iterator[list[str]]:
    """The lines a Docker build streams to the ``prefect_storage.docker`` logger."""
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    logger = logging.getLogger("prefect_storage.docker")
    handler, level = Collect(logging.INFO), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def execute(daemon: DockerDaemon, storage: Docker) -> dict[str, Any]:
    """Run the flow with ``execute --flow`` in a container of the image (the image's own
    interpreter, no network); returns the tasks' results."""
    command = in_image_python("-m", "prefect_storage.cli", "execute", "--flow", "on debian python")
    command += ["--storage", json.dumps(storage.serialize()), "--json"]
    code, out, err = run_in_image(daemon, storage.image, command)
    assert code == 0, out + err
    result = json.loads(out)
    assert result["state"] == "Success", result
    return {name: task["result"] for name, task in result["tasks"].items()}


def derived_image(daemon: DockerDaemon, dockerfile: str, files: dict[str, Path]) -> str:
    """Build ``dockerfile`` (with ``files`` copied into its context) under a fresh tag."""
    tag = f"{unique('base-image')}:test"
    client = daemon.client()
    try:
        with tempfile.TemporaryDirectory(prefix="prefect-storage-derived-") as context:
            for name, source in files.items():
                shutil.copy2(source, Path(context) / name)
            (Path(context) / "Dockerfile").write_text(dockerfile)
            build_image(client, context, tag, network_mode="host")
    finally:
        client.close()
    return tag


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Flow:
    folder = tmp_path_factory.mktemp("debian-flows")
    return load_flows(write_script(folder, "flows.py", FLOWS))["on debian python"]


@dataclass
class Built:
    storage: Docker
    log: list[str]


def build(flow: Flow, **options: Any) -> Built:
    storage = Docker(image_name=unique("debian"), image_tag="v1", **options)
    storage.add_flow(flow)
    with build_log() as lines:
        storage.build(push=False)
    return Built(storage, lines)


# -- Debian's own python3 -------------------------------------------------------------------
@pytest.fixture(scope="module")
def on_python3_only(
    module_docker_config: None,
    docker_kwargs: dict[str, Any],
    python3_only_image: str,
    flow: Flow,
) -> Built:
    return build(
        flow,
        **{**docker_kwargs, "base_image": python3_only_image},
        python_dependencies=DEPENDENCIES,
    )


def test_the_python3_only_image_is_debians(
    python3_only_image: str, docker_daemon: DockerDaemon
) -> None:
    # What the storage has to cope with: no `python`, and pip refusing system-wide installs.
    command = "command -v python; python3 -m pip install --no-index six"
    code, out, err = run_in_image(docker_daemon, python3_only_image, ["sh", "-c", command])
    assert code != 0 and out == ""
    assert "externally-managed-environment" in err, err


def test_a_python3_only_image_builds_and_checks_with_python3(on_python3_only: Built) -> None:
    assert "Python: /usr/bin/python3 3.11" in "\n".join(on_python3_only.log), on_python3_only.log
    assert "All health checks passed." in on_python3_only.log


def test_a_flow_built_on_python3_only_runs_in_its_image(
    on_python3_only: Built, docker_daemon: DockerDaemon
) -> None:
    results = execute(docker_daemon, on_python3_only.storage)
    assert results["interpreter"] == "/usr/bin/python3"
    assert results["dependency"] == "a = 1"  # installed despite PEP 668
    assert results["package_is_preinstalled"] is False


@pytest.fixture
def registry(home: Path) -> Iterator[FlowRegistry]:
    flow_registry = FlowRegistry()
    yield flow_registry
    if flow_registry._engine is not None:
        flow_registry._engine.dispose()


def test_the_docker_agent_runs_a_python3_only_image(
    on_python3_only: Built, registry: FlowRegistry, docker_daemon: DockerDaemon
) -> None:
    storage = on_python3_only.storage
    registry.register_flow(
        "on debian python",
        storage=storage.serialize(),
        sha256=storage.digests["on debian python"],
        labels=["python3-only"],
    )
    run = registry.create_flow_run("on debian python")
    agent = DockerAgent(
        labels=["python3-only"],
        registry=registry,
        hostname_label=False,
        base_url=docker_daemon.host,
    )
    assert agent.run_once() == [run.id]
    final = registry.get_flow_run(run.id)
    logs = "\n".join(entry["message"] for entry in registry.get_logs(run.id))
    assert final.state == RunState.SUCCESS, (final.message, logs)
    assert final.task_states is not None
    results = {state["task"]: state["result"] for state in final.task_states.values()}
    assert results["interpreter"] == "'/usr/bin/python3'"


# -- a base image that already has the package and the dependencies ----------------------------
@pytest.fixture(scope="module")
def preinstalled_image(
    docker_daemon: DockerDaemon, python3_only_image: str, package_wheel: Path
) -> str:
    """The python3-only image with this checkout's wheel and ``DEPENDENCIES`` installed, and
    ``PREINSTALLED_MARK`` in that copy of the package."""
    wheel = package_wheel.name
    find_version_file = "python3 -c 'import prefect_storage._version as v; print(v.__file__)'"
    return derived_image(
        docker_daemon,
        f"FROM {python3_only_image}\n"
        f"COPY {wheel} /tmp/{wheel}\n"
        f"RUN PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install /tmp/{wheel} "
        f"'{DEPENDENCIES[0]}' && rm /tmp/{wheel} && "
        f'echo "{PREINSTALLED_MARK}" >> "$({find_version_file})"\n',
        {wheel: package_wheel},
    )


OFFLINE = {"build_kwargs": {"network_mode": "none"}}
"""A build without network: any pip install that needs the package index fails it."""


def test_a_preinstalled_package_and_dependencies_are_not_installed_again(
    module_docker_config: None,
    docker_kwargs: dict[str, Any],
    preinstalled_image: str,
    docker_daemon: DockerDaemon,
    flow: Flow,
) -> None:
    options = {k: v for k, v in docker_kwargs.items() if k != "package_wheel"}  # from the index
    built = build(
        flow,
        **{**options, "base_image": preinstalled_image},
        python_dependencies=DEPENDENCIES,
        **OFFLINE,
    )
    assert "Already installed: tomli-w>=1.0,<2" in built.log, built.log
    assert f"Already installed: prefect-storage=={__version__}" in built.log, built.log
    installs = [
        line for line in built.log if line.startswith(("Collecting", "Successfully installed"))
    ]
    assert installs == [], built.log
    results = execute(docker_daemon, built.storage)
    assert results["package_is_preinstalled"] is True  # the base image's copy, untouched
    assert results["dependency"] == "a = 1"


def test_a_package_wheel_replaces_a_preinstalled_copy_of_the_same_version(
    module_docker_config: None,
    docker_kwargs: dict[str, Any],
    preinstalled_image: str,
    docker_daemon: DockerDaemon,
    flow: Flow,
) -> None:
    # The wheel is this exact code; a same-version copy in the base image may be other code.
    built = build(flow, **{**docker_kwargs, "base_image": preinstalled_image}, **OFFLINE)
    assert any(line.startswith("Successfully installed prefect-storage") for line in built.log)
    results = execute(docker_daemon, built.storage)
    assert results["package_is_preinstalled"] is False


# -- no Python at all -------------------------------------------------------------------------
def test_a_base_image_without_python_fails_the_build_saying_so(
    module_docker_config: None,
    docker_kwargs: dict[str, Any],
    python3_only_image: str,
    docker_daemon: DockerDaemon,
    flow: Flow,
) -> None:
    no_python = derived_image(
        docker_daemon, f"FROM {python3_only_image}\nRUN rm /usr/bin/python3*\n", {}
    )
    with pytest.raises(BackendError) as info:
        build(flow, **{**docker_kwargs, "base_image": no_python})
    assert str(info.value) == (
        "The Docker image failed to build: HEALTHCHECK FAILED: the base image has no python3 "
        "or python on its PATH; use a base image with Python 3 and pip."
    )
