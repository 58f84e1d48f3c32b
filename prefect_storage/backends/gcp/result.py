"""``GCSResult``: task results as objects in a GCS bucket (GCS storage's paired result)."""

from __future__ import annotations

from typing import Any

from ..backends.result import Result
from ..clients.gcp import storage_client, translated_errors, upload


class GCSResult(Result):
    """Results stored at ``gs://<bucket>/<location>``."""

    _transient = ("_client",)

    def __init__(self, bucket: str, **kwargs: Any) -> None:
        if not isinstance(bucket, str) or not bucket:
            raise TypeError("`bucket` must be the name of a GCS bucket")
        self.bucket = bucket
        self._client: Any = None
        super().__init__(**kwargs)

    def _blob(self, location: str) -> Any:
        if self._client is None:
            self._client = storage_client()
        return self._client.bucket(self.bucket).blob(location)

    def _write_bytes(self, location: str, data: bytes) -> str:
        what = f"Writing result gs://{self.bucket}/{location}"
        upload(self._blob(location), data, what, self.bucket, self.retry_policy.attempt_timeout)
        return location

    def _read_bytes(self, location: str) -> bytes:
        with translated_errors(f"Reading result gs://{self.bucket}/{location}", self.bucket):
            return bytes(
                self._blob(location).download_as_bytes(
                    retry=None, timeout=self.retry_policy.attempt_timeout
                )
            )

    def _exists(self, location: str) -> bool:
        with translated_errors(f"Checking gs://{self.bucket}/{location}", self.bucket):
            return bool(
                self._blob(location).exists(retry=None, timeout=self.retry_policy.attempt_timeout)
            )
