"""``Git``: flow scripts cloned from any git server with the system ``git`` executable."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from typing import Any

from ..clients.git import SHA, GitRunner, auth_header, check_ref, split_credentials
from ..exceptions import FlowNotFoundError, StorageConfigError
from ..storage.base import RepoStorage

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
        self._checkout_dir: str | None = None
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

    def _remote(self) -> GitRunner:
        from ..secrets import Secret

        if self.git_clone_url_secret_name:
            url, userinfo = split_credentials(str(Secret(self.git_clone_url_secret_name).get()))
            if userinfo and not url.startswith(("http://", "https://")):
                self.logger.warning(
                    "The clone URL in secret %r carries a password, which git cannot use over "
                    "%s; it is ignored (SSH authenticates with keys: GIT_SSH_COMMAND).",
                    self.git_clone_url_secret_name,
                    url.partition(":")[0],
                )
                userinfo = None
            return GitRunner(url, auth_header(userinfo) if userinfo else None)
        if self.use_ssh:
            return GitRunner(f"git@{self.repo_host}:{self.repo}.git")
        url = f"{self.protocol}://{self.repo_host}/{self.repo}.git"
        if not self.git_token_secret_name or self.protocol == "git":
            return GitRunner(url)
        token = str(Secret(self.git_token_secret_name).get())
        userinfo = f"{self.git_token_username}:{token}" if self.format_access_token else token
        return GitRunner(url, auth_header(userinfo))

    def _resolve_commit(self) -> str:
        if self.commit:
            return self.commit
        remote = self._remote()
        if self.branch_name:
            wanted = [f"refs/heads/{self.branch_name}"]
        elif self.tag:
            # An annotated tag is listed twice; the peeled ``^{}`` line is its commit.
            wanted = [f"refs/tags/{self.tag}^{{}}", f"refs/tags/{self.tag}"]
        else:
            wanted = ["HEAD"]
        found = remote.ls_remote(*wanted)
        for name in wanted:
            if name in found:
                return found[name]
        what = f"branch {self.branch_name!r}" if self.branch_name else f"tag {self.tag!r}"
        raise FlowNotFoundError(f"{what} not found in {remote.display_url}.")

    def _get(self, location: str) -> bytes:
        sha = self.commit_sha or self._resolve_commit()
        directory = tempfile.mkdtemp(prefix="prefect-storage-git-")
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
        self._remote().checkout(sha, directory, self.clone_depth)
        self._checkout_dir = directory
        path = _inside_checkout(directory, location)
        try:
            with open(path, "rb") as file:
                return file.read()
        except FileNotFoundError:
            raise FlowNotFoundError(
                f"{location!r} is not in commit {sha} of the repository; check `flow_path`."
            ) from None

    def _script_file(self, location: str) -> str | None:
        return _inside_checkout(self._checkout_dir, location) if self._checkout_dir else None


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


def _inside_checkout(directory: str, location: str) -> str:
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
