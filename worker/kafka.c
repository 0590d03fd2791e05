/* kafka.c — consumer group and idempotent producer, driven by the loop. */
#include "kafka.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loop.h"

/* How many consumer events one loop wake-up serves before yielding. */
#define KAFKA_POLL_BATCH 256

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
    struct loop_timer *consumer_more; /* a batch left events behind */

    struct loop_timer *replace_producer; /* a fatal error: make a new producer */
    unsigned producers_replaced;

    struct held_queue *held; /* one per assigned partition */
    size_t n_held, cap_held;
    size_t next_held; /* round-robin over the partitions */

    bool paused;
    /* The reply producer's queue is over half full: no new job is handed out
     * until it is down to a quarter, so a worker faster than its broker slows
     * down instead of dropping chunks with "Queue full". */
    bool backlogged;
    int outq_high, outq_low;
    bool joined;
    bool closing;
};

/* What a produced message carries to its delivery report. */
struct delivery {
    kafka_delivery_fn fn;
    void *opaque;
};

static void librdkafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    const struct kafka *k = rd_kafka_opaque(rk);
    enum log_level lvl = level <= 3   ? LOG_ERROR
                         : level <= 4 ? LOG_WARN
                         : level <= 6 ? LOG_INFO
                                      : LOG_DEBUG;
    log_at(k->log, lvl, "rdkafka", "%s: %s", fac, buf);
}

static void producer_replace(struct loop *loop, void *ctx);

static void librdkafka_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct kafka *k = opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char why[512];
        rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, why, sizeof(why));
        log_error(k->log, "kafka", "fatal %s error %s: %s",
                  rk == k->producer ? "producer" : "consumer", rd_kafka_err2name(orig), why);
        /* An idempotent producer can hit this after a broker restart. It
         * cannot be used again: make a new one, outside librdkafka's call. */
        if (rk == k->producer && !k->replace_producer && !k->closing)
            k->replace_producer = loop_timer_after(k->loop, 0, producer_replace, k);
        return;
    }
    /* Transport errors are retried by librdkafka itself. */
    log_warn(k->log, "kafka", "%s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

static void delivered(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    const struct kafka *k = opaque;
    struct delivery *d = msg->_private;
    (void)rk;
    if (msg->err)
        log_warn(k->log, "kafka", "delivery to %s failed: %s", rd_kafka_topic_name(msg->rkt),
                 rd_kafka_err2str(msg->err));
    if (d) {
        d->fn(d->opaque, msg->err);
        free(d);
    }
}

static int set_conf(rd_kafka_conf_t *conf, const char *name, const char *value, char *err,
                    size_t err_len)
{
    char why[256];
    if (rd_kafka_conf_set(conf, name, value, why, sizeof(why)) != RD_KAFKA_CONF_OK) {
        snprintf(err, err_len, "kafka property %s: %s", name, why);
        return -1;
    }
    return 0;
}

/* Settings common to both clients, then the user's pass-through properties,
 * which win over everything but the settings the worker's guarantees need. */
static rd_kafka_conf_t *base_conf(struct kafka *k, char *err, size_t err_len)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_opaque(conf, k);
    rd_kafka_conf_set_log_cb(conf, librdkafka_log);
    rd_kafka_conf_set_error_cb(conf, librdkafka_error);
    /* Consumer lag for the metrics; kafka.properties may change the period. */
    if (set_conf(conf, "bootstrap.servers", k->cfg->kafka.brokers, err, err_len) ||
        set_conf(conf, "client.id", k->cfg->worker_id, err, err_len) ||
        set_conf(conf, "statistics.interval.ms", "5000", err, err_len))
        goto fail;
    for (size_t i = 0; i < k->cfg->kafka.n_properties; i++) {
        const struct config_kv *kv = &k->cfg->kafka.properties[i];
        if (set_conf(conf, kv->key, kv->value, err, err_len))
            goto fail;
    }
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

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
    if (k->n_held == k->cap_held) {
        size_t cap = k->cap_held ? 2 * k->cap_held : 16;
        struct held_queue *grown = realloc(k->held, cap * sizeof(*grown));
        if (!grown)
            goto fail;
        k->held = grown;
        k->cap_held = cap;
    }
    rd_kafka_queue_t *queue = rd_kafka_queue_get_partition(rk, topic, partition);
    char *name = strdup(topic);
    if (!queue || !name) {
        if (queue)
            rd_kafka_queue_destroy(queue);
        free(name);
        goto fail;
    }
    rd_kafka_queue_forward(queue, NULL);
    rd_kafka_queue_io_event_enable(queue, k->consumer_pipe[1], "1", 1);
    k->held[k->n_held++] = (struct held_queue){queue, name, partition};
    return;
fail:
    log_warn(k->log, "kafka", "%s[%" PRId32 "]: out of memory; served even while paused", topic,
             partition);
}

