"""The local agent: runs each claimed flow run in a fresh local process."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys

from ..registry import FlowRecord, FlowRunRecord
from .base import Agent, execute_command, runs_in_image


class LocalAgent(Agent):
    """Executes runs with ``python -m prefect_storage.cli execute RUN_ID`` on this host."""

    kind = "local-agent"

    def _refusal(self, record: FlowRecord) -> str | None:
        if runs_in_image(record):
            return (
                f"Unsupported Storage type: {record.storage['type']}; the flow lives in an "
                "image, so a Docker agent (`prefect-storage agent docker`) must run it, not a "
                "local agent."
            )
        return None

    def _launch(self, run: FlowRunRecord, record: FlowRecord) -> tuple[int | str, str]:
        # Its own session: a signal to the agent's group (Ctrl-C, systemd) reaches only the
        # agent, which stops the run itself; and the agent can signal the run's whole group.
        process = subprocess.Popen(
            [sys.executable, *execute_command(run.id)],
            env=self._child_environment(record, os.environ),
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
