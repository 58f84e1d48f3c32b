"""Re-registering identical content re-uses the earlier upload only while it is intact, and
``prefect-storage register`` of several flows records all of them or none."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from prefect_storage.engine.flow import Flow
from prefect_storage.loading import flows_in_script
from prefect_storage.registry import FlowRecord, FlowRegistry, RunState
from prefect_storage.registry.registration import register_flow
from prefect_storage.storage import S3, Local, Storage
from tests.registry.conftest import CLI
from tests.servers.s3 import MotoServer

ADDER = """
from prefect_storage import Flow, Parameter, task

@task
def add_two(x):
    return x + 2

with Flow("{name}") as flow:
    add_two(Parameter("x", default=1))
"""


@pytest.fixture
def load_adder(
    write_script: Callable[[str, str], Path], load_flow: Callable[[str, str], Flow]
) -> Callable[[str], Flow]:
    """Load the adder flow named so, always from the same script file (the file's path is in
    the pickled functions, so identical content needs the same file)."""

    def load(name: str) -> Flow:
        path = write_script(f"{name}.py", ADDER.format(name=name))
        return flows_in_script(path.read_bytes(), str(path))[name]

    return load  # load_flow's teardown restores sys.path


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def one_line_error(done: Any) -> str:
    """The CLI failed with exactly one ``Error: ...`` line on stderr; return it."""
    assert done.returncode == 1, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), done.stderr
    return str(lines[0])


def run_with_an_agent(cli: CLI, registry: FlowRegistry, name: str) -> None:
    """A flow run of ``name``, executed by ``agent local --once``, succeeds."""
    run = registry.create_flow_run(name, parameters={"x": 40})
    done = cli("agent", "local", "--once")
    assert done.returncode == 0, done.stderr[-2000:]
    finished = registry.get_flow_run(run.id)
    assert finished.state == RunState.SUCCESS, (finished.message, done.stderr[-2000:])
    assert finished.task_states is not None
    assert {s["task"]: s["result"] for s in finished.task_states.values()}["add_two"] == "42"


def check_loads(record: FlowRecord) -> None:
    """The recorded storage loads the flow, verifying the recorded digest, and it runs."""
    flow = Storage.deserialize(record.storage).get_flow(record.name, expected_sha256=record.sha256)
    state = flow.run(parameters={"x": 1})
    [add_two] = flow.get_tasks(name="add_two")
    assert state.is_successful() and state.result[add_two].result == 3


# -- re-registering identical content ----------------------------------------------------------
@pytest.mark.parametrize("damage", ["delete", "truncate"])
def test_reregistering_repairs_a_deleted_or_truncated_local_flow(
    registry: FlowRegistry,
    load_adder: Callable[[str], Flow],
    tmp_path: Path,
    cli: CLI,
    damage: str,
) -> None:
    flows_dir = tmp_path / "flows"

    def register() -> FlowRecord:
        flow = load_adder("repaired")
        flow.storage = Local(directory=str(flows_dir))
        record = register_flow(flow, registry=registry)
        assert record is not None
        return record

    first = register()
    location = Path(first.storage["flows"]["repaired"])
    # The control: an intact earlier upload is re-used and the fresh copy removed.
    same = register()
    assert (same.created, same.version) == (False, 1)
    assert files_under(flows_dir) == [location]

    if damage == "delete":
        location.unlink()
    else:
        location.write_bytes(location.read_bytes()[:-10])

    repaired = register()  # as the error for a broken stored flow advises
    assert (repaired.created, repaired.version) == (True, 2)
    assert repaired.sha256 == first.sha256  # the same content, stored afresh
    new_location = Path(repaired.storage["flows"]["repaired"])
    assert new_location != location and new_location.is_file()
    assert registry.get_flow("repaired").version == 2
    check_loads(repaired)
    run_with_an_agent(cli, registry, "repaired")

    # Now intact again: the next identical registration re-uses version 2.
    again = register()
    assert (again.created, again.version) == (False, 2)


@pytest.mark.parametrize("damage", ["delete", "truncate"])
def test_reregistering_repairs_a_deleted_or_truncated_s3_flow(
    registry: FlowRegistry,
    load_adder: Callable[[str], Flow],
    s3: MotoServer,
    cli: CLI,
    damage: str,
) -> None:
    bucket = s3.new_bucket()
    client = s3.client()

    def register() -> FlowRecord:
        flow = load_adder("repaired-s3")
        flow.storage = S3(bucket, client_options={"endpoint_url": s3.endpoint_url})
        record = register_flow(flow, registry=registry)
        assert record is not None
        return record

    def keys() -> list[str]:
        return sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", []))

    first = register()
    key = first.storage["flows"]["repaired-s3"]
    assert (register().created, keys()) == (False, [key])

    if damage == "delete":
        client.delete_object(Bucket=bucket, Key=key)
    else:
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        client.put_object(Bucket=bucket, Key=key, Body=body[: len(body) // 2])

    repaired = register()
    assert (repaired.created, repaired.version, repaired.sha256) == (True, 2, first.sha256)
    new_key = repaired.storage["flows"]["repaired-s3"]
    assert new_key != key and new_key in keys()
    check_loads(repaired)
    run_with_an_agent(cli, registry, "repaired-s3")


# -- prefect-storage register: all or none ------------------------------------------------------
TWO_FLOWS_SECOND_FAILS = """
import os
from prefect_storage import Flow, task
from prefect_storage.storage import Local

