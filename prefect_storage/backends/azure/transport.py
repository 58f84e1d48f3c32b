"""Azure Blob Storage: clients from a connection string found by name, errors translated."""

from __future__ import annotations

import os
from contextlib import AbstractContextManager
from typing import Any

from .._deps import import_optional
from ..engine.context import context
from ..exceptions import (
    BackendAuthError,
    BackendError,
    BackendUnavailableError,
    BucketNotFoundError,
    FlowNotFoundError,
    FlowStorageError,
    StorageConfigError,
)
from ..retry import DEFAULT_RETRY_POLICY, RetryPolicy
from . import translating

CONNECTION_STRING_NAME = "AZURE_STORAGE_CONNECTION_STRING"
"""The default secret name and environment variable holding the connection string."""


def connection_string(secret_name: str | None = None, literal: str | None = None) -> str:
    """``literal``, else the named secret, else the context secret, else the env variable."""
    from ..secrets import Secret

    if literal:
        return literal
    if secret_name:
        return str(Secret(secret_name).get())
    found = context.get("secrets", {}).get(CONNECTION_STRING_NAME) or os.environ.get(
        CONNECTION_STRING_NAME
    )
    if not found:
        raise BackendAuthError(
            "Azure connection string not provided. Set the "
            f"`{CONNECTION_STRING_NAME}` environment variable or secret, or name a secret "
            "with `connection_string_secret`."
        )
    return str(found)


def blob_service(conn_str: str, policy: RetryPolicy = DEFAULT_RETRY_POLICY) -> Any:
    """A ``BlobServiceClient``; Azure AD (``DefaultAzureCredential``) unless keyed."""
    blob = import_optional("azure.storage.blob", "azure")
    credential = None
    if "AccountKey=" not in conn_str and "SharedAccessSignature=" not in conn_str:
        identity = import_optional("azure.identity", "azure")
        credential = identity.DefaultAzureCredential()
    try:
        return blob.BlobServiceClient.from_connection_string(
            conn_str,
            credential=credential,
            retry_total=0,  # retries come from the shared policy
            connection_timeout=policy.attempt_timeout,
            read_timeout=policy.attempt_timeout,
        )
    except ValueError:
        # The SDK's message may quote the string, which holds the account key.
        raise StorageConfigError(
            "The Azure connection string is malformed; copy it again from the storage "
            "account's 'Access keys' page."
        ) from None


def translate(exc: Exception, what: str, container: str | None = None) -> FlowStorageError:
    """Our error for an azure-core exception."""
    from azure.core import exceptions as az

    code = getattr(exc, "error_code", None) or ""
    code = str(getattr(code, "value", code))  # the SDK gives a StorageErrorCode enum
    status = getattr(exc, "status_code", None) or 0
    if isinstance(exc, az.ResourceNotFoundError) or status == 404:
        if code == "ContainerNotFound":
            return BucketNotFoundError(
                f"{what}: the container {container!r} does not exist; create it or fix `container`."
            )
        return FlowNotFoundError(f"{what}: no such blob ({code or 404}).")
    if isinstance(exc, az.ResourceExistsError):
        return StorageConfigError(
            f"{what}: the blob already exists; pass `overwrite=True` or another `blob_name`."
        )
    if isinstance(exc, az.ClientAuthenticationError) or status in (401, 403):
        return BackendAuthError(
            f"{what}: Azure refused the credentials ({code or status}); check the connection "
            "string (its secret or environment variable) and its permissions."
        )
    if isinstance(exc, (az.ServiceRequestError, az.ServiceResponseError)):
        return BackendUnavailableError(
            f"{what}: cannot reach Azure Blob Storage ({type(exc).__name__}); check the "
            "connection string's endpoint and the network."
        )
    if status == 429 or status >= 500:
        return BackendUnavailableError(f"{what}: the service failed ({code or status}).")
    if isinstance(exc, az.AzureError):
        return BackendError(f"{what}: Azure answered {code or status or type(exc).__name__}.")
    raise exc


def translated_errors(what: str, container: str | None = None) -> AbstractContextManager[None]:
    """Within the block, Azure errors become ours (see :func:`translate`)."""
    return translating(translate, what, container)
