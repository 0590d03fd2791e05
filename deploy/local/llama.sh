#!/usr/bin/env bash
# llama.sh — find or build a CPU llama-server.
#   llama.sh path    print the llama-server to use, building it if needed
#   llama.sh build   build (or reuse) the cached llama-server
#   llama.sh src     print the llama.cpp source tree (for gguf-py), fetching it if needed
# A user's LLAMA_SERVER=/path or a llama-server on PATH wins over the build.
set -euo pipefail
. "$(dirname "$0")/common.sh"

SRC_ROOT="$LLMQ_CACHE/llama.cpp-nlc$NODE_LLAMA_CPP_VERSION"
SRC="$SRC_ROOT/src"
BIN="$SRC_ROOT/bin/llama-server"

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
  local jobs; jobs=$(nproc)
  log "building CPU llama-server with $jobs jobs; this takes about 10 minutes on 2 cores"
  cmake -S "$SRC" -B "$SRC_ROOT/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DGGML_NATIVE=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON \
    -DBUILD_SHARED_LIBS=OFF >"$SRC_ROOT/configure.log" 2>&1 \
    || { tail -30 "$SRC_ROOT/configure.log" >&2; die "llama.cpp configure failed (log: $SRC_ROOT/configure.log)"; }
  # Ninja's own [n/N] counter is the progress report; keep one line per step.
  local status
  set +o pipefail
  cmake --build "$SRC_ROOT/build" --target llama-server -j "$jobs" 2>&1 \
    | tee "$SRC_ROOT/build.log" | grep --line-buffered -E '^\[[0-9]+/[0-9]+\]' \
    | awk '{ if (NR % 10 == 1) { print "[llama build] " $1 " " $NF; fflush() } }' >&2
  status=${PIPESTATUS[0]}
  set -o pipefail
  [ "$status" -eq 0 ] || { tail -30 "$SRC_ROOT/build.log" >&2; die "llama-server build failed (log: $SRC_ROOT/build.log)"; }
  mkdir -p "$SRC_ROOT/bin"
  cp "$SRC_ROOT/build/bin/llama-server" "$BIN.tmp" && mv "$BIN.tmp" "$BIN"
  log "llama-server built: $BIN"
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
