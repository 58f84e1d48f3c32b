"""``GitLab``: flow scripts read through the GitLab API (python-gitlab)."""

from __future__ import annotations

import base64
from typing import Any

from ..clients.gitlab import gitlab_client, translated_errors
from ..storage.base import RepoStorage


class GitLab(RepoStorage):
    """Run the script at ``path`` in project ``repo`` (``"group/name"`` or an id).

    ``ref`` is a branch, tag or SHA (default: the project's default branch), resolved to a
    commit SHA at build. ``host`` defaults to https://gitlab.com. The token comes from the
    secret ``access_token_secret``, else ``GITLAB_ACCESS_TOKEN`` (context, then env).
    """

    serialized_fields = ("repo", "path", "host", "ref", "access_token_secret", "commit_sha")
    _transient = (*RepoStorage._transient, "_client")

    def __init__(
        self,
        repo: str,
        host: str | None = None,
        path: str | None = None,
        ref: str | None = None,
        access_token_secret: str | None = None,
        commit_sha: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.repo = repo
        self.host = host
        self.ref = ref
        self.access_token_secret = access_token_secret
        self._client: Any = None
        super().__init__(path=path, commit_sha=commit_sha, **kwargs)

    def _project(self, lazy: bool) -> Any:
        if self._client is None:
            self._client = gitlab_client(self.access_token_secret, self.host, self.retry_policy)
        return self._client.projects.get(self.repo, lazy=lazy)

    def _resolve_commit(self) -> str:
        with translated_errors(f"Resolving {self.ref or 'the default branch'}", self.repo):
            project = self._project(lazy=self.ref is not None)
            return str(project.commits.get(self.ref or project.default_branch).id)

    def _get(self, location: str) -> bytes:
        ref = self.commit_sha or self.ref
        with translated_errors(f"Reading {location!r} at {ref or 'the default branch'}", self.repo):
            project = self._project(lazy=ref is not None)
            file = project.files.get(file_path=location, ref=ref or project.default_branch)
        return base64.b64decode(file.content)
