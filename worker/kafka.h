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
 * up to fetch.wait.max.ms (tests/bench).
 *
 * librdkafka stays behind this header: callers get and give plain structs
 * and error codes (librdkafka's numbers, as ints), and only worker/kafka*.c
 * name its types (tests/run.sh's lint checks it). */
#ifndef LLMQ_KAFKA_H
#define LLMQ_KAFKA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "log.h"

struct loop;
struct kafka;

struct kafka_header {
    const char *name;
    const void *value;
    size_t len;
};

/* A message, consumed or to produce. What it points to is the caller's (to
 * produce) or valid during the on_message call only (consumed). */
struct kafka_message {
    const char *topic;
    int32_t partition;    /* consumed only: producing, the key picks it */
    int64_t offset;       /* consumed only */
    int64_t timestamp_ms; /* consumed only: the message's timestamp, 0 when none */
    const void *key;
    size_t key_len;
    const void *payload;
    size_t len;
    const struct kafka_header *headers;
    size_t n_headers;
};

/* A partition, and an offset in it (KAFKA_OFFSET_NONE: none). */
struct kafka_partition {
    const char *topic;
    int32_t partition;
    int64_t offset;
};
#define KAFKA_OFFSET_NONE (-1)

/* What an error code (from kafka_produce, a delivery report or kafka_commit)
 * means to its caller. 0 is success. */
enum kafka_error {
    KAFKA_OK,
    KAFKA_ERR_TOO_LARGE, /* the broker refuses the message for its size */
    KAFKA_ERR_INVALID,   /* the broker refuses the record itself */
    KAFKA_ERR_NO_TOPIC,  /* the topic is missing, or writing it is forbidden */
    KAFKA_ERR_NO_OFFSET, /* a commit had no offset to commit */
    KAFKA_ERR_OTHER,     /* transient: connections, timeouts, retriable broker errors, or
                            errors about the whole client (its credentials) */
    KAFKA_ERR_REFUSED,   /* anything else: the broker refuses it for good (an invalid topic
                            name, a policy violation, ...) */
};

/* The kind of an error code, and its text for a log line. */
enum kafka_error kafka_error_kind(int err);
const char *kafka_error_str(int err);

struct kafka_events {
    /* A job message (never an error event), valid during the call only. */
    void (*on_message)(void *ctx, const struct kafka_message *msg);
    /* Partitions were assigned to this worker (their offsets unset). */
    void (*on_assigned)(void *ctx, const struct kafka_partition *parts, size_t n);
    /* Partitions are about to be taken away: cancel their jobs and set each
     * one's offset to the offset to commit (it comes as KAFKA_OFFSET_NONE:
     * leave it so to skip one). Called before the release. */
    void (*on_revoking)(void *ctx, struct kafka_partition *parts, size_t n);
    /* The consumer's statistics JSON (every statistics.interval.ms, 5 s
     * unless kafka.properties says otherwise). May be NULL. */
    void (*on_stats)(void *ctx, const char *json, size_t len);
    /* The commit of these partitions' offsets failed (each one counted in
     * kafka_commits_failed()): commit them again. May be NULL. */
    void (*on_commit_failed)(void *ctx, const struct kafka_partition *parts, size_t n);
    /* The consumer hit a fatal error (kafka_problem() says which): it can
     * take no job again; the process should end. May be NULL. */
    void (*on_consumer_fatal)(void *ctx);
    /* The brokers refused the client's credentials (SASL authentication)
     * before it was ever assigned partitions: a configuration error, not an
     * outage. Called once, with librdkafka's reason. May be NULL. */
    void (*on_auth_failed)(void *ctx, const char *reason);
    /* A message of the control topic (kafka_control_start), valid during the
     * call only. May be NULL. */
    void (*on_control)(void *ctx, const struct kafka_message *msg);
};

/* Called once per produced message when the broker acknowledged it (err 0)
 * or librdkafka gave up on it (err is the reason). */
typedef void (*kafka_delivery_fn)(void *opaque, int err);

struct kafka *kafka_new(struct loop *loop, const struct llmq_config *cfg, const struct logger *log,
                        const struct kafka_events *events, void *ctx, char *err, size_t err_len);

/* Join the group on the configured jobs topics. */
int kafka_subscribe(struct kafka *k, char *err, size_t err_len);

/* Produce `msg` (its topic, key, payload and headers; all copied).
 * `on_delivery` may be NULL (fire and forget; failures are still logged).
 * Returns 0 or the librdkafka error (then no report comes). */
int kafka_produce(struct kafka *k, const struct kafka_message *msg, kafka_delivery_fn on_delivery,
                  void *opaque);

/* Stop / restart handing messages to on_message. While paused they wait in
 * librdkafka's prefetch queue (bounded by queued.min.messages and
 * queued.max.messages.kbytes); polling goes on, so the group membership stays
 * alive however long the pause. */
void kafka_pause(struct kafka *k);
void kafka_resume(struct kafka *k);
bool kafka_paused(const struct kafka *k);

/* Commit the offsets of `n` partitions (asynchronously unless `sync`).
 * Returns 0 or the librdkafka error. */
int kafka_commit(struct kafka *k, const struct kafka_partition *offsets, size_t n, bool sync);

/* Which of `topics` the cluster does not have, as "a, b" in `missing`.
 * Returns how many are missing, or -1 (reason in `missing`) when the cluster
 * did not answer within `timeout_ms`. Blocks: call it before taking jobs. */
int kafka_topics_missing(struct kafka *k, const char *const *topics, size_t n, int timeout_ms,
                         char *missing, size_t missing_len);

/* Leave the group (revocation runs, with its commit); kafka_subscribe()
 * joins again. Nothing happens when not subscribed. */
void kafka_unsubscribe(struct kafka *k);

/* Why the consumer cannot take jobs (evicted from the group for polling too
 * seldom, or a fatal error), or NULL when nothing is wrong. An eviction is
 * forgotten at the next assignment. */
const char *kafka_problem(const struct kafka *k);

/* How many partitions' commits failed so far (the offset commit callback). */
unsigned long kafka_commits_failed(const struct kafka *k);

/* The partition.assignment.strategy used when kafka.properties sets none,
 * for librdkafka `version` (rd_kafka_version()'s 0xMMmmrrxx): cooperative-
 * sticky from 2.10.0 on, the eager "range,roundrobin" before; `why` gets
 * the reason for the log. */
const char *kafka_assignment_default(int version, char *why, size_t why_len);
/* Read every partition of the control topic `topic` outside the consumer
 * group, from the first message at or after `since_ms` (Unix ms), handing
 * each message to on_control. Blocks up to about 2 x timeout_ms (metadata,
 * then offsets): call it before taking jobs. Returns 0; 1 when the topic
 * does not exist (call again later); -1 with the reason in err. */
int kafka_control_start(struct kafka *k, const char *topic, int64_t since_ms, int timeout_ms,
                        char *err, size_t err_len);

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
