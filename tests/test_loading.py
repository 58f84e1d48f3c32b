"""Script mode (``extract_flow_from_file``) and Module loading (``extract_flow_from_module``)."""

from __future__ import annotations

import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from prefect_storage import Flow
from prefect_storage.exceptions import FlowLoadError, FlowStorageError, NotAFlowError
from prefect_storage.loading import (
    extract_flow_from_file,
    extract_flow_from_module,
    flows_in_file,
    flows_in_importable,
)

FLOW_SCRIPT = """\
from prefect_storage import Flow, task

@task
def hello(name):
    return "hello " + name

with Flow("{name}") as flow:
    hello("world")
"""


@pytest.fixture(autouse=True)
def _restore_import_state() -> Iterator[None]:
    """Loading a script makes its folder importable; undo that and the imports after each test."""
    path, modules = list(sys.path), set(sys.modules)
    yield
    sys.path[:] = path
    for name in set(sys.modules) - modules:
        del sys.modules[name]


def _write(path: Path, source: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))
    return path


def _unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


# -- extract_flow_from_file -----------------------------------------------------------------
def test_a_flow_is_loaded_by_path_and_runs(tmp_path: Path) -> None:
    script = _write(tmp_path / "flow.py", FLOW_SCRIPT.format(name="by path"))
    flow = extract_flow_from_file(file_path=str(script))
    assert isinstance(flow, Flow) and flow.name == "by path"
    state = flow.run()
    assert state.is_successful()
    assert [s.result for s in state.result.values()] == ["hello world"]


def test_a_path_like_is_accepted(tmp_path: Path) -> None:
    script = _write(tmp_path / "flow.py", FLOW_SCRIPT.format(name="path like"))
    assert extract_flow_from_file(file_path=script).name == "path like"


@pytest.mark.parametrize("as_bytes", [False, True])
def test_a_flow_is_loaded_from_contents(as_bytes: bool) -> None:
    source = FLOW_SCRIPT.format(name="by contents ✓")
    contents = source.encode() if as_bytes else source
    flow = extract_flow_from_file(file_contents=contents)
    assert flow.name == "by contents ✓"
    assert flow.run().is_successful()


def test_file_is_set_for_path_loads_only(tmp_path: Path) -> None:
    source = """\
        from prefect_storage import Flow
        flow = Flow("where am i")
        flow.seen_file = globals().get("__file__")
    """
    script = _write(tmp_path / "sub" / "where.py", source)
    assert extract_flow_from_file(file_path=str(script)).seen_file == str(script)
    assert extract_flow_from_file(file_contents=textwrap.dedent(source)).seen_file is None


def test_a_sibling_module_is_importable_for_path_loads(tmp_path: Path) -> None:
    sibling = _unique("sibling")
    value = uuid.uuid4().hex
    _write(tmp_path / "flows" / f"{sibling}.py", f"VALUE = {value!r}\n")
    script = _write(
        tmp_path / "flows" / "main.py",
        f"""\
        import {sibling}
        from prefect_storage import Flow
        flow = Flow("sibling " + {sibling}.VALUE)
        """,
    )
    assert extract_flow_from_file(file_path=str(script)).name == f"sibling {value}"


def test_the_main_guard_does_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "main-ran"
    script = _write(
        tmp_path / "guarded.py",
        f"""\
        from pathlib import Path
        from prefect_storage import Flow
        flow = Flow("guarded")
        if __name__ == "__main__":
            Path({str(marker)!r}).write_text("ran")
        """,
    )
    assert extract_flow_from_file(file_path=str(script)).name == "guarded"
    assert not marker.exists()


def test_flow_run_in_a_script_warns_and_returns_none(tmp_path: Path) -> None:
    marker = tmp_path / "task-ran"
    script = _write(
        tmp_path / "runs.py",
        f"""\
        from pathlib import Path
        from prefect_storage import Flow, task

        @task
        def touch():
            Path({str(marker)!r}).write_text("ran")
            return 1

        with Flow("runs itself") as flow:
            touch()

        flow.run_returned = flow.run()
        """,
    )
    with pytest.warns(UserWarning, match="flow.run"):
        flow = extract_flow_from_file(file_path=str(script))
    assert flow.run_returned is None
    assert not marker.exists()
    # Outside loading, the same flow does run.
    assert flow.run().is_successful()
    assert marker.read_text() == "ran"


def test_a_syntax_error_names_the_line(tmp_path: Path) -> None:
    source = "from prefect_storage import Flow\nflow = Flow('x')\ndef broken(:\n    pass\n"
    script = _write(tmp_path / "broken.py", source)
    with pytest.raises(FlowLoadError, match="line 3") as raised:
        extract_flow_from_file(file_path=str(script))
    assert str(script) in str(raised.value)
    assert isinstance(raised.value, FlowStorageError) and isinstance(raised.value, ValueError)
    with pytest.raises(FlowLoadError, match="line 3"):
        extract_flow_from_file(file_contents=source)


