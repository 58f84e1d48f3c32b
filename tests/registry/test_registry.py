"""The flow registry and registration, on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

from prefect_storage.engine.flow import Flow
from prefect_storage.exceptions import (
    BackendUnavailableError,
    FlowRunParameterError,
    FlowStorageError,
    RegistryUnavailableError,
    UnknownFlowError,
)
from prefect_storage.registry import FlowRegistry, RunState
from prefect_storage.storage import Local, Webhook
from tests.servers.postgres import free_port

ADD_FLOW = """
from prefect_storage import Flow, Parameter, task

@task
def add(x, y):
    return x + y

with Flow("{name}") as flow:
    add(Parameter("x", default=1), {constant})
"""

STORAGE = {
    "type": "Local",
    "__version__": "0",
    "directory": "/nowhere",
    "path": None,
    "stored_as_script": False,
    "secrets": [],
    "flows": {"f": "/nowhere/f/1"},
}
SHA_A, SHA_B = "a" * 64, "b" * 64


def files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


# -- versions and identical content -----------------------------------------------------------
def test_versions_increment_per_name(registry: FlowRegistry) -> None:
    first = registry.register_flow("f", storage=STORAGE, sha256=SHA_A)
    second = registry.register_flow("f", storage=STORAGE, sha256=SHA_B)
    other = registry.register_flow("g", storage=STORAGE, sha256=SHA_A)
    third = registry.register_flow("f", storage=STORAGE, sha256=SHA_A)

    assert (first.version, second.version, third.version) == (1, 2, 3)
    assert other.version == 1
    assert all(r.created for r in (first, second, other, third))
    assert len({first.id, second.id, third.id, other.id}) == 4
    assert [(r.name, r.version) for r in registry.list_flows(all_versions=True)] == [
        ("f", 1),
        ("f", 2),
        ("f", 3),
        ("g", 1),
    ]
    assert [(r.name, r.version) for r in registry.list_flows()] == [("f", 3), ("g", 1)]
    assert registry.get_flow("f").version == 3
    assert registry.get_flow("f", version=2).sha256 == SHA_B


def test_identical_content_is_not_a_new_version(registry: FlowRegistry) -> None:
    kwargs = {
        "storage": STORAGE,
        "sha256": SHA_A,
        "labels": ["b", "a"],
        "run_config": {"type": "UniversalRun", "labels": ["a", "b"]},
    }
    first = registry.register_flow("f", **kwargs)
    # Same digest, labels (in another order) and run config, stored at a new location.
    moved = {**STORAGE, "flows": {"f": "/nowhere/f/2"}}
    again = registry.register_flow("f", **{**kwargs, "storage": moved, "labels": ["a", "b"]})

    assert first.created and not again.created
    assert again.id == first.id and again.version == 1
    assert again.storage["flows"] == {"f": "/nowhere/f/1"}  # the record that was kept
    assert len(registry.list_flows(all_versions=True)) == 1

    # Each of digest, labels and run config is part of the content.
    changed = [
        registry.register_flow("f", **{**kwargs, "sha256": SHA_B}),
        registry.register_flow("f", **{**kwargs, "sha256": SHA_B, "labels": ["a"]}),
        registry.register_flow(
            "f", **{**kwargs, "sha256": SHA_B, "labels": ["a"], "run_config": {"env": {}}}
        ),
    ]
    assert [(r.version, r.created) for r in changed] == [(2, True), (3, True), (4, True)]


def test_register_same_flow_twice_makes_one_version(
    registry: FlowRegistry, load_flow: Callable[[str, str], Flow], tmp_path: Path
) -> None:
    flow = load_flow(ADD_FLOW.format(name="adder", constant=2), "adder")
    flow.storage = Local(directory=str(tmp_path / "flows"))

    first = flow.register(registry=registry)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "already contained in storage", as in Prefect 1
        second = flow.register(registry=registry)

    assert first == second
    records = registry.list_flows(all_versions=True)
    assert [(r.name, r.version) for r in records] == [("adder", 1)]
    record = records[0]
    assert record.id == first
    assert record.storage["type"] == "Local"
    assert record.labels == sorted(Local().labels)  # the host name, from Local storage
    assert record.parameters == [{"name": "x", "required": False, "default": 1}]
    assert len(files_under(tmp_path / "flows")) == 1  # one pickle, not two


def test_changed_flow_gets_a_new_version(
    registry: FlowRegistry, load_flow: Callable[[str, str], Flow], tmp_path: Path
) -> None:
    for constant in (2, 3):
        flow = load_flow(ADD_FLOW.format(name="adder", constant=constant), "adder")
        flow.storage = Local(directory=str(tmp_path / "flows"))
        flow.register(registry=registry)
    other = load_flow(ADD_FLOW.format(name="other", constant=1), "other")
    other.storage = Local(directory=str(tmp_path / "flows"))
    other.register(registry=registry)

    versions = [(r.name, r.version) for r in registry.list_flows(all_versions=True)]
    assert versions == [("adder", 1), ("adder", 2), ("other", 1)]
    v1, v2 = (registry.get_flow("adder", version=v) for v in (1, 2))
    assert v1.sha256 != v2.sha256


SAME_FLOW_SCRIPT = """
import sys
from prefect_storage import Flow, task
from prefect_storage.storage import Local

