#!/usr/bin/env bash
# contract.sh — the producer libraries against the wire contract's vectors:
# the Python package (schemas/python, pytest), the Node.js package
# (schemas/node, node --test) and the Java library (schemas/java, Maven and
# JUnit 5; its dependencies cached in $LLMQ_CACHE/m2). Needs the test venv
# (tests/requirements.txt) on PATH or in $LLMQ_CACHE/venv, node/npm, and a
# JDK 17 with mvn. Exit status non-zero if any fails; all always run. With RESULTS_DIR set, each also writes a
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
echo "== java: schemas/java"
bash "$ROOT/schemas/java/build.sh" || status=1
if [ -n "${RESULTS_DIR:-}" ]; then
  for xml in "$ROOT"/schemas/java/target/surefire-reports/TEST-*.xml; do
    [ -f "$xml" ] && cp "$xml" "$RESULTS_DIR/contract-java-$(basename "$xml" .xml | sed 's/^TEST-dev.llmq.//').xml"
  done
fi
exit $status
