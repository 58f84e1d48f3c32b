"""The run context: one dict-like object, stacked per thread, that task code can read.

``with context(key=value):`` pushes a layer for the duration of the block; lookups see the
merge of every layer, inner layers winning. Each thread starts with its own empty stack, so
two flows running in two threads never see each other's keys.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

__all__ = ["Context", "context"]

_EMPTY: Mapping[str, Any] = {}


class _Layers(threading.local):
    def __init__(self) -> None:
        self.stack: list[dict[str, Any]] = [{}]


class Context(Mapping[str, Any]):
    """Thread-local stacked mapping; use the module-level ``context`` instance.

    Keys set by the flow runner: ``flow_name``, ``flow_run_id``, ``flow_run_name``,
    ``parameters``, ``date``, ``today``/``yesterday``/``tomorrow`` (and ``*_nodash``),
    ``scheduled_start_time``, ``checkpointing``; per task: ``task_name``, ``task_full_name``,
    ``task_slug``, ``task_tags``, ``task_run_id``, ``task_run_count``, ``map_index``.
    Others in use: ``secrets``, ``loading_flow``, ``local_script_path``, ``flow`` (the flow
    being built). ``logger`` is always present.
    """

    def __init__(self) -> None:
        self._layers = _Layers()

    def _merged(self) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for layer in self._layers.stack:
            merged.update(layer)
        return merged

    def __getitem__(self, key: str) -> Any:
        for layer in reversed(self._layers.stack):
            if key in layer:
                return layer[key]
        if key == "logger":
            return self._default_logger()
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())

    def __setitem__(self, key: str, value: Any) -> None:
        self._layers.stack[-1][key] = value

    def __getattr__(self, name: str) -> Any:
        # Prefect 1 users write ``context.flow_name``; dunder look-ups must fail normally.
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"context has no key {name!r}") from None

    def update(self, mapping: Mapping[str, Any] = _EMPTY, /, **kwargs: Any) -> None:
        """Set keys in the current (innermost) layer."""
        self._layers.stack[-1].update(mapping, **kwargs)

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]

    def to_dict(self) -> dict[str, Any]:
        """A plain, merged copy of every layer (``logger`` included)."""
        merged = self._merged()
        merged.setdefault("logger", self._default_logger())
        return merged

    @contextmanager
    def __call__(self, mapping: Mapping[str, Any] = _EMPTY, /, **kwargs: Any) -> Iterator[Context]:
        """Push a layer holding ``mapping`` and ``kwargs`` until the block exits."""
        stack = self._layers.stack
        stack.append({**mapping, **kwargs})
        depth = len(stack)
        try:
            yield self
        finally:
            # Drop our layer and anything a misbehaving caller left above it.
            del stack[depth - 1 :]

    def __reduce__(self) -> str:
        # Pickled by reference: a task function that reads ``context`` must find the live
        # object of the process that unpickles it, not a frozen copy.
        return "context"

    def __repr__(self) -> str:
        return f"<Context: {sorted(self._merged())}>"

    def _default_logger(self) -> logging.Logger:
        merged = self._merged()
        if merged.get("task_name"):
            return logging.getLogger(f"prefect_storage.Task.{merged['task_name']}")
        if merged.get("flow_name"):
            return logging.getLogger(f"prefect_storage.Flow.{merged['flow_name']}")
        return logging.getLogger("prefect_storage")


context = Context()
"""The process-wide run context (per-thread contents)."""
