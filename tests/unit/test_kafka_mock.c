/* test_kafka_mock.c — kafka.c against librdkafka's mock cluster: a fatal
 * idempotent-producer error (a sequence desynchronization injected into the
 * first Produce request) makes kafka.c replace its producer, and every
 * message whose delivery failed is acknowledged once produced again, exactly
 * as the worker does with its replies; a partition paused and resumed goes
 * on at the next offset, never skipping or repeating one (the worker's
 * offset tracker relies on it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "kafka.h"
#include "log.h"
#include "loop.h"

#define N_MESSAGES 8
#define N_JOBS     24
#define GIVE_UP_MS 30000
/* The Kafka protocol's ApiKey of Produce (librdkafka keeps its name private). */
#define API_KEY_PRODUCE 0

struct mock {
    rd_kafka_t *rk; /* the client the mock cluster hangs off */
    rd_kafka_mock_cluster_t *cluster;
    char bootstraps[256];
    struct llmq_config cfg;
    struct loop *loop;
    struct logger log;
    FILE *log_file;
    struct kafka *kafka;
};

static const struct mock *env_source; /* read by mock_getenv during config_load only */

static char *mock_getenv(const char *name)
{
    if (strcmp(name, "LLMQ_KAFKA_BROKERS") == 0)
        return (char *)env_source->bootstraps;
    if (strcmp(name, "LLMQ_KAFKA_GROUP_ID") == 0)
        return "mock-group";
    if (strcmp(name, "LLMQ_KAFKA_JOBS_TOPICS") == 0)
        return "jobs";
    if (strcmp(name, "LLMQ_WORKER_ID") == 0)
        return "mock-worker";
    if (strcmp(name, "LLMQ_LLAMA_MODEL") == 0)
        return "unused.gguf";
    return NULL;
}

static void mock_open(struct mock *m, const struct kafka_events *events, void *ctx)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    m->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    assert_non_null(m->rk);
    m->cluster = rd_kafka_mock_cluster_new(m->rk, 1);
    assert_non_null(m->cluster);
    snprintf(m->bootstraps, sizeof(m->bootstraps), "%s",
             rd_kafka_mock_cluster_bootstraps(m->cluster));
    assert_int_equal(rd_kafka_mock_topic_create(m->cluster, "replies", 1, 1), 0);
    assert_int_equal(rd_kafka_mock_topic_create(m->cluster, "jobs", 1, 1), 0);

    env_source = m;
    if (config_load(&m->cfg, NULL, mock_getenv, err, sizeof(err)) != 0)
        fail_msg("config: %s", err);
    env_source = NULL;
    m->log_file = tmpfile();
    assert_non_null(m->log_file);
    logger_init(&m->log, LOG_INFO, false, fileno(m->log_file));
    m->loop = loop_new();
    assert_non_null(m->loop);
    m->kafka = kafka_new(m->loop, &m->cfg, &m->log, events, ctx, err, sizeof(err));
    if (!m->kafka)
        fail_msg("kafka_new: %s", err);
}

static void mock_close(struct mock *m)
{
    kafka_close(m->kafka, 2000);
    loop_free(m->loop);
    config_free(&m->cfg);
    fclose(m->log_file);
    rd_kafka_mock_cluster_destroy(m->cluster);
    rd_kafka_destroy(m->rk);
}

/* Whether the log written so far contains `needle`. */
static bool log_has(const struct mock *m, const char *needle)
{
    static char text[1 << 20];
    fflush(m->log_file);
    size_t n = (size_t)pread(fileno(m->log_file), text, sizeof(text) - 1, 0);
    text[n < sizeof(text) ? n : 0] = '\0';
    return strstr(text, needle) != NULL;
}

static void give_up(struct loop *loop, void *ctx)
{
    (void)ctx;
    loop_stop(loop);
}

/* ---- a fatal producer error ---- */

struct reply {
    struct producing *owner;
    char key[16];
    unsigned failures;
    bool acked;
};

struct producing {
    struct mock *m;
    struct reply replies[N_MESSAGES];
    unsigned acked, failures;
};

static void reply_delivered(void *opaque, rd_kafka_resp_err_t err);

static void reply_produce(struct reply *r)
{
    struct mock *m = r->owner->m;
    rd_kafka_resp_err_t err = kafka_produce(m->kafka, "replies", r->key, strlen(r->key), r->key,
                                            strlen(r->key), NULL, 0, reply_delivered, r);
    if (err) /* the old producer refuses new messages until it is replaced */
        reply_delivered(r, err);
}

static void reply_again(struct loop *loop, void *ctx)
{
    (void)loop;
    reply_produce(ctx);
}

/* What the worker does with a terminal reply: produce it again until the
 * broker has it. */
static void reply_delivered(void *opaque, rd_kafka_resp_err_t err)
{
    struct reply *r = opaque;
    struct producing *p = r->owner;
    if (err) {
        r->failures++;
        p->failures++;
        assert_non_null(loop_timer_after(p->m->loop, 100, reply_again, r));
        return;
    }
    assert_false(r->acked);
    r->acked = true;
    if (++p->acked == N_MESSAGES)
        loop_stop(p->m->loop);
}

static void ignore_message(void *ctx, rd_kafka_message_t *msg)
{
    (void)ctx;
    rd_kafka_message_destroy(msg);
}

