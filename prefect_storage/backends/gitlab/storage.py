"""``GitLab``: flow scripts read through the GitLab API (python-gitlab)."""

from __future__ import annotations

from typing import Any

from ..repo import RepoStorage
from .transport import GitLabTransport


class GitLab(RepoStorage):
    """Run the script at ``path`` in project ``repo`` (``"group/name"`` or an id).

    ``ref`` is a branch, tag or SHA (default: the project's default branch), resolved to a
    commit SHA at build. ``host`` defaults to https://gitlab.com. The token comes from the
    secret ``access_token_secret``, else ``GITLAB_ACCESS_TOKEN`` (context, env, secrets).
    """

    serialized_fields = ("repo", "path", "host", "ref", "access_token_secret", "commit_sha")

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
        super().__init__(path=path, commit_sha=commit_sha, **kwargs)

    @property
    def requested_ref(self) -> str | None:
        return self.ref

    def _make_transport(self) -> GitLabTransport:
        return GitLabTransport(self.repo, self.access_token_secret, host=self.host)
