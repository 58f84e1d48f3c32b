"""``Azure``: flows as blobs in an Azure Blob Storage container."""

from __future__ import annotations

from typing import Any

from ..bucket import BucketStorage
from .result import AzureResult
from .transport import AzureTransport


class Azure(BucketStorage):
    """Store each flow as a blob in ``container`` (``blob_name``, or ``<flow>/<timestamp>``).

    The connection string comes from the secret named by ``connection_string_secret``,
    else the ``AZURE_STORAGE_CONNECTION_STRING`` secret or environment variable; only the
    name is ever stored. ``overwrite=False`` refuses to replace an existing blob.
    """

    serialized_fields = ("container", "connection_string_secret", "blob_name", "stored_as_script")
    _fixed_key_argument = "blob_name"

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
        if not isinstance(container, str) or not container:
            raise TypeError("`container` must be the name of an Azure Blob Storage container")
        self.container = container
        self.connection_string_secret = connection_string_secret
        self.blob_name = blob_name
        self.overwrite = overwrite
        super().__init__(blob_name, local_script_path, stored_as_script=stored_as_script, **kwargs)

    def _put(self, location: str, data: bytes) -> None:
        # Azure's messages name the blob and the container apart, as they always have.
        what = f"Uploading blob {location!r} to container {self.container!r}"
        self.transport.put(
            location, data, retry=self.retry_policy, what=what, overwrite=self.overwrite
        )

    def _make_transport(self) -> AzureTransport:
        return AzureTransport(self.container, self.connection_string_secret)

    def _paired_result(self) -> AzureResult:
        secret = self.connection_string_secret
        return AzureResult(self.container, None, secret, transport=self.transport)
