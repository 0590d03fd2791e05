/* kafka.c — the two clients' setup and teardown, the idempotent producer
 * (produce, delivery reports, replacement after a fatal error), and the
 * error codes' meaning. The consumer group is in kafka_consumer.c. */
#include "kafka.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "kafka_private.h"

/* What a produced message carries to its delivery report. */
struct delivery {
    kafka_delivery_fn fn;
    void *opaque;
};

/* Errors that may pass: the client's own (connections, timeouts, queues,
 * purges, a producer being replaced) and the broker's retriable ones, or
 * those about the whole client rather than one topic (its credentials, its
 * cluster rights), which an operator fixes without losing a message. */
static const rd_kafka_resp_err_t transient_errors[] = {
    RD_KAFKA_RESP_ERR__DESTROY,
    RD_KAFKA_RESP_ERR__FAIL,
    RD_KAFKA_RESP_ERR__TRANSPORT,
    RD_KAFKA_RESP_ERR__CRIT_SYS_RESOURCE,
    RD_KAFKA_RESP_ERR__RESOLVE,
    RD_KAFKA_RESP_ERR__MSG_TIMED_OUT,
    RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN,
    RD_KAFKA_RESP_ERR__TIMED_OUT,
    RD_KAFKA_RESP_ERR__QUEUE_FULL,
    RD_KAFKA_RESP_ERR__ISR_INSUFF,
    RD_KAFKA_RESP_ERR__NODE_UPDATE,
    RD_KAFKA_RESP_ERR__SSL,
    RD_KAFKA_RESP_ERR__WAIT_COORD,
    RD_KAFKA_RESP_ERR__IN_PROGRESS,
    RD_KAFKA_RESP_ERR__PREV_IN_PROGRESS,
    RD_KAFKA_RESP_ERR__STATE,
    RD_KAFKA_RESP_ERR__AUTHENTICATION,
    RD_KAFKA_RESP_ERR__OUTDATED,
    RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE,
    RD_KAFKA_RESP_ERR__WAIT_CACHE,
    RD_KAFKA_RESP_ERR__INTR,
    RD_KAFKA_RESP_ERR__RETRY,
    RD_KAFKA_RESP_ERR__PURGE_QUEUE,
    RD_KAFKA_RESP_ERR__PURGE_INFLIGHT,
    RD_KAFKA_RESP_ERR__FATAL,
    RD_KAFKA_RESP_ERR__INCONSISTENT,
    RD_KAFKA_RESP_ERR__GAPLESS_GUARANTEE,
    RD_KAFKA_RESP_ERR__UNKNOWN_BROKER,
    RD_KAFKA_RESP_ERR__FENCED,
    RD_KAFKA_RESP_ERR_UNKNOWN,
    RD_KAFKA_RESP_ERR_INVALID_MSG, /* a corrupt batch: Kafka marks it retriable */
    RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE,
    RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
    RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
    RD_KAFKA_RESP_ERR_BROKER_NOT_AVAILABLE,
    RD_KAFKA_RESP_ERR_REPLICA_NOT_AVAILABLE,
    RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION,
    RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS,
    RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE,
    RD_KAFKA_RESP_ERR_NOT_COORDINATOR,
    RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
    RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND,
    RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED,
    RD_KAFKA_RESP_ERR_UNSUPPORTED_SASL_MECHANISM,
    RD_KAFKA_RESP_ERR_ILLEGAL_SASL_STATE,
    RD_KAFKA_RESP_ERR_UNSUPPORTED_VERSION,
    RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
    RD_KAFKA_RESP_ERR_DUPLICATE_SEQUENCE_NUMBER,
    RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH,
    RD_KAFKA_RESP_ERR_CONCURRENT_TRANSACTIONS,
    RD_KAFKA_RESP_ERR_OPERATION_NOT_ATTEMPTED,
    RD_KAFKA_RESP_ERR_KAFKA_STORAGE_ERROR,
    RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED,
    RD_KAFKA_RESP_ERR_UNKNOWN_PRODUCER_ID,
    RD_KAFKA_RESP_ERR_FETCH_SESSION_ID_NOT_FOUND,
    RD_KAFKA_RESP_ERR_INVALID_FETCH_SESSION_EPOCH,
    RD_KAFKA_RESP_ERR_LISTENER_NOT_FOUND,
    RD_KAFKA_RESP_ERR_FENCED_LEADER_EPOCH,
    RD_KAFKA_RESP_ERR_UNKNOWN_LEADER_EPOCH,
    RD_KAFKA_RESP_ERR_OFFSET_NOT_AVAILABLE,
    RD_KAFKA_RESP_ERR_PREFERRED_LEADER_NOT_AVAILABLE,
    RD_KAFKA_RESP_ERR_THROTTLING_QUOTA_EXCEEDED,
};

