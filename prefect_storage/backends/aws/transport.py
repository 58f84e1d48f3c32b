"""AWS: boto3 clients with Prefect 1's credential look-up, botocore errors read once.

:class:`AWSClient` makes the client and reads botocore's errors; ``S3Transport`` (S3 and
S3Result) and ``CodeCommitTransport`` (CodeCommit) only add their bytes.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import urlsplit

from ..._deps import import_optional
from ...exceptions import (
    BackendAuthError,
    BucketNotFoundError,
    FlowNotFoundError,
    FlowStorageError,
    StorageConfigError,
)
from ...secrets import redact_permanently
from ..credentials import find_credential
from ..repo import RepoTransport
from ..transport import Client, Transport, logger

CREDENTIALS_SECRET = "AWS_CREDENTIALS"
"""Context secret with ``ACCESS_KEY``, ``SECRET_ACCESS_KEY`` and optional ``SESSION_TOKEN``."""

BOTOCORE_LOGGERS = ("botocore.auth", "botocore.endpoint", "botocore.hooks", "botocore.parsers")
"""botocore loggers whose DEBUG output can carry credentials."""

CREDENTIAL_OPTIONS = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")
"""boto3 arguments that hold credentials: never accepted in (serialized) client options."""

_AUTH_CODES = {
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "UnrecognizedClientException",
    "AccessDeniedException",
}
_MISSING_CODES = {
    "NoSuchKey",
    "NotFound",
    "404",
    "RepositoryDoesNotExistException",
    "FileDoesNotExistException",
    "CommitDoesNotExistException",
    "BranchDoesNotExistException",
    "TagDoesNotExistException",
}
_UNAVAILABLE_CODES = {
    "SlowDown",
    "RequestTimeout",
    "InternalError",
    "ServiceUnavailable",
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
}
_CODE_STATUS = {
    **dict.fromkeys(_AUTH_CODES, 403),
    **dict.fromkeys(_MISSING_CODES, 404),
    **dict.fromkeys(_UNAVAILABLE_CODES, 503),
}
"""botocore error codes -> the HTTP status they mean (AWS does not always send that one)."""


def check_client_options(client_options: Mapping[str, Any] | None) -> dict[str, Any]:
    """Client options without credentials (they would be serialized with the storage)."""
    options = dict(client_options or {})
    leaked = sorted(set(options) & set(CREDENTIAL_OPTIONS))
    if leaked:
        raise StorageConfigError(
            f"`client_options` must not hold credentials ({', '.join(leaked)}): they would be "
            f"stored with the flow. Use the {CREDENTIALS_SECRET} secret "
            "(`storage.secrets=['AWS_CREDENTIALS']`) or the usual AWS environment/profile."
        )
    return options


def boto_client(service: str, client_options: Mapping[str, Any], attempt_timeout: float) -> Any:
    """A boto3 client: the ``AWS_CREDENTIALS`` secret first, then boto3's own chain."""
    boto3 = import_optional("boto3", "aws")
    from botocore.config import Config

    credentials = find_credential(None, CREDENTIALS_SECRET, env_name=None)
    kwargs: dict[str, Any] = {}
    if isinstance(credentials, dict):
        kwargs = {
            "aws_access_key_id": credentials.get("ACCESS_KEY"),
            "aws_secret_access_key": credentials.get("SECRET_ACCESS_KEY"),
            "aws_session_token": credentials.get("SESSION_TOKEN"),
        }
        # botocore's DEBUG logs print request headers, session token included.
        redact_permanently([str(v) for v in kwargs.values() if v], BOTOCORE_LOGGERS)
    config = Config(
        # One attempt per call: retries come from the caller's policy.
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=attempt_timeout,
        read_timeout=attempt_timeout,
    )
    options = dict(client_options)
    if "config" in options:
        config = options.pop("config").merge(config)
    with _SESSION_LOCK:  # a boto3 Session is not safe to make clients from concurrently
        return _session(boto3).client(service, config=config, **options, **kwargs)


_SESSION_LOCK = threading.Lock()
_SESSIONS: dict[tuple[str | None, ...], Any] = {}
_SESSION_ENV = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
)


def _session(boto3: Any) -> Any:
    # Reused while the AWS environment is unchanged: building a Session loads botocore's
    # data files (~60 ms), and it caches the credentials it resolves from that environment.
    key = tuple(os.environ.get(name) for name in _SESSION_ENV)
    if key not in _SESSIONS:
        _SESSIONS[key] = boto3.session.Session()
    return _SESSIONS[key]


