"""Old home of ``Local``, kept for flow pickles that name it."""

from ..backends.local import Local

__all__ = ["Local"]
