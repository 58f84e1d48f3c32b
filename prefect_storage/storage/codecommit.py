"""Old home of ``CodeCommit``, kept for flow pickles that name it."""

from ..backends.aws import CodeCommit

__all__ = ["CodeCommit"]
