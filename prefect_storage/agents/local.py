"""The local agent: claims flow runs whose labels it has and runs each in a fresh process."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

from ..config import HOME_ENV, home_dir
from ..registry import REGISTRY_URL_ENV, FlowRegistry, FlowRunRecord, RunState

logger = logging.getLogger("prefect_storage.agent")


class LocalAgent:
    """Polls the registry and executes claimed runs with ``prefect-storage execute``.

    The agent's labels are ``labels`` plus this host's name (unless
    ``hostname_label=False``); it takes only runs whose labels are all among them.
    """

    def __init__(
        self,
        labels: list[str] | None = None,
        registry: FlowRegistry | None = None,
        name: str | None = None,
        hostname_label: bool = True,
        concurrency: int = 1,
    ) -> None:
        if concurrency < 1:
            raise ValueError("`concurrency` must be at least 1")
        self.registry = registry or FlowRegistry()
        self.labels = sorted(
            set(labels or ()) | ({socket.gethostname()} if hostname_label else set())
        )
        self.name = name or f"local-agent-{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
        self.concurrency = concurrency

    def run_once(self) -> list[str]:
        """Claim and execute runs until none is left for this agent; returns their ids."""
        done: list[str] = []
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            while True:
                runs = self.registry.claim_flow_runs(self.labels, self.name, limit=self.concurrency)
                if not runs:
                    return done
                list(pool.map(self.execute, runs))
                done.extend(run.id for run in runs)

    def start(self, poll_interval: float = 2.0) -> None:
        """Run until interrupted, polling every ``poll_interval`` seconds."""
        logger.info("Agent %s started with labels %s", self.name, self.labels)
        while True:
            self.run_once()
            time.sleep(poll_interval)

    def execute(self, run: FlowRunRecord) -> None:
        """Execute one claimed run in a fresh process; a crash still ends it Failed."""
        logger.info("Executing flow run %s of %r", run.id, run.flow_name)
        env = dict(os.environ)
        env[REGISTRY_URL_ENV] = self.registry.url
        env[HOME_ENV] = str(home_dir())
        record = self.registry.get_flow(run.flow_name, run.flow_version)
        env.update(record.run_config.get("env") or {})
        working_dir = record.run_config.get("working_dir") or None
        command = [sys.executable, "-m", "prefect_storage.cli", "execute", run.id]
        stderr = ""
        try:
            process = subprocess.run(
                command, env=env, cwd=working_dir, check=False, stderr=subprocess.PIPE, text=True
            )
            exit_code: int | str = process.returncode
            stderr = process.stderr
            sys.stderr.write(stderr)
        except OSError as exc:
            exit_code = f"not started ({exc.strerror})"
        final = self.registry.get_flow_run(run.id)
        if final.state not in RunState.FINAL:
            message = f"The flow run process exited with code {exit_code} before finishing."
            tail = "\n".join(stderr.strip().splitlines()[-20:])
            self.registry.add_logs(
                run.id,
                [
                    {
                        "timestamp": datetime.now(timezone.utc),
                        "level": "ERROR",
                        "logger": logger.name,
                        "message": message + (f" Its last output:\n{tail}" if tail else ""),
                    }
                ],
            )
            self.registry.set_flow_run_state(run.id, RunState.FAILED, message=message)
