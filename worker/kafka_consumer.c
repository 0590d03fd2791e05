/* kafka_consumer.c — the consumer group: joining, the rebalance callback,
 * each assigned partition's held queue, serving messages on the loop, and
 * commits. Messages and partitions leave here as kafka.h's plain structs. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "kafka_private.h"

/* How many consumer events one loop wake-up serves before yielding. */
#define KAFKA_POLL_BATCH 256
/* The consumer is polled at least this often, so that a worker whose slots
 * are all busy (paused, no message served) stays in the group whatever
 * statistics.interval.ms is: max.poll.interval.ms counts from the last poll. */
#define KAFKA_POLL_EVERY_MS 1000

static int consumer_stats(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
    struct kafka *k = opaque;
    (void)rk;
    if (k->events.on_stats)
        k->events.on_stats(k->ctx, json, len);
    return 0; /* librdkafka frees json */
}

/* Take an assigned partition's messages out of the consumer queue. */
static void hold_partition(struct kafka *k, rd_kafka_t *rk, const char *topic, int32_t partition)
{
    if (grow_array((void **)&k->held, &k->cap_held, k->n_held + 1, sizeof(*k->held), 16) != 0)
        goto fail;
    rd_kafka_queue_t *queue = rd_kafka_queue_get_partition(rk, topic, partition);
    char *name = strdup(topic);
    if (!queue || !name) {
        if (queue)
            rd_kafka_queue_destroy(queue);
        free(name);
        goto fail;
    }
    int lane = lanes_index(k->lanes, topic);
    if (lane < 0)
        log_warn(k->log, "kafka", "%s: over %d lanes; served with the first lane", topic,
                 LANES_MAX);
    rd_kafka_queue_forward(queue, NULL);
    rd_kafka_queue_io_event_enable(queue, k->consumer_pipe[1], "1", 1);
    k->held[k->n_held++] = (struct held_queue){queue, name, partition, lane < 0 ? 0 : lane, NULL};
    return;
fail:
    log_warn(k->log, "kafka", "%s[%" PRId32 "]: out of memory; served even while paused", topic,
             partition);
}

/* Give a partition's queue back (its unserved messages go with it). */
static void held_queue_destroy(struct held_queue *h)
{
    if (h->peeked)
        rd_kafka_message_destroy(h->peeked);
    rd_kafka_queue_io_event_enable(h->queue, -1, NULL, 0);
    rd_kafka_queue_destroy(h->queue);
    free(h->topic);
}

static void release_partition(struct kafka *k, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < k->n_held; i++) {
        /* `topic` is the caller's, alive (the analyzer takes it for a freed copy). */
        // NOLINTNEXTLINE(clang-analyzer-unix.Malloc)
        if (k->held[i].partition != partition || strcmp(k->held[i].topic, topic) != 0)
            continue;
        held_queue_destroy(&k->held[i]);
        k->held[i] = k->held[--k->n_held];
        return;
    }
}

static void release_all_partitions(struct kafka *k)
{
    for (size_t i = 0; i < k->n_held; i++)
        held_queue_destroy(&k->held[i]);
    k->n_held = 0;
}

/* librdkafka's list as plain partitions (offsets unset); NULL when empty or
 * out of memory. */
static struct kafka_partition *plain_partitions(const rd_kafka_topic_partition_list_t *parts)
{
    struct kafka_partition *plain =
        parts->cnt > 0 ? calloc((size_t)parts->cnt, sizeof(*plain)) : NULL;
    for (int i = 0; plain && i < parts->cnt; i++)
        plain[i] = (struct kafka_partition){parts->elems[i].topic, parts->elems[i].partition,
                                            KAFKA_OFFSET_NONE};
    return plain;
}

static void assigned(struct kafka *k, rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts)
{
    for (int i = 0; i < parts->cnt; i++)
        hold_partition(k, rk, parts->elems[i].topic, parts->elems[i].partition);
    k->joined = true;
    if (!k->fatal)
        k->problem[0] = '\0';
    log_info(k->log, "kafka", "assigned %d partition(s)%s", parts->cnt,
             k->paused ? " (paused: at capacity)" : "");
    struct kafka_partition *plain = plain_partitions(parts);
    if (parts->cnt > 0 && !plain)
        log_error(k->log, "kafka", "out of memory: %d assigned partition(s) not reported",
                  parts->cnt);
    else if (k->events.on_assigned)
        k->events.on_assigned(k->ctx, plain, (size_t)parts->cnt);
    free(plain);
}

