"""AWS: S3 and CodeCommit storage, S3Result."""

from ...results.s3 import S3Result
from ...storage.codecommit import CodeCommit
from ...storage.s3 import S3

__all__ = [
    "S3",
    "CodeCommit",
    "S3Result",
]