@task
def one():
    return 1

with Flow("same") as flow:
    one()

flow.storage = Local(directory=sys.argv[1])
record_id = flow.register(registry=sys.argv[2])
print(record_id)
"""


def test_same_script_registered_twice_in_fresh_processes_is_one_version(
    registry: FlowRegistry,
    registry_url: str,
    write_script: Callable[[str, str], Path],
    tmp_path: Path,
) -> None:
    """A user running their registration script twice stores identical content twice: the
    pickles differ only by the timestamp key of their location, which is not content."""
    script = write_script("register_same.py", SAME_FLOW_SCRIPT)
    ids = []
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, str(script), str(tmp_path / "flows"), registry_url],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        ids.append(done.stdout.strip().splitlines()[-1])

    versions = [(r.name, r.version) for r in registry.list_flows(all_versions=True)]
    assert versions == [("same", 1)]
    assert ids[0] == ids[1]


# -- failed builds and unreachable registries record nothing -------------------------------------
def test_failed_webhook_build_records_nothing(
    registry: FlowRegistry, load_flow: Callable[[str, str], Flow]
) -> None:
    closed = f"http://127.0.0.1:{free_port()}/flows/adder"
    flow = load_flow(ADD_FLOW.format(name="adder", constant=2), "adder")
    flow.storage = Webhook(
        build_request_kwargs={"url": closed},
        build_request_http_method="PUT",
        get_flow_request_kwargs={"url": closed},
        get_flow_request_http_method="GET",
    )
    with pytest.raises(BackendUnavailableError, match="could not reach"):
        flow.register(registry=registry)
    assert registry.list_flows(all_versions=True) == []


def test_unpicklable_flow_records_nothing(
    registry: FlowRegistry, load_flow: Callable[[str, str], Flow], tmp_path: Path
) -> None:
    source = """
    import threading
    from prefect_storage import Flow, task

    LOCK = threading.Lock()

    @task
    def locked():
        with LOCK:
            return 1

    with Flow("unpicklable") as flow:
        locked()
    """
    flow = load_flow(source, "unpicklable")
    flow.storage = Local(directory=str(tmp_path / "flows"))
    with pytest.raises((FlowStorageError, TypeError)):
        flow.register(registry=registry)
    assert registry.list_flows(all_versions=True) == []
    assert files_under(tmp_path / "flows") == []


def test_unreachable_registry_fails_before_any_upload(
    unreachable_registry_url: str, load_flow: Callable[[str, str], Flow], tmp_path: Path
) -> None:
    flow = load_flow(ADD_FLOW.format(name="adder", constant=2), "adder")
    flow.storage = Local(directory=str(tmp_path / "flows"))
    started = time.monotonic()
    with pytest.raises(RegistryUnavailableError) as raised:
        flow.register(registry=unreachable_registry_url)
    assert time.monotonic() - started < 20
    assert "127.0.0.1" in str(raised.value)
    assert files_under(tmp_path / "flows") == []


def test_unreachable_registry_message_hides_the_password() -> None:
    registry = FlowRegistry(f"postgresql://user:s3cr3t-pw@127.0.0.1:{free_port()}/db")
    with pytest.raises(RegistryUnavailableError) as raised:
        registry.check()
    assert "s3cr3t-pw" not in str(raised.value)
    assert "s3cr3t-pw" not in repr(registry)


def test_default_registry_is_sqlite_in_home(home: Path) -> None:
    registry = FlowRegistry()
    registry.register_flow("f", storage=STORAGE, sha256=SHA_A)
    assert registry.url == f"sqlite:///{home / 'registry.db'}"
    assert (home / "registry.db").is_file()
    assert FlowRegistry().get_flow("f").sha256 == SHA_A


# -- flow runs ----------------------------------------------------------------------------------
def test_flow_run_life_cycle(registry: FlowRegistry) -> None:
    parameters = [
        {"name": "x", "required": True, "default": None},
        {"name": "y", "required": False, "default": 2},
    ]
    registry.register_flow("f", storage=STORAGE, sha256=SHA_A, labels=["a"], parameters=parameters)
    run = registry.create_flow_run("f", parameters={"x": [1, {"k": "v"}]})
    assert run.state == RunState.SCHEDULED
    assert (run.flow_name, run.flow_version, run.labels) == ("f", 1, ["a"])
    assert run.parameters == {"x": [1, {"k": "v"}]}

    assert registry.claim_flow_runs([], agent="nobody") == []
    [claimed] = registry.claim_flow_runs(["a", "z"], agent="agent-1")
    assert (claimed.id, claimed.state, claimed.agent) == (run.id, RunState.CLAIMED, "agent-1")
    assert claimed.claimed_at is not None
    assert registry.claim_flow_runs(["a"], agent="agent-2") == []  # taken already

    registry.set_flow_run_state(run.id, RunState.RUNNING)
    registry.add_logs(
        run.id,
        [
            {"timestamp": run.created_at, "level": "INFO", "logger": "t", "message": "one"},
            {"timestamp": run.created_at, "level": "ERROR", "logger": "t", "message": "two"},
        ],
    )
    registry.set_flow_run_state(
        run.id, RunState.SUCCESS, message="done", task_states={"t": {"state": "Success"}}
    )
    final = registry.get_flow_run(run.id)
    assert (final.state, final.message) == (RunState.SUCCESS, "done")
    assert final.task_states == {"t": {"state": "Success"}}
    assert final.started_at is not None and final.finished_at is not None
    logs = registry.get_logs(run.id)
    assert [(e["level"], e["message"]) for e in logs] == [("INFO", "one"), ("ERROR", "two")]
    assert [e["message"] for e in registry.get_logs(run.id, after_id=logs[0]["id"])] == ["two"]
    assert [r.id for r in registry.list_flow_runs("f")] == [run.id]
    assert registry.list_flow_runs("other") == []


def test_flow_run_bad_input_records_nothing(registry: FlowRegistry) -> None:
    registry.register_flow(
        "f",
        storage=STORAGE,
        sha256=SHA_A,
        parameters=[{"name": "x", "required": True, "default": None}],
    )
    with pytest.raises(UnknownFlowError, match="No flow named 'nope'"):
        registry.create_flow_run("nope")
    with pytest.raises(UnknownFlowError, match="no version 7; registered versions: 1"):
        registry.create_flow_run("f", {"x": 1}, version=7)
    with pytest.raises(FlowRunParameterError, match="no parameter 'z'"):
        registry.create_flow_run("f", {"x": 1, "z": 2})
    with pytest.raises(FlowRunParameterError, match="needs parameter 'x'"):
        registry.create_flow_run("f", {})
    with pytest.raises(UnknownFlowError):
        registry.get_flow_run("no-such-run")
    assert registry.list_flow_runs() == []
