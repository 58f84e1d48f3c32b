"""Run a flow in this process: tasks in dependency order, with retries and result checkpoints.

Results are duck-typed (``format``/``write``/``exists``/``read``/``copy``/``location``) so
the engine never imports a backend.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from .context import context as run_context
from .state import Cached, Failed, State, Success, TriggerFailed
from .tasks import Task

if TYPE_CHECKING:
    from .flow import Flow

__all__ = ["CHECKPOINTING_ENV", "FlowRunner", "TaskRunner"]

CHECKPOINTING_ENV = "PREFECT_STORAGE_CHECKPOINTING"
"""Set to ``false`` (or ``0``) to stop writing task results; a run's ``context`` overrides it."""

_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")

flow_logger = logging.getLogger("prefect_storage.FlowRunner")
task_logger = logging.getLogger("prefect_storage.TaskRunner")


class FlowRunner:
    """Runs one flow; ``run`` returns the final state and never raises for a task's error."""

    def __init__(self, flow: Flow) -> None:
        self.flow = flow

    def run(
        self,
        parameters: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> State:
        """Run every task; bad ``parameters`` raise :class:`FlowParameterError` (a
        ``ValueError``) before anything runs.

        ``context`` adds keys to the run context (e.g. ``secrets``, ``flow_run_id``,
        ``checkpointing``, ``scheduled_start_time``).
        """
        flow = self.flow
        values = self._parameter_values(parameters or {})
        order = flow.sorted_tasks()
        with run_context(self._context_layer(values, dict(context or {}))):
            flow_logger.info("Beginning Flow run for %r", flow.name)
            states: dict[Task, State] = {}
            for task in order:
                states[task] = self._run_task(task, states)
            if all(states[task].is_successful() for task in flow.terminal_tasks()):
                flow_logger.info("Flow run SUCCESS: all reference tasks succeeded")
                return Success("All reference tasks succeeded.", result=states)
            flow_logger.error("Flow run FAILED: some reference tasks failed.")
            return Failed("Some reference tasks failed.", result=states)

    def _parameter_values(self, given: Mapping[str, Any]) -> dict[str, Any]:
        # Errors are imported where raised, so `import prefect_storage` does not load them.
        from ..exceptions import FlowParameterError

        declared = {parameter.name: parameter for parameter in self.flow.parameters()}
        known = ", ".join(repr(name) for name in sorted(declared)) or "none"
        unknown = sorted(set(given) - set(declared))
        if unknown:
            raise FlowParameterError(
                f"Unknown parameter(s) {', '.join(map(repr, unknown))} for flow "
                f"{self.flow.name!r}; its parameters are: {known}"
            )
        missing = sorted(name for name, p in declared.items() if p.required and name not in given)
        if missing:
            raise FlowParameterError(
                f"Required parameter(s) {', '.join(map(repr, missing))} of flow "
                f"{self.flow.name!r} were not provided"
            )
        return {name: given.get(name, p.default) for name, p in declared.items()}

    def _context_layer(self, parameters: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
        start = given.get("scheduled_start_time") or datetime.now(timezone.utc)
        run_id = given.get("flow_run_id") or _new_id()
        layer: dict[str, Any] = {
            "flow_run_id": run_id,
            "flow_run_name": run_id,
            "scheduled_start_time": start,
            "date": start,
            "map_index": None,
        }
        for name, day in (("yesterday", -1), ("today", 0), ("tomorrow", 1)):
            when = start + timedelta(days=day)
            layer[name] = when.strftime("%Y-%m-%d")
            layer[f"{name}_nodash"] = when.strftime("%Y%m%d")
        if "checkpointing" not in run_context:
            layer["checkpointing"] = _checkpointing_default()
        layer.update(given)
        # Not overridable: tasks calling tasks must not bind into a flow being built, and
        # ``Secret.get`` refuses while ``flow`` names a flow (a build, not a run).
        layer.update(flow_name=self.flow.name, parameters=parameters, flow=None)
        return layer

    def _run_task(self, task: Task, states: Mapping[Task, State]) -> State:
        flow = self.flow
        edges = flow.edges_to(task)
        if any(not states[edge.upstream].is_successful() for edge in edges):
            task_logger.info("Task %r: not run, an upstream task did not succeed", task.name)
            return TriggerFailed(
                'Trigger was "all_successful" but some of the upstream tasks failed.'
            )
        inputs = dict(flow.constants.get(task, {}))
        inputs.update({edge.key: states[edge.upstream].result for edge in edges if edge.key})
        result = task.result if task.result is not None else flow.result
        return TaskRunner(task, result=result, slug=flow.slugs.get(task)).run(inputs)


class TaskRunner:
    """Runs one task with its inputs: target check, attempts with retries, checkpoint."""

    def __init__(self, task: Task, result: Any = None, slug: str | None = None) -> None:
        self.task = task
        self.result = result
        self.slug = slug or task.slug or task.name

    def run(self, inputs: Mapping[str, Any]) -> State:
        task = self.task
        layer = {
            "task_name": task.name,
            "task_full_name": task.name,
            "task_slug": self.slug,
            "task_tags": sorted(task.tags),
            "task_run_id": _new_id(),
            "task_run_count": 1,
            "map_index": None,
        }
        with run_context(layer):
            task_logger.info("Task %r: Starting task run...", task.name)
            state = self._run(dict(inputs))
            task_logger.info("Task %r: Finished task run with final state: %r", task.name, state)
        return state

    def _run(self, inputs: dict[str, Any]) -> State:
        task = self.task
        target_location = None
        if task.target is not None:
            if self.result is None:
                task_logger.warning(
                    "Task %r has a target but no result to read or write it with; set the "
                    "task's or the flow's `result`",
                    task.name,
                )
            else:
                try:
                    target_location = self._target_location(_format_kwargs(inputs))
                    if self.result.exists(target_location):
                        value = self.result.read(target_location).value
                        return Cached(
                            f"Result found at task target {target_location}",
                            result=value,
                            location=target_location,
                        )
                except Exception as exc:
                    task_logger.exception("Task %r: could not check its target", task.name)
                    where = target_location or task.target
                    return Failed(f"Could not check task target {where!r}: {exc}", result=exc)

        attempts = task.max_retries + 1
        for attempt in range(1, attempts + 1):
            run_context.update(task_run_count=attempt)
            try:
                value = task.run(**inputs)
            except Exception as exc:
                if attempt < attempts:
                    delay = task.retry_delay or timedelta(0)
                    task_logger.warning(
                        "Task %r: attempt %d of %d failed (%r); retrying in %s",
                        task.name,
                        attempt,
                        attempts,
                        exc,
                        delay,
                        exc_info=True,
                    )
                    time.sleep(delay.total_seconds())
                    continue
                task_logger.exception(
                    "Task %r: Exception encountered during task execution!", task.name
                )
                return Failed(f"Error during execution of task: {exc!r}", result=exc)
            return self._checkpoint(value, _format_kwargs(inputs), target_location)
        raise AssertionError("unreachable: the last attempt always returns")

    def _target_location(self, fmt: dict[str, Any]) -> str:
        target = self.task.target
        assert target is not None  # only called for tasks with a target
        return target.format(**fmt) if isinstance(target, str) else target(**fmt)

    def _checkpoint(self, value: Any, fmt: dict[str, Any], target_location: str | None) -> State:
        result = self.result
        wanted = (
            result is not None
            and value is not None
            and self.task.checkpoint is not False
            and run_context.get("checkpointing")
        )
        if not wanted:
            return Success("Task run succeeded.", result=value)
        # Formatted once, so an error names exactly the location that failed.
        try:
            located = result.format(**fmt) if target_location is None else result.copy()
        except Exception as exc:
            return self._write_failed(repr(result.location), exc)
        where = target_location if target_location is not None else located.location
        # Escaped so that write()'s own formatting keeps exactly this location.
        located.location = where.replace("{", "{{").replace("}", "}}")
        # Not retried: re-running the task would repeat its side effects for a storage error.
        try:
            written = located.write(value)
        except NotImplementedError:
            # A plain Result stores nothing (legacy behaviour): the value stays in memory only.
            return Success("Task run succeeded.", result=value)
        except Exception as exc:
            return self._write_failed(repr(where), exc)
        return Success("Task run succeeded.", result=value, location=written.location)

    def _write_failed(self, where: str, exc: Exception) -> State:
        task_logger.error(
            "Task %r: could not write its result to %s", self.task.name, where, exc_info=exc
        )
        return Failed(f"Could not write the task's result to {where}: {exc}", result=exc)


def _format_kwargs(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """Keys for result locations and targets: context, then parameters, then task inputs."""
    values = run_context.to_dict()
    # A secret must never end up in a stored location or file name.
    values.pop("secrets", None)
    return {**values, **values.get("parameters", {}), **inputs}


def _new_id() -> str:
    import uuid  # lazily: uuid pulls in platform, a few ms of import time for every user

    return str(uuid.uuid4())


def _checkpointing_default() -> bool:
    raw = os.environ.get(CHECKPOINTING_ENV, "true").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    from ..exceptions import (
        SettingError,
    )  # imported when raised: `import prefect_storage` stays small

    raise SettingError(f"{CHECKPOINTING_ENV} must be true or false, got {raw!r}")
