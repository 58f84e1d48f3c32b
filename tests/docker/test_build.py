"""``Docker`` storage built by a real engine and pushed to a local registry; the flows then run
inside containers of the image (``python -m prefect_storage.cli execute --flow NAME``).

One image per build configuration, built once per module and shared by the tests that look
at it."""

from __future__ import annotations

import copy
import json
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from prefect_storage.exceptions import BackendError, StorageConfigError
from prefect_storage.keys import slugify
from prefect_storage.storage import Docker, Storage
from tests.docker.conftest import load_flows, run_in_image, unique, write_script
from tests.servers.docker import DockerDaemon, LocalRegistry

pytestmark = [pytest.mark.docker, pytest.mark.slow]

TIMESTAMP_TAG = re.compile(r"^\d{4}-\d{2}-\d{2}t\d{2}-\d{2}-\d{2}-\d{6}-00-00$")
DOCKER_TAG = re.compile(r"^[\w][\w.-]{0,127}$")

EVERYTHING_FLOW = """
import importlib.metadata
import os

from prefect_storage import Flow, task


@task
def numbers():
    with open("/opt/data/numbers.txt") as file:
        return [int(word) for word in file.read().split()]


@task
def total(values):
    return sum(values)


@task
def from_folder():
    with open("/opt/data-folder/nested/note.txt") as file:
        return file.read().strip()


@task
def environment():
    names = ("GREETING", "QUOTED", "NUMBER", "WINDOWS_PATH", "PRICE")
    return {name: os.environ.get(name) for name in names}


@task
def dependency():
    import tomli_w  # installed by python_dependencies, not on the host

    return importlib.metadata.version("tomli-w"), tomli_w.dumps({"a": 1}).strip()


@task
def extra():
    with open("/opt/extra.txt") as file:
        return file.read().strip()


with Flow("Docker Everything") as flow:
    total(numbers())
    from_folder()
    environment()
    dependency()
    extra()
"""

ENV_VARS: dict[str, Any] = {
    "GREETING": "hello docker",
    "QUOTED": "say \"hi\" and 'bye'",
    "NUMBER": 7,
    "WINDOWS_PATH": "C:\\temp\\new",
}
DOLLAR_VALUE = "costs $5, not ${HOME} or $$"


@dataclass
class Built:
    storage: Docker
    payload: dict[str, Any]
    caller_objects: list[Any]
    caller_copies: list[Any]


def execute_in_image(
    daemon: DockerDaemon, payload: dict[str, Any], flow_name: str, sha256: str | None = None
) -> tuple[int, dict[str, Any] | None, str]:
    """Run ``execute --flow NAME --storage PAYLOAD --json`` in a container of the storage's
    image without network; returns (exit code, the JSON it printed or None, all output)."""
    storage = Storage.deserialize(payload)
    command = ["python", "-m", "prefect_storage.cli", "execute", "--flow", flow_name]
    command += ["--storage", json.dumps(payload), "--json"]
    if sha256:
        command += ["--sha256", sha256]
    code, out, err = run_in_image(daemon, storage.image, command)
    try:
        result = json.loads(out)
    except ValueError:
        result = None
    return code, result, out + err


# -- pickle mode: files, env_vars, python_dependencies, extra commands, push -----------------------
@pytest.fixture(scope="module")
def everything(
    module_docker_config: None,
    docker_kwargs: dict[str, Any],
    docker_registry: LocalRegistry,
    tmp_path_factory: pytest.TempPathFactory,
) -> Built:
    folder = tmp_path_factory.mktemp("everything")
    (folder / "numbers.txt").write_text("1 2 3 4\n")
    (folder / "data-folder" / "nested").mkdir(parents=True)
    (folder / "data-folder" / "nested" / "note.txt").write_text("from a folder\n")
    flow = load_flows(write_script(folder, "flows.py", EVERYTHING_FLOW))["Docker Everything"]
    dependencies = ["tomli-w>=1.0,<2"]
    env_vars = {**ENV_VARS, "PRICE": DOLLAR_VALUE}
    files = {
        str(folder / "numbers.txt"): "/opt/data/numbers.txt",
        str(folder / "data-folder"): "/opt/data-folder",
    }
    extra = ["RUN echo extra-step-ran > /opt/extra.txt"]
    build_kwargs: dict[str, Any] = {"forcerm": True}
    caller_objects = [dependencies, env_vars, files, extra, build_kwargs]
    caller_copies = copy.deepcopy(caller_objects)
    storage = Docker(
        registry_url=docker_registry.url,
        python_dependencies=dependencies,
        env_vars=env_vars,
        files=files,
        extra_dockerfile_commands=extra,
        build_kwargs=build_kwargs,
        **docker_kwargs,
    )
    storage.add_flow(flow)
    assert storage.build() is storage
    return Built(storage, storage.serialize(), caller_objects, caller_copies)


