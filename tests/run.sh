#!/usr/bin/env bash
# run.sh — the whole llmq test suite, from a clean clone, in one command.
#
# Installs what it needs (deploy/local/deps.sh), then:
#   1. lint: clang-format on every C file; librdkafka named only in worker/kafka*;
#      worker/'s files <= 700 lines and functions <= 60 (tests/lint/sizes.py)
#   2. build + unit tests (ctest), then clang-tidy over worker/
#   3. build + unit tests again under ASan+UBSan, and the Python and Node
#      producer libraries against the wire contract's vectors
#   4. the rig: llama-server (built once, cached), the tiny model, Kafka (with
#      its SASL_SSL listener beside the plain one, for test_security.py)
#   5. integration and fault tests (pytest) against the real broker and the
#      real llama-server
#   6. short fuzz runs of the decoders (clang libFuzzer)
# Every stage runs even if an earlier one failed; the last line sums them up
# as "N passed, N failed". Exit status is non-zero if anything failed.
# Options: --unit (stages 1-3 only), -k EXPR (passed to pytest).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
. deploy/local/common.sh

unit_only=0
pytest_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --unit) unit_only=1 ;;
    -k) pytest_args+=(-k "$2"); shift ;;
    *) die "usage: $0 [--unit] [-k PYTEST_EXPR]" ;;
  esac
  shift
done

RESULTS="$ROOT/build/test-results"
rm -rf "$RESULTS" && mkdir -p "$RESULTS"
failed_stages=()
stage() { # stage NAME CMD...: run one stage, remember failure, keep going
  local name=$1; shift
  log "=== $name"
  local t0=$SECONDS
  if "$@"; then log "=== $name: ok ($((SECONDS - t0)) s)"
  else log "=== $name: FAILED ($((SECONDS - t0)) s)"; failed_stages+=("$name"); fi
}

bash deploy/local/deps.sh >/dev/null || die "installing dependencies failed"
VENV="$LLMQ_CACHE/venv"
export PATH="$VENV/bin:$PATH"

lint() {
  local files; files=$(git ls-files '*.c' '*.h')
  clang-format --dry-run -Werror $files || return 1
  # librdkafka stays behind worker/kafka*.{c,h} and the CLI's own Kafka file:
  # nothing else in worker/ names it (tests/ may).
  local leaks; leaks=$(git grep -n -i -E 'rd_kafka_|librdkafka/' -- 'worker/*.[ch]' \
    ':!worker/kafka*.[ch]' ':!worker/cli/cli_kafka.[ch]')
  [ -z "$leaks" ] || { echo "librdkafka named outside worker/kafka*.[ch]:"; echo "$leaks"; return 1; }
  # No file in worker/ over 700 lines, no function over 60.
  python3 tests/lint/sizes.py $(git ls-files 'worker/*.[ch]')
}

build_and_unit() { # DIR NAME CMAKE_ARGS...
  local dir=$1 name=$2; shift 2
  cmake -S "$ROOT" -B "$dir" -G Ninja "$@" >/dev/null &&
    cmake --build "$dir" -j 2 &&
    ctest --test-dir "$dir" -L unit --output-on-failure --timeout 300 \
      --output-junit "$RESULTS/ctest-$name.xml"
}

stage lint lint
stage "unit tests" build_and_unit "$ROOT/build" unit
tidy() { # its "N warnings generated" lines count suppressed system-header notes
  clang-tidy -p "$ROOT/build" --quiet $(find "$ROOT/worker" -name '*.c' | sort) 2> >(grep -v 'warnings generated' >&2)
}
stage clang-tidy tidy
stage "unit tests (ASan+UBSan)" build_and_unit "$ROOT/build-asan" asan -DLLMQ_SANITIZE=ON
stage "producer libraries vs the contract's vectors" env RESULTS_DIR="$RESULTS" bash tests/contract.sh

