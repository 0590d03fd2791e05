/* test_worker.c — the job life through worker.c and task.c, on librdkafka's
 * mock cluster with fast_fake_llama (tests/tools) as llama-server: a valid
 * job streams chunks and ends with a done reply; a job with a bad field
 * ends with an error reply and a dead-letter copy of the message as it
 * came; both offsets are committed once the replies are acknowledged, and a
 * drain stops the loop. */
#include "mock_kafka.h"

#include <libgen.h>
#include <limits.h>
#include <msgpack.h>

#include "worker.h"

/* Poll the group's committed offset this often. */
#define POLL_MS 100

struct run {
    struct mock *m;
    struct worker *w;
    rd_kafka_t *reader; /* a client of the group, for its committed offset */
    bool drained;
};

/* A job message {v: 1, id: ID, prompt: PROMPT} or, with a NULL prompt,
 * one whose prompt is a number (invalid_field). */
static void produce_job(struct mock *m, const char *id, const char *prompt)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 4);
    const char *keys[] = {"v", "id", "max_tokens", "prompt"};
    msgpack_pack_str_with_body(&pk, keys[0], 1);
    msgpack_pack_int(&pk, 1);
    msgpack_pack_str_with_body(&pk, keys[1], 2);
    msgpack_pack_str_with_body(&pk, id, strlen(id));
    msgpack_pack_str_with_body(&pk, keys[2], 10);
    msgpack_pack_int(&pk, 4);
    msgpack_pack_str_with_body(&pk, keys[3], 6);
    if (prompt)
        msgpack_pack_str_with_body(&pk, prompt, strlen(prompt));
    else
        msgpack_pack_int(&pk, 5);
    struct kafka_message msg = {
        .topic = "jobs", .key = id, .key_len = strlen(id), .payload = sb.data, .len = sb.size};
    assert_int_equal(kafka_produce(m->kafka, &msg, NULL, NULL), 0);
    msgpack_sbuffer_destroy(&sb);
}

/* Once both jobs are committed, drain: the worker stops the loop. */
static void poll_committed(struct loop *loop, void *ctx)
{
    struct run *r = ctx;
    if (mock_committed(r->reader, 2000) == 2) {
        r->drained = true;
        worker_drain(r->w);
        return;
    }
    assert_true(loop_timer_after(loop, POLL_MS, poll_committed, r));
}

/* What the reply topic holds, by llmq-type. */
struct replies {
    unsigned chunks, done, error;
    char error_of[32]; /* the id an error reply was keyed by */
};

static void count_reply(void *ctx, const rd_kafka_message_t *msg)
{
    struct replies *seen = ctx;
    rd_kafka_headers_t *hdrs = NULL;
    const void *value = NULL;
    size_t len = 0;
    if (rd_kafka_message_headers(msg, &hdrs) != 0 ||
        rd_kafka_header_get_last(hdrs, "llmq-type", &value, &len) != 0)
        fail_msg("a reply without llmq-type");
    if (len == 5 && memcmp(value, "chunk", 5) == 0)
        seen->chunks++;
    else if (len == 4 && memcmp(value, "done", 4) == 0)
        seen->done++;
    else if (len == 5 && memcmp(value, "error", 5) == 0 && ++seen->error)
        snprintf(seen->error_of, sizeof(seen->error_of), "%.*s", (int)msg->key_len,
                 (const char *)msg->key);
}

static void test_jobs_end_with_replies_and_commits(void **state)
{
    (void)state;
    static struct mock m;
    static struct run r;
    memset(&m, 0, sizeof(m));
    memset(&r, 0, sizeof(r));
    char exe[PATH_MAX], fake[PATH_MAX + 32];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    assert_true(n > 0);
    exe[n] = '\0';
    snprintf(fake, sizeof(fake), "%s/fast_fake_llama", dirname(exe));
    assert_int_equal(access(fake, X_OK), 0);
    const char *env[][2] = {{"LLMQ_LLAMA_BINARY", fake}, {"LLMQ_METRICS_LISTEN", ""}};
    memcpy(m.env, env, sizeof(env));
    static const struct kafka_events no_events = {.on_message = NULL};
    mock_open(&m, &no_events, NULL);
    assert_int_equal(rd_kafka_mock_topic_create(m.cluster, "llmq.metrics", 1, 1), 0);
    produce_job(&m, "job-ok", "hi");
    produce_job(&m, "job-bad", NULL);
    kafka_flush(m.kafka, 5000);

    char err[512];
    r.m = &m;
    r.reader = mock_group_client(&m);
    r.w = worker_new(m.loop, &m.cfg, &m.log, err, sizeof(err));
    if (!r.w)
        fail_msg("worker_new: %s", err);
    assert_int_equal(worker_start(r.w), 0);
    assert_true(loop_timer_after(m.loop, POLL_MS, poll_committed, &r));
    mock_run(&m);
    assert_true(r.drained);
    assert_true(mock_log_has(&m, "drained; stopping"));
    worker_free(r.w);
    rd_kafka_destroy(r.reader);

    struct replies seen = {0};
    mock_read_topic(&m, "replies", count_reply, &seen);
    assert_true(seen.chunks >= 1);
    assert_int_equal(seen.done, 1);
    assert_int_equal(seen.error, 1);
    assert_string_equal(seen.error_of, "job-bad");
    assert_int_equal(mock_read_topic(&m, "dead", NULL, NULL), 1);
    mock_close(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jobs_end_with_replies_and_commits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
