"""``CodeCommit``: flow scripts read from an AWS CodeCommit repository (boto3)."""

from __future__ import annotations

from typing import Any

from ..clients.aws import boto_client, check_client_options, translated_errors
from ..storage.base import RepoStorage


class CodeCommit(RepoStorage):
    """Run the script at ``path`` in CodeCommit repository ``repo``.

    ``commit`` is a commit specifier (SHA, branch, tag or full ref; default: the default
    branch head), resolved to a commit SHA at build. Credentials as for ``S3``.
    """

    serialized_fields = ("repo", "path", "commit", "client_options", "commit_sha")
    _transient = (*RepoStorage._transient, "_client")

    def __init__(
        self,
        repo: str,
        path: str | None = None,
        commit: str | None = None,
        client_options: dict[str, Any] | None = None,
        commit_sha: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.repo = repo
        self.commit = commit
        self.client_options = check_client_options(client_options)
        self._client: Any = None
        super().__init__(path=path, commit_sha=commit_sha, **kwargs)

    def _get_file(self, location: str, specifier: str | None) -> dict[str, Any]:
        if self._client is None:
            self._client = boto_client("codecommit", self.client_options, self.retry_policy)
        where = f"{location!r} at {specifier or 'the default branch'} in repository {self.repo!r}"
        with translated_errors(f"Reading {where}"):
            request = {"repositoryName": self.repo, "filePath": location}
            if specifier:
                request["commitSpecifier"] = specifier
            response: dict[str, Any] = self._client.get_file(**request)
        return response

    def _resolve_commit(self) -> str:
        return str(self._get_file(self.path, self.commit)["commitId"])

    def _get(self, location: str) -> bytes:
        data: bytes = self._get_file(location, self.commit_sha or self.commit)["fileContent"]
        return data
