"""Smoke tests of the Docker test infrastructure (tests/servers/docker.py) with the docker SDK:
the engine, the Python base image, this package installed from its wheel, the registry."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import docker
import pytest

from tests.servers.docker import (
    BASE_IMAGE,
    DockerDaemon,
    LocalRegistry,
    build_image,
)

pytestmark = pytest.mark.docker


def test_daemon_answers(docker_daemon: DockerDaemon) -> None:
    client = docker.DockerClient(base_url=docker_daemon.host)
    try:
        version = client.version()
        assert version["ApiVersion"]
        assert client.ping() is True
        info = client.info()
        assert info["Driver"] == docker_daemon.storage_driver
        # resolved: a checkout's .cache may be a symlink to a shared cache
        assert Path(info["DockerRootDir"]).resolve() == docker_daemon.data_root.resolve()
    finally:
        client.close()


def test_docker_env_sets_docker_host(docker_env: DockerDaemon) -> None:
    assert os.environ["DOCKER_HOST"] == docker_env.host
    client = docker.from_env()
    try:
        assert client.ping() is True
    finally:
        client.close()


@pytest.mark.slow
def test_base_image_runs_python_without_network(
    docker_daemon: DockerDaemon, python_base_image: str
) -> None:
    assert python_base_image == BASE_IMAGE
    client = docker_daemon.client()
    try:
        script = (
            "import os, shutil, sys; "
            "print(sys.version.split()[0], shutil.which('python'), shutil.which('pip'), "
            "os.environ['PIP_BREAK_SYSTEM_PACKAGES'], os.environ['SSL_CERT_FILE'])"
        )
        output = client.containers.run(
            python_base_image, ["python3", "-c", script], network_mode="none", remove=True
        )
        version, python, pip, break_system, ca_bundle = output.decode().split()
        assert version.startswith("3.11.")
        assert (python, pip, break_system) == ("/usr/bin/python", "/usr/bin/pip", "1")
        assert ca_bundle == "/etc/ssl/certs/ca-certificates.crt"
        assert client.containers.list(all=True) == []  # remove=True removed it
    finally:
        client.close()


@pytest.mark.slow
def test_package_wheel_installs_in_an_image(
    docker_daemon: DockerDaemon, python_base_image: str, package_wheel: Path, tmp_path: Path
) -> None:
    assert package_wheel.name.startswith("prefect_storage-") and package_wheel.suffix == ".whl"
    context = tmp_path / "context"
    context.mkdir()
    shutil.copy2(package_wheel, context / package_wheel.name)
    (context / "Dockerfile").write_text(
        f"FROM {python_base_image}\n"
        f"COPY {package_wheel.name} /tmp/{package_wheel.name}\n"
        # The dependencies come from the package index: the build needs network_mode="host".
        f"RUN python -m pip install /tmp/{package_wheel.name} && rm /tmp/{package_wheel.name}\n"
    )
    tag = f"test-wheel-{uuid.uuid4().hex[:8]}:latest"
    client = docker_daemon.client()
    try:
        build_image(client, context, tag, network_mode="host")
        output = client.containers.run(
            tag,
            ["python", "-c", "import prefect_storage; print(prefect_storage.__file__)"],
            network_mode="none",
            remove=True,
        )
        assert output.decode().strip() == (
            "/usr/local/lib/python3.11/dist-packages/prefect_storage/__init__.py"
        )
        client.images.remove(tag, force=True)
    finally:
        client.close()


def test_push_and_pull_through_the_local_registry(
    docker_daemon: DockerDaemon, docker_registry: LocalRegistry, tmp_path: Path
) -> None:
    # A one-file image made from scratch: no base image needed for the registry round trip.
    context = tmp_path / "context"
    context.mkdir()
    (context / "hello.txt").write_text("hello from the registry\n")
    (context / "Dockerfile").write_text("FROM scratch\nCOPY hello.txt /hello.txt\n")
    repository = f"{docker_registry.url}/test/img-{uuid.uuid4().hex[:8]}"
    client = docker_daemon.client()
    try:
        build_image(client, context, f"{repository}:tag")
        pushed = list(client.api.push(repository, tag="tag", stream=True, decode=True))
        errors = [event["error"] for event in pushed if "error" in event]
        assert errors == []  # push reports failures in the stream, not as exceptions
        digests = [event["aux"]["Digest"] for event in pushed if "Digest" in event.get("aux", {})]
        assert len(digests) == 1 and digests[0].startswith("sha256:")
        assert docker_registry.tags(repository.split("/", 1)[1]) == ["tag"]

        client.images.remove(f"{repository}:tag", force=True)
        with pytest.raises(docker.errors.ImageNotFound):
            client.images.get(f"{repository}:tag")
        pulled = client.images.pull(repository, tag="tag")
        assert f"{repository}:tag" in pulled.tags
        client.images.remove(f"{repository}:tag", force=True)

        with pytest.raises(docker.errors.NotFound):
            client.images.pull(repository, tag="no-such-tag")
    finally:
        client.close()
