"""GitLab: python-gitlab clients with Prefect 1's token look-up, and its errors translated."""

from __future__ import annotations

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

TOKEN_NAME = "GITLAB_ACCESS_TOKEN"
"""Default secret / environment variable holding the GitLab token."""

DEFAULT_HOST = "https://gitlab.com"


def gitlab_client(
    secret_name: str | None, host: str | None, policy: RetryPolicy = DEFAULT_RETRY_POLICY
) -> Any:
    gitlab = import_optional("gitlab", "gitlab")
    return gitlab.Gitlab(
        host or DEFAULT_HOST,
        private_token=lookup_token(secret_name, TOKEN_NAME),
        timeout=policy.attempt_timeout,
        retry_transient_errors=False,  # retries come from the shared policy
    )


def translate(exc: Exception, what: str, repo: str | None = None) -> FlowStorageError:
    import requests
    from gitlab import exceptions as gl

    if isinstance(exc, gl.GitlabAuthenticationError) or getattr(exc, "response_code", 0) in (
        401,
        403,
    ):
        return BackendAuthError(
            f"{what}: unable to authenticate with GitLab; check the access token secret (or "
            f"{TOKEN_NAME})."
        )
    if isinstance(exc, gl.GitlabError):
        code = exc.response_code or 0
        if code == 404:
            return FlowNotFoundError(
                f"{what}: not found in {repo!r}; ensure the project, ref and file exist."
            )
        if code == 429 or code >= 500:
            return BackendUnavailableError(f"{what}: GitLab failed ({code}).")
        return BackendError(f"{what}: GitLab answered {code or type(exc).__name__}.")
    if isinstance(exc, (requests.ConnectionError, requests.Timeout)):
        return BackendUnavailableError(f"{what}: cannot reach GitLab ({type(exc).__name__}).")
    raise exc


def translated_errors(what: str, repo: str | None = None) -> AbstractContextManager[None]:
    """Within the block, python-gitlab errors become ours (see :func:`translate`)."""
    return translating(translate, what, repo)