@task
def one():
    return 1

with Flow("first") as first:
    one()
first.storage = Local(directory=os.environ["TEST_FLOWS_DIR"])

with Flow("second") as second:
    one()
# A path below a regular file cannot be written: storing this flow fails.
second.storage = Local(path=os.path.join(os.environ["TEST_A_FILE"], "second.prefect"))
"""


def test_register_records_nothing_when_a_later_flow_fails_to_store(
    cli: CLI, registry: FlowRegistry, write_script: Callable[[str, str], Path], tmp_path: Path
) -> None:
    script = write_script("second_fails.py", TWO_FLOWS_SECOND_FAILS)
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    flows_dir = tmp_path / "flows"
    env = {"TEST_FLOWS_DIR": str(flows_dir), "TEST_A_FILE": str(a_file)}

    done = cli("register", str(script), **env)

    error = one_line_error(done)
    assert "Nothing was registered: storing flow 'second' failed" in error
    assert "removed what was stored for 'first'" in error
    assert "Cannot write flow file" in error
    assert registry.list_flows(all_versions=True) == []
    assert files_under(flows_dir) == []  # the first flow's pickle was removed again


TWO_S3_FLOWS = """
import os
from prefect_storage import Flow, task
from prefect_storage.storage import S3

@task
def one():
    return 1

options = {"endpoint_url": os.environ["TEST_S3_ENDPOINT"]}
with Flow("first") as first:
    one()
first.storage = S3(os.environ["TEST_BUCKET"], client_options=options)

with Flow("second") as second:
    one()
second.storage = S3("no-such-bucket-here", client_options=options)
"""


def test_register_removes_the_s3_uploads_when_a_flow_points_at_a_missing_bucket(
    cli: CLI, registry: FlowRegistry, write_script: Callable[[str, str], Path], s3: MotoServer
) -> None:
    bucket = s3.new_bucket()
    script = write_script("missing_bucket.py", TWO_S3_FLOWS)
    env = {"TEST_S3_ENDPOINT": s3.endpoint_url, "TEST_BUCKET": bucket}

    error = one_line_error(cli("register", str(script), **env))

    assert "Nothing was registered: storing flow 'second' failed" in error
    assert "no-such-bucket-here" in error
    assert registry.list_flows(all_versions=True) == []
    assert s3.client().list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0


TWO_LOCAL_FLOWS = """
import os
from prefect_storage import Flow, task
from prefect_storage.storage import Local

@task
def one():
    return 1

with Flow("first") as first:
    one()
first.storage = Local(directory=os.environ["TEST_FLOWS_DIR"])

with Flow("second") as second:
    one()
second.storage = Local(directory=os.environ["TEST_FLOWS_DIR"])
"""


def test_a_registry_failing_part_way_names_what_was_and_was_not_registered(
    cli: CLI, write_script: Callable[[str, str], Path], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'partial' / 'registry.db'}"
    registry = FlowRegistry(url)
    registry.check()
    with sqlite3.connect(tmp_path / "partial" / "registry.db") as connection:
        # The database itself refuses the second flow (as a full disk or a quota would).
        connection.execute(
            "CREATE TRIGGER refuse_second BEFORE INSERT ON flows WHEN NEW.name = 'second' "
            "BEGIN SELECT RAISE(ABORT, 'quota exceeded'); END"
        )
    script = write_script("two_local.py", TWO_LOCAL_FLOWS)
    flows_dir = tmp_path / "flows"

    done = cli(
        "register", str(script), PREFECT_STORAGE_REGISTRY_URL=url, TEST_FLOWS_DIR=str(flows_dir)
    )

    error = one_line_error(done)
    assert "Registered 'first'; NOT registered 'second': recording 'second' failed" in error
    assert [(r.name, r.version) for r in registry.list_flows(all_versions=True)] == [("first", 1)]
    registry.engine.dispose()


EXITS = """
import sys
from prefect_storage import Flow

with Flow("never") as flow:
    pass
sys.exit(3)
"""


def test_register_of_a_script_calling_sys_exit_is_a_one_line_error(
    cli: CLI, registry: FlowRegistry, write_script: Callable[[str, str], Path]
) -> None:
    script = write_script("exits.py", EXITS)
    error = one_line_error(cli("register", str(script)))
    assert f"The flow script {script} called sys.exit(3) while being loaded" in error
    assert registry.list_flows(all_versions=True) == []


def test_register_help_says_all_or_none(cli: CLI) -> None:
    done = cli("register", "--help")
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    assert "All or none" in text and "nothing is recorded" in text
