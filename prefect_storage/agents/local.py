"""The local agent: runs each claimed flow run in a fresh local process."""

from __future__ import annotations

import os
import subprocess
import sys

from ..config import HOME_ENV, home_dir
from ..registry import REGISTRY_URL_ENV, FlowRecord, FlowRunRecord
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
        env.update(record.run_config.get("env") or {})
        process = subprocess.run(
            [sys.executable, "-m", "prefect_storage.cli", "execute", run.id],
            env=env,
            cwd=record.run_config.get("working_dir") or None,
            check=False,
            stderr=subprocess.PIPE,
            text=True,
        )
        sys.stderr.write(process.stderr)
        return process.returncode, process.stderr
