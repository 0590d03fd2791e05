/* worker.h — the job life, from a Kafka message to its acknowledged
 * terminal reply.
 *
 * The worker owns the Kafka clients, the HTTP client and the llama-server
 * supervisor, and keeps every job it holds as a task: queued (waiting for a
 * slot or for llama-server), running (streaming), or finishing (terminal
 * reply sent, waiting for the broker's acknowledgement). A task's offset is
 * done only when that acknowledgement arrives; the committed offset of each
 * partition is the contiguous done prefix (offsets.h). At most `slots` tasks
 * run at once; when the worker holds `slots` tasks it stops taking messages
 * and goes on polling, so a long generation never costs a rebalance. */
#ifndef LLMQ_WORKER_H
#define LLMQ_WORKER_H

#include <stdbool.h>
#include <stdint.h>

#include "codes.h"
#include "config.h"
#include "log.h"

struct loop;
struct worker;

struct worker_stats {
    uint64_t jobs_received;
    uint64_t jobs_ok;
    uint64_t jobs_error[LLMQ_CODE_COUNT]; /* terminal errors by code */
    uint64_t runs_started;
    uint64_t runs_retried; /* reruns after llama-server was lost */
    uint64_t dead_lettered;
    uint64_t chunks_published;
    uint64_t tokens_generated;
    uint64_t deliveries_failed; /* terminal or dead-letter messages re-produced */
};

struct worker *worker_new(struct loop *loop, const struct llmq_config *cfg,
                          const struct logger *log, char *err, size_t err_len);

/* Start llama-server (or probe the external url). The worker joins the
 * consumer group once llama-server is first ready. */
int worker_start(struct worker *w);

/* Stop taking jobs; let running ones finish for up to limits.drain_timeout_s,
 * then cancel the rest (they are not committed, so another worker reruns
 * them); commit; then stop the loop. Safe to call twice. */
void worker_drain(struct worker *w);

/* Leave the group, stop llama-server, free everything (after the loop ran). */
void worker_free(struct worker *w);

bool worker_ready(const struct worker *w); /* joined the group and llama-server ready */
const struct worker_stats *worker_stats(const struct worker *w);
unsigned worker_running(const struct worker *w);

#endif
