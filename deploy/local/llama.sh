#!/usr/bin/env bash
# llama.sh — find or build a llama-server (CPU by default; CUDA or ROCm/HIP on request).
#   llama.sh path    print the llama-server to use, building it if needed
#   llama.sh build   build (or reuse) the cached llama-server
#   llama.sh src     print the llama.cpp source tree (for gguf-py), fetching it if needed
# A user's LLAMA_SERVER=/path or a llama-server on PATH wins over the build.
# LLMQ_LLAMA_BACKEND picks the build:
#   cpu   (default) $SRC_ROOT/bin/llama-server, built in $SRC_ROOT/build
#   cuda  GGML_CUDA for LLMQ_CUDA_ARCH (CMake CUDA architectures, e.g. "90" for
#         H100/H200; default the local GPUs' compute capability from nvidia-smi,
#         else "native"); needs nvcc (PATH, CUDACXX or /usr/local/cuda/bin)
#   hip   GGML_HIP for AMDGPU_TARGETS (e.g. "gfx90a;gfx942"; default llama.cpp's
#         detection); needs ROCm's clang (hipconfig)
# Each GPU build is cached under bin-BACKEND-ARCH/ and build-BACKEND-ARCH/, so
# builds for several backends and architectures live side by side.
set -euo pipefail
. "$(dirname "$0")/common.sh"

SRC_ROOT="$LLMQ_CACHE/llama.cpp-nlc$NODE_LLAMA_CPP_VERSION"
SRC="$SRC_ROOT/src"
BACKEND=${LLMQ_LLAMA_BACKEND:-cpu}
BACKEND_FLAGS=()

# The cache key (KEY: "" for cpu, else BACKEND-ARCH) and the backend's cmake flags.
choose_backend() {
  local arch
  case "$BACKEND" in
    cpu) KEY="" ;;
    cuda)
      arch=${LLMQ_CUDA_ARCH:-}
      if [ -z "$arch" ] && command -v nvidia-smi >/dev/null 2>&1; then
        arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null \
          | tr -d ' .' | sort -u | paste -sd';' || true)
      fi
      arch=${arch:-native}
      if [ -z "${CUDACXX:-}" ] && ! command -v nvcc >/dev/null 2>&1; then
        [ -x /usr/local/cuda/bin/nvcc ] || die "LLMQ_LLAMA_BACKEND=cuda needs nvcc (PATH, CUDACXX or /usr/local/cuda/bin)"
        export CUDACXX=/usr/local/cuda/bin/nvcc
      fi
      KEY="cuda-$arch"
      BACKEND_FLAGS=(-DGGML_CUDA=ON "-DCMAKE_CUDA_ARCHITECTURES=$arch")
      ;;
    hip)
      arch=${AMDGPU_TARGETS:-auto}
      command -v hipconfig >/dev/null 2>&1 || die "LLMQ_LLAMA_BACKEND=hip needs ROCm (hipconfig on PATH)"
      export HIPCXX="${HIPCXX:-$(hipconfig -l)/clang}" HIP_PATH="${HIP_PATH:-$(hipconfig -R)}"
      KEY="hip-$arch"
      BACKEND_FLAGS=(-DGGML_HIP=ON)
      [ "$arch" = auto ] || BACKEND_FLAGS+=("-DAMDGPU_TARGETS=$arch" "-DGPU_TARGETS=$arch")
      ;;
    *) die "LLMQ_LLAMA_BACKEND=$BACKEND: expected cpu, cuda or hip" ;;
  esac
  KEY=$(printf '%s' "$KEY" | tr ';, ' '___')
  BUILD_DIR="$SRC_ROOT/build${KEY:+-$KEY}"
  BIN="$SRC_ROOT/bin${KEY:+-$KEY}/llama-server"
}
choose_backend

