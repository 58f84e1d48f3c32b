"""Google Cloud Storage: GCS storage, GCSResult."""

from ...results.gcs import GCSResult
from ...storage.gcs import GCS

__all__ = [
    "GCS",
    "GCSResult",
]
