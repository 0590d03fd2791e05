/* worker.h — the job life, from a Kafka message to its acknowledged
 * terminal reply.
 *
 * The worker owns the Kafka clients, the HTTP client and the llama-server
 * supervisor, and keeps every job it holds as a task: queued (waiting for a
 * slot or for llama-server), running (streaming), or finishing (terminal
 * reply sent, waiting for the broker's acknowledgement, delivery.h). A
 * task's offset is done only when that acknowledgement arrives; the committed
 * offset of each partition is the contiguous done prefix (commits.h). At
 * most `slots` tasks run at once; when the worker holds `slots` tasks it
 * stops taking messages and goes on polling, so a long generation never
 * costs a rebalance. */
#ifndef LLMQ_WORKER_H
#define LLMQ_WORKER_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "log.h"

struct loop;
struct worker;

/* The worker with its Kafka clients, HTTP client, llama-server supervisor and
 * telemetry, all created but not started. NULL with the reason in err. */
struct worker *worker_new(struct loop *loop, const struct llmq_config *cfg,
                          const struct logger *log, char *err, size_t err_len);

/* Start llama-server (or probe the external url). The worker joins the
 * consumer group once llama-server is first ready. */
int worker_start(struct worker *w);

/* Stop taking jobs; let running ones finish for up to limits.drain_timeout_s,
 * then cancel the rest (they are not committed, so another worker reruns
 * them); commit; then stop the loop. Safe to call twice. */
void worker_drain(struct worker *w);

/* The process's exit code once the loop stopped: 0, or EXIT_KAFKA_FATAL
 * when the consumer hit a fatal error (a service manager should restart the
 * worker). */
#define EXIT_KAFKA_FATAL 4
int worker_exit_code(const struct worker *w);
/* Whether the worker stopped the loop itself because the brokers refused
 * its credentials before it was ever assigned partitions (a configuration
 * error: main exits 3). */
bool worker_credentials_refused(const struct worker *w);

/* Leave the group, stop llama-server, free everything (after the loop ran). */
void worker_free(struct worker *w);

#endif
