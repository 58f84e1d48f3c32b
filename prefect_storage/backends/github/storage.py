"""``GitHub``: flow scripts read through the GitHub API (PyGithub)."""

from __future__ import annotations

import base64
from typing import Any

from ..clients.github import github_client, translated_errors
from ..exceptions import StorageConfigError
from ..storage.base import RepoStorage


class GitHub(RepoStorage):
    """Run the script at ``path`` in ``repo`` (``"owner/name"``) at the registered commit.

    ``ref`` is a branch, tag or SHA (default: the repository's default branch), resolved
    to a commit SHA at build. ``base_url`` is for GitHub Enterprise. The token comes from
    the secret ``access_token_secret``, else ``GITHUB_ACCESS_TOKEN`` (context secret, then
    environment), else anonymous access.
    """

    serialized_fields = ("repo", "ref", "path", "access_token_secret", "base_url", "commit_sha")
    _transient = (*RepoStorage._transient, "_client")

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
        self._client: Any = None
        super().__init__(path=path, commit_sha=commit_sha, **kwargs)

    def _repository(self) -> Any:
        if self._client is None:
            self._client = github_client(self.access_token_secret, self.base_url, self.retry_policy)
        return self._client.get_repo(self.repo)

    def _resolve_commit(self) -> str:
        with translated_errors(f"Resolving {self.ref or 'the default branch'}", self.repo):
            repository = self._repository()
            ref = self.ref or repository.raw_data["default_branch"]
            # raw_data makes the request: a lazy commit's .sha would just echo the ref.
            return str(repository.get_commit(ref).raw_data["sha"])

    def _get(self, location: str) -> bytes:
        ref = self.commit_sha or self.ref
        self.logger.info(
            "Downloading flow from GitHub storage - repo: %r, path: %r, ref: %r",
            self.repo,
            location,
            ref,
        )
        with translated_errors(f"Reading {location!r} at {ref or 'the default branch'}", self.repo):
            contents = self._repository().get_contents(location, **({"ref": ref} if ref else {}))
            if isinstance(contents, list):
                raise StorageConfigError(f"`path` {location!r} in {self.repo!r} is a directory.")
            if contents.encoding == "none":
                # Files over 1 MiB come without content: read them as a git blob.
                blob = self._repository().get_git_blob(contents.sha)
                return base64.b64decode(blob.content)
        data: bytes = contents.decoded_content
        return data
