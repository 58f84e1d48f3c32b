"""``Flow``: a named DAG of tasks, built by calling tasks inside ``with Flow(...) as flow:``."""

from __future__ import annotations

import heapq
import warnings
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from .context import context
from .runner import FlowRunner
from .state import State
from .tasks import Parameter, Task

__all__ = ["Edge", "Flow"]


class Edge(NamedTuple):
    """``downstream`` runs after ``upstream``; with a ``key``, it gets its value as that input."""

    upstream: Task
    downstream: Task
    key: str | None = None


class Flow:
    """A named DAG of tasks.

    ``storage``, ``result`` and ``run_config`` are plain attributes that users set at any time
    (``flow.storage = Local()``). ``slugs`` maps each task to its slug, unique in this flow;
    ``constants`` maps a task to the non-task arguments it was called with.
    """

    def __init__(
        self,
        name: str,
        tasks: Iterable[Task] | None = None,
        edges: Iterable[Edge | tuple[Any, ...]] | None = None,
        storage: Any = None,
        result: Any = None,
        run_config: Any = None,
        schedule: Any = None,
    ) -> None:
        if not isinstance(name, str):
            raise TypeError(f"Flow `name` must be a str, got {type(name).__name__}")
        if not name.strip():
            raise ValueError("Flow `name` must not be empty")
        self.name = name
        self.storage = storage
        self.result = result
        self.run_config = run_config
        self.schedule = schedule
        # dicts, not sets: insertion order makes sorting and slugs deterministic.
        self._tasks: dict[Task, None] = {}
        self._edges: dict[Edge, None] = {}
        self._edges_in: dict[Task, dict[Edge, None]] = {}
        self._edges_out: dict[Task, dict[Edge, None]] = {}
        self.slugs: dict[Task, str] = {}
        self.constants: dict[Task, dict[str, Any]] = {}
        for task in tasks or ():
            self.add_task(task)
        for edge in edges or ():
            self.add_edge(*edge)

    # -- building --------------------------------------------------------------------------
    def __enter__(self) -> Flow:
        self._context_layer = context(flow=self)
        self._context_layer.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.__dict__.pop("_context_layer").__exit__(*exc_info)

    def add_task(self, task: Task) -> Task:
        if not isinstance(task, Task):
            raise TypeError(f"Flows can only contain Tasks, got {task!r}")
        if task in self._tasks:
            return task
        if isinstance(task, Parameter) and any(p.name == task.name for p in self.parameters()):
            raise ValueError(f"Flow {self.name!r} already has a parameter named {task.name!r}")
        used = set(self.slugs.values())
        if task.slug is None:
            number = 1
            while f"{task.name}-{number}" in used:
                number += 1
            slug = f"{task.name}-{number}"
        elif task.slug in used:
            raise ValueError(f"Flow {self.name!r} already has a task with slug {task.slug!r}")
        else:
            slug = task.slug
        self._tasks[task] = None
        self._edges_in[task] = {}
        self._edges_out[task] = {}
        self.slugs[task] = slug
        return task

    def add_edge(self, upstream: Task, downstream: Task, key: str | None = None) -> Edge:
        for task in (upstream, downstream):
            if not isinstance(task, Task):
                raise TypeError(f"Edges join Tasks, got {task!r}")
        if key is not None:
            self._check_key_free(downstream, key)
        if upstream is downstream or self._reaches(downstream, upstream):
            raise ValueError(
                f"Adding an edge from {upstream!r} to {downstream!r} would create a cycle "
                f"in flow {self.name!r}"
            )
        self.add_task(upstream)
        self.add_task(downstream)
        edge = Edge(upstream, downstream, key)
        self._edges[edge] = None
        self._edges_in[downstream][edge] = None
        self._edges_out[upstream][edge] = None
        return edge

    def set_dependencies(
        self,
        task: Task,
        upstream_tasks: Iterable[Task] | None = None,
        keyword_tasks: Mapping[str, Any] | None = None,
    ) -> None:
        """Add ``task`` with order-only edges from ``upstream_tasks`` and its inputs.

        ``keyword_tasks`` maps argument names to tasks (edges) or plain values (constants).
        """
        self.add_task(task)
        for upstream in upstream_tasks or ():
            self.add_edge(upstream, task)
        for key, value in (keyword_tasks or {}).items():
            if isinstance(value, Task):
                self.add_edge(value, task, key=key)
            else:
                self._check_key_free(task, key)
                self.constants.setdefault(task, {})[key] = value

    def _check_key_free(self, task: Task, key: str) -> None:
        taken = key in self.constants.get(task, {}) or any(
            edge.key == key for edge in self._edges_in.get(task, ())
        )
        if taken:
            raise ValueError(f"Argument {key!r} of {task!r} is already bound in flow {self.name!r}")

    def _reaches(self, start: Task, goal: Task) -> bool:
        seen: set[Task] = set()
        todo = [start]
        while todo:
            task = todo.pop()
            if task is goal:
                return True
            if task not in seen:
                seen.add(task)
                todo.extend(edge.downstream for edge in self._edges_out.get(task, ()))
        return False

    # -- inspecting ------------------------------------------------------------------------
    @property
    def tasks(self) -> set[Task]:
        return set(self._tasks)

    @property
    def edges(self) -> set[Edge]:
        return set(self._edges)

    def get_tasks(self, name: str | None = None, slug: str | None = None) -> list[Task]:
        """Tasks matching every criterion given, in the order they were added."""
        return [
            task
            for task in self._tasks
            if (name is None or task.name == name) and (slug is None or self.slugs[task] == slug)
        ]

    def parameters(self) -> set[Parameter]:
        return {task for task in self._tasks if isinstance(task, Parameter)}

    def upstream_tasks(self, task: Task) -> set[Task]:
        return {edge.upstream for edge in self._edges_in[task]}

    def edges_to(self, task: Task) -> set[Edge]:
        return set(self._edges_in[task])

    def terminal_tasks(self) -> set[Task]:
        """Tasks nothing depends on: the flow run's reference tasks."""
        return {task for task in self._tasks if not self._edges_out[task]}

    def sorted_tasks(self) -> tuple[Task, ...]:
        """Tasks in dependency order; ties keep the order in which tasks were added."""
        position = {task: index for index, task in enumerate(self._tasks)}
        waiting = {task: len(self._edges_in[task]) for task in self._tasks}
        ready = [index for task, index in position.items() if not waiting[task]]
        heapq.heapify(ready)
        tasks = list(self._tasks)
        order: list[Task] = []
        while ready:
            task = tasks[heapq.heappop(ready)]
            order.append(task)
            for edge in self._edges_out[task]:
                waiting[edge.downstream] -= 1
                if not waiting[edge.downstream]:
                    heapq.heappush(ready, position[edge.downstream])
        if len(order) != len(tasks):
            stuck = ", ".join(repr(task) for task in tasks if waiting[task])
            raise ValueError(f"Flow {self.name!r} has a cycle among: {stuck}")
        return tuple(order)

    # -- running ---------------------------------------------------------------------------
    def run(self, parameters: Mapping[str, Any] | None = None, **kwargs: Any) -> State | None:
        """Run the flow in this process; ``kwargs`` go to ``FlowRunner.run`` (e.g. ``context``).

        Returns ``None`` without running while a flow script is being loaded.
        """
        if context.get("loading_flow"):
            warnings.warn(
                "Attempting to call `flow.run` during execution of flow file will lead to "
                "unexpected results.",
                UserWarning,
                stacklevel=2,
            )
            return None
        return FlowRunner(self).run(parameters=parameters, **kwargs)

    def register(
        self,
        project_name: str | None = None,
        labels: Iterable[str] | None = None,
        build: bool = True,
        registry: Any = None,
        **storage_kwargs: Any,
    ) -> str | None:
        """Store this flow and record it in the flow registry; returns the flow's id.

        ``registry`` is a ``FlowRegistry`` or a database URL (default: the embedded
        SQLite registry). ``storage_kwargs`` build the default ``Local`` storage when
        ``flow.storage`` is unset. Registering identical content returns the existing id.
        """
        # The one upward import (engine -> registry): Flow.register is the user's door to it.
        from ..registry.registration import register_flow

        record = register_flow(
            self,
            project_name=project_name,
            labels=list(labels or ()),
            build=build,
            registry=registry,
            **storage_kwargs,
        )
        return record.id if record is not None else None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        # An open ``with flow:`` block belongs to this process, not to the pickle.
        state.pop("_context_layer", None)
        return state

    def __repr__(self) -> str:
        return f'<Flow: name="{self.name}">'
