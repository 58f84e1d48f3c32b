"""``AzureResult``: task results as blobs (Azure storage's paired result).

Only the *name* of the connection string's secret (or environment variable) travels
with a pickled flow; a ``connection_string`` value given here stays in this process.
"""

from __future__ import annotations

from typing import Any

from ..backends.result import Result
from ..clients.azure import blob_service, connection_string, translated_errors


class AzureResult(Result):
    """Results stored as blobs in ``container``."""

    _transient = ("_service", "_connection_string")

    def __init__(
        self,
        container: str,
        connection_string: str | None = None,
        connection_string_secret: str | None = None,
        **kwargs: Any,
    ) -> None:
        if not isinstance(container, str) or not container:
            raise TypeError("`container` must be the name of an Azure Blob Storage container")
        self.container = container
        self.connection_string_secret = connection_string_secret
        self._connection_string = connection_string
        self._service: Any = None
        super().__init__(**kwargs)

    def __repr__(self) -> str:
        return f"<AzureResult: {self.value!r}>"

    def _blob(self, location: str) -> Any:
        if self._service is None:
            conn_str = connection_string(self.connection_string_secret, self._connection_string)
            self._service = blob_service(conn_str, self.retry_policy)
        return self._service.get_blob_client(container=self.container, blob=location)

    def _write_bytes(self, location: str, data: bytes) -> str:
        with translated_errors(f"Writing result blob {location!r}", self.container):
            self._blob(location).upload_blob(data, overwrite=True)
        return location

    def _read_bytes(self, location: str) -> bytes:
        with translated_errors(f"Reading result blob {location!r}", self.container):
            return bytes(self._blob(location).download_blob().readall())

    def _exists(self, location: str) -> bool:
        with translated_errors(f"Checking blob {location!r}", self.container):
            return bool(self._blob(location).exists())
