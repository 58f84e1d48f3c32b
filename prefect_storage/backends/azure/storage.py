"""``Azure``: flows as blobs in an Azure Blob Storage container."""

from __future__ import annotations

from typing import Any

from ..clients.azure import blob_service, connection_string, translated_errors
from ..storage.base import BucketStorage


class Azure(BucketStorage):
    """Store each flow as a blob in ``container`` (``blob_name``, or ``<flow>/<timestamp>``).

    The connection string comes from the secret named by ``connection_string_secret``,
    else the ``AZURE_STORAGE_CONNECTION_STRING`` secret or environment variable; only the
    name is ever stored. ``overwrite=False`` refuses to replace an existing blob.
    """

    serialized_fields = ("container", "connection_string_secret", "blob_name", "stored_as_script")
    _fixed_key_argument = "blob_name"
    _service = "Azure"

    def __init__(
        self,
        container: str,
        connection_string_secret: str | None = None,
        blob_name: str | None = None,
        overwrite: bool = False,
        stored_as_script: bool = False,
        local_script_path: str | None = None,
        **kwargs: Any,
    ) -> None:
        from ..results.azure import AzureResult

        if not isinstance(container, str) or not container:
            raise TypeError("`container` must be the name of an Azure Blob Storage container")
        self.container = container
        self.connection_string_secret = connection_string_secret
        self.blob_name = blob_name
        self.overwrite = overwrite
        if kwargs.get("result") is None:
            kwargs["result"] = AzureResult(
                container, connection_string_secret=connection_string_secret
            )
        super().__init__(
            fixed_key=blob_name,
            local_script_path=local_script_path,
            stored_as_script=stored_as_script,
            **kwargs,
        )

    def _make_client(self) -> Any:
        return blob_service(connection_string(self.connection_string_secret), self.retry_policy)

    def _blob(self, location: str) -> Any:
        return self.client.get_blob_client(container=self.container, blob=location)

    def _put(self, location: str, data: bytes) -> None:
        what = f"Uploading blob {location!r} to container {self.container!r}"
        with translated_errors(what, self.container):
            self._blob(location).upload_blob(data, overwrite=self.overwrite)

    def _get(self, location: str) -> bytes:
        self.logger.info("Downloading %s from %s", location, self.container)
        what = f"Downloading blob {location!r} from container {self.container!r}"
        with translated_errors(what, self.container):
            data: bytes = self._blob(location).download_blob().readall()
        return data

    def _delete(self, location: str) -> None:
        try:
            self._blob(location).delete_blob()
        except Exception:  # best effort: the build is failing for its own reason
            self.logger.warning("Could not remove blob %r from %s", location, self.container)
