# common.sh — shared settings for the local rig scripts (sourced, not run).
# Pinned versions live here so every script and FINDINGS.md agree.

LLMQ_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
LLMQ_CACHE=${LLMQ_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/llmq}
LLMQ_STATE=${LLMQ_STATE:-$LLMQ_CACHE/state}

# node-llama-cpp carries the llama.cpp source as llama/gitRelease.bundle.
NODE_LLAMA_CPP_VERSION=${NODE_LLAMA_CPP_VERSION:-3.22.1}
# Apache Kafka 3.9.x pairs safely with Debian's librdkafka 2.0.2.
KAFKA_VERSION=${KAFKA_VERSION:-3.9.1}
SCALA_VERSION=2.13
LLMQ_KAFKA_PORT=${LLMQ_KAFKA_PORT:-19092}
LLMQ_KAFKA_CONTROLLER_PORT=${LLMQ_KAFKA_CONTROLLER_PORT:-19093}
# The SASL_SSL listener (kafka.sh, LLMQ_KAFKA_SASL=1) beside the plain one.
LLMQ_KAFKA_SASL_PORT=${LLMQ_KAFKA_SASL_PORT:-19094}

mkdir -p "$LLMQ_CACHE" "$LLMQ_STATE"

log() { printf '[llmq %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf '[llmq] error: %s\n' "$*" >&2; exit 1; }
