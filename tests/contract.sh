#!/usr/bin/env bash
# contract.sh — the producer libraries against the wire contract's vectors:
# the Python package (schemas/python, pytest) and the Node.js package
# (schemas/node, node --test). Needs the test venv (tests/requirements.txt)
# on PATH or in $LLMQ_CACHE/venv, and node/npm. Exit status non-zero if
# either fails; both always run.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV="${LLMQ_CACHE:-$HOME/.cache/llmq}/venv"
PYTHON=python3
[ -x "$VENV/bin/python" ] && PYTHON="$VENV/bin/python"

status=0
echo "== python: schemas/python/tests"
(cd "$ROOT/schemas/python" && "$PYTHON" -m pytest -q -p no:cacheprovider tests) || status=1
echo "== node: schemas/node"
(cd "$ROOT/schemas/node" && npm ci --silent --no-audit --no-fund && node --test) || status=1
exit $status
