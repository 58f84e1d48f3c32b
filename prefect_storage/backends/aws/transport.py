"""AWS: boto3 clients with Prefect 1's credential look-up, and botocore errors translated."""

from __future__ import annotations

import os
import threading
from contextlib import AbstractContextManager
from typing import Any
from urllib.parse import urlsplit

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
from ..secrets import redact_permanently
from . import translating

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
_UNAVAILABLE_CODES = {
    "SlowDown",
    "RequestTimeout",
    "InternalError",
    "ServiceUnavailable",
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
}
_MISSING_OBJECT_CODES = {"NoSuchKey", "NotFound", "404"}
_MISSING_IN_REPOSITORY_CODES = {
    "RepositoryDoesNotExistException",
    "FileDoesNotExistException",
    "CommitDoesNotExistException",
    "BranchDoesNotExistException",
    "TagDoesNotExistException",
}


def check_client_options(client_options: dict[str, Any] | None) -> dict[str, Any]:
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


def boto_client(
    service: str, client_options: dict[str, Any], policy: RetryPolicy = DEFAULT_RETRY_POLICY
) -> Any:
    """A boto3 client: ``AWS_CREDENTIALS`` from the run context first, then boto3's chain."""
    boto3 = import_optional("boto3", "aws")
    from botocore.config import Config

    credentials = context.get("secrets", {}).get(CREDENTIALS_SECRET)
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
        # One attempt per call: retries come from the shared policy.
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=policy.attempt_timeout,
        read_timeout=policy.attempt_timeout,
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


def translate(exc: Exception, what: str, bucket: str | None = None) -> FlowStorageError:
    """Our error for a botocore/boto3 exception; ``what`` names the object concerned."""
    import botocore.exceptions as errors

    if isinstance(exc, errors.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code == "NoSuchBucket":
            return BucketNotFoundError(
                f"{what}: the bucket {bucket!r} does not exist; create it or fix `bucket`."
            )
        if code in _AUTH_CODES or status in (401, 403):
            return BackendAuthError(
                f"{what}: AWS refused the credentials ({code or status}); check the "
                f"{CREDENTIALS_SECRET} secret or the AWS environment/profile and its permissions."
            )
        if code in _MISSING_OBJECT_CODES or status == 404:
            return FlowNotFoundError(f"{what}: no such object ({code or status}).")
        if code in _MISSING_IN_REPOSITORY_CODES:
            return FlowNotFoundError(f"{what}: not found ({code}).")
        if code in _UNAVAILABLE_CODES or status == 429 or status >= 500:
            return BackendUnavailableError(f"{what}: the service failed ({code or status}).")
        return BackendError(f"{what}: AWS answered {code or status}.")
    if isinstance(exc, (errors.NoCredentialsError, errors.PartialCredentialsError)):
        return BackendAuthError(
            f"{what}: no AWS credentials found; set the {CREDENTIALS_SECRET} secret or the "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY environment variables or a profile."
        )
    if isinstance(exc, (errors.ConnectionError, errors.HTTPClientError)):
        endpoint = urlsplit(str(exc.kwargs.get("endpoint_url") or ""))
        where = f" {endpoint.scheme}://{endpoint.netloc}" if endpoint.netloc else ""
        return BackendUnavailableError(
            f"{what}: cannot reach the endpoint{where} ({type(exc).__name__}); check "
            "`client_options['endpoint_url']` and the network."
        )
    if isinstance(exc, errors.ParamValidationError):
        return StorageConfigError(f"{what}: invalid request parameters: {exc}")
    if isinstance(exc, errors.BotoCoreError):
        return BackendError(f"{what}: {type(exc).__name__}")
    raise exc


def translated_errors(what: str, bucket: str | None = None) -> AbstractContextManager[None]:
    """Within the block, botocore errors become ours (see :func:`translate`)."""
    return translating(translate, what, bucket)
