#!/usr/bin/env bash
# fresh-machine.sh — rehearse the README's two commands on a brand-new Debian
# bookworm machine, to catch what only a fresh machine shows (a package that
# deps.sh forgets but the developer's machine has by hand).
#
# It builds a minimal bookworm root with debootstrap (from the Debian mirror
# the host's apt uses) in a temporary directory, puts a clean clone of this
# repository's HEAD in it, and runs inside it (chroot, with /proc, /sys and
# /dev bound; the host's loopback network is shared):
#   1. stack cold   deploy/local/stack.sh up, empty cache, then down
#   2. stack warm   the same again
#   3. suite cold   tests/run.sh with CI=true and an empty cache of its own
#   4. suite warm   the same again
# and prints the time of each and its exit status; the exit status is non-zero
# if any step failed. Not part of the suite (it takes 40-60 min on 2 cores):
# run it after changing deploy/local/deps.sh and record its table in
# FINDINGS.md ("Rig timings").
#
# Usage: tests/fresh-machine.sh [--keep] [--only STEP[,STEP]]
#   --keep          leave the root in place (its path is printed) for a look
#   --only STEPS    run only these steps (stack-cold,stack-warm,suite-cold,suite-warm),
#                   or `deps`: deploy/local/deps.sh alone (minutes: a check of the install
#                   step after deps.sh changed, not instead of the full run)
# Needs root and about 15 GB of free disk. The broker inside listens on
# LLMQ_FRESH_KAFKA_PORT (default 39092), its controller on
# LLMQ_FRESH_KAFKA_CONTROLLER_PORT (39093) and its SASL_SSL listener on
# LLMQ_FRESH_KAFKA_SASL_PORT (39094), so it can run beside the host's rig.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
. "$REPO/deploy/local/common.sh"

keep=0
steps="stack-cold,stack-warm,suite-cold,suite-warm"
while [ $# -gt 0 ]; do
  case "$1" in
    --keep) keep=1 ;;
    --only) steps=$2; shift ;;
    *) die "usage: $0 [--keep] [--only STEP[,STEP]]" ;;
  esac
  shift
done
[ "$(id -u)" -eq 0 ] || die "fresh-machine.sh needs root (debootstrap, chroot, mounts)"

# The mirror the host's apt already reaches (deb822 or one-line sources).
host_mirror() {
  local uri
  uri=$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security | head -1)
  [ -n "$uri" ] || uri=$(grep -hsE '^deb ' /etc/apt/sources.list | awk '{print $2}' | grep -v security | head -1)
  echo "${uri:-http://deb.debian.org/debian}"
}

# The commit the root gets, taken at the start: HEAD may move during the run.
COMMIT=$(git -C "$REPO" rev-parse --short HEAD)
FRESH=$(mktemp -d /var/tmp/llmq-fresh.XXXXXX)
ROOTFS="$FRESH/root"
REPORT="$FRESH/report.txt"

