/* test_util.c — the shared helpers of worker/util: buffers with a cap,
 * growable arrays, clocks, random hex ids, Kafka topic names, host:port
 * splitting, msgpack -> JSON in both modes, and msgpack_skip's bounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "clock.h"
#include "hostport.h"
#include "kafka_names.h"
#include "mpjson.h"
#include "msgpack_skip.h"
#include "random_id.h"

static void test_buf_cap(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 10);
    assert_int_equal(buf_append(&b, "hello", 5), 0);
    assert_string_equal(b.data, "hello");
    assert_int_equal(buf_append(&b, "world!", 6), -1); /* would pass the cap */
    assert_true(b.failed);
    assert_string_equal(b.data, "hello");
    assert_int_equal(buf_append_some(&b, "world!", 6), 5);
    assert_string_equal(b.data, "helloworld");
    assert_int_equal(buf_append_some(&b, "x", 1), 0);
    buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.max, 10);

    buf_init(&b, 0);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(buf_append(&b, "abc", 3), 0);
    assert_int_equal(b.len, 3000);
    assert_int_equal(strlen(b.data), 3000);
    buf_free(&b);
}

static void test_grow_array(void **state)
{
    (void)state;
    int *items = NULL;
    size_t cap = 0;
    for (size_t i = 0; i < 100; i++) {
        assert_int_equal(grow_array((void **)&items, &cap, i + 1, sizeof(*items), 4), 0);
        items[i] = (int)i;
    }
    assert_true(cap >= 100);
    assert_int_equal(items[99], 99);
    assert_int_equal(grow_array((void **)&items, &cap, SIZE_MAX / 2, sizeof(*items), 4), -1);
    free(items);
}

static void test_clock_and_ids(void **state)
{
    (void)state;
    int64_t a = clock_mono_ms(), us = clock_mono_us();
    assert_true(us / 1000 >= a - 1);
    struct timespec nap = {0, 20 * 1000000};
    nanosleep(&nap, NULL);
    int64_t b = clock_mono_ms();
    assert_true(b - a >= 19 && b - a < 2000);
    int64_t wall_off = clock_wall_ms() - (int64_t)time(NULL) * 1000;
    assert_true(wall_off > -2000 && wall_off < 2000);

    char x[17], y[17], big[200];
    assert_int_equal(random_hex(x, 8), 0);
    assert_int_equal(random_hex(y, 8), 0);
    assert_int_equal(strlen(x), 16);
    assert_int_equal(strspn(x, "0123456789abcdef"), 16);
    assert_string_not_equal(x, y);
    assert_int_equal(random_hex(big, 65), -1);
    assert_string_equal(big, "");
    hex_encode(x, "\x01\xab", 2);
    assert_string_equal(x, "01ab");
}

static void test_topic_names(void **state)
{
    (void)state;
    char longest[KAFKA_TOPIC_MAX + 2];
    memset(longest, 'a', sizeof(longest));
    assert_true(kafka_topic_valid("llmq.replies-1_x", 16));
    assert_true(kafka_topic_valid("...", 3));
    assert_true(kafka_topic_valid(longest, KAFKA_TOPIC_MAX));
    assert_false(kafka_topic_valid(longest, KAFKA_TOPIC_MAX + 1));
    assert_false(kafka_topic_valid("", 0));
    assert_false(kafka_topic_valid(".", 1));
    assert_false(kafka_topic_valid("..", 2));
    assert_false(kafka_topic_valid("a b", 3));
    assert_false(kafka_topic_valid("a\0b", 3));
    assert_true(kafka_topic_valid("ab*", 2)); /* only the first n bytes count */
}

