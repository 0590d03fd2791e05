/* mock_kafka.h — what the unit tests on librdkafka's mock cluster share: a
 * one-broker cluster with the topics "jobs", "replies" and "dead", a
 * configuration pointing at it (replies to "replies", dead letters to
 * "dead"), a loop, a logger writing to a temporary file, and kafka.c's
 * clients on top; reading a topic and the group's committed offset back. Header-only: each test
 * program includes it once. */
#ifndef LLMQ_TEST_MOCK_KAFKA_H
#define LLMQ_TEST_MOCK_KAFKA_H

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

#include "clock.h"
#include "config.h"
#include "kafka.h"
#include "log.h"
#include "loop.h"

/* A test that has not ended by then failed. */
#define MOCK_GIVE_UP_MS 30000
/* The Kafka protocol's ApiKey of Produce (librdkafka keeps its name private). */
#define MOCK_API_KEY_PRODUCE 0

struct mock {
    rd_kafka_t *rk; /* the client the mock cluster hangs off */
    rd_kafka_mock_cluster_t *cluster;
    char bootstraps[256];
    struct llmq_config cfg;
    struct loop *loop;
    struct logger log;
    FILE *log_file;
    struct kafka *kafka;
    const char *env[4][2]; /* more variables for the configuration (set before mock_open) */
};

/* The environment the configuration is loaded with: fixed variables, the
 * mock cluster's address and m->env's, as "NAME=value" entries in `text`. */
static inline void mock_environment(const struct mock *m, char text[][320], char *envp[])
{
    static const char *const fixed[][2] = {
        {"LLMQ_KAFKA_GROUP_ID", "mock-group"}, {"LLMQ_KAFKA_JOBS_TOPICS", "jobs"},
        {"LLMQ_KAFKA_REPLY_TOPIC", "replies"}, {"LLMQ_KAFKA_DEAD_LETTER_TOPIC", "dead"},
        {"LLMQ_WORKER_ID", "mock-worker"},     {"LLMQ_LLAMA_MODEL", "unused.gguf"},
    };
    size_t n = 0;
    for (size_t i = 0; i < 4 && m->env[i][0]; i++)
        snprintf(text[n++], 320, "%s=%s", m->env[i][0], m->env[i][1]);
    snprintf(text[n++], 320, "LLMQ_KAFKA_BROKERS=%s", m->bootstraps);
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        snprintf(text[n++], 320, "%s=%s", fixed[i][0], fixed[i][1]);
    for (size_t i = 0; i < n; i++)
        envp[i] = text[i];
    envp[n] = NULL;
}

/* The cluster, the configuration, the loop and kafka.c's clients with
 * `events` and `ctx`. */
static inline void mock_open(struct mock *m, const struct kafka_events *events, void *ctx)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    m->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    assert_non_null(m->rk);
    m->cluster = rd_kafka_mock_cluster_new(m->rk, 1);
    assert_non_null(m->cluster);
    snprintf(m->bootstraps, sizeof(m->bootstraps), "%s",
             rd_kafka_mock_cluster_bootstraps(m->cluster));
    const char *topics[] = {"replies", "jobs", "dead"};
    for (size_t i = 0; i < sizeof(topics) / sizeof(topics[0]); i++)
        assert_int_equal(rd_kafka_mock_topic_create(m->cluster, topics[i], 1, 1), 0);

    char env_text[16][320];
    char *envp[17];
    mock_environment(m, env_text, envp);
    if (config_load(&m->cfg, NULL, envp, err, sizeof(err)) != 0)
        fail_msg("config: %s", err);
    m->log_file = tmpfile();
    assert_non_null(m->log_file);
    logger_init(&m->log, LOG_INFO, false, fileno(m->log_file));
    m->loop = loop_new();
    assert_non_null(m->loop);
    m->kafka = kafka_new(m->loop, &m->cfg, &m->log, events, ctx, err, sizeof(err));
    if (!m->kafka)
        fail_msg("kafka_new: %s", err);
}

/* Close kafka.c's clients (revocation runs), before what the test built on
 * them; mock_close() does it if the test did not. */
static inline void mock_close_kafka(struct mock *m)
{
    kafka_close(m->kafka, 2000);
    m->kafka = NULL;
}

