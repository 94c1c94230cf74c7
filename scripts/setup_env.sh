#!/usr/bin/env bash
# Create (or refresh) the project's virtual environment.  Used by scripts/test.sh and scripts/demo.sh:
#
#   bash scripts/setup_env.sh [REQUIREMENTS_FILE...]     # default: requirements.txt
#
# The environment lives in .venv beside this checkout (override with GLM_VENV) and is reinstalled
# whenever the requirement files change.  torch is pinned in requirements.txt: an unpinned torch, or
# deepspeed resolved without it, would pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${GLM_VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
files=("$@")
[ ${#files[@]} -gt 0 ] || files=(requirements.txt)
STAMP="$VENV/.requirements.sha256"
WANT="$(cat "${files[@]}" | sha256sum | cut -d' ' -f1)"

if [ ! -x "$VENV/bin/python" ]; then
    echo "== creating virtual environment in $VENV"
    "$PYTHON" -m venv "$VENV"
fi
if [ ! -f "$STAMP" ] || ! grep -qx "$WANT" "$STAMP"; then
    echo "== installing ${files[*]} into $VENV"
    args=()
    for f in "${files[@]}"; do args+=(-r "$f"); done
    # DS_BUILD_OPS=0: DeepSpeed compiles its C++/CUDA ops lazily on first use instead of at install.
    DS_BUILD_OPS=0 "$VENV/bin/python" -m pip install --disable-pip-version-check -q "${args[@]}"
    echo "$WANT" >> "$STAMP"
fi