if [ "$unit_only" -eq 0 ]; then
  # A broker that was already running (the local stack's) is left running.
  kafka_was_running=0
  bash deploy/local/kafka.sh status >/dev/null 2>&1 && kafka_was_running=1
  rig() {
    LLAMA_SERVER=$(bash deploy/local/llama.sh path) && export LLAMA_SERVER &&
      LLMQ_TINY_MODEL=$(bash deploy/local/models.sh tiny) && export LLMQ_TINY_MODEL &&
      bash deploy/local/kafka.sh fetch && LLMQ_KAFKA_SASL=1 bash deploy/local/kafka.sh start
  }
  stage rig rig
  export LLMQ_BUILD_DIR="$ROOT/build" LLMQ_KAFKA_BOOTSTRAP="127.0.0.1:$LLMQ_KAFKA_PORT"
  # A broker this script started serves no other run: the suite may delete the
  # topics earlier runs left (each run deletes its own at the end; one that was
  # killed cannot, and a broker loads every partition it keeps at each start).
  [ "$kafka_was_running" -eq 1 ] || export LLMQ_SWEEP_SUITE_TOPICS=1
  stage integration python -m pytest -v -p no:cacheprovider --timeout 600 \
    --junitxml="$RESULTS/pytest.xml" "${pytest_args[@]}" tests/integration
  [ "$kafka_was_running" -eq 1 ] || bash deploy/local/kafka.sh stop || true

  # fuzz_runtime_check: the fuzzers link clang's sanitizer and libFuzzer
  # runtime, which Debian ships apart from clang; name the package if absent.
  fuzz_runtime_check() {
    command -v clang >/dev/null || { echo "clang missing: apt-get install clang"; return 1; }
    compgen -G "$(clang -print-resource-dir)/lib/*/libclang_rt.fuzzer*.a" >/dev/null && return 0
    echo "clang's libFuzzer/sanitizer runtime is missing: apt-get install" \
      "libclang-rt-$(clang -dumpversion | cut -d. -f1)-dev (deploy/local/deps.sh does)"
    return 1
  }
  fuzz() {
    fuzz_runtime_check || return 1
    CC=clang cmake -S "$ROOT" -B "$ROOT/build-fuzz" -G Ninja -DLLMQ_FUZZ=ON -DLLMQ_TESTS=OFF \
      >/dev/null && cmake --build "$ROOT/build-fuzz" -j 2 || return 1
    local ok=0 f name cases=""
    mkdir -p "$RESULTS/fuzz"
    for f in "$ROOT"/build-fuzz/fuzz_*; do
      [ -x "$f" ] || continue
      name=$(basename "$f")
      # The seeds (tests/fuzz/seeds/NAME: valid inputs the mutations start
      # from) are copied: libFuzzer writes what it finds into the corpus.
      local corpus="$RESULTS/fuzz/corpus-$name"
      mkdir -p "$corpus"
      if [ -d "$ROOT/tests/fuzz/seeds/$name" ]; then cp "$ROOT/tests/fuzz/seeds/$name"/* "$corpus"/; fi
      if "$f" -max_total_time="${LLMQ_FUZZ_SECONDS:-30}" -print_final_stats=0 \
          -artifact_prefix="$RESULTS/fuzz/" "$corpus" \
          >"$RESULTS/fuzz/$name.log" 2>&1; then
        log "fuzz $name: no findings"
        cases+="<testcase classname=\"fuzz\" name=\"$name\"/>"
      else
        tail -30 "$RESULTS/fuzz/$name.log"; ok=1
        cases+="<testcase classname=\"fuzz\" name=\"$name\"><failure message=\"finding: see $RESULTS/fuzz/$name.log\"/></testcase>"
      fi
    done
    # One JUnit file so the closing line counts the fuzzers like any test.
    printf '<testsuite name="fuzz">%s</testsuite>\n' "$cases" >"$RESULTS/fuzz.xml"
    return $ok
  }
  stage fuzz fuzz
fi

python3 "$ROOT/tests/summarize.py" "$RESULTS" "${failed_stages[@]}"
