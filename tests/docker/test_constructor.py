"""``Docker(...)`` before any build: the legacy construction rules that still apply (reference
section 2.11), checked without an engine."""

from __future__ import annotations

import copy
import re
import uuid
from pathlib import Path

import pytest

from prefect_storage import Flow, task
from prefect_storage.exceptions import StorageConfigError
from prefect_storage.storage import Docker, Storage


@task
def noop() -> None:
    return None


def make_flow(name: str) -> Flow:
    with Flow(name) as flow:
        noop()
    return flow


def test_base_image_and_dockerfile_together_are_refused(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM scratch\n")
    with pytest.raises(ValueError, match="Only one of `base_image` and `dockerfile`"):
        Docker(base_image="python:3.11-slim", dockerfile=str(dockerfile))


def test_relative_files_keys_are_refused_and_named(tmp_path: Path) -> None:
    absolute = str(tmp_path / "ok.txt")
    with pytest.raises(ValueError) as info:
        Docker(files={absolute: "/ok.txt", "data/b.txt": "/b.txt", "a.txt": "/a.txt"})
    message = str(info.value)
    assert isinstance(info.value, StorageConfigError)
    assert "Provided paths a.txt, data/b.txt are not absolute file paths" in message
    assert absolute not in message


def test_the_callers_lists_and_dicts_are_not_changed(tmp_path: Path) -> None:
    dependencies = ["tomli-w"]
    env_vars = {"A": "b"}
    files = {str(tmp_path / "f.txt"): "/f.txt"}
    build_kwargs = {"rm": False}
    extra = ["RUN echo hi"]
    originals = copy.deepcopy([dependencies, env_vars, files, build_kwargs, extra])
    storage = Docker(
        python_dependencies=dependencies,
        env_vars=env_vars,
        files=files,
        build_kwargs=build_kwargs,
        extra_dockerfile_commands=extra,
    )
    # Prefect 1 appended "wheel" and PREFECT__USER_CONFIG_PATH to the caller's objects.
    assert [dependencies, env_vars, files, build_kwargs, extra] == originals
    # ... and the storage holds copies: changing the caller's objects later changes nothing.
    dependencies.append("later")
    env_vars["LATER"] = "1"
    files["/later"] = "/later"
    build_kwargs["later"] = True
    extra.append("RUN later")
    assert storage.python_dependencies == ["tomli-w"]
    assert storage.env_vars == {"A": "b"}
    assert storage.files == {str(tmp_path / "f.txt"): "/f.txt"}
    assert storage.build_kwargs == {"rm": False}
    assert storage.extra_dockerfile_commands == ["RUN echo hi"]


def test_image_before_build_says_what_is_missing() -> None:
    storage = Docker(registry_url="127.0.0.1:5000")
    with pytest.raises(ValueError, match="missing required fields image_name and image_tag"):
        _ = storage.image
    with pytest.raises(ValueError, match="image_name and image_tag"):
        _ = Docker(image_name="flows").image


def test_image_joins_registry_image_and_tag() -> None:
    assert Docker(image_name="flows", image_tag="v1").image == "flows:v1"
    assert (
        Docker(registry_url="127.0.0.1:5000/team", image_name="flows", image_tag="v1").image
        == "127.0.0.1:5000/team/flows:v1"
    )


def test_name_is_the_legacy_alias_of_image() -> None:
    storage = Docker(registry_url="127.0.0.1:5000/team", image_name="flows", image_tag="v1")
    assert storage.name == storage.image == "127.0.0.1:5000/team/flows:v1"
    with pytest.raises(ValueError, match="image_name and image_tag"):
        _ = Docker().name


def test_repr_before_build_names_the_class() -> None:
    assert repr(Docker()) == "<Storage: Docker>"
    assert repr(Docker(image_name="flows", image_tag="v1")) == "<Storage: Docker>"


def test_default_base_image_is_slim_python_of_this_interpreter(tmp_path: Path) -> None:
    import platform

    major, minor, _ = platform.python_version_tuple()
    assert Docker().base_image == f"python:{major}.{minor}-slim"
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM scratch\n")
    assert Docker(dockerfile=str(dockerfile)).base_image is None


def test_pickle_location_is_under_opt_prefect_flows() -> None:
    storage = Docker()
    assert storage.add_flow(make_flow("My Flow!")) == "/opt/prefect/flows/my-flow.prefect"
    assert storage.flows == {"My Flow!": "/opt/prefect/flows/my-flow.prefect"}
    assert "My Flow!" in storage


def test_script_mode_needs_a_path() -> None:
    storage = Docker(stored_as_script=True)
    with pytest.raises(ValueError, match="A `path` must be provided"):
        storage.add_flow(make_flow("scripted"))
    with_path = Docker(stored_as_script=True, path="/opt/flows/flow.py")
    assert with_path.add_flow(make_flow("a")) == "/opt/flows/flow.py"
    assert with_path.add_flow(make_flow("b")) == "/opt/flows/flow.py"  # one script, two flows


def test_package_wheel_must_be_a_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"`package_wheel`.*is not a file"):
        Docker(package_wheel=str(tmp_path / "missing.whl"))


def test_serialized_payload_round_trips_without_build_options(tmp_path: Path) -> None:
    storage = Docker(
        registry_url="127.0.0.1:5000",
        image_name="flows",
        image_tag="v1",
        base_image="python:3.11-slim",
        env_vars={"A": "b"},
        python_dependencies=["tomli-w"],
        secrets=["TOKEN"],
    )
    storage.add_flow(make_flow("round trip"))
    payload = storage.serialize()
    assert payload["type"] == "Docker"
    assert payload["image_name"] == "flows" and payload["image_tag"] == "v1"
    assert payload["registry_url"] == "127.0.0.1:5000"
    assert payload["flows"] == {"round trip": "/opt/prefect/flows/round-trip.prefect"}
    assert payload["secrets"] == ["TOKEN"]
    # Build-time options stay on the registering machine.
    for field in ("base_image", "env_vars", "python_dependencies", "package_wheel", "base_url"):
        assert field not in payload
    rebuilt = Storage.deserialize(payload)
    assert isinstance(rebuilt, Docker)
    assert rebuilt.image == "127.0.0.1:5000/flows:v1"
    assert rebuilt.serialize() == payload


def test_get_flow_outside_the_image_points_at_the_docker_agent() -> None:
    storage = Docker(image_name="flows", image_tag=f"t{uuid.uuid4().hex[:6]}")
    storage.add_flow(make_flow("elsewhere"))
    payload = Storage.deserialize(storage.serialize())
    with pytest.raises(ValueError) as info:
        payload.get_flow("elsewhere")
    message = str(info.value)
    assert "/opt/prefect/flows/elsewhere.prefect" in message
    assert "agent docker" in message
    assert re.search(r"flows:t[0-9a-f]{6}", message)
