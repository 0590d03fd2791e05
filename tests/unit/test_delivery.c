/* test_delivery.c — delivery.c on librdkafka's mock cluster: a message is
 * acknowledged and settles once; one whose report failed with an error the
 * broker may get over is produced again until acknowledged; one the broker
 * will never take is given up (settled, not acknowledged, counted, logged),
 * for a job's own reply_to on any refusal that is not retriable;
 * a done reply too large for the broker becomes a small error reply; and
 * messages caught in a producer's fatal error are acknowledged through its
 * replacement, each once on the topic. */
#include "mock_kafka.h"

#include <msgpack.h>

#include "delivery.h"

#define N_MESSAGES MOCK_N_KEYS

struct sending {
    struct mock *m;
    struct delivery *d;
    unsigned settled, acknowledged;
    unsigned expected; /* settlements that end the test */
};

static void on_settled(void *ctx, bool acknowledged)
{
    struct sending *s = ctx;
    s->settled++;
    s->acknowledged += acknowledged;
    if (s->settled == s->expected)
        loop_stop(s->m->loop);
}

static void ignore_message(void *ctx, const struct kafka_message *msg)
{
    (void)ctx;
    (void)msg;
}

static void sending_open(struct sending *s, struct mock *m, unsigned expected)
{
    static const struct kafka_events events = {.on_message = ignore_message};
    memset(s, 0, sizeof(*s));
    memset(m, 0, sizeof(*m));
    s->m = m;
    s->expected = expected;
    mock_open(m, &events, s);
    s->d = delivery_new(m->loop, m->kafka, &m->cfg, &m->log);
    assert_non_null(s->d);
}

static void sending_close(struct sending *s)
{
    delivery_stop(s->d);
    mock_close_kafka(s->m);
    delivery_free(s->d);
    mock_close(s->m);
}

/* Send a message keyed `key` with the payload `payload` to `topic`, as a
 * terminal reply of `reply_type` (NULL: a dead-letter copy). */
static void send_one(struct sending *s, const char *topic, const char *key, const void *payload,
                     size_t len, const char *reply_type)
{
    struct kafka_header headers[2] = {{"llmq-type", reply_type ? reply_type : "dead", 0},
                                      {"llmq-id", key, strlen(key)}};
    headers[0].len = strlen(headers[0].value);
    struct kafka_message msg = {.topic = topic,
                                .key = key,
                                .key_len = strlen(key),
                                .payload = payload,
                                .len = len,
                                .headers = headers,
                                .n_headers = 2};
    struct delivery_job job = {key, "run-1", reply_type};
    assert_int_equal(delivery_send(s->d, &msg, &job, on_settled, s), 0);
    assert_int_equal(s->settled, 0); /* never from within */
}

/* What a topic holds, as read back. */
struct seen {
    unsigned count;
    char key[64];
    char type[16];
    char payload[1024];
    size_t payload_len;
};

static void record(void *ctx, const rd_kafka_message_t *msg)
{
    struct seen *seen = ctx;
    seen->count++;
    snprintf(seen->key, sizeof(seen->key), "%.*s", (int)msg->key_len, (const char *)msg->key);
    seen->payload_len = msg->len < sizeof(seen->payload) ? msg->len : sizeof(seen->payload);
    memcpy(seen->payload, msg->payload, seen->payload_len);
    rd_kafka_headers_t *hdrs = NULL;
    const void *value = NULL;
    size_t len = 0;
    if (rd_kafka_message_headers(msg, &hdrs) == 0 &&
        rd_kafka_header_get_last(hdrs, "llmq-type", &value, &len) == 0)
        snprintf(seen->type, sizeof(seen->type), "%.*s", (int)len, (const char *)value);
}

static void test_acknowledged(void **state)
{
    (void)state;
    static struct sending s;
    static struct mock m;
    sending_open(&s, &m, 1);
    send_one(&s, "replies", "job-1", "hello", 5, "done");
    mock_run(&m);
    assert_int_equal(s.acknowledged, 1);
    assert_int_equal(delivery_failures(s.d), 0);
    struct seen seen = {0};
    assert_int_equal(mock_read_topic(&m, "replies", record, &seen), 1);
    assert_string_equal(seen.key, "job-1");
    assert_string_equal(seen.type, "done");
    assert_int_equal(seen.payload_len, 5);
    assert_memory_equal(seen.payload, "hello", 5);
    sending_close(&s);
}

/* The worker's own reply topic refused (as while its ACLs are fixed): the
 * message waits and goes again, a second later, until the broker takes it. */
