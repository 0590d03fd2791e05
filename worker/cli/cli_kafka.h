/* cli_kafka.h — the llmq CLI's two Kafka clients, made from the global
 * options (-b, -X): a producer for jobs whose acks come back through a
 * callback, and a follower that reads every partition of the reply topic.
 *
 * A follower reads from the end of each partition as it was when the
 * follower was made (the high watermarks are queried then, not when the
 * first fetch happens), so a job produced after cli_follower_new() returns
 * cannot have a reply the follower misses. It joins no consumer group and
 * commits nothing.
 *
 * librdkafka's log lines are dropped unless --verbose; the last error a
 * client reported is kept to explain a failure (cli_*_last_error).
 *
 * This is the CLI's only file that names librdkafka: the rest of the CLI
 * sees plain values (error texts, struct cli_message). */
#ifndef LLMQ_CLI_KAFKA_H
#define LLMQ_CLI_KAFKA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cli_common.h"

/* Check that every -X property is one librdkafka knows. Returns 0, or -1
 * with a message in err. */
int cli_kafka_check_props(const struct cli_global *g, char *err, size_t err_len);

/* Called from cli_producer_poll() for each message sent: error is NULL when
 * the broker acknowledged it, or librdkafka's text for why it did not. */
typedef void (*cli_delivery_fn)(void *ctx, void *msg_opaque, const char *error);

struct cli_producer;

/* A producer, returned once some broker answered (within the connect
 * timeout, g->connect_timeout_s). `message_timeout_ms` bounds how long a
 * message may wait for its ack. NULL with a message in err when no broker
 * answered, or with err untouched when a stop signal came first
 * (g->stopped_by is set then). */
struct cli_producer *cli_producer_new(struct cli_global *g, int message_timeout_ms,
                                      cli_delivery_fn on_delivery, void *ctx, char *err,
                                      size_t err_len);

/* Queue one message (a copy is taken), with the given headers (name,
 * value pairs of text, NULL-terminated; NULL for none). Returns NULL, or
 * librdkafka's text for why it could not be queued. */
const char *cli_producer_send(struct cli_producer *p, const char *topic, const char *key,
                              const void *payload, size_t len, const char *const *headers,
                              void *msg_opaque);

/* Serve acks for up to timeout_ms (0: only those already in). */
void cli_producer_poll(struct cli_producer *p, int timeout_ms);

/* Messages queued and not yet acknowledged (or failed). */
int cli_producer_pending(const struct cli_producer *p);

const char *cli_producer_last_error(const struct cli_producer *p);
void cli_producer_free(struct cli_producer *p);

struct cli_follower;

/* One message a follower read; its fields are valid until cli_message_free(). */
struct cli_message {
    const char *topic;
    int32_t partition;
    int64_t offset;
    const void *payload;
    size_t len;
    void *handle; /* the client's own message, for cli_kafka_header() and freeing */
};

/* Read `topic` from its end (from_beginning: from its oldest message).
 * Gives up after the connect timeout (g->connect_timeout_s) when the
 * brokers or the topic cannot be found: NULL then, with a message in err;
 * or at once when a stop signal comes (NULL, g->stopped_by set). */
struct cli_follower *cli_follower_new(struct cli_global *g, const char *topic, bool from_beginning,
                                      char *err, size_t err_len);

/* The next message into *out, waiting up to timeout_ms; false when none
 * came. Error events are not returned (the client retries;
 * cli_follower_last_error() has the latest). The caller frees a message it
 * got with cli_message_free(). */
bool cli_follower_poll(struct cli_follower *f, int timeout_ms, struct cli_message *out);

/* Release a message cli_follower_poll() gave. */
void cli_message_free(struct cli_message *msg);

const char *cli_follower_last_error(const struct cli_follower *f);
void cli_follower_free(struct cli_follower *f);

/* The value of header `name` of a message as a NUL-terminated copy in buf,
 * or NULL when it has none (or it does not fit). */
const char *cli_kafka_header(const struct cli_message *msg, const char *name, char *buf,
                             size_t len);

#endif