/* Give a partition's queue back (its unserved messages go with it). */
static void held_queue_destroy(struct held_queue *h)
{
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
        for (int i = 0; i < parts->cnt; i++)
            hold_partition(k, rk, parts->elems[i].topic, parts->elems[i].partition);
        k->joined = true;
        log_info(k->log, "kafka", "assigned %d partition(s)%s", parts->cnt,
                 k->paused ? " (paused: at capacity)" : "");
        if (k->events.on_assigned)
            k->events.on_assigned(k->ctx, parts);
    } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        rd_kafka_topic_partition_list_t *commit = rd_kafka_topic_partition_list_copy(parts);
        for (int i = 0; i < commit->cnt; i++)
            commit->elems[i].offset = RD_KAFKA_OFFSET_INVALID;
        if (k->events.on_revoking)
            k->events.on_revoking(k->ctx, parts, commit);
        /* Commit what is done before letting go, unless the partitions were
         * already lost (then another member may own them). */
        rd_kafka_topic_partition_list_t *valid = rd_kafka_topic_partition_list_new(commit->cnt);
        for (int i = 0; i < commit->cnt; i++)
            if (commit->elems[i].offset >= 0)
                rd_kafka_topic_partition_list_add(valid, commit->elems[i].topic,
                                                  commit->elems[i].partition)
                    ->offset = commit->elems[i].offset;
        if (valid->cnt > 0 && !rd_kafka_assignment_lost(rk)) {
            rd_kafka_resp_err_t cerr = rd_kafka_commit(rk, valid, 0);
            if (cerr)
                log_warn(k->log, "kafka", "commit on revocation failed: %s",
                         rd_kafka_err2str(cerr));
        }
        rd_kafka_topic_partition_list_destroy(valid);
        rd_kafka_topic_partition_list_destroy(commit);
        for (int i = 0; i < parts->cnt; i++)
            release_partition(k, parts->elems[i].topic, parts->elems[i].partition);
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

static void drain_pipe(int fd)
{
    char buf[64];
    while (read(fd, buf, sizeof(buf)) > 0)
        ;
}

static void serve_consumer(struct kafka *k);

static void consumer_more(struct loop *loop, void *ctx)
{
    struct kafka *k = ctx;
    (void)loop;
    k->consumer_more = NULL;
    serve_consumer(k);
}

/* Hand one message or event on; false if the queue gave none. */
static bool serve_one(struct kafka *k, rd_kafka_message_t *msg)
{
    if (!msg)
        return false;
    if (msg->err) {
        if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            log_warn(k->log, "kafka", "consumer: %s%s%s", rd_kafka_message_errstr(msg),
                     msg->rkt ? " on " : "", msg->rkt ? rd_kafka_topic_name(msg->rkt) : "");
        rd_kafka_message_destroy(msg);
        return true;
    }
    k->events.on_message(k->ctx, msg);
    return true;
}

static bool producer_backlogged(struct kafka *k)
{
    int queued = rd_kafka_outq_len(k->producer);
    if (!k->backlogged && queued > k->outq_high) {
        k->backlogged = true;
        log_warn(k->log, "kafka", "%d replies wait for the broker: taking no new job until %d",
                 queued, k->outq_low);
    } else if (k->backlogged && queued <= k->outq_low) {
        k->backlogged = false;
        log_info(k->log, "kafka", "replies caught up (%d waiting): taking jobs again", queued);
    }
    return k->backlogged;
}

