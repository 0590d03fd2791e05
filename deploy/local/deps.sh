#!/usr/bin/env bash
# deps.sh — install what llmq needs to build, run its rig and run its tests:
# Debian packages (skipped when already present) and a Python virtualenv in
# the cache with tests/requirements.txt. Safe to run again; prints the venv.
#   deps.sh          everything
#   deps.sh --apt    Debian packages only
set -euo pipefail
. "$(dirname "$0")/common.sh"

APT_PACKAGES=(
  build-essential cmake ninja-build pkg-config git curl ca-certificates
  librdkafka-dev libcurl4-openssl-dev libmsgpack-dev librocm-smi-dev libconfig-dev
  libjansson-dev libmicrohttpd-dev libcmocka-dev
  clang clang-format clang-tidy
  openjdk-17-jre-headless maven
  python3 python3-venv python3-pip nodejs npm
)

install_apt() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  # Java, Python and Node may come from elsewhere than Debian (a JDK tarball,
  # pyenv, nvm): a working command counts as installed.
  local keep=()
  for p in "${missing[@]}"; do
    case "$p" in
      openjdk-17-jre-headless) command -v java >/dev/null && continue ;;
      maven) command -v mvn >/dev/null && continue ;;
      python3|python3-venv|python3-pip) python3 -m venv --help >/dev/null 2>&1 && continue ;;
      nodejs|npm) command -v npm >/dev/null && continue ;;
    esac
    keep+=("$p")
  done
  [ ${#keep[@]} -eq 0 ] && { log "Debian packages: all present"; return; }
  log "installing Debian packages: ${keep[*]}"
  local sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${keep[@]}"
}

install_venv() {
  local venv="$LLMQ_CACHE/venv" req="$LLMQ_ROOT/tests/requirements.txt"
  local stamp="$venv/.requirements.sha256" want
  want=$(sha256sum "$req" | cut -d' ' -f1)
  if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    log "python venv: up to date ($venv)"
  else
    log "python venv: installing tests/requirements.txt into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$req"
    echo "$want" >"$stamp"
  fi
  echo "$venv"
}

case "${1:-all}" in
  --apt) install_apt ;;
  all) install_apt; install_venv ;;
  *) die "usage: $0 [--apt]" ;;
esac
