"""AWS: S3 and CodeCommit storage and S3Result, over ``S3Transport`` and
``CodeCommitTransport`` (one boto3 client base, one reading of botocore's errors)."""

from .result import S3Result
from .storage import S3, CodeCommit
from .transport import CodeCommitTransport, S3Transport

__all__ = [
    "S3",
    "CodeCommit",
    "CodeCommitTransport",
    "S3Result",
    "S3Transport",
]
