"""GitHub: PyGithub clients with Prefect 1's token look-up, and its errors translated."""

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

TOKEN_NAME = "GITHUB_ACCESS_TOKEN"
"""Default secret / environment variable holding the GitHub token."""

DEFAULT_BASE_URL = "https://api.github.com"


def github_client(
    secret_name: str | None, base_url: str | None, policy: RetryPolicy = DEFAULT_RETRY_POLICY
) -> Any:
    github = import_optional("github", "github")
    token = lookup_token(secret_name, TOKEN_NAME)
    return github.Github(
        base_url=base_url or DEFAULT_BASE_URL,
        auth=github.Auth.Token(token) if token else None,
        timeout=int(policy.attempt_timeout),
        retry=None,  # retries come from the shared policy
        seconds_between_requests=None,
        seconds_between_writes=None,
        lazy=True,  # objects make no request until their data is needed
    )


def translate(exc: Exception, what: str, repo: str | None = None) -> FlowStorageError:
    import requests
    from github import GithubException

    if isinstance(exc, GithubException):
        status = exc.status
        if status == 401:
            return BackendAuthError(
                f"{what}: GitHub refused the token ({status}); check the access token secret "
                f"(or {TOKEN_NAME})."
            )
        if status in (404, 422):  # 422: "No commit found for SHA"
            return FlowNotFoundError(
                f"{what}: not found in {repo!r}. Check that it exists (and is spelled "
                "correctly), and that the token can read the repository."
            )
        if status == 403 and "rate limit" not in str(exc.data).lower():
            return BackendAuthError(
                f"{what}: GitHub denied access (403); check the token's scopes."
            )
        if status in (403, 429) or status >= 500:
            return BackendUnavailableError(f"{what}: GitHub failed or throttled ({status}).")
        return BackendError(f"{what}: GitHub answered {status}.")
    if isinstance(exc, (requests.ConnectionError, requests.Timeout)):
        return BackendUnavailableError(f"{what}: cannot reach GitHub ({type(exc).__name__}).")
    raise exc


def translated_errors(what: str, repo: str | None = None) -> AbstractContextManager[None]:
    """Within the block, PyGithub errors become ours (see :func:`translate`)."""
    return translating(translate, what, repo)
