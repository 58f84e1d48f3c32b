"""The pickle envelope (checks before unpickling) and the storage payload round trips."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import platform
import sys
import uuid
import warnings
from pathlib import Path
from typing import Any

import cloudpickle
import pytest

import prefect_storage
from prefect_storage import Flow, task
from prefect_storage.exceptions import (
    CorruptFlowError,
    FlowDeserializationError,
    FlowStorageError,
    FlowVersionWarning,
    StorageConfigError,
)
from prefect_storage.serialization import (
    ENVELOPE_FORMAT,
    flow_from_bytes_pickle,
    flow_to_bytes_pickle,
)
from prefect_storage.storage import Local, Module, Storage, Webhook


@task
def inc(x: int) -> int:
    return x + 1


TRIPWIRE_DIR_ENV = "PREFECT_STORAGE_TEST_TRIPWIRE_DIR"
"""Where unpickled tripwires write their marker (kept out of the pickle: fixed byte length)."""


def _touch(name: str) -> str:
    """Called by unpickling a ``Tripwire``: proves that unpickling happened."""
    (Path(os.environ[TRIPWIRE_DIR_ENV]) / name).write_text("unpickled")
    return name


class Tripwire:
    """Unpickling this object writes the marker file ``name``."""

    def __init__(self, name: str = "marker") -> None:
        self.name = name

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (_touch, (self.name,))


@pytest.fixture
def marker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The file a ``Tripwire`` writes when it is unpickled."""
    monkeypatch.setenv(TRIPWIRE_DIR_ENV, str(tmp_path))
    return tmp_path / "marker"


def _flow(name: str = "serialized") -> Flow:
    with Flow(name) as flow:
        inc(inc(1))
    return flow


def _tripwired_envelope(name: str = "tripwired") -> bytes:
    flow = _flow(name)
    flow.tripwire = Tripwire()  # type: ignore[attr-defined]
    return flow_to_bytes_pickle(flow)


def _envelope(data: bytes) -> dict[str, Any]:
    return json.loads(data.decode())


def _span(data: bytes, key: str) -> range:
    """Byte range of the JSON member ``"key": value`` (value: a string or a flat object)."""
    start = data.index(f'"{key}": '.encode())
    value = start + len(key) + 4
    end = data.index(b"}" if data[value : value + 1] == b"{" else b'"', value + 1) + 1
    return range(start, end)


def _spread(positions: list[int], count: int = 50) -> list[int]:
    """``count`` positions spread evenly over ``positions``, first and last included."""
    step = (len(positions) - 1) / (count - 1)
    return sorted({positions[round(i * step)] for i in range(count)})


def _flip(data: bytes, position: int, mask: int) -> bytes:
    flipped = bytearray(data)
    flipped[position] ^= mask
    return bytes(flipped)


# -- the envelope ---------------------------------------------------------------------------
def test_envelope_fields_describe_the_flow_and_its_pickle() -> None:
    flow = _flow("envelope fields")
    data = flow_to_bytes_pickle(flow)
    envelope = _envelope(data)

    assert envelope["format"] == ENVELOPE_FORMAT
    assert envelope["format"].startswith("prefect-storage/")
    assert envelope["flow_name"] == "envelope fields"
    assert envelope["versions"] == {
        "python": platform.python_version(),
        "cloudpickle": cloudpickle.__version__,
        "prefect_storage": prefect_storage.__version__,
    }
    pickled = base64.b64decode(envelope["flow"], validate=True)
    assert envelope["sha256"] == hashlib.sha256(pickled).hexdigest()
    unpickled = cloudpickle.loads(pickled)
    assert isinstance(unpickled, Flow) and unpickled.name == "envelope fields"


def test_a_round_trip_returns_a_working_flow() -> None:
    flow = _flow("round trip")
    loaded = flow_from_bytes_pickle(flow_to_bytes_pickle(flow))
    assert loaded is not flow and loaded.name == "round trip"
    state = loaded.run()
    assert state.is_successful()
    assert sorted(s.result for s in state.result.values()) == [2, 3]


