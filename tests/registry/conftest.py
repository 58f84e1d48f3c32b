"""Fixtures for the registry tests: a real PostgreSQL server, a fresh registry per test
(parametrized over SQLite and PostgreSQL), flow scripts written to disk, and the CLI run as
a subprocess exactly as a user runs it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from prefect_storage.engine.flow import Flow
from prefect_storage.loading import flows_in_script
from prefect_storage.registry import REGISTRY_URL_ENV, FlowRegistry
from tests.servers.postgres import PostgresServer, free_port

REPO_ROOT = Path(__file__).resolve().parents[2]

CLI_TIMEOUT = 120.0
"""Seconds any one CLI subprocess may take before the test fails."""

STOP_TIMEOUT = 60.0
"""Seconds a stopped background CLI process (an agent) may take to exit: generous, since on a
busy machine a clean stop (its runs' processes stopped, their states recorded) takes time."""

WAIT_TIMEOUT = 90.0
"""Seconds a test waits for a condition (a run's state, a process gone) before failing."""


def wait_until(condition: Callable[[], object], what: str, timeout: float = WAIT_TIMEOUT) -> object:
    """Poll ``condition`` until it returns something truthy (returned) or fail after
    ``timeout`` seconds, saying ``what`` was awaited."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def group_alive(pgid: int) -> bool:
    """Whether any live (non-zombie) process is in process group ``pgid``."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z" and int(fields[2]) == pgid:
                return True
    return False


@pytest.fixture(autouse=True)
def _no_ambient_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """No registry URL leaks in from the developer's shell: each test says which it uses."""
    monkeypatch.delenv(REGISTRY_URL_ENV, raising=False)


@pytest.fixture(params=["sqlite", "postgresql"])
def registry_url(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    _no_ambient_registry: None,
) -> str:
    """The URL of a fresh, empty registry; also set as PREFECT_STORAGE_REGISTRY_URL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'registry' / 'registry.db'}"
    else:
        server: PostgresServer = request.getfixturevalue("postgres_server")
        url = server.url(server.create_database())
    monkeypatch.setenv(REGISTRY_URL_ENV, url)
    return url


@pytest.fixture
def registry(registry_url: str) -> Iterator[FlowRegistry]:
    """A FlowRegistry on ``registry_url``; its connections are closed after the test."""
    flow_registry = FlowRegistry(registry_url)
    yield flow_registry
    if flow_registry._engine is not None:
        flow_registry._engine.dispose()


@pytest.fixture
def unreachable_registry_url() -> str:
    """A PostgreSQL URL on a loopback port where nothing listens."""
    return f"postgresql://x@127.0.0.1:{free_port()}/db"


@pytest.fixture
def write_script(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write dedented Python source to ``tmp_path/scripts/<name>``; returns the path."""

    def write(name: str, source: str) -> Path:
        path = tmp_path / "scripts" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
        return path

    return write


@pytest.fixture
def load_flow(
    write_script: Callable[[str, str], Path],
) -> Iterator[Callable[[str, str], Flow]]:
    """Build a flow from script source (executed in a non-importable namespace, so its task
    functions pickle by value and load in any process); returns the flow named ``name``."""
    saved_path = list(sys.path)
    counter = iter(range(1_000_000))

    def load(source: str, name: str) -> Flow:
        path = write_script(f"flow_{next(counter)}.py", source)
        return flows_in_script(path.read_bytes(), str(path))[name]

    yield load
    sys.path[:] = saved_path  # loading a script puts its folder on sys.path


class CLI:
    """Runs ``python -m prefect_storage.cli`` in a subprocess with this test's home and
    registry (from the environment the fixtures set up)."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd

    def env(self, **overrides: str | None) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
        env["PYTHONUNBUFFERED"] = "1"
        env["COLUMNS"] = "200"  # no wrapping of long lines by rich/click
        for name, value in overrides.items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        return env

    def __call__(
        self, *args: str, timeout: float = CLI_TIMEOUT, **env: str | None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "prefect_storage.cli", *args],
            env=self.env(**env),
            cwd=self.cwd,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=timeout,
            check=False,
        )

    def popen(
        self, *args: str, logs: Path, new_session: bool = False, **env: str | None
    ) -> subprocess.Popen[str]:
        """Start a CLI process in the background; its stdout and stderr go to
        ``logs.out`` and ``logs.err`` (files, so a chatty process never blocks on a pipe).
        ``new_session``: in its own session and process group (as a systemd service is)."""
        logs.parent.mkdir(parents=True, exist_ok=True)
        with open(f"{logs}.out", "w") as out, open(f"{logs}.err", "w") as err:
            return subprocess.Popen(
                [sys.executable, "-m", "prefect_storage.cli", *args],
                env=self.env(**env),
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                text=True,
                start_new_session=new_session,
            )


@pytest.fixture
def cli(tmp_path: Path) -> CLI:
    workdir = tmp_path / "cwd"
    workdir.mkdir(exist_ok=True)
    return CLI(workdir)


def stop_process(process: subprocess.Popen[str], timeout: float = STOP_TIMEOUT) -> int:
    """Interrupt a background CLI process (as Ctrl-C would), kill it if it lingers past
    ``timeout``; returns its exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


def read_logs(logs: Path) -> tuple[str, str]:
    """The stdout and stderr that :meth:`CLI.popen` wrote for ``logs``."""
    return Path(f"{logs}.out").read_text(), Path(f"{logs}.err").read_text()
