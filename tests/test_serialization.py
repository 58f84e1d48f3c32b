"""The pickle envelope (checks before unpickling) and the storage payload round trips."""

from __future__ import annotations

import base64
import hashlib
import io
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
from prefect_storage.envelope import (
    ENVELOPE_FORMAT,
    ENVELOPE_FORMAT_V1,
    ENVELOPE_MAGIC,
    flow_from_bytes_pickle,
    flow_to_bytes_pickle,
    read_flow_envelope,
    write_flow_envelope,
)
from prefect_storage.exceptions import (
    CorruptFlowError,
    FlowDeserializationError,
    FlowLoadError,
    FlowStorageError,
    FlowVersionWarning,
    StorageConfigError,
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


def _tripwired_flow(name: str = "tripwired") -> Flow:
    flow = _flow(name)
    flow.tripwire = Tripwire()  # type: ignore[attr-defined]
    return flow


def _tripwired_envelope(name: str = "tripwired") -> bytes:
    return flow_to_bytes_pickle(_tripwired_flow(name))


def _split(data: bytes) -> tuple[bytes, dict[str, Any], bytes]:
    """A format 2 envelope's magic line, header fields and pickled body."""
    magic, rest = data.split(b"\n", 1)
    line, body = rest.split(b"\n", 1)
    return magic + b"\n", json.loads(line), body


def _header_span(data: bytes) -> range:
    """Byte positions of the magic and header lines."""
    return range(data.index(b"\n", data.index(b"\n") + 1) + 1)


def _seal(header: dict[str, Any], body: bytes) -> bytes:
    """A format 2 envelope with ``header`` and a header digest that matches it (as a writer
    elsewhere, or a forger, would make it)."""
    line = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    return ENVELOPE_MAGIC + hashlib.sha256(line).hexdigest().encode() + b"\n" + line + b"\n" + body


def _v1_envelope(flow: Flow) -> bytes:
    """What prefect-storage wrote before format 2: JSON with the pickle in base64."""
    pickled = cloudpickle.dumps(flow, protocol=4)
    return json.dumps(
        {
            "format": ENVELOPE_FORMAT_V1,
            "flow_name": flow.name,
            "versions": {
                "python": platform.python_version(),
                "cloudpickle": cloudpickle.__version__,
                "prefect_storage": prefect_storage.__version__,
            },
            "sha256": hashlib.sha256(pickled).hexdigest(),
            "flow": base64.b64encode(pickled).decode(),
        }
    ).encode()


def _v1_fields(data: bytes) -> dict[str, Any]:
    return json.loads(data.decode())


def _span(data: bytes, key: str) -> range:
    """Byte range of the JSON member ``"key": value`` (value: a string or a flat object)."""
    start = data.index(f'"{key}": '.encode())
    value = start + len(key) + 4
    end = data.index(b"}" if data[value : value + 1] == b"{" else b'"', value + 1) + 1
    return range(start, end)


def _spread(positions: list[int] | range, count: int = 50) -> list[int]:
    """``count`` positions spread evenly over ``positions``, first and last included."""
    step = (len(positions) - 1) / (count - 1)
    return sorted({positions[round(i * step)] for i in range(count)})


def _flip(data: bytes, position: int, mask: int) -> bytes:
    flipped = bytearray(data)
    flipped[position] ^= mask
    return bytes(flipped)


def _undetected(data: bytes, positions: list[int], masks: tuple[int, ...]) -> list[Any]:
    """The (position, mask) flips of ``data`` that load without an error."""
    missed = []
    for position in positions:
        for mask in masks:
            try:
                flow_from_bytes_pickle(_flip(data, position, mask))
            except FlowStorageError:
                continue
            missed.append((position, chr(data[position]), mask))
    return missed


V1_SAMPLE = Path(__file__).parent / "data" / "flow-envelope-v1.json"
"""A flow stored by prefect-storage 0.1.0 (format 1): ``x`` (default 2) doubled, plus one."""


# -- the envelope ---------------------------------------------------------------------------
def test_envelope_fields_describe_the_flow_and_its_pickle() -> None:
    flow = _flow("envelope fields")
    data = flow_to_bytes_pickle(flow)
    magic, header, body = _split(data)

    assert magic.startswith(ENVELOPE_MAGIC)
    header_line = data[len(magic) : len(data) - len(body) - 1]
    assert magic[len(ENVELOPE_MAGIC) : -1].decode() == hashlib.sha256(header_line).hexdigest()
    assert header["format"] == ENVELOPE_FORMAT == "prefect-storage/flow-pickle/2"
    assert header["flow_name"] == "envelope fields"
    assert header["versions"] == {
        "python": platform.python_version(),
        "cloudpickle": cloudpickle.__version__,
        "prefect_storage": prefect_storage.__version__,
    }
    assert header["length"] == len(body)
    assert header["sha256"] == hashlib.sha256(body).hexdigest()
    # The body is exactly what bare cloudpickle makes: raw bytes, no base64.
    assert body == cloudpickle.dumps(flow, protocol=4)
    unpickled = cloudpickle.loads(body)
    assert isinstance(unpickled, Flow) and unpickled.name == "envelope fields"


def test_identical_flows_pickle_identically() -> None:
    first, second = flow_to_bytes_pickle(_flow("same")), flow_to_bytes_pickle(_flow("same"))
    assert hashlib.sha256(first).hexdigest() == hashlib.sha256(second).hexdigest()
    assert first != flow_to_bytes_pickle(_flow("different"))


def test_write_flow_envelope_streams_to_a_file_and_returns_its_digest(tmp_path: Path) -> None:
    flow = _flow("streamed")
    path = tmp_path / "flow.prefect"
    with open(path, "wb") as file:
        digest = write_flow_envelope(flow, file, tmp_dir=str(tmp_path))
    data = path.read_bytes()
    assert data == flow_to_bytes_pickle(flow)
    assert digest == hashlib.sha256(data).hexdigest()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flow.prefect"]  # temp body gone

    with open(path, "rb") as file:
        loaded = read_flow_envelope(file, expected_sha256=digest, flow_name="streamed")
    assert loaded.name == "streamed" and loaded.run().is_successful()


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


# -- the flow name is checked before unpickling ------------------------------------------------
def test_a_wrong_flow_name_is_refused_before_unpickling(marker: Path) -> None:
    data = _tripwired_envelope("the stored one")
    with pytest.raises(FlowLoadError, match="'the stored one', not 'the wanted one'") as raised:
        read_flow_envelope(io.BytesIO(data), flow_name="the wanted one", source="/some/where")
    assert "/some/where" in str(raised.value) and "Re-register" in str(raised.value)
    assert not marker.exists()


def test_local_get_flow_refuses_another_flow_at_the_location_unread(
    marker: Path, tmp_path: Path
) -> None:
    storage = Local(directory=str(tmp_path))
    location = storage.add_flow(_flow("wanted"))
    Path(location).write_bytes(_tripwired_envelope("intruder"))
    with pytest.raises(FlowLoadError, match="'intruder', not 'wanted'"):
        storage.get_flow("wanted")
    assert not marker.exists()


# -- tampering is detected before unpickling -------------------------------------------------
def test_the_tripwire_fires_on_an_intact_envelope(marker: Path) -> None:
    """The control for the tampering tests: an untampered envelope does unpickle."""
    flow = flow_from_bytes_pickle(_tripwired_envelope())
    assert flow.name == "tripwired"
    assert marker.read_text() == "unpickled"


def test_every_flipped_byte_is_detected_before_unpickling(marker: Path) -> None:
    data = _tripwired_envelope()
    header = _header_span(data)
    body = range(header.stop, len(data))
    # Header and body alike: the header has its own digest in the magic line.
    positions = sorted({*_spread(header, 25), *_spread(body, 25)})
    assert len(positions) == 50 and positions[0] == 0 and positions[-1] == len(data) - 1

    assert _undetected(data, positions, (0x01, 0x02, 0x20)) == []
    assert not marker.exists()


def test_a_flip_anywhere_in_the_header_is_detected(marker: Path) -> None:
    """Including the flow name and the versions, which the pickle's digest does not cover."""
    data = _tripwired_envelope()
    assert _undetected(data, list(_header_span(data)), (0x01, 0x20)) == []
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


def test_against_the_registered_digest_damage_is_named_a_digest_mismatch(marker: Path) -> None:
    """An agent passes the registered digest: the error names it, wherever the damage is."""
    data = _tripwired_envelope()
    digest = hashlib.sha256(data).hexdigest()
    damaged = {
        "magic line": _flip(data, 3, 0x01),
        "header": _flip(data, _header_span(data).stop - 5, 0x01),
        "body": _flip(data, len(data) - 5, 0x01),
        "truncated": data[:-5],
        "extended": data + b"\x00",
    }
    for where, stored in damaged.items():
        with pytest.raises(CorruptFlowError, match="Digest mismatch") as raised:
            read_flow_envelope(io.BytesIO(stored), digest, flow_name="tripwired", source="s")
        message = str(raised.value)
        assert digest in message and hashlib.sha256(stored).hexdigest() in message, where
    assert not marker.exists()


@pytest.mark.parametrize("fraction", [0.0, 0.01, 0.25, 0.5, 0.9, 0.999])
def test_a_truncated_envelope_is_detected(marker: Path, fraction: float) -> None:
    data = _tripwired_envelope()
    with pytest.raises(CorruptFlowError):
        flow_from_bytes_pickle(data[: int(len(data) * fraction)])
    assert not marker.exists()


def test_bytes_after_the_body_are_detected(marker: Path) -> None:
    with pytest.raises(CorruptFlowError, match="SHA-256"):
        flow_from_bytes_pickle(_tripwired_envelope() + b"\x00")
    assert not marker.exists()


def test_tampering_inside_the_pickle_with_a_matching_header_digest_is_detected(
    marker: Path,
) -> None:
    """A changed body under a re-sealed header (its recorded sha256 kept) fails the body's
    digest; a forger who also rewrites that digest is stopped by the registered digest."""
    data = _tripwired_envelope()
    _, header, body = _split(data)
    tampered = bytearray(body)
    tampered[len(tampered) // 2] ^= 0x01
    with pytest.raises(CorruptFlowError, match="SHA-256"):
        flow_from_bytes_pickle(_seal(header, bytes(tampered)))

    forged = _seal({**header, "sha256": hashlib.sha256(tampered).hexdigest()}, bytes(tampered))
    with pytest.raises(CorruptFlowError, match="Digest mismatch"):
        flow_from_bytes_pickle(forged, expected_sha256=hashlib.sha256(data).hexdigest())
    assert not marker.exists()


def test_a_bare_pickle_is_refused_with_a_clear_message(marker: Path) -> None:
    with pytest.raises(CorruptFlowError, match="bare pickle") as raised:
        flow_from_bytes_pickle(cloudpickle.dumps(_tripwired_flow("bare")))
    assert "envelope" in str(raised.value) and "re-register" in str(raised.value)
    assert not marker.exists()


@pytest.mark.parametrize(
    "data",
    [b"", b"not json at all", b"[1, 2]", b"\xff\xfe\x00", ENVELOPE_MAGIC, ENVELOPE_MAGIC * 9],
)
def test_garbage_is_a_corrupt_flow(data: bytes) -> None:
    with pytest.raises(CorruptFlowError):
        flow_from_bytes_pickle(data)


def test_an_unknown_format_is_named() -> None:
    _, header, body = _split(flow_to_bytes_pickle(_flow()))
    with pytest.raises(CorruptFlowError, match="flow-pickle/99"):
        flow_from_bytes_pickle(_seal({**header, "format": "prefect-storage/flow-pickle/99"}, body))
    envelope = _v1_fields(_v1_envelope(_flow()))
    envelope["format"] = "prefect-storage/flow-pickle/98"
    with pytest.raises(CorruptFlowError, match="flow-pickle/98"):
        flow_from_bytes_pickle(json.dumps(envelope).encode())


# -- format 1, as earlier versions stored flows ------------------------------------------------
def test_a_flow_stored_by_an_earlier_version_still_loads() -> None:
    data = V1_SAMPLE.read_bytes()
    assert _v1_fields(data)["format"] == ENVELOPE_FORMAT_V1
    with warnings.catch_warnings():
        # The sample names the versions it was written with; later releases warn.
        warnings.simplefilter("ignore", FlowVersionWarning)
        flow = flow_from_bytes_pickle(data, expected_sha256=hashlib.sha256(data).hexdigest())
        with open(V1_SAMPLE, "rb") as file:
            streamed = read_flow_envelope(file, flow_name="v1-sample")
    for loaded in (flow, streamed):
        assert loaded.name == "v1-sample"
        state = loaded.run(parameters={"x": 5})
        assert state.is_successful()
        assert sorted(s.result for s in state.result.values()) == [5, 10, 11]


def test_local_storage_loads_a_flow_file_written_by_an_earlier_version(tmp_path: Path) -> None:
    location = tmp_path / "v1-sample" / "2023-01-01t00-00-00-000000-00-00"
    location.parent.mkdir()
    location.write_bytes(V1_SAMPLE.read_bytes())
    payload = {**Local(directory=str(tmp_path)).serialize(), "flows": {"v1-sample": str(location)}}
    storage = Storage.deserialize(payload)
    digest = hashlib.sha256(location.read_bytes()).hexdigest()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FlowVersionWarning)
        flow = storage.get_flow("v1-sample", expected_sha256=digest)
        assert flow.run().is_successful()
        with pytest.raises(FlowLoadError, match="'v1-sample', not 'other'"):
            storage.flows["other"] = str(location)
            storage.get_flow("other")


def test_a_damaged_format_1_envelope_is_detected(marker: Path) -> None:
    data = _v1_envelope(_tripwired_flow())
    metadata = {*_span(data, "flow_name"), *_span(data, "versions")}  # not covered in format 1
    positions = _spread([i for i in range(len(data)) if i not in metadata])
    assert _undetected(data, positions, (0x01, 0x02, 0x20)) == []
    for fraction in (0.0, 0.5, 0.999):
        with pytest.raises(CorruptFlowError):
            flow_from_bytes_pickle(data[: int(len(data) * fraction)])
    sample = V1_SAMPLE.read_bytes()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FlowVersionWarning)
        assert _undetected(sample, _spread(list(_span(sample, "flow"))), (0x01,)) == []
    assert not marker.exists()


