"""Old home of ``GCSResult``, kept for flow pickles that name it."""

from ..backends.gcp import GCSResult

__all__ = ["GCSResult"]
