/* test_sse.c — the SSE parser gives the same events however the bytes are split. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sse.h"

/* Every event seen, flattened as "event|data\x1e" records so runs compare with strcmp. */
struct record {
    char *buf;
    size_t len, cap;
    int count;
    int stop_after; /* return 1 from the callback after this many events; 0 = never */
};

static int record_event(void *ctx, const char *event, const char *data, size_t len)
{
    struct record *r = ctx;
    assert_int_equal(data[len], '\0'); /* data is NUL-terminated for the decoder */
    size_t need = r->len + strlen(event) + len + 3;
    if (need > r->cap) {
        r->cap = need * 2;
        r->buf = realloc(r->buf, r->cap);
        assert_non_null(r->buf);
    }
    r->len += (size_t)sprintf(r->buf + r->len, "%s|", event);
    memcpy(r->buf + r->len, data, len);
    r->len += len;
    r->buf[r->len++] = '\x1e';
    r->buf[r->len] = '\0';
    r->count++;
    return r->stop_after && r->count >= r->stop_after ? 1 : 0;
}

static void record_free(struct record *r)
{
    free(r->buf);
    memset(r, 0, sizeof(*r));
}

static const char *recorded(const struct record *r)
{
    return r->buf ? r->buf : "";
}

/* Parse `input` fed in pieces whose sizes come from `sizes` (cycled; NULL = whole). */
static void parse_split(const char *input, size_t len, const size_t *sizes, size_t n_sizes,
                        struct record *out)
{
    struct sse_parser p;
    sse_init(&p, record_event, out);
    size_t off = 0, k = 0;
    while (off < len) {
        size_t piece = sizes ? sizes[k++ % n_sizes] : len;
        if (piece > len - off)
            piece = len - off;
        assert_int_equal(sse_feed(&p, input + off, piece), 0);
        off += piece;
    }
    assert_int_equal(sse_finish(&p), 0);
    sse_free(&p);
}

static void expect_events(const char *input, const char *want)
{
    struct record r = {0};
    parse_split(input, strlen(input), NULL, 0, &r);
    assert_string_equal(recorded(&r), want);
    record_free(&r);
}

/* What llama-server sends for /v1/chat/completions, with a keep-alive comment, CRLF and CR
 * variants, a multi-line event and a named event mixed in. */
static const char sample_stream[] =
    "data: {\"choices\":[{\"finish_reason\":null,\"index\":0,\"delta\":{\"role\":\"assistant\","
    "\"content\":null}}],\"object\":\"chat.completion.chunk\"}\n\n"
    ":\n\n"
    "data: {\"choices\":[{\"finish_reason\":null,\"index\":0,\"delta\":{\"content\":\" "
    "h\xc3\xa9\"}}]}"
    "\r\n\r\n"
    "data:{\"a\":1}\r\rdata: line one\ndata: line two\n\n"
    "event: ping\ndata: x\nid: 7\nretry: 100\n\n"
    "data: [DONE]\n\n";

static const char sample_events[] =
    "|{\"choices\":[{\"finish_reason\":null,\"index\":0,\"delta\":{\"role\":\"assistant\","
    "\"content\":null}}],\"object\":\"chat.completion.chunk\"}\x1e"
    "|{\"choices\":[{\"finish_reason\":null,\"index\":0,\"delta\":{\"content\":\" h\xc3\xa9\"}}]}"
    "\x1e"
    "|{\"a\":1}\x1e"
    "|line one\nline two\x1e"
    "ping|x\x1e"
    "|[DONE]\x1e";

static void test_whole_stream(void **state)
{
    (void)state;
    expect_events(sample_stream, sample_events);
}

static void test_byte_by_byte(void **state)
{
    (void)state;
    size_t one = 1;
    struct record r = {0};
    parse_split(sample_stream, strlen(sample_stream), &one, 1, &r);
    assert_string_equal(recorded(&r), sample_events);
    record_free(&r);
}

static void test_every_split_point(void **state)
{
    (void)state;
    size_t len = strlen(sample_stream);
    for (size_t cut = 0; cut <= len; cut++) {
        size_t sizes[2] = {cut, len};
        struct record r = {0};
        parse_split(sample_stream, len, cut ? sizes : sizes + 1, 1 + (cut != 0), &r);
        assert_string_equal(recorded(&r), sample_events);
        record_free(&r);
    }
}

static void test_random_pieces(void **state)
{
    (void)state;
    size_t len = strlen(sample_stream);
    uint32_t seed = 12345;
    for (int round = 0; round < 500; round++) {
        size_t sizes[32];
        for (size_t i = 0; i < 32; i++) {
            seed = seed * 1103515245u + 12345u;
            sizes[i] = 1 + (seed >> 16) % 23;
        }
        struct record r = {0};
        parse_split(sample_stream, len, sizes, 32, &r);
        assert_string_equal(recorded(&r), sample_events);
        record_free(&r);
    }
}

static void test_line_endings(void **state)
{
    (void)state;
    expect_events("data: a\n\ndata: b\r\n\r\ndata: c\r\rdata: d\r\n\n", "|a\x1e|b\x1e|c\x1e|d\x1e");
    /* \r\n split across feeds is one terminator, not two */
    struct record r = {0};
    size_t sizes[] = {8, 1, 100};
    parse_split("data: a\r\ndata: b\r\n\r\n", 20, sizes, 3, &r);
    assert_string_equal(recorded(&r), "|a\nb\x1e");
    record_free(&r);
}

