"""Registration pins the commit: moving the branch afterwards does not change what the agent
runs, ``flows show`` displays the SHA, and a force-pushed-away commit fails the run with a
message naming it. End to end for every repository backend: ``flow.register`` into a SQLite
registry, a ``LocalAgent`` running each flow run in a fresh process, the CLI as a subprocess.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from prefect_storage.agents.local import LocalAgent
from prefect_storage.engine.flow import Flow
from prefect_storage.registry import FlowRegistry, RunState
from prefect_storage.secrets import ENV_PREFIX
from prefect_storage.storage import Bitbucket, CodeCommit, Git, GitHub, GitLab, Storage
from tests.repos.conftest import SIBLING_FILES, answer_script, repo_path, run_cli
from tests.servers.git import BareRepo, GitRepoFactory

LocalFlow = Callable[[str, str], Flow]
KINDS = ("git-http", "github", "gitlab", "bitbucket-server", "bitbucket-cloud", "codecommit")


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[FlowRegistry]:
    flow_registry = FlowRegistry(f"sqlite:///{tmp_path / 'registry' / 'registry.db'}")
    yield flow_registry
    if flow_registry._engine is not None:
        flow_registry._engine.dispose()


def _storage(kind: str, request: pytest.FixtureRequest, bare: BareRepo) -> Storage:
    """A storage of ``kind`` for ``bare``; its secrets are in the environment, which the agent's
    flow-run processes inherit."""
    monkeypatch: pytest.MonkeyPatch = request.getfixturevalue("monkeypatch")
    if kind == "git-http":
        server = request.getfixturevalue("git_http")
        monkeypatch.setenv(ENV_PREFIX + "PIN_TOKEN", server.token)
        return Git(
            "pipelines/flow.py",
            repo_path(bare),
            repo_host=f"127.0.0.1:{server.port}",
            protocol="http",
            git_token_secret_name="PIN_TOKEN",
            branch_name="main",
        )
    if kind == "codecommit":
        server = request.getfixturevalue("codecommit_server")
        server.add_repo("flows", bare)
        options = {"endpoint_url": server.endpoint_url}
        return CodeCommit("flows", "pipelines/flow.py", commit="main", client_options=options)
    api = request.getfixturevalue("repo_api")
    api.add_repo("acme/flows", bare)
    api.add_repo("ACME/flows", bare)
    monkeypatch.setenv(ENV_PREFIX + "PIN_TOKEN", api.token)
    common: dict[str, Any] = {"path": "pipelines/flow.py", "ref": "main"}
    if kind == "github":
        return GitHub("acme/flows", access_token_secret="PIN_TOKEN", base_url=api.url, **common)
    if kind == "gitlab":
        return GitLab("acme/flows", host=api.url, access_token_secret="PIN_TOKEN", **common)
    if kind == "bitbucket-server":
        return Bitbucket("ACME", "flows", host=api.url, access_token_secret="PIN_TOKEN", **common)
    monkeypatch.setenv("BITBUCKET_CLOUD_USERNAME", api.username)
    monkeypatch.setenv("BITBUCKET_CLOUD_APP_PASSWORD", api.password)
    return Bitbucket("ACME", "flows", workspace="acme", host=api.url, **common)


def _run(registry: FlowRegistry, name: str) -> Any:
    run = registry.create_flow_run(name)
    agent = LocalAgent(registry=registry, hostname_label=False)
    assert agent.run_once() == [run.id]
    return registry.get_flow_run(run.id)


@pytest.mark.parametrize("kind", KINDS)
def test_the_agent_runs_the_registered_commit(
    kind: str,
    request: pytest.FixtureRequest,
    git_repos: GitRepoFactory,
    registry: FlowRegistry,
    local_flow: LocalFlow,
) -> None:
    bare = git_repos.create("flows", {"README.md": "flows\n"})
    base = bare.head
    # Git checks out the whole tree: its flow reads a file beside it while it runs, and only
    # that file changes later. The API backends read the script alone: the script changes.
    if kind.startswith("git-"):
        source, flow_name, task_name = SIBLING_FILES, "files-flow", "read_data"
        files = {"pipelines/flow.py": source, "pipelines/data.txt": "v1\n"}
        moved = {"pipelines/data.txt": "v2\n"}
    else:
        source, flow_name, task_name = answer_script("v1", "pinned-flow"), "pinned-flow", "answer"
        files = {"pipelines/flow.py": source}
        moved = {"pipelines/flow.py": answer_script("v2", "pinned-flow")}
    pinned = bare.commit(files, message="v1")
    flow = local_flow(source, flow_name)
    flow.storage = _storage(kind, request, bare)

    flow.register(registry=registry)
    record = registry.get_flow(flow_name)
    assert record.storage["commit_sha"] == pinned

    tip = bare.commit(moved, message="v2: the branch moves on")
    run = _run(registry, flow_name)
    assert run.state == RunState.SUCCESS, run.message
    [result] = [s["result"] for s in run.task_states.values() if s["task"] == task_name]
    assert result == repr("v1")  # the registered commit, not the branch's new tip

    shown = run_cli("flows", "show", flow_name, env={"PREFECT_STORAGE_REGISTRY_URL": registry.url})
    assert shown.returncode == 0, shown.stderr
    assert pinned in shown.stdout
    assert tip not in shown.stdout

    # Force-pushed away and garbage-collected: the run fails, naming the commit.
    bare.force_push(bare.default_branch, str(base))
    bare.purge_unreachable()
    assert not bare.has_object(pinned)
    run = _run(registry, flow_name)
    assert run.state == RunState.FAILED
    assert run.message and pinned in run.message, run.message
