"""Local pickle storage: build and get_flow time and envelope size for 10/100/1,000 tasks.

The baseline, measured in the same run, is bare ``cloudpickle.dumps``/``loads`` of the
same flow written to and read from a plain file: the ratios show what the envelope
(header line, SHA-256, version checks) and the storage bookkeeping cost on top.
Prints only; never fails.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cloudpickle  # after the path tweak, so a checkout runs without install

from prefect_storage import Flow, task
from prefect_storage.storage import Local

REPEATS = 7


@task
def step(value: int) -> int:
    return value + 1


def make_flow(size: int) -> Flow:
    with Flow(f"bench-{size}") as flow:
        value = step(0)
        for _ in range(size - 1):
            value = step(value)
    return flow


def median_ms(fn) -> float:
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    home = tempfile.mkdtemp(prefix="bench-home-")
    os.environ["PREFECT_STORAGE_HOME"] = home
    print(
        f"{'tasks':>6} {'build ms':>9} {'base ms':>8} {'ratio':>6} "
        f"{'get ms':>8} {'base ms':>8} {'ratio':>6} {'envelope':>10} {'pickle':>10}"
    )
    for size in (10, 100, 1000):
        flow = make_flow(size)
        raw_path = Path(home) / f"raw-{size}.pkl"

        def build(flow=flow) -> Local:
            storage = Local(add_default_labels=False)
            storage.add_flow(flow)
            return storage.build()

        def raw_dump(flow=flow, raw_path=raw_path) -> None:
            raw_path.write_bytes(cloudpickle.dumps(flow, protocol=4))

        storage = build()
        raw_dump()
        location = storage.flows[flow.name]

        build_ms, raw_dump_ms = median_ms(build), median_ms(raw_dump)
        get_ms = median_ms(lambda storage=storage, flow=flow: storage.get_flow(flow.name))
        raw_load_ms = median_ms(lambda raw_path=raw_path: cloudpickle.loads(raw_path.read_bytes()))
        loaded = storage.get_flow(flow.name)
        assert len(loaded.tasks) == size, "round trip lost tasks"
        print(
            f"{size:>6} {build_ms:>9.2f} {raw_dump_ms:>8.2f} {build_ms / raw_dump_ms:>6.2f} "
            f"{get_ms:>8.2f} {raw_load_ms:>8.2f} {get_ms / raw_load_ms:>6.2f} "
            f"{os.path.getsize(location):>10,} {raw_path.stat().st_size:>10,}"
        )
    print(
        "build = add_flow + build (Local writes the envelope at add_flow, atomically with fsync);"
        " base = cloudpickle to a plain file"
    )


if __name__ == "__main__":
    main()
