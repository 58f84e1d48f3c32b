"""``Git(flow_path=...)`` runs only a file inside the checkout: a path that leaves the
repository (``..``, absolute) is refused at construction, and one that resolves outside it
through a symlink committed to the repository is refused after checkout, before anything
runs. Against a real ``git daemon``."""

from __future__ import annotations

import json
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from prefect_storage.exceptions import StorageConfigError
from prefect_storage.storage import Git, Storage
from tests.repos.conftest import FAST, answer_script, repo_path, result_of
from tests.servers.git import GitDaemon, GitRepoFactory

LocalFlow = Callable[[str, str], object]


@pytest.fixture
def outside() -> Iterator[Path]:
    """A folder in /tmp, outside any checkout, with ``x.py``: a flow script that would
    leave a marker file beside itself if it ever ran."""
    folder = Path("/tmp") / f"outside-{uuid.uuid4().hex[:10]}"
    folder.mkdir()
    (folder / "x.py").write_text(
        textwrap.dedent(
            """\
            import os
            open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "ran"), "w").close()
            """
        )
        + answer_script("outside", "answer-flow")
    )
    yield folder
    for path in folder.iterdir():
        path.unlink()
    folder.rmdir()


def _daemon_git(daemon: GitDaemon, bare: object, flow_path: str) -> Git:
    storage = Git(flow_path, repo_path(bare), repo_host=f"127.0.0.1:{daemon.port}", protocol="git")
    storage.retry_policy = FAST
    return storage


@pytest.mark.parametrize(
    "flow_path",
    ["../../../../tmp/x.py", "pipelines/../../x.py", "..", "/tmp/x.py", "/etc/passwd"],
)
def test_a_flow_path_leaving_the_repository_is_refused_at_construction(flow_path: str) -> None:
    with pytest.raises(StorageConfigError, match=r"`flow_path`.*outside the repository"):
        Git(flow_path, "org/repo")
    payload = Git("flow.py", "org/repo").serialize()
    payload["flow_path"] = flow_path  # a tampered or legacy payload, as an agent receives it
    with pytest.raises(StorageConfigError, match="`flow_path`"):
        Storage.deserialize(json.loads(json.dumps(payload)))


@pytest.mark.parametrize(
    "link, target, flow_path",
    [
        ("pipelines/flow.py", "{outside}/x.py", "pipelines/flow.py"),
        ("pipelines/up.py", "../../../../../../../../..{outside}/x.py", "pipelines/up.py"),
        ("escape", "{outside}", "escape/x.py"),
    ],
    ids=["file-symlink", "relative-symlink", "folder-symlink"],
)
def test_a_symlink_in_the_repository_pointing_outside_is_refused(
    git_repos: GitRepoFactory,
    git_daemon: GitDaemon,
    local_flow: LocalFlow,
    outside: Path,
    link: str,
    target: str,
    flow_path: str,
) -> None:
    bare = git_repos.create("flows", {"pipelines/data.txt": "x\n"})
    bare.commit({link: target.format(outside=outside)}, symlinks=(link,))
    storage = _daemon_git(git_daemon, bare, flow_path)
    storage.add_flow(local_flow(answer_script("local"), "answer-flow"))
    with pytest.raises(StorageConfigError, match=r"`flow_path`.*outside the repository checkout"):
        storage.build()
    # An agent's process, given a payload pinned to that commit, refuses it too.
    payload = storage.serialize()
    payload["commit_sha"] = bare.head
    payload["flows"] = {"answer-flow": flow_path}
    with pytest.raises(StorageConfigError, match="`flow_path`"):
        Storage.deserialize(payload).get_flow("answer-flow")
    assert not (outside / "ran").exists()  # the outside script never ran


def test_a_symlink_inside_the_repository_is_followed(
    git_repos: GitRepoFactory, git_daemon: GitDaemon, local_flow: LocalFlow
) -> None:
    bare = git_repos.create("flows", {"pipelines/flow.py": answer_script("inside")})
    bare.commit({"current.py": "pipelines/flow.py"}, symlinks=("current.py",))
    storage = _daemon_git(git_daemon, bare, "current.py")
    storage.add_flow(local_flow(answer_script("local"), "answer-flow"))
    storage.build()
    assert result_of(storage.get_flow("answer-flow"), "answer") == "inside"
