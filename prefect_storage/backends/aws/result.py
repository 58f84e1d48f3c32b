"""``S3Result``: task results as objects in an S3 bucket (S3 storage's paired result)."""

from __future__ import annotations

from typing import Any

from ..backends.result import Result
from ..clients.aws import boto_client, check_client_options, translated_errors
from ..exceptions import FlowNotFoundError


class S3Result(Result):
    """Results stored at ``s3://<bucket>/<location>``; ``boto3_kwargs`` build the client."""

    _transient = ("_client",)

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
        self._client: Any = None
        super().__init__(**kwargs)

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = boto_client("s3", self.boto3_kwargs, self.retry_policy)
        return self._client

    def _write_bytes(self, location: str, data: bytes) -> str:
        with translated_errors(f"Writing result s3://{self.bucket}/{location}", self.bucket):
            self.client.put_object(
                Bucket=self.bucket, Key=location, Body=data, **self.upload_options
            )
        return location

    def _read_bytes(self, location: str) -> bytes:
        what = f"Reading result s3://{self.bucket}/{location}"
        with (
            translated_errors(what, self.bucket),
            self.client.get_object(Bucket=self.bucket, Key=location)["Body"] as body,
        ):
            return bytes(body.read())

    def _exists(self, location: str) -> bool:
        try:
            with translated_errors(f"Checking s3://{self.bucket}/{location}", self.bucket):
                self.client.head_object(Bucket=self.bucket, Key=location)
        except FlowNotFoundError:
            return False
        return True
