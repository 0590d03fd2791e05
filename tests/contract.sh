#!/usr/bin/env bash
# contract.sh — the producer libraries against the wire contract's vectors:
# the Python package (schemas/python, pytest) and the Node.js package
# (schemas/node, node --test). Needs the test venv (tests/requirements.txt)
# on PATH or in $LLMQ_CACHE/venv, and node/npm. Exit status non-zero if
# either fails; both always run. With RESULTS_DIR set, each also writes a
# JUnit XML file there (for tests/summarize.py).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV="${LLMQ_CACHE:-$HOME/.cache/llmq}/venv"
PYTHON=python3
[ -x "$VENV/bin/python" ] && PYTHON="$VENV/bin/python"

status=0
echo "== python: schemas/python/tests"
py_junit=(); node_junit=()
if [ -n "${RESULTS_DIR:-}" ]; then
  py_junit=(--junitxml="$RESULTS_DIR/contract-python.xml")
  node_junit=(--test-reporter=spec --test-reporter-destination=stdout
              --test-reporter=junit --test-reporter-destination="$RESULTS_DIR/contract-node.xml")
fi
(cd "$ROOT/schemas/python" && "$PYTHON" -m pytest -q -p no:cacheprovider "${py_junit[@]}" tests) || status=1
echo "== node: schemas/node"
(cd "$ROOT/schemas/node" && npm ci --silent --no-audit --no-fund && node --test "${node_junit[@]}") || status=1
exit $status