def test_a_thousand_task_flow_round_trips_through_local_storage() -> None:
    with Flow("a thousand tasks") as flow:
        value = inc(0)
        for _ in range(999):
            value = inc(value)
    storage = Local()
    location = storage.add_flow(flow)
    storage.build()
    assert Path(location).is_file()

    loaded = Storage.deserialize(json.loads(json.dumps(storage.serialize()))).get_flow(
        "a thousand tasks"
    )
    assert len(loaded.tasks) == 1000
    assert len(loaded.edges) == 999
    assert sorted(loaded.slugs.values()) == sorted(flow.slugs.values())
    (last,) = loaded.terminal_tasks()
    assert loaded.slugs[last] == flow.slugs[value]
    state = loaded.run()
    assert state.is_successful()
    assert state.result[last].result == 1000


# -- tampering is detected before unpickling -------------------------------------------------
def test_the_tripwire_fires_on_an_intact_envelope(marker: Path) -> None:
    """The control for the tampering tests: an untampered envelope does unpickle."""
    flow = flow_from_bytes_pickle(_tripwired_envelope())
    assert flow.name == "tripwired"
    assert marker.read_text() == "unpickled"


def test_every_flipped_byte_is_detected_before_unpickling(marker: Path) -> None:
    data = _tripwired_envelope()
    # The flow name and the versions are metadata, not covered by the pickle's digest (a
    # changed version is reported as a mismatch, below); every other byte is checked.
    metadata = {*_span(data, "flow_name"), *_span(data, "versions")}
    positions = _spread([i for i in range(len(data)) if i not in metadata])
    assert len(positions) >= 45 and positions[0] == 0 and positions[-1] == len(data) - 1
    payload = _span(data, "flow")
    assert sum(p in payload for p in positions) >= 30

    undetected = []
    for position in positions:
        for mask in (0x01, 0x02, 0x20):
            try:
                flow_from_bytes_pickle(_flip(data, position, mask))
            except (CorruptFlowError, FlowStorageError):
                continue
            undetected.append((position, chr(data[position]), mask))
    assert undetected == []
    assert not marker.exists()


def test_with_the_registered_digest_a_flip_anywhere_is_detected(marker: Path) -> None:
    data = _tripwired_envelope()
    digest = hashlib.sha256(data).hexdigest()
    positions = _spread(list(range(len(data))))
    assert len(positions) == 50
    for position in positions:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FlowVersionWarning)
            with pytest.raises(FlowStorageError):
                flow_from_bytes_pickle(_flip(data, position, 0x01), expected_sha256=digest)
    assert not marker.exists()


def test_a_flip_in_the_base64_padding_bits_is_detected(marker: Path) -> None:
    """Non-canonical base64 decodes to the same bytes; the stored payload still changed."""
    for extra in range(6):  # a pickle whose length leaves padding bits in its last character
        data = _tripwired_envelope(name="padding" + "x" * extra)
        if len(base64.b64decode(_envelope(data)["flow"])) % 3 == 1:
            break
    else:
        pytest.fail("no flow name gave a pickle length with base64 padding bits")
    last = _span(data, "flow")[-1] - 3  # the character before '=='
    assert data[last + 1 : last + 3] == b"=="

    undetected = []
    for mask in (0x01, 0x02, 0x04, 0x08):
        try:
            flow_from_bytes_pickle(_flip(data, last, mask))
        except FlowStorageError:
            continue
        undetected.append(mask)
    assert undetected == [], f"flips of {chr(data[last])!r} by these masks were not detected"
    assert not marker.exists()