enum kafka_error kafka_error_kind(int err)
{
    switch ((rd_kafka_resp_err_t)err) {
    case RD_KAFKA_RESP_ERR_NO_ERROR:
        return KAFKA_OK;
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
        return KAFKA_ERR_TOO_LARGE;
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
        return KAFKA_ERR_INVALID;
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
        return KAFKA_ERR_NO_TOPIC;
    case RD_KAFKA_RESP_ERR__NO_OFFSET:
        return KAFKA_ERR_NO_OFFSET;
    default:
        break;
    }
    for (size_t i = 0; i < sizeof(transient_errors) / sizeof(transient_errors[0]); i++)
        if ((rd_kafka_resp_err_t)err == transient_errors[i])
            return KAFKA_ERR_OTHER;
    return KAFKA_ERR_REFUSED;
}

const char *kafka_error_str(int err)
{
    return rd_kafka_err2str((rd_kafka_resp_err_t)err);
}

/* A recurring librdkafka error is said once, then summed up at most this
 * often while it goes on. */
#define KAFKA_REPEAT_WINDOW_MS 30000
/* librdkafka's log levels are syslog's: 7 is debug. */
#define RDKAFKA_LEVEL_DEBUG 7

static void librdkafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    const struct kafka *k = rd_kafka_opaque(rk);
    /* A broker's failure is logged as FAIL and also reported to
     * librdkafka_error() (with its code): said there, once. */
    if (level < RDKAFKA_LEVEL_DEBUG && strcmp(fac, "FAIL") == 0)
        return;
    enum log_level lvl = level <= 3   ? LOG_ERROR
                         : level <= 4 ? LOG_WARN
                         : level <= 6 ? LOG_INFO
                                      : LOG_DEBUG;
    log_at(k->log, lvl, "rdkafka", "%s: %s", fac, buf);
}

static void producer_replace(struct loop *loop, void *ctx);

/* Say the summaries of errors that went on (log_repeats.h) that are due. */
static void say_repeats(struct kafka *k, int64_t now_ms)
{
    int err;
    unsigned long count;
    char last[LOG_REPEATS_TEXT_MAX];
    while (log_repeats_due(&k->repeats, now_ms, &err, &count, last, sizeof(last)))
        log_warn(k->log, "kafka", "%s: still failing, %lu more time(s) in %d s; the last: %s",
                 rd_kafka_err2name((rd_kafka_resp_err_t)err), count, KAFKA_REPEAT_WINDOW_MS / 1000,
                 last);
}

static void repeats_due(struct loop *loop, void *ctx)
{
    struct kafka *k = ctx;
    say_repeats(k, clock_mono_ms());
    int64_t next = log_repeats_next_due(&k->repeats);
    if (next >= 0)
        k->repeats_timer = loop_timer_after(loop, next - clock_mono_ms(), repeats_due, k);
}

/* An error librdkafka retries itself: said the first time, then counted. */
static void say_error(struct kafka *k, int err, const char *reason)
{
    int64_t now = clock_mono_ms();
    if (log_repeats_note(&k->repeats, err, reason, now)) {
        log_warn(k->log, "kafka", "%s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
        return;
    }
    int64_t next = log_repeats_next_due(&k->repeats);
    if (!k->closing && next >= 0 && !loop_timer_pending(k->loop, k->repeats_timer))
        k->repeats_timer = loop_timer_after(k->loop, next - now, repeats_due, k);
}

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
        if (rk == k->producer && !k->closing && !loop_timer_pending(k->loop, k->replace_producer))
            k->replace_producer = loop_timer_after(k->loop, 0, producer_replace, k);
        if (rk != k->producer)
            kafka_consumer_fatal(k);
        return;
    }
    if (err == RD_KAFKA_RESP_ERR__AUTHENTICATION && !k->joined && k->events.on_auth_failed) {
        if (!k->auth_failed) {
            k->auth_failed = true;
            k->events.on_auth_failed(k->ctx, reason);
        }
        return;
    }
    /* Transport errors are retried by librdkafka itself. */
    say_error(k, err, reason);
}

