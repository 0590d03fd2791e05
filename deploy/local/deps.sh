#!/usr/bin/env bash
# deps.sh — install what llmq needs to build, run its rig and run its tests:
# Debian packages (skipped when already present), a Python virtualenv in the
# cache with tests/requirements.txt, and kustomize (built once with Go, from
# the Go module proxy, for the render test of deploy/k8s). Safe to run again;
# prints the venv.
#   deps.sh            everything
#   deps.sh --apt      Debian packages only
#   deps.sh kustomize  kustomize only; prints its path
set -euo pipefail
. "$(dirname "$0")/common.sh"

APT_PACKAGES=(
  build-essential cmake ninja-build pkg-config git curl ca-certificates
  librdkafka-dev libcurl4-openssl-dev libmsgpack-dev librocm-smi-dev libconfig-dev
  libjansson-dev libjsmn-dev libmicrohttpd-dev libcmocka-dev
  clang clang-format clang-tidy
  openjdk-17-jdk-headless maven
  python3 python3-venv python3-pip nodejs npm
  systemd # systemd-analyze verify checks deploy/systemd's unit
)

# kustomize renders deploy/k8s in tests; a pinned version (its go.mod asks for Go
# 1.22.7, which bookworm-backports' 1.23 has), rather than whatever kubectl embeds.
KUSTOMIZE_VERSION=v5.7.1

install_apt() {
  local missing=() installed
  # One dpkg-query for all (one a package costs ~25 ms each); an unknown package is missing.
  installed=$'\n'$(dpkg-query -W -f='${Package} ${Status}\n' "${APT_PACKAGES[@]}" 2>/dev/null \
    | sed -n 's/ install ok installed$//p' || true)$'\n'
  for p in "${APT_PACKAGES[@]}"; do
    [[ $installed == *$'\n'"$p"$'\n'* ]] || missing+=("$p")
  done
  # Java, Python and Node may come from elsewhere than Debian (a JDK tarball,
  # pyenv, nvm): a working command counts as installed.
  local keep=()
  for p in "${missing[@]}"; do
    case "$p" in
      openjdk-17-jdk-headless) command -v javac >/dev/null && continue ;; # schemas/java builds
      maven) command -v mvn >/dev/null && continue ;;
      python3|python3-venv|python3-pip) python3 -m venv --help >/dev/null 2>&1 && continue ;;
      nodejs|npm) command -v npm >/dev/null && continue ;;
    esac
    keep+=("$p")
  done
  if [ ${#keep[@]} -eq 0 ]; then log "Debian packages: all present"
  else
    log "installing Debian packages: ${keep[*]}"
    apt_install "${keep[@]}"
  fi
  install_clang_runtime
  install_go
}

# The Go producer library (schemas/go) needs Go >= 1.21, whose toolchain
# switch then fetches the exact release its go.mod names through the Go module
# proxy (golang.org/toolchain), into the module cache. Bookworm itself has Go
# 1.19; bookworm-backports (Debian's own archive) has 1.23, so that suite is
# added; apt takes nothing from backports unless asked (-t), so only Go comes from it.
install_go() {
  local v=""
  # (no go at all is the usual case on a new machine: pipefail must not stop us here)
  command -v go >/dev/null && v=$(go env GOVERSION | sed -n 's/^go1\.\([0-9]*\).*/\1/p')
  if [ -n "$v" ] && [ "$v" -ge 21 ]; then log "go: $(go env GOVERSION) present"; return; fi
  . /etc/os-release
  [ "${VERSION_CODENAME:-}" = bookworm ] ||
    die "Go >= 1.21 is needed for schemas/go: install it (golang-go on Debian 13 / Ubuntu 24.04)"
  local sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  local list=/etc/apt/sources.list.d/llmq-bookworm-backports.list
  if [ ! -f "$list" ]; then
    log "adding bookworm-backports for Go"
    echo "deb http://deb.debian.org/debian bookworm-backports main" | $sudo tee "$list" >/dev/null
  fi
  log "installing Go from bookworm-backports"
  apt_install -t bookworm-backports golang-go
}

# apt_install PKG...: apt-get install as root (sudo otherwise), lists refreshed first.
apt_install() {
  local sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "$@"
}

# The fuzz and sanitizer builds link clang's compiler-rt (libclang_rt.asan,
# libclang_rt.fuzzer). Debian ships it apart from clang, in a package named
# after clang's major version (libclang-rt-14-dev on bookworm), so the name is
# derived from the clang that is installed rather than hard-coded. Older
# releases (bullseye) carried it inside libclang-common-N-dev.
install_clang_runtime() {
  local major pkg
  major=$(clang -dumpversion 2>/dev/null | cut -d. -f1)
  [ -n "$major" ] || die "clang is not installed (apt-get install clang)"
  # lib/linux/libclang_rt.fuzzer-x86_64.a (clang <= 15) or
  # lib/x86_64-pc-linux-gnu/libclang_rt.fuzzer.a (newer layouts).
  if compgen -G "$(clang -print-resource-dir)/lib/*/libclang_rt.fuzzer*.a" >/dev/null; then
    log "clang $major runtime (sanitizers, libFuzzer): present"
    return
  fi
  for pkg in "libclang-rt-$major-dev" "libclang-common-$major-dev"; do
    apt-cache show "$pkg" >/dev/null 2>&1 || continue
    log "installing clang $major's runtime (sanitizers, libFuzzer): $pkg"
    apt_install "$pkg"
    return
  done
  die "no Debian package carries clang $major's sanitizer runtime (tried libclang-rt-$major-dev, libclang-common-$major-dev)"
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

# install_kustomize: build kustomize into the cache once (go install: 45 s on a
# fresh machine, downloads included); print its path.
install_kustomize() {
  local dir="$LLMQ_CACHE/kustomize-$KUSTOMIZE_VERSION"
  if [ ! -x "$dir/kustomize" ]; then
    command -v go >/dev/null || die "go is needed to build kustomize (deps.sh --apt installs it)"
    log "kustomize: building $KUSTOMIZE_VERSION into $dir (go install)"
    mkdir -p "$dir"
    if ! GOBIN="$dir" go install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION" \
      >"$dir/install.log" 2>&1; then
      tail -20 "$dir/install.log" >&2
      die "go install sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION failed (log: $dir/install.log)"
    fi
  fi
  echo "$dir/kustomize"
}

case "${1:-all}" in
  --apt) install_apt ;;
  kustomize) install_kustomize ;;
  all) install_apt; install_kustomize >/dev/null; install_venv ;;
  *) die "usage: $0 [--apt | kustomize]" ;;
esac
