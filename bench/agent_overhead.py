"""Agent overhead: "run created" to "run finished" for a trivial flow through a local agent.

20 runs, each scheduled then executed by ``LocalAgent.run_once`` in a fresh process, on
the embedded SQLite registry in a temporary home. Parts come from the registry's own
timestamps and log records: claim (created -> claimed), process start (claimed ->
the child marks it Running), storage load (the "Loading flow" log -> the flow run's
first log) and run (first run log -> finished). Baseline, measured in the same run:
a bare ``python -c pass`` process. Prints only; never fails.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

RUNS = 20


def main() -> None:
    os.environ["PREFECT_STORAGE_HOME"] = tempfile.mkdtemp(prefix="bench-agent-")
    from prefect_storage import Flow, task
    from prefect_storage.agents import LocalAgent
    from prefect_storage.registry import FlowRegistry
    from prefect_storage.storage import Local

    @task
    def trivial() -> int:
        return 1

    with Flow("bench-trivial") as flow:
        trivial()
    flow.storage = Local()
    registry = FlowRegistry()
    flow.register(registry=registry)
    agent = LocalAgent(registry=registry, hostname_label=True)

    parts: dict[str, list[float]] = {
        k: [] for k in ("total", "claim", "process start", "storage load", "run")
    }
    for _ in range(RUNS):
        run = registry.create_flow_run(flow.name)
        agent.run_once()
        run = registry.get_flow_run(run.id)
        assert run.state == "Success", run.message
        logs = registry.get_logs(run.id)
        loading = next(e["timestamp"] for e in logs if e["message"].startswith("Loading flow"))
        running = next(e["timestamp"] for e in logs if e["message"].startswith("Beginning Flow"))
        assert run.claimed_at and run.started_at and run.finished_at
        parts["total"].append((run.finished_at - run.created_at).total_seconds())
        parts["claim"].append((run.claimed_at - run.created_at).total_seconds())
        parts["process start"].append((run.started_at - run.claimed_at).total_seconds())
        parts["storage load"].append((running - loading).total_seconds())
        parts["run"].append((run.finished_at - running).total_seconds())

    bare = []
    for _ in range(RUNS):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        bare.append(time.perf_counter() - start)
    baseline = statistics.median(bare)

    print(f"{RUNS} runs of a 1-task flow through a local agent (SQLite registry); medians:")
    for name, values in parts.items():
        print(f"  {name:<14} {statistics.median(values) * 1000:8.1f} ms")
    total = statistics.median(parts["total"])
    print(f"  {'bare python':<14} {baseline * 1000:8.1f} ms  (baseline: python -c pass)")
    print(f"  total / baseline: {total / baseline:.1f}x")


if __name__ == "__main__":
    main()
