#!/usr/bin/env bash
# stack.sh — the local single-node llmq stack: Kafka + llama-server with a
# small real model + llmq-worker, then a sample job streamed to the terminal.
#   stack.sh up [PROMPT]   install, build, start everything, stream a sample job
#   stack.sh down          stop the worker (which stops llama-server) and Kafka
#   stack.sh status        what is running
#   stack.sh submit PROMPT another chat job, streamed
# Safe to run twice: what already runs is reused. State and logs live under
# $LLMQ_STATE/stack (default ~/.cache/llmq/state/stack).
# LLMQ_STACK_MODEL picks the model: smollm2 (default; SmolLM2 135M Instruct, which
# answers) or gemma (Gemma 3 270M, a base model). LLMQ_KAFKA_PORT (19092),
# LLMQ_KAFKA_CONTROLLER_PORT (19093) and LLMQ_METRICS_PORT (9464) move the ports.
set -euo pipefail
. "$(dirname "$0")/common.sh"
cd "$LLMQ_ROOT"

STACK="$LLMQ_STATE/stack"
BUILD="$LLMQ_ROOT/build"
PIDFILE="$STACK/worker.pid"
STACK_MODEL=${LLMQ_STACK_MODEL:-smollm2}
METRICS_PORT=${LLMQ_METRICS_PORT:-9464}
BOOTSTRAP="127.0.0.1:$LLMQ_KAFKA_PORT"
mkdir -p "$STACK"

# create_topics NAME=PARTITIONS...: one admin request from the test venv's
# confluent-kafka (kafka.sh create-topic starts two JVMs per topic, ~8 s for four).
create_topics() {
  local t0=$SECONDS
  "$LLMQ_CACHE/venv/bin/python" - "$BOOTSTRAP" "$@" <<'PY' || die "could not create the stack's topics"
import sys
from confluent_kafka.admin import AdminClient, NewTopic
admin = AdminClient({"bootstrap.servers": sys.argv[1]})
want = {name: int(n) for name, n in (arg.split("=") for arg in sys.argv[2:])}
have = admin.list_topics(timeout=30).topics
new = [NewTopic(t, n, 1) for t, n in want.items() if t not in have]
for topic, future in (admin.create_topics(new, request_timeout=30) if new else {}).items():
    future.result()
    print(f"created topic {topic}", file=sys.stderr)
have = admin.list_topics(timeout=30).topics
for topic, n in want.items():
    got = len(have[topic].partitions)
    if got != n:
        sys.exit(f"topic {topic} has {got} partitions, not {n} (delete it or use another LLMQ_STATE)")
PY
  log "topics ready ($((SECONDS - t0)) s)"
}

worker_running() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

# worker_config LLAMA_SERVER MODEL EXTRA_ARGS: the worker's configuration, on stdout.
worker_config() {
  cat <<CFG
# Written by deploy/local/stack.sh; see deploy/worker.example.cfg for every key.
worker = { id = "local-1"; };
kafka = {
  brokers = "$BOOTSTRAP";
  group_id = "llmq-local";
  jobs_topics = ["llmq.jobs"];
  reply_topic = "llmq.replies";
  dead_letter_topic = "llmq.dead";
  metrics_topic = "llmq.metrics";
};
llama = {
  binary = "$1";
  model = "$2";
  gpu = -1;
  context = 4096;
  slots = 2;
  extra_args = [$3];
};
metrics = { listen = "127.0.0.1:$METRICS_PORT"; };
CFG
}

up() {
  local prompt=${1:-"Write one sentence about message queues."}
  local t0=$SECONDS llama model template
  case "$STACK_MODEL" in
    # Its GGUF carries a chatml template (with a default system prompt);
    # --jinja makes llama-server apply that template as written.
    smollm2) template='"--jinja"' ;;
    # The Gemma GGUF carries no chat template; without this llama-server
    # would fall back to chatml, the wrong format for Gemma.
    gemma) template="\"--chat-template-file\", \"$LLMQ_ROOT/deploy/local/gemma3-chat.jinja\"" ;;
    *) die "LLMQ_STACK_MODEL=$STACK_MODEL: expected smollm2 or gemma" ;;
  esac
  bash deploy/local/deps.sh >/dev/null
  # The broker boots (the longest step) while llmq builds and the model is checked.
  local kafka_pid
  bash deploy/local/kafka.sh start &
  kafka_pid=$!
  log "building llmq"
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$BUILD" -j "$(nproc)" >/dev/null
  llama=$(bash deploy/local/llama.sh path)
  model=$(bash deploy/local/models.sh "$STACK_MODEL")
  wait "$kafka_pid" || die "the Kafka broker did not start (see above)"
  create_topics llmq.jobs=4 llmq.replies=4 llmq.dead=1 llmq.metrics=1 llmq.control=1

  worker_config "$llama" "$model" "$template" >"$STACK/worker.cfg.new"
  if worker_running; then
    log "worker already running (pid $(cat "$PIDFILE"))"
    cmp -s "$STACK/worker.cfg.new" "$STACK/worker.cfg" \
      || log "it runs with the previous configuration (another model?): '$0 down', then up, to change"
    rm -f "$STACK/worker.cfg.new"
  else
    mv -f "$STACK/worker.cfg.new" "$STACK/worker.cfg"
    log "starting llmq-worker (log: $STACK/worker.log)"
    setsid "$BUILD/llmq-worker" -c "$STACK/worker.cfg" >"$STACK/worker.log" 2>&1 </dev/null &
    echo $! >"$PIDFILE"
  fi
  local i
  for i in $(seq 1 1200); do
    grep -q "assigned" "$STACK/worker.log" && break
    worker_running || { tail -30 "$STACK/worker.log" >&2; die "llmq-worker exited"; }
    [ $((i % 100)) -eq 0 ] && log "waiting for the worker to join (llama-server loading)..."
    sleep 0.1
  done
  grep -q "assigned" "$STACK/worker.log" || die "worker not ready after 120 s (log: $STACK/worker.log)"
  log "stack up in $((SECONDS - t0)) s ($STACK_MODEL); sending a sample job"
  submit "$prompt"
  next_steps
}

# What to try next, with this stack's broker and metrics port.
next_steps() {
  printf '\nThe stack keeps running. Next:\n' >&2
  [ "$BOOTSTRAP" = "127.0.0.1:19092" ] || printf '  %-14s %s\n' "this broker:" "export LLMQ_BROKERS=$BOOTSTRAP" >&2
  printf '  %-14s %s\n' >&2 \
    "another job:" 'build/llmq submit --chat "Why do people use Kafka?"' \
    "every reply:" 'build/llmq tail   (Ctrl-C stops it)' \
    "a batch:" "echo '{\"prompt\": \"Once upon a time\", \"max_tokens\": 32}' | build/llmq batch" \
    "metrics:" "curl -s http://127.0.0.1:$METRICS_PORT/metrics | grep 'status=\"ok\"'" \
    "stop it all:" "$0 down"
}

submit() {
  local prompt=$1
  if [ -x "$BUILD/llmq" ]; then
    "$BUILD/llmq" submit -b "$BOOTSTRAP" --chat --temperature 0 --max-tokens 96 "$prompt"
  else
    "$LLMQ_CACHE/venv/bin/python" deploy/local/sample_job.py "$BOOTSTRAP" "$prompt"
  fi
}

down() {
  if worker_running; then
    local pid; pid=$(cat "$PIDFILE")
    kill -TERM "$pid"
    for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
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
