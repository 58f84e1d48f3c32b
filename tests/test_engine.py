"""The flow engine: building DAGs from calls, running them, context, retries and results."""

from __future__ import annotations

import copy
import logging
import re
import threading
from datetime import datetime, timedelta, timezone
from typing import Any

import cloudpickle
import pytest

from prefect_storage.engine import (
    Cached,
    Edge,
    Failed,
    Flow,
    Parameter,
    Success,
    Task,
    TriggerFailed,
    context,
    task,
)
from prefect_storage.exceptions import FlowParameterError, SettingError
from prefect_storage.secrets import ENV_PREFIX, Secret


class DictResult:
    """A Result look-alike that stores values in a dict shared by all its copies."""

    def __init__(self, location: str | None = None, fail: bool = False) -> None:
        self.store: dict[str, Any] = {}
        self.location = location
        self.value: Any = None
        self.fail = fail

    def copy(self) -> DictResult:
        return copy.copy(self)

    def format(self, **kwargs: Any) -> DictResult:
        new = self.copy()
        new.location = (self.location or "default").format(**kwargs)
        return new

    def write(self, value_: Any, **kwargs: Any) -> DictResult:
        new = self.format(**kwargs)
        if self.fail:
            raise OSError("disk full")
        new.value = value_
        self.store[new.location] = value_
        return new

    def exists(self, location: str, **kwargs: Any) -> bool:
        return location.format(**kwargs) in self.store

    def read(self, location: str) -> DictResult:
        new = self.copy()
        new.location = location
        new.value = self.store[location]
        return new


@task
def add(x: int, y: int = 1) -> int:
    return x + y


@task
def inc(x: int) -> int:
    return x + 1


# -- building -------------------------------------------------------------------------------
def test_calls_build_edges_constants_and_order_only_edges() -> None:
    with Flow("build") as flow:
        a = add(1, 2)
        b = add(a, y=10)
        c = inc(5, upstream_tasks=[b])

    assert a is not add and b is not add and a is not b  # each call binds a copy
    assert flow.tasks == {a, b, c}
    assert flow.edges == {Edge(a, b, "x"), Edge(b, c, None)}
    assert flow.constants[a] == {"x": 1, "y": 2}
    assert flow.constants[b] == {"y": 10}
    assert flow.upstream_tasks(c) == {b}
    assert flow.terminal_tasks() == {c}
    assert [flow.slugs[t] for t in (a, b, c)] == ["add-1", "add-2", "inc-1"]
    assert flow.get_tasks(name="add") == [a, b]
    assert flow.get_tasks(slug="add-2") == [b]
    assert repr(flow) == '<Flow: name="build">'

    state = flow.run()
    assert state.result[a].result == 3
    assert state.result[b].result == 13
    assert state.result[c].result == 6


def test_calling_a_task_outside_a_flow_is_an_error_but_run_works() -> None:
    with pytest.raises(ValueError, match="Could not infer an active Flow context"):
        add(1, 2)
    assert add.run(1, 2) == 3


def test_bad_arguments_are_rejected_when_binding() -> None:
    with Flow("bad args"), pytest.raises(TypeError, match="add"):
        add(1, 2, 3)


def test_task_names_default_to_the_function_name_and_can_be_set() -> None:
    def double(x: int) -> int:
        return 2 * x

    assert task(double).name == "double"
    assert task(double, name="twice").name == "twice"
    assert task(name="thrice")(double).name == "thrice"
    assert repr(task(double)) == "<Task: double>"


def test_explicit_slugs_must_be_unique() -> None:
    first = Task(name="t", slug="same")
    with pytest.raises(ValueError, match="slug 'same'"):
        Flow("slugs", tasks=[first, Task(name="t", slug="same")])


def test_sorted_tasks_follow_dependencies_and_keep_insertion_order_for_ties() -> None:
    flow = Flow("order")
    late, early, middle, first = (Task(name=n) for n in ("late", "early", "middle", "first"))
    for t in (late, early, middle):
        flow.add_task(t)
    flow.add_edge(first, late)  # `first` joins last but must run before `late`
    flow.add_edge(middle, early)

    assert [t.name for t in flow.sorted_tasks()] == ["middle", "early", "first", "late"]


