"""Wall time of importing prefect_storage in a fresh interpreter, against bare Python.

Runs `python -c "import prefect_storage"`, `python -c "import prefect_storage.storage"` (the
public storage classes: every backend module, no SDK) and `python -c "pass"`, interleaved, each
RUNS times, from the repository root (so the working tree's package is measured), and prints
the medians. With `--against DIR` (another checkout, e.g. a `git worktree` of the previous
commit) the same imports from that tree run interleaved too, and the ratios ours/theirs are
printed. Prints only; never fails on the target.

Usage: python bench/import_time.py [--against DIR]
"""

from __future__ import annotations

import argparse
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
IMPORTS = {
    "import prefect_storage": "import prefect_storage",
    "import prefect_storage.storage": "import prefect_storage.storage",
}
BARE = "pass"


def wall_time(code: str, cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", type=Path, help="another checkout to compare with")
    args = parser.parse_args()
    trees = {"ours": ROOT} | ({"theirs": args.against.resolve()} if args.against else {})
    # One untimed run each: warms the file cache and writes bytecode, and shows a broken import.
    for tree in trees.values():
        for code in IMPORTS.values():
            warm = subprocess.run([sys.executable, "-c", code], cwd=tree, capture_output=True)
            if warm.returncode != 0:
                print(f"{code} failed in {tree}:\n{warm.stderr.decode()}", file=sys.stderr)
                return 1

    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(RUNS):  # interleaved, so drift in machine load hits every command alike
        times.setdefault(("bare", BARE), []).append(wall_time(BARE, ROOT))
        for name, tree in trees.items():
            for label, code in IMPORTS.items():
                times.setdefault((name, label), []).append(wall_time(code, tree))

    medians = {key: statistics.median(values) * 1000 for key, values in times.items()}
    bare_ms = medians[("bare", BARE)]
    print(f"python: {sys.executable} ({sys.version.split()[0]}), {RUNS} runs each, medians")
    print(f"bare python (pass): {bare_ms:8.1f} ms")
    for label in IMPORTS:
        ours = medians[("ours", label)]
        line = f"{label + ':':32} {ours:8.1f} ms  (+{ours - bare_ms:.1f} ms over bare)"
        if args.against:
            theirs = medians[("theirs", label)]
            line += (
                f"  against {theirs:.1f} ms (+{theirs - bare_ms:.1f}): ratio {ours / theirs:.2f}x"
            )
        print(line)
    diff_ms = medians[("ours", "import prefect_storage")] - bare_ms
    verdict = "PASS" if diff_ms <= TARGET_MS else "OVER"
    print(
        f"target: `import prefect_storage` at most {TARGET_MS:.0f} ms above bare Python: {verdict}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
