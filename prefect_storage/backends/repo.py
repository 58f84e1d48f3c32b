"""Flows as scripts in a source repository, pinned to a commit.

Shared by every repository backend (Git, GitHub, GitLab, Bitbucket, CodeCommit): the
transport contract (resolve a ref to a commit, read a file at a ref), the storage that pins
the commit at build, and the ref checks they all need.
"""

from __future__ import annotations

import io
import re
import sys
from abc import abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, ClassVar, final

from ..exceptions import FlowNotFoundError, StorageConfigError
from ..retry import RetryPolicy
from .base import BlobStorage
from .transport import Transport

if TYPE_CHECKING:
    from ..engine.flow import Flow

SHA = re.compile(r"^[0-9a-fA-F]{40}$")
"""A full commit SHA: what ``build()`` pins, and a ref that needs no resolving."""


def check_ref(value: str, argument: str) -> str:
    """Refuse refs that git could read as an option or that are not ref names."""
    if not value or value.startswith("-") or any(c in value for c in " ~^:?*[\\\0\n"):
        raise StorageConfigError(f"`{argument}` {value!r} is not a valid git ref name.")
    return value


class RepoTransport(Transport):
    """Files of a repository at a commit: read-only.

    ``resolve(ref)`` turns a branch, tag or SHA (``None``: the default branch) into the
    commit SHA it points at now; ``read(path, ref)`` gives a file's bytes at a ref. Both
    name :attr:`repository` in their messages, so a 404 says which repository it was.
    A backend may declare its settings as dataclass fields (``@dataclass(eq=False)``):
    ``__post_init__`` then runs the base initialiser.
    """

    def __post_init__(self) -> None:
        super().__init__()  # the generated __init__ of a dataclass does not call it

    @property
    def repository(self) -> str:
        """The repository as users know it in messages (``repository 'acme/flows'``, a URL);
        empty: messages name none."""
        return ""

    @abstractmethod
    def _resolve(self, ref: str | None) -> str:
        """The full commit SHA ``ref`` (or the default branch) points at."""

    @abstractmethod
    def _read(self, path: str, ref: str | None) -> bytes:
        """The bytes of ``path`` at ``ref``; an SDK error (404) when there are none."""

    def _get(self, location: str) -> bytes:
        return self._read(location, None)

    @final
    def resolve(self, ref: str | None, *, retry: RetryPolicy) -> str:
        """The commit SHA ``ref`` points at now (``None``: the default branch)."""
        of = f" of {self.repository}" if self.repository else ""
        return self.call(
            lambda: self._resolve(ref), f"Resolving {ref or 'the default branch'}{of}", retry
        )

    @final
    def read(self, path: str, ref: str | None, *, retry: RetryPolicy) -> bytes:
        """The bytes of ``path`` at ``ref``; :class:`FlowNotFoundError` when there are none."""
        where = f" in {self.repository}" if self.repository else ""
        return self.call(
            lambda: self._read(path, ref),
            f"Reading {self.url(path)!r} at {ref or 'the default branch'}{where}",
            retry,
        )


@dataclass(eq=False)
class APIRepoTransport(RepoTransport):
    """Repository ``repo`` read through a REST client built on ``requests`` (GitHub, GitLab,
    Bitbucket): a connection error or a timeout means the service was not reached."""

    repo: str

    noun: ClassVar[str] = "repository"
    """What the service calls a repository (GitLab: ``project``)."""

    @property
    def full_name(self) -> str:
        """The repository's name on the service (``acme/flows``)."""
        return self.repo

    @property
    def repository(self) -> str:
        return f"{self.noun} {self.full_name!r}"

    def _unreachable(self, exc: Exception) -> bool:
        requests = sys.modules.get("requests")  # never imported: not one of its errors
        return requests is not None and isinstance(
            exc, (requests.ConnectionError, requests.Timeout)
        )


class RepoStorage(BlobStorage[RepoTransport]):
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

    @property
    @abstractmethod
    def requested_ref(self) -> str | None:
        """The branch, tag or commit the user asked for (``None``: the default branch)."""

    def _store_flows(self, names: Iterable[str] | None = None) -> None:
        self.commit_sha = self.transport.resolve(self.requested_ref, retry=self.retry_policy)
        super()._store_flows(names)

    def _fetch(self, location: str) -> bytes:
        ref = self.commit_sha or self.requested_ref
        self.logger.info(
            "Downloading flow from %s storage - path: %r, ref: %r", self.name, location, ref
        )
        return self.transport.read(location, ref, retry=self.retry_policy)

    def _open(self, location: str) -> IO[bytes]:
        return io.BytesIO(self._fetch(location))

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

    def _put(self, location: str, data: bytes) -> None:
        raise StorageConfigError(
            f"{type(self).__name__} storage is read-only: commit and push {location!r} to the "
            "repository instead."
        )