def test_an_edge_closing_a_cycle_is_refused() -> None:
    a, b, c = Task(name="a"), Task(name="b"), Task(name="c")
    flow = Flow("cycle", edges=[(a, b), (b, c)])
    with pytest.raises(ValueError, match="cycle"):
        flow.add_edge(c, a)
    with pytest.raises(ValueError, match="cycle"):
        flow.add_edge(a, a)
    assert flow.edges == {Edge(a, b), Edge(b, c)}


@pytest.mark.parametrize("name, error", [("", ValueError), ("  ", ValueError), (None, TypeError)])
def test_flow_name_must_be_a_non_empty_str(name: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="name"):
        Flow(name)


# -- parameters -----------------------------------------------------------------------------
def test_parameters_take_defaults_and_run_values() -> None:
    with Flow("params") as flow:
        x = Parameter("x", default=1)
        total = add(x, 100)

    assert flow.parameters() == {x}
    assert flow.run().result[total].result == 101
    assert flow.run(parameters={"x": 5}).result[total].result == 105


def test_a_parameter_created_outside_the_block_joins_when_used() -> None:
    x = Parameter("x", default=2)
    with Flow("late param") as flow:
        total = inc(x)
    assert flow.parameters() == {x}
    assert flow.run().result[total].result == 3


def test_missing_required_parameter_is_an_error_naming_it() -> None:
    with Flow("required") as flow:
        inc(Parameter("needed", required=True))
    with pytest.raises(FlowParameterError, match="'needed'") as raised:
        flow.run()
    assert isinstance(raised.value, ValueError)


def test_unknown_parameter_is_an_error_listing_the_known_ones() -> None:
    with Flow("unknown") as flow:
        inc(Parameter("known", default=1))
    with pytest.raises(FlowParameterError, match=r"'typo'.*'known'"):
        flow.run(parameters={"typo": 1})


def test_two_parameters_with_one_name_are_refused() -> None:
    with Flow("dupes"):
        Parameter("x")
        with pytest.raises(ValueError, match="'x'"):
            Parameter("x")


# -- retries and failures -------------------------------------------------------------------
def test_retries_until_success_and_counts_runs() -> None:
    counts: list[int] = []

    @task(max_retries=2, retry_delay=timedelta(0))
    def flaky() -> str:
        counts.append(context["task_run_count"])
        if len(counts) < 3:
            raise RuntimeError("not yet")
        return "ok"

    with Flow("retry") as flow:
        t = flaky()
    state = flow.run()
    assert state.is_successful()
    assert state.result[t].result == "ok"
    assert counts == [1, 2, 3]


def test_retries_run_out_into_a_failed_state() -> None:
    calls: list[int] = []

    @task(max_retries=1, retry_delay=0)
    def broken() -> None:
        calls.append(1)
        raise RuntimeError("always")

    with Flow("no luck") as flow:
        t = broken()
    state = flow.run()
    assert len(calls) == 2
    assert state.is_failed() and isinstance(state.result[t], Failed)
    assert isinstance(state.result[t].result, RuntimeError)


@pytest.mark.parametrize("delay", [None, -1, timedelta(seconds=-1)])
def test_retries_need_a_non_negative_retry_delay(delay: Any) -> None:
    with pytest.raises(ValueError, match="retry_delay"):
        task(lambda: None, max_retries=1, retry_delay=delay)


def test_failure_marks_downstream_trigger_failed_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ran: list[str] = []

    @task
    def explode() -> int:
        raise ZeroDivisionError("boom")

    @task
    def after(x: int) -> None:
        ran.append("after")

    with Flow("fails") as flow:
        bad = explode()
        good = inc(1)
        down = after(bad)

    with caplog.at_level(logging.INFO, logger="prefect_storage"):
        state = flow.run()

    assert state.is_failed() and state.is_finished() and not state.is_successful()
    assert repr(state) == '<Failed: "Some reference tasks failed.">'
    assert isinstance(state.result[bad].result, ZeroDivisionError)
    assert type(state.result[down]) is TriggerFailed and ran == []
    assert state.result[good].is_successful()
    logged = [r.exc_info for r in caplog.records if r.name == "prefect_storage.TaskRunner"]
    assert any(info and info[0] is ZeroDivisionError for info in logged)


