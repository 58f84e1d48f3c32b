"""``Git``: flow scripts cloned from any git server with the system ``git`` executable."""

from __future__ import annotations

import os
from typing import Any

from ...exceptions import StorageConfigError
from ..repo import SHA, RepoStorage, check_ref
from .transport import GitTransport, inside_checkout

PROTOCOLS = ("https", "http", "git")
"""URL schemes for ``repo``/``repo_host`` clones (``use_ssh`` makes ``git@host:repo.git``)."""


class Git(RepoStorage):
    """Run ``flow_path`` from a checkout of exactly the registered commit.

    The clone URL is ``<protocol>://<repo_host>/<repo>.git``, ``git@<repo_host>:<repo>.git``
    with ``use_ssh`` (keys from your SSH setup or ``GIT_SSH_COMMAND``), or the value of the
    secret ``git_clone_url_secret_name``. A token (secret ``git_token_secret_name``) is sent
    as an HTTP header; it never appears in a URL, a command line or ``.git/config``. So is
    the ``user:token`` of an HTTP(S) clone URL; the password of an ``ssh://`` one is dropped
    (SSH uses keys). A token in the clone URL's query (``?private_token=``) is masked in
    every message and log, but git hands that URL to its HTTP helper on a command line:
    prefer userinfo or ``git_token_secret_name``. ``flow_path`` must stay inside the
    repository (no ``..``, no symlink out of it). The checkout stays on disk until the
    process exits, so the flow can read files beside it.
    """

    serialized_fields = (
        "flow_path",
        "repo",
        "repo_host",
        "flow_name",
        "git_token_secret_name",
        "git_token_username",
        "git_clone_url_secret_name",
        "branch_name",
        "tag",
        "commit",
        "clone_depth",
        "use_ssh",
        "format_access_token",
        "protocol",
        "commit_sha",
    )

    def __init__(
        self,
        flow_path: str,
        repo: str | None = None,
        repo_host: str = "github.com",
        flow_name: str | None = None,
        git_token_secret_name: str | None = None,
        git_token_username: str | None = None,
        git_clone_url_secret_name: str | None = None,
        branch_name: str | None = None,
        tag: str | None = None,
        commit: str | None = None,
        clone_depth: int | None = 1,
        use_ssh: bool = False,
        format_access_token: bool = True,
        protocol: str = "https",
        commit_sha: str | None = None,
        **kwargs: Any,
    ) -> None:
        if sum(bool(ref) for ref in (branch_name, tag, commit)) > 1:
            raise StorageConfigError(
                "Please provide only one of the following parameters: `branch_name`, `tag`, "
                "`commit`"
            )
        if repo is None and git_clone_url_secret_name is None:
            raise StorageConfigError(
                "Either `repo` or `git_clone_url_secret_name` must be provided to Git storage"
            )
        if commit is not None and not SHA.match(commit):
            raise StorageConfigError(
                f"`commit` must be a full 40-character commit SHA, got {commit!r}."
            )
        if protocol not in PROTOCOLS:
            raise StorageConfigError(f"`protocol` must be one of {PROTOCOLS}, got {protocol!r}")
        self.flow_path = _check_flow_path(flow_path)
        self.repo = repo
        self.repo_host = repo_host
        self.flow_name = flow_name
        self.git_token_secret_name = git_token_secret_name
        self.git_token_username = git_token_username or (repo.split("/")[0] if repo else None)
        self.git_clone_url_secret_name = git_clone_url_secret_name
        self.branch_name = check_ref(branch_name, "branch_name") if branch_name else None
        self.tag = check_ref(tag, "tag") if tag else None
        self.commit = commit.lower() if commit else None
        self.clone_depth = clone_depth
        self.use_ssh = use_ssh
        self.format_access_token = format_access_token
        self.protocol = protocol
        super().__init__(path=flow_path, commit_sha=commit_sha, **kwargs)
        if use_ssh and git_token_secret_name:
            self.logger.warning("Git storage uses SSH, so `git_token_secret_name` is ignored.")
        if git_clone_url_secret_name and (repo or use_ssh or git_token_secret_name):
            self.logger.warning(
                "`git_clone_url_secret_name` is set, so `repo`, `use_ssh` and "
                "`git_token_secret_name` are ignored."
            )

    def __repr__(self) -> str:
        return f"<Storage: Git {self.repo or self.git_clone_url_secret_name!r} {self.flow_path!r}>"

    @property
    def requested_ref(self) -> str | None:
        if self.branch_name:
            return f"refs/heads/{self.branch_name}"
        if self.tag:
            return f"refs/tags/{self.tag}"
        return self.commit

    def _make_transport(self) -> GitTransport:
        return GitTransport(
            repo=self.repo,
            repo_host=self.repo_host,
            protocol=self.protocol,
            use_ssh=self.use_ssh,
            token_secret=self.git_token_secret_name,
            token_username=self.git_token_username,
            format_access_token=self.format_access_token,
            clone_url_secret=self.git_clone_url_secret_name,
            clone_depth=self.clone_depth,
        )

    def _script_file(self, location: str) -> str | None:
        transport = self.transport
        if isinstance(transport, GitTransport) and transport.checkout_dir:
            return inside_checkout(transport.checkout_dir, location)
        return None


def _check_flow_path(flow_path: str) -> str:
    """Refuse a ``flow_path`` that names a file outside any checkout."""
    if not isinstance(flow_path, str) or not flow_path:
        return flow_path  # RepoStorage explains a missing path
    normal = os.path.normpath(flow_path)
    if os.path.isabs(flow_path) or normal == ".." or normal.startswith(".." + os.sep):
        raise StorageConfigError(
            f"`flow_path` {flow_path!r} points outside the repository; give the script's "
            "path relative to the repository root (e.g. 'flows/etl.py')."
        )
    return flow_path
