"""Fixtures for the Docker storage and Docker agent tests (a real engine and registry).

The engine, the registry, the Python base image and this checkout's wheel come from the
session fixtures of ``tests/conftest.py``. Every storage here is built with
``base_image=python_base_image, local_image=True, package_wheel=package_wheel`` (nothing can be
pulled) and the daemon's ``base_url`` passed explicitly, so module-scoped fixtures can build an
image once and share it between tests.
"""

from __future__ import annotations

import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from prefect_storage.engine.flow import Flow
from prefect_storage.loading import flows_in_script
from prefect_storage.registry import REGISTRY_URL_ENV
from tests.servers.docker import DockerDaemon

CONTAINER_TIMEOUT = 120
"""Seconds a test container may run."""


def unique(prefix: str) -> str:
    """A repository name no other test uses (the registry lives for the whole session)."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def write_script(folder: Path, name: str, source: str) -> Path:
    """Write dedented Python source to ``folder/name``; returns the path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(source))
    return path


def load_flows(path: Path) -> dict[str, Flow]:
    """The flows of the script at ``path``, executed in a non-importable namespace, so their
    task functions pickle by value. The script's folder stays on ``sys.path`` (as when a user
    registers a script), so its sibling modules import on the host and pickle by reference."""
    return flows_in_script(path.read_bytes(), str(path))


def run_in_image(
    daemon: DockerDaemon,
    image: str,
    command: list[str],
    network: str = "none",
    environment: dict[str, str] | None = None,
) -> tuple[int, str, str]:
    """Run ``command`` in a fresh container of ``image``; returns (exit code, stdout, stderr)."""
    client = daemon.client()
    try:
        container = client.containers.run(
            image, command, network_mode=network, environment=environment, detach=True
        )
        try:
            code = container.wait(timeout=CONTAINER_TIMEOUT)["StatusCode"]
            out = container.logs(stdout=True, stderr=False).decode(errors="replace")
            err = container.logs(stdout=False, stderr=True).decode(errors="replace")
        finally:
            container.remove(force=True)
    finally:
        client.close()
    return code, out, err


@pytest.fixture(autouse=True)
def _registry_in_home(monkeypatch: pytest.MonkeyPatch) -> None:
    """No registry URL from the developer's shell: the registry is SQLite under the test's
    home, which the Docker agent mounts into its containers."""
    monkeypatch.delenv(REGISTRY_URL_ENV, raising=False)


@pytest.fixture(autouse=True)
def _no_leftover_containers(request: pytest.FixtureRequest) -> Iterator[None]:
    """Remove the stopped containers a Docker test leaves in the session's engine (a build
    whose ``RUN`` step fails keeps that step's container, as ``docker build`` does), so the
    tests that run after these find the engine empty."""
    if request.node.get_closest_marker("docker") is None:
        yield
        return
    daemon: DockerDaemon = request.getfixturevalue("docker_daemon")
    yield
    client = daemon.client()
    try:
        for container in client.containers.list(all=True, filters={"status": "exited"}):
            container.remove(force=True)
    finally:
        client.close()


@pytest.fixture(scope="session")
def docker_kwargs(
    docker_daemon: DockerDaemon, python_base_image: str, package_wheel: Path
) -> dict[str, Any]:
    """What every ``Docker(...)`` here needs: the daemon, the local base image, the wheel."""
    return {
        "base_url": docker_daemon.host,
        "base_image": python_base_image,
        "local_image": True,
        "package_wheel": str(package_wheel),
    }


@pytest.fixture(scope="session")
def python3_only_image(
    docker_daemon: DockerDaemon, python_base_image: str, pytestconfig: pytest.Config
) -> str:
    """The base image as Debian ships Python: ``python3`` only (no ``python`` on PATH), pip
    refusing system-wide installs (PEP 668); see ``tests/servers/docker.py``."""
    from tests.conftest import _docker_progress
    from tests.servers import docker as docker_servers

    return docker_servers.python3_only_image(docker_daemon, _docker_progress(pytestconfig))


@pytest.fixture(scope="module")
def module_docker_config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """An empty ``DOCKER_CONFIG`` (no credentials or helpers from ``~/.docker``) for the
    module-scoped builds, which cannot use the function-scoped ``docker_env``."""
    config = tmp_path_factory.mktemp("docker-config")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DOCKER_CONFIG", str(config))
        for name in ("DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_CONTEXT"):
            patch.delenv(name, raising=False)
        yield


@pytest.fixture
def flow_from(tmp_path: Path) -> Iterator[Callable[[str, str], Flow]]:
    """``flow_from(source, name)``: the flow ``name`` of a script written from ``source``."""
    saved_path = list(sys.path)
    counter = iter(range(1_000_000))

    def load(source: str, name: str) -> Flow:
        path = write_script(tmp_path / "scripts", f"flow_{next(counter)}.py", source)
        return load_flows(path)[name]

    yield load
    sys.path[:] = saved_path
