"""Old home of the ``Result`` base, kept for code and flow pickles that name it."""

from ..backends.result import Result

__all__ = ["Result"]
