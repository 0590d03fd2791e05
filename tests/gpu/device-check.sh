#!/usr/bin/env bash
# device-check.sh — the GPU proof of llmq in one command, and its CPU rehearsal.
#
#   device-check.sh prepare   here: build llmq-worker, llmq and mock_broker, collect them
#                             with their shared libraries (ldd), a pruned llama.cpp source
#                             tarball and PyYAML into build/device/ (what the device machine
#                             is handed: carry ["build/device"], under 64 MiB)
#   device-check.sh run       there (one NVIDIA GPU, CUDA, no Java, no network): check glibc,
#                             build the CUDA llama-server for sm_90 (LLMQ_CUDA_ARCH), make a
#                             1.1 B random-weight model, start the mock broker, measure
#                             (a) tokens/s straight to llama-server at 8 and 32 slots,
#                             (b) the same jobs through Kafka and llmq (`llmq batch`),
#                             (c) VRAM / utilisation from the worker's NVML backend against
#                             nvidia-smi, (d) that llama-server ran on the card the worker
#                             pinned; writes $OUT/device-check.{md,json} and prints the table
#   device-check.sh --cpu     the rehearsal here: prepare, then run --cpu: the CPU, the cached
#                             CPU llama-server and a small model (and the pruned tarball only
#                             configured, not built). Part of the benchmark command
#                             (tests/bench/run.sh --device-rehearsal), not of tests/run.sh.
#
# Budget: `run` stops starting phases when LLMQ_CHECK_BUDGET_S (540) is nearly spent, and
# writes its results after every phase, so a run cut short still hands back what it measured.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE="$ROOT/tests/gpu"
PACK="$ROOT/build/device"
OUT=${OUT:-$ROOT/build/device-out}
BUDGET_S=${LLMQ_CHECK_BUDGET_S:-540}
MODE=gpu
T0=$(date +%s)

say() { printf '[device-check %3ds] %s\n' $(($(date +%s) - T0)) "$*" >&2; }
die() { say "error: $*"; exit 1; }
left() { echo $((BUDGET_S - ($(date +%s) - T0))); }

# ---- prepare (here) ----

GLIBC_LIBS='^(ld-linux.*|libc|libm|libmvec|libpthread|libdl|librt|libresolv|libutil|libanl|libnsl|libBrokenLocale|libnss_.*)\.so'

# The newest GLIBC_x.y symbol version the files need.
glibc_needed() {
  objdump -T "$@" 2>/dev/null | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1
}

prune_llama_source() {
  local src
  src="$(. "$ROOT/deploy/local/common.sh" && echo "$LLMQ_CACHE/llama.cpp-nlc$NODE_LLAMA_CPP_VERSION")/src"
  [ -f "$src/CMakeLists.txt" ] || src=$(bash "$ROOT/deploy/local/llama.sh" src)
  local skip=(.git docs media tests examples pocs benches ci skills conversion models
    ggml/src/ggml-cann ggml/src/ggml-et ggml/src/ggml-hexagon ggml/src/ggml-metal
    ggml/src/ggml-musa ggml/src/ggml-opencl ggml/src/ggml-openvino ggml/src/ggml-sycl
    ggml/src/ggml-virtgpu ggml/src/ggml-vulkan ggml/src/ggml-webgpu ggml/src/ggml-zdnn
    ggml/src/ggml-zendnn)
  local args=() s
  for s in "${skip[@]}"; do args+=(--exclude="./$s"); done
  # The tokenizer the model generator copies is the only file of models/ it needs.
  (cd "$src" && tar -cf "$PACK/llama-src.tar" "${args[@]}" . &&
    tar -rf "$PACK/llama-src.tar" ./models/ggml-vocab-llama-spm.gguf)
  xz -T2 -6 "$PACK/llama-src.tar"
}

