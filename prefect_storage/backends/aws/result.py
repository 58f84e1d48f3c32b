"""``S3Result``: task results as objects in an S3 bucket (S3 storage's paired result)."""

from __future__ import annotations

from typing import Any

from ..result import Result
from .transport import S3Transport, check_client_options


class S3Result(Result):
    """Results stored at ``s3://<bucket>/<location>``; ``boto3_kwargs`` build the client
    and ``upload_options`` are extra ``put_object`` arguments."""

    def __init__(
        self,
        bucket: str,
        boto3_kwargs: dict[str, Any] | None = None,
        upload_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self.bucket = bucket
        self.boto3_kwargs = check_client_options(boto3_kwargs)
        self.upload_options = dict(upload_options or {})
        super().__init__(**kwargs)

    def _make_transport(self) -> S3Transport:
        return S3Transport(self.bucket, self.boto3_kwargs)
