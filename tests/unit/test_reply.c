/* test_reply.c — the chunk, done and error encoders: decode their output
 * back with msgpack and check every field, its type and the field order. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <msgpack.h>
#include <string.h>

#include "reply.h"

/* One decoded reply; the map's fields are checked in order with next_key(). */
struct decoded {
    msgpack_unpacked msg;
    const msgpack_object_map *map;
    uint32_t next;
};

static void decode(struct decoded *d, const msgpack_sbuffer *sb, size_t *off)
{
    msgpack_unpacked_init(&d->msg);
    assert_int_equal(msgpack_unpack_next(&d->msg, sb->data, sb->size, off), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(d->msg.data.type, MSGPACK_OBJECT_MAP);
    d->map = &d->msg.data.via.map;
    d->next = 0;
}

static void decode_all(struct decoded *d, const msgpack_sbuffer *sb)
{
    size_t off = 0;
    decode(d, sb, &off);
    assert_int_equal(off, sb->size);
}

/* The value of the next field, which must be called `key`. */
static const msgpack_object *next_field(struct decoded *d, const char *key)
{
    assert_true(d->next < d->map->size);
    const msgpack_object_kv *kv = &d->map->ptr[d->next++];
    assert_int_equal(kv->key.type, MSGPACK_OBJECT_STR);
    if (kv->key.via.str.size != strlen(key) || memcmp(kv->key.via.str.ptr, key, strlen(key)))
        fail_msg("field %u is %.*s, expected %s", d->next - 1, (int)kv->key.via.str.size,
                 kv->key.via.str.ptr, key);
    return &kv->val;
}

static void expect_str(const msgpack_object *o, const char *s, size_t len)
{
    assert_int_equal(o->type, MSGPACK_OBJECT_STR);
    assert_int_equal(o->via.str.size, len);
    if (len)
        assert_memory_equal(o->via.str.ptr, s, len);
}

static void next_str(struct decoded *d, const char *key, const char *s)
{
    expect_str(next_field(d, key), s, strlen(s));
}

static void next_uint(struct decoded *d, const char *key, uint64_t v)
{
    const msgpack_object *o = next_field(d, key);
    assert_int_equal(o->type, MSGPACK_OBJECT_POSITIVE_INTEGER);
    assert_true(o->via.u64 == v);
}

static void next_double(struct decoded *d, const char *key, double v)
{
    const msgpack_object *o = next_field(d, key);
    assert_int_equal(o->type, MSGPACK_OBJECT_FLOAT64);
    assert_true(o->via.f64 == v);
}

static void expect_end(struct decoded *d)
{
    assert_int_equal(d->next, d->map->size);
    msgpack_unpacked_destroy(&d->msg);
}

/* Fields inside a nested map: reuse the cursor on a sub-map. */
static void enter(struct decoded *outer, const char *key, struct decoded *inner)
{
    const msgpack_object *o = next_field(outer, key);
    assert_int_equal(o->type, MSGPACK_OBJECT_MAP);
    inner->map = &o->via.map;
    inner->next = 0;
}

static void test_chunk(void **state)
{
    (void)state;
    msgpack_sbuffer sb;
    struct decoded d;

    msgpack_sbuffer_init(&sb);
    assert_int_equal(reply_encode_chunk(&sb, "job-1", "run-1", 70000, "a\0b", 3, NULL), 0);
    decode_all(&d, &sb);
    assert_int_equal(d.map->size, 6);
    next_uint(&d, "v", 1);
    next_str(&d, "type", "chunk");
    next_str(&d, "id", "job-1");
    next_str(&d, "run", "run-1");
    next_uint(&d, "seq", 70000);
    expect_str(next_field(&d, "text"), "a\0b", 3); /* text_len, not strlen */
    expect_end(&d);
    msgpack_sbuffer_destroy(&sb);
}

static void test_chunk_bytes(void **state)
{
    (void)state;
    static const char want[] = "\x86"
                               "\xa1v\x01"
                               "\xa4type\xa5"
                               "chunk"
                               "\xa2id\xa1"
                               "a"
                               "\xa3run\xa1r"
                               "\xa3seq\x00"
                               "\xa4text\xa1x";
    msgpack_sbuffer sb;

    msgpack_sbuffer_init(&sb);
    assert_int_equal(reply_encode_chunk(&sb, "a", "r", 0, "x", 1, NULL), 0);
    assert_int_equal(sb.size, sizeof want - 1);
    assert_memory_equal(sb.data, want, sb.size);
    msgpack_sbuffer_destroy(&sb);
}

static void test_chunk_empty_and_wide(void **state)
{
    (void)state;
    msgpack_sbuffer sb;
    struct decoded d;

    msgpack_sbuffer_init(&sb);
    assert_int_equal(reply_encode_chunk(&sb, "j", "r", UINT64_MAX, NULL, 0, NULL), 0);
    decode_all(&d, &sb);
    next_uint(&d, "v", 1);
    next_str(&d, "type", "chunk");
    next_str(&d, "id", "j");
    next_str(&d, "run", "r");
    next_uint(&d, "seq", UINT64_MAX);
    next_str(&d, "text", "");
    expect_end(&d);
    msgpack_sbuffer_destroy(&sb);
}

static const uint8_t meta[] = "\x82\xa1k\xa1v\xa3"
                              "bin\xc4\x02\x00\xff";
#define META_LEN (sizeof meta - 1)

static struct reply_done sample_done(void)
{
    struct reply_done done = {
        .id = "job-7",
        .run = "w1-000003",
        .text = "Hello world",
        .text_len = 11,
        .finish = "length",
        .usage = {.prompt_tokens = 12, .completion_tokens = 300},
        .timings = {.queue_ms = 4.25, .ttft_ms = 35.0, .gen_ms = 1200.5, .tokens_per_s = 249.9},
        .worker = "node-1/0",
        .meta = meta,
        .meta_len = META_LEN,
    };
    return done;
}

static void check_done(const msgpack_sbuffer *sb, bool with_meta)
{
    struct decoded d, sub;

    decode_all(&d, sb);
    assert_int_equal(d.map->size, with_meta ? 10 : 9);
    next_uint(&d, "v", 1);
    next_str(&d, "type", "done");
    next_str(&d, "id", "job-7");
    next_str(&d, "run", "w1-000003");
    next_str(&d, "text", "Hello world");
    next_str(&d, "finish", "length");
    enter(&d, "usage", &sub);
    assert_int_equal(sub.map->size, 2);
    next_uint(&sub, "prompt_tokens", 12);
    next_uint(&sub, "completion_tokens", 300);
    enter(&d, "timings", &sub);
    assert_int_equal(sub.map->size, 4);
    next_double(&sub, "queue_ms", 4.25);
    next_double(&sub, "ttft_ms", 35.0);
    next_double(&sub, "gen_ms", 1200.5);
    next_double(&sub, "tokens_per_s", 249.9);
    next_str(&d, "worker", "node-1/0");
    if (with_meta) {
        const msgpack_object *m = next_field(&d, "meta");
        assert_int_equal(m->type, MSGPACK_OBJECT_MAP);
        assert_int_equal(m->via.map.size, 2);
        /* echoed byte for byte: the encoding ends with the meta bytes */
        assert_memory_equal(sb->data + sb->size - META_LEN, meta, META_LEN);
    }
    expect_end(&d);
}

static void test_done(void **state)
{
    (void)state;
    msgpack_sbuffer sb;
    struct reply_done done = sample_done();

    msgpack_sbuffer_init(&sb);
    assert_int_equal(reply_encode_done(&sb, &done), 0);
    check_done(&sb, true);

    msgpack_sbuffer_clear(&sb);
    done.meta = NULL;
    done.meta_len = 0;
    assert_int_equal(reply_encode_done(&sb, &done), 0);
    check_done(&sb, false);
    msgpack_sbuffer_destroy(&sb);
}

static void check_error(const msgpack_sbuffer *sb, size_t *off, enum llmq_code code, const char *id,
                        const char *run, bool with_meta)
{
    struct decoded d;
    const msgpack_object *retryable;

    decode(&d, sb, off);
    assert_int_equal(d.map->size, with_meta ? 9 : 8);
    next_uint(&d, "v", 1);
    next_str(&d, "type", "error");
    next_str(&d, "id", id);
    next_str(&d, "run", run);
    next_str(&d, "code", llmq_code_name(code));
    next_str(&d, "message", "deadline_ms: passed 3 ms ago");
    retryable = next_field(&d, "retryable");
    assert_int_equal(retryable->type, MSGPACK_OBJECT_BOOLEAN);
    assert_int_equal(retryable->via.boolean, llmq_code_retryable(code));
    next_str(&d, "worker", "node-1/0");
    if (with_meta)
        assert_int_equal(next_field(&d, "meta")->type, MSGPACK_OBJECT_MAP);
    expect_end(&d);
}

static void test_error_every_code(void **state)
{
    (void)state;
    msgpack_sbuffer sb;
    size_t off = 0;

    /* All codes, one after another in one buffer: each encoding appends. */
    msgpack_sbuffer_init(&sb);
    for (int c = LLMQ_MALFORMED; c < LLMQ_CODE_COUNT; c++) {
        struct reply_error err = {
            .id = "job-3",
            .run = "w1-9",
            .code = (enum llmq_code)c,
            .message = "deadline_ms: passed 3 ms ago",
            .worker = "node-1/0",
            .meta = c % 2 ? meta : NULL,
            .meta_len = c % 2 ? META_LEN : 0,
        };
        assert_int_equal(reply_encode_error(&sb, &err), 0);
    }
    for (int c = LLMQ_MALFORMED; c < LLMQ_CODE_COUNT; c++)
        check_error(&sb, &off, (enum llmq_code)c, "job-3", "w1-9", c % 2);
    assert_int_equal(off, sb.size);
    msgpack_sbuffer_destroy(&sb);
}

static void test_error_without_id_or_run(void **state)
{
    (void)state;
    msgpack_sbuffer sb;
    size_t off = 0;
    struct reply_error err = {
        .code = LLMQ_MALFORMED,
        .message = "deadline_ms: passed 3 ms ago",
        .worker = "node-1/0",
    };

    msgpack_sbuffer_init(&sb);
    assert_int_equal(reply_encode_error(&sb, &err), 0);
    check_error(&sb, &off, LLMQ_MALFORMED, "", "", false);
    msgpack_sbuffer_destroy(&sb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chunk),
        cmocka_unit_test(test_chunk_bytes),
        cmocka_unit_test(test_chunk_empty_and_wide),
        cmocka_unit_test(test_done),
        cmocka_unit_test(test_error_every_code),
        cmocka_unit_test(test_error_without_id_or_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
