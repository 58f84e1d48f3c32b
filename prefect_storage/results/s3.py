"""Old home of ``S3Result``, kept for flow pickles that name it."""

from ..backends.aws import S3Result

__all__ = ["S3Result"]
