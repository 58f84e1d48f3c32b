"""Old home of ``GCS``, kept for flow pickles that name it."""

from ..backends.gcp import GCS

__all__ = ["GCS"]
