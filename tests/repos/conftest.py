"""Helpers for the repository storages (Git, GitHub, GitLab, Bitbucket, CodeCommit).

Every test makes real bare repositories with ``git_repos`` and reaches them through the
session's real servers (``git_daemon``, ``git_http``, ``git_https``, ``git_ssh``) or the
API fakes (``repo_api``, ``codecommit_server``), exactly the way a user configures a storage.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from prefect_storage.engine.flow import Flow
from prefect_storage.loading import flows_in_script
from prefect_storage.retry import RetryPolicy
from prefect_storage.secrets import ENV_PREFIX
from prefect_storage.storage import Storage

REPO_ROOT = Path(__file__).resolve().parents[2]

FAST = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.02, attempt_timeout=10, deadline=10)
"""For error tests: a retried failure still ends at once."""

SHA_LENGTH = 40


def answer_script(value: str, name: str = "answer-flow") -> str:
    """A script with one flow ``name`` whose task ``answer`` returns ``value``."""
    return textwrap.dedent(
        f"""\
        from prefect_storage import Flow, task


        @task
        def answer():
            return {value!r}


        with Flow({name!r}) as flow:
            answer()
        """
    )


TWO_FLOWS = textwrap.dedent(
    """\
    from prefect_storage import Flow, task


    @task
    def which(label):
        return label


    with Flow("first") as first:
        which("first")

    with Flow("second") as second:
        which("second")
    """
)
"""Two flows in one script: the requested name must pick the flow."""

SIBLING_FILES = textwrap.dedent(
    """\
    import os

    from prefect_storage import Flow, task

    HERE = os.path.dirname(os.path.abspath(__file__))


    @task
    def read_data():
        # Read while the flow RUNS, not when the script is loaded.
        with open(os.path.join(HERE, "data.txt")) as file:
            return file.read().strip()


    @task
    def listing():
        return sorted(name for name in os.listdir(HERE) if not name.startswith("."))


    with Flow("files-flow") as flow:
        read_data()
        listing()
    """
)
"""A flow whose tasks read the files beside the script at run time."""


def result_of(flow: Flow, task_name: str, **parameters: Any) -> Any:
    """Run ``flow`` and return what its task ``task_name`` returned."""
    state = flow.run(parameters=parameters or None)
    assert state is not None and state.is_successful(), state
    [task] = flow.get_tasks(name=task_name)
    return state.result[task].result


def repo_path(bare: Any) -> str:
    """What ``Git(repo=...)`` takes for a served repository: its name without ``.git``."""
    return str(bare.name).removesuffix(".git")


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> Callable[[str, str], str]:
    """``secret(name, value)`` sets a secret through ``PREFECT__CONTEXT__SECRETS__<name>``
    (what a fresh process, e.g. an agent's flow run, sees too); returns ``name``."""

    def set_secret(name: str, value: str) -> str:
        monkeypatch.setenv(ENV_PREFIX + name, value)
        return name

    return set_secret


@pytest.fixture
def local_flow(tmp_path: Path) -> Iterator[Callable[[str, str], Flow]]:
    """``local_flow(source, name)``: the flow as the registering process builds it from its
    own copy of the script (pickled by value, like ``prefect-storage register`` does)."""
    saved_path = list(sys.path)
    counter = iter(range(1_000_000))

    def load(source: str, name: str) -> Flow:
        path = tmp_path / "local-scripts" / f"script_{next(counter)}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
        return flows_in_script(path.read_bytes(), str(path))[name]

    yield load
    sys.path[:] = saved_path


def built(storage: Storage, flow: Flow) -> Storage:
    """``storage`` with ``flow`` added and built (which pins the commit)."""
    storage.add_flow(flow)
    assert storage.build() is storage
    return storage


@pytest.fixture(autouse=True)
def _restore_sys_path() -> Iterator[None]:
    """Loading a script puts its folder (a checkout) on sys.path: leave none behind."""
    saved = list(sys.path)
    yield
    sys.path[:] = saved


@pytest.fixture
def checkouts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The folder Git storage's checkouts go to in this test (Python's temp folder)."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m prefect_storage.cli ARGS`` as a user runs it (this test's environment)."""
    environment = dict(os.environ, **(env or {}))
    environment["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO_ROOT), environment.get("PYTHONPATH")) if p
    )
    environment["COLUMNS"] = "200"
    return subprocess.run(
        [sys.executable, "-m", "prefect_storage.cli", *args],
        env=environment,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
    )
