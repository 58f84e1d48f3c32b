"""Tasks: units of work that calls inside ``with Flow(...)`` bind into a DAG."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, overload

from .context import context

if TYPE_CHECKING:
    import inspect

__all__ = ["FunctionTask", "Parameter", "Task", "task"]


class Task:
    """Base class: subclass it and override ``run``, or use the ``@task`` decorator.

    ``result`` (a Result) and ``target`` (a location template or callable) control where the
    task's value is checkpointed and whether a stored value is read instead of running.
    """

    def __init__(
        self,
        name: str | None = None,
        slug: str | None = None,
        tags: Iterable[str] | None = None,
        max_retries: int = 0,
        retry_delay: timedelta | float | None = None,
        result: Any = None,
        target: str | Callable[..., str] | None = None,
        checkpoint: bool | None = None,
    ) -> None:
        self.name = type(self).__name__ if name is None else name
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"`name` must be a non-empty str, got {self.name!r}")
        self.slug = slug
        self.tags = set(tags or ())
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"`max_retries` must be an int >= 0, got {max_retries!r}")
        self.max_retries = max_retries
        self.retry_delay = _as_delay(retry_delay)
        if max_retries > 0 and self.retry_delay is None:
            raise ValueError(
                "A `retry_delay` is required when `max_retries` is set, "
                "e.g. retry_delay=timedelta(seconds=10)"
            )
        if target is not None and not (isinstance(target, str) or callable(target)):
            raise TypeError(f"`target` must be a str template or a callable, got {target!r}")
        self.result = result
        self.target = target
        self.checkpoint = checkpoint

    def run(self) -> Any:
        """The task's work; subclasses override it with the inputs as arguments."""
        return None

    def copy(self) -> Task:
        new = copy.copy(self)
        new.tags = set(self.tags)
        return new

    def __call__(
        self, *args: Any, upstream_tasks: Iterable[Task] | None = None, **kwargs: Any
    ) -> Task:
        """Bind a copy of this task into the active flow, with its arguments as inputs.

        Task-valued arguments become edges; other values are constants of this binding.
        ``upstream_tasks`` adds order-only edges.
        """
        flow = context.get("flow")
        if flow is None:
            raise ValueError(
                f"Could not infer an active Flow context while calling {self!r}. Call tasks "
                "inside a `with Flow(...) as flow:` block; to run the function itself, "
                "call `.run(...)`."
            )
        inputs = self._bind(args, kwargs)
        new = self.copy()
        flow.set_dependencies(new, upstream_tasks=upstream_tasks, keyword_tasks=inputs)
        return new

    def _signature(self) -> inspect.Signature:
        import inspect  # lazily: inspect alone would double the engine's import time

        return inspect.signature(self.run)

    def _bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """Map call arguments to ``run``'s parameter names (``**kwargs`` flattened)."""
        from inspect import Parameter as Param

        signature = self._signature()
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"Bad arguments for {self!r}: {exc}") from None
        inputs: dict[str, Any] = {}
        for name, value in bound.arguments.items():
            kind = signature.parameters[name].kind
            if kind is Param.VAR_KEYWORD:
                inputs.update(value)
            elif kind in (Param.VAR_POSITIONAL, Param.POSITIONAL_ONLY):
                # The runner passes inputs by name, so these could not be delivered.
                raise TypeError(f"{self!r}: tasks cannot take *args or positional-only inputs")
            else:
                inputs[name] = value
        return inputs

    def __getstate__(self) -> dict[str, Any]:
        # Sorted, so a flow pickles to the same bytes under any hash seed.
        return {**self.__dict__, "tags": sorted(self.tags)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, tags=set(state["tags"]))

    def __repr__(self) -> str:
        return f"<Task: {self.name}>"


class FunctionTask(Task):
    """A task whose ``run`` is a plain function (what ``@task`` makes)."""

    def __init__(self, fn: Callable[..., Any], name: str | None = None, **kwargs: Any) -> None:
        if not callable(fn):
            raise TypeError(f"@task needs a callable, got {fn!r}")
        self.fn = fn
        super().__init__(name=getattr(fn, "__name__", None) if name is None else name, **kwargs)
        self.__doc__ = getattr(fn, "__doc__", None)

    def run(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def _signature(self) -> inspect.Signature:
        import inspect

        return inspect.signature(self.fn)


_TaskDecorator = Callable[[Callable[..., Any]], FunctionTask]


@overload
def task(fn: Callable[..., Any], /, **task_kwargs: Any) -> FunctionTask: ...
@overload
def task(fn: None = None, /, **task_kwargs: Any) -> _TaskDecorator: ...
def task(
    fn: Callable[..., Any] | None = None, /, **task_kwargs: Any
) -> FunctionTask | _TaskDecorator:
    """Make a task from a function: ``@task``, ``@task(name=..., max_retries=...)`` or
    ``task(fn, name=...)``. Keyword arguments are those of ``Task``."""
    if fn is None:
        return lambda fn: FunctionTask(fn, **task_kwargs)
    return FunctionTask(fn, **task_kwargs)


class Parameter(Task):
    """A flow input: its value comes from ``flow.run(parameters=...)``, else ``default``.

    Created inside ``with Flow(...)`` it joins that flow; otherwise it joins the flow of the
    first task it is passed to.
    """

    def __init__(
        self,
        name: str,
        default: Any = None,
        required: bool = False,
        tags: Iterable[str] | None = None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"Parameter `name` must be a non-empty str, got {name!r}")
        # Not checkpointed: the value is the run's own input, there is nothing to recover.
        super().__init__(name=name, slug=name, tags=tags, checkpoint=False)
        self.default = default
        self.required = required
        flow = context.get("flow")
        if flow is not None:
            flow.add_task(self)

    def run(self) -> Any:
        parameters = context.get("parameters") or {}
        if self.name in parameters:
            return parameters[self.name]
        if self.required:
            raise ValueError(f"Parameter {self.name!r} is required but was not provided")
        return self.default

    def __repr__(self) -> str:
        return f"<Parameter: {self.name}>"


def _as_delay(delay: timedelta | float | None) -> timedelta | None:
    if delay is None:
        return None
    if isinstance(delay, bool) or not isinstance(delay, (timedelta, int, float)):
        raise TypeError(f"`retry_delay` must be a timedelta or seconds, got {delay!r}")
    if not isinstance(delay, timedelta):
        delay = timedelta(seconds=delay)
    if delay < timedelta(0):
        raise ValueError(f"`retry_delay` must not be negative, got {delay}")
    return delay