/* Read the mock topic back: how many times each key is there. */
static void count_on_topic(const struct mock *m, const char *topic, unsigned counts[N_MESSAGES])
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", m->bootstraps, err, sizeof(err)),
                     RD_KAFKA_CONF_OK);
    assert_int_equal(rd_kafka_conf_set(conf, "group.id", "reader", err, sizeof(err)),
                     RD_KAFKA_CONF_OK);
    assert_int_equal(rd_kafka_conf_set(conf, "enable.partition.eof", "true", err, sizeof(err)),
                     RD_KAFKA_CONF_OK);
    rd_kafka_t *c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    assert_non_null(c);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, topic, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    assert_int_equal(rd_kafka_assign(c, parts), 0);
    rd_kafka_topic_partition_list_destroy(parts);
    for (int64_t end = loop_now_ms() + 10000; loop_now_ms() < end;) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(c, 200);
        if (!msg)
            continue;
        bool eof = msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF;
        if (!msg->err) {
            int i = -1;
            if (msg->key_len > 4 && sscanf((const char *)msg->key, "msg-%d", &i) == 1 && i >= 0 &&
                i < N_MESSAGES)
                counts[i]++;
        }
        rd_kafka_message_destroy(msg);
        if (eof)
            break;
    }
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
}

static void test_fatal_producer_error_replaces_producer(void **state)
{
    (void)state;
    static struct producing p;
    static struct mock m;
    memset(&p, 0, sizeof(p));
    memset(&m, 0, sizeof(m));
    p.m = &m;
    static const struct kafka_events events = {.on_message = ignore_message};
    mock_open(&m, &events, &p);

    /* The first Produce request is answered with a sequence error for the
     * head-of-line batch: librdkafka can no longer vouch for ordering and
     * raises a fatal error; the producer is unusable from then on. */
    rd_kafka_mock_push_request_errors(m.cluster, API_KEY_PRODUCE, 1,
                                      RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
    for (int i = 0; i < N_MESSAGES; i++) {
        p.replies[i].owner = &p;
        snprintf(p.replies[i].key, sizeof(p.replies[i].key), "msg-%d", i);
        reply_produce(&p.replies[i]);
    }
    struct loop_timer *guard = loop_timer_after(m.loop, GIVE_UP_MS, give_up, NULL);
    assert_int_equal(loop_run(m.loop), 0);
    loop_timer_cancel(m.loop, guard);

    assert_int_equal(p.acked, N_MESSAGES);
    assert_true(p.failures >= 1);
    assert_true(log_has(&m, "fatal producer error"));
    assert_true(log_has(&m, "producer replaced after a fatal error (1 so far)"));

    /* Each message is on the topic once: the failed request wrote nothing,
     * and the new producer wrote each message once. */
    unsigned counts[N_MESSAGES] = {0};
    count_on_topic(&m, "replies", counts);
    for (int i = 0; i < N_MESSAGES; i++)
        assert_int_equal(counts[i], 1);
    mock_close(&m);
}

/* ---- pause and resume ---- */

struct consuming {
    struct mock *m;
    int64_t next_offset; /* the offset the next message must have */
    unsigned since_pause;
    unsigned pauses;
    bool assigned;
};

static void resume_due(struct loop *loop, void *ctx)
{
    struct consuming *c = ctx;
    (void)loop;
    kafka_resume(c->m->kafka);
}

static void on_job(void *ctx, rd_kafka_message_t *msg)
{
    struct consuming *c = ctx;
    /* While paused nothing arrives; every offset comes once, in order. */
    assert_false(kafka_paused(c->m->kafka));
    assert_int_equal(msg->offset, c->next_offset);
    c->next_offset++;
    rd_kafka_message_destroy(msg);
    if (c->next_offset == N_JOBS) {
        loop_stop(c->m->loop);
        return;
    }
    /* At "capacity" every 3 messages: pause for a moment, as the worker does. */
    if (++c->since_pause == 3) {
        c->since_pause = 0;
        c->pauses++;
        kafka_pause(c->m->kafka);
        assert_non_null(loop_timer_after(c->m->loop, 30, resume_due, c));
    }
}

static void on_assigned(void *ctx, const rd_kafka_topic_partition_list_t *parts)
{
    struct consuming *c = ctx;
    c->assigned = parts->cnt > 0;
}

static void test_pause_resume_never_skips_or_repeats(void **state)
{
    (void)state;
    static struct consuming c;
    static struct mock m;
    memset(&c, 0, sizeof(c));
    memset(&m, 0, sizeof(m));
    c.m = &m;
    static const struct kafka_events events = {.on_message = on_job, .on_assigned = on_assigned};
    mock_open(&m, &events, &c);
    for (int i = 0; i < N_JOBS; i++) {
        char key[16];
        snprintf(key, sizeof(key), "job-%d", i);
        assert_int_equal(
            kafka_produce(m.kafka, "jobs", key, strlen(key), key, strlen(key), NULL, 0, NULL, NULL),
            0);
    }
    kafka_flush(m.kafka, 5000);
    assert_int_equal(kafka_outq_len(m.kafka), 0);

    char err[256];
    assert_int_equal(kafka_subscribe(m.kafka, err, sizeof(err)), 0);
    struct loop_timer *guard = loop_timer_after(m.loop, GIVE_UP_MS, give_up, NULL);
    assert_int_equal(loop_run(m.loop), 0);
    loop_timer_cancel(m.loop, guard);
    assert_true(c.assigned);
    assert_true(kafka_joined(m.kafka));
    assert_int_equal(c.next_offset, N_JOBS);
    assert_true(c.pauses >= N_JOBS / 3 - 1);

    /* A synchronous commit of the done prefix is what the group sees. */
    rd_kafka_topic_partition_list_t *offsets = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(offsets, "jobs", 0)->offset = N_JOBS;
    assert_int_equal(kafka_commit(m.kafka, offsets, true), 0);
    rd_kafka_topic_partition_list_destroy(offsets);
    mock_close(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fatal_producer_error_replaces_producer),
        cmocka_unit_test(test_pause_resume_never_skips_or_repeats),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