static void test_field_forms(void **state)
{
    (void)state;
    /* one optional space after the colon; a second one is data */
    expect_events("data:x\n\ndata:  y\n\n", "|x\x1e| y\x1e");
    /* "data" with no colon is an empty data line; an empty data line still dispatches */
    expect_events("data\n\ndata:\n\n", "|\x1e|\x1e");
    /* empty data lines in the middle keep their newline */
    expect_events("data: a\ndata:\ndata: b\n\n", "|a\n\nb\x1e");
    /* comments and unknown fields are skipped; an event without data dispatches nothing */
    expect_events(": hello\nfoo: bar\nevent: x\n\ndata: z\n\n", "|z\x1e");
    /* the event type is reset after each event and truncated when too long */
    expect_events("event: e1\ndata: 1\n\ndata: 2\n\n", "e1|1\x1e|2\x1e");
    char longev[200];
    snprintf(longev, sizeof(longev), "event: %0100d\ndata: 1\n\n", 0);
    struct record r = {0};
    parse_split(longev, strlen(longev), NULL, 0, &r);
    assert_int_equal(r.count, 1);
    assert_int_equal(strchr(r.buf, '|') - r.buf, 63);
    record_free(&r);
}

static void test_embedded_nul(void **state)
{
    (void)state;
    static const char in[] = "data: a\0b\n\n";
    struct record r = {0};
    parse_split(in, sizeof(in) - 1, NULL, 0, &r);
    assert_int_equal(r.count, 1);
    assert_memory_equal(r.buf, "|a\0b\x1e", 5);
    record_free(&r);
}

static void test_finish(void **state)
{
    (void)state;
    /* a last event without its blank line, with and without a final line terminator */
    expect_events("data: a\n\ndata: last\n", "|a\x1e|last\x1e");
    expect_events("data: a\n\ndata: last", "|a\x1e|last\x1e");
    expect_events("data: a\r\ndata: b\r", "|a\nb\x1e");
    /* nothing pending: nothing dispatched */
    expect_events("data: a\n\n: comment", "|a\x1e");
    expect_events("", "");
}

static void test_size_cap(void **state)
{
    (void)state;
    size_t n = SSE_MAX_EVENT_BYTES;
    char *big = malloc(n + 128);
    assert_non_null(big);
    memset(big, 'x', n + 128);
    struct record r = {0};
    struct sse_parser p;

    /* exactly at the cap: accepted */
    sse_init(&p, record_event, &r);
    assert_int_equal(sse_feed(&p, "data: ", 6), 0);
    assert_int_equal(sse_feed(&p, big, n), 0);
    assert_int_equal(sse_feed(&p, "\n\n", 2), 0);
    assert_int_equal(r.count, 1);
    assert_int_equal(r.len, n + 2);
    sse_free(&p);
    record_free(&r);

    /* one line over the cap, never terminated: refused before it is complete */
    sse_init(&p, record_event, &r);
    assert_int_equal(sse_feed(&p, "data: ", 6), 0);
    assert_int_equal(sse_feed(&p, big, n + 128), -1);
    sse_free(&p);

    /* a terminated line just over the cap */
    sse_init(&p, record_event, &r);
    assert_int_equal(sse_feed(&p, "data: ", 6), 0);
    assert_int_equal(sse_feed(&p, big, n + 1), 0);
    assert_int_equal(sse_feed(&p, "\n", 1), -1);
    sse_free(&p);

    /* many small lines adding up to more than the cap */
    sse_init(&p, record_event, &r);
    big[n / 2] = '\n';
    memcpy(big + n / 2 + 1, "data:", 5);
    assert_int_equal(sse_feed(&p, "data:", 5), 0);
    int rc = sse_feed(&p, big, n + 16);
    if (rc == 0)
        rc = sse_feed(&p, "\n", 1);
    assert_int_equal(rc, -1);
    assert_int_equal(r.count, 0);
    sse_free(&p);
    free(big);
}

static void test_callback_stops(void **state)
{
    (void)state;
    struct record r = {.stop_after = 2};
    struct sse_parser p;
    sse_init(&p, record_event, &r);
    assert_int_equal(sse_feed(&p, "data: 1\n\ndata: 2\n\ndata: 3\n\n", 27), 1);
    assert_int_equal(r.count, 2);
    sse_free(&p);
    record_free(&r);

    sse_init(&p, record_event, &r);
    r.stop_after = 1;
    assert_int_equal(sse_feed(&p, "data: 1", 7), 0);
    assert_int_equal(sse_finish(&p), 1);
    sse_free(&p);
    record_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whole_stream),      cmocka_unit_test(test_byte_by_byte),
        cmocka_unit_test(test_every_split_point), cmocka_unit_test(test_random_pieces),
        cmocka_unit_test(test_line_endings),      cmocka_unit_test(test_field_forms),
        cmocka_unit_test(test_embedded_nul),      cmocka_unit_test(test_finish),
        cmocka_unit_test(test_size_cap),          cmocka_unit_test(test_callback_stops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
