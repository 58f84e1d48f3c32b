"""Run states of tasks and flows.

A task state's ``result`` is the task's return value (for ``Failed``, the exception). A flow
run's final state holds ``{task: task_state}`` as its ``result``, so
``state.result[task].result`` is a task's value, as in Prefect 1.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "Cached",
    "Failed",
    "Pending",
    "Retrying",
    "Running",
    "State",
    "Success",
    "TriggerFailed",
]


class State:
    """Base of every state: a ``message``, a ``result`` and, once written, its ``location``."""

    def __init__(
        self, message: str | None = None, result: Any = None, location: str | None = None
    ) -> None:
        self.message = message
        self.result = result
        self.location = location

    def is_successful(self) -> bool:
        return isinstance(self, Success)

    def is_failed(self) -> bool:
        return isinstance(self, Failed)

    def is_finished(self) -> bool:
        return isinstance(self, (Success, Failed))

    def __repr__(self) -> str:
        name = type(self).__name__
        return f'<{name}: "{self.message}">' if self.message else f"<{name}>"


class Pending(State):
    """Not run yet."""


class Retrying(Pending):
    """An attempt failed; another is due after the task's ``retry_delay``."""


class Running(State):
    """Being run."""


class Success(State):
    """Finished without error."""


class Cached(Success):
    """The task's target already held a value, which was read instead of running the task."""


class Failed(State):
    """Finished with an error; ``result`` is the exception."""


class TriggerFailed(Failed):
    """Not run because an upstream task did not succeed."""
