"""``GitHub``: flow scripts read through the GitHub API (PyGithub)."""

from __future__ import annotations

from typing import Any

from ..repo import RepoStorage
from .transport import GitHubTransport


class GitHub(RepoStorage):
    """Run the script at ``path`` in ``repo`` (``"owner/name"``) at the registered commit.

    ``ref`` is a branch, tag or SHA (default: the repository's default branch), resolved
    to a commit SHA at build. ``base_url`` is for GitHub Enterprise. The token comes from
    the secret ``access_token_secret``, else ``GITHUB_ACCESS_TOKEN`` (context secret, then
    environment, then secrets), else anonymous access.
    """

    serialized_fields = ("repo", "ref", "path", "access_token_secret", "base_url", "commit_sha")

    def __init__(
        self,
        repo: str,
        path: str,
        ref: str | None = None,
        access_token_secret: str | None = None,
        base_url: str | None = None,
        commit_sha: str | None = None,
        **kwargs: Any,
    ) -> None:
        if not isinstance(repo, str) or repo.count("/") != 1:
            raise TypeError("`repo` must be 'owner/name'")
        self.repo = repo
        self.ref = ref
        self.access_token_secret = access_token_secret
        self.base_url = base_url
        super().__init__(path=path, commit_sha=commit_sha, **kwargs)

    @property
    def requested_ref(self) -> str | None:
        return self.ref

    def _make_transport(self) -> GitHubTransport:
        return GitHubTransport(self.repo, self.access_token_secret, base_url=self.base_url)
