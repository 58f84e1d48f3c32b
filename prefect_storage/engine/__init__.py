"""The small flow engine: ``Flow``, ``@task``, ``Parameter``, run ``context`` and states.

Stdlib only, so importing it stays cheap; results are used through their methods alone.
"""

from __future__ import annotations

from .context import Context, context
from .flow import Edge, Flow
from .runner import FlowRunner, TaskRunner
from .state import Cached, Failed, Pending, Retrying, Running, State, Success, TriggerFailed
from .tasks import FunctionTask, Parameter, Task, task

__all__ = [
    "Cached",
    "Context",
    "Edge",
    "Failed",
    "Flow",
    "FlowRunner",
    "FunctionTask",
    "Parameter",
    "Pending",
    "Retrying",
    "Running",
    "State",
    "Success",
    "Task",
    "TaskRunner",
    "TriggerFailed",
    "context",
    "task",
]
