"""A GitLab project read through the REST API (python-gitlab): the transport of ``GitLab``."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from ..._deps import import_optional
from ..credentials import find_text_credential
from ..repo import APIRepoTransport

TOKEN_NAME = "GITLAB_ACCESS_TOKEN"
"""Default secret / environment variable holding the GitLab token."""

DEFAULT_HOST = "https://gitlab.com"


@dataclass(eq=False)
class GitLabTransport(APIRepoTransport):
    """Project ``repo`` (``"group/name"`` or an id) on ``host``, with the token of secret
    ``access_token_secret`` (else ``GITLAB_ACCESS_TOKEN``; else anonymous)."""

    service = "GitLab"
    auth_hint = f"check the access token secret (or {TOKEN_NAME})"
    not_found_hint = "Ensure the project, ref and file exist."
    noun = "project"

    access_token_secret: str | None = None
    host: str | None = None

    def _make_client(self) -> Any:
        gitlab = import_optional("gitlab", "gitlab")
        return gitlab.Gitlab(
            self.host or DEFAULT_HOST,
            private_token=find_text_credential(self.access_token_secret, TOKEN_NAME),
            timeout=self.attempt_timeout,
            retry_transient_errors=False,  # retries come from the caller's policy
        )

    def _status(self, exc: Exception) -> tuple[int, str] | None:
        errors = import_optional("gitlab", "gitlab").exceptions
        if isinstance(exc, errors.GitlabAuthenticationError):
            return exc.response_code or 401, ""
        if isinstance(exc, errors.GitlabError):
            code = exc.response_code or 0  # 0: no reply status (a parsing error, ...)
            return code, "" if code else type(exc).__name__
        return None

    def _project(self, lazy: bool) -> Any:
        return self.client.projects.get(self.repo, lazy=lazy)

    def _resolve(self, ref: str | None) -> str:
        project = self._project(lazy=ref is not None)
        return str(project.commits.get(ref or project.default_branch).id)

    def _read(self, path: str, ref: str | None) -> bytes:
        project = self._project(lazy=ref is not None)
        file = project.files.get(file_path=path, ref=ref or project.default_branch)
        return base64.b64decode(file.content)
