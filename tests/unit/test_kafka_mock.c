/* test_kafka_mock.c — kafka.c against librdkafka's mock cluster: a fatal
 * idempotent-producer error (a sequence desynchronization injected into the
 * first Produce request) makes kafka.c replace its producer, and every
 * message whose delivery failed is acknowledged once produced again, exactly
 * as the worker does with its replies; a partition paused and resumed goes
 * on at the next offset, never skipping or repeating one (the worker's
 * offset tracker relies on it); a broker that is down is said once, not
 * once per client and again by librdkafka's own logger; librdkafka's threads
 * of the worker's clients run SCHED_BATCH, the loop thread does not. */
#include <dirent.h>
#include <sched.h>

#include "mock_kafka.h"

#define N_MESSAGES MOCK_N_KEYS
#define N_JOBS     24

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

static void reply_delivered(void *opaque, int err);

static void reply_produce(struct reply *r)
{
    struct mock *m = r->owner->m;
    struct kafka_message msg = {.topic = "replies",
                                .key = r->key,
                                .key_len = strlen(r->key),
                                .payload = r->key,
                                .len = strlen(r->key)};
    int err = kafka_produce(m->kafka, &msg, reply_delivered, r);
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
static void reply_delivered(void *opaque, int err)
{
    struct reply *r = opaque;
    struct producing *p = r->owner;
    if (err) {
        r->failures++;
        p->failures++;
        assert_true(loop_timer_after(p->m->loop, 100, reply_again, r));
        return;
    }
    assert_false(r->acked);
    r->acked = true;
    if (++p->acked == N_MESSAGES)
        loop_stop(p->m->loop);
}

static void ignore_message(void *ctx, const struct kafka_message *msg)
{
    (void)ctx;
    (void)msg;
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
    rd_kafka_mock_push_request_errors(m.cluster, MOCK_API_KEY_PRODUCE, 1,
                                      RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
    for (int i = 0; i < N_MESSAGES; i++) {
        p.replies[i].owner = &p;
        snprintf(p.replies[i].key, sizeof(p.replies[i].key), "msg-%d", i);
        reply_produce(&p.replies[i]);
    }
    mock_run(&m);

    assert_int_equal(p.acked, N_MESSAGES);
    assert_true(p.failures >= 1);
    assert_true(mock_log_has(&m, "fatal producer error"));
    assert_true(mock_log_has(&m, "producer replaced after a fatal error (1 so far)"));

    /* Each message is on the topic once: the failed request wrote nothing,
     * and the new producer wrote each message once. */
    unsigned counts[N_MESSAGES] = {0};
    assert_int_equal(mock_read_topic(&m, "replies", mock_count_key, counts), N_MESSAGES);
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

static void on_job(void *ctx, const struct kafka_message *msg)
{
    struct consuming *c = ctx;
    /* While paused nothing arrives; every offset comes once, in order. */
    assert_false(kafka_paused(c->m->kafka));
    assert_int_equal(msg->offset, c->next_offset);
    /* The headers come with the message. */
    assert_int_equal(msg->n_headers, 1);
    assert_string_equal(msg->headers[0].name, "job-header");
    assert_int_equal(msg->headers[0].len, strlen(msg->topic));
    assert_memory_equal(msg->headers[0].value, msg->topic, msg->headers[0].len);
    assert_true(msg->timestamp_ms > 0);
    c->next_offset++;
    if (c->next_offset == N_JOBS) {
        loop_stop(c->m->loop);
        return;
    }
    /* At "capacity" every 3 messages: pause for a moment, as the worker does. */
    if (++c->since_pause == 3) {
        c->since_pause = 0;
        c->pauses++;
        kafka_pause(c->m->kafka);
        assert_true(loop_timer_after(c->m->loop, 30, resume_due, c));
    }
}

static void on_assigned(void *ctx, const struct kafka_partition *parts, size_t n)
{
    struct consuming *c = ctx;
    c->assigned = n == 1 && strcmp(parts[0].topic, "jobs") == 0 && parts[0].partition == 0;
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
        struct kafka_header header = {"job-header", "jobs", 4};
        struct kafka_message msg = {.topic = "jobs",
                                    .key = key,
                                    .key_len = strlen(key),
                                    .payload = key,
                                    .len = strlen(key),
                                    .headers = &header,
                                    .n_headers = 1};
        assert_int_equal(kafka_produce(m.kafka, &msg, NULL, NULL), 0);
    }
    kafka_flush(m.kafka, 5000);
    assert_int_equal(kafka_outq_len(m.kafka), 0);

    char err[256];
    assert_int_equal(kafka_subscribe(m.kafka, err, sizeof(err)), 0);
    mock_run(&m);
    assert_true(c.assigned);
    assert_true(kafka_joined(m.kafka));
    assert_int_equal(c.next_offset, N_JOBS);
    assert_true(c.pauses >= N_JOBS / 3 - 1);

    /* A synchronous commit of the done prefix is what the group sees. */
    struct kafka_partition offset = {"jobs", 0, N_JOBS};
    assert_int_equal(kafka_commit(m.kafka, &offset, 1, true), 0);
    mock_close(&m);
}

/* ---- a broker that is down ---- */

static void test_broker_down_said_once(void **state)
{
    (void)state;
    static struct mock m;
    memset(&m, 0, sizeof(m));
    static const struct kafka_events no_events = {.on_message = NULL};
    mock_open(&m, &no_events, NULL);
    assert_int_equal(rd_kafka_mock_broker_set_down(m.cluster, 1), 0);
    struct kafka_message msg = {.topic = "replies", .payload = "x", .len = 1};
    assert_int_equal(kafka_produce(m.kafka, &msg, NULL, NULL), 0);
    char err[256];
    assert_int_equal(kafka_subscribe(m.kafka, err, sizeof(err)), 0);
    /* Both clients fail to connect, again and again, for 3 s. */
    assert_true(loop_timer_after(m.loop, 3000, mock_give_up, NULL));
    assert_int_equal(loop_run(m.loop), 0);
    mock_close_kafka(&m);
    assert_int_equal(mock_log_count(&m, "FAIL:"), 0); /* librdkafka's own line */
    /* Said once; the repeats summed up in one line when the clients close. */
    unsigned summaries = mock_log_count(&m, "_TRANSPORT: still failing");
    assert_true(summaries <= 1);
    assert_int_equal(mock_log_count(&m, "_TRANSPORT: ") - summaries, 1);
    mock_close(&m);
}

/* ---- librdkafka's threads yield to the loop ---- */

/* How many of this process's threads named rdk:* run SCHED_BATCH. */
static unsigned rdk_threads_batch(void)
{
    unsigned n = 0;
    DIR *dir = opendir("/proc/self/task");
    assert_non_null(dir);
    for (struct dirent *d; (d = readdir(dir));) {
        char path[300], comm[32] = "";
        snprintf(path, sizeof(path), "/proc/self/task/%s/comm", d->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue; /* "." and "..", or a thread that just ended */
        if (fgets(comm, sizeof(comm), f) && strncmp(comm, "rdk:", 4) == 0 &&
            sched_getscheduler((pid_t)strtol(d->d_name, NULL, 10)) == SCHED_BATCH)
            n++;
        fclose(f);
    }
    closedir(dir);
    return n;
}

static void test_librdkafka_threads_yield_to_the_loop(void **state)
{
    (void)state;
    static struct mock m;
    memset(&m, 0, sizeof(m));
    static const struct kafka_events no_events = {.on_message = NULL};
    unsigned before = rdk_threads_batch(); /* the mock cluster's own client: none */
    mock_open(&m, &no_events, NULL);
    char err[256];
    assert_int_equal(kafka_subscribe(m.kafka, err, sizeof(err)), 0);
    /* Each thread sets its policy as it starts: give them a moment. */
    int64_t deadline = clock_mono_ms() + 5000;
    while (rdk_threads_batch() - before < 4 && clock_mono_ms() < deadline)
        usleep(10000);
    /* The producer's and the consumer's main and broker threads at least. */
    assert_true(rdk_threads_batch() - before >= 4);
    assert_int_equal(before, 0);
    assert_int_equal(sched_getscheduler(0), SCHED_OTHER);
    mock_close(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fatal_producer_error_replaces_producer),
        cmocka_unit_test(test_pause_resume_never_skips_or_repeats),
        cmocka_unit_test(test_broker_down_said_once),
        cmocka_unit_test(test_librdkafka_threads_yield_to_the_loop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