def _error_code(exc: Exception) -> str:
    """The AWS error code of a botocore ``ClientError`` (``""`` for anything else)."""
    response = getattr(exc, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


class AWSClient(Client):
    """A boto3 client for one AWS service, made from ``client_options`` on first use."""

    boto3_service: ClassVar[str] = ""
    """The service's name for ``boto3.client`` (``s3``, ``codecommit``)."""

    service = "AWS"  # IAM refuses for every service alike: "AWS refused the credentials"
    auth_hint = (
        f"check the {CREDENTIALS_SECRET} secret or the AWS environment/profile and its permissions"
    )
    reach_hint = "check `client_options['endpoint_url']` and the network"

    def __init__(self, client_options: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.client_options = check_client_options(client_options)

    def _make_client(self) -> Any:
        return boto_client(self.boto3_service, self.client_options, self.attempt_timeout)

    def _status(self, exc: Exception) -> tuple[int, str] | None:
        import botocore.exceptions as errors

        if isinstance(exc, errors.ClientError):
            code = _error_code(exc)
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            return _CODE_STATUS.get(code, status), code
        if isinstance(exc, errors.BotoCoreError) and not self._unreachable(exc):
            return 0, type(exc).__name__  # no reply to read: a plain backend error
        return None

    def _unreachable(self, exc: Exception) -> bool:
        import botocore.exceptions as errors

        return isinstance(exc, (errors.ConnectionError, errors.HTTPClientError))

    def _endpoint(self, exc: Exception) -> str:
        endpoint = urlsplit(str(getattr(exc, "kwargs", {}).get("endpoint_url") or ""))
        return f"{endpoint.scheme}://{endpoint.netloc}" if endpoint.netloc else ""

    def _special(self, exc: Exception, what: str) -> FlowStorageError | None:
        import botocore.exceptions as errors

        if isinstance(exc, (errors.NoCredentialsError, errors.PartialCredentialsError)):
            return BackendAuthError(
                f"{what}: no AWS credentials found; set the {CREDENTIALS_SECRET} secret or the "
                "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY environment variables or a profile."
            )
        if isinstance(exc, errors.ParamValidationError):
            return StorageConfigError(f"{what}: invalid request parameters: {exc}")
        return None


class S3Transport(AWSClient, Transport):
    """Objects in one S3 (or S3-compatible) bucket; locations are keys."""

    service = "S3"
    boto3_service = "s3"
    missing = "no such object"

    def __init__(self, bucket: str, client_options: Mapping[str, Any] | None = None) -> None:
        super().__init__(client_options)
        self.bucket = bucket

    def url(self, location: str) -> str:
        return f"s3://{self.bucket}/{location}"

    def _special(self, exc: Exception, what: str) -> FlowStorageError | None:
        if _error_code(exc) == "NoSuchBucket":
            return BucketNotFoundError(
                f"{what}: the bucket {self.bucket!r} does not exist; create it or fix `bucket`."
            )
        return super()._special(exc, what)

    def _put(
        self, location: str, data: bytes, *, overwrite: bool, options: Mapping[str, Any]
    ) -> Any:
        return self.client.put_object(Bucket=self.bucket, Key=location, Body=data, **options)

    def _get(self, location: str) -> bytes:
        # Read whole: the envelope reader seeks, which a streamed body cannot.
        response = self.client.get_object(Bucket=self.bucket, Key=location)
        with response["Body"] as body:
            data: bytes = body.read()
        logger.debug(
            "Downloaded %s: ETag %s, LastModified %s, VersionId %s",
            self.url(location),
            response.get("ETag"),
            response.get("LastModified"),
            response.get("VersionId"),
        )
        return data

    def _exists(self, location: str) -> bool:
        try:
            with self.translating(f"Checking {self.url(location)}"):
                self.client.head_object(Bucket=self.bucket, Key=location)
        except FlowNotFoundError:  # head_object's 404: no object (or no bucket)
            return False
        return True

    def _delete(self, location: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=location)

    def _list(self, prefix: str) -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        )
        return [item["Key"] for page in pages for item in page.get("Contents", [])]


class CodeCommitTransport(AWSClient, RepoTransport):
    """Files of one CodeCommit repository (``get_file``); locations are paths in it.

    A ref is resolved by reading ``path`` (the flow script) at it: one request that also
    checks the script is there.
    """

    boto3_service = "codecommit"

    def __init__(
        self, repo: str, path: str, client_options: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(client_options)
        self.repo = repo
        self.path = path

    def url(self, location: str) -> str:
        return f"{self.repo}/{location}"

    def _get_file(self, path: str, ref: str | None) -> dict[str, Any]:
        # Resolving reads the script too: either way, say which file, ref and repository.
        where = f"{path!r} at {ref or 'the default branch'} in repository {self.repo!r}"
        request = {"repositoryName": self.repo, "filePath": path}
        if ref:
            request["commitSpecifier"] = ref
        with self.translating(f"Reading {where}"):
            response: dict[str, Any] = self.client.get_file(**request)
        return response

    def _resolve(self, ref: str | None) -> str:
        return str(self._get_file(self.path, ref)["commitId"])

    def _read(self, path: str, ref: str | None) -> bytes:
        data: bytes = self._get_file(path, ref)["fileContent"]
        return data
