"""Old home of ``GitHub``, kept for code and flow pickles that name it."""

from ..backends.github import GitHub

__all__ = ["GitHub"]
