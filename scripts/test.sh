#!/usr/bin/env bash
# Create (or refresh) the project's virtual environment and run the whole test suite.
#
#   bash scripts/test.sh              # everything, as CI runs it
#   bash scripts/test.sh tests/model  # extra arguments go to pytest
#
# The environment lives in .venv beside this checkout (override with GLM_VENV).  It is
# reinstalled whenever requirements*.txt change.  torch is pinned in requirements.txt: an
# unpinned torch, or deepspeed resolved without it, would pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${GLM_VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
STAMP="$VENV/.requirements.sha256"
WANT="$(cat requirements.txt requirements-test.txt | sha256sum | cut -d' ' -f1)"

if [ ! -x "$VENV/bin/python" ]; then
    echo "== creating virtual environment in $VENV"
    "$PYTHON" -m venv "$VENV"
fi
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
    echo "== installing requirements into $VENV"
    # DS_BUILD_OPS=0: DeepSpeed compiles its C++/CUDA ops lazily on first use instead of at install.
    DS_BUILD_OPS=0 "$VENV/bin/python" -m pip install --disable-pip-version-check -q \
        -r requirements.txt -r requirements-test.txt
    echo "$WANT" > "$STAMP"
fi

# Two worker processes on the 2-core machines; tests that spawn gloo ranks pick free ports.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
exec "$VENV/bin/python" -m pytest -q -n "${GLM_TEST_WORKERS:-2}" --durations=15 "${@:-tests}"