/* Let the owner cancel the partitions' jobs and say what is done, then commit
 * it before letting go, unless the partitions were already lost (then
 * another member may own them). */
static void revoking(struct kafka *k, rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts)
{
    struct kafka_partition *plain = plain_partitions(parts);
    if (parts->cnt > 0 && !plain)
        log_error(k->log, "kafka", "out of memory: revoking %d partition(s) without a commit",
                  parts->cnt);
    if (plain && k->events.on_revoking)
        k->events.on_revoking(k->ctx, plain, (size_t)parts->cnt);
    rd_kafka_topic_partition_list_t *valid = rd_kafka_topic_partition_list_new(parts->cnt);
    for (int i = 0; plain && i < parts->cnt; i++)
        if (plain[i].offset >= 0)
            rd_kafka_topic_partition_list_add(valid, plain[i].topic, plain[i].partition)->offset =
                plain[i].offset;
    bool lost = rd_kafka_assignment_lost(rk);
    if (lost && !k->fatal)
        snprintf(k->problem, sizeof(k->problem),
                 "the group took the partitions away (evicted); rejoining");
    if (valid->cnt > 0 && !lost) {
        rd_kafka_resp_err_t cerr = rd_kafka_commit(rk, valid, 0);
        if (cerr)
            log_warn(k->log, "kafka", "commit on revocation failed: %s", rd_kafka_err2str(cerr));
    }
    rd_kafka_topic_partition_list_destroy(valid);
    free(plain);
    for (int i = 0; i < parts->cnt; i++)
        release_partition(k, parts->elems[i].topic, parts->elems[i].partition);
}

static void rebalanced(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                       rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    struct kafka *k = opaque;
    bool cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    rd_kafka_error_t *error = NULL;

    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        if (cooperative)
            error = rd_kafka_incremental_assign(rk, parts);
        else
            rd_kafka_assign(rk, parts);
        assigned(k, rk, parts);
    } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        revoking(k, rk, parts);
        if (cooperative)
            error = rd_kafka_incremental_unassign(rk, parts);
        else
            rd_kafka_assign(rk, NULL);
        log_info(k->log, "kafka", "revoked %d partition(s)", parts->cnt);
    } else {
        log_warn(k->log, "kafka", "rebalance error: %s", rd_kafka_err2str(err));
        release_all_partitions(k);
        rd_kafka_assign(rk, NULL);
    }
    if (error) {
        log_error(k->log, "kafka", "rebalance: %s", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    }
}

static void serve_consumer(struct kafka *k);

static void consumer_more(struct loop *loop, void *ctx)
{
    struct kafka *k = ctx;
    (void)loop;
    serve_consumer(k);
}

void kafka_consumer_wake(struct kafka *k)
{
    if (!loop_timer_pending(k->loop, k->consumer_more))
        k->consumer_more = loop_timer_after(k->loop, 0, consumer_more, k);
}

/* Hand a message on as a plain one, its headers with it. */
struct kafka_message kafka_plain_message(const rd_kafka_message_t *msg)
{
    rd_kafka_timestamp_type_t ts_type;
    int64_t ts = rd_kafka_message_timestamp(msg, &ts_type);
    return (struct kafka_message){
        .topic = rd_kafka_topic_name(msg->rkt),
        .partition = msg->partition,
        .offset = msg->offset,
        .timestamp_ms = ts > 0 ? ts : 0,
        .key = msg->key,
        .key_len = msg->key_len,
        .payload = msg->payload,
        .len = msg->len,
    };
}

