"""Wall time of `import prefect_storage` in a fresh interpreter, against bare Python.

Runs `python -c "import prefect_storage"` and `python -c "pass"` interleaved, each RUNS times,
from the repository root (so the working tree's package is measured), and prints the medians.
Prints only; never fails on the target. Usage: python bench/import_time.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

RUNS = 20
"""Fresh processes per command."""

TARGET_MS = 60.0
"""Budget for `import prefect_storage` above bare interpreter start-up, in milliseconds."""

ROOT = Path(__file__).resolve().parent.parent
IMPORT = [sys.executable, "-c", "import prefect_storage"]
BARE = [sys.executable, "-c", "pass"]


def wall_time(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    # One untimed run each: warms the file cache and writes bytecode, and shows a broken import.
    warm = subprocess.run(IMPORT, cwd=ROOT, capture_output=True, text=True)
    if warm.returncode != 0:
        print(f"import prefect_storage failed:\n{warm.stderr}", file=sys.stderr)
        return 1
    subprocess.run(BARE, cwd=ROOT, check=True)

    imports: list[float] = []
    bare: list[float] = []
    for _ in range(RUNS):  # interleaved, so drift in machine load hits both alike
        imports.append(wall_time(IMPORT))
        bare.append(wall_time(BARE))

    imp_ms = statistics.median(imports) * 1000
    bare_ms = statistics.median(bare) * 1000
    diff_ms = imp_ms - bare_ms
    print(f"python: {sys.executable} ({sys.version.split()[0]}), {RUNS} runs each, medians")
    print(f"import prefect_storage: {imp_ms:8.1f} ms")
    print(f"bare python (pass):     {bare_ms:8.1f} ms")
    print(f"difference:             {diff_ms:8.1f} ms  (ratio {imp_ms / bare_ms:.2f}x)")
    verdict = "PASS" if diff_ms <= TARGET_MS else "OVER"
    print(f"target: at most {TARGET_MS:.0f} ms above bare Python: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
