"""The storage contract (SPEC sections 2 and 4), once, for every rig in ``rigs.RIGS``.

Tests adapt to a backend only through what its rig declares (``rig.pickles``,
``rig.single_flow``, ``rig.read_stored``, ...) and skip, saying why, when a rig declares
that its backend cannot do something.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import cloudpickle
import pytest

import prefect_storage
from prefect_storage import Flow
from prefect_storage.envelope import ENVELOPE_FORMAT, ENVELOPE_MAGIC, flow_to_bytes_pickle
from prefect_storage.exceptions import (
    BackendAuthError,
    CorruptFlowError,
    FlowLoadError,
    FlowNameConflictError,
    FlowNotFoundError,
    FlowStorageError,
    StorageConfigError,
)
from prefect_storage.results import LocalResult
from prefect_storage.storage import Storage
from tests.contract.rigs import FLOW_NAME, RUNS, SIBLING_NAME, FlowRun, Rig

COMMON_FIELDS = ("type", "__version__", "flows", "secrets")
"""Keys every serialized storage has, whatever its backend."""


# -- helpers ------------------------------------------------------------------------------
def check_runs(flow: Flow, name: str) -> None:
    """``flow`` is the flow ``name`` of the script, and every run gives the expected value."""
    assert isinstance(flow, Flow)
    assert flow.name == name
    for run in RUNS[name]:
        check_run(flow, run)


def check_run(flow: Flow, run: FlowRun) -> None:
    state = flow.run(parameters=run.parameters)
    assert state is not None and state.is_successful(), state
    [result_task] = flow.get_tasks(name=run.result_task)
    assert state.result[result_task].result == run.expected


def stored(rig: Rig, *names: str, **storage_kwargs: Any) -> Storage:
    """A built storage holding the flows ``names`` (default: the contract flow)."""
    storage = rig.make_storage(**storage_kwargs)
    for name in names or (FLOW_NAME,):
        storage.add_flow(rig.load_flow(name))
    assert storage.build() is storage
    return storage


def needs(condition: Any, reason: str) -> None:
    if not condition:
        pytest.skip(f"the rig declares {reason}")


def pickled_flow(envelope: bytes) -> bytes:
    """The cloudpickle bytes inside a stored pickle envelope (SPEC 2, "Pickled flows")."""
    magic, header_line, body = envelope.split(b"\n", 2)
    assert magic.startswith(ENVELOPE_MAGIC)
    fields = json.loads(header_line)
    assert fields["format"] == ENVELOPE_FORMAT, "update this helper for the new envelope format"
    assert fields["length"] == len(body)
    return body


# -- add_flow, build, membership ------------------------------------------------------------
def test_add_flow_returns_the_location_and_the_name_is_in_storage(rig: Rig) -> None:
    storage = rig.make_storage()
    flow = rig.load_flow(FLOW_NAME)
    assert FLOW_NAME not in storage

    location = storage.add_flow(flow)

    assert isinstance(location, str) and location
    assert storage.flows == {FLOW_NAME: location}
    assert FLOW_NAME in storage
    assert flow not in storage  # membership is by name, never by Flow object
    assert SIBLING_NAME not in storage


def test_add_flow_refuses_a_name_already_present(rig: Rig) -> None:
    storage = rig.make_storage()
    location = storage.add_flow(rig.load_flow(FLOW_NAME))
    again = rig.load_flow(FLOW_NAME)

    if rig.single_flow:
        # One flow per storage: adding replaces, as in Prefect 1, with no conflict.
        assert storage.add_flow(again) == location
        assert storage.flows == {FLOW_NAME: location}
        return
    with pytest.raises(FlowNameConflictError) as caught:
        storage.add_flow(again)
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, FlowStorageError)
    assert "Name conflict" in str(caught.value)
    assert 'name "contract-flow"' in str(caught.value)
    assert storage.flows == {FLOW_NAME: location}


def test_build_returns_the_storage(rig: Rig) -> None:
    storage = rig.make_storage()
    storage.add_flow(rig.load_flow(FLOW_NAME))
    assert storage.build() is storage


# -- get_flow -----------------------------------------------------------------------------
def test_get_flow_returns_the_stored_flow(rig: Rig) -> None:
    storage = stored(rig)
    check_runs(storage.get_flow(FLOW_NAME), FLOW_NAME)


def test_get_flow_from_a_deserialized_storage(rig: Rig) -> None:
    storage = stored(rig)

    fresh = Storage.deserialize(json.loads(json.dumps(storage.serialize())))

    assert fresh is not storage and type(fresh) is type(storage)
    assert fresh.flows == storage.flows
    check_runs(fresh.get_flow(FLOW_NAME), FLOW_NAME)


def test_get_flow_in_a_fresh_process(rig: Rig) -> None:
    storage = stored(rig)
    command = [sys.executable, "-m", "prefect_storage.cli", "execute", "--flow", FLOW_NAME]
    command += ["-p", "x=3", "--json"]
    digest = storage.digests.get(FLOW_NAME)
    if digest is not None:
        command += ["--sha256", digest]  # as an agent runs it: verifying the recorded digest

    child = subprocess.run(
        command,
        input=json.dumps(storage.serialize()),
        env={**os.environ, **rig.env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert child.returncode == 0, child.stderr
    summary = json.loads(child.stdout)  # --json: stdout is one JSON document, for scripts
    assert summary["flow"] == FLOW_NAME
    assert summary["state"] == "Success"
    assert summary["tasks"]["add_one"] == {"state": "Success", "result": 7}


def test_get_flow_of_an_unknown_name_is_not_found(rig: Rig) -> None:
    storage = stored(rig)
    with pytest.raises(FlowNotFoundError) as caught:
        storage.get_flow("no-such-flow")
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, LookupError)
    assert "no-such-flow" in str(caught.value)


def test_storage_holds_several_flows(rig: Rig) -> None:
    storage = stored(rig, FLOW_NAME, SIBLING_NAME)

    if rig.single_flow:
        assert list(storage.flows) == [SIBLING_NAME]  # the second flow replaced the first
        with pytest.raises(FlowNotFoundError):
            storage.get_flow(FLOW_NAME)
    else:
        assert set(storage.flows) == {FLOW_NAME, SIBLING_NAME}
        check_runs(storage.get_flow(FLOW_NAME), FLOW_NAME)
        if rig.script_mode:  # one script holds both: one location, picked by name
            assert storage.flows[FLOW_NAME] == storage.flows[SIBLING_NAME]
    check_runs(storage.get_flow(SIBLING_NAME), SIBLING_NAME)


def test_pickle_storage_refuses_a_second_flow_at_a_fixed_location(rig: Rig) -> None:
    needs(rig.pickles and not rig.single_flow, "no multi-flow pickle mode")
    needs(rig.fixed_location, "no way to fix the location")
    storage = rig.make_storage(**rig.fixed_location())
    storage.add_flow(rig.load_flow(FLOW_NAME))

    with pytest.raises(StorageConfigError) as caught:
        storage.add_flow(rig.load_flow(SIBLING_NAME))
    assert isinstance(caught.value, ValueError)

    assert list(storage.flows) == [FLOW_NAME]
    storage.build()
    check_runs(storage.get_flow(FLOW_NAME), FLOW_NAME)  # not overwritten


def test_pickled_flow_does_not_embed_its_siblings(rig: Rig) -> None:
    needs(rig.pickles, "no pickle mode")
    needs(rig.read_stored, "no way to read stored bytes")
    storage = rig.make_storage()
    for name in (SIBLING_NAME, FLOW_NAME):
        flow = rig.load_flow(name)
        flow.storage = storage  # as users write it: the storage rides along in the pickle
        storage.add_flow(flow)
    storage.build()

    pickled = pickled_flow(rig.read_stored(storage, storage.flows[FLOW_NAME]))

    # Only the sibling has this task: pickled by value, its name would be in the bytes.
    sibling_task = RUNS[SIBLING_NAME][0].result_task
    assert sibling_task.encode() not in pickled
    loaded = storage.get_flow(FLOW_NAME)
    assert type(loaded.storage) is type(storage)
    check_runs(loaded, FLOW_NAME)


def test_get_flow_refuses_another_flow_found_at_the_location(rig: Rig) -> None:
    needs(rig.pickles, "no pickle mode")
    needs(rig.write_stored, "no way to write stored bytes")
    storage = stored(rig)
    sibling = flow_to_bytes_pickle(rig.load_flow(SIBLING_NAME))
    rig.write_stored(storage, storage.flows[FLOW_NAME], sibling)

    with pytest.raises(FlowLoadError, match=SIBLING_NAME):
        storage.get_flow(FLOW_NAME)


# -- integrity ----------------------------------------------------------------------------
def test_removed_stored_flow_is_not_found(rig: Rig) -> None:
    needs(rig.stores_bytes, "no stored bytes")
    needs(rig.remove_stored, "no way to remove a stored flow")
    storage = stored(rig)
    rig.remove_stored(storage, storage.flows[FLOW_NAME])

    with pytest.raises(FlowNotFoundError):
        storage.get_flow(FLOW_NAME)


def test_tampered_pickle_is_refused_before_unpickling(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    needs(rig.pickles, "no pickle mode")
    needs(rig.can_tamper, "no way to change stored bytes")
    storage = stored(rig)
    rig.tamper_stored(storage, storage.flows[FLOW_NAME])
    unpickled: list[Any] = []

    def recording(real: Any) -> Any:
        def record(source: Any, *args: Any, **kwargs: Any) -> Any:
            unpickled.append(source)
            return real(source, *args, **kwargs)

        return record

    for module in (cloudpickle, pickle):  # from bytes and from a file alike
        monkeypatch.setattr(module, "loads", recording(pickle.loads))
        monkeypatch.setattr(module, "load", recording(pickle.load))

    with pytest.raises(CorruptFlowError) as caught:
        storage.get_flow(FLOW_NAME)
    assert isinstance(caught.value, ValueError)
    assert unpickled == []


def test_tampered_content_is_refused_by_its_digest(rig: Rig) -> None:
    needs(rig.can_tamper, "no way to change stored bytes")
    storage = stored(rig)
    digest = storage.digests[FLOW_NAME]
    assert digest is not None
    rig.tamper_stored(storage, storage.flows[FLOW_NAME])

    with pytest.raises(CorruptFlowError):
        storage.get_flow(FLOW_NAME, expected_sha256=digest)


def test_digest_is_the_sha256_of_the_stored_bytes(rig: Rig) -> None:
    needs(rig.read_stored, "no way to read stored bytes")
    storage = stored(rig)
    data = rig.read_stored(storage, storage.flows[FLOW_NAME])

    assert storage.digests[FLOW_NAME] == hashlib.sha256(data).hexdigest()
    flow = storage.get_flow(FLOW_NAME, expected_sha256=storage.digests[FLOW_NAME])
    check_runs(flow, FLOW_NAME)


def test_a_wrong_digest_is_refused(rig: Rig) -> None:
    storage = stored(rig)
    with pytest.raises(CorruptFlowError):
        storage.get_flow(FLOW_NAME, expected_sha256=hashlib.sha256(b"other").hexdigest())


# -- backend failures ---------------------------------------------------------------------
def test_bad_credentials_are_refused_at_load(rig: Rig) -> None:
    needs(rig.checks_credentials, "a backend without credentials")
    storage = stored(rig)
    broken = rig.break_credentials(storage)

    with pytest.raises(BackendAuthError) as caught:
        broken.get_flow(FLOW_NAME)
    assert isinstance(caught.value, PermissionError)
    for value in rig.sensitive_values:
        assert value not in str(caught.value)


def test_bad_credentials_are_refused_at_build(rig: Rig) -> None:
    needs(rig.checks_credentials, "a backend without credentials")
    broken = rig.break_credentials(rig.make_storage())
    broken.add_flow(rig.load_flow(FLOW_NAME))

    with pytest.raises(BackendAuthError) as caught:
        broken.build()
    for value in rig.sensitive_values:
        assert value not in str(caught.value)


def test_a_failed_build_leaves_no_flow_to_load(rig: Rig) -> None:
    needs(rig.fail_next_upload, "no way to make an upload fail")
    storage = rig.make_storage()
    storage.add_flow(rig.load_flow(FLOW_NAME))
    rig.fail_next_upload()

    with pytest.raises(FlowStorageError):
        storage.build()

    assert storage.digests.get(FLOW_NAME) is None  # nothing recorded as stored
    with pytest.raises(FlowNotFoundError):
        storage.get_flow(FLOW_NAME)


# -- serialization ------------------------------------------------------------------------
def test_serialize_is_json_with_the_common_fields(rig: Rig) -> None:
    storage = stored(rig, secrets=["CONTRACT_SECRET"])

    payload = storage.serialize()

    assert json.loads(json.dumps(payload)) == payload
    assert payload["type"] == type(storage).__name__
    assert payload["__version__"] == prefect_storage.__version__
    assert payload["flows"] == storage.flows == {FLOW_NAME: storage.flows[FLOW_NAME]}
    assert payload["secrets"] == ["CONTRACT_SECRET"]


def test_serialize_round_trips(rig: Rig) -> None:
    storage = stored(rig, secrets=["CONTRACT_SECRET"])
    payload = storage.serialize()

    assert Storage.deserialize(payload).serialize() == payload
    assert Storage.deserialize({**payload, "contract_unknown_key": 1}).serialize() == payload


def test_deserialize_names_a_missing_required_field(rig: Rig) -> None:
    payload = stored(rig).serialize()
    assert rig.required_fields <= set(payload)
    for name in sorted(set(payload) - set(COMMON_FIELDS)):
        partial = {key: value for key, value in payload.items() if key != name}
        if name in rig.required_fields:
            with pytest.raises(FlowStorageError) as raised:
                Storage.deserialize(partial)
            assert payload["type"] in str(raised.value) and name in str(raised.value)
        else:  # an optional field: its default is taken
            rebuilt = Storage.deserialize(partial)
            assert type(rebuilt).__name__ == payload["type"]
            assert rebuilt.flows == payload["flows"]


def test_serialize_and_repr_hold_no_credentials(rig: Rig) -> None:
    needs(rig.sensitive_values, "no credential values")
    storage = stored(rig)
    for text in (json.dumps(storage.serialize()), repr(storage)):
        for value in rig.sensitive_values:
            assert value not in text


# -- labels and results -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("user_labels", "add_default_labels"),
    [(None, None), (None, False), (["dev", "gpu"], None), (["dev", "gpu"], True), (["dev"], False)],
    ids=["defaults", "no-defaults", "user", "user-and-defaults", "user-only"],
)
def test_labels(rig: Rig, user_labels: list[str] | None, add_default_labels: bool | None) -> None:
    kwargs: dict[str, Any] = {}
    if user_labels is not None:
        kwargs["labels"] = user_labels
    if add_default_labels is not None:
        kwargs["add_default_labels"] = add_default_labels
    expected = set(user_labels or ())
    if add_default_labels is not False:
        expected |= set(rig.default_labels())

    assert sorted(rig.make_storage(**kwargs).labels) == sorted(expected)


def test_paired_result(rig: Rig) -> None:
    result = rig.make_storage().result
    if rig.paired_result is None:
        assert result is None
    else:
        assert isinstance(result, rig.paired_result)


def test_result_argument_overrides_the_paired_result(rig: Rig, tmp_path: Path) -> None:
    custom = LocalResult(dir=str(tmp_path / "custom-results"))
    assert rig.make_storage(result=custom).result is custom
