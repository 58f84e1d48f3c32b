"""Old home of ``S3``, kept for flow pickles that name it."""

from ..backends.aws import S3

__all__ = ["S3"]
