"""Old home of ``Git``, kept for code and flow pickles that name it."""

from ..backends.git import Git

__all__ = ["Git"]
