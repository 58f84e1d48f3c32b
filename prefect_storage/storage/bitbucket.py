"""Old home of ``Bitbucket``, kept for code and flow pickles that name it."""

from ..backends.bitbucket import Bitbucket

__all__ = ["Bitbucket"]