static void test_retried_after_a_retriable_error(void **state)
{
    (void)state;
    static struct sending s;
    static struct mock m;
    sending_open(&s, &m, 1);
    rd_kafka_mock_push_request_errors(m.cluster, MOCK_API_KEY_PRODUCE, 1,
                                      RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
    send_one(&s, "replies", "job-2", "retry me", 8, "done");
    mock_run(&m);
    assert_int_equal(s.acknowledged, 1);
    assert_true(delivery_failures(s.d) >= 1);
    assert_true(mock_log_has(&m, "job job-2: reply to replies not acknowledged"));
    assert_int_equal(mock_read_topic(&m, "replies", NULL, NULL), 1);
    /* /readyz named the topic while it refused, and no longer does. */
    assert_true(mock_log_has(&m, "the broker takes messages to replies again"));
    assert_null(delivery_refused(s.d));
    sending_close(&s);
}

/* The worker's own dead-letter topic refused for a while (deleted, or its
 * ACLs) with several copies waiting: each is produced again every second
 * until the broker takes it, none is given up, and the log says so once,
 * not once a second for every copy. */
static void test_waiting_copies_logged_once(void **state)
{
    (void)state;
    static struct sending s;
    static struct mock m;
    sending_open(&s, &m, 3);
    rd_kafka_mock_push_request_errors(
        m.cluster, MOCK_API_KEY_PRODUCE, 3, RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
        RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
    send_one(&s, "dead", "job-a", "copy a", 6, NULL);
    send_one(&s, "dead", "job-b", "copy b", 6, NULL);
    send_one(&s, "dead", "job-c", "copy c", 6, NULL);
    mock_run(&m);
    assert_int_equal(s.acknowledged, 3);
    assert_true(delivery_failures(s.d) >= 3);
    assert_int_equal(delivery_gave_up(s.d, GAVE_UP_DEAD_NEVER_TAKEN), 0);
    assert_int_equal(mock_log_count(&m, "the broker refuses messages to dead"), 1);
    assert_int_equal(mock_log_count(&m, "not acknowledged"), 1);
    assert_int_equal(mock_log_count(&m, "the broker takes messages to dead again"), 1);
    assert_int_equal(mock_read_topic(&m, "dead", NULL, NULL), 3);
    sending_close(&s);
}

/* A job's own reply_to the broker forbids will never take it: given up,
 * so that its job's offset does not hold the partition back. */
static void test_given_up_on_a_permanent_error(void **state)
{
    (void)state;
    static struct sending s;
    static struct mock m;
    sending_open(&s, &m, 1);
    assert_int_equal(rd_kafka_mock_topic_create(m.cluster, "their.replies", 1, 1), 0);
    rd_kafka_mock_push_request_errors(m.cluster, MOCK_API_KEY_PRODUCE, 1,
                                      RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
    send_one(&s, "their.replies", "job-3", "nowhere", 7, "error");
    mock_run(&m);
    assert_int_equal(s.settled, 1);
    assert_int_equal(s.acknowledged, 0);
    assert_int_equal(delivery_failures(s.d), 1);
    assert_true(mock_log_has(&m, "job job-3: the broker will never take its message to "
                                 "their.replies"));
    /* Counted by kind (llmq_gave_up_total) and logged with the topic. */
    assert_true(mock_log_has(&m, "gave up reply (broker_never_takes), topic their.replies"));
    assert_int_equal(delivery_gave_up(s.d, GAVE_UP_REPLY_NEVER_TAKEN), 1);
    assert_int_equal(delivery_gave_up(s.d, GAVE_UP_DEAD_NEVER_TAKEN), 0);
    assert_int_equal(mock_read_topic(&m, "their.replies", NULL, NULL), 0);
    sending_close(&s);
}

/* Any refusal that is not retriable (an invalid topic, a policy) gives up a
 * job's own reply_to the same way; a retriable one does not. */
static void test_reply_to_refusals(void **state)
{
    (void)state;
    static const int refusals[] = {RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION,
                                   RD_KAFKA_RESP_ERR_POLICY_VIOLATION};
    for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
        static struct sending s;
        static struct mock m;
        sending_open(&s, &m, 1);
        assert_int_equal(rd_kafka_mock_topic_create(m.cluster, "their.replies", 1, 1), 0);
        rd_kafka_mock_push_request_errors(m.cluster, MOCK_API_KEY_PRODUCE, 1, refusals[i]);
        send_one(&s, "their.replies", "job-r", "nowhere", 7, "done");
        mock_run(&m);
        assert_int_equal(s.acknowledged, 0);
        assert_int_equal(delivery_failures(s.d), 1);
        assert_true(mock_log_has(&m, "gave up reply (broker_never_takes)"));
        sending_close(&s);
    }
    static struct sending s;
    static struct mock m;
    sending_open(&s, &m, 1);
    assert_int_equal(rd_kafka_mock_topic_create(m.cluster, "their.replies", 1, 1), 0);
    rd_kafka_mock_push_request_errors(m.cluster, MOCK_API_KEY_PRODUCE, 1,
                                      RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS);
    send_one(&s, "their.replies", "job-t", "later", 5, "done");
    mock_run(&m);
    assert_int_equal(s.acknowledged, 1);
    sending_close(&s);
}

/* A done reply over message.max.bytes (refused before it leaves) becomes
 * a small `internal` error reply with the same key; a dead-letter copy that
 * large is given up. */
static void test_oversized_done_shrinks(void **state)
{
    (void)state;
    static struct sending s;
    static struct mock m;
    sending_open(&s, &m, 2);
    size_t big = 2u << 20; /* librdkafka's message.max.bytes is 1 MB */
    char *payload = calloc(1, big);
    assert_non_null(payload);
    send_one(&s, "replies", "job-4", payload, big, "done");
    send_one(&s, "dead", "job-5", payload, big, NULL);
    free(payload);
    mock_run(&m);
    assert_int_equal(s.acknowledged, 1);
    assert_int_equal(delivery_failures(s.d), 1); /* the dead-letter copy */
    assert_int_equal(delivery_gave_up(s.d, GAVE_UP_DEAD_NEVER_TAKEN), 1);
    assert_int_equal(delivery_gave_up(s.d, GAVE_UP_REPLY_TOO_LARGE), 1);
    assert_true(mock_log_has(&m, "job job-4: the done reply (2097152 bytes) is larger than the "
                                 "broker accepts"));
    struct seen seen = {0};
    assert_int_equal(mock_read_topic(&m, "replies", record, &seen), 1);
    assert_string_equal(seen.key, "job-4");
    assert_string_equal(seen.type, "error");
    assert_non_null(memmem(seen.payload, seen.payload_len, "internal", 8));
    assert_non_null(memmem(seen.payload, seen.payload_len, "run-1", 5));
    assert_int_equal(mock_read_topic(&m, "dead", NULL, NULL), 0);
    sending_close(&s);
}

/* A done reply too large only for its logprobs goes again without them
 * (spec.md), still a done, before any error reply is considered. */
static void test_oversized_logprobs_trimmed(void **state)
{
    (void)state;
    static struct sending s;
    static struct mock m;
    sending_open(&s, &m, 1);
    msgpack_sbuffer done;
    msgpack_sbuffer_init(&done);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &done, msgpack_sbuffer_write);
    const char *fields[][2] = {{"type", "done"}, {"id", "job-6"}, {"text", "the text"}};
    msgpack_pack_map(&pk, 4);
    for (size_t i = 0; i < 3; i++) {
        msgpack_pack_str_with_body(&pk, fields[i][0], strlen(fields[i][0]));
        msgpack_pack_str_with_body(&pk, fields[i][1], strlen(fields[i][1]));
    }
    size_t big = 2u << 20;
    char *bulk = calloc(1, big);
    assert_non_null(bulk);
    msgpack_pack_str_with_body(&pk, "logprobs", 8);
    msgpack_pack_bin_with_body(&pk, bulk, big);
    free(bulk);
    send_one(&s, "replies", "job-6", done.data, done.size, "done");
    msgpack_sbuffer_destroy(&done);
    mock_run(&m);
    assert_int_equal(s.acknowledged, 1);
    assert_int_equal(delivery_failures(s.d), 0);
    assert_true(mock_log_has(&m, "sending it again without logprobs"));
    struct seen seen = {0};
    assert_int_equal(mock_read_topic(&m, "replies", record, &seen), 1);
    assert_string_equal(seen.type, "done");
    assert_true(seen.payload_len < 100);
    assert_non_null(memmem(seen.payload, seen.payload_len, "the text", 8));
    assert_null(memmem(seen.payload, seen.payload_len, "logprobs", 8));
    sending_close(&s);
}

/* A sequence error on the first Produce request is fatal to the idempotent
 * producer: kafka.c replaces it, and every message goes again through the
 * new one, each once on the topic. */
static void test_producer_replaced(void **state)
{
    (void)state;
    static struct sending s;
    static struct mock m;
    sending_open(&s, &m, N_MESSAGES);
    rd_kafka_mock_push_request_errors(m.cluster, MOCK_API_KEY_PRODUCE, 1,
                                      RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
    for (int i = 0; i < N_MESSAGES; i++) {
        char key[16];
        snprintf(key, sizeof(key), "msg-%d", i);
        send_one(&s, "replies", key, key, strlen(key), "done");
    }
    mock_run(&m);
    assert_int_equal(s.acknowledged, N_MESSAGES);
    assert_true(mock_log_has(&m, "producer replaced after a fatal error (1 so far)"));
    unsigned counts[N_MESSAGES] = {0};
    assert_int_equal(mock_read_topic(&m, "replies", mock_count_key, counts), N_MESSAGES);
    for (int i = 0; i < N_MESSAGES; i++)
        assert_int_equal(counts[i], 1);
    sending_close(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_acknowledged),
        cmocka_unit_test(test_retried_after_a_retriable_error),
        cmocka_unit_test(test_waiting_copies_logged_once),
        cmocka_unit_test(test_given_up_on_a_permanent_error),
        cmocka_unit_test(test_reply_to_refusals),
        cmocka_unit_test(test_oversized_done_shrinks),
        cmocka_unit_test(test_oversized_logprobs_trimmed),
        cmocka_unit_test(test_producer_replaced),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
