"""A commit that was force-pushed away and garbage-collected is reported as gone
(``FlowNotFoundError``) whatever digits its SHA has: git quotes the SHA in its error, and
``...f403e...`` is not an HTTP 403. (A random SHA contains ``403`` about once in a hundred:
``idioms/git-storage.md`` failed that often.) Real servers, real git."""

from __future__ import annotations

from pathlib import Path

import pytest

from prefect_storage.backends.git.runner import GitRunner
from prefect_storage.exceptions import FlowNotFoundError
from tests.servers.git import GitDaemon, GitHTTPServer, GitRepoFactory


@pytest.mark.parametrize("fragment", ["403", "401"])
@pytest.mark.parametrize("transport", ["git", "http"])
def test_a_vanished_commit_is_not_found_whatever_its_sha(
    transport: str,
    fragment: str,
    git_repos: GitRepoFactory,
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    bare = git_repos.create("flows", {"flow.py": "x = 1\n"})
    base = bare.head
    assert base is not None
    gone = bare.commit_with_sha_containing(fragment, {"flow.py": "x = 2\n"})
    assert fragment in gone
    bare.force_push(bare.default_branch, base)
    bare.purge_unreachable()
    assert not bare.has_object(gone)
    if transport == "git":
        daemon: GitDaemon = request.getfixturevalue("git_daemon")
        runner = GitRunner(daemon.url(bare))
    else:
        http: GitHTTPServer = request.getfixturevalue("git_http")
        runner = GitRunner(http.url(bare), http.basic_header())
    with pytest.raises(FlowNotFoundError) as info:
        runner.checkout(gone, str(tmp_path / "checkout"), 1)
    assert str(info.value) == (
        f"Commit {gone} is not in {runner.url} any more (force-pushed away or deleted); "
        "re-register the flow from a commit that exists."
    )
    runner.checkout(base, str(tmp_path / "base"), 1)  # the server itself answers fine