def test_a_flip_in_the_base64_padding_bits_is_detected(marker: Path) -> None:
    """Non-canonical base64 decodes to the same bytes; the stored payload still changed."""
    for extra in range(6):  # a pickle whose length leaves padding bits in its last character
        data = _v1_envelope(_tripwired_flow(name="padding" + "x" * extra))
        if len(base64.b64decode(_v1_fields(data)["flow"])) % 3 == 1:
            break
    else:
        pytest.fail("no flow name gave a pickle length with base64 padding bits")
    last = _span(data, "flow")[-1] - 3  # the character before '=='
    assert data[last + 1 : last + 3] == b"=="
    assert _undetected(data, [last], (0x01, 0x02, 0x04, 0x08)) == []
    assert not marker.exists()


def test_tampering_inside_a_format_1_pickle_with_a_valid_base64_is_detected(
    marker: Path,
) -> None:
    envelope = _v1_fields(_v1_envelope(_tripwired_flow()))
    pickled = bytearray(base64.b64decode(envelope["flow"]))
    pickled[len(pickled) // 2] ^= 0x01
    envelope["flow"] = base64.b64encode(bytes(pickled)).decode()
    with pytest.raises(CorruptFlowError, match="SHA-256"):
        flow_from_bytes_pickle(json.dumps(envelope).encode())
    assert not marker.exists()


# -- versions -----------------------------------------------------------------------------
def _with_versions(data: bytes, **versions: str) -> bytes:
    """The envelope as a writer under other versions would have sealed it."""
    _, header, body = _split(data)
    return _seal({**header, "versions": {**header["versions"], **versions}}, body)


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
    pickle_digest = _split(data)[1]["sha256"]
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


@pytest.mark.parametrize(
    "field, value, expected",
    [
        ("secrets", "ABC", "list of secret names"),
        ("secrets", ["A", 1], "list of secret names"),
        ("flows", ["a"], "dict mapping flow names"),
        ("directory", 3, "str or None"),
        ("stored_as_script", "yes", "bool"),
    ],
)
def test_a_mistyped_payload_field_names_the_field_and_the_expected_type(
    tmp_path: Path, field: str, value: Any, expected: str
) -> None:
    payload = {**Local(directory=str(tmp_path)).serialize(), field: value}
    with pytest.raises(StorageConfigError) as raised:
        Storage.deserialize(payload)
    message = str(raised.value)
    assert f"'{field}'" in message and expected in message and "Local" in message
    assert repr(value) in message


def test_mistyped_fields_of_other_backends_are_named() -> None:
    payload = {**_webhook().serialize(), "build_request_kwargs": "http://x"}
    with pytest.raises(StorageConfigError, match="'build_request_kwargs' must be dict"):
        Storage.deserialize(payload)
    with pytest.raises(StorageConfigError, match="'module' must be str"):
        Storage.deserialize({**Module("x.y").serialize(), "module": ["x"]})


def test_a_local_directory_that_is_a_file_is_a_config_error(tmp_path: Path) -> None:
    a_file = tmp_path / "flows.txt"
    a_file.write_text("not a directory")
    with pytest.raises(StorageConfigError) as raised:
        Local(directory=str(a_file))
    assert "`directory`" in str(raised.value) and str(a_file) in str(raised.value)
    assert isinstance(raised.value, ValueError)
    with pytest.raises(StorageConfigError, match="Cannot create Local `directory`"):
        Local(directory=str(a_file / "below"))
    assert a_file.read_text() == "not a directory"
