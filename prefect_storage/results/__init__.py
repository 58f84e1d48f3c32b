"""Results: where task return values are checkpointed. One module per backend."""

from __future__ import annotations

from .base import Result, ResultNotImplementedError
from .local import LocalResult

__all__ = ["LocalResult", "Result", "ResultNotImplementedError"]