# One llama.sh at a time fetches or builds into $SRC_ROOT: several test runs
# (or worktrees) share the cache, and two clones into one src.tmp corrupt it.
lock_cache() {
  mkdir -p "$SRC_ROOT"
  exec 8>"$SRC_ROOT/.lock"
  flock -w 1800 8 || die "another llama.sh holds $SRC_ROOT/.lock"
}

fetch_source() {
  [ -f "$SRC/CMakeLists.txt" ] && return 0
  command -v npm >/dev/null || die "npm is needed to fetch node-llama-cpp (apt-get install npm)"
  log "fetching llama.cpp source from npm node-llama-cpp@$NODE_LLAMA_CPP_VERSION"
  local tmp; tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "node-llama-cpp@$NODE_LLAMA_CPP_VERSION" >/dev/null) \
    || die "npm pack node-llama-cpp@$NODE_LLAMA_CPP_VERSION failed"
  tar -xzf "$tmp"/node-llama-cpp-*.tgz -C "$tmp" package/llama/gitRelease.bundle package/llama/llama.cpp.info.json
  rm -rf "$SRC.tmp" && mkdir -p "$SRC_ROOT"
  git -c advice.detachedHead=false clone -q "$tmp/package/llama/gitRelease.bundle" "$SRC.tmp"
  cp "$tmp/package/llama/llama.cpp.info.json" "$SRC.tmp/"
  mv "$SRC.tmp" "$SRC"
  rm -rf "$tmp"
}

build() {
  if [ -x "$BIN" ]; then log "llama-server cached at $BIN"; return 0; fi
  fetch_source
  command -v cmake >/dev/null || die "cmake is needed (apt-get install cmake)"
  local jobs t0; jobs=$(nproc); t0=$(date +%s)
  if [ "$BACKEND" = cpu ]; then
    log "building CPU llama-server with $jobs jobs; this takes about 10 minutes on 2 cores"
  else
    log "building $BACKEND llama-server ($KEY) with $jobs jobs"
  fi
  local logs="$SRC_ROOT/configure${KEY:+-$KEY}.log"
  cmake -S "$SRC" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DGGML_NATIVE=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON \
    -DBUILD_SHARED_LIBS=OFF ${BACKEND_FLAGS[@]+"${BACKEND_FLAGS[@]}"} >"$logs" 2>&1 \
    || { tail -30 "$logs" >&2; die "llama.cpp configure failed (log: $logs)"; }
  # Ninja's own [n/N] counter is the progress report; keep one line per step.
  local status
  set +o pipefail
  logs="$SRC_ROOT/build${KEY:+-$KEY}.log"
  cmake --build "$BUILD_DIR" --target llama-server -j "$jobs" 2>&1 \
    | tee "$logs" | grep --line-buffered -E '^\[[0-9]+/[0-9]+\]' \
    | awk '{ if (NR % 10 == 1) { print "[llama build] " $1 " " $NF; fflush() } }' >&2
  status=${PIPESTATUS[0]}
  set -o pipefail
  [ "$status" -eq 0 ] || { tail -30 "$logs" >&2; die "llama-server build failed (log: $logs)"; }
  mkdir -p "$(dirname "$BIN")"
  cp "$BUILD_DIR/bin/llama-server" "$BIN.tmp" && mv "$BIN.tmp" "$BIN"
  log "llama-server built: $BIN ($(( $(date +%s) - t0 )) s)"
}

path() {
  if [ -n "${LLAMA_SERVER:-}" ]; then
    [ -x "$LLAMA_SERVER" ] || die "LLAMA_SERVER=$LLAMA_SERVER is not an executable"
    echo "$LLAMA_SERVER"; return
  fi
  if command -v llama-server >/dev/null 2>&1; then command -v llama-server; return; fi
  build
  echo "$BIN"
}

case "${1:-path}" in
  path) lock_cache; path ;;
  build) lock_cache; build ;;
  src) lock_cache; fetch_source; echo "$SRC" ;;
  *) die "usage: $0 {path|build|src}" ;;
esac
