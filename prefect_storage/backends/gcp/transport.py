"""Google Cloud Storage: ``GCSTransport``, the client GCS and GCSResult share, with
Prefect 1's credential look-up and Google's errors read once."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..._deps import import_optional
from ...exceptions import BackendAuthError, BucketNotFoundError, FlowStorageError
from ..credentials import find_credential
from ..transport import Transport

CREDENTIALS_SECRET = "GCP_CREDENTIALS"
"""Context secret holding a service-account info dict (the JSON key file's contents)."""


class GCSTransport(Transport):
    """Objects in one GCS bucket; locations are object names.

    Credentials: the ``GCP_CREDENTIALS`` secret, else Google's default credentials;
    ``STORAGE_EMULATOR_HOST`` points the client at an emulator, as the SDK documents.
    """

    service = "GCS"
    auth_hint = (
        f"check the {CREDENTIALS_SECRET} secret or GOOGLE_APPLICATION_CREDENTIALS and the "
        "account's permissions on the bucket"
    )
    reach_hint = "check the network (or STORAGE_EMULATOR_HOST)"
    missing = "no such object"
    put_not_found = BucketNotFoundError  # an upload's 404 can only mean a missing bucket

    def __init__(self, bucket: str, project: str | None = None) -> None:
        super().__init__()
        self.bucket = bucket
        self.project = project

    def url(self, location: str) -> str:
        return f"gs://{self.bucket}/{location}"

    def _make_client(self) -> Any:
        storage = import_optional("google.cloud.storage", "gcp")
        info = find_credential(None, CREDENTIALS_SECRET, env_name=None)
        if not isinstance(info, dict):
            return _without_metadata_prefetch(storage.Client(project=self.project))
        from google.oauth2 import service_account

        try:
            credentials = service_account.Credentials.from_service_account_info(info)
        except (ValueError, KeyError) as exc:  # MalformedError is a ValueError
            raise BackendAuthError(
                f"The {CREDENTIALS_SECRET} secret is not a valid service-account key "
                f"({type(exc).__name__}); paste the whole JSON key file as its value."
            ) from None
        project = self.project or credentials.project_id
        return _without_metadata_prefetch(storage.Client(project=project, credentials=credentials))

    # -- reading Google's errors ----------------------------------------------------------
    def _status(self, exc: Exception) -> tuple[int, str] | None:
        from google.api_core import exceptions as api
        from google.auth import exceptions as auth

        if isinstance(exc, api.GoogleAPICallError):
            return int(exc.code or 0), ""  # said by its number: "no such object (404)"
        if isinstance(exc, auth.GoogleAuthError) and not self._unreachable(exc):
            return 401, type(exc).__name__  # refused before any request (a revoked key)
        return None

    def _unreachable(self, exc: Exception) -> bool:
        import requests
        from google.auth import exceptions as auth

        return isinstance(exc, (requests.ConnectionError, requests.Timeout, auth.TransportError))

    def _special(self, exc: Exception, what: str) -> FlowStorageError | None:
        from google.api_core import exceptions as api

        if isinstance(exc, api.NotFound) and "bucket" in str(exc.message).lower():
            return BucketNotFoundError(
                f"{what}: the bucket {self.bucket!r} does not exist; create it or fix `bucket`."
            )
        return None

    # -- the bytes ------------------------------------------------------------------------
    def _blob(self, location: str) -> Any:
        # bucket() and blob() make no request: a download is exactly one GET.
        return self.client.bucket(self.bucket).blob(location)

    def _put(
        self, location: str, data: bytes, *, overwrite: bool, options: Mapping[str, Any]
    ) -> None:
        self._blob(location).upload_from_string(data, retry=None, timeout=self.attempt_timeout)

    def _get(self, location: str) -> bytes:
        data: bytes = self._blob(location).download_as_bytes(
            retry=None, timeout=self.attempt_timeout
        )
        return data

    def _exists(self, location: str) -> bool:
        return bool(self._blob(location).exists(retry=None, timeout=self.attempt_timeout))

    def _delete(self, location: str) -> None:
        self._blob(location).delete(retry=None, timeout=self.attempt_timeout)

    def _list(self, prefix: str) -> list[str]:
        blobs = self.client.list_blobs(
            self.bucket, prefix=prefix or None, retry=None, timeout=self.attempt_timeout
        )
        return [blob.name for blob in blobs]


def _without_metadata_prefetch(client: Any) -> Any:
    # Newer clients fetch bucket metadata in the background on first use: an extra
    # request (and permission) per cold load that a flow download does not need.
    if hasattr(client, "_bucket_metadata_cache"):
        client._bucket_metadata_cache = None
    return client
