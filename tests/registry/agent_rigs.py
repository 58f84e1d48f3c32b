"""What the lease, cancel and outage tests share: a flow that sleeps (and says where), and a
background agent started as a user starts one."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from prefect_storage.engine.flow import Flow
from prefect_storage.registry import FlowRegistry, FlowRunRecord
from prefect_storage.storage import Local
from tests.registry.conftest import CLI, read_logs, wait_until

LABEL = "leases"

LEASE = "3"
"""``--lease-seconds`` of the agents under test: a lost run is reaped within seconds."""

SLEEPY_FLOW = """
import json, os, subprocess, time
from prefect_storage import Flow, Parameter, context, task

@task
def sleep_long(marker):
    helper = subprocess.Popen(["sleep", "300"])  # a grandchild of the agent, in the run's group
    context["logger"].info("sleeping in process %s", os.getpid())
    with open(marker + ".tmp", "w") as file:
        json.dump({"pid": os.getpid(), "helper": helper.pid}, file)
    os.replace(marker + ".tmp", marker)
    time.sleep(300)

@task
def quick():
    return 42

@task
def wait_for(marker, gate):
    open(marker, "w").close()
    while not os.path.exists(gate):  # until the test opens the gate
        time.sleep(0.05)
    return "through"

with Flow("sleepy") as sleepy:
    sleep_long(Parameter("marker", required=True))

with Flow("quick") as quick_flow:
    quick()

with Flow("gated") as gated:
    wait_for(Parameter("marker", required=True), Parameter("gate", required=True))
"""


def register_flows(
    load_flow: Callable[[str, str], Flow],
    registry: FlowRegistry,
    tmp_path: Path,
    run_config: object = None,
) -> None:
    """Register ``sleepy``, ``quick`` and ``gated`` (Local storage, label ``leases``)."""
    for name in ("sleepy", "quick", "gated"):
        flow = load_flow(SLEEPY_FLOW, name)
        flow.storage = Local(directory=str(tmp_path / "flows"), add_default_labels=False)
        if run_config is not None:
            flow.run_config = run_config  # type: ignore[assignment]
        flow.register(labels=[LABEL], registry=registry)


@dataclass
class Sleeping:
    """A sleepy run whose process is asleep: the run's id, its process and the helper."""

    run: FlowRunRecord
    pid: int
    helper: int


def start_sleepy(registry: FlowRegistry, tmp_path: Path) -> Sleeping:
    """Schedule a sleepy run and wait until its process is asleep (an agent must run)."""
    marker = tmp_path / f"marker-{len(list(tmp_path.glob('marker-*')))}.json"
    run = registry.create_flow_run("sleepy", parameters={"marker": str(marker)})
    wait_until(marker.exists, f"the sleepy run {run.id} to start")
    pids = json.loads(marker.read_text())
    return Sleeping(run, pids["pid"], pids["helper"])


@dataclass
class BackgroundAgent:
    cli: CLI
    process: subprocess.Popen[str]
    logs: Path
    name: str

    def output(self) -> tuple[str, str]:
        return read_logs(self.logs)

    def kill9(self) -> None:
        self.process.kill()
        self.process.wait()


def start_agent(
    cli: CLI, tmp_path: Path, name: str, *extra: str, new_session: bool = False
) -> BackgroundAgent:
    logs = tmp_path / "agents" / name
    process = cli.popen(
        "agent",
        "local",
        "--no-hostname-label",
        "-l",
        LABEL,
        "--poll-interval",
        "0.2",
        "--lease-seconds",
        LEASE,
        "--name",
        name,
        *extra,
        logs=logs,
        new_session=new_session,
    )
    return BackgroundAgent(cli, process, logs, name)


def kill_group(pgid: int) -> None:
    """SIGKILL every process of a group (a run's process and what it started)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
