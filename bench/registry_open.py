"""Opening a registry: ``FlowRegistry(url).check()`` on an existing registry, as agents do often.

Each measurement is a fresh ``FlowRegistry`` (so a fresh engine: connect, schema check) on a
registry that is already up to date, on SQLite and (when the test suite's PostgreSQL can be
started here) PostgreSQL. Baseline, measured in the same run: a bare SQLAlchemy
``create_engine(url)`` + ``SELECT 1`` on the same database. Prints medians of 30 runs
(interleaved) and their ratio; target: at most a few ms above the baseline. Never fails.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

RUNS = 30


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def measure(label: str, url: str) -> None:
    from sqlalchemy import create_engine, text

    from prefect_storage.registry import FlowRegistry

    def open_registry() -> None:
        registry = FlowRegistry(url)
        registry.check()
        registry.engine.dispose()

    def bare() -> None:
        engine_url = url.replace("postgresql://", "postgresql+psycopg://", 1)
        engine = create_engine(engine_url)
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()

    open_registry()  # creates (or upgrades) the registry; not measured
    timings: dict[str, list[float]] = {"FlowRegistry(url).check()": [], "bare SELECT 1": []}
    runs: list[tuple[str, Callable[[], None]]] = [
        ("FlowRegistry(url).check()", open_registry),
        ("bare SELECT 1", bare),
    ]
    for _ in range(RUNS):
        for name, run in runs:
            start = time.perf_counter()
            run()
            timings[name].append(time.perf_counter() - start)
    check, base = (_median_ms(timings[name]) for name, _ in runs)
    print(
        f"{label:<11} check() {check:7.2f} ms   bare {base:7.2f} ms   "
        f"ratio {check / base:5.2f}   overhead {check - base:6.2f} ms"
    )


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="bench-registry-"))
    measure("SQLite", f"sqlite:///{folder / 'registry.db'}")
    try:
        from tests.servers.postgres import PostgresServer
    except ImportError as exc:
        print(f"PostgreSQL    skipped ({exc})")
        return
    server = PostgresServer()
    try:
        server.start()
    except Exception as exc:
        print(f"PostgreSQL    skipped ({exc})")
        return
    try:
        measure("PostgreSQL", server.url(server.create_database()))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
