#!/usr/bin/env bash
# Create (or refresh) the virtual environment and run the whole test suite.
#
#   bash scripts/test.sh              # everything, as CI runs it
#   bash scripts/test.sh tests/model  # extra arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh requirements.txt requirements-test.txt
VENV="${GLM_VENV:-.venv}"
# Two worker processes on the 2-core machines; tests that spawn gloo ranks pick free ports.
# A test that hangs (a rank waiting for a peer that died) fails after GLM_TEST_TIMEOUT seconds instead of
# gloo's 30 minutes; -rs prints every skip with its reason.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
exec "$VENV/bin/python" -m pytest -q -rs -n "${GLM_TEST_WORKERS:-2}" --timeout "${GLM_TEST_TIMEOUT:-600}" \
    --durations=15 "${@:-tests}"
