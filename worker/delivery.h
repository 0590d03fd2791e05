/* delivery.h — messages the broker must acknowledge: a job's terminal reply
 * and its dead-letter copy.
 *
 * A job's offset may be committed only once its terminal messages are on the
 * broker, so each one is produced until the broker acknowledges it, and its
 * owner hears once, through the settled callback, that it is acknowledged or
 * given up for good. The rules:
 *   - a failure librdkafka gave up on (after message.timeout.ms) or a
 *     produce refused (queue full, a producer being replaced) is produced
 *     again after a second, for as long as the worker runs;
 *   - a terminal reply the broker refuses for its size becomes a small
 *     `internal` error reply (once), so the job's producer still learns how
 *     it ended;
 *   - a message the broker will never take (too large, an invalid record, a
 *     job's own reply_to topic missing or forbidden) is given up: logged and
 *     counted. The worker's configured topics missing is a deployment error:
 *     their messages wait for the topic instead.
 * Everything runs on the loop thread. */
#ifndef LLMQ_DELIVERY_H
#define LLMQ_DELIVERY_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "kafka.h"
#include "log.h"

struct loop;
struct delivery;

/* The message is on the broker (`acknowledged`), or given up for good. */
typedef void (*delivery_settled_fn)(void *ctx, bool acknowledged);

/* What a message says about its job. */
struct delivery_job {
    const char *id;         /* the job's id; NULL when it could not be read */
    const char *run;        /* the run a terminal reply ends; NULL: none ran */
    const char *reply_type; /* a terminal reply's llmq-type ("done", "error"); NULL otherwise */
};

/* The worker's own topics and id come from `cfg`; all are borrowed. */
struct delivery *delivery_new(struct loop *loop, struct kafka *kafka, const struct llmq_config *cfg,
                              const struct logger *log);

/* Free every message not settled yet, without a callback (after
 * kafka_close: no delivery report may come any more). NULL is fine. */
void delivery_free(struct delivery *d);

/* Send `msg` (copied: topic, key, payload and up to 8 headers) until it
 * settles; `on_settled(ctx, ...)` is then called once, never from within
 * this call. Returns 0, or -1 (out of memory, too many headers; logged)
 * when nothing was sent and no callback will come. */
int delivery_send(struct delivery *d, const struct kafka_message *msg,
                  const struct delivery_job *job, delivery_settled_fn on_settled, void *ctx);

/* The worker is shutting down: a message that fails from now on is neither
 * produced again nor settled (it is not acknowledged, so its job is not
 * committed either). An acknowledgement still settles. */
void delivery_stop(struct delivery *d);

/* Why the worker's own configured topic does not take its messages (e.g.
 * "the broker refuses messages to llmq.dead (Broker: Topic authorization
 * failed)"): set when the broker refuses one (the messages wait), cleared
 * when one to that topic is acknowledged; NULL when none. */
const char *delivery_refused(const struct delivery *d);

/* Failures counted: each delivery report that failed and led to producing
 * the message again, and each message given up. */
uint64_t delivery_failures(const struct delivery *d);

#endif
