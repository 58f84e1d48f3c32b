"""Old home of ``Module``, kept for flow pickles that name it."""

from ..backends.module import Module

__all__ = ["Module"]
