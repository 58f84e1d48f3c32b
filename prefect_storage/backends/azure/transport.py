"""Azure Blob Storage: ``AzureTransport``, the client Azure and AzureResult share, made
from a connection string found by name, with azure-core's errors read once."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..._deps import import_optional
from ...exceptions import (
    BackendAuthError,
    BucketNotFoundError,
    FlowStorageError,
    StorageConfigError,
)
from ..credentials import find_text_credential
from ..transport import Transport

CONNECTION_STRING_NAME = "AZURE_STORAGE_CONNECTION_STRING"
"""The default secret name and environment variable holding the connection string."""


class AzureTransport(Transport):
    """Blobs in one container; locations are blob names.

    The connection string is ``connection_string`` (a value given in this process, never
    pickled), else the secret named ``connection_string_secret``, else
    ``AZURE_STORAGE_CONNECTION_STRING`` (run-context secret, environment, secret). Without
    an account key or SAS in it, Azure AD (``DefaultAzureCredential``) signs the requests.
    """

    service = "Azure"
    auth_hint = (
        "check the connection string (its secret or environment variable) and its permissions"
    )
    reach_hint = "check the connection string's endpoint and the network"
    missing = "no such blob"

    def __init__(self, container: str, secret: str | None = None, value: str | None = None) -> None:
        """``secret`` names the connection string's secret; ``value`` is the string itself."""
        super().__init__()
        self.container = container
        self.connection_string_secret = secret
        self._connection_string = value

    def __getstate__(self) -> dict[str, Any]:
        return {**super().__getstate__(), "_connection_string": None}  # a value: never pickled

    def url(self, location: str) -> str:
        return f"az://{self.container}/{location}"

    def _make_client(self) -> Any:
        blob = import_optional("azure.storage.blob", "azure")
        conn_str = self._connection_string or find_text_credential(
            self.connection_string_secret, CONNECTION_STRING_NAME
        )
        if not conn_str:
            raise BackendAuthError(
                "Azure connection string not provided. Set the "
                f"`{CONNECTION_STRING_NAME}` environment variable or secret, or name a secret "
                "with `connection_string_secret`."
            )
        credential = None
        if "AccountKey=" not in conn_str and "SharedAccessSignature=" not in conn_str:
            identity = import_optional("azure.identity", "azure")
            credential = identity.DefaultAzureCredential()
        try:
            return blob.BlobServiceClient.from_connection_string(
                conn_str,
                credential=credential,
                retry_total=0,  # retries come from the caller's policy
                connection_timeout=self.attempt_timeout,
                read_timeout=self.attempt_timeout,
            )
        except ValueError:
            # The SDK's message may quote the string, which holds the account key.
            raise StorageConfigError(
                "The Azure connection string is malformed; copy it again from the storage "
                "account's 'Access keys' page."
            ) from None

    # -- reading azure-core's errors ------------------------------------------------------
    def _status(self, exc: Exception) -> tuple[int, str] | None:
        from azure.core import exceptions as az

        if not isinstance(exc, az.AzureError) or self._unreachable(exc):
            return None
        status = getattr(exc, "status_code", None) or 0
        if isinstance(exc, az.ResourceNotFoundError):
            status = 404
        elif isinstance(exc, az.ClientAuthenticationError) and status not in (401, 403):
            status = 401
        return status, _error_code(exc) or (str(status) if status else type(exc).__name__)

    def _unreachable(self, exc: Exception) -> bool:
        from azure.core import exceptions as az

        return isinstance(exc, (az.ServiceRequestError, az.ServiceResponseError))

    def _special(self, exc: Exception, what: str) -> FlowStorageError | None:
        from azure.core import exceptions as az

        if _error_code(exc) == "ContainerNotFound":
            return BucketNotFoundError(
                f"{what}: the container {self.container!r} does not exist; create it or fix "
                "`container`."
            )
        if isinstance(exc, az.ResourceExistsError):
            return StorageConfigError(
                f"{what}: the blob already exists; pass `overwrite=True` or another `blob_name`."
            )
        return None

    # -- the bytes ------------------------------------------------------------------------
    def _blob(self, location: str) -> Any:
        return self.client.get_blob_client(container=self.container, blob=location)

    def _put(
        self, location: str, data: bytes, *, overwrite: bool, options: Mapping[str, Any]
    ) -> None:
        self._blob(location).upload_blob(data, overwrite=overwrite, **options)

    def _get(self, location: str) -> bytes:
        data: bytes = self._blob(location).download_blob().readall()
        return data

    def _exists(self, location: str) -> bool:
        return bool(self._blob(location).exists())

    def _delete(self, location: str) -> None:
        self._blob(location).delete_blob()

    def _list(self, prefix: str) -> list[str]:
        container = self.client.get_container_client(self.container)
        return list(container.list_blob_names(name_starts_with=prefix or None))


def _error_code(exc: Exception) -> str:
    """The storage service's error code (the SDK gives a ``StorageErrorCode`` enum)."""
    code = getattr(exc, "error_code", None) or ""
    return str(getattr(code, "value", code))
