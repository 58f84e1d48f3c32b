"""A real S3 server on loopback for S3 storage: moto's standalone server, as a child process.

``MotoServer().start()`` runs ``python -m moto.server -H 127.0.0.1 -p 0`` (moto's own
``moto_server`` script, run with this interpreter), reads the port the OS gave it from its
output, and waits until it answers HTTP. ``reset()`` wipes every bucket (``POST
/moto-api/reset``); ``client()`` is a boto3 S3 client for it (region ``us-east-1``, dummy keys:
moto checks no signatures); ``new_bucket()`` creates a uniquely named bucket. ``stop()`` ends
the process by its PID; it is safe to call twice, and a test may call it mid-test to make the
server vanish under the code it tests.

This module also holds ``ServerProcess``, the start/wait/stop logic the other emulator
wrappers (``gcs.py``, ``azurite.py``) share: the child writes stdout and stderr to a log file
in its own temporary folder (a pipe nobody reads would fill up and block the server), and a
server that does not answer within ``START_TIMEOUT`` seconds raises ``ServerUnavailable`` with
the tail of that log.
"""

from __future__ import annotations

import contextlib
import ctypes
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

START_TIMEOUT = 20.0
"""Seconds a server may take to answer before start() gives up (with its log in the error)."""

STOP_TIMEOUT = 5.0
"""Seconds a server gets to exit on SIGTERM before it is killed."""

AWS_REGION = "us-east-1"
AWS_ACCESS_KEY_ID = "testing"
AWS_SECRET_ACCESS_KEY = "testing"  # a dummy: moto checks no signatures


class ServerUnavailable(RuntimeError):
    """A server could not be started here; the message says why (with the server's output)."""


class ServerNotInstalled(ServerUnavailable):
    """The server's program or module is not installed (outside CI the tests may skip)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (for servers without port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_answers(port: int, path: str = "/", method: str = "GET", timeout: float = 1.0) -> bool:
    """Whether something on 127.0.0.1:``port`` answers an HTTP request (any status)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path)
        connection.getresponse().read()
    except OSError:  # refused, reset, timed out, ...
        return False
    finally:
        connection.close()
    return True


class ServerProcess:
    """A server run as a child process on 127.0.0.1 (see the module docstring).

    Subclasses give ``name``, ``command()`` and ``ready()``; a server that prints the port
    it was given for port 0 also gives ``port_pattern`` (a regex with one group), otherwise
    ``start()`` picks a free port first and ``command()`` passes ``self.port`` on.
    """

    name = "server"
    port_pattern: re.Pattern[str] | None = None
    bind_error_pattern = re.compile(r"address already in use|EADDRINUSE|Errno 98", re.IGNORECASE)
    start_attempts = 3
    """How often to try again when a pre-picked free port was taken before the server bound it."""

    def __init__(self) -> None:
        self.port: int | None = None
        self.pid: int | None = None
        self.folder: Path | None = None
        self.startup_seconds: float | None = None
        self.returncode: int | None = None
        """The exit code of the last child process, once it has ended."""
        self._process: subprocess.Popen[bytes] | None = None

    # -- to override ---------------------------------------------------------------------------
    def command(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        """Whether the server answers requests (called once the port is known)."""
        assert self.port is not None
        return http_answers(self.port)

    def environment(self) -> dict[str, str]:
        return {**os.environ, "PYTHONUNBUFFERED": "1"}

    # -- life cycle ----------------------------------------------------------------------------
    def start(self) -> ServerProcess:
        began = time.monotonic()
        self.folder = Path(tempfile.mkdtemp(prefix=f"prefect-storage-{self.name}-"))
        try:
            for attempt in range(1, self.start_attempts + 1):
                self.port = None if self.port_pattern is not None else free_port()
                if self._spawn_and_wait(last_attempt=attempt == self.start_attempts):
                    break
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began
        return self

    def stop(self) -> None:
        """SIGTERM to the child's process group (SIGKILL after ``STOP_TIMEOUT``), then remove
        the folder. Idempotent."""
        self._end_process()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def kill(self) -> None:
        """End the server abruptly (SIGKILL), as a crash would; ``stop()`` still cleans up."""
        if self._process is not None and self._process.poll() is None:
            _signal_group(self._process.pid, signal.SIGKILL)
            self._process.wait(timeout=STOP_TIMEOUT)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def log_tail(self, lines: int = 30) -> str:
        log = self.folder / "server.log" if self.folder is not None else None
        if log is None or not log.exists():
            return "(no output)"
        text = log.read_text(errors="replace").strip()
        return "\n".join(text.splitlines()[-lines:]) or "(no output)"

    # -- helpers -------------------------------------------------------------------------------
    def _spawn_and_wait(self, last_attempt: bool) -> bool:
        """Start the child and wait; False when a pre-picked port was lost to a race."""
        assert self.folder is not None
        log_path = self.folder / "server.log"
        command = self.command()
        try:
            with open(log_path, "wb") as log:
                self._process = subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.folder,
                    env=self.environment(),
                    start_new_session=True,  # a Ctrl-C in the terminal does not reach it
                    preexec_fn=_die_with_parent,
                )
        except OSError as exc:
            raise ServerNotInstalled(f"{self.name}: cannot run {command[0]}: {exc}") from None
        self.pid = self._process.pid
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            output = log_path.read_text(errors="replace")
            port_lost = self.port_pattern is None and self.bind_error_pattern.search(output)
            if self._process.poll() is not None or port_lost:
                self._end_process()
                if port_lost and not last_attempt:
                    return False
                raise ServerUnavailable(
                    f"{self.name} exited with code {self.returncode} before it "
                    f"answered ({' '.join(command)}):\n{self.log_tail()}"
                )
            if self.port is None:
                assert self.port_pattern is not None
                match = self.port_pattern.search(output)
                if match:
                    self.port = int(match.group(1))
            if self.port is not None and self.ready():
                return True
            time.sleep(0.02)
        where = f"127.0.0.1:{self.port}" if self.port else "a port it did not report"
        self._end_process()
        raise ServerUnavailable(
            f"{self.name} did not answer on {where} within {START_TIMEOUT:.0f} s "
            f"({' '.join(command)}):\n{self.log_tail()}"
        )

    def _end_process(self) -> None:
        process, self._process = self._process, None
        self.pid = None
        if process is None:
            return
        if process.poll() is None:
            _signal_group(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                _signal_group(process.pid, signal.SIGKILL)
                process.wait(timeout=STOP_TIMEOUT)
        self.returncode = process.returncode


def _die_with_parent() -> None:
    """In the child before exec: Linux sends it SIGTERM when the test process dies (even by
    SIGKILL), so an interrupted run leaves no server behind."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: stop() is the only clean-up
        pass


PR_SET_PDEATHSIG = 1


def _signal_group(pid: int, signum: int) -> None:
    """Signal a live, not yet reaped child and its own children: it was started in a new
    session, so its process group id is its PID (and cannot have been reused)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signum)


