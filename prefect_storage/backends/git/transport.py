"""A repository on any git server, read with the system ``git``: the transport of ``Git``.

Refs resolve with ``git ls-remote``; a file is read from a checkout of exactly the
commit, kept until the process exits (so a flow can read the files beside it). git's
failures come as :class:`~.runner.GitError` and are worded by the one status ladder.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field

from ...exceptions import BackendError, FlowNotFoundError, FlowStorageError, StorageConfigError
from ..credentials import find_text_credential
from ..repo import SHA, RepoTransport
from .runner import GitError, GitRunner, auth_header, split_credentials

logger = logging.getLogger("prefect_storage.storage.Git")


@dataclass(eq=False)
class GitTransport(RepoTransport):
    """One git remote: ``repo`` on ``repo_host`` over ``protocol`` (or SSH), or the URL in
    the secret ``clone_url_secret``. Refs are full names (``refs/heads/main``,
    ``refs/tags/v1``), a commit SHA, or ``None`` for the remote's HEAD."""

    service = "the git server"
    auth_hint = "check the token secret or SSH key"
    not_found_hint = "Check `repo` and `repo_host` (or the clone URL secret)."
    reach_hint = "check the host, the port and the protocol, and that the server is up"

    repo: str | None
    repo_host: str
    protocol: str
    use_ssh: bool = False
    token_secret: str | None = None
    token_username: str | None = None
    format_access_token: bool = True
    clone_url_secret: str | None = None
    clone_depth: int | None = 1
    checkout_dir: str | None = field(default=None, init=False)
    """The last checkout :meth:`read` made (the flow's ``__file__`` is in it)."""

    def _make_client(self) -> GitRunner:
        if self.clone_url_secret:
            url, userinfo = split_credentials(_secret(self.clone_url_secret))
            if userinfo and not url.startswith(("http://", "https://")):
                logger.warning(
                    "The clone URL in secret %r carries a password, which git cannot use over "
                    "%s; it is ignored (SSH authenticates with keys: GIT_SSH_COMMAND).",
                    self.clone_url_secret,
                    url.partition(":")[0],
                )
                userinfo = None
            return GitRunner(url, auth_header(userinfo) if userinfo else None)
        if self.use_ssh:
            return GitRunner(f"git@{self.repo_host}:{self.repo}.git")
        url = f"{self.protocol}://{self.repo_host}/{self.repo}.git"
        if not self.token_secret or self.protocol == "git":
            return GitRunner(url)
        token = _secret(self.token_secret)
        userinfo = f"{self.token_username}:{token}" if self.format_access_token else token
        return GitRunner(url, auth_header(userinfo))

    @property
    def repository(self) -> str:
        return self.client.display_url

    # -- git's failures on the one ladder ------------------------------------------------
    def _status(self, exc: Exception) -> tuple[int, str] | None:
        if not isinstance(exc, GitError):
            return None
        if exc.kind == "auth":
            return 401, exc.detail
        if exc.kind == "missing":
            return 404, exc.detail
        if exc.kind == "unreachable" and exc.status:  # the server answered, with an error
            return exc.status, exc.detail
        return None

    def _unreachable(self, exc: Exception) -> bool:
        timed_out = isinstance(exc, subprocess.TimeoutExpired)
        return timed_out or (isinstance(exc, GitError) and exc.kind == "unreachable")

    def _special(self, exc: Exception, what: str) -> FlowStorageError | None:
        if isinstance(exc, GitError) and exc.kind == "tls":
            return BackendError(
                f"{what}: the server's TLS certificate was not accepted ({exc.detail}); set "
                "GIT_SSL_CAINFO to its CA bundle."
            )
        if isinstance(exc, GitError) and exc.kind == "other":
            return BackendError(f"{what}: git failed ({exc.detail})")
        return None

    # -- refs and files ------------------------------------------------------------------
    def _resolve(self, ref: str | None) -> str:
        if ref and SHA.match(ref):
            return ref.lower()
        if ref is None:
            wanted = ["HEAD"]
        elif ref.startswith("refs/tags/"):
            # An annotated tag is listed twice; the peeled ``^{}`` line is its commit.
            wanted = [f"{ref}^{{}}", ref]
        else:
            wanted = [ref]
        found = self.client.ls_remote(*wanted)
        for name in wanted:
            if name in found:
                return found[name]
        raise FlowNotFoundError(f"{_describe(ref)} not found in {self.client.display_url}.")

    def _read(self, path: str, ref: str | None) -> bytes:
        sha = self._resolve(ref)
        directory = tempfile.mkdtemp(prefix="prefect-storage-git-")
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
        self.client.checkout(sha, directory, self.clone_depth)
        self.checkout_dir = directory
        try:
            with open(inside_checkout(directory, path), "rb") as file:
                return file.read()
        except FileNotFoundError:
            raise FlowNotFoundError(
                f"{path!r} is not in commit {sha} of the repository; check `flow_path`."
            ) from None


def _secret(name: str) -> str:
    """The value of the secret ``name`` (Git has no default secret name to fall back on)."""
    return find_text_credential(name, name) or ""


def _describe(ref: str | None) -> str:
    """How users named ``ref``: ``branch 'main'``, ``tag 'v1'``, the default branch."""
    if ref is None:
        return "the default branch (HEAD)"
    for prefix, kind in (("refs/heads/", "branch"), ("refs/tags/", "tag")):
        if ref.startswith(prefix):
            return f"{kind} {ref.removeprefix(prefix)!r}"
    return f"ref {ref!r}"


def inside_checkout(directory: str, location: str) -> str:
    """The checked-out file for ``location``, refused when it (or a symlink on the way)
    resolves outside the checkout."""
    path = os.path.join(directory, location)
    root = os.path.realpath(directory)
    if os.path.commonpath([root, os.path.realpath(path)]) != root:
        raise StorageConfigError(
            f"`flow_path` {location!r} resolves outside the repository checkout (through "
            "'..' or a symlink); point it at a regular file inside the repository."
        )
    return path
