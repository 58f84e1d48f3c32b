#!/usr/bin/env bash
# Installs what the tests need (scripts/bootstrap.sh), lints, and runs the whole suite.
# Arguments go to pytest. Exits non-zero if ruff or pytest fails (pytest's 5, no tests, too).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/bootstrap.sh

lint=0
bash scripts/check.sh || lint=$?

tests=0
python3 -m pytest "$@" || tests=$?

if [ "$tests" -ne 0 ]; then
    exit "$tests"
fi
if [ "$lint" -ne 0 ]; then
    echo "test.sh: scripts/check.sh (ruff, mypy) failed (exit $lint)" >&2
    exit "$lint"
fi