def test_image_is_pushed_to_the_registry(
    everything: Built, docker_registry: LocalRegistry, docker_daemon: DockerDaemon
) -> None:
    storage = everything.storage
    assert storage.image_name == slugify("Docker Everything") == "docker-everything"
    assert TIMESTAMP_TAG.match(storage.image_tag or ""), storage.image_tag
    assert DOCKER_TAG.match(storage.image_tag or "")
    assert storage.image == f"{docker_registry.url}/docker-everything:{storage.image_tag}"
    assert storage.image_tag in docker_registry.tags("docker-everything")
    client = docker_daemon.client()
    try:
        assert storage.image in client.images.get(storage.image).tags
    finally:
        client.close()


def test_build_leaves_the_callers_objects_alone(everything: Built) -> None:
    assert everything.caller_objects == everything.caller_copies


def test_payload_round_trips_and_names_the_image(everything: Built) -> None:
    payload = everything.payload
    assert json.loads(json.dumps(payload)) == payload
    assert payload["type"] == "Docker"
    assert payload["flows"] == {"Docker Everything": "/opt/prefect/flows/docker-everything.prefect"}
    rebuilt = Storage.deserialize(payload)
    assert isinstance(rebuilt, Docker)
    assert rebuilt.image == everything.storage.image
    assert rebuilt.serialize() == payload


@pytest.fixture(scope="module")
def everything_run(everything: Built, docker_daemon: DockerDaemon) -> dict[str, Any]:
    code, result, output = execute_in_image(
        docker_daemon,
        everything.payload,
        "Docker Everything",
        sha256=everything.storage.digests["Docker Everything"],
    )
    assert code == 0 and result is not None, output
    return result


def test_the_flow_runs_inside_the_image(everything_run: dict[str, Any]) -> None:
    assert everything_run["flow"] == "Docker Everything"
    assert everything_run["state"] == "Success", everything_run
    assert everything_run["tasks"]["numbers"]["result"] == [1, 2, 3, 4]
    assert everything_run["tasks"]["total"]["result"] == 10


def test_files_are_in_the_image(everything_run: dict[str, Any]) -> None:
    assert everything_run["tasks"]["numbers"]["result"] == [1, 2, 3, 4]  # a file
    assert everything_run["tasks"]["from_folder"]["result"] == "from a folder"  # a folder


def test_env_vars_are_set_in_the_container(everything_run: dict[str, Any]) -> None:
    seen = everything_run["tasks"]["environment"]["result"]
    assert {name: seen[name] for name in ENV_VARS} == {k: str(v) for k, v in ENV_VARS.items()}


def test_env_var_values_are_kept_literally(everything_run: dict[str, Any]) -> None:
    # A value is data, not a Dockerfile expression: "$5" and "${HOME}" must not be expanded.
    seen = everything_run["tasks"]["environment"]["result"]
    assert seen["PRICE"] == DOLLAR_VALUE


def test_python_dependencies_are_installed(everything_run: dict[str, Any]) -> None:
    version, dumped = everything_run["tasks"]["dependency"]["result"]
    assert version.startswith("1.") and dumped == "a = 1"


def test_extra_dockerfile_commands_run(everything_run: dict[str, Any]) -> None:
    assert everything_run["tasks"]["extra"]["result"] == "extra-step-ran"


def test_a_changed_digest_is_refused_inside_the_image(
    everything: Built, docker_daemon: DockerDaemon
) -> None:
    code, _, output = execute_in_image(
        docker_daemon, everything.payload, "Docker Everything", sha256="0" * 64
    )
    assert code != 0
    assert "Digest mismatch" in output and "Docker Everything" in output