def test_an_error_raised_by_the_script_is_a_load_error(tmp_path: Path) -> None:
    script = _write(tmp_path / "raises.py", "raise RuntimeError('boom in script')\n")
    with pytest.raises(FlowLoadError, match="boom in script") as raised:
        extract_flow_from_file(file_path=str(script))
    assert "RuntimeError" in str(raised.value)


def test_no_flows_found() -> None:
    with pytest.raises(FlowLoadError, match="No flows found"):
        extract_flow_from_file(file_contents="x = 1\nflows = [1, 2]\n")


def test_flows_inside_containers_are_not_found() -> None:
    source = "from prefect_storage import Flow\nflows = [Flow('hidden')]\n"
    with pytest.raises(FlowLoadError, match="No flows found"):
        extract_flow_from_file(file_contents=source)


THREE_FLOWS = """\
from prefect_storage import Flow
zeta = Flow("zeta")
alpha = Flow("alpha")
mid = Flow("mid")
alias = alpha
"""


def test_a_flow_is_picked_by_name_and_the_first_one_by_default() -> None:
    assert extract_flow_from_file(file_contents=THREE_FLOWS, flow_name="mid").name == "mid"
    assert extract_flow_from_file(file_contents=THREE_FLOWS).name == "zeta"


def test_a_wrong_name_lists_the_flows_found_sorted() -> None:
    with pytest.raises(FlowLoadError) as raised:
        extract_flow_from_file(file_contents=THREE_FLOWS, flow_name="omega")
    message = str(raised.value)
    assert "'omega'" in message
    assert message.endswith("Found flows:\n- 'alpha'\n- 'mid'\n- 'zeta'")


def test_both_arguments_are_refused(tmp_path: Path) -> None:
    script = _write(tmp_path / "f.py", FLOW_SCRIPT.format(name="f"))
    with pytest.raises(ValueError, match="not both"):
        extract_flow_from_file(file_path=str(script), file_contents="x = 1")
    with pytest.raises(ValueError, match="not both"):  # "" counts as given
        extract_flow_from_file(file_path=str(script), file_contents="")


def test_neither_argument_is_refused() -> None:
    with pytest.raises(ValueError, match="Provide either `file_path` or `file_contents`"):
        extract_flow_from_file()
    with pytest.raises(ValueError, match="Provide either"):
        extract_flow_from_file(flow_name="x")


@pytest.mark.parametrize("contents", [123, ["x = 1"], bytearray(b"x = 1")])
def test_contents_of_a_bad_type_are_refused(contents: object) -> None:
    with pytest.raises(TypeError, match="`file_contents` must be string or bytes"):
        extract_flow_from_file(file_contents=contents)  # type: ignore[arg-type]


def test_a_missing_script_is_a_load_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.py"
    with pytest.raises(FlowLoadError, match=r"nowhere\.py"):
        extract_flow_from_file(file_path=str(missing))
    with pytest.raises(FlowLoadError, match=r"Cannot read flow script .*nowhere\.py"):
        flows_in_file(missing)


def test_flows_in_file_are_every_top_level_flow_in_definition_order(tmp_path: Path) -> None:
    script = _write(tmp_path / "three.py", THREE_FLOWS)
    assert list(flows_in_file(script)) == ["zeta", "alpha", "mid"]


# -- extract_flow_from_module ---------------------------------------------------------------
@pytest.fixture
def package(tmp_path: Path) -> str:
    """An importable package ``<pkg>`` with ``single``, ``multi`` and ``factory`` modules."""
    name = _unique("flowpkg")
    root = tmp_path / "site"
    _write(root / name / "__init__.py", "")
    _write(
        root / name / "single.py",
        """\
        from prefect_storage import Flow
        only = Flow("only one")
        not_a_flow = 42
        """,
    )
    _write(
        root / name / "multi.py",
        """\
        from prefect_storage import Flow
        first = Flow("first")
        second = Flow("second")

        class Holder:
            nested = Flow("nested")
        """,
    )
    _write(
        root / name / "factory.py",
        """\
        from prefect_storage import Flow
        calls = []

        def make_flow():
            calls.append(1)
            return Flow("made")

        def make_number():
            return 7
        """,
    )
    sys.path.insert(0, str(root))
    return name


def test_a_module_with_one_flow(package: str) -> None:
    assert extract_flow_from_module(f"{package}.single").name == "only one"
    assert extract_flow_from_module(f"{package}.single", flow_name="only one").name == "only one"


def test_a_module_attribute(package: str) -> None:
    assert extract_flow_from_module(f"{package}.multi:second").name == "second"
    assert extract_flow_from_module(f"{package}.multi:Holder.nested").name == "nested"
    flow = extract_flow_from_module(f"{package}.multi:first", flow_name="first")
    assert flow.name == "first"


