"""Peak memory of storing and loading a flow whose task closes over a large ``bytes`` value.

Each measurement runs in a fresh subprocess and reports that process's peak resident set
size (``resource.getrusage(RUSAGE_SELF).ru_maxrss``: RSS, what the issue measured; not
tracemalloc, which misses memory outside Python's allocator). Every child first builds or
holds the same thing the operation needs, so the peaks compare like with like:

- ``bare dumps``: ``cloudpickle.dumps(flow)`` (the flow holds ``--mb`` MB of random bytes);
- ``Local build``: ``Local().add_flow(flow)`` + ``build()``;
- ``bare loads``: ``cloudpickle.loads(<file bytes>)`` of the bare pickle;
- ``Local get_flow``: ``Storage.deserialize(payload).get_flow(name)``, as an agent loads;
- with ``--s3`` (moto, started here): ``S3 build`` and ``S3 get_flow`` the same way.

Target: ``Local build`` and ``Local get_flow`` each at most 1.5x the ``bare dumps`` peak.
Prints only; never fails. ``python bench/memory.py [--mb 200] [--s3]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

FLOW_NAME = "memory-bench"
TARGET = 1.5


def make_flow(mb: int) -> Any:
    from prefect_storage import Flow, task

    blob = os.urandom(mb << 20)  # one allocation: no transient second copy while building

    @task
    def size() -> int:
        return len(blob)

    with Flow(FLOW_NAME) as flow:
        size()
    return flow


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def child(case: str, folder: Path, mb: int) -> dict[str, Any]:
    """Run one measurement in this (fresh) process; return its peak RSS and timing."""
    import cloudpickle

    from prefect_storage.storage import S3, Local, Storage

    s3_options = {"endpoint_url": os.environ.get("BENCH_S3_ENDPOINT", "")}
    before = peak_mb()
    start = time.perf_counter()
    if case == "bare dumps":
        flow = make_flow(mb)
        before = peak_mb()
        start = time.perf_counter()
        data = cloudpickle.dumps(flow, protocol=4)
        (folder / "bare.pkl").write_bytes(data)
    elif case == "Local build":
        flow = make_flow(mb)
        before = peak_mb()
        start = time.perf_counter()
        storage = Local(directory=str(folder / "flows"), add_default_labels=False)
        storage.add_flow(flow)
        storage.build()
        (folder / "local.json").write_text(json.dumps(storage.serialize()))
    elif case == "bare loads":
        loaded = cloudpickle.loads((folder / "bare.pkl").read_bytes())
        assert loaded.name == FLOW_NAME
    elif case == "Local get_flow":
        payload = json.loads((folder / "local.json").read_text())
        loaded = Storage.deserialize(payload).get_flow(FLOW_NAME)
        assert loaded.name == FLOW_NAME
    elif case == "S3 build":
        flow = make_flow(mb)
        before = peak_mb()
        start = time.perf_counter()
        storage = S3(os.environ["BENCH_S3_BUCKET"], client_options=s3_options)
        storage.add_flow(flow)
        storage.build()
        (folder / "s3.json").write_text(json.dumps(storage.serialize()))
    elif case == "S3 get_flow":
        payload = json.loads((folder / "s3.json").read_text())
        loaded = Storage.deserialize(payload).get_flow(FLOW_NAME)
        assert loaded.name == FLOW_NAME
    else:
        raise SystemExit(f"unknown case {case!r}")
    seconds = time.perf_counter() - start
    return {"case": case, "peak_mb": peak_mb(), "before_mb": before, "seconds": seconds}


def measure(case: str, folder: Path, mb: int, env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", case, "--dir", str(folder), "--mb", str(mb)],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        check=False,
    )
    if done.returncode != 0:
        return {"case": case, "error": done.stderr.strip().splitlines()[-1:]}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def start_moto(env: dict[str, str]) -> Any:
    from tests.servers.s3 import (
        AWS_ACCESS_KEY_ID,
        AWS_REGION,
        AWS_SECRET_ACCESS_KEY,
        MotoServer,
    )

    server = MotoServer().start()
    env.update(
        AWS_ACCESS_KEY_ID=AWS_ACCESS_KEY_ID,
        AWS_SECRET_ACCESS_KEY=AWS_SECRET_ACCESS_KEY,
        AWS_DEFAULT_REGION=AWS_REGION,
        BENCH_S3_ENDPOINT=server.endpoint_url,
        BENCH_S3_BUCKET=server.new_bucket("bench-memory"),
    )
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200, help="MB the task closes over")
    parser.add_argument("--s3", action="store_true", help="also S3 build/get_flow (moto)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, Path(args.dir), args.mb)))
        return

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env["PREFECT_STORAGE_HOME"] = tempfile.mkdtemp(prefix="bench-memory-home-")
    cases = ["bare dumps", "Local build", "bare loads", "Local get_flow"]
    server = None
    if args.s3:
        try:
            server = start_moto(env)
            cases += ["S3 build", "S3 get_flow"]
        except Exception as exc:  # a benchmark prints, never fails
            print(f"S3 skipped: {exc}")
    try:
        with tempfile.TemporaryDirectory(prefix="bench-memory-") as folder:
            results = {case: measure(case, Path(folder), args.mb, env) for case in cases}
    finally:
        if server is not None:
            server.stop()

    print(f"A task closing over {args.mb} MB; peak RSS of a fresh process per line (ru_maxrss)")
    print(f"{'':16} {'peak MB':>9} {'setup MB':>9} {'seconds':>8} {'/ bare dumps':>13}")
    bare = results["bare dumps"].get("peak_mb")
    for case, result in results.items():
        if "error" in result:
            print(f"{case:16} failed: {result['error']}")
            continue
        ratio = f"{result['peak_mb'] / bare:.2f}x" if bare else "-"
        print(
            f"{case:16} {result['peak_mb']:>9.0f} {result['before_mb']:>9.0f} "
            f"{result['seconds']:>8.2f} {ratio:>13}"
        )
    for case in ("Local build", "Local get_flow", "S3 build", "S3 get_flow"):
        peak = results.get(case, {}).get("peak_mb")
        if peak and bare:
            verdict = "ok" if peak <= TARGET * bare else "OVER"
            print(f"target {case} <= {TARGET}x bare dumps peak: {peak / bare:.2f}x {verdict}")
    print("setup MB: peak before the operation (interpreter, imports and, where built, the flow)")


if __name__ == "__main__":
    main()