prepare() {
  say "building llmq-worker, llmq and mock_broker"
  cmake -S "$ROOT" -B "$ROOT/build" -G Ninja >/dev/null
  cmake --build "$ROOT/build" -j 2 --target llmq-worker llmq mock_broker >/dev/null
  rm -rf "$PACK" && mkdir -p "$PACK/bin" "$PACK/lib" "$PACK/glibc" "$PACK/py"
  local b lib
  for b in llmq-worker llmq mock_broker; do cp "$ROOT/build/$b" "$PACK/bin/"; done
  # Every shared library but glibc's goes to lib/ (used through LD_LIBRARY_PATH); glibc's
  # own go to glibc/, used only when the device's glibc is older than these need.
  while read -r lib; do
    if [[ "$(basename "$lib")" =~ $GLIBC_LIBS ]]; then cp -L "$lib" "$PACK/glibc/"; else cp -L "$lib" "$PACK/lib/"; fi
  done < <(ldd "$PACK"/bin/* | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\/.*ld-linux/ { print $1 }' | sort -u)
  cat >"$PACK/manifest.env" <<EOF
BUILD_GLIBC=$(getconf GNU_LIBC_VERSION | awk '{ print $2 }')
NEEDS_GLIBC=$(glibc_needed "$PACK"/bin/* "$PACK"/lib/*)
BUILT_ON="$(. /etc/os-release && echo "$PRETTY_NAME"), $(uname -m)"
BUILT_AT=$(git -C "$ROOT" rev-parse --short HEAD)
EOF
  # gguf-py imports yaml; the device has numpy but no PyYAML (its pure-Python half will do).
  local yaml; yaml=$("$HOME/.cache/llmq/venv-models/bin/python" -c 'import yaml, os; print(os.path.dirname(yaml.__file__))' 2>/dev/null) \
    || yaml=$(bash "$ROOT/deploy/local/models.sh" tiny >/dev/null && "$HOME/.cache/llmq/venv-models/bin/python" -c 'import yaml, os; print(os.path.dirname(yaml.__file__))')
  cp -r "$yaml" "$PACK/py/"
  find "$PACK/py" -name __pycache__ -prune -exec rm -rf {} +
  find "$PACK/py" -name '*.so' -delete
  say "pruning the llama.cpp source"
  prune_llama_source
  say "prepared $PACK: $(du -sh "$PACK" | cut -f1) ($(cat "$PACK/manifest.env" | tr '\n' ' '))"
  [ "$(du -sm "$PACK" | cut -f1)" -lt 60 ] || die "$PACK is over 60 MiB: it will not be carried"
}

# ---- run (device, or --cpu here) ----

declare -A R # results, written to $OUT after every phase

record() { R[$1]=$2; write_results; }

write_results() {
  local k
  {
    echo "{"
    for k in $(printf '%s\n' "${!R[@]}" | sort); do printf '  "%s": "%s",\n' "$k" "${R[$k]//\"/\'}"; done
    printf '  "elapsed_s": "%s"\n}\n' $(($(date +%s) - T0))
  } >"$OUT/device-check.json"
  {
    echo "| what | value |"
    echo "|---|---|"
    for k in $(printf '%s\n' "${!R[@]}" | sort); do printf '| %s | %s |\n' "$k" "${R[$k]}"; done
  } >"$OUT/device-check.md"
}

# glibc: the device's against what the carried binaries need; LD_LIBRARY_PATH when it is
# new enough, else the carried glibc through its own loader (--library-path, so children
# such as llama-server keep the system's).
choose_loader() {
  . "$PACK/manifest.env"
  local have; have=$(getconf GNU_LIBC_VERSION | awk '{ print $2 }')
  R[glibc]="device $have, binaries need $NEEDS_GLIBC (built on $BUILD_GLIBC, $BUILT_ON)"
  mkdir -p "$WORK/bin"
  local b mode=system
  # LLMQ_CHECK_GLIBC=carried forces the carried glibc (to rehearse that path here).
  if [ "$(printf '%s\n%s\n' "$NEEDS_GLIBC" "$have" | sort -V | head -1)" != "$NEEDS_GLIBC" ] ||
    [ "${LLMQ_CHECK_GLIBC:-}" = carried ]; then
    mode=carried
  fi
  for b in llmq-worker llmq mock_broker; do
    if [ $mode = system ]; then
      printf '#!/bin/sh\nLD_LIBRARY_PATH=%s exec %s "$@"\n' "$PACK/lib" "$PACK/bin/$b" >"$WORK/bin/$b"
    else
      printf '#!/bin/sh\nexec %s --library-path %s %s "$@"\n' "$(ls "$PACK"/glibc/ld-linux*)" \
        "$PACK/lib:$PACK/glibc" "$PACK/bin/$b" >"$WORK/bin/$b"
    fi
    chmod +x "$WORK/bin/$b"
  done
  R[glibc]+="; llmq runs with the ${mode} glibc"
  "$WORK/bin/llmq" --version >/dev/null 2>"$WORK/smoke.err" || die "llmq does not start here: $(head -3 "$WORK/smoke.err")"
}

llama_server() {
  local t0; t0=$(date +%s)
  if [ $MODE = cpu ]; then
    LLAMA=$(bash "$ROOT/deploy/local/llama.sh" path)
    say "configuring the pruned llama.cpp source (CPU) to prove it is complete"
    mkdir -p "$WORK/src" && xz -dc "$PACK/llama-src.tar.xz" | tar -xf - -C "$WORK/src"
    cmake -S "$WORK/src" -B "$WORK/src-build" -G Ninja -DGGML_NATIVE=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
      -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON -DBUILD_SHARED_LIBS=OFF >"$WORK/configure.log" 2>&1 \
      || die "the pruned source does not configure: $(tail -5 "$WORK/configure.log")"
    record llama_build "cached CPU build; pruned tarball configures ($(($(date +%s) - t0)) s)"
    return
  fi
  local cache="$WORK/cache" src
  src="$cache/llama.cpp-nlc$(. "$ROOT/deploy/local/common.sh" && echo "$NODE_LLAMA_CPP_VERSION")/src"
  mkdir -p "$src" && xz -dc "$PACK/llama-src.tar.xz" | tar -xf - -C "$src"
  say "building the CUDA llama-server for sm_${LLMQ_CUDA_ARCH:-90}"
  LLMQ_CACHE=$cache LLMQ_LLAMA_BACKEND=cuda LLMQ_CUDA_ARCH=${LLMQ_CUDA_ARCH:-90} \
    bash "$ROOT/deploy/local/llama.sh" build 2>"$OUT/llama-build.log" \
    || die "CUDA build failed: $(tail -5 "$OUT/llama-build.log")"
  LLAMA=$(LLMQ_CACHE=$cache LLMQ_LLAMA_BACKEND=cuda LLMQ_CUDA_ARCH=${LLMQ_CUDA_ARCH:-90} bash "$ROOT/deploy/local/llama.sh" path 2>/dev/null)
  record llama_build "CUDA sm_${LLMQ_CUDA_ARCH:-90}, $(nproc) cores: $(($(date +%s) - t0)) s"
}

make_model() {
  local t0; t0=$(date +%s) py=python3
  [ $MODE = gpu ] || py="$HOME/.cache/llmq/venv-models/bin/python"
  local src="$WORK/src"
  [ $MODE = cpu ] || src=$(dirname "$LLAMA")/../src
  MODEL="$WORK/model-$MODE.gguf"
  PYTHONPATH="$PACK/py" "$py" "$HERE/make_model.py" --src "$src" --out "$MODEL" --size $MODE 2>"$WORK/model.log" \
    || die "model generation failed: $(tail -3 "$WORK/model.log")"
  record model "$(tail -1 "$WORK/model.log" | sed 's/^wrote [^:]*: //'), $(du -m "$MODEL" | cut -f1) MiB, made in $(($(date +%s) - t0)) s"
}

start_broker() {
  "$WORK/bin/mock_broker" --partitions 8 llmq.jobs llmq.replies llmq.dead llmq.metrics \
    >"$WORK/broker.out" 2>"$WORK/broker.err" &
  BROKER_PID=$!
  local i
  for i in $(seq 50); do grep -q bootstrap= "$WORK/broker.out" && break; sleep 0.1; done
  BOOTSTRAP=$(sed -n 's/^bootstrap=//p' "$WORK/broker.out")
  [ -n "$BOOTSTRAP" ] || die "mock broker did not start: $(cat "$WORK/broker.err")"
  record broker "librdkafka mock cluster (test aid) at $BOOTSTRAP"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_http() { # URL SECONDS
  local i
  for i in $(seq $(($2 * 10))); do curl -sf "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}

# (a) tokens/s straight to llama-server with SLOTS slots.
direct() {
  local slots=$1 port; port=$(free_port)
  "$LLAMA" -m "$MODEL" --host 127.0.0.1 --port $port --parallel "$slots" -c $((slots * CTX)) \
    -ngl "$NGL" >"$WORK/direct-$slots.log" 2>&1 &
  local pid=$!
  wait_http "http://127.0.0.1:$port/health" 120 || { kill $pid; die "llama-server did not start: $(tail -3 "$WORK/direct-$slots.log")"; }
  local res
  res=$(python3 "$HERE/direct_load.py" "http://127.0.0.1:$port" --jobs $((slots * ROUNDS)) \
    --concurrency "$slots" --tokens "$TOKENS") || res="failed: $res"
  kill $pid && wait $pid 2>/dev/null || true
  record "a_direct_${slots}_slots" "$(echo "$res" | sed 's/[{}"]//g')"
}

# (b) the same jobs through Kafka and llmq, with (c) and (d) sampled while they run.
through_llmq() {
  local slots=$1 port; port=$(free_port)
  cat >"$WORK/worker-$slots.cfg" <<EOF
worker = { id = "device-check"; };
kafka = { brokers = "$BOOTSTRAP"; group_id = "device-check-$slots"; };
llama = { binary = "$WORK/llama-server"; model = "$MODEL"; gpu = 0; gpu_layers = $NGL;
          context = $((slots * CTX)); slots = $slots; startup_timeout_s = 120; };
limits = { max_tokens = $TOKENS; default_max_tokens = $TOKENS; };
metrics = { listen = "127.0.0.1:$port"; gpu_backend = "auto"; };
EOF
  "$WORK/bin/llmq-worker" -c "$WORK/worker-$slots.cfg" >"$WORK/worker-$slots.log" 2>&1 &
  local wpid=$!
  local i
  for i in $(seq 1200); do
    curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
    kill -0 $wpid 2>/dev/null || break
    sleep 0.1
  done
  if ! kill -0 $wpid 2>/dev/null; then
    cp "$WORK/worker-$slots.log" "$OUT/"
    record "b_llmq_${slots}_slots" "worker exited: $(tail -1 "$WORK/worker-$slots.log")"
    return
  fi
  local n=$((slots * ROUNDS))
  for i in $(seq "$n"); do printf '{"prompt":"Job %d: tell a story about the number %d.","max_tokens":%d}\n' "$i" "$i" "$TOKENS"; done >"$WORK/jobs-$slots.jsonl"
  timeout "$(left)" "$WORK/bin/llmq" -b "$BOOTSTRAP" batch -c "$slots" --timeout 120 -o "$WORK/results-$slots.jsonl" \
    "$WORK/jobs-$slots.jsonl" 2>"$WORK/batch-$slots.err" &
  local bpid=$!
  sleep 1
  [ "$slots" != 32 ] || sample_gpu "$port" "$wpid"
  wait $bpid || true
  record "b_llmq_${slots}_slots" "$(grep -o '[0-9]* job(s).*' "$WORK/batch-$slots.err" | tail -1)"
  kill $wpid && wait $wpid 2>/dev/null || true
  cp "$WORK/worker-$slots.log" "$OUT/"
}

metric() { # the value of the first series starting with $1 in metrics text $2; "n/a" if none
  awk -v m="$1" 'index($0, m) == 1 { print $NF; found = 1; exit } END { if (!found) print "n/a" }' <<<"$2"
}

mib() { # bytes to "N MiB"; "n/a" stays
  awk '{ if ($1 ~ /^[0-9.e+]+$/) printf "%d MiB", $1 / 1048576; else printf "%s", $1 }' <<<"$1"
}

# (c) the worker's GPU readings against nvidia-smi, (d) where llama-server runs.
sample_gpu() {
  local port=$1 wpid=$2 m smi child
  m=$(curl -s "http://127.0.0.1:$port/metrics")
  R[c_worker_gpu]="$(grep -o 'llmq_gpu_info{[^}]*}' <<<"$m" | grep -o 'backend="[^"]*",name="[^"]*"'); vram used $(mib "$(metric llmq_gpu_vram_used_bytes "$m")") of $(mib "$(metric llmq_gpu_vram_total_bytes "$m")"), busy ratio $(metric llmq_gpu_busy_ratio "$m"), power $(metric llmq_gpu_power_watts "$m") W, temperature $(metric 'llmq_gpu_temperature_celsius{' "$m") C"
  child=$(pgrep -P "$wpid" | head -1 || true)
  R[d_child_env]=$(tr '\0' '\n' <"/proc/$child/environ" 2>/dev/null | grep -E '^(CUDA|HIP|ROCR)_' | sort | paste -sd' ' || echo "no child")
  if [ $MODE = gpu ]; then
    smi=$(nvidia-smi --query-gpu=pci.bus_id,memory.used,memory.total,utilization.gpu,power.draw --format=csv,noheader)
    R[c_nvidia_smi]="$smi"
    R[d_gpu_of_llama_server]="$(nvidia-smi --query-compute-apps=pid,gpu_bus_id,used_memory --format=csv,noheader | grep "^$child," || echo "pid $child not on any GPU")"
    R[d_card_the_worker_reads]=$(grep -o 'gpu backend: [a-z]*, card [0-9a-f:.]*' "$WORK/worker-32.log" | head -1)
  else
    R[c_nvidia_smi]="n/a (--cpu rehearsal)"
    R[d_card_the_worker_reads]=$(grep -o 'gpu backend: [^(]*' "$WORK/worker-32.log" | head -1)
  fi
  write_results
}

cleanup() {
  [ -z "${BROKER_PID:-}" ] || kill "$BROKER_PID" 2>/dev/null || true
  jobs -p | xargs -r kill 2>/dev/null || true
}

run() {
  [ -f "$PACK/manifest.env" ] || die "$PACK is missing: run '$0 prepare' on the build machine first"
  mkdir -p "$OUT"
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/llmq-device-check.XXXXXX")
  trap cleanup EXIT
  R[mode]=$MODE
  R[machine]="$(nproc) cores, $(awk '/MemTotal/ { printf "%d GiB", $2 / 1048576 }' /proc/meminfo)"
  if [ $MODE = gpu ]; then
    command -v nvidia-smi >/dev/null || die "no nvidia-smi: is this the GPU machine? (--cpu rehearses here)"
    R[gpu]=$(nvidia-smi --query-gpu=name,pci.bus_id,memory.total,driver_version --format=csv,noheader | head -1)
    CTX=1024 TOKENS=128 ROUNDS=4 NGL=999
  else
    R[gpu]="none (--cpu rehearsal)"
    CTX=256 TOKENS=16 ROUNDS=2 NGL=0
  fi
  choose_loader
  llama_server
  printf '#!/bin/sh\nunset LD_LIBRARY_PATH\nexec %s "$@"\n' "$LLAMA" >"$WORK/llama-server" && chmod +x "$WORK/llama-server"
  make_model
  start_broker
  local s
  for s in 8 32; do
    [ "$(left)" -gt 60 ] || { record "skipped_$s" "budget spent"; continue; }
    say "direct, $s slots"; direct $s
    [ "$(left)" -gt 40 ] || { record "skipped_llmq_$s" "budget spent"; continue; }
    say "through llmq, $s slots"; through_llmq $s
  done
  write_results
  say "results in $OUT/device-check.md"
  cat "$OUT/device-check.md"
}

case "${1:-}" in
  prepare) prepare ;;
  run) [ "${2:-}" != --cpu ] || MODE=cpu; run ;;
  --cpu) MODE=cpu; prepare; run ;;
  *) die "usage: $0 prepare | run [--cpu] | --cpu" ;;
esac