static void test_hostport(void **state)
{
    (void)state;
    char host[16], port[8];
    assert_int_equal(hostport_split("127.0.0.1:9464", host, sizeof(host), port, sizeof(port)), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_string_equal(port, "9464");
    assert_int_equal(hostport_split("[::1]:0", host, sizeof(host), port, sizeof(port)), 0);
    assert_string_equal(host, "::1");
    assert_string_equal(port, "0");
    const char *bad[] = {"nohost", ":80",      "h:",    "h:65536",
                         "h:12a",  "h:000080", "[]:80", "a-host-name-too-long-for-16:1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(hostport_split(bad[i], host, sizeof(host), port, sizeof(port)), -1);
}

/* The JSON text of a msgpack value written by `pack`, or NULL with *problem. */
static char *convert(void (*pack)(msgpack_packer *), enum mpjson_mode mode, const char **problem)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_unpacked u;
    size_t off = 0;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    pack(&pk);
    msgpack_unpacked_init(&u);
    assert_int_equal(msgpack_unpack_next(&u, sb.data, sb.size, &off), MSGPACK_UNPACK_SUCCESS);
    json_t *v = mpjson_from_msgpack(&u.data, mode, problem);
    char *text = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(v);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
    return text;
}

static void pack_plain(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 2);
    msgpack_pack_str_with_body(pk, "a", 1);
    msgpack_pack_array(pk, 3);
    msgpack_pack_int64(pk, -3);
    msgpack_pack_true(pk);
    msgpack_pack_nil(pk);
    msgpack_pack_str_with_body(pk, "b", 1);
    msgpack_pack_double(pk, 1.5);
}

static void pack_bin(msgpack_packer *pk)
{
    msgpack_pack_bin_with_body(pk, "\xff\x00", 2);
}

static void pack_int_key(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 1);
    msgpack_pack_int(pk, 7);
    msgpack_pack_str_with_body(pk, "x", 1);
}

static void pack_twice(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 2);
    msgpack_pack_str_with_body(pk, "k", 1);
    msgpack_pack_int(pk, 1);
    msgpack_pack_str_with_body(pk, "k", 1);
    msgpack_pack_int(pk, 2);
}

static void pack_huge(msgpack_packer *pk)
{
    msgpack_pack_uint64(pk, UINT64_MAX);
}

static void pack_bad_text(msgpack_packer *pk)
{
    msgpack_pack_str_with_body(pk, "\xc3\x28", 2);
}

static void test_mpjson(void **state)
{
    (void)state;
    const char *problem = NULL;
    char *s = convert(pack_plain, MPJSON_EXACT, &problem);
    assert_string_equal(s, "{\"a\":[-3,true,null],\"b\":1.5}");
    free(s);
    static const struct {
        void (*pack)(msgpack_packer *);
        const char *shown, *problem;
    } cases[] = {
        {pack_bin, "\"/wA=\"", "bin and ext values have no JSON meaning"},
        {pack_int_key, "{\"7\":\"x\"}", "map keys must be UTF-8 strings"},
        {pack_twice, "{\"k\":2}", "a map key is given more than once"},
        {pack_huge, "1.8446744073709552e19", "integer out of the signed 64-bit range"},
        {pack_bad_text, "\"wyg=\"", "strings must be valid UTF-8 without NUL bytes"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        problem = NULL;
        assert_null(convert(cases[i].pack, MPJSON_EXACT, &problem));
        assert_string_equal(problem, cases[i].problem);
        s = convert(cases[i].pack, MPJSON_SHOW, &problem);
        assert_string_equal(s, cases[i].shown);
        free(s);
    }
}

static void test_msgpack_skip(void **state)
{
    (void)state;
    const uint8_t nested[] = {0x91, 0x91, 0x91, 0x01}; /* [[[1]]] */
    const uint8_t huge[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    size_t off = 0;
    assert_true(msgpack_skip(nested, sizeof(nested), &off, 3));
    assert_int_equal(off, sizeof(nested));
    off = 0;
    assert_false(msgpack_skip(nested, sizeof(nested), &off, 2));
    off = 0;
    assert_false(msgpack_skip(huge, sizeof(huge), &off, 8)); /* declares more than it has */
    off = 0;
    assert_false(msgpack_skip("\xc1", 1, &off, 8));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_cap),       cmocka_unit_test(test_grow_array),
        cmocka_unit_test(test_clock_and_ids), cmocka_unit_test(test_topic_names),
        cmocka_unit_test(test_hostport),      cmocka_unit_test(test_mpjson),
        cmocka_unit_test(test_msgpack_skip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
