/* test_commits.c — commits.c on librdkafka's mock cluster: jobs done out of
 * order commit only their contiguous done prefix, and a flush commits it at
 * once; a done commits at once unless a commit went out less than 50 ms
 * before, then 50 ms after it; when the partition is revoked (the consumer
 * leaves), its done prefix is committed in the rebalance, and a ticket of
 * the revoked partition marks nothing. */
#include "mock_kafka.h"

#include "commits.h"

#define N_JOBS 8

struct consuming {
    struct mock *m;
    struct commits *c;
    struct commits_ticket tickets[N_JOBS];
    unsigned taken;
};

static void on_job(void *ctx, const struct kafka_message *msg)
{
    struct consuming *s = ctx;
    assert_true(msg->offset >= 0 && msg->offset < N_JOBS);
    assert_int_equal(
        commits_track(s->c, msg->topic, msg->partition, msg->offset, &s->tickets[msg->offset]), 0);
    /* An offset comes once: a second time it is refused. */
    struct commits_ticket again;
    assert_int_equal(commits_track(s->c, msg->topic, msg->partition, msg->offset, &again), -1);
    if (++s->taken == N_JOBS)
        loop_stop(s->m->loop);
}

static void on_assigned(void *ctx, const struct kafka_partition *parts, size_t n)
{
    struct consuming *s = ctx;
    commits_assigned(s->c, parts, n);
}

static void on_revoking(void *ctx, struct kafka_partition *parts, size_t n)
{
    struct consuming *s = ctx;
    commits_revoke(s->c, parts, n);
}

/* Produce the jobs, join the group, and take every one. */
static void consuming_open(struct consuming *s, struct mock *m)
{
    static const struct kafka_events events = {
        .on_message = on_job, .on_assigned = on_assigned, .on_revoking = on_revoking};
    memset(s, 0, sizeof(*s));
    memset(m, 0, sizeof(*m));
    s->m = m;
    mock_open(m, &events, s);
    s->c = commits_new(m->loop, m->kafka, &m->log);
    assert_non_null(s->c);
    for (int i = 0; i < N_JOBS; i++) {
        struct kafka_message msg = {.topic = "jobs", .payload = "job", .len = 3};
        assert_int_equal(kafka_produce(m->kafka, &msg, NULL, NULL), 0);
    }
    kafka_flush(m->kafka, 5000);
    char err[256];
    assert_int_equal(kafka_subscribe(m->kafka, err, sizeof(err)), 0);
    mock_run(m);
    assert_int_equal(s->taken, N_JOBS);
}

static void consuming_close(struct consuming *s)
{
    mock_close_kafka(s->m);
    commits_free(s->c);
    mock_close(s->m);
}

/* The group's committed offset of jobs[0], as another member would read it;
 * -1 when there is none. */
static int64_t committed(const struct mock *m)
{
    rd_kafka_t *c = mock_group_client(m);
    int64_t offset = mock_committed(c, 5000);
    rd_kafka_destroy(c);
    return offset;
}

/* Let the loop run long enough for a scheduled commit (50 ms) to go. */
static void settle(struct mock *m)
{
    assert_true(loop_timer_after(m->loop, 600, mock_give_up, NULL));
    assert_int_equal(loop_run(m->loop), 0);
}

static void test_done_prefix_committed_soon(void **state)
{
    (void)state;
    static struct consuming s;
    static struct mock m;
    consuming_open(&s, &m);
    assert_int_equal(committed(&m), -1);

    commits_done(s.c, &s.tickets[2]);
    commits_done(s.c, &s.tickets[1]);
    settle(&m);
    assert_int_equal(committed(&m), 0); /* job 0 is not done: nothing past it */

    commits_done(s.c, &s.tickets[0]);
    commits_done(s.c, &s.tickets[0]); /* twice is once */
    settle(&m);
    assert_int_equal(committed(&m), 3);

    for (int i = 3; i < N_JOBS; i++)
        commits_done(s.c, &s.tickets[i]);
    commits_flush(s.c); /* at once, no loop turn */
    assert_int_equal(committed(&m), N_JOBS);
    consuming_close(&s);
}

/* The committed offset of jobs[0] once it is `want` (polled, no loop turn:
 * a commit that needs a timer cannot happen here). */
static int64_t committed_soon(const struct mock *m, int64_t want)
{
    int64_t got = committed(m);
    for (int i = 0; i < 40 && got != want; i++) {
        usleep(50 * 1000);
        got = committed(m);
    }
    return got;
}

static void test_done_commits_at_once_then_one_per_gap(void **state)
{
    (void)state;
    static struct consuming s;
    static struct mock m;
    consuming_open(&s, &m);
    /* The first done commits without waiting for a timer; the second, right
     * behind it, waits for the 50 ms gap, so it needs the loop. */
    commits_done(s.c, &s.tickets[0]);
    commits_done(s.c, &s.tickets[1]);
    assert_int_equal(committed_soon(&m, 1), 1);
    usleep(100 * 1000);
    assert_int_equal(committed(&m), 1);
    settle(&m);
    assert_int_equal(committed(&m), 2);
    consuming_close(&s);
}

static void test_revoked_partition_commits_its_prefix(void **state)
{
    (void)state;
    static struct consuming s;
    static struct mock m;
    consuming_open(&s, &m);
    for (int i = 0; i < 5; i++)
        commits_done(s.c, &s.tickets[i]);
    commits_done(s.c, &s.tickets[6]);
    /* Leaving the group revokes jobs[0] before the scheduled commit runs. */
    mock_close_kafka(&m);
    assert_true(mock_log_has(&m, "revoked 1 partition(s)"));
    assert_int_equal(committed(&m), 5);
    /* The partition is forgotten: its tickets mark nothing, and a flush
     * has nothing to commit. */
    commits_done(s.c, &s.tickets[5]);
    commits_flush(s.c);
    commits_free(s.c);
    mock_close(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_done_prefix_committed_soon),
        cmocka_unit_test(test_done_commits_at_once_then_one_per_gap),
        cmocka_unit_test(test_revoked_partition_commits_its_prefix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
