"""``GCS``: flows as objects in a Google Cloud Storage bucket."""

from __future__ import annotations

from typing import Any

from ..bucket import BucketStorage
from .result import GCSResult
from .transport import GCSTransport


class GCS(BucketStorage):
    """Store each flow as an object in ``bucket`` (``key``, or ``<flow>/<timestamp>``).

    ``project`` is the billing project (default: the credentials'). Credentials: the
    ``GCP_CREDENTIALS`` secret in the run context, else Google's default credentials.
    """

    serialized_fields = ("bucket", "key", "project", "stored_as_script")

    def __init__(
        self,
        bucket: str,
        key: str | None = None,
        project: str | None = None,
        stored_as_script: bool = False,
        local_script_path: str | None = None,
        **kwargs: Any,
    ) -> None:
        if not isinstance(bucket, str) or not bucket:
            raise TypeError("`bucket` must be the name of a GCS bucket")
        self.bucket = bucket
        self.key = key
        self.project = project
        super().__init__(key, local_script_path, stored_as_script=stored_as_script, **kwargs)

    def _make_transport(self) -> GCSTransport:
        return GCSTransport(self.bucket, self.project)

    def _paired_result(self) -> GCSResult:
        return GCSResult(self.bucket, transport=self.transport)
