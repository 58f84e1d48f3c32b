"""S3, GCS and Azure storage against their real servers: what only object stores do.

Fixed keys, script mode with and without an upload, missing buckets and objects, an endpoint
where nothing listens, Azure's ``overwrite``, and serialization of every field. The shared
contract (``tests/contract``) covers what every storage does.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from prefect_storage.engine.flow import Flow
from prefect_storage.envelope import ENVELOPE_MAGIC
from prefect_storage.exceptions import (
    BackendUnavailableError,
    BucketNotFoundError,
    FlowNotFoundError,
    StorageConfigError,
)
from prefect_storage.storage import GCS, S3, Azure, Storage
from tests.backends.conftest import Kit, settle
from tests.contract.rigs import FLOW_NAME, FLOW_SCRIPT, RUNS, SIBLING_NAME
from tests.servers.s3 import free_port

ScriptFlow = Callable[[str], Flow]


def check_runs(flow: Flow, name: str) -> None:
    assert flow.name == name
    for run in RUNS[name]:
        state = flow.run(parameters=run.parameters)
        assert state.is_successful(), state
        [task] = flow.get_tasks(name=run.result_task)
        assert state.result[task].result == run.expected


# -- fixed keys ---------------------------------------------------------------------------------
def test_a_fixed_key_is_where_the_flow_is_stored(kit: Kit, script_flow: ScriptFlow) -> None:
    storage = kit.storage(**kit.fixed("team/flows/contract.flow"))
    assert storage.add_flow(script_flow(FLOW_NAME)) == "team/flows/contract.flow"
    storage.build()

    assert kit.names() == ["team/flows/contract.flow"]
    assert kit.read("team/flows/contract.flow").startswith(ENVELOPE_MAGIC)  # the envelope
    check_runs(storage.get_flow(FLOW_NAME), FLOW_NAME)


def test_two_flows_on_one_fixed_key_are_refused_at_add_flow(
    kit: Kit, script_flow: ScriptFlow
) -> None:
    storage = kit.storage(**kit.fixed("one.flow"))
    storage.add_flow(script_flow(FLOW_NAME))

    with pytest.raises(StorageConfigError) as caught:
        storage.add_flow(script_flow(SIBLING_NAME))

    message = str(caught.value)
    assert FLOW_NAME in message and SIBLING_NAME in message and "one.flow" in message
    assert list(storage.flows) == [FLOW_NAME]
    storage.build()
    check_runs(storage.get_flow(FLOW_NAME), FLOW_NAME)  # the first flow was not overwritten


def test_default_keys_are_per_flow_and_timestamped(kit: Kit, script_flow: ScriptFlow) -> None:
    storage = kit.storage()
    for name in (FLOW_NAME, SIBLING_NAME):
        storage.add_flow(script_flow(name))
    storage.build()

    assert storage.flows[FLOW_NAME].startswith("contract-flow/")
    assert storage.flows[SIBLING_NAME].startswith("sibling-flow/")
    assert kit.names() == sorted(storage.flows.values())


# -- script mode --------------------------------------------------------------------------------
def test_script_mode_without_a_script_or_a_key_names_the_argument(
    kit: Kit, script_flow: ScriptFlow
) -> None:
    storage = kit.storage(stored_as_script=True)
    storage.add_flow(script_flow(FLOW_NAME))

    with pytest.raises(StorageConfigError) as caught:
        storage.build()

    assert f"`{kit.key_argument}`" in str(caught.value)
    assert "local_script_path" in str(caught.value)
    assert kit.names() == []


def test_script_mode_with_a_key_loads_a_script_already_in_the_bucket(
    kit: Kit, script_flow: ScriptFlow
) -> None:
    kit.write("scripts/flows.py", FLOW_SCRIPT.encode())
    storage = kit.storage(stored_as_script=True, **kit.fixed("scripts/flows.py"))
    for name in (FLOW_NAME, SIBLING_NAME):
        storage.add_flow(script_flow(name))
    storage.build()  # nothing to upload: the digests of what is there are recorded

    assert kit.names() == ["scripts/flows.py"]
    digest = storage.digests[FLOW_NAME]
    assert digest is not None
    fresh = Storage.deserialize(storage.serialize())
    check_runs(fresh.get_flow(FLOW_NAME, expected_sha256=digest), FLOW_NAME)
    check_runs(fresh.get_flow(SIBLING_NAME), SIBLING_NAME)


def test_script_mode_with_a_key_but_no_script_there_is_not_found(
    kit: Kit, script_flow: ScriptFlow
) -> None:
    storage = kit.storage(stored_as_script=True, **kit.fixed("scripts/missing.py"))
    storage.add_flow(script_flow(FLOW_NAME))
    storage.build()
    assert storage.digests[FLOW_NAME] is None

    with pytest.raises(FlowNotFoundError, match=r"scripts/missing\.py"):
        storage.get_flow(FLOW_NAME)


def test_script_mode_without_a_key_uploads_the_script_for_each_flow(
    kit: Kit, script_flow: ScriptFlow, flow_script: Path
) -> None:
    storage = kit.storage(stored_as_script=True, local_script_path=str(flow_script))
    for name in (FLOW_NAME, SIBLING_NAME):
        storage.add_flow(script_flow(name))
    storage.build()

    assert storage.flows[FLOW_NAME] != storage.flows[SIBLING_NAME]
    for name in (FLOW_NAME, SIBLING_NAME):
        assert kit.read(storage.flows[name]) == flow_script.read_bytes()  # binary, unchanged
        check_runs(Storage.deserialize(storage.serialize()).get_flow(name), name)


def test_a_script_shared_by_two_flows_is_uploaded_once(
    kit: Kit, script_flow: ScriptFlow, flow_script: Path
) -> None:
    """Two flows of one script at one fixed key: the script goes up once, and with each
    backend's defaults (Azure: ``overwrite=False``) the build succeeds."""
    proxy = kit.proxy()
    storage = kit.storage(
        stored_as_script=True, local_script_path=str(flow_script), **kit.fixed("flows.py")
    )
    for name in (FLOW_NAME, SIBLING_NAME):
        storage.add_flow(script_flow(name))

    storage.build()
    settle(proxy)

    uploads = [(r.method, r.path, r.status) for r in proxy.requests if kit.is_upload(r, "flows.py")]
    assert len(uploads) == 1, uploads
    for name in (FLOW_NAME, SIBLING_NAME):
        check_runs(storage.get_flow(name), name)


