"""A GitHub repository read through the REST API (PyGithub): the transport of ``GitHub``."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from ..._deps import import_optional
from ...exceptions import StorageConfigError
from ..credentials import find_text_credential
from ..repo import APIRepoTransport

TOKEN_NAME = "GITHUB_ACCESS_TOKEN"
"""Default secret / environment variable holding the GitHub token."""

DEFAULT_BASE_URL = "https://api.github.com"


@dataclass(eq=False)
class GitHubTransport(APIRepoTransport):
    """Repository ``repo`` (``"owner/name"``) at ``base_url`` (GitHub Enterprise), with
    the token of secret ``access_token_secret`` (else ``GITHUB_ACCESS_TOKEN``; else
    anonymous)."""

    service = "GitHub"
    auth_hint = f"check the access token secret (or {TOKEN_NAME}) and its scopes"
    not_found_hint = (
        "Check that it exists (and is spelled correctly), and that the token can read the "
        "repository."
    )

    access_token_secret: str | None = None
    base_url: str | None = None

    def _make_client(self) -> Any:
        github = import_optional("github", "github")
        token = find_text_credential(self.access_token_secret, TOKEN_NAME)
        return github.Github(
            base_url=self.base_url or DEFAULT_BASE_URL,
            auth=github.Auth.Token(token) if token else None,
            timeout=int(self.attempt_timeout),
            retry=None,  # retries come from the caller's policy
            seconds_between_requests=None,
            seconds_between_writes=None,
            lazy=True,  # objects make no request until their data is needed
        )

    def _status(self, exc: Exception) -> tuple[int, str] | None:
        github = import_optional("github", "github")
        if not isinstance(exc, github.GithubException):
            return None
        status = exc.status or 0
        if status == 422:  # "No commit found for SHA"
            return 404, "422"
        if status == 403 and "rate limit" in str(exc.data).lower():
            return 429, "403, rate limit exceeded"
        return status, ""

    def _resolve(self, ref: str | None) -> str:
        repository = self.client.get_repo(self.repo)
        ref = ref or repository.raw_data["default_branch"]
        # raw_data makes the request: a lazy commit's .sha would just echo the ref.
        return str(repository.get_commit(ref).raw_data["sha"])

    def _read(self, path: str, ref: str | None) -> bytes:
        repository = self.client.get_repo(self.repo)
        contents = repository.get_contents(path, **({"ref": ref} if ref else {}))
        if isinstance(contents, list):
            raise StorageConfigError(f"`path` {path!r} in {self.repo!r} is a directory.")
        if contents.encoding == "none":
            # Files over 1 MiB come without content: read them as a git blob.
            return base64.b64decode(repository.get_git_blob(contents.sha).content)
        data: bytes = contents.decoded_content
        return data
