#!/usr/bin/env bash
# run.sh — llmq's benchmarks in one command (not part of tests/run.sh's pass/fail run).
#
#   tests/bench/run.sh [--quick] [bench.py options...]
#
# Builds llmq (Release) into $LLMQ_BENCH_BUILD (default build/bench), finds or builds
# llama-server and both models (deploy/local/llama.sh, models.sh), makes sure the broker
# answers (starting it with deploy/local/kafka.sh if it is not running), then runs
# tests/bench/bench.py: throughput (tiny and real model), latency and the worker ceiling.
# Results: a table on stdout; results.md, results.json and every log under
# $LLMQ_BENCH_OUT (default build/bench-results/<time>). Python packages come from
# tests/requirements.txt, installed into the project venv if missing.
# --quick: small N everywhere (a smoke run of a minute or two). Other options go to
# bench.py, e.g. --stages ceiling, --reps 5, --tiny-jobs 800 (see bench.py --help).
# --device-rehearsal: only the GPU device check's CPU rehearsal (tests/gpu/device-check.sh --cpu).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
if [ "${1:-}" = --device-rehearsal ]; then exec bash "$ROOT/tests/gpu/device-check.sh" --cpu; fi
. "$ROOT/deploy/local/common.sh"

args=()
for a in "$@"; do
  if [ "$a" = --quick ]; then
    args+=(--reps 1 --tiny-jobs 40 --real-jobs 4 --real-tokens 16 --latency-jobs 50
      --ceiling-jobs 5000 --ceiling-py-jobs 500 --sample-s 0.5)
  else
    args+=("$a")
  fi
done

BUILD=${LLMQ_BENCH_BUILD:-$ROOT/build/bench}
OUT=${LLMQ_BENCH_OUT:-$ROOT/build/bench-results/$(date +%Y%m%d-%H%M%S)}
VENV="$LLMQ_CACHE/venv"

log "bench: building llmq (Release) in $BUILD"
cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" -j 2 --target llmq-worker fast_fake_llama >/dev/null

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV" || die "python3 -m venv failed (apt-get install python3-venv)"
fi
"$VENV/bin/python" -c 'import confluent_kafka, msgpack' 2>/dev/null ||
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$ROOT/tests/requirements.txt"

LLAMA=$(bash "$ROOT/deploy/local/llama.sh" path)
TINY=$(bash "$ROOT/deploy/local/models.sh" tiny)
REAL=$(bash "$ROOT/deploy/local/models.sh" real)
bash "$ROOT/deploy/local/kafka.sh" status >/dev/null 2>&1 || bash "$ROOT/deploy/local/kafka.sh" start

mkdir -p "$OUT"
log "bench: results in $OUT"
uptime >&2
cd "$ROOT/tests/bench"
exec "$VENV/bin/python" bench.py --build-dir "$BUILD" --llama-server "$LLAMA" \
  --tiny-model "$TINY" --real-model "$REAL" --bootstrap "127.0.0.1:$LLMQ_KAFKA_PORT" \
  --out "$OUT" "${args[@]}"
