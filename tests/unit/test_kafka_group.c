/* test_kafka_group.c — the consumer group's settings and commit results:
 * the default partition assignment strategy for each librdkafka release
 * (eager before 2.10.0, where the cooperative protocol's known bugs were
 * fixed), and, on librdkafka's mock cluster, a commit the broker refuses is
 * counted, handed to commits.c and committed again within a second without
 * another job finishing. */
#include "mock_kafka.h"

#include "commits.h"
#include "kafka_private.h"

/* The Kafka protocol's ApiKey of OffsetCommit. */
#define MOCK_API_KEY_OFFSET_COMMIT 8

static void test_assignment_default_by_version(void **state)
{
    (void)state;
    char why[256];
    assert_string_equal(kafka_assignment_default(0x020002ff, why, sizeof(why)),
                        "range,roundrobin"); /* Debian 12's 2.0.2 */
    assert_non_null(strstr(why, "2.0.2"));
    assert_non_null(strstr(why, "#4059"));
    assert_string_equal(kafka_assignment_default(0x020300ff, why, sizeof(why)),
                        "range,roundrobin"); /* Ubuntu 24.04's 2.3.0 */
    assert_string_equal(kafka_assignment_default(0x020601ff, why, sizeof(why)),
                        "range,roundrobin"); /* #4783 fixed, #4059 not yet */
    assert_string_equal(kafka_assignment_default(0x020a0000, why, sizeof(why)),
                        "cooperative-sticky");
    assert_string_equal(kafka_assignment_default(0x020c01ff, why, sizeof(why)),
                        "cooperative-sticky");
}

struct committing {
    struct mock *m;
    struct commits *commits;
    unsigned failed_reports;
};

static void on_assigned(void *ctx, const struct kafka_partition *parts, size_t n)
{
    struct committing *c = ctx;
    commits_assigned(c->commits, parts, n);
    loop_stop(c->m->loop);
}

static void on_commit_failed(void *ctx, const struct kafka_partition *parts, size_t n)
{
    struct committing *c = ctx;
    c->failed_reports++;
    commits_failed(c->commits, parts, n);
}

static void ignore_message(void *ctx, const struct kafka_message *msg)
{
    (void)ctx;
    (void)msg;
}

/* The group's committed offset of jobs[0], or -1. */
static int64_t committed_offset(const struct mock *m)
{
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, "jobs", 0);
    int64_t at = -1;
    if (rd_kafka_committed(m->kafka->consumer, parts, 5000) == 0 && parts->elems[0].err == 0)
        at = parts->elems[0].offset;
    rd_kafka_topic_partition_list_destroy(parts);
    return at;
}

static void stop_loop(struct loop *loop, void *ctx)
{
    (void)ctx;
    loop_stop(loop);
}

static void test_failed_commit_is_counted_and_retried(void **state)
{
    (void)state;
    static struct committing c;
    static struct mock m;
    memset(&c, 0, sizeof(c));
    memset(&m, 0, sizeof(m));
    c.m = &m;
    static const struct kafka_events events = {.on_message = ignore_message,
                                               .on_assigned = on_assigned,
                                               .on_commit_failed = on_commit_failed};
    mock_open(&m, &events, &c);
    c.commits = commits_new(m.loop, m.kafka, &m.log);
    assert_non_null(c.commits);
    char err[256];
    assert_int_equal(kafka_subscribe(m.kafka, err, sizeof(err)), 0);
    mock_run(&m);
    assert_true(kafka_joined(m.kafka));

    /* One job done: its commit is refused once; no other job finishes. */
    rd_kafka_mock_push_request_errors(m.cluster, MOCK_API_KEY_OFFSET_COMMIT, 1,
                                      RD_KAFKA_RESP_ERR_OFFSET_METADATA_TOO_LARGE);
    struct commits_ticket ticket;
    assert_int_equal(commits_track(c.commits, "jobs", 0, 0, &ticket), 0);
    commits_done(c.commits, &ticket);
    assert_non_null(loop_timer_after(m.loop, 2500, stop_loop, NULL));
    mock_run(&m);

    assert_int_equal(kafka_commits_failed(m.kafka), 1);
    assert_int_equal(c.failed_reports, 1);
    assert_true(mock_log_has(&m, "commit of jobs[0]@1 failed"));
    assert_int_equal(committed_offset(&m), 1); /* the retry went through */
    mock_close_kafka(&m);
    commits_free(c.commits);
    mock_close(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_assignment_default_by_version),
        cmocka_unit_test(test_failed_commit_is_counted_and_retried),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