@pytest.mark.parametrize("fraction", [0.0, 0.01, 0.25, 0.5, 0.9, 0.999])
def test_a_truncated_envelope_is_detected(marker: Path, fraction: float) -> None:
    data = _tripwired_envelope()
    with pytest.raises(CorruptFlowError):
        flow_from_bytes_pickle(data[: int(len(data) * fraction)])
    assert not marker.exists()


def test_tampering_inside_the_pickle_with_a_valid_base64_is_detected(marker: Path) -> None:
    data = _tripwired_envelope()
    envelope = _envelope(data)
    pickled = bytearray(base64.b64decode(envelope["flow"]))
    pickled[len(pickled) // 2] ^= 0x01
    envelope["flow"] = base64.b64encode(bytes(pickled)).decode()
    with pytest.raises(CorruptFlowError, match="SHA-256"):
        flow_from_bytes_pickle(json.dumps(envelope).encode())
    assert not marker.exists()


def test_a_bare_pickle_is_refused_with_a_clear_message(marker: Path) -> None:
    flow = _flow("bare")
    flow.tripwire = Tripwire()  # type: ignore[attr-defined]
    with pytest.raises(CorruptFlowError, match="bare pickle") as raised:
        flow_from_bytes_pickle(cloudpickle.dumps(flow))
    assert "envelope" in str(raised.value) and "re-register" in str(raised.value)
    assert not marker.exists()


@pytest.mark.parametrize("data", [b"", b"not json at all", b"[1, 2]", b"\xff\xfe\x00"])
def test_garbage_is_a_corrupt_flow(data: bytes) -> None:
    with pytest.raises(CorruptFlowError):
        flow_from_bytes_pickle(data)


def test_an_unknown_format_is_named() -> None:
    envelope = _envelope(flow_to_bytes_pickle(_flow()))
    envelope["format"] = "prefect-storage/flow-pickle/99"
    with pytest.raises(CorruptFlowError, match="flow-pickle/99"):
        flow_from_bytes_pickle(json.dumps(envelope).encode())


# -- versions -----------------------------------------------------------------------------
def _with_versions(data: bytes, **versions: str) -> bytes:
    envelope = _envelope(data)
    envelope["versions"] = {**envelope["versions"], **versions}
    return json.dumps(envelope).encode()  # the digest covers the pickle only: not recomputed


@pytest.mark.parametrize(
    "package, built",
    [("prefect_storage", "0.0.1rc9"), ("cloudpickle", "1.0.0"), ("python", "3.2.1")],
)
def test_a_version_mismatch_warns_naming_the_package_and_both_versions(
    package: str, built: str
) -> None:
    running = {
        "prefect_storage": prefect_storage.__version__,
        "cloudpickle": cloudpickle.__version__,
        "python": platform.python_version(),
    }[package]
    data = _with_versions(flow_to_bytes_pickle(_flow("versions")), **{package: built})
    with pytest.warns(FlowVersionWarning) as caught:
        flow = flow_from_bytes_pickle(data)
    assert flow.name == "versions"
    message = "\n".join(str(w.message) for w in caught)
    assert package in message and repr(built) in message and repr(running) in message


def test_matching_versions_do_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", FlowVersionWarning)
        flow_from_bytes_pickle(flow_to_bytes_pickle(_flow()))


def test_strict_versions_refuse_before_unpickling(marker: Path) -> None:
    data = _with_versions(_tripwired_envelope(), cloudpickle="0.0.1")
    with pytest.raises(FlowDeserializationError, match="cloudpickle") as raised:
        flow_from_bytes_pickle(data, strict=True)
    assert "'0.0.1'" in str(raised.value) and repr(cloudpickle.__version__) in str(raised.value)
    assert isinstance(raised.value, FlowStorageError)
    assert not marker.exists()


def test_strict_versions_from_the_environment(
    marker: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _with_versions(_tripwired_envelope(), prefect_storage="0.0.1")
    monkeypatch.setenv("PREFECT_STORAGE_STRICT_VERSIONS", "1")
    with pytest.raises(FlowStorageError, match="prefect_storage"):
        flow_from_bytes_pickle(data)
    assert not marker.exists()

    monkeypatch.setenv("PREFECT_STORAGE_STRICT_VERSIONS", "0")
    with pytest.warns(FlowVersionWarning):
        flow_from_bytes_pickle(data)
    assert marker.exists()
    # An explicit argument wins over the environment.
    monkeypatch.setenv("PREFECT_STORAGE_STRICT_VERSIONS", "1")
    with pytest.warns(FlowVersionWarning):
        flow_from_bytes_pickle(data, strict=False)


def test_unpickling_a_flow_whose_module_is_gone_names_the_missing_module(
    tmp_path: Path,
) -> None:
    module_name = f"vanishing_{uuid.uuid4().hex[:12]}"
    (tmp_path / f"{module_name}.py").write_text("def double(x):\n    return 2 * x\n")
    sys.path.insert(0, str(tmp_path))
    try:
        module = __import__(module_name)
        with Flow("needs a module") as flow:
            task(module.double)(21)
        data = flow_to_bytes_pickle(flow)
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop(module_name, None)

    with pytest.raises(FlowDeserializationError) as raised:
        flow_from_bytes_pickle(data)
    message = str(raised.value)
    assert module_name in message
    assert "missing Python module" in message
    assert "needs a module" in message
    assert isinstance(raised.value.__cause__, ModuleNotFoundError)


# -- expected digests -----------------------------------------------------------------------
def test_expected_sha256_of_the_stored_bytes_or_the_pickle_is_accepted() -> None:
    data = flow_to_bytes_pickle(_flow("digest"))
    envelope_digest = hashlib.sha256(data).hexdigest()
    assert flow_from_bytes_pickle(data, expected_sha256=envelope_digest).name == "digest"
    assert flow_from_bytes_pickle(data, expected_sha256=envelope_digest.upper()).name == "digest"
    pickle_digest = _envelope(data)["sha256"]
    assert flow_from_bytes_pickle(data, expected_sha256=pickle_digest).name == "digest"


def test_a_mismatched_expected_sha256_is_refused_before_unpickling(marker: Path) -> None:
    data = _tripwired_envelope()
    other = hashlib.sha256(flow_to_bytes_pickle(_flow("other"))).hexdigest()
    with pytest.raises(CorruptFlowError, match=other):
        flow_from_bytes_pickle(data, expected_sha256=other)
    assert not marker.exists()


# -- storage payloads -----------------------------------------------------------------------
def _webhook(**overrides: Any) -> Webhook:
    arguments: dict[str, Any] = {
        "build_request_kwargs": {
            "url": "http://127.0.0.1:9/flows/${FLOW_ID}",
            "headers": {"Authorization": "Bearer ${TOKEN}"},
        },
        "build_request_http_method": "PUT",
        "get_flow_request_kwargs": {
            "url": "http://127.0.0.1:9/flows/${FLOW_ID}",
            "params": {"v": ["1", "${VERSION}"]},
        },
        "get_flow_request_http_method": "GET",
    }
    arguments.update(overrides)
    return Webhook(**arguments)


def _round_trip(storage: Storage) -> tuple[dict[str, Any], Storage]:
    payload = storage.serialize()
    text = json.dumps(payload)
    rebuilt = Storage.deserialize(json.loads(text))
    return payload, rebuilt


def test_local_payload_round_trips(tmp_path: Path) -> None:
    storage = Local(directory=str(tmp_path / "flows"), secrets=["A", "B"])
    storage.add_flow(_flow("local one"))
    payload, rebuilt = _round_trip(storage)
    assert payload["type"] == "Local"
    assert payload["__version__"] == prefect_storage.__version__
    assert payload["secrets"] == ["A", "B"]
    assert payload["directory"] == str(tmp_path / "flows")
    assert payload["flows"] == storage.flows and "local one" in payload["flows"]
    assert type(rebuilt) is Local
    assert rebuilt.serialize() == payload
    assert "local one" in rebuilt
    assert rebuilt.get_flow("local one").name == "local one"


def test_a_deserialized_local_does_not_touch_the_filesystem(tmp_path: Path) -> None:
    where = tmp_path / "not" / "created"
    payload = Local(directory=str(where), validate=False).serialize()
    assert not where.exists()
    rebuilt = Storage.deserialize(payload)
    assert not where.exists()
    assert rebuilt.serialize()["directory"] == str(where)


def test_script_mode_local_payload_round_trips(tmp_path: Path) -> None:
    script = tmp_path / "flow.py"
    storage = Local(path=str(script), stored_as_script=True)
    storage.add_flow(_flow("scripted"))
    payload, rebuilt = _round_trip(storage)
    assert payload["stored_as_script"] is True and payload["path"] == str(script)
    assert rebuilt.serialize() == payload
    assert rebuilt.stored_as_script is True


def test_module_payload_round_trips() -> None:
    storage = Module("some.package.flows:factory", secrets=["S"])
    storage.add_flow(_flow("from a module"))
    payload, rebuilt = _round_trip(storage)
    assert payload["type"] == "Module"
    assert payload["module"] == "some.package.flows:factory"
    assert payload["flows"] == {"from a module": "some.package.flows:factory"}
    assert type(rebuilt) is Module and rebuilt.serialize() == payload


def test_webhook_payload_round_trips_with_templates_unrendered() -> None:
    storage = _webhook(stored_as_script=True, flow_script_path="/not/serialized.py")
    storage.flows = {"hooked": "hooked"}
    payload, rebuilt = _round_trip(storage)
    assert payload["type"] == "Webhook"
    assert payload["build_request_kwargs"]["headers"] == {"Authorization": "Bearer ${TOKEN}"}
    assert payload["get_flow_request_kwargs"]["params"] == {"v": ["1", "${VERSION}"]}
    assert payload["build_request_http_method"] == "PUT"
    assert payload["stored_as_script"] is True
    assert "flow_script_path" not in payload
    assert "/not/serialized.py" not in json.dumps(payload)
    assert type(rebuilt) is Webhook and rebuilt.serialize() == payload


def test_an_unknown_storage_type_is_named() -> None:
    payload = Module("x.y").serialize()
    payload["type"] = "S4Bucket"
    with pytest.raises(StorageConfigError, match="S4Bucket") as raised:
        Storage.deserialize(payload)
    assert "Local" in str(raised.value)  # lists the known types


@pytest.mark.parametrize(
    "storage, field",
    [
        (Module("x.y"), "module"),
        (_webhook(), "get_flow_request_kwargs"),
        (_webhook(), "build_request_http_method"),
    ],
)
def test_a_missing_required_field_names_the_type_and_field(storage: Storage, field: str) -> None:
    payload = storage.serialize()
    del payload[field]
    with pytest.raises(FlowStorageError) as raised:
        Storage.deserialize(payload)
    assert type(storage).__name__ in str(raised.value)
    assert repr(field) in str(raised.value) or f"`{field}`" in str(raised.value)


def test_unknown_payload_keys_are_ignored(tmp_path: Path) -> None:
    payload = Local(directory=str(tmp_path)).serialize()
    expected = dict(payload)
    payload.update({"bogus": 1, "labels": ["x"], "result": {"type": "LocalResult"}})
    assert Storage.deserialize(payload).serialize() == expected


def test_a_non_json_field_is_named() -> None:
    storage = _webhook(
        build_request_kwargs={"url": "http://127.0.0.1:9/flows", "verify": Path("/ca.pem")}
    )
    with pytest.raises(StorageConfigError, match="build_request_kwargs") as raised:
        storage.serialize()
    assert "JSON" in str(raised.value)
