"""The local agent: runs each claimed flow run in a fresh local process."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys

from ..config import HOME_ENV, home_dir
from ..registry import LEASE_SECONDS_ENV, REGISTRY_URL_ENV, FlowRecord, FlowRunRecord
from .base import Agent

IMAGE_STORAGES = {"Docker"}
"""Storage types whose flows live inside an image: a local process cannot load them."""


class LocalAgent(Agent):
    """Executes runs with ``python -m prefect_storage.cli execute RUN_ID`` on this host."""

    kind = "local-agent"

    def _refusal(self, record: FlowRecord) -> str | None:
        kind = record.storage.get("type")
        if kind in IMAGE_STORAGES:
            return (
                f"Unsupported Storage type: {kind}; the flow lives in an image, so a Docker "
                "agent (`prefect-storage agent docker`) must run it, not a local agent."
            )
        return None

    def _launch(self, run: FlowRunRecord, record: FlowRecord) -> tuple[int | str, str]:
        env = dict(os.environ)
        env[REGISTRY_URL_ENV] = self.registry.url
        env[HOME_ENV] = str(home_dir())
        env[LEASE_SECONDS_ENV] = repr(self.lease_seconds)
        env.update(record.run_config.get("env") or {})
        # Its own session: a signal to the agent's group (Ctrl-C, systemd) reaches only the
        # agent, which stops the run itself; and the agent can signal the run's whole group.
        process = subprocess.Popen(
            [sys.executable, "-m", "prefect_storage.cli", "execute", run.id],
            env=env,
            cwd=record.run_config.get("working_dir") or None,
            stdin=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self._attach(
            run.id,
            terminate=lambda: _signal_group(process.pid, signal.SIGTERM),
            kill=lambda: _signal_group(process.pid, signal.SIGKILL),
        )
        _, stderr = process.communicate()
        sys.stderr.write(stderr)
        return process.returncode, stderr


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)