def test_a_factory_is_called(package: str) -> None:
    flow = extract_flow_from_module(f"{package}.factory:make_flow")
    assert flow.name == "made"
    assert sys.modules[f"{package}.factory"].calls == [1]


def test_an_attribute_with_another_name_is_refused(package: str) -> None:
    with pytest.raises(FlowLoadError, match="named 'second', expected 'third'"):
        extract_flow_from_module(f"{package}.multi:second", flow_name="third")


def test_a_wrong_name_in_a_module_is_refused(package: str) -> None:
    with pytest.raises(FlowLoadError, match="'third'") as raised:
        extract_flow_from_module(f"{package}.multi", flow_name="third")
    assert isinstance(raised.value, ValueError)


def test_multiple_flows_need_a_name(package: str) -> None:
    with pytest.raises(FlowLoadError, match="Multiple flows found") as raised:
        extract_flow_from_module(f"{package}.multi")
    assert "flow_name" in str(raised.value)
    assert extract_flow_from_module(f"{package}.multi", flow_name="second").name == "second"


def test_a_module_without_flows(package: str) -> None:
    with pytest.raises(FlowLoadError, match="No flows found"):
        extract_flow_from_module(f"{package}.factory")


@pytest.mark.parametrize("attribute", ["single:not_a_flow", "factory:make_number"])
def test_a_non_flow_attribute_is_a_type_error(package: str, attribute: str) -> None:
    with pytest.raises(TypeError, match="not a `Flow`") as raised:
        extract_flow_from_module(f"{package}.{attribute}")
    assert attribute in str(raised.value)
    assert isinstance(raised.value, NotAFlowError) and isinstance(raised.value, FlowLoadError)


def test_a_failing_flow_factory_is_a_load_error() -> None:
    with pytest.raises(FlowLoadError, match=r"Calling 'json:dumps' .*TypeError"):
        extract_flow_from_module("json:dumps")


def test_a_module_raising_at_import_is_a_load_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path / "raising_flows_module.py", "raise ValueError('bad at import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for load in (extract_flow_from_module, flows_in_importable):
        with pytest.raises(
            FlowLoadError, match="'raising_flows_module' raised ValueError"
        ) as raised:
            load("raising_flows_module")
        assert "bad at import" in str(raised.value)


def test_flows_in_importable_finds_every_flow_and_skips_run_calls(
    package: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert sorted(flows_in_importable(f"{package}.multi")) == ["first", "second"]
    name = _unique("runs_at_import")
    _write(
        tmp_path / f"{name}.py",
        """\
        from prefect_storage import Flow, task
        ran = []

        @task
        def record():
            ran.append(1)

        with Flow("runs at import") as flow:
            record()
        flow.run()
        """,
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.warns(UserWarning, match="flow.run"):
        assert list(flows_in_importable(name)) == ["runs at import"]
    assert sys.modules[name].ran == []


def test_a_missing_attribute_is_named(package: str) -> None:
    with pytest.raises(FlowLoadError, match=r"Failed to find flow at .*single:nothing_here"):
        extract_flow_from_module(f"{package}.single:nothing_here")


def test_a_missing_module_is_a_load_error_naming_it(package: str) -> None:
    with pytest.raises(FlowLoadError, match="no_such_module"):
        extract_flow_from_module(f"{package}.no_such_module")


# -- a script that exits or is interrupted while it is loaded ---------------------------------
@pytest.mark.parametrize("code, shown", [("3", "3"), ("'bye'", "'bye'"), ("", "None")])
def test_a_script_calling_sys_exit_is_a_flow_load_error(
    tmp_path: Path, code: str, shown: str
) -> None:
    script = _write(tmp_path / "exits.py", f"import sys\nsys.exit({code})\n")
    with pytest.raises(FlowLoadError) as raised:
        extract_flow_from_file(file_path=str(script))
    message = str(raised.value)
    assert f"called sys.exit({shown}) while being loaded" in message
    assert str(script) in message and len(message.splitlines()) == 1


def test_a_keyboard_interrupt_while_loading_stays_one(tmp_path: Path) -> None:
    script = _write(tmp_path / "interrupted.py", "raise KeyboardInterrupt\n")
    with pytest.raises(KeyboardInterrupt):
        extract_flow_from_file(file_path=str(script))


def test_a_module_calling_sys_exit_on_import_is_a_flow_load_error(tmp_path: Path) -> None:
    name = _unique("exiting")
    _write(tmp_path / f"{name}.py", "import sys\nsys.exit(3)\n")
    sys.path.insert(0, str(tmp_path))
    with pytest.raises(FlowLoadError, match=r"called sys.exit\(3\) while being loaded"):
        extract_flow_from_module(name)
