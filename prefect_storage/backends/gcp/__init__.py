"""Google Cloud Storage: GCS storage and GCSResult, over one ``GCSTransport``."""

from .result import GCSResult
from .storage import GCS
from .transport import GCSTransport

__all__ = [
    "GCS",
    "GCSResult",
    "GCSTransport",
]