/* Serve up to one batch: the consumer queue's events (rebalances, errors,
 * statistics) always, then, unless paused, the partitions' messages in turn.
 * The io-event fd only fires when a queue goes from empty to non-empty, so a
 * full batch reschedules, and so does kafka_resume(). */
static void serve_consumer(struct kafka *k)
{
    int n = 0;
    while (n < KAFKA_POLL_BATCH && serve_one(k, rd_kafka_consumer_poll(k->consumer, 0)))
        n++;
    for (size_t empty = 0;
         n < KAFKA_POLL_BATCH && !k->paused && !producer_backlogged(k) && empty < k->n_held;) {
        struct held_queue *h = &k->held[k->next_held++ % k->n_held];
        if (serve_one(k, rd_kafka_consume_queue(h->queue, 0))) {
            n++;
            empty = 0;
        } else {
            empty++;
        }
    }
    if (n == KAFKA_POLL_BATCH && !k->consumer_more)
        k->consumer_more = loop_timer_after(k->loop, 0, consumer_more, k);
}

static void consumer_readable(struct loop *loop, int fd, unsigned events, void *ctx)
{
    (void)loop;
    (void)events;
    drain_pipe(fd);
    serve_consumer(ctx);
}

static void producer_readable(struct loop *loop, int fd, unsigned events, void *ctx)
{
    struct kafka *k = ctx;
    (void)loop;
    (void)events;
    drain_pipe(fd);
    while (rd_kafka_poll(k->producer, 0) > 0)
        ;
    if (k->backlogged && !producer_backlogged(k) && !k->consumer_more)
        k->consumer_more = loop_timer_after(k->loop, 0, consumer_more, k);
}

/* Route a client's event queue to a pipe the loop watches. */
static int wake_loop_on(struct kafka *k, rd_kafka_queue_t *queue, int pipefd[2], loop_fd_fn fn)
{
    if (pipe2(pipefd, O_NONBLOCK | O_CLOEXEC) != 0)
        return -1;
    rd_kafka_queue_io_event_enable(queue, pipefd[1], "1", 1);
    return loop_watch(k->loop, pipefd[0], LOOP_READ, fn, k);
}

static bool user_property(const struct kafka *k, const char *name)
{
    for (size_t i = 0; i < k->cfg->kafka.n_properties; i++)
        if (strcmp(k->cfg->kafka.properties[i].key, name) == 0)
            return true;
    return false;
}

static rd_kafka_t *producer_new(struct kafka *k, char *err, size_t err_len)
{
    rd_kafka_conf_t *conf = base_conf(k, err, err_len);
    if (!conf)
        return NULL;
    rd_kafka_conf_set_dr_msg_cb(conf, delivered);
    /* linger.ms 0 (librdkafka's default is 5): a chunk leaves at once; under
     * load messages still batch behind the requests in flight. Measured on
     * loopback, linger.ms 1 added 1.2 ms to the first chunk (tests/bench).
     * kafka.properties may set it (or its alias) to trade latency for fewer
     * produce requests. */
    bool user_linger = user_property(k, "linger.ms") || user_property(k, "queue.buffering.max.ms");
    if (set_conf(conf, "enable.idempotence", "true", err, err_len) ||
        (!user_linger && set_conf(conf, "linger.ms", "0", err, err_len))) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    char why[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        snprintf(err, err_len, "kafka producer: %s", why);
    }
    return rk;
}

/* Swap in a new producer. The old one's unsent and in-flight messages fail
 * through their delivery reports (purged), and their owners produce them
 * again — through the new producer. */
