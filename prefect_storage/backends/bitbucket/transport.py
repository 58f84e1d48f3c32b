"""Bitbucket Server and Cloud: atlassian-python-api clients, tokens looked up, errors
translated (the library raises ``requests.HTTPError``)."""

from __future__ import annotations

import os
from contextlib import AbstractContextManager
from typing import Any

from .._deps import import_optional
from ..exceptions import (
    BackendAuthError,
    BackendError,
    BackendUnavailableError,
    FlowNotFoundError,
    FlowStorageError,
)
from ..retry import DEFAULT_RETRY_POLICY, RetryPolicy
from . import lookup_token, translating

TOKEN_NAME = "BITBUCKET_ACCESS_TOKEN"
"""Default secret / environment variable holding a Bitbucket Server token."""

CLOUD_USERNAME_ENV = "BITBUCKET_CLOUD_USERNAME"
CLOUD_APP_PASSWORD_ENV = "BITBUCKET_CLOUD_APP_PASSWORD"
DEFAULT_CLOUD_URL = "https://api.bitbucket.org/"


def server_client(
    host: str, secret_name: str | None, policy: RetryPolicy = DEFAULT_RETRY_POLICY
) -> Any:
    atlassian = import_optional("atlassian", "bitbucket")
    token = lookup_token(secret_name, TOKEN_NAME)
    return atlassian.Bitbucket(url=host, token=token, timeout=policy.attempt_timeout)


def cloud_client(
    host: str | None,
    username_secret: str | None,
    password_secret: str | None,
    policy: RetryPolicy = DEFAULT_RETRY_POLICY,
) -> Any:
    import_optional("atlassian", "bitbucket")
    from atlassian.bitbucket import Cloud

    from ..secrets import Secret

    def credential(secret_name: str | None, env: str) -> str | None:
        return str(Secret(secret_name).get()) if secret_name else os.environ.get(env)

    return Cloud(
        url=host or DEFAULT_CLOUD_URL,
        username=credential(username_secret, CLOUD_USERNAME_ENV),
        password=credential(password_secret, CLOUD_APP_PASSWORD_ENV),
        timeout=policy.attempt_timeout,
    )


def translate(exc: Exception, what: str, repo: str | None = None) -> FlowStorageError:
    import requests

    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        status = exc.response.status_code
        if status in (401, 403):
            return BackendAuthError(
                f"{what}: access denied to repository {repo!r} ({status}); please check "
                "credentials."
            )
        if status == 404:
            return FlowNotFoundError(
                f"{what}: not found ({status}); check that host, project, repository, ref and "
                "path are correct."
            )
        if status == 429 or status >= 500:
            return BackendUnavailableError(f"{what}: Bitbucket failed ({status}).")
        return BackendError(f"{what}: Bitbucket answered {status}.")
    if isinstance(exc, (requests.ConnectionError, requests.Timeout)):
        return BackendUnavailableError(f"{what}: cannot reach Bitbucket ({type(exc).__name__}).")
    raise exc


def translated_errors(what: str, repo: str | None = None) -> AbstractContextManager[None]:
    """Within the block, Bitbucket errors become ours (see :func:`translate`)."""
    return translating(translate, what, repo)