static inline void mock_close(struct mock *m)
{
    if (m->kafka)
        mock_close_kafka(m);
    loop_free(m->loop);
    config_free(&m->cfg);
    fclose(m->log_file);
    rd_kafka_mock_cluster_destroy(m->cluster);
    rd_kafka_destroy(m->rk);
}

/* How many times the log written so far contains `needle`. */
static inline unsigned mock_log_count(const struct mock *m, const char *needle)
{
    static char text[1 << 20];
    fflush(m->log_file);
    size_t n = (size_t)pread(fileno(m->log_file), text, sizeof(text) - 1, 0);
    text[n < sizeof(text) ? n : 0] = '\0';
    unsigned count = 0;
    for (const char *at = strstr(text, needle); at; at = strstr(at + 1, needle))
        count++;
    return count;
}

/* Whether the log written so far contains `needle`. */
static inline bool mock_log_has(const struct mock *m, const char *needle)
{
    return mock_log_count(m, needle) > 0;
}

static inline void mock_give_up(struct loop *loop, void *ctx)
{
    (void)ctx;
    loop_stop(loop);
}

/* Run the loop until a callback stops it, or MOCK_GIVE_UP_MS passed. */
static inline void mock_run(struct mock *m)
{
    loop_timer_id guard = loop_timer_after(m->loop, MOCK_GIVE_UP_MS, mock_give_up, NULL);
    assert_int_equal(loop_run(m->loop), 0);
    loop_timer_cancel(m->loop, guard);
}

/* A consumer client of the configuration's group that does not join it:
 * it reads the group's committed offsets as another member would. */
static inline rd_kafka_t *mock_group_client(const struct mock *m)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", m->bootstraps, err, sizeof(err)),
                     RD_KAFKA_CONF_OK);
    assert_int_equal(rd_kafka_conf_set(conf, "group.id", m->cfg.kafka.group_id, err, sizeof(err)),
                     RD_KAFKA_CONF_OK);
    rd_kafka_t *c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    assert_non_null(c);
    return c;
}

/* The group's committed offset of jobs[0], read with `client` (from
 * mock_group_client); -1 when there is none or the broker did not answer
 * within timeout_ms. */
static inline int64_t mock_committed(rd_kafka_t *client, int timeout_ms)
{
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, "jobs", 0);
    int64_t offset = -1;
    if (rd_kafka_committed(client, parts, timeout_ms) == 0 && parts->elems[0].offset >= 0)
        offset = parts->elems[0].offset;
    rd_kafka_topic_partition_list_destroy(parts);
    return offset;
}

/* Keys "msg-0" .. "msg-7" that tests send and count. */
#define MOCK_N_KEYS 8

/* A mock_read_topic callback: count each key "msg-N" into `ctx`, an
 * unsigned[MOCK_N_KEYS]. */
static inline void mock_count_key(void *ctx, const rd_kafka_message_t *msg)
{
    unsigned *counts = ctx;
    int i = -1;
    if (msg->key_len > 4 && sscanf((const char *)msg->key, "msg-%d", &i) == 1 && i >= 0 &&
        i < MOCK_N_KEYS)
        counts[i]++;
}

/* Read partition 0 of `topic` from the start to its end, calling `fn` with
 * each message. Returns how many there were. */
static inline unsigned mock_read_topic(const struct mock *m, const char *topic,
                                       void (*fn)(void *ctx, const rd_kafka_message_t *msg),
                                       void *ctx)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const char *settings[][2] = {{"bootstrap.servers", m->bootstraps},
                                 {"group.id", "reader"},
                                 {"enable.partition.eof", "true"}};
    for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++)
        assert_int_equal(rd_kafka_conf_set(conf, settings[i][0], settings[i][1], err, sizeof(err)),
                         RD_KAFKA_CONF_OK);
    rd_kafka_t *c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    assert_non_null(c);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, topic, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    assert_int_equal(rd_kafka_assign(c, parts), 0);
    rd_kafka_topic_partition_list_destroy(parts);
    unsigned count = 0;
    for (int64_t end = clock_mono_ms() + 10000; clock_mono_ms() < end;) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(c, 200);
        if (!msg)
            continue;
        bool eof = msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF;
        if (!msg->err) {
            count++;
            if (fn)
                fn(ctx, msg);
        }
        rd_kafka_message_destroy(msg);
        if (eof)
            break;
    }
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    return count;
}

#endif
