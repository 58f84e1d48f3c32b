"""Docker storage: first build of a small flow's image, then rebuilds after a one-line change to
the flow; target: a rebuild takes at most 25% of the first build.

The engine, a local registry, the Python base image and this checkout's wheel come from the
test suite's own wrappers (``tests/servers/docker.py``), started here. Each round builds with
``storage.build()`` (build, health check and push to the registry, as ``flow.register()``
does):

- ``first``: an image no layer of which is cached (a fresh ``env_vars`` value comes first in
  the Dockerfile, so ``pip install`` of this package's dependencies runs from the index);
- ``rebuild``: the same storage options after changing one line of the flow script: only the
  flows' ``COPY`` and the health check run again, and only their layer is pushed.

Prints the times of every round, the medians and their ratio. Prints only; never fails.
"""

from __future__ import annotations

import logging
import os
import statistics
import sys
import tempfile
import time
import traceback
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from prefect_storage.loading import flows_in_script  # noqa: E402  (after the path tweak)
from prefect_storage.storage import Docker  # noqa: E402

ROUNDS = 2
REBUILDS = 2
"""Rebuilds (each after another one-line change) per round."""
TARGET = 0.25

FLOW = """
from prefect_storage import Flow, task


@task
def numbers():
    return list(range(10))


@task
def total(values):
    return sum(values) + {offset}  # the line that changes


with Flow("bench-docker-rebuild") as flow:
    total(numbers())
"""


def load_flow(folder: Path, offset: int):  # type: ignore[no-untyped-def]
    script = folder / f"flow_{offset}.py"
    script.write_text(FLOW.format(offset=offset))
    return flows_in_script(script.read_bytes(), str(script))["bench-docker-rebuild"]


def timed_build(folder: Path, offset: int, run_id: str, options: dict[str, object]) -> float:
    storage = Docker(env_vars={"BENCH_RUN": run_id}, **options)  # type: ignore[arg-type]
    storage.add_flow(load_flow(folder, offset))
    start = time.perf_counter()
    storage.build(push=True)
    return time.perf_counter() - start


def main() -> None:
    os.environ["PREFECT_STORAGE_HOME"] = tempfile.mkdtemp(prefix="bench-home-")
    logging.getLogger("prefect_storage").setLevel(logging.WARNING)
    from tests.servers.docker import (
        DockerDaemon,
        LocalRegistry,
        build_wheel,
        print_progress,
        python_base_image,
    )

    folder = Path(tempfile.mkdtemp(prefix="bench-docker-"))
    daemon, registry = DockerDaemon(), LocalRegistry()
    try:
        began = time.perf_counter()
        daemon.start()
        registry.start()
        options: dict[str, object] = {
            "registry_url": registry.url,
            "image_name": "bench-docker-rebuild",
            "base_url": daemon.host,
            "base_image": python_base_image(daemon, print_progress),
            "local_image": True,
            "package_wheel": str(build_wheel(REPO, folder / "wheel")),
            "python_dependencies": ["tomli-w>=1.0,<2"],
        }
        print(
            f"engine ({daemon.storage_driver}), registry, base image and wheel ready in "
            f"{time.perf_counter() - began:.1f} s"
        )
        print("storage.build() of a 2-task flow, with push to a local registry (seconds)")
        firsts: list[float] = []
        rebuilds: list[float] = []
        offset = 0
        for number in range(1, ROUNDS + 1):
            run_id = uuid.uuid4().hex  # nothing cached below it
            first = timed_build(folder, offset, run_id, options)
            firsts.append(first)
            again = []
            for _ in range(REBUILDS):
                offset += 1
                again.append(timed_build(folder, offset, run_id, options))
            rebuilds.extend(again)
            shown = ", ".join(f"{s:.2f}" for s in again)
            print(f"  round {number}: first build {first:.2f}; rebuilds (one-line change) {shown}")
        first_median, rebuild_median = statistics.median(firsts), statistics.median(rebuilds)
        ratio = rebuild_median / first_median
        verdict = "met" if ratio <= TARGET else "NOT met"
        print(f"first build (median of {len(firsts)}): {first_median:.2f} s")
        print(f"rebuild     (median of {len(rebuilds)}): {rebuild_median:.2f} s")
        print(f"ratio rebuild / first: {ratio:.1%} (target <= {TARGET:.0%}: {verdict})")
    except Exception:
        print("the benchmark could not run:")
        traceback.print_exc(file=sys.stdout)
    finally:
        registry.stop()
        daemon.stop()


if __name__ == "__main__":
    main()
