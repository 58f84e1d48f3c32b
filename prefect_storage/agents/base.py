"""What every agent does: claim runs whose labels it has, launch each, make sure it ends."""

from __future__ import annotations

import logging
import socket
import time
import uuid
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

from ..registry import FlowRecord, FlowRegistry, FlowRunRecord, RunState

logger = logging.getLogger("prefect_storage.agent")


class Agent(ABC):
    """Polls the registry and runs claimed flow runs with :meth:`_launch`.

    The agent's labels are ``labels`` plus this host's name (unless
    ``hostname_label=False``); it takes only runs whose labels are all among them.
    """

    kind = "agent"

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
        host = {socket.gethostname()} if hostname_label else set()
        self.registry = registry or FlowRegistry()
        self.labels = sorted(set(labels or ()) | host)
        self.name = name or f"{self.kind}-{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
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
        """Launch one claimed run; whatever happens, it ends in a final state."""
        logger.info("Executing flow run %s of %r", run.id, run.flow_name)
        record = self.registry.get_flow(run.flow_name, run.flow_version)
        refusal = self._refusal(record)
        if refusal:
            self._fail(run.id, refusal)
            return
        try:
            exit_code, output = self._launch(run, record)
        except Exception as exc:
            exit_code, output = f"not started ({type(exc).__name__}: {exc})", ""
        if self.registry.get_flow_run(run.id).state not in RunState.FINAL:
            self._fail(
                run.id,
                f"The flow run process exited with code {exit_code} before finishing.",
                output,
            )

    def _fail(self, run_id: str, message: str, output: str = "") -> None:
        tail = "\n".join(output.strip().splitlines()[-20:])
        entry = {
            "timestamp": datetime.now(timezone.utc),
            "level": "ERROR",
            "logger": logger.name,
            "message": message + (f" Its last output:\n{tail}" if tail else ""),
        }
        self.registry.add_logs(run_id, [entry])
        self.registry.set_flow_run_state(run_id, RunState.FAILED, message=message)

    def _refusal(self, record: FlowRecord) -> str | None:
        """Why this agent cannot run flows like ``record`` (None when it can)."""
        return None

    @abstractmethod
    def _launch(self, run: FlowRunRecord, record: FlowRecord) -> tuple[int | str, str]:
        """Run ``prefect-storage execute RUN_ID`` somewhere; return (exit code, output)."""
