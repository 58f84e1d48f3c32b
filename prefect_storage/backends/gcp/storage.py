"""``GCS``: flows as objects in a Google Cloud Storage bucket."""

from __future__ import annotations

from typing import Any

from ..clients.gcp import storage_client, translated_errors, upload
from ..storage.base import BucketStorage


class GCS(BucketStorage):
    """Store each flow as an object in ``bucket`` (``key``, or ``<flow>/<timestamp>``).

    ``project`` is the billing project (default: the credentials'). Credentials: the
    ``GCP_CREDENTIALS`` secret in the run context, else Google's default credentials.
    """

    serialized_fields = ("bucket", "key", "project", "stored_as_script")
    _service = "GCS"

    def __init__(
        self,
        bucket: str,
        key: str | None = None,
        project: str | None = None,
        stored_as_script: bool = False,
        local_script_path: str | None = None,
        **kwargs: Any,
    ) -> None:
        from ..results.gcs import GCSResult

        if not isinstance(bucket, str) or not bucket:
            raise TypeError("`bucket` must be the name of a GCS bucket")
        self.bucket = bucket
        self.key = key
        self.project = project
        if kwargs.get("result") is None:
            kwargs["result"] = GCSResult(bucket=bucket)
        super().__init__(
            fixed_key=key,
            local_script_path=local_script_path,
            stored_as_script=stored_as_script,
            **kwargs,
        )

    def _make_client(self) -> Any:
        return storage_client(self.project)

    def _blob(self, location: str) -> Any:
        # bucket() and blob() make no request: a download is exactly one GET.
        return self.client.bucket(self.bucket).blob(location)

    def _put(self, location: str, data: bytes) -> None:
        what = f"Uploading to gs://{self.bucket}/{location}"
        upload(self._blob(location), data, what, self.bucket, self.retry_policy.attempt_timeout)

    def _get(self, location: str) -> bytes:
        self.logger.info("Downloading %s from %s", location, self.bucket)
        with translated_errors(f"Downloading gs://{self.bucket}/{location}", self.bucket):
            data: bytes = self._blob(location).download_as_bytes(
                retry=None, timeout=self.retry_policy.attempt_timeout
            )
        return data

    def _delete(self, location: str) -> None:
        try:
            self._blob(location).delete(retry=None)
        except Exception:  # best effort: the build is failing for its own reason
            self.logger.warning("Could not remove gs://%s/%s", self.bucket, location)
