"""S3Result, GCSResult and AzureResult against the real servers: write, read, exists,
location templates, a flow run checkpointing through the storage's paired result, and an
AzureResult that never pickles a connection string value."""

from __future__ import annotations

import pickle
import re
from collections.abc import Callable
from typing import Any

import cloudpickle
import pytest

from prefect_storage import Flow, task
from prefect_storage.exceptions import BackendAuthError, FlowNotFoundError
from prefect_storage.results import AzureResult
from prefect_storage.storage import Storage
from tests.backends.conftest import Kit
from tests.contract.rigs import FLOW_NAME
from tests.servers.azurite import ACCOUNT_KEY

ScriptFlow = Callable[[str], Flow]


def test_write_read_exists_with_a_location_template(kit: Kit) -> None:
    result = kit.result(location="{flow_name}/{task_name}/{today}.bin")
    values = {"flow_name": "etl", "task_name": "extract", "today": "2026-01-02"}

    written = result.write({"rows": [1, 2, 3]}, **values)

    assert written.location == "etl/extract/2026-01-02.bin"
    assert written.value == {"rows": [1, 2, 3]}
    assert kit.names() == ["etl/extract/2026-01-02.bin"]
    assert result.exists("{flow_name}/{task_name}/{today}.bin", **values)
    assert not result.exists("{flow_name}/{task_name}/other.bin", **values)
    assert result.read("etl/extract/2026-01-02.bin").value == {"rows": [1, 2, 3]}
    assert pickle.loads(kit.read("etl/extract/2026-01-02.bin")) == {"rows": [1, 2, 3]}


def test_default_location_and_overwriting(kit: Kit) -> None:
    result = kit.result()
    first = result.write("one")
    assert first.location is not None
    assert re.fullmatch(r"\d{4}/\d{1,2}/\d{1,2}/[0-9a-f-]{36}\.prefect_result", first.location)

    fixed = kit.result(location="same.bin")
    fixed.write("old")
    fixed.write("new")  # a result location is rewritten, whatever the backend's defaults
    assert fixed.read("same.bin").value == "new"


def test_reading_a_missing_result_is_not_found(kit: Kit) -> None:
    with pytest.raises(FlowNotFoundError):
        kit.result().read("no/such/result.bin")


def test_a_flow_run_checkpoints_through_the_paired_result(
    kit: Kit, script_flow: ScriptFlow
) -> None:
    storage = kit.storage()
    flow = script_flow(FLOW_NAME)
    flow.storage = storage
    flow.result = storage.result  # what register() does for a flow without a result
    storage.add_flow(flow)
    storage.build()

    loaded = Storage.deserialize(storage.serialize()).get_flow(FLOW_NAME)
    state = loaded.run(parameters={"x": 4})

    assert state.is_successful()
    locations = {
        t.name: s.location for t, s in state.result.items() if getattr(s, "location", None)
    }
    assert set(locations) == {"double", "add_one"}  # parameters are not checkpointed
    stored = set(kit.names()) - set(storage.flows.values())
    assert stored == set(locations.values())
    assert pickle.loads(kit.read(locations["double"])) == 8
    assert pickle.loads(kit.read(locations["add_one"])) == 9


def test_a_task_target_in_the_bucket_is_read_instead_of_run(kit: Kit) -> None:
    calls: list[int] = []

    @task(target="{flow_name}/{task_name}.bin", checkpoint=True)
    def expensive() -> int:
        calls.append(1)
        return 42

    with Flow("targets", result=kit.result()) as flow:
        expensive()

    for _ in range(2):
        state = flow.run()
        assert state.is_successful()
        assert [s.result for s in state.result.values()] == [42]
    assert calls == [1]
    assert kit.names() == ["targets/expensive.bin"]


# -- AzureResult and connection strings ---------------------------------------------------------
def _azure_result_with_literal(azure_kit: Kit, monkeypatch: pytest.MonkeyPatch) -> AzureResult:
    """An AzureResult given the connection string itself (no env variable, no secret)."""
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING")
    return AzureResult(azure_kit.bucket, connection_string=azure_kit.server.connection_string)


def test_azure_result_never_pickles_the_connection_string(
    azure_kit: Kit, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _azure_result_with_literal(azure_kit, monkeypatch)
    written = result.write("value")
    assert result.read(str(written.location)).value == "value"  # the literal string works

    with Flow("carries-a-result", result=result) as flow:
        pass
    blobs: dict[str, bytes] = {
        "pickle of the result": pickle.dumps(result),
        "cloudpickle of the result": cloudpickle.dumps(result),
        "pickle of a written copy": pickle.dumps(written),
        "cloudpickle of a flow with the result": cloudpickle.dumps(flow),
    }
    for label, data in blobs.items():
        assert ACCOUNT_KEY.encode() not in data, label
        assert b"AccountKey" not in data, label
        assert azure_kit.server.connection_string.encode() not in data, label

    unpickled = pickle.loads(pickle.dumps(result))
    assert unpickled.container == azure_kit.bucket
    assert unpickled.connection_string_secret is None
    with pytest.raises(BackendAuthError, match="AZURE_STORAGE_CONNECTION_STRING"):
        unpickled.read(str(written.location))  # elsewhere it looks the string up by name


def test_azure_result_keeps_its_literal_connection_string_in_copies(
    azure_kit: Kit, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Within the process that was given the string, copies (the runner copies a result for
    task targets; ``format``/``from_value`` copy too) still reach the container."""
    result = _azure_result_with_literal(azure_kit, monkeypatch)

    copy = result.copy()
    copy.location = "copied.bin"
    copy.write("via a copy")

    assert result.read("copied.bin").value == "via a copy"


def test_azure_result_with_a_target_and_a_literal_connection_string(
    azure_kit: Kit, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _azure_result_with_literal(azure_kit, monkeypatch)

    @task(target="{task_name}.bin", checkpoint=True)
    def compute() -> dict[str, Any]:
        return {"answer": 42}

    with Flow("azure-target", result=result) as flow:
        compute()

    state = flow.run()
    assert state.is_successful(), state
    assert azure_kit.names() == ["compute.bin"]
