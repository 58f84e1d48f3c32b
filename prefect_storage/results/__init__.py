"""The result classes, at their public import path (SPEC section 2): where task return
values are checkpointed. Each lives in its backend's folder under ``backends/``."""

from __future__ import annotations

from ..backends.aws import S3Result
from ..backends.azure import AzureResult
from ..backends.gcp import GCSResult
from ..backends.local import LocalResult
from ..backends.result import Result

__all__ = [
    "AzureResult",
    "GCSResult",
    "LocalResult",
    "Result",
    "S3Result",
]
