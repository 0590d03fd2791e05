#!/usr/bin/env bash
# stack.sh — the local single-node llmq stack: Kafka + llama-server with a
# small real model + llmq-worker, then a sample job streamed to the terminal.
#   stack.sh up [PROMPT]   install, build, start everything, stream a sample job
#   stack.sh down          stop the worker (which stops llama-server) and Kafka
#   stack.sh status        what is running
# Safe to run twice: what already runs is reused. State and logs live under
# $LLMQ_STATE/stack (default ~/.cache/llmq/state/stack).
set -euo pipefail
. "$(dirname "$0")/common.sh"
cd "$LLMQ_ROOT"

STACK="$LLMQ_STATE/stack"
BUILD="$LLMQ_ROOT/build"
PIDFILE="$STACK/worker.pid"
mkdir -p "$STACK"

worker_running() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

up() {
  local prompt=${1:-"Write one sentence about message queues."}
  local t0=$SECONDS
  bash deploy/local/deps.sh >/dev/null
  log "building llmq"
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$BUILD" -j "$(nproc)" >/dev/null
  local llama model
  llama=$(bash deploy/local/llama.sh path)
  model=$(bash deploy/local/models.sh real)
  bash deploy/local/kafka.sh fetch
  bash deploy/local/kafka.sh start
  bash deploy/local/kafka.sh create-topic llmq.jobs 4
  bash deploy/local/kafka.sh create-topic llmq.replies 4
  bash deploy/local/kafka.sh create-topic llmq.dead 1
  bash deploy/local/kafka.sh create-topic llmq.metrics 1

  cat >"$STACK/worker.cfg" <<CFG
# Written by deploy/local/stack.sh; see deploy/worker.example.cfg for every key.
worker = { id = "local-1"; };
kafka = {
  brokers = "127.0.0.1:$LLMQ_KAFKA_PORT";
  group_id = "llmq-local";
  jobs_topics = ["llmq.jobs"];
  reply_topic = "llmq.replies";
  dead_letter_topic = "llmq.dead";
  metrics_topic = "llmq.metrics";
};
llama = {
  binary = "$llama";
  model = "$model";
  gpu = -1;
  context = 4096;
  slots = 2;
  # The Gemma GGUF carries no chat template; without this llama-server
  # would fall back to chatml, the wrong format for Gemma.
  extra_args = ["--chat-template-file", "$LLMQ_ROOT/deploy/local/gemma3-chat.jinja"];
};
metrics = { listen = "127.0.0.1:9464"; };
CFG
  if worker_running; then
    log "worker already running (pid $(cat "$PIDFILE"))"
  else
    log "starting llmq-worker (log: $STACK/worker.log)"
    setsid "$BUILD/llmq-worker" -c "$STACK/worker.cfg" >"$STACK/worker.log" 2>&1 </dev/null &
    echo $! >"$PIDFILE"
  fi
  local i
  for i in $(seq 1 600); do
    grep -q "assigned" "$STACK/worker.log" && break
    worker_running || { tail -30 "$STACK/worker.log" >&2; die "llmq-worker exited"; }
    [ $((i % 50)) -eq 0 ] && log "waiting for the worker to join (llama-server loading)..."
    sleep 0.2
  done
  grep -q "assigned" "$STACK/worker.log" || die "worker not ready after 120 s (log: $STACK/worker.log)"
  log "stack up in $((SECONDS - t0)) s; sending a sample job"
  submit "$prompt"
  log "the stack keeps running: '$0 down' stops it"
}

submit() {
  local prompt=$1
  if [ -x "$BUILD/llmq" ]; then
    "$BUILD/llmq" submit -b "127.0.0.1:$LLMQ_KAFKA_PORT" --chat --max-tokens 64 "$prompt"
  else
    "$LLMQ_CACHE/venv/bin/python" deploy/local/sample_job.py "127.0.0.1:$LLMQ_KAFKA_PORT" "$prompt"
  fi
}

down() {
  if worker_running; then
    local pid; pid=$(cat "$PIDFILE")
    kill -TERM "$pid"
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
    log "worker stopped"
  fi
  rm -f "$PIDFILE"
  bash deploy/local/kafka.sh stop
}

status() {
  if worker_running; then echo "worker: running (pid $(cat "$PIDFILE"))"; else echo "worker: stopped"; fi
  if bash deploy/local/kafka.sh status >/dev/null 2>&1; then echo "kafka: running"; else echo "kafka: stopped"; fi
}

case "${1:-up}" in
  up) shift || true; up "$@" ;;
  down) down ;;
  status) status ;;
  submit) shift; submit "$*" ;;
  *) die "usage: $0 {up [PROMPT]|down|status|submit PROMPT}" ;;
esac
