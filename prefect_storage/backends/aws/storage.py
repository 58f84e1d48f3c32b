"""``S3``: flows as objects in an Amazon S3 (or S3-compatible) bucket."""

from __future__ import annotations

from typing import Any

from ..clients.aws import boto_client, check_client_options, translated_errors
from ..storage.base import BucketStorage


class S3(BucketStorage):
    """Store each flow as an object in ``bucket`` (``key``, or ``<flow>/<timestamp>``).

    ``client_options`` go to ``boto3.client`` (``endpoint_url``, ``region_name``, ...) and
    are serialized; ``upload_options`` are extra ``put_object`` arguments (``ACL``,
    ``ServerSideEncryption``, ...). Credentials: the ``AWS_CREDENTIALS`` secret in the run
    context, else boto3's own chain (environment, profile, instance role).
    """

    serialized_fields = ("bucket", "key", "stored_as_script", "client_options")
    _service = "S3"

    def __init__(
        self,
        bucket: str,
        key: str | None = None,
        stored_as_script: bool = False,
        local_script_path: str | None = None,
        client_options: dict[str, Any] | None = None,
        upload_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        from ..results.s3 import S3Result

        if not isinstance(bucket, str) or not bucket:
            raise TypeError("`bucket` must be the name of an S3 bucket")
        self.bucket = bucket
        self.key = key
        self.client_options = check_client_options(client_options)
        self.upload_options = dict(upload_options or {})
        if kwargs.get("result") is None:
            kwargs["result"] = S3Result(bucket, boto3_kwargs=self.client_options)
        super().__init__(
            fixed_key=key,
            local_script_path=local_script_path,
            stored_as_script=stored_as_script,
            **kwargs,
        )

    def _make_client(self) -> Any:
        return boto_client("s3", self.client_options, self.retry_policy)

    def _url(self, location: str) -> str:
        return f"s3://{self.bucket}/{location}"

    def _put(self, location: str, data: bytes) -> None:
        with translated_errors(f"Uploading to {self._url(location)}", self.bucket):
            self.client.put_object(
                Bucket=self.bucket, Key=location, Body=data, **self.upload_options
            )

    def _get(self, location: str) -> bytes:
        self.logger.info("Downloading flow from %s", self._url(location))
        with translated_errors(f"Downloading {self._url(location)}", self.bucket):
            response = self.client.get_object(Bucket=self.bucket, Key=location)
            with response["Body"] as body:
                data: bytes = body.read()
        self.logger.info(
            "Flow successfully downloaded. ETag: %s, LastModified: %s, VersionId: %s",
            response.get("ETag"),
            response.get("LastModified"),
            response.get("VersionId"),
        )
        return data

    def _delete(self, location: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=location)
        except Exception:  # best effort: the build is failing for its own reason
            self.logger.warning("Could not remove %s", self._url(location))
