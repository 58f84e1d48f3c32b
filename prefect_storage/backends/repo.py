"""Flows as scripts in a source repository, pinned to a commit."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..exceptions import FlowNotFoundError, StorageConfigError
from .base import BlobStorage

if TYPE_CHECKING:
    from ..engine.flow import Flow


class RepoStorage(BlobStorage):
    """Flows as scripts in a source repository (Git, GitHub, GitLab, Bitbucket, CodeCommit).

    Always script mode; nothing is uploaded (push the script yourself). ``build()``
    resolves the branch/tag/default branch to a commit SHA, records it as ``commit_sha``
    (serialized) and checks the script is there; ``get_flow`` then reads exactly that
    commit, however the branch moves later.
    """

    def __init__(self, path: str | None, commit_sha: str | None = None, **kwargs: Any) -> None:
        if not isinstance(path, str) or not path:
            raise StorageConfigError(
                f"{type(self).__name__} needs `path`: the flow script's path in the repository."
            )
        self.path = path
        self.commit_sha = commit_sha
        kwargs.pop("stored_as_script", None)
        super().__init__(stored_as_script=True, **kwargs)

    def _location_for(self, flow: Flow) -> str:
        return self.path

    def _store_flows(self, names: Iterable[str] | None = None) -> None:
        self.commit_sha = self.retry_policy.call(self._resolve_commit, f"Resolving {self}")
        super()._store_flows(names)

    def _load_flow(self, flow_name: str, location: str, expected_sha256: str | None) -> Flow:
        try:
            return super()._load_flow(flow_name, location, expected_sha256)
        except FlowNotFoundError as exc:
            if not self.commit_sha or "re-register" in str(exc):
                raise
            raise FlowNotFoundError(
                f"{exc} The flow was registered at commit {self.commit_sha}: if that commit "
                "was force-pushed away or the file deleted from it, re-register the flow."
            ) from exc

    @abstractmethod
    def _resolve_commit(self) -> str:
        """The commit SHA the configured ref (or the default branch) points at now."""

    def _put(self, location: str, data: bytes) -> None:
        raise StorageConfigError(
            f"{type(self).__name__} storage is read-only: commit and push {location!r} to the "
            "repository instead."
        )