static void deliver_message(struct kafka *k, const rd_kafka_message_t *msg)
{
    rd_kafka_headers_t *hdrs = NULL;
    size_t n = 0;
    if (rd_kafka_message_headers(msg, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR)
        n = rd_kafka_header_cnt(hdrs);
    struct kafka_header *headers = n > 0 ? calloc(n, sizeof(*headers)) : NULL;
    if (n > 0 && !headers) {
        log_warn(k->log, "kafka",
                 "out of memory: the headers of %s[%" PRId32 "]@%" PRId64 " are passed over",
                 rd_kafka_topic_name(msg->rkt), msg->partition, msg->offset);
        n = 0;
    }
    for (size_t i = 0; i < n; i++) {
        const void *value = NULL;
        rd_kafka_header_get_all(hdrs, i, &headers[i].name, &value, &headers[i].len);
        headers[i].value = value;
    }
    struct kafka_message plain = kafka_plain_message(msg);
    plain.headers = headers;
    plain.n_headers = n;
    k->events.on_message(k->ctx, &plain);
    free(headers);
}

/* Hand one message or event on; false if the queue gave none. */
static bool serve_one(struct kafka *k, rd_kafka_message_t *msg)
{
    if (!msg)
        return false;
    if (!msg->err)
        deliver_message(k, msg);
    if (msg->err == RD_KAFKA_RESP_ERR__FATAL)
        kafka_consumer_fatal(k);
    if (msg->err == RD_KAFKA_RESP_ERR__MAX_POLL_EXCEEDED && !k->fatal)
        snprintf(k->problem, sizeof(k->problem), "evicted from the group: %s",
                 rd_kafka_message_errstr(msg));
    if (msg->err && msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
        log_warn(k->log, "kafka", "consumer: %s%s%s", rd_kafka_message_errstr(msg),
                 msg->rkt ? " on " : "", msg->rkt ? rd_kafka_topic_name(msg->rkt) : "");
    rd_kafka_message_destroy(msg);
    return true;
}

/* Whether a held queue has a message: its next one is taken out (peeked),
 * since a queue's length can read 0 while a message is there. Events that
 * are not messages (errors) are served on the way. */
static bool held_has_message(struct kafka *k, struct held_queue *h)
{
    while (!h->peeked) {
        rd_kafka_message_t *msg = rd_kafka_consume_queue(h->queue, 0);
        if (!msg)
            return false;
        if (msg->err)
            serve_one(k, msg);
        else
            h->peeked = msg;
    }
    return true;
}

/* Serve one message: from the lane whose turn it is by weighted round robin
 * among the lanes with messages held (lanes.h), then round robin over that
 * lane's partitions. False when no partition holds a message. */
static bool serve_next(struct kafka *k)
{
    bool has_work[LANES_MAX] = {false};
    for (size_t i = 0; i < k->n_held; i++)
        if (held_has_message(k, &k->held[i]))
            has_work[k->held[i].lane] = true;
    int lane = lanes_pick(k->lanes, has_work);
    for (size_t i = 0; lane >= 0 && i < k->n_held; i++) {
        struct held_queue *h = &k->held[(k->next_held + i) % k->n_held];
        if (h->lane == lane && h->peeked) {
            k->next_held = (k->next_held + i + 1) % k->n_held;
            rd_kafka_message_t *msg = h->peeked;
            h->peeked = NULL;
            return serve_one(k, msg);
        }
    }
    return false;
}

/* Serve up to one batch: the consumer queue's events (rebalances, errors,
 * statistics) always, then, unless paused, the partitions' messages, lane
 * by lane. The io-event fd only fires when a queue goes from empty to
 * non-empty, so a full batch reschedules, and so does kafka_resume(). */
static void serve_consumer(struct kafka *k)
{
    int n = 0;
    while (n < KAFKA_POLL_BATCH && serve_one(k, rd_kafka_consumer_poll(k->consumer, 0)))
        n++;
    while (n < KAFKA_POLL_BATCH && !k->paused && !kafka_producer_backlogged(k) && serve_next(k))
        n++;
    if (n == KAFKA_POLL_BATCH)
        kafka_consumer_wake(k);
}

static void poll_due(struct loop *loop, void *ctx)
{
    struct kafka *k = ctx;
    k->poll_timer = loop_timer_after(loop, KAFKA_POLL_EVERY_MS, poll_due, k);
    serve_consumer(k);
}

void kafka_pipe_drain(int fd)
{
    char buf[64];
    while (read(fd, buf, sizeof(buf)) > 0)
        ;
}

static void consumer_readable(struct loop *loop, int fd, unsigned events, void *ctx)
{
    (void)loop;
    (void)events;
    kafka_pipe_drain(fd);
    serve_consumer(ctx);
}

int kafka_consumer_open(struct kafka *k, char *err, size_t err_len)
{
    rd_kafka_conf_t *conf = kafka_base_conf(k, err, err_len);
    if (!conf)
        return -1;
    rd_kafka_conf_set_rebalance_cb(conf, rebalanced);
    rd_kafka_conf_set_stats_cb(conf, consumer_stats);
    if (kafka_group_conf(k, conf, err, err_len) != 0) {
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    char why[512];
    k->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof(why));
    if (!k->consumer) {
        rd_kafka_conf_destroy(conf);
        snprintf(err, err_len, "kafka consumer: %s", why);
        return -1;
    }
    rd_kafka_poll_set_consumer(k->consumer);
    k->consumer_queue = rd_kafka_queue_get_consumer(k->consumer);
    if (kafka_wake_loop_on(k, k->consumer_queue, k->consumer_pipe, consumer_readable)) {
        snprintf(err, err_len, "kafka: cannot watch queues: %s", strerror(errno));
        return -1;
    }
    k->poll_timer = loop_timer_after(k->loop, KAFKA_POLL_EVERY_MS, poll_due, k);
    return 0;
}

int kafka_subscribe(struct kafka *k, char *err, size_t err_len)
{
    rd_kafka_topic_partition_list_t *topics =
        rd_kafka_topic_partition_list_new((int)k->cfg->kafka.n_jobs_topics);
    for (size_t i = 0; i < k->cfg->kafka.n_jobs_topics; i++)
        rd_kafka_topic_partition_list_add(topics, k->cfg->kafka.jobs_topics[i],
                                          RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t rerr = rd_kafka_subscribe(k->consumer, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (rerr) {
        snprintf(err, err_len, "subscribe: %s", rd_kafka_err2str(rerr));
        return -1;
    }
    k->subscribed = true;
    return 0;
}

void kafka_unsubscribe(struct kafka *k)
{
    if (!k->subscribed)
        return;
    k->subscribed = false;
    k->joined = false;
    rd_kafka_resp_err_t err = rd_kafka_unsubscribe(k->consumer);
    if (err)
        log_warn(k->log, "kafka", "unsubscribe: %s", rd_kafka_err2str(err));
}

const char *kafka_problem(const struct kafka *k)
{
    return k->problem[0] ? k->problem : NULL;
}

void kafka_pause(struct kafka *k)
{
    k->paused = true;
}

void kafka_resume(struct kafka *k)
{
    if (!k->paused)
        return;
    k->paused = false;
    kafka_consumer_wake(k);
}

bool kafka_paused(const struct kafka *k)
{
    return k->paused;
}

int kafka_commit(struct kafka *k, const struct kafka_partition *offsets, size_t n, bool sync)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new((int)n);
    for (size_t i = 0; i < n; i++)
        rd_kafka_topic_partition_list_add(list, offsets[i].topic, offsets[i].partition)->offset =
            offsets[i].offset;
    rd_kafka_resp_err_t err = rd_kafka_commit(k->consumer, list, sync ? 0 : 1);
    rd_kafka_topic_partition_list_destroy(list);
    return err;
}

bool kafka_joined(const struct kafka *k)
{
    return k->joined;
}

void kafka_consumer_leave(struct kafka *k)
{
    if (!k->consumer)
        return;
    rd_kafka_resp_err_t err = rd_kafka_consumer_close(k->consumer);
    if (err)
        log_warn(k->log, "kafka", "consumer close: %s", rd_kafka_err2str(err));
}

void kafka_consumer_free(struct kafka *k)
{
    release_all_partitions(k);
    free(k->held);
    loop_timer_cancel(k->loop, k->consumer_more);
    loop_timer_cancel(k->loop, k->poll_timer);
    kafka_client_free(k, k->consumer, k->consumer_queue, k->consumer_pipe);
}