class MotoServer(ServerProcess):
    """moto's standalone S3 server on a free loopback port (see the module docstring)."""

    name = "moto"
    port_pattern = re.compile(r"Running on http://127\.0\.0\.1:(\d+)")

    def command(self) -> list[str]:
        return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", "0"]

    def start(self) -> MotoServer:
        try:
            import moto.server  # noqa: F401
        except ImportError as exc:
            raise ServerNotInstalled(
                f"moto's server is not installed ({exc}): pip install 'moto[server]'"
            ) from None
        super().start()
        return self

    def ready(self) -> bool:
        assert self.port is not None
        return http_answers(self.port, "/moto-api/reset", method="POST")

    @property
    def endpoint_url(self) -> str:
        if self.port is None:
            raise RuntimeError("the moto server is not started")
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        """Delete every bucket and object (moto's ``POST /moto-api/reset``)."""
        assert self.port is not None
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request("POST", "/moto-api/reset")
            response = connection.getresponse()
            response.read()
        finally:
            connection.close()
        if response.status != 200:
            raise RuntimeError(f"moto reset answered HTTP {response.status}")

    def client(self, endpoint_url: str | None = None, **config: Any) -> Any:
        """A boto3 S3 client for this server (or for ``endpoint_url``, e.g. a fault proxy).

        Keyword arguments go to ``botocore.config.Config``, e.g. ``retries={"total_max_attempts":
        1}`` for exactly one attempt (``max_attempts`` there counts retries: 1 means two tries).
        """
        import boto3
        from botocore.config import Config

        # botocore rewrites a given ``retries`` dict in place: hand it copies.
        options = {key: dict(v) if isinstance(v, dict) else v for key, v in config.items()}
        return boto3.client(
            "s3",
            endpoint_url=endpoint_url or self.endpoint_url,
            region_name=AWS_REGION,
            aws_access_key_id=AWS_ACCESS_KEY_ID,
            aws_secret_access_key=AWS_SECRET_ACCESS_KEY,
            config=Config(**options) if options else None,
        )

    def new_bucket(self, prefix: str = "test") -> str:
        """Create a uniquely named, empty bucket; returns its name."""
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name
