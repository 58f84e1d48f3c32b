"""Results: where task return values are checkpointed. One module per backend."""

from __future__ import annotations

from .azure import AzureResult
from .base import Result, ResultNotImplementedError
from .gcs import GCSResult
from .local import LocalResult
from .s3 import S3Result

__all__ = [
    "AzureResult",
    "GCSResult",
    "LocalResult",
    "Result",
    "ResultNotImplementedError",
    "S3Result",
]