static void producer_replace(struct loop *loop, void *ctx)
{
    struct kafka *k = ctx;
    char err[512];
    (void)loop;
    k->replace_producer = NULL;
    rd_kafka_t *fresh = producer_new(k, err, sizeof(err));
    if (!fresh) {
        log_error(k->log, "kafka", "cannot replace the failed producer: %s; retrying", err);
        k->replace_producer = loop_timer_after(k->loop, 1000, producer_replace, k);
        return;
    }
    rd_kafka_t *old = k->producer;
    rd_kafka_queue_t *old_queue = k->producer_queue;
    k->producer = fresh;
    k->producer_queue = rd_kafka_queue_get_main(fresh);
    rd_kafka_queue_io_event_enable(old_queue, -1, NULL, 0);
    rd_kafka_queue_io_event_enable(k->producer_queue, k->producer_pipe[1], "1", 1);
    rd_kafka_purge(old, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_flush(old, 1000); /* serves the purged messages' reports */
    rd_kafka_queue_destroy(old_queue);
    rd_kafka_destroy(old);
    k->producers_replaced++;
    log_warn(k->log, "kafka", "producer replaced after a fatal error (%u so far)",
             k->producers_replaced);
}

struct kafka *kafka_new(struct loop *loop, const struct llmq_config *cfg, const struct logger *log,
                        const struct kafka_events *events, void *ctx, char *err, size_t err_len)
{
    struct kafka *k = calloc(1, sizeof(*k));
    if (!k) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    k->loop = loop;
    k->cfg = cfg;
    k->log = log;
    k->events = *events;
    k->ctx = ctx;
    k->consumer_pipe[0] = k->consumer_pipe[1] = -1;
    k->producer_pipe[0] = k->producer_pipe[1] = -1;

    k->producer = producer_new(k, err, err_len);
    if (!k->producer)
        goto fail;
    char why[512];
    size_t len = sizeof(why);
    long max_queued = 100000; /* librdkafka's default queue.buffering.max.messages */
    if (rd_kafka_conf_get(rd_kafka_conf(k->producer), "queue.buffering.max.messages", why, &len) ==
        RD_KAFKA_CONF_OK)
        max_queued = strtol(why, NULL, 10);
    k->outq_high = (int)(max_queued / 2);
    k->outq_low = (int)(max_queued / 4);

    rd_kafka_conf_t *cconf = base_conf(k, err, err_len);
    if (!cconf)
        goto fail;
    rd_kafka_conf_set_rebalance_cb(cconf, rebalanced);
    rd_kafka_conf_set_stats_cb(cconf, consumer_stats);
    if (set_conf(cconf, "group.id", cfg->kafka.group_id, err, err_len) ||
        set_conf(cconf, "enable.auto.commit", "false", err, err_len) ||
        set_conf(cconf, "enable.auto.offset.store", "false", err, err_len) ||
        set_conf(cconf, "auto.offset.reset", "earliest", err, err_len) ||
        set_conf(cconf, "partition.assignment.strategy", "cooperative-sticky", err, err_len)) {
        rd_kafka_conf_destroy(cconf);
        goto fail;
    }
    k->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, cconf, why, sizeof(why));
    if (!k->consumer) {
        rd_kafka_conf_destroy(cconf);
        snprintf(err, err_len, "kafka consumer: %s", why);
        goto fail;
    }
    rd_kafka_poll_set_consumer(k->consumer);
    k->consumer_queue = rd_kafka_queue_get_consumer(k->consumer);
    k->producer_queue = rd_kafka_queue_get_main(k->producer);
    if (wake_loop_on(k, k->consumer_queue, k->consumer_pipe, consumer_readable) ||
        wake_loop_on(k, k->producer_queue, k->producer_pipe, producer_readable)) {
        snprintf(err, err_len, "kafka: cannot watch queues: %s", strerror(errno));
        goto fail;
    }
    return k;
fail:
    kafka_close(k, 0);
    return NULL;
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
    return 0;
}

rd_kafka_resp_err_t kafka_produce(struct kafka *k, const char *topic, const char *key,
                                  size_t key_len, const void *payload, size_t len,
                                  const struct kafka_header *headers, size_t n_headers,
                                  kafka_delivery_fn on_delivery, void *opaque)
{
    struct delivery *d = NULL;
    if (on_delivery) {
        d = malloc(sizeof(*d));
        if (!d)
            return RD_KAFKA_RESP_ERR__QUEUE_FULL;
        d->fn = on_delivery;
        d->opaque = opaque;
    }
    rd_kafka_headers_t *hdrs = NULL;
    if (n_headers > 0) {
        hdrs = rd_kafka_headers_new(n_headers);
        for (size_t i = 0; i < n_headers; i++)
            rd_kafka_header_add(hdrs, headers[i].name, -1, headers[i].value,
                                (ssize_t)headers[i].len);
    }
    rd_kafka_resp_err_t err = rd_kafka_producev(
        k->producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, key_len),
        RD_KAFKA_V_VALUE((void *)payload, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(d), RD_KAFKA_V_END);
    if (err) {
        /* On failure the headers stay ours. */
        if (hdrs)
            rd_kafka_headers_destroy(hdrs);
        free(d);
    }
    /* On success librdkafka holds d until the delivery report frees it. */
    return err; // NOLINT(clang-analyzer-unix.Malloc)
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
    /* Messages may be waiting with no io event to come for them. */
    if (!k->consumer_more)
        k->consumer_more = loop_timer_after(k->loop, 0, consumer_more, k);
}