def test_script_mode_reports_an_unreadable_local_script(
    kit: Kit, script_flow: ScriptFlow, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-script.py"
    storage = kit.storage(stored_as_script=True, local_script_path=str(missing))
    storage.add_flow(script_flow(FLOW_NAME))

    with pytest.raises(StorageConfigError, match=r"no-such-script\.py"):
        storage.build()
    assert kit.names() == []


# -- missing things -----------------------------------------------------------------------------
def test_a_missing_bucket_is_named_at_build_and_at_load(kit: Kit, script_flow: ScriptFlow) -> None:
    storage = kit.storage(bucket="no-such-bucket")
    storage.add_flow(script_flow(FLOW_NAME))

    with pytest.raises(BucketNotFoundError) as at_build:
        storage.build()
    assert "'no-such-bucket'" in str(at_build.value)
    assert isinstance(at_build.value, LookupError)
    assert storage.digests.get(FLOW_NAME) is None

    storage.flows = {FLOW_NAME: "contract-flow/somewhere"}
    with pytest.raises(BucketNotFoundError) as at_load:
        storage.get_flow(FLOW_NAME)
    assert "'no-such-bucket'" in str(at_load.value)


def test_a_missing_object_is_flow_not_found(kit: Kit, script_flow: ScriptFlow) -> None:
    storage = kit.storage()
    storage.flows = {FLOW_NAME: "contract-flow/never-uploaded"}

    with pytest.raises(FlowNotFoundError) as caught:
        storage.get_flow(FLOW_NAME)
    assert "contract-flow/never-uploaded" in str(caught.value)
    assert not isinstance(caught.value, BucketNotFoundError)


def test_an_unreachable_endpoint_is_unavailable_after_retries(
    kit: Kit, script_flow: ScriptFlow, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="prefect_storage.retry")
    kit.use_endpoint(f"http://127.0.0.1:{free_port()}")  # nothing listens there
    storage = kit.storage()  # FAST: three attempts
    location = storage.add_flow(script_flow(FLOW_NAME))

    with pytest.raises(BackendUnavailableError) as caught:
        storage.build()

    message = str(caught.value)
    assert isinstance(caught.value, ConnectionError)
    assert "gave up after 3 attempt(s)" in message
    retries = [r for r in caplog.records if "attempt" in r.getMessage()]
    assert len(retries) == 2  # attempts 1 and 2 were retried, 3 was the last
    assert location in message
    assert kit.bucket in message, "the error should name the bucket/container"


def test_get_flow_from_an_unreachable_endpoint_is_unavailable(
    kit: Kit, script_flow: ScriptFlow
) -> None:
    kit.use_endpoint(f"http://127.0.0.1:{free_port()}")
    storage = kit.storage()
    storage.flows = {FLOW_NAME: "contract-flow/x"}

    with pytest.raises(BackendUnavailableError, match="gave up after 3 attempt"):
        storage.get_flow(FLOW_NAME)


# -- serialization ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "storage",
    [
        S3(
            "bkt",
            key="a/b.flow",
            stored_as_script=True,
            client_options={"endpoint_url": "http://127.0.0.1:9", "region_name": "eu-west-1"},
            secrets=["AWS_CREDENTIALS"],
            labels=["dev"],
        ),
        S3("bkt"),
        GCS("bkt", key="a/b.flow", project="proj", stored_as_script=True, labels=["x"]),
        GCS("bkt"),
        Azure(
            "ctr",
            connection_string_secret="MY_AZURE",
            blob_name="a/b.py",
            stored_as_script=True,
            add_default_labels=False,
        ),
        Azure("ctr"),
    ],
    ids=["s3-all", "s3-min", "gcs-all", "gcs-min", "azure-all", "azure-min"],
)
def test_serialize_round_trips_every_field(storage: Storage) -> None:
    storage.flows = {"a flow": "a/b.flow"}
    payload = storage.serialize()

    assert json.loads(json.dumps(payload)) == payload
    rebuilt = Storage.deserialize(payload)
    assert type(rebuilt) is type(storage)
    assert rebuilt.serialize() == payload
    assert rebuilt.flows == storage.flows
    for field in type(storage).serialized_fields:
        assert getattr(rebuilt, field) == getattr(storage, field), field
    assert type(rebuilt.result) is type(storage.result)


def test_serialized_fields_are_the_documented_ones() -> None:
    assert S3("b").serialize().keys() >= {"bucket", "key", "stored_as_script", "client_options"}
    assert GCS("b").serialize().keys() >= {"bucket", "key", "project", "stored_as_script"}
    assert Azure("c").serialize().keys() >= {
        "container",
        "connection_string_secret",
        "blob_name",
        "stored_as_script",
    }


def test_labels_are_not_serialized_they_go_to_the_run_config() -> None:
    assert "labels" not in S3("b", labels=["dev"]).serialize()


def test_object_stores_add_no_default_labels() -> None:
    for storage in (S3("b"), GCS("b"), Azure("c")):
        assert storage.labels == []
        assert storage.default_labels == []
