#!/usr/bin/env bash
# contract.sh — the producer libraries against the wire contract's vectors:
# the Python package (schemas/python, pytest), the Node.js package
# (schemas/node, node --test; npm packages cached in $LLMQ_CACHE/npm), the
# Go module (schemas/go, go test; modules and build cache in $LLMQ_CACHE/go)
# and the Java library (schemas/java, Maven and JUnit 5; dependencies cached
# in $LLMQ_CACHE/m2). Needs the test venv (tests/requirements.txt) on PATH or
# in $LLMQ_CACHE/venv, node/npm, go and a JDK 17 with mvn. Exit status
# non-zero if any fails; all always run. With RESULTS_DIR set, each also
# writes a JUnit XML file there (Go: go test's JSON events), for
# tests/summarize.py.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE="${LLMQ_CACHE:-$HOME/.cache/llmq}"
VENV="$CACHE/venv"
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
# --omit=optional: @platformatic/kafka's optional native CRC32C (@node-rs/crc32)
# stays out; its WebAssembly one, inside the npm tarball, is used instead.
(cd "$ROOT/schemas/node" && npm_config_cache="$CACHE/npm" npm ci --silent --no-audit --no-fund \
  --omit=optional && node --test "${node_junit[@]}") || status=1
echo "== go: schemas/go"
if command -v go >/dev/null; then
  (cd "$ROOT/schemas/go" &&
    export GOPATH="$CACHE/go" GOMODCACHE="$CACHE/go/mod" GOCACHE="$CACHE/go/build" GOFLAGS=-mod=mod &&
    go vet ./... &&
    if [ -n "${RESULTS_DIR:-}" ]; then # events for tests/summarize.py; failures printed
      go test -count=1 -json ./... >"$RESULTS_DIR/contract-go.gotest.json" ||
        { grep -v '"Action":"\(run\|pass\|skip\|pause\|cont\)"' "$RESULTS_DIR/contract-go.gotest.json" | tail -40; false; }
    else go test -count=1 ./...; fi) || status=1
else
  echo "go is not installed (Go >= 1.21; a go.mod asking for a newer Go is fetched by the toolchain itself)"
  status=1
fi
echo "== java: schemas/java"
bash "$ROOT/schemas/java/build.sh" || status=1
if [ -n "${RESULTS_DIR:-}" ]; then
  for xml in "$ROOT"/schemas/java/target/surefire-reports/TEST-*.xml; do
    [ -f "$xml" ] && cp "$xml" "$RESULTS_DIR/contract-java-$(basename "$xml" .xml | sed 's/^TEST-dev.llmq.//').xml"
  done
fi
exit $status
