/* kafka_private.h — what kafka.c (the clients, the producer) and
 * kafka_consumer.c (the group, its partitions, their messages) share: the
 * kafka object itself. Nothing outside worker/kafka*.c includes it. */
#ifndef LLMQ_KAFKA_PRIVATE_H
#define LLMQ_KAFKA_PRIVATE_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "kafka.h"
#include "lanes.h"
#include "log.h"
#include "log_repeats.h"
#include "loop.h"

/* An assigned partition's message queue, not forwarded to the consumer queue:
 * while the worker is paused its messages wait there (librdkafka goes on
 * prefetching up to queued.min.messages / queued.max.messages.kbytes), so a
 * resume hands them over at once. rd_kafka_pause_partitions() would purge them
 * instead, and librdkafka fetches a resumed partition only when its broker
 * thread next wakes, up to fetch.wait.max.ms (500 ms) later: with a backlog
 * already prefetched, every freed slot waited for that (tests/bench). */
struct held_queue {
    rd_kafka_queue_t *queue;
    char *topic;
    int32_t partition;
    int lane;                   /* lanes_index of its topic */
    rd_kafka_message_t *peeked; /* its next message, taken to see it has one */
};

struct kafka {
    struct loop *loop;
    const struct llmq_config *cfg;
    const struct logger *log;
    struct kafka_events events;
    void *ctx;

    rd_kafka_t *consumer;
    rd_kafka_t *producer;
    rd_kafka_queue_t *consumer_queue;
    rd_kafka_queue_t *producer_queue;
    int consumer_pipe[2];
    int producer_pipe[2];
    loop_timer_id consumer_more; /* a batch left events behind */

    loop_timer_id replace_producer; /* a fatal error: make a new producer */
    /* librdkafka's errors (a broker down, ...) said once, then summed up at
     * most every KAFKA_REPEAT_WINDOW_MS while they go on (kafka.c). */
    struct log_repeats repeats;
    loop_timer_id repeats_timer;
    unsigned producers_replaced;

    /* The control topic's reader (kafka_control.c): a consumer outside the
     * group, assigned every partition of the topic. NULL until started. */
    rd_kafka_t *control;
    rd_kafka_queue_t *control_queue;
    int control_pipe[2];

    struct held_queue *held; /* one per assigned partition */
    size_t n_held, cap_held;
    size_t next_held;    /* round-robin over a lane's partitions */
    struct lanes *lanes; /* which topic's partitions go next (lanes.h) */

    bool paused;
    /* The reply producer's queue is over half full: no new job is handed out
     * until it is down to a quarter, so a worker faster than its broker slows
     * down instead of dropping chunks with "Queue full". */
    bool backlogged;
    int outq_high, outq_low;
    bool joined;
    bool subscribed;
    bool auth_failed; /* on_auth_failed was called */
    bool closing;
    loop_timer_id poll_timer;     /* polls the consumer every second, whatever comes */
    unsigned long commits_failed; /* partitions whose commit failed */
    char problem[256];            /* why the consumer cannot take jobs ("" when it can) */
    bool fatal;                   /* the consumer hit a fatal error: problem stays */
};

/* Set one property; -1 with "kafka property NAME: why" in err. */
int kafka_set_conf(rd_kafka_conf_t *conf, const char *name, const char *value, char *err,
                   size_t err_len);

/* Whether kafka.properties sets `name`. */
bool kafka_user_property(const struct kafka *k, const char *name);

/* The consumer's group settings (kafka_group.c): group.id, manual commits,
 * the partition assignment strategy (logged with the reason for it), the
 * static membership and the commit results' callback. 0, or -1 with the
 * reason in err. */
int kafka_group_conf(struct kafka *k, rd_kafka_conf_t *conf, char *err, size_t err_len);

/* The consumer hit a fatal error: say why in `problem` and tell the owner
 * (once). */
void kafka_consumer_fatal(struct kafka *k);

/* Settings common to both clients, then the user's kafka.properties. NULL
 * with the reason in err. */
rd_kafka_conf_t *kafka_base_conf(struct kafka *k, char *err, size_t err_len);

/* Route a client's event queue to a pipe the loop watches (0 or -1). */
int kafka_wake_loop_on(struct kafka *k, rd_kafka_queue_t *queue, int pipefd[2], loop_fd_fn fn);

/* Stop watching a client's pipe, destroy its queue and the client, close
 * the pipe; each may be missing (NULL, -1). */
void kafka_client_free(struct kafka *k, rd_kafka_t *rk, rd_kafka_queue_t *queue, int pipefd[2]);

/* Whether the producer's queue is too full to hand out a new job (with the
 * hysteresis described at struct kafka's `backlogged`). */
bool kafka_producer_backlogged(struct kafka *k);

/* Create the group consumer and watch its queue (kafka_consumer.c). 0, or
 * -1 with the reason in err. */
int kafka_consumer_open(struct kafka *k, char *err, size_t err_len);

/* Serve the consumer again soon, from the loop (messages may wait with no
 * io event to come for them). */
void kafka_consumer_wake(struct kafka *k);

/* Leave the group: revocation runs, and its commit. */
void kafka_consumer_leave(struct kafka *k);

/* Free the consumer's queues, pipe and client (after kafka_consumer_leave). */
void kafka_consumer_free(struct kafka *k);

/* A consumed message as kafka.h's plain struct, without its headers. */
struct kafka_message kafka_plain_message(const rd_kafka_message_t *msg);

/* Read everything waiting on a wake-up pipe (its bytes mean nothing). */
void kafka_pipe_drain(int fd);

/* Close and free the control topic's reader, if any. */
void kafka_control_free(struct kafka *k);

#endif
