"""A real PostgreSQL server on loopback, from Debian's packages, for the flow registry tests.

``PostgresServer().start()`` runs ``initdb`` and ``postgres`` (the newest version under
``/usr/lib/postgresql/*/bin``) on a free port with trust authentication and fsync off, in a
temporary folder. PostgreSQL refuses to run as root, so as root both run as the ``postgres``
OS user (``runuser``) and the folder is handed to that user. ``create_database()`` gives each
test a fresh database; ``stop()`` ends the server by its PID and removes the folder.
``shut_down()`` and ``start_again()`` make an outage: the same server, port and data.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

POSTGRES_USER = "postgres"
"""The OS user that runs the server when the tests run as root (Debian creates it)."""

SUPERUSER = "postgres"
"""The database superuser that ``initdb`` creates; trust auth means no password."""

START_TIMEOUT = 30.0
"""Seconds to wait for the server to accept connections."""


class PostgresUnavailable(RuntimeError):
    """The server could not be started here (not installed, or it failed); says why."""


def find_bin_dir() -> Path:
    """The ``bin`` folder of the newest PostgreSQL installed from Debian's packages."""
    candidates = [
        Path(folder)
        for folder in glob.glob("/usr/lib/postgresql/*/bin")
        if (Path(folder) / "postgres").is_file() and (Path(folder) / "initdb").is_file()
    ]
    if not candidates:
        raise PostgresUnavailable(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/postgres); "
            "run `bash scripts/bootstrap.sh` or `apt-get install postgresql`"
        )

    def version(folder: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", folder.parent.name))

    return max(candidates, key=version)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """One throw-away PostgreSQL cluster; see the module docstring."""

    def __init__(self) -> None:
        self.bin_dir: Path | None = None
        self.folder: Path | None = None
        self.port: int | None = None
        self.pid: int | None = None
        self._process: subprocess.Popen[bytes] | None = None

    # -- life cycle -------------------------------------------------------------------------
    def start(self) -> PostgresServer:
        try:
            import psycopg  # noqa: F401  (the registry's driver; the tests need it too)
        except ImportError as exc:
            raise PostgresUnavailable(
                f"psycopg is not installed ({exc}): pip install 'prefect-storage[postgres]'"
            ) from None
        self.bin_dir = find_bin_dir()
        # As root, under /tmp: the postgres user must be able to reach the folder.
        parent = "/tmp" if self._as_root() and os.path.isdir("/tmp") else None
        self.folder = Path(tempfile.mkdtemp(prefix="prefect-storage-pg-", dir=parent))
        data, sockets = self.folder / "data", self.folder / "sockets"
        sockets.mkdir()
        self._hand_to_server_user(self.folder)
        try:
            self._run_as_server_user(
                [
                    str(self.bin_dir / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    SUPERUSER,
                    "-A",
                    "trust",
                    "-E",
                    "UTF8",
                    "--no-locale",
                    "--no-sync",
                ],
                timeout=120,
            )
            self.port = free_port()
            # Stopped by the session fixture; atexit too, should the session end abruptly.
            atexit.register(self.stop)
            self._run_postmaster()
        except BaseException:
            self.stop()
            raise
        return self

    def _run_postmaster(self) -> None:
        """Start ``postgres`` on ``self.port`` over the existing data folder; wait for it."""
        assert self.folder is not None and self.bin_dir is not None
        data, sockets = self.folder / "data", self.folder / "sockets"
        log = open(self.folder / "postgres.log", "ab")  # noqa: SIM115  (kept by the child)
        with log:
            self._process = subprocess.Popen(
                [
                    *self._as_server_user(),
                    str(self.bin_dir / "postgres"),
                    "-D",
                    str(data),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                    "-k",
                    str(sockets),
                    "-F",  # fsync off: a test database need not survive a power cut
                    "-c",
                    "synchronous_commit=off",
                    "-c",
                    "full_page_writes=off",
                    "-c",
                    "max_connections=300",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wait_until_ready(data)

    def shut_down(self) -> None:
        """Fast shutdown of the server, keeping its data and port: an outage that
        :meth:`start_again` ends. Returns once the server is gone."""
        self._stop_postmaster()

    def start_again(self) -> None:
        """Start the server that :meth:`shut_down` stopped, on the same port and data."""
        if self.folder is None:
            raise PostgresUnavailable("start_again() after stop(): the data folder is gone")
        self._run_postmaster()

    def stop(self) -> None:
        """Fast shutdown of the postmaster by PID (then SIGKILL), and remove the folder."""
        self._stop_postmaster()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def _stop_postmaster(self) -> None:
        pids = [pid for pid in (self.pid, self._process and self._process.pid) if pid]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGINT)  # SIGINT is PostgreSQL's "fast" shutdown
        deadline = time.monotonic() + 15
        for pid in pids:
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        if self._process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=5)
        self._process = None
        self.pid = None

    # -- use --------------------------------------------------------------------------------
    def url(self, database: str = "postgres") -> str:
        """A ``postgresql://`` URL (what ``PREFECT_STORAGE_REGISTRY_URL`` takes)."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str = "postgres"):  # type: ignore[no-untyped-def]  # psycopg lazy
        import psycopg

        return psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user=SUPERUSER,
            dbname=database,
            autocommit=True,
            connect_timeout=5,
        )

    def create_database(self, prefix: str = "test") -> str:
        """A new, empty database; returns its name."""
        from psycopg import sql

        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with self.connect() as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return name

    def log_tail(self, lines: int = 20) -> str:
        if self.folder is None or not (self.folder / "postgres.log").exists():
            return ""
        text = (self.folder / "postgres.log").read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    # -- helpers ----------------------------------------------------------------------------
    @staticmethod
    def _as_root() -> bool:
        return os.geteuid() == 0

    def _as_server_user(self) -> list[str]:
        # Not `su`: runuser needs no PAM password prompt and keeps the environment simple.
        return ["runuser", "-u", POSTGRES_USER, "--"] if self._as_root() else []

    def _hand_to_server_user(self, folder: Path) -> None:
        if not self._as_root():
            return
        try:
            user = pwd.getpwnam(POSTGRES_USER)
        except KeyError:
            raise PostgresUnavailable(
                f"there is no {POSTGRES_USER!r} OS user to run PostgreSQL as (it refuses root); "
                "Debian's postgresql package creates it"
            ) from None
        for path in [folder, *folder.rglob("*")]:
            os.chown(path, user.pw_uid, user.pw_gid)
        folder.chmod(0o700)

    def _run_as_server_user(self, command: list[str], timeout: float) -> None:
        done = subprocess.run(
            [*self._as_server_user(), *command],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=self.folder,
        )
        if done.returncode != 0:
            output = (done.stdout + done.stderr).strip().splitlines()[-10:]
            raise PostgresUnavailable(
                f"{Path(command[0]).name} failed (exit {done.returncode}): " + " | ".join(output)
            )

    def _wait_until_ready(self, data: Path) -> None:
        import psycopg

        assert self._process is not None
        deadline = time.monotonic() + START_TIMEOUT
        last_error = "no answer yet"
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise PostgresUnavailable(
                    f"postgres exited with code {self._process.returncode}: {self.log_tail()}"
                )
            try:
                with self.connect():
                    pass
            except psycopg.OperationalError as exc:
                last_error = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
                time.sleep(0.1)
                continue
            self.pid = _postmaster_pid(data) or self._process.pid
            return
        raise PostgresUnavailable(
            f"postgres did not accept connections on 127.0.0.1:{self.port} within "
            f"{START_TIMEOUT:.0f} s ({last_error}): {self.log_tail()}"
        )


def _postmaster_pid(data: Path) -> int | None:
    """The postmaster's PID from ``postmaster.pid`` (runuser may sit between us and it)."""
    try:
        first = (data / "postmaster.pid").read_text().splitlines()[0]
        return int(first)
    except (OSError, IndexError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours still answers kill(0); reap it if it is ours.
    with contextlib.suppress(ChildProcessError):
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            return False
    return True