# -- script mode ---------------------------------------------------------------------------------
SCRIPT_FLOWS = """
from prefect_storage import Flow, task


@task
def where():
    return __file__


@task
def shout(word):
    return word.upper()


with Flow("scripted one") as one:
    where()

with Flow("scripted two") as two:
    shout("{word}")
"""


def test_script_mode_ships_local_script_path(
    module_docker_config: None,
    docker_kwargs: dict[str, Any],
    docker_registry: LocalRegistry,
    docker_daemon: DockerDaemon,
    tmp_path: Path,
) -> None:
    script = write_script(tmp_path, "flows.py", SCRIPT_FLOWS.format(word="local script"))
    flows = load_flows(script)
    name = unique("script-local")
    storage = Docker(
        registry_url=docker_registry.url,
        image_name=name,
        image_tag="v1",
        stored_as_script=True,
        path="/opt/scripts/flows.py",
        local_script_path=str(script),
        **docker_kwargs,
    )
    for flow in flows.values():
        storage.add_flow(flow)
    storage.build()
    assert storage.image == f"{docker_registry.url}/{name}:v1"
    assert docker_registry.tags(name) == ["v1"]
    payload = storage.serialize()
    assert payload["stored_as_script"] is True and payload["path"] == "/opt/scripts/flows.py"
    digest = storage.digests["scripted two"]
    code, result, output = execute_in_image(docker_daemon, payload, "scripted two", digest)
    assert code == 0 and result is not None, output
    assert result["tasks"]["shout"]["result"] == "LOCAL SCRIPT"
    code, result, output = execute_in_image(docker_daemon, payload, "scripted one", digest)
    assert code == 0 and result is not None, output
    assert result["tasks"]["where"]["result"] == "/opt/scripts/flows.py"


def test_script_mode_ships_the_script_with_files_and_several_flows_get_a_uuid_name(
    module_docker_config: None,
    docker_kwargs: dict[str, Any],
    docker_registry: LocalRegistry,
    docker_daemon: DockerDaemon,
    tmp_path: Path,
) -> None:
    script = write_script(tmp_path, "flows.py", SCRIPT_FLOWS.format(word="from files"))
    flows = load_flows(script)
    storage = Docker(
        registry_url=docker_registry.url,
        stored_as_script=True,
        path="/opt/shipped/flows.py",
        files={str(script): "/opt/shipped/flows.py"},
        **docker_kwargs,
    )
    for flow in flows.values():
        storage.add_flow(flow)
    storage.build()
    # Several flows: the image is named by a fresh uuid (reference 2.11, build step 1).
    assert re.fullmatch(
        r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", str(storage.image_name)
    )
    assert docker_registry.tags(str(storage.image_name)) == [storage.image_tag]
    payload = storage.serialize()
    digest = storage.digests["scripted two"]
    assert digest is not None  # hashed from the shipped file on this machine
    code, result, output = execute_in_image(docker_daemon, payload, "scripted two", digest)
    assert code == 0 and result is not None, output
    assert result["tasks"]["shout"]["result"] == "FROM FILES"


def test_two_files_with_one_basename_are_refused(
    docker_kwargs: dict[str, Any], docker_registry: LocalRegistry, tmp_path: Path
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "data.txt").write_text("a")
    (tmp_path / "b" / "data.txt").write_text("b")
    flow = load_flows(write_script(tmp_path, "flows.py", SCRIPT_FLOWS.format(word="x")))
    name = unique("same-basename")
    storage = Docker(
        registry_url=docker_registry.url,
        image_name=name,
        files={str(tmp_path / "a" / "data.txt"): "/a.txt", str(tmp_path / "b" / "data.txt"): "/b"},
        **docker_kwargs,
    )
    storage.add_flow(flow["scripted one"])
    with pytest.raises(StorageConfigError, match=r"share the name 'data\.txt'"):
        storage.build()
    assert docker_registry.tags(name) == []


# -- a user's Dockerfile -------------------------------------------------------------------------
USER_DOCKERFILE_FLOW = """
from prefect_storage import Flow, task


@task
def read(paths):
    texts = []
    for path in paths:
        with open(path) as file:
            texts.append(file.read().strip())
    return texts


with Flow("own dockerfile") as flow:
    read(["/opt/user-step.txt", "/opt/user-copied.txt", "/opt/data.txt"])
"""


