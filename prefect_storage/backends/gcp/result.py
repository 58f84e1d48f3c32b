"""``GCSResult``: task results as objects in a GCS bucket (GCS storage's paired result)."""

from __future__ import annotations

from typing import Any

from ..result import Result
from .transport import GCSTransport


class GCSResult(Result):
    """Results stored at ``gs://<bucket>/<location>``."""

    def __init__(self, bucket: str, **kwargs: Any) -> None:
        if not isinstance(bucket, str) or not bucket:
            raise TypeError("`bucket` must be the name of a GCS bucket")
        self.bucket = bucket
        super().__init__(**kwargs)

    def _make_transport(self) -> GCSTransport:
        return GCSTransport(self.bucket)
