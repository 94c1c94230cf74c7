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
# A run killed while DeepSpeed JIT-builds an op (CPU Adam, the shared-memory comm op) leaves the build's
# lock file behind, and every later build waits on it forever: name any lock older than an hour.
EXTENSIONS="${TORCH_EXTENSIONS_DIR:-$HOME/.cache/torch_extensions}"
if [ -d "$EXTENSIONS" ]; then
    find "$EXTENSIONS" -name lock -mmin +60 2>/dev/null | while read -r lock; do
        echo "scripts/test.sh: warning: $lock is over an hour old, probably left by an interrupted build;" \
             "if no build is running, delete it (rm '$lock') or the DeepSpeed tests will wait on it" >&2
    done
fi
exec "$VENV/bin/python" -m pytest -q -rs -n "${GLM_TEST_WORKERS:-2}" --timeout "${GLM_TEST_TIMEOUT:-600}" \
    --durations=15 "${@:-tests}"
