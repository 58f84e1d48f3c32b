#!/usr/bin/env bash
# The one check command for developers and CI: ruff (fails the check), mypy.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

python3 -m ruff check prefect_storage tests bench scripts

if python3 -m mypy --version >/dev/null 2>&1; then
    python3 -m mypy prefect_storage --ignore-missing-imports
else
    echo "check.sh: mypy is not installed (pip install -e '.[test]'); skipped"
fi