unmount_all() { # deepest first; a busy mount is detached lazily
  local m
  for m in $(findmnt -rn -o TARGET | grep "^$ROOTFS/" | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m"
  done
}
cleanup() {
  # Stop what the rehearsal may have left running inside (its broker, its
  # llama-server): processes whose root is the rehearsal's root.
  local pid
  for pid in $(ls /proc | grep -E '^[0-9]+$'); do
    [ "$(readlink "/proc/$pid/root" 2>/dev/null)" = "$ROOTFS" ] && kill "$pid" 2>/dev/null
  done
  sleep 2
  unmount_all
  if [ "$keep" -eq 1 ]; then
    log "kept the rehearsal root: $ROOTFS"
  elif findmnt -rn -o TARGET | grep -q "^$ROOTFS/"; then
    log "something is still mounted under $ROOTFS: not deleting it"
  else
    rm -rf "$FRESH"
  fi
}
trap cleanup EXIT

command -v debootstrap >/dev/null || {
  log "installing debootstrap"
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null
} || die "cannot install debootstrap"

t0=$SECONDS
mirror=$(host_mirror)
log "debootstrap bookworm (minbase) from $mirror into $ROOTFS"
debootstrap --variant=minbase --include=ca-certificates bookworm "$ROOTFS" "$mirror" >"$FRESH/debootstrap.log" 2>&1 ||
  { tail -20 "$FRESH/debootstrap.log"; die "debootstrap failed"; }
bootstrap_s=$((SECONDS - t0))

{ git clone -q "file://$REPO" "$ROOTFS/root/llmq" &&
  git -C "$ROOTFS/root/llmq" checkout -q --detach "$COMMIT"; } || die "cannot clone $REPO at $COMMIT"
log "clean clone of $COMMIT in /root/llmq"
cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
# The network this machine reaches the registries through is part of the
# machine, not of what llmq installs: where its egress re-signs TLS with a
# local CA (/usr/local/share/ca-certificates) and points pip and npm at the
# system bundle, the new root gets the same trust, or nothing downloads.
cp /usr/local/share/ca-certificates/*.crt "$ROOTFS/usr/local/share/ca-certificates/" 2>/dev/null &&
  chroot "$ROOTFS" update-ca-certificates >/dev/null
for f in /etc/pip.conf /etc/npmrc; do [ -f "$f" ] && cp "$f" "$ROOTFS$f"; done
grep -qs localhost "$ROOTFS/etc/hosts" || printf '127.0.0.1 localhost\n::1 localhost\n' >>"$ROOTFS/etc/hosts"
mount -t proc proc "$ROOTFS/proc"
mount -t sysfs sys "$ROOTFS/sys"
mount --bind /dev "$ROOTFS/dev"
mount --bind /dev/pts "$ROOTFS/dev/pts"

# Variables that point TLS clients at the system CA bundle, as set on this machine.
ssl_env=$(env | grep -E '^(SSL_CERT_FILE|SSL_CERT_DIR|REQUESTS_CA_BUNDLE|PIP_CERT|CURL_CA_BUNDLE|NODE_EXTRA_CA_CERTS|GIT_SSL_CAINFO)=/etc/ssl/' | tr '\n' ' ')
# in_root CACHE CMD: run CMD in the clone as a new root user would, with CI=true.
in_root() {
  local cache=$1; shift
  chroot "$ROOTFS" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb CI=true $ssl_env \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LLMQ_CACHE="$cache" LLMQ_KAFKA_PORT="${LLMQ_FRESH_KAFKA_PORT:-39092}" \
    LLMQ_KAFKA_CONTROLLER_PORT="${LLMQ_FRESH_KAFKA_CONTROLLER_PORT:-39093}" \
    LLMQ_KAFKA_SASL_PORT="${LLMQ_FRESH_KAFKA_SASL_PORT:-39094}" \
    bash -c "cd /root/llmq && $*"
}

failed=0
printf '%-11s %8s  %s\n' step seconds result >"$REPORT"
printf '%-11s %8d  %s\n' debootstrap "$bootstrap_s" ok >>"$REPORT"
run_step() { # NAME CACHE CMD
  local name=$1 cache=$2 cmd=$3 t rc
  case ",$steps," in *",$name,"*) ;; *) return 0 ;; esac
  log "=== $name: $cmd"
  t=$SECONDS
  in_root "$cache" "$cmd" >"$FRESH/$name.log" 2>&1
  rc=$?
  [ $rc -eq 0 ] || { failed=1; tail -40 "$FRESH/$name.log"; }
  printf '%-11s %8d  %s\n' "$name" $((SECONDS - t)) "$([ $rc -eq 0 ] && echo ok || echo "FAILED (exit $rc)")" >>"$REPORT"
  log "=== $name: exit $rc after $((SECONDS - t)) s; last line: $(tail -1 "$FRESH/$name.log")"
  mkdir -p "$REPO/build/fresh-machine" && cp "$FRESH/$name.log" "$REPO/build/fresh-machine/"
}
stack_cycle='./deploy/local/stack.sh up; rc=$?; ./deploy/local/stack.sh down; exit $rc'
run_step deps /root/.cache/llmq 'bash deploy/local/deps.sh && go version && javac -version && node --version'
run_step stack-cold /root/.cache/llmq "$stack_cycle"
run_step stack-warm /root/.cache/llmq "$stack_cycle"
run_step suite-cold /root/.cache/llmq-suite ./tests/run.sh
run_step suite-warm /root/.cache/llmq-suite ./tests/run.sh

echo
echo "fresh bookworm rehearsal of $COMMIT on $(nproc) cores, $(date -u +%F):"
cat "$REPORT"
exit $failed
