"""Old home of ``LocalResult``, kept for flow pickles that name it."""

from ..backends.local import LocalResult

__all__ = ["LocalResult"]