def test_a_users_dockerfile_starts_the_image(
    module_docker_config: None,
    docker_kwargs: dict[str, Any],
    docker_registry: LocalRegistry,
    docker_daemon: DockerDaemon,
    tmp_path: Path,
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "copied.txt").write_text("copied by the user's Dockerfile\n")
    (project / "Dockerfile").write_text(
        f"FROM {docker_kwargs['base_image']}\n"
        "RUN echo from-the-users-dockerfile > /opt/user-step.txt\n"
        "COPY copied.txt /opt/user-copied.txt\n"
    )
    data = tmp_path / "data.txt"
    data.write_text("shipped with files\n")
    flow = load_flows(write_script(tmp_path, "flows.py", USER_DOCKERFILE_FLOW))["own dockerfile"]
    kwargs = {k: v for k, v in docker_kwargs.items() if k != "base_image"}
    storage = Docker(
        registry_url=docker_registry.url,
        dockerfile=str(project / "Dockerfile"),
        files={str(data): "/opt/data.txt"},
        **kwargs,
    )
    storage.add_flow(flow)
    storage.build()
    assert docker_registry.tags("own-dockerfile") == [storage.image_tag]
    # The build context was the Dockerfile's folder; the temporary folder is gone again.
    assert sorted(p.name for p in project.iterdir()) == ["Dockerfile", "copied.txt"]
    code, result, output = execute_in_image(docker_daemon, storage.serialize(), "own dockerfile")
    assert code == 0 and result is not None, output
    assert result["tasks"]["read"]["result"] == [
        "from-the-users-dockerfile",
        "copied by the user's Dockerfile",
        "shipped with files",
    ]


def test_no_registry_url_builds_locally_and_warns_instead_of_pushing(
    module_docker_config: None,
    docker_kwargs: dict[str, Any],
    docker_daemon: DockerDaemon,
    tmp_path: Path,
) -> None:
    flow = load_flows(write_script(tmp_path, "flows.py", SCRIPT_FLOWS.format(word="local")))
    name = unique("local-only")
    storage = Docker(image_name=name, image_tag="v1", **docker_kwargs)
    storage.add_flow(flow["scripted two"])
    with pytest.warns(UserWarning, match="has no `registry_url`, and will not be pushed"):
        storage.build()
    assert storage.image == f"{name}:v1"
    code, result, output = execute_in_image(docker_daemon, storage.serialize(), "scripted two")
    assert code == 0 and result is not None, output
    assert result["tasks"]["shout"]["result"] == "LOCAL"


def test_a_push_to_an_unreachable_registry_fails_the_build(
    module_docker_config: None, docker_kwargs: dict[str, Any], tmp_path: Path
) -> None:
    with socket.socket() as probe:  # a loopback port where nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    flow = load_flows(write_script(tmp_path, "flows.py", SCRIPT_FLOWS.format(word="x")))
    storage = Docker(registry_url=f"127.0.0.1:{port}", image_name="nowhere", **docker_kwargs)
    storage.add_flow(flow["scripted two"])
    with pytest.raises(BackendError) as info:
        storage.build()
    message = str(info.value)
    assert message.startswith(f"Pushing 127.0.0.1:{port}/nowhere:{storage.image_tag} failed:")
    assert "connection refused" in message.lower(), message


def test_a_base_image_the_registry_lacks_fails_the_build_naming_it(
    module_docker_config: None,
    docker_kwargs: dict[str, Any],
    docker_registry: LocalRegistry,
    tmp_path: Path,
) -> None:
    # The engine answers the pull with an HTTP error: a typed error, not the SDK's APIError.
    import docker.errors

    missing = f"{docker_registry.url}/{unique('no-such-base')}:1"
    flow = load_flows(write_script(tmp_path, "flows.py", SCRIPT_FLOWS.format(word="x")))
    storage = Docker(**{**docker_kwargs, "base_image": missing, "local_image": False})
    storage.add_flow(flow["scripted two"])
    with pytest.raises(BackendError) as info:
        storage.build(push=False)
    assert str(info.value).startswith(f"Pulling {missing}: "), info.value
    assert isinstance(info.value.__cause__, docker.errors.APIError)
