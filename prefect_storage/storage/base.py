"""Old home of the storage bases, kept for code and flow pickles that name it."""

from ..backends.base import BlobStorage, Storage, warn_missing_results
from ..backends.bucket import BucketStorage
from ..backends.repo import RepoStorage

__all__ = ["BlobStorage", "BucketStorage", "RepoStorage", "Storage", "warn_missing_results"]