# -- context --------------------------------------------------------------------------------
def test_task_code_sees_the_run_context() -> None:
    seen: dict[str, Any] = {}

    @task
    def look(x: int) -> None:
        seen.update(context.to_dict())
        seen["logger_name"] = context.get("logger").name

    with Flow("ctx flow") as flow:
        look(Parameter("x", default=7))
    flow.run(context={"secrets": {"TOKEN": "s3cr3t"}})

    assert seen["flow_name"] == "ctx flow"
    assert seen["task_name"] == "look" and seen["task_slug"] == "look-1"
    assert seen["parameters"] == {"x": 7}
    assert seen["secrets"] == {"TOKEN": "s3cr3t"}
    assert seen["today"] == datetime.now(timezone.utc).strftime("%Y-%m-%d")
    assert re.fullmatch(r"\d{8}", seen["yesterday_nodash"])
    assert re.fullmatch(r"[0-9a-f-]{36}", seen["flow_run_id"])
    assert seen["map_index"] is None and seen["task_run_count"] == 1
    assert seen["logger_name"] == "prefect_storage.Task.look"
    assert "flow_name" not in context  # the run's layers are gone afterwards


def test_a_run_inside_the_with_block_does_not_look_like_building(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(ENV_PREFIX + "INSIDE_A_RUN", "resolved")
    seen: dict[str, Any] = {}

    @task
    def look() -> None:
        seen.update(flow=context.get("flow"), secret=Secret("INSIDE_A_RUN").get())

    with Flow("run inside") as flow:
        look()
        assert context["flow"] is flow
        assert flow.run().is_successful()
    # The run's context hides the flow being built, so Secret.get (which refuses while a
    # flow is being built) resolves inside the run's tasks.
    assert seen == {"flow": None, "secret": "resolved"}


def test_context_layers_nest_and_restore() -> None:
    assert isinstance(context.get("logger"), logging.Logger)
    assert context.get("secrets", {}) == {}
    with pytest.raises(KeyError):
        context["missing"]
    with context(a=1, b=1):
        with context(b=2):
            context.update(c=3)
            assert (context["a"], context["b"], context["c"]) == (1, 2, 3)
        assert context.to_dict()["b"] == 1 and "c" not in context
        snapshot = context.to_dict()
        snapshot["a"] = 99
        assert context["a"] == 1
    assert "a" not in context


def test_context_is_thread_local() -> None:
    seen: dict[str, Any] = {}
    entered, release = threading.Event(), threading.Event()

    def other_thread() -> None:
        seen["outer"] = context.get("where")
        with context(where="thread"):
            seen["inner"] = context["where"]
            entered.set()
            release.wait(5)

    with context(where="main"):
        thread = threading.Thread(target=other_thread)
        thread.start()
        try:
            assert entered.wait(5)
            seen["main"] = context["where"]  # while the thread's layer is pushed
        finally:
            release.set()
            thread.join()
    assert seen == {"outer": None, "inner": "thread", "main": "main"}


def test_flow_run_while_loading_a_flow_file_warns_and_does_nothing() -> None:
    ran: list[int] = []
    with Flow("script") as flow:
        task(lambda: ran.append(1), name="side_effect")()
    with (
        context(loading_flow=True),
        pytest.warns(UserWarning, match="during execution of flow file"),
    ):
        assert flow.run() is None
    assert ran == []


# -- pickling -------------------------------------------------------------------------------
def test_flow_round_trips_through_cloudpickle() -> None:
    def scale(x: int, factor: int) -> int:
        return x * factor + context["parameters"]["offset"]

    with Flow("pickled", result=DictResult("{task_name}")) as flow:
        offset = Parameter("offset", default=1)
        scale_task = task(scale, name="x")
        scale_task(inc(offset), factor=10)

    copy_ = cloudpickle.loads(cloudpickle.dumps(flow, protocol=4))
    assert copy_.name == "pickled" and len(copy_.tasks) == 3
    state = copy_.run(parameters={"offset": 2})
    assert state.is_successful()
    assert state.result[copy_.get_tasks(name="x")[0]].result == 32


# -- results --------------------------------------------------------------------------------
def test_results_are_checkpointed_at_their_formatted_location() -> None:
    result = DictResult("{flow_name}/{task_name}/{today}-{x}.bin")
    with Flow("ckpt", result=result) as flow:
        first = inc(Parameter("x", default=1))
    state = flow.run(parameters={"x": 4})

    expected = f"ckpt/inc/{_today()}-4.bin"
    assert result.store == {expected: 5}  # the parameter itself is not checkpointed
    assert state.result[first].location == expected


def test_task_result_overrides_flow_result_and_nothing_or_none_is_skipped() -> None:
    flow_result, task_result = DictResult("flow/{task_name}"), DictResult("task/{task_name}")
    with Flow("choices", result=flow_result) as flow:
        task(lambda: 1, name="own", result=task_result)()
        task(lambda: 2, name="shared")()
        task(lambda: 3, name="opted_out", checkpoint=False)()
        task(lambda: None, name="nothing")()
    flow.run()
    assert task_result.store == {"task/own": 1}
    assert flow_result.store == {"flow/shared": 2}


def test_checkpointing_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    result = DictResult("{task_name}")
    with Flow("off", result=result) as flow:
        inc(1)

    monkeypatch.setenv("PREFECT_STORAGE_CHECKPOINTING", "false")
    flow.run()
    assert result.store == {}

    flow.run(context={"checkpointing": True})  # the caller's context wins over the env
    assert result.store == {"inc": 2}

    monkeypatch.delenv("PREFECT_STORAGE_CHECKPOINTING")
    result.store.clear()
    flow.run(context={"checkpointing": False})
    with context(checkpointing=False):  # so does an enclosing context layer
        flow.run()
    assert result.store == {}
    flow.run()  # on by default
    assert result.store == {"inc": 2}


def test_a_checkpointing_setting_that_is_no_boolean_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with Flow("unsure", result=DictResult("{task_name}")) as flow:
        inc(1)
    monkeypatch.setenv("PREFECT_STORAGE_CHECKPOINTING", "maybe")
    with pytest.raises(SettingError, match=r"PREFECT_STORAGE_CHECKPOINTING.*'maybe'"):
        flow.run()


def test_an_existing_target_is_read_instead_of_running() -> None:
    runs: list[int] = []

    @task(target="{flow_name}/{task_name}/{x}-{label}", result=DictResult())
    def expensive(x: int) -> int:
        runs.append(x)
        return x * 2

    with Flow("targets") as flow:
        Parameter("label", default="a")  # used by the target only, not an input
        done = expensive(3)

    first = flow.run()
    assert type(first.result[done]) is Success and runs == [3]
    assert first.result[done].location == "targets/expensive/3-a"

    second = flow.run()
    assert type(second.result[done]) is Cached and runs == [3]
    assert second.result[done].result == 6
    assert second.result[done].location == "targets/expensive/3-a"

    third = flow.run(parameters={"label": "b"})  # another location: run again
    assert type(third.result[done]) is Success and runs == [3, 3]


def test_a_callable_target_is_called_with_the_format_keys() -> None:
    result = DictResult()
    result.store["callable/2"] = "stored"

    @task(target=lambda **kw: f"callable/{kw['x']}", result=result)
    def never(x: int) -> str:
        raise AssertionError("the target exists; the task must not run")

    with Flow("callable target") as flow:
        t = never(2)
    state = flow.run()
    assert state.is_successful() and state.result[t].result == "stored"


def test_a_write_failure_fails_the_task_naming_the_location() -> None:
    with Flow("broken store", result=DictResult("out/{task_name}.bin", fail=True)) as flow:
        t = inc(1)
    state = flow.run()
    assert state.is_failed()
    assert "out/inc.bin" in state.result[t].message
    assert isinstance(state.result[t].result, OSError)


def _today() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d")