bool kafka_paused(const struct kafka *k)
{
    return k->paused;
}

rd_kafka_resp_err_t kafka_commit(struct kafka *k, const rd_kafka_topic_partition_list_t *offsets,
                                 bool sync)
{
    return rd_kafka_commit(k->consumer, offsets, sync ? 0 : 1);
}

int kafka_topics_missing(struct kafka *k, const char *const *topics, size_t n, int timeout_ms,
                         char *missing, size_t missing_len)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(k->producer, 1, NULL, &md, timeout_ms);
    missing[0] = '\0';
    if (err || !md) {
        snprintf(missing, missing_len, "cluster metadata: %s", rd_kafka_err2str(err));
        return -1;
    }
    int count = 0;
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        bool found = false;
        for (int t = 0; t < md->topic_cnt && !found; t++)
            found = md->topics[t].err == RD_KAFKA_RESP_ERR_NO_ERROR &&
                    strcmp(md->topics[t].topic, topics[i]) == 0;
        if (found)
            continue;
        count++;
        if (pos < missing_len)
            pos += (size_t)snprintf(missing + pos, missing_len - pos, "%s%s", count > 1 ? ", " : "",
                                    topics[i]);
    }
    rd_kafka_metadata_destroy(md);
    return count;
}

bool kafka_joined(const struct kafka *k)
{
    return k->joined;
}

int kafka_outq_len(const struct kafka *k)
{
    return rd_kafka_outq_len(k->producer);
}

void kafka_flush(struct kafka *k, int timeout_ms)
{
    rd_kafka_resp_err_t err = rd_kafka_flush(k->producer, timeout_ms);
    if (err)
        log_warn(k->log, "kafka", "flush: %d message(s) still unacknowledged after %d ms",
                 rd_kafka_outq_len(k->producer), timeout_ms);
}

void kafka_close(struct kafka *k, int flush_timeout_ms)
{
    if (!k)
        return;
    k->closing = true;
    if (k->consumer) {
        rd_kafka_resp_err_t err = rd_kafka_consumer_close(k->consumer);
        if (err)
            log_warn(k->log, "kafka", "consumer close: %s", rd_kafka_err2str(err));
    }
    if (k->producer) {
        kafka_flush(k, flush_timeout_ms);
        /* Whatever is left fails now, through its delivery report, while the
         * owners of the reports still exist. */
        rd_kafka_purge(k->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_flush(k->producer, 1000);
    }
    release_all_partitions(k);
    free(k->held);
    if (k->consumer_more)
        loop_timer_cancel(k->loop, k->consumer_more);
    if (k->replace_producer)
        loop_timer_cancel(k->loop, k->replace_producer);
    for (int i = 0; i < 2; i++) {
        int fd = i == 0 ? k->consumer_pipe[0] : k->producer_pipe[0];
        if (fd >= 0)
            loop_unwatch(k->loop, fd);
    }
    if (k->consumer_queue)
        rd_kafka_queue_destroy(k->consumer_queue);
    if (k->producer_queue)
        rd_kafka_queue_destroy(k->producer_queue);
    if (k->consumer)
        rd_kafka_destroy(k->consumer);
    if (k->producer)
        rd_kafka_destroy(k->producer);
    for (int i = 0; i < 2; i++) {
        if (k->consumer_pipe[i] >= 0)
            close(k->consumer_pipe[i]);
        if (k->producer_pipe[i] >= 0)
            close(k->producer_pipe[i]);
    }
    free(k);
}
