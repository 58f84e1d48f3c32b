"""Results: location templates, LocalResult, serializers, checkpoints and task targets."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import os
import pickle
import zlib
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import cloudpickle
import pytest

from prefect_storage import Flow, Parameter, task
from prefect_storage.backends.transport import Transport
from prefect_storage.engine import Cached
from prefect_storage.results import LocalResult, Result
from prefect_storage.serializers import (
    CompressedSerializer,
    JSONSerializer,
    PickleSerializer,
    Serializer,
)
from prefect_storage.storage import Local

START = datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc)
"""A fixed scheduled start, so ``{today}`` is known: 2024-05-06."""


class LocationOnly(Result):
    """A result that is never stored: for the tests of locations, made in the base."""

    def _make_transport(self) -> Transport:
        raise AssertionError("these tests store nothing")


@pytest.fixture(autouse=True)
def _checkpointing_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PREFECT_STORAGE_CHECKPOINTING", raising=False)


# -- location templates ---------------------------------------------------------------------
def test_a_string_location_is_formatted() -> None:
    result = LocationOnly(location="{flow_name}/{task_name}/{today}.bin")
    formatted = result.format(flow_name="f", task_name="t", today="2024-05-06", unused=1)
    assert formatted.location == "f/t/2024-05-06.bin"
    assert formatted is not result
    assert result.location == "{flow_name}/{task_name}/{today}.bin"


def test_a_callable_location_is_called_with_the_keys() -> None:
    seen: list[dict[str, Any]] = []

    def where(**kwargs: Any) -> str:
        seen.append(kwargs)
        return f"{kwargs['flow_name']}-{kwargs['x']}.out"

    result = LocationOnly(location=where)
    assert result.location is None
    assert result.format(flow_name="f", x=3).location == "f-3.out"
    assert seen == [{"flow_name": "f", "x": 3}]


def test_a_missing_template_key_is_an_error_naming_it() -> None:
    result = LocationOnly(location="{flow_name}/{no_such_key}.bin")
    with pytest.raises(KeyError) as raised:
        result.format(flow_name="f", today="2024-05-06")
    message = str(raised.value)
    assert "no_such_key" in message
    assert "flow_name" in message and "today" in message  # the keys that are available


def test_without_a_location_the_default_is_used() -> None:
    location = LocationOnly().format(x=1).location
    assert location is not None and location.endswith(".prefect_result")
    assert LocationOnly().format().location != location  # unique per call


def test_a_bad_location_type_is_refused() -> None:
    with pytest.raises(TypeError, match="location"):
        LocationOnly(location=42)  # type: ignore[arg-type]


def test_the_base_result_is_abstract() -> None:
    with pytest.raises(TypeError, match="abstract"):
        Result(location="x")  # type: ignore[abstract]


def test_results_compare_by_type_and_public_fields(tmp_path: Path) -> None:
    assert LocalResult(str(tmp_path), location="a") == LocalResult(str(tmp_path), location="a")
    assert LocalResult(str(tmp_path), location="a") != LocalResult(str(tmp_path), location="b")
    assert LocationOnly(location="a") != LocalResult(str(tmp_path), location="a")


# -- LocalResult ----------------------------------------------------------------------------
def test_no_dir_means_home_results(home: Path) -> None:
    result = LocalResult()
    assert result.dir == str(home / "results")
    assert (home / "results").is_dir()


@pytest.mark.parametrize("inside", ["", "flows", "flows/deeper/still"])
def test_a_dir_inside_home_means_home_results(home: Path, inside: str) -> None:
    assert LocalResult(str(home / inside)).dir == str(home / "results")


def test_a_dir_outside_home_is_kept_and_created(tmp_path: Path) -> None:
    where = tmp_path / "elsewhere" / "results"
    result = LocalResult(str(where))
    assert result.dir == str(where)
    assert where.is_dir()


def test_a_sibling_with_a_common_prefix_is_outside_home(home: Path) -> None:
    sibling = Path(str(home) + "-sibling")
    assert LocalResult(str(sibling)).dir == str(sibling)


def test_validate_dir_false_keeps_the_dir_raw_and_creates_nothing(tmp_path: Path) -> None:
    result = LocalResult("relative/dir", validate_dir=False)
    assert result.dir == "relative/dir"
    assert not Path("relative").exists()
    assert not (tmp_path / "relative").exists()


def test_write_read_exists(tmp_path: Path) -> None:
    result = LocalResult(str(tmp_path), location="{flow_name}/{task_name}.bin")
    assert not result.exists("{flow_name}/{task_name}.bin", flow_name="f", task_name="t")
    written = result.write({"value": [1, 2]}, flow_name="f", task_name="t")
    path = tmp_path / "f" / "t.bin"
    assert written.location == str(path)
    assert written.value == {"value": [1, 2]}
    assert cloudpickle.loads(path.read_bytes()) == {"value": [1, 2]}
    assert result.exists("{flow_name}/{task_name}.bin", flow_name="f", task_name="t")
    assert result.exists("f/t.bin")
    assert result.read("f/t.bin").value == {"value": [1, 2]}
    assert result.read(str(path)).value == {"value": [1, 2]}  # an absolute location wins


def test_a_write_replaces_atomically_and_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = LocalResult(str(tmp_path), location="value.bin")
    result.write("first")
    assert sorted(os.listdir(tmp_path)) == ["value.bin"]

    def no_space(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(OSError, match="No space left"):
        result.write("second, never complete")
    monkeypatch.undo()

    assert sorted(os.listdir(tmp_path)) == ["value.bin"]
    assert result.read("value.bin").value == "first"
    result.write("third")
    assert result.read("value.bin").value == "third"
    assert sorted(os.listdir(tmp_path)) == ["value.bin"]


def test_local_result_with_json_serializer(tmp_path: Path) -> None:
    result = LocalResult(str(tmp_path), location="out.json", serializer=JSONSerializer())
    result.write({"a": [1, "b"]})
    assert json.loads((tmp_path / "out.json").read_text()) == {"a": [1, "b"]}
    assert result.read("out.json").value == {"a": [1, "b"]}


# -- serializers ----------------------------------------------------------------------------
def test_pickle_serializer_round_trips_locals_and_lambdas() -> None:
    serializer = PickleSerializer()

    class Local:
        def __init__(self) -> None:
            self.f = lambda x: x * 3

    data = serializer.serialize(Local())
    assert isinstance(data, bytes)
    assert serializer.deserialize(data).f(2) == 6


def test_pickle_serializer_reraises_the_original_error() -> None:
    # The base64 retry fails too ("Non-base64 digit"); the pickle error is the one to see.
    with pytest.raises(pickle.UnpicklingError):
        PickleSerializer().deserialize(b"definitely not a pickle")


def test_json_serializer() -> None:
    serializer = JSONSerializer()
    assert serializer.serialize({"a": 1}) == json.dumps({"a": 1}).encode()
    assert serializer.deserialize(b'{"a": [1, 2]}') == {"a": [1, 2]}
    with pytest.raises(TypeError):
        serializer.serialize({1, 2})


def test_serializers_compare_by_type() -> None:
    assert PickleSerializer() == PickleSerializer()
    assert PickleSerializer() != JSONSerializer()


@pytest.mark.parametrize("module", [gzip, bz2, lzma, zlib])
def test_compressed_serializer_by_format(module: Any) -> None:
    inner = JSONSerializer()
    serializer = CompressedSerializer(inner, format=module.__name__)
    value = {"text": "abc" * 1000}
    data = serializer.serialize(value)
    assert module.decompress(data) == inner.serialize(value)
    assert len(data) < len(inner.serialize(value))
    assert serializer.deserialize(data) == value


def test_compressed_serializer_with_custom_callables_and_kwargs() -> None:
    calls: list[str] = []

    def compress(data: bytes, **kwargs: Any) -> bytes:
        calls.append(f"compress {kwargs}")
        return zlib.compress(data, **kwargs)

    def decompress(data: bytes, **kwargs: Any) -> bytes:
        calls.append(f"decompress {kwargs}")
        return zlib.decompress(data, **kwargs)

    serializer = CompressedSerializer(
        PickleSerializer(),
        compress=compress,
        decompress=decompress,
        compress_kwargs={"level": 9},
        decompress_kwargs={"bufsize": 1024},
    )
    data = serializer.serialize([1, 2, 3])
    assert zlib.decompress(data) == PickleSerializer().serialize([1, 2, 3])
    assert serializer.deserialize(data) == [1, 2, 3]
    assert calls == ["compress {'level': 9}", "decompress {'bufsize': 1024}"]


def test_compressed_results_round_trip(tmp_path: Path) -> None:
    serializer = CompressedSerializer(JSONSerializer(), format="gzip")
    result = LocalResult(str(tmp_path), location="r.json.gz", serializer=serializer)
    result.write({"x": 1})
    assert json.loads(gzip.decompress((tmp_path / "r.json.gz").read_bytes())) == {"x": 1}
    assert result.read("r.json.gz").value == {"x": 1}


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({}, ValueError, "format"),
        ({"compress": zlib.compress}, ValueError, "decompress"),
        ({"decompress": zlib.decompress}, ValueError, "compress"),
        ({"format": "gzip", "compress": zlib.compress}, ValueError, "not both"),
        ({"format": "no_such_compressor_xyz"}, ImportError, "gzip"),
        ({"format": "json"}, ValueError, "compress"),
    ],
)
def test_compressed_serializer_bad_arguments(
    kwargs: dict[str, Any], error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words):
        CompressedSerializer(PickleSerializer(), **kwargs)


def test_compressed_serializer_needs_a_serializer() -> None:
    with pytest.raises(TypeError, match="serializer"):
        CompressedSerializer(json, format="gzip")  # type: ignore[arg-type]
    assert isinstance(CompressedSerializer(JSONSerializer(), format="gzip"), Serializer)


# -- results in flow runs -------------------------------------------------------------------
@task
def one() -> int:
    return 1


@task
def plus(x: int, y: int) -> int:
    return x + y


def test_a_flow_result_writes_each_task_value_at_its_templated_location(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with Flow("templated results") as flow:
        first = one()
        total = plus(first, Parameter("y", default=10))
    flow.result = LocalResult(str(out), location="{flow_name}/{task_name}/{today}.bin")

    state = flow.run(context={"scheduled_start_time": START})
    assert state.is_successful()

    one_path = out / "templated results" / "one" / "2024-05-06.bin"
    plus_path = out / "templated results" / "plus" / "2024-05-06.bin"
    assert cloudpickle.loads(one_path.read_bytes()) == 1
    assert cloudpickle.loads(plus_path.read_bytes()) == 11
    assert state.result[first].location == str(one_path)
    assert state.result[total].location == str(plus_path)
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == [  # parameters are not checkpointed
        "templated results/one/2024-05-06.bin",
        "templated results/plus/2024-05-06.bin",
    ]


def test_no_checkpoint_when_turned_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREFECT_STORAGE_CHECKPOINTING", "false")
    with Flow("no checkpoints") as flow:
        one()
    flow.result = LocalResult(str(tmp_path), location="{task_name}.bin")
    assert flow.run().is_successful()
    assert list(tmp_path.iterdir()) == []


def test_an_existing_target_is_read_instead_of_running_the_task(tmp_path: Path) -> None:
    calls: list[int] = []

    @task(target="{flow_name}/{task_name}-{x}.bin")
    def expensive(x: int) -> int:
        calls.append(x)
        return x * 100

    with Flow("targets") as flow:
        expensive_task = expensive(3)
    flow.result = LocalResult(str(tmp_path))
    target = tmp_path / "targets" / "expensive-3.bin"

    # First run: nothing at the target, so the task runs and its value lands there.
    state = flow.run()
    assert calls == [3]
    assert state.result[expensive_task].result == 300
    assert cloudpickle.loads(target.read_bytes()) == 300

    # A value already at the target is read; the task does not run.
    target.write_bytes(PickleSerializer().serialize(41))
    state = flow.run()
    task_state = state.result[expensive_task]
    assert isinstance(task_state, Cached)
    assert task_state.result == 41
    assert calls == [3]


def test_a_task_result_overrides_the_flow_result(tmp_path: Path) -> None:
    flow_dir, task_dir = tmp_path / "flow", tmp_path / "task"
    own = task(lambda: 5, name="own", result=LocalResult(str(task_dir), location="own.bin"))
    with Flow("task result") as flow:
        own()
        one()
    flow.result = LocalResult(str(flow_dir), location="{task_name}.bin")
    assert flow.run().is_successful()
    assert cloudpickle.loads((task_dir / "own.bin").read_bytes()) == 5
    assert sorted(os.listdir(flow_dir)) == ["one.bin"]


# -- storage pairing ------------------------------------------------------------------------
def test_local_storage_pairs_a_local_result_in_home_results(home: Path) -> None:
    storage = Local()
    assert isinstance(storage.result, LocalResult)
    assert storage.result.dir == str(home / "results")
    assert (home / "results").is_dir()
    assert Path(storage.directory) == home / "flows"


def test_a_result_argument_overrides_the_pairing(tmp_path: Path) -> None:
    mine = LocalResult(str(tmp_path / "mine"))
    assert Local(result=mine).result is mine


def test_the_paired_result_writes_under_home_results(home: Path) -> None:
    storage = Local()
    with Flow("paired") as flow:
        one()
    flow.result = storage.result
    state = flow.run(context={"scheduled_start_time": START})
    (location,) = [s.location for s in state.result.values()]
    assert Path(location).parent == home / "results"
    assert cloudpickle.loads(Path(location).read_bytes()) == 1
