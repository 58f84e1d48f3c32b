"""Google Cloud Storage: clients with Prefect 1's credential look-up, errors translated."""

from __future__ import annotations

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
)
from . import translating

CREDENTIALS_SECRET = "GCP_CREDENTIALS"
"""Context secret holding a service-account info dict (the JSON key file's contents)."""


def storage_client(project: str | None = None) -> Any:
    """A ``google.cloud.storage.Client``: ``GCP_CREDENTIALS`` first, then Google's defaults.

    ``STORAGE_EMULATOR_HOST`` points the client at an emulator, as the SDK documents.
    """
    storage = import_optional("google.cloud.storage", "gcp")
    info = context.get("secrets", {}).get(CREDENTIALS_SECRET)
    if isinstance(info, dict):
        from google.oauth2 import service_account

        try:
            credentials = service_account.Credentials.from_service_account_info(info)
        except (ValueError, KeyError) as exc:  # MalformedError is a ValueError
            raise BackendAuthError(
                f"The {CREDENTIALS_SECRET} secret is not a valid service-account key "
                f"({type(exc).__name__}); paste the whole JSON key file as its value."
            ) from None
        return _without_metadata_prefetch(
            storage.Client(project=project or credentials.project_id, credentials=credentials)
        )
    try:
        return _without_metadata_prefetch(storage.Client(project=project))
    except Exception as exc:
        raise translate(exc, "Creating a Google Cloud Storage client") from exc


def _without_metadata_prefetch(client: Any) -> Any:
    # Newer clients fetch bucket metadata in the background on first use: an extra
    # request (and permission) per cold load that a flow download does not need.
    if hasattr(client, "_bucket_metadata_cache"):
        client._bucket_metadata_cache = None
    return client


def translate(exc: Exception, what: str, bucket: str | None = None) -> FlowStorageError:
    """Our error for a google-cloud-storage / google-auth / transport exception."""
    import requests
    from google.api_core import exceptions as api
    from google.auth import exceptions as auth

    if isinstance(exc, api.NotFound):
        if "bucket" in str(exc.message).lower():
            return BucketNotFoundError(
                f"{what}: the bucket {bucket!r} does not exist; create it or fix `bucket`."
            )
        return FlowNotFoundError(f"{what}: no such object (404).")
    if isinstance(exc, (api.Unauthorized, api.Forbidden, auth.GoogleAuthError)) and not isinstance(
        exc, auth.TransportError
    ):
        return BackendAuthError(
            f"{what}: Google refused the credentials ({type(exc).__name__}); check the "
            f"{CREDENTIALS_SECRET} secret or GOOGLE_APPLICATION_CREDENTIALS and the account's "
            "permissions on the bucket."
        )
    if isinstance(exc, (api.TooManyRequests, api.ServerError)):
        return BackendUnavailableError(f"{what}: the service failed ({exc.code}).")
    if isinstance(exc, (requests.ConnectionError, requests.Timeout, auth.TransportError)):
        return BackendUnavailableError(
            f"{what}: cannot reach Google Cloud Storage ({type(exc).__name__}); check the "
            "network (or STORAGE_EMULATOR_HOST)."
        )
    if isinstance(exc, api.GoogleAPICallError):
        return BackendError(f"{what}: Google Cloud Storage answered {exc.code}.")
    raise exc


def translated_errors(what: str, bucket: str | None = None) -> AbstractContextManager[None]:
    """Within the block, Google errors become ours (see :func:`translate`)."""
    return translating(translate, what, bucket)


def upload(blob: Any, data: bytes, what: str, bucket: str, timeout: float) -> None:
    """Upload ``data`` to ``blob``; a 404 on upload can only mean the bucket is missing."""
    try:
        with translated_errors(what, bucket):
            blob.upload_from_string(data, retry=None, timeout=timeout)
    except FlowNotFoundError:
        raise BucketNotFoundError(
            f"{what}: the bucket {bucket!r} does not exist; create it or fix `bucket`."
        ) from None
