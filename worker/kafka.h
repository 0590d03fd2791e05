/* kafka.h — the worker's two Kafka clients on the event loop.
 *
 * A consumer in the group (manual commits, rebalance callback) and an
 * idempotent producer for replies, heartbeats and dead-letter copies. Both
 * wake the loop through an fd (rd_kafka_queue_io_event_enable), so the loop
 * thread serves messages, rebalances and delivery reports; nothing here
 * blocks except kafka_close() and the synchronous commit on revocation.
 *
 * Messages come from each assigned partition's own queue
 * (rd_kafka_queue_get_partition, not forwarded to the consumer queue), so the
 * consumer queue's events (rebalances, errors, statistics) are served even
 * while the worker is paused, and a pause holds messages instead of purging
 * them: rd_kafka_pause_partitions() would make every resume wait for a fetch,
 * up to fetch.wait.max.ms (tests/bench). */
#ifndef LLMQ_KAFKA_H
#define LLMQ_KAFKA_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "log.h"

struct loop;
struct kafka;

struct kafka_header {
    const char *name;
    const void *value;
    size_t len;
};

struct kafka_events {
    /* A job message (never an error event). Ownership passes to the callee,
     * which must rd_kafka_message_destroy() it. */
    void (*on_message)(void *ctx, rd_kafka_message_t *msg);
    /* Partitions were assigned to this worker. */
    void (*on_assigned)(void *ctx, const rd_kafka_topic_partition_list_t *parts);
    /* Partitions are about to be taken away: cancel their jobs and fill
     * `commit` (a list of the same partitions) with the offsets to commit
     * (RD_KAFKA_OFFSET_INVALID to skip one). Called before the release. */
    void (*on_revoking)(void *ctx, const rd_kafka_topic_partition_list_t *parts,
                        rd_kafka_topic_partition_list_t *commit);
    /* The consumer's statistics JSON (every statistics.interval.ms, 5 s
     * unless kafka.properties says otherwise). May be NULL. */
    void (*on_stats)(void *ctx, const char *json, size_t len);
};

/* Called once per produced message when the broker acknowledged it (err ==
 * RD_KAFKA_RESP_ERR_NO_ERROR) or librdkafka gave up on it. */
typedef void (*kafka_delivery_fn)(void *opaque, rd_kafka_resp_err_t err);

struct kafka *kafka_new(struct loop *loop, const struct llmq_config *cfg, const struct logger *log,
                        const struct kafka_events *events, void *ctx, char *err, size_t err_len);

/* Join the group on the configured jobs topics. */
int kafka_subscribe(struct kafka *k, char *err, size_t err_len);

/* Produce a message. `on_delivery` may be NULL (fire and forget; failures are
 * still logged and counted). Returns 0 or the librdkafka error. */
rd_kafka_resp_err_t kafka_produce(struct kafka *k, const char *topic, const char *key,
                                  size_t key_len, const void *payload, size_t len,
                                  const struct kafka_header *headers, size_t n_headers,
                                  kafka_delivery_fn on_delivery, void *opaque);

/* Stop / restart handing messages to on_message. While paused they wait in
 * librdkafka's prefetch queue (bounded by queued.min.messages and
 * queued.max.messages.kbytes); polling goes on, so the group membership stays
 * alive however long the pause. */
void kafka_pause(struct kafka *k);
void kafka_resume(struct kafka *k);
bool kafka_paused(const struct kafka *k);

/* Commit offsets (asynchronously unless `sync`). */
rd_kafka_resp_err_t kafka_commit(struct kafka *k, const rd_kafka_topic_partition_list_t *offsets,
                                 bool sync);

/* Which of `topics` the cluster does not have, as "a, b" in `missing`.
 * Returns how many are missing, or -1 (reason in `missing`) when the cluster
 * did not answer within `timeout_ms`. Blocks: call it before taking jobs. */
int kafka_topics_missing(struct kafka *k, const char *const *topics, size_t n, int timeout_ms,
                         char *missing, size_t missing_len);

/* Whether the consumer holds an assignment from the group (it joined). */
bool kafka_joined(const struct kafka *k);

/* Messages produced and not yet acknowledged. */
int kafka_outq_len(const struct kafka *k);

/* Serve delivery reports for up to `timeout_ms` until the producer's queue is
 * empty (blocking; shutdown and revocation only). */
void kafka_flush(struct kafka *k, int timeout_ms);

/* Leave the group (revocation runs), flush the producer, free everything. */
void kafka_close(struct kafka *k, int flush_timeout_ms);

#endif
