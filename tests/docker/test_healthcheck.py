"""The in-image health check (``python -m prefect_storage.healthcheck``) run during the build:
a flow that does not load in the image fails ``build()`` with the check's own message, and
nothing is pushed; ``ignore_healthchecks=True`` builds anyway."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from prefect_storage.exceptions import BackendError
from prefect_storage.storage import Docker
from tests.docker.conftest import load_flows, run_in_image, unique, write_script
from tests.servers.docker import DockerDaemon, LocalRegistry

pytestmark = [pytest.mark.docker, pytest.mark.slow]

HOST_ONLY_MODULE = "hostonly_helpers_for_docker"
"""A module next to the flow script: importable on the host, absent from the image."""

NEEDS_HOST_MODULE = f"""
from prefect_storage import Flow, task

import {HOST_ONLY_MODULE}


@task
def answer():
    return {HOST_ONLY_MODULE}.answer()


with Flow("needs a host module") as flow:
    answer()
"""


@pytest.fixture
def host_only_flow(tmp_path: Path) -> Any:
    write_script(tmp_path, f"{HOST_ONLY_MODULE}.py", "def answer():\n    return 42\n")
    flow = load_flows(write_script(tmp_path, "flows.py", NEEDS_HOST_MODULE))["needs a host module"]
    assert flow.run().is_successful()  # it runs here: the module is on the host's sys.path
    return flow


def test_a_module_missing_in_the_image_fails_the_build_naming_it(
    module_docker_config: None,
    docker_kwargs: dict[str, Any],
    docker_registry: LocalRegistry,
    host_only_flow: Any,
) -> None:
    name = unique("missing-module")
    storage = Docker(registry_url=docker_registry.url, image_name=name, **docker_kwargs)
    storage.add_flow(host_only_flow)
    with pytest.raises(BackendError) as info:
        storage.build()
    message = str(info.value)
    assert "The Docker image failed to build" in message
    assert "HEALTHCHECK FAILED" in message
    assert "/opt/prefect/flows/needs-a-host-module.prefect" in message
    # The reason, not only that unpickling failed: which module is missing.
    assert f"No module named '{HOST_ONLY_MODULE}'" in message, message
    assert docker_registry.tags(name) == []  # nothing pushed


@pytest.fixture(scope="module")
def ignored_check(
    module_docker_config: None,
    docker_kwargs: dict[str, Any],
    docker_registry: LocalRegistry,
    tmp_path_factory: pytest.TempPathFactory,
) -> Docker:
    """The same flow built with ``ignore_healthchecks=True``."""
    folder = tmp_path_factory.mktemp("ignored-check")
    saved_path = list(sys.path)
    try:
        write_script(folder, f"{HOST_ONLY_MODULE}.py", "def answer():\n    return 42\n")
        flow = load_flows(write_script(folder, "flows.py", NEEDS_HOST_MODULE))
    finally:
        sys.path[:] = saved_path
    storage = Docker(
        registry_url=docker_registry.url,
        image_name=unique("ignored-check"),
        image_tag="v1",
        ignore_healthchecks=True,
        **docker_kwargs,
    )
    storage.add_flow(flow["needs a host module"])
    storage.build()
    return storage


def execute(daemon: DockerDaemon, storage: Docker) -> tuple[int, str]:
    command = ["python", "-m", "prefect_storage.cli", "execute", "--flow", "needs a host module"]
    command += ["--storage", json.dumps(storage.serialize())]
    code, out, err = run_in_image(daemon, storage.image, command)
    return code, out + err


def test_ignore_healthchecks_builds_and_pushes_anyway(
    ignored_check: Docker, docker_registry: LocalRegistry, docker_daemon: DockerDaemon
) -> None:
    assert docker_registry.tags(str(ignored_check.image_name)) == ["v1"]
    code, output = execute(docker_daemon, ignored_check)
    assert code != 0  # the flow still cannot load in the image
    assert "unpickling the flow 'needs a host module'" in output, output


def test_executing_the_unloadable_flow_names_the_missing_module(
    ignored_check: Docker, docker_daemon: DockerDaemon
) -> None:
    code, output = execute(docker_daemon, ignored_check)
    assert code != 0
    assert HOST_ONLY_MODULE in output, output


def test_a_script_that_fails_to_import_fails_the_build(
    module_docker_config: None,
    docker_kwargs: dict[str, Any],
    docker_registry: LocalRegistry,
    tmp_path: Path,
) -> None:
    write_script(tmp_path, f"{HOST_ONLY_MODULE}.py", "def answer():\n    return 42\n")
    script = write_script(tmp_path, "flows.py", NEEDS_HOST_MODULE)
    flows = load_flows(script)
    name = unique("script-missing-module")
    storage = Docker(
        registry_url=docker_registry.url,
        image_name=name,
        stored_as_script=True,
        path="/opt/flows/flows.py",
        local_script_path=str(script),
        **docker_kwargs,
    )
    storage.add_flow(flows["needs a host module"])
    with pytest.raises(BackendError) as info:
        storage.build()
    message = str(info.value)
    assert "HEALTHCHECK FAILED" in message and "/opt/flows/flows.py" in message
    assert f"No module named '{HOST_ONLY_MODULE}'" in message, message
    assert docker_registry.tags(name) == []
