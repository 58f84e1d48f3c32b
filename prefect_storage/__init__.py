"""prefect-storage: store a flow's definition durably and load exactly that flow back.

Importing this package is cheap: the engine is stdlib-only and every backend SDK
is imported by the backend that needs it, on first use.
"""

from __future__ import annotations

from ._version import __version__
from .engine import Flow, Parameter, Task, context, task

__all__ = ["Flow", "Parameter", "Task", "__version__", "context", "task"]