void kafka_consumer_fatal(struct kafka *k)
{
    char why[512];
    if (k->fatal || !k->consumer)
        return;
    rd_kafka_resp_err_t orig = rd_kafka_fatal_error(k->consumer, why, sizeof(why));
    k->fatal = true;
    snprintf(k->problem, sizeof(k->problem), "fatal consumer error %s: %.200s",
             rd_kafka_err2name(orig), why);
    if (k->events.on_consumer_fatal)
        k->events.on_consumer_fatal(k->ctx);
}

/* A header's value as text in out (cut to fit), "" when absent. */
static void header_text(const rd_kafka_message_t *msg, const char *name, char *out, size_t cap)
{
    rd_kafka_headers_t *hdrs = NULL;
    const void *value = NULL;
    size_t len = 0;
    out[0] = '\0';
    if (rd_kafka_message_headers(msg, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        rd_kafka_header_get_last(hdrs, name, &value, &len) == RD_KAFKA_RESP_ERR_NO_ERROR && value)
        snprintf(out, cap, "%.*s", (int)(len < cap ? len : cap - 1), (const char *)value);
}

static void delivered(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    const struct kafka *k = opaque;
    struct delivery *d = msg->_private;
    (void)rk;
    if (d) {
        /* Its owner logs what it does about it. */
        if (msg->err)
            log_debug(k->log, "kafka", "delivery to %s failed: %s", rd_kafka_topic_name(msg->rkt),
                      rd_kafka_err2str(msg->err));
        d->fn(d->opaque, (int)msg->err);
        free(d);
    } else if (msg->err && k->events.on_lost) {
        char type[16], id[256];
        header_text(msg, "llmq-type", type, sizeof(type));
        header_text(msg, "llmq-id", id, sizeof(id));
        k->events.on_lost(k->ctx, rd_kafka_topic_name(msg->rkt), type, id, (int)msg->err);
    } else if (msg->err) {
        log_warn(k->log, "kafka", "delivery to %s failed: %s", rd_kafka_topic_name(msg->rkt),
                 rd_kafka_err2str(msg->err));
    }
}

int kafka_set_conf(rd_kafka_conf_t *conf, const char *name, const char *value, char *err,
                   size_t err_len)
{
    char why[256];
    if (rd_kafka_conf_set(conf, name, value, why, sizeof(why)) != RD_KAFKA_CONF_OK) {
        snprintf(err, err_len, "kafka property %s: %s", name, why);
        return -1;
    }
    return 0;
}

/* Runs first in each of librdkafka's own threads: SCHED_BATCH, so that a
 * thread the loop wakes (a produced reply wakes the broker thread) does not
 * preempt the loop on a shared core; it runs when the loop waits, and then
 * takes every reply queued meanwhile in one go. With the worker on one core
 * that cut the context switches per job from ~3 to 0.4 and the CPU per job
 * by a fifth (FINDINGS "The worker's cost per job"); with a spare core the woken
 * thread runs there at once, as before. A refusal (a seccomp profile) leaves
 * the thread as it was: only the cost changes, never what is delivered. */
static rd_kafka_resp_err_t thread_yields_to_loop(rd_kafka_t *rk, rd_kafka_thread_type_t type,
                                                 const char *name, void *opaque)
{
    (void)rk;
    (void)type;
    (void)name;
    (void)opaque;
    struct sched_param param = {.sched_priority = 0};
    pthread_setschedparam(pthread_self(), SCHED_BATCH, &param);
    return RD_KAFKA_RESP_ERR_NO_ERROR;
}

/* The client's interceptors are added as it is made (librdkafka's rule). */
static rd_kafka_resp_err_t add_thread_policy(rd_kafka_t *rk, const rd_kafka_conf_t *conf,
                                             void *opaque, char *err, size_t err_len)
{
    (void)conf;
    (void)err;
    (void)err_len;
    return rd_kafka_interceptor_add_on_thread_start(rk, "llmq-threads", thread_yields_to_loop,
                                                    opaque);
}

/* The user's pass-through properties win over everything but the settings
 * the worker's guarantees need (set after this). */
rd_kafka_conf_t *kafka_base_conf(struct kafka *k, char *err, size_t err_len)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_opaque(conf, k);
    rd_kafka_conf_interceptor_add_on_new(conf, "llmq-threads", add_thread_policy, NULL);
    rd_kafka_conf_set_log_cb(conf, librdkafka_log);
    rd_kafka_conf_set_error_cb(conf, librdkafka_error);
    /* Consumer lag for the metrics; kafka.properties may change the period. */
    if (kafka_set_conf(conf, "bootstrap.servers", k->cfg->kafka.brokers, err, err_len) ||
        kafka_set_conf(conf, "client.id", k->cfg->worker_id, err, err_len) ||
        kafka_set_conf(conf, "statistics.interval.ms", "5000", err, err_len))
        goto fail;
    for (size_t i = 0; i < k->cfg->kafka.n_properties; i++) {
        const struct config_kv *kv = &k->cfg->kafka.properties[i];
        if (kafka_set_conf(conf, kv->key, kv->value, err, err_len))
            goto fail;
    }
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

bool kafka_producer_backlogged(struct kafka *k)
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

static void producer_readable(struct loop *loop, int fd, unsigned events, void *ctx)
{
    struct kafka *k = ctx;
    char buf[64];
    (void)loop;
    (void)events;
    while (read(fd, buf, sizeof(buf)) > 0)
        ;
    while (rd_kafka_poll(k->producer, 0) > 0)
        ;
    if (k->backlogged && !kafka_producer_backlogged(k))
        kafka_consumer_wake(k);
}

int kafka_wake_loop_on(struct kafka *k, rd_kafka_queue_t *queue, int pipefd[2], loop_fd_fn fn)
{
    if (pipe2(pipefd, O_NONBLOCK | O_CLOEXEC) != 0)
        return -1;
    rd_kafka_queue_io_event_enable(queue, pipefd[1], "1", 1);
    return loop_watch(k->loop, pipefd[0], LOOP_READ, fn, k);
}

bool kafka_user_property(const struct kafka *k, const char *name)
{
    for (size_t i = 0; i < k->cfg->kafka.n_properties; i++)
        if (strcmp(k->cfg->kafka.properties[i].key, name) == 0)
            return true;
    return false;
}

static rd_kafka_t *producer_new(struct kafka *k, char *err, size_t err_len)
{
    rd_kafka_conf_t *conf = kafka_base_conf(k, err, err_len);
    if (!conf)
        return NULL;
    rd_kafka_conf_set_dr_msg_cb(conf, delivered);
    /* linger.ms 0 (librdkafka's default is 5): a chunk leaves at once; under
     * load messages still batch behind the requests in flight. Measured on
     * loopback, linger.ms 1 added 1.2 ms to the first chunk (tests/bench).
     * kafka.properties may set it (or its alias) to trade latency for fewer
     * produce requests. */
    bool user_linger =
        kafka_user_property(k, "linger.ms") || kafka_user_property(k, "queue.buffering.max.ms");
    /* queue.buffering.max.messages 250 per slot, at least 4000 (librdkafka's
     * 100000 held up to ~10 MiB of replies while the broker was slower than
     * the worker): intake pauses at half of it (kafka_producer_backlogged),
     * so RSS stays flat (FINDINGS.md, "The worker's cost per job, cut"). A
     * longer broker stall fills it sooner: token-by-token chunks beyond it
     * are lost and counted; kafka.properties can raise it. */
    char max_queued[32];
    int slots = k->cfg->llama.slots;
    snprintf(max_queued, sizeof(max_queued), "%d", slots < 16 ? 4000 : 250 * slots);
    bool user_queue = kafka_user_property(k, "queue.buffering.max.messages");
    /* allow.auto.create.topics false: a job's reply_to (under a prefix entry
     * of the allowlist) can never create a topic on a broker that allows it. */
    if (kafka_set_conf(conf, "enable.idempotence", "true", err, err_len) ||
        kafka_set_conf(conf, "allow.auto.create.topics", "false", err, err_len) ||
        (!user_linger && kafka_set_conf(conf, "linger.ms", "0", err, err_len)) ||
        (!user_queue &&
         kafka_set_conf(conf, "queue.buffering.max.messages", max_queued, err, err_len))) {
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

/* The producer's queue marks: half and a quarter of queue.buffering.max.messages. */
static void producer_marks(struct kafka *k)
{
    char value[64];
    size_t len = sizeof(value);
    long max_queued = 100000; /* librdkafka's default queue.buffering.max.messages */
    if (rd_kafka_conf_get(rd_kafka_conf(k->producer), "queue.buffering.max.messages", value,
                          &len) == RD_KAFKA_CONF_OK)
        max_queued = strtol(value, NULL, 10);
    k->outq_high = (int)(max_queued / 2);
    k->outq_low = (int)(max_queued / 4);
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
    log_repeats_init(&k->repeats, KAFKA_REPEAT_WINDOW_MS);
    k->consumer_pipe[0] = k->consumer_pipe[1] = -1;
    k->producer_pipe[0] = k->producer_pipe[1] = -1;
    k->control_pipe[0] = k->control_pipe[1] = -1;
    k->lanes = lanes_new(cfg->kafka.lanes, cfg->kafka.n_lanes);
    if (!k->lanes) {
        snprintf(err, err_len, "out of memory");
        goto fail;
    }

    k->producer = producer_new(k, err, err_len);
    if (!k->producer)
        goto fail;
    producer_marks(k);
    k->producer_queue = rd_kafka_queue_get_main(k->producer);
    if (kafka_wake_loop_on(k, k->producer_queue, k->producer_pipe, producer_readable)) {
        snprintf(err, err_len, "kafka: cannot watch queues: %s", strerror(errno));
        goto fail;
    }
    if (kafka_consumer_open(k, err, err_len) != 0)
        goto fail;
    return k;
fail:
    kafka_close(k, 0);
    return NULL;
}

void kafka_client_free(struct kafka *k, rd_kafka_t *rk, rd_kafka_queue_t *queue, int pipefd[2])
{
    if (pipefd[0] >= 0)
        loop_unwatch(k->loop, pipefd[0]);
    if (queue)
        rd_kafka_queue_destroy(queue);
    if (rk)
        rd_kafka_destroy(rk);
    for (int i = 0; i < 2; i++)
        if (pipefd[i] >= 0)
            close(pipefd[i]);
}

/* librdkafka's headers for a message to produce; NULL when there are none. */
static rd_kafka_headers_t *headers_of(const struct kafka_message *msg)
{
    if (msg->n_headers == 0)
        return NULL;
    rd_kafka_headers_t *hdrs = rd_kafka_headers_new(msg->n_headers);
    for (size_t i = 0; i < msg->n_headers; i++)
        rd_kafka_header_add(hdrs, msg->headers[i].name, -1, msg->headers[i].value,
                            (ssize_t)msg->headers[i].len);
    return hdrs;
}

int kafka_produce(struct kafka *k, const struct kafka_message *msg, kafka_delivery_fn on_delivery,
                  void *opaque)
{
    struct delivery *d = NULL;
    if (on_delivery) {
        d = malloc(sizeof(*d));
        if (!d)
            return RD_KAFKA_RESP_ERR__QUEUE_FULL;
        d->fn = on_delivery;
        d->opaque = opaque;
    }
    rd_kafka_headers_t *hdrs = headers_of(msg);
    rd_kafka_resp_err_t err = rd_kafka_producev(
        k->producer, RD_KAFKA_V_TOPIC(msg->topic), RD_KAFKA_V_KEY(msg->key, msg->key_len),
        RD_KAFKA_V_VALUE((void *)msg->payload, msg->len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
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
    kafka_consumer_leave(k);
    if (k->producer) {
        kafka_flush(k, flush_timeout_ms);
        /* Whatever is left fails now, through its delivery report, while the
         * owners of the reports still exist. */
        rd_kafka_purge(k->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_flush(k->producer, 1000);
    }
    kafka_consumer_free(k);
    kafka_control_free(k);
    loop_timer_cancel(k->loop, k->replace_producer);
    loop_timer_cancel(k->loop, k->repeats_timer);
    say_repeats(k, INT64_MAX); /* what was counted is said before the end */
    kafka_client_free(k, k->producer, k->producer_queue, k->producer_pipe);
    lanes_free(k->lanes);
    free(k);
}
