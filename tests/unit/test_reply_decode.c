/* test_reply_decode.c — reply_decode() reads back what reply.c writes, skips
 * unknown fields, rejects what the spec rules out (naming the field), and
 * agrees with the reply vectors of schemas/vectors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reply.h"
#include "reply_decode.h"

#ifndef LLMQ_SOURCE_DIR
#error "LLMQ_SOURCE_DIR must name the repository root"
#endif
#define VECTOR_DIR LLMQ_SOURCE_DIR "/schemas/vectors/"

static int decode(const msgpack_sbuffer *buf, struct reply_msg *msg, char *err, size_t err_len)
{
    return reply_decode(buf->data, buf->size, msg, err, err_len);
}

static void test_chunk_round_trip(void **state)
{
    (void)state;
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    assert_int_equal(reply_encode_chunk(&buf, "job-1", "r1", 70000, "h\xc3\xa9llo", 6, NULL), 0);

    struct reply_msg msg;
    char err[128];
    assert_int_equal(decode(&buf, &msg, err, sizeof(err)), 0);
    assert_int_equal(msg.type, REPLY_CHUNK);
    assert_string_equal(msg.id, "job-1");
    assert_string_equal(msg.run, "r1");
    assert_int_equal(msg.seq, 70000);
    assert_int_equal(msg.text_len, 6);
    assert_string_equal(msg.text, "h\xc3\xa9llo");
    assert_string_equal(msg.finish, "");
    assert_string_equal(msg.code, "");
    assert_null(msg.meta);
    assert_string_equal(reply_type_name(msg.type), "chunk");
    reply_msg_free(&msg);
    msgpack_sbuffer_destroy(&buf);
}

static void test_done_round_trip(void **state)
{
    (void)state;
    static const uint8_t meta[] = {0x81, 0xa1, 'k', 0xc4, 0x01, 0x00}; /* {"k": bin} */
    struct reply_done done = {
        .id = "job-2",
        .run = "r2",
        .text = "abc",
        .text_len = 3,
        .finish = "length",
        .usage = {5, 3},
        .timings = {1.5, 2.5, 3.5, 850.25},
        .worker = "w-1",
        .meta = meta,
        .meta_len = sizeof(meta),
    };
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    assert_int_equal(reply_encode_done(&buf, &done), 0);

    struct reply_msg msg;
    char err[128];
    assert_int_equal(decode(&buf, &msg, err, sizeof(err)), 0);
    assert_int_equal(msg.type, REPLY_DONE);
    assert_string_equal(msg.text, "abc");
    assert_string_equal(msg.finish, "length");
    assert_int_equal(msg.usage.prompt_tokens, 5);
    assert_int_equal(msg.usage.completion_tokens, 3);
    assert_true(msg.timings.queue_ms == 1.5 && msg.timings.ttft_ms == 2.5);
    assert_true(msg.timings.gen_ms == 3.5 && msg.timings.tokens_per_s == 850.25);
    assert_string_equal(msg.worker, "w-1");
    assert_int_equal(msg.meta_len, sizeof(meta));
    assert_memory_equal(msg.meta, meta, sizeof(meta));
    reply_msg_free(&msg);
    msgpack_sbuffer_destroy(&buf);
}

static void test_error_round_trip(void **state)
{
    (void)state;
    struct reply_error e = {.id = NULL,
                            .run = NULL,
                            .code = LLMQ_BACKEND_FAILED,
                            .message = "llama-server died",
                            .worker = "w-2"};
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    assert_int_equal(reply_encode_error(&buf, &e), 0);

    struct reply_msg msg;
    char err[128];
    assert_int_equal(decode(&buf, &msg, err, sizeof(err)), 0);
    assert_int_equal(msg.type, REPLY_ERROR);
    assert_string_equal(msg.id, "");
    assert_string_equal(msg.run, "");
    assert_string_equal(msg.code, "backend_failed");
    assert_string_equal(msg.message, "llama-server died");
    assert_true(msg.retryable);
    assert_string_equal(msg.text, "");
    assert_int_equal(msg.text_len, 0);
    reply_msg_free(&msg);
    msgpack_sbuffer_destroy(&buf);
}

/* A str value. */
static void pack_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str_with_body(pk, s, strlen(s));
}

static void test_unknown_fields_skipped_first_key_wins(void **state)
{
    (void)state;
    msgpack_sbuffer buf;
    msgpack_packer pk;
    msgpack_sbuffer_init(&buf);
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 9);
    pack_str(&pk, "future");
    msgpack_pack_array(&pk, 1);
    msgpack_pack_nil(&pk);
    pack_str(&pk, "v");
    msgpack_pack_int(&pk, 1);
    pack_str(&pk, "type");
    pack_str(&pk, "chunk");
    pack_str(&pk, "id");
    pack_str(&pk, "first");
    pack_str(&pk, "id");
    pack_str(&pk, "second");
    msgpack_pack_int(&pk, 7); /* a non-string key */
    msgpack_pack_int(&pk, 7);
    pack_str(&pk, "run");
    pack_str(&pk, "r");
    pack_str(&pk, "seq");
    msgpack_pack_int(&pk, 0);
    pack_str(&pk, "text");
    pack_str(&pk, "");

    struct reply_msg msg;
    char err[128];
    assert_int_equal(decode(&buf, &msg, err, sizeof(err)), 0);
    assert_string_equal(msg.id, "first");
    assert_int_equal(msg.seq, 0);
    reply_msg_free(&msg);
    msgpack_sbuffer_destroy(&buf);
}

/* A chunk with one field replaced (or removed when `value` is NULL). */
static void expect_bad_chunk(const char *field, void (*value)(msgpack_packer *pk),
                             const char *expected)
{
    static const char *const fields[] = {"v", "type", "id", "run", "seq", "text"};
    msgpack_sbuffer buf;
    msgpack_packer pk;
    msgpack_sbuffer_init(&buf);
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, value ? 6 : 5);
    for (size_t i = 0; i < 6; i++) {
        if (strcmp(fields[i], field) == 0) {
            if (value) {
                pack_str(&pk, field);
                value(&pk);
            }
            continue;
        }
        pack_str(&pk, fields[i]);
        if (i == 0 || i == 4)
            msgpack_pack_int(&pk, i == 0 ? 1 : 3);
        else
            pack_str(&pk, i == 1 ? "chunk" : "x");
    }
    struct reply_msg msg;
    char err[128] = "";
    assert_int_equal(decode(&buf, &msg, err, sizeof(err)), -1);
    if (strncmp(err, expected, strlen(expected)) != 0)
        fail_msg("%s: got %s, want %s...", field, err, expected);
    assert_null(msg.id);
    msgpack_sbuffer_destroy(&buf);
}

static void pack_two(msgpack_packer *pk)
{
    msgpack_pack_int(pk, 2);
}
static void pack_minus_one(msgpack_packer *pk)
{
    msgpack_pack_int(pk, -1);
}
static void pack_float(msgpack_packer *pk)
{
    msgpack_pack_double(pk, 1.0);
}
static void pack_heartbeat(msgpack_packer *pk)
{
    pack_str(pk, "heartbeat");
}
static void pack_empty(msgpack_packer *pk)
{
    pack_str(pk, "");
}
static void pack_bin(msgpack_packer *pk)
{
    msgpack_pack_bin_with_body(pk, "x", 1);
}

static void test_rejects_name_the_field(void **state)
{
    (void)state;
    expect_bad_chunk("v", NULL, "v:");
    expect_bad_chunk("v", pack_two, "v:");
    expect_bad_chunk("v", pack_float, "v:");
    expect_bad_chunk("type", NULL, "type:");
    expect_bad_chunk("type", pack_heartbeat, "type:");
    expect_bad_chunk("id", NULL, "id: missing");
    expect_bad_chunk("id", pack_bin, "id: must be a string");
    expect_bad_chunk("run", NULL, "run: missing");
    expect_bad_chunk("run", pack_empty, "run: must not be empty");
    expect_bad_chunk("seq", NULL, "seq: missing");
    expect_bad_chunk("seq", pack_minus_one, "seq:");
    expect_bad_chunk("seq", pack_float, "seq:");
    expect_bad_chunk("text", pack_two, "text: must be a string");
}

static void test_rejects_bad_messages(void **state)
{
    (void)state;
    static const struct {
        const char *bytes;
        size_t len;
    } cases[] = {
        {"", 0},
        {"\x93\x01\x02\x03", 4},      /* an array */
        {"\x81\xa1v", 3},             /* cut short */
        {"\x81\xa1v\x01\xc0", 5},     /* bytes after the map */
        {"\x82\xa1v\x01\xa4type", 8}, /* cut short in the middle */
        {"\xc1", 1},                  /* reserved byte */
        {"\x81\xa1v\x01", 4},         /* no type */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct reply_msg msg;
        char err[128] = "";
        assert_int_equal(reply_decode(cases[i].bytes, cases[i].len, &msg, err, sizeof(err)), -1);
        assert_true(err[0] != '\0');
    }
}

static char *read_file(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s%s", VECTOR_DIR, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    char *buf = malloc(1 << 16);
    assert_non_null(buf);
    *len = fread(buf, 1, 1 << 16, f);
    fclose(f);
    return buf;
}

/* Valid reply vectors decode to what their .json says; invalid ones are
 * rejected, except error_bad_retryable, whose fault (an expired error that
 * claims to be retryable) is a worker's claim the reader takes as given. */
static void test_vectors(void **state)
{
    (void)state;
    json_error_t jerr;
    json_t *index = json_load_file(VECTOR_DIR "index.json", 0, &jerr);
    assert_non_null(index);
    json_t *v;
    size_t i, seen = 0;
    json_array_foreach(json_object_get(index, "vectors"), i, v)
    {
        const char *kind = json_string_value(json_object_get(v, "kind"));
        const char *name = json_string_value(json_object_get(v, "name"));
        if (strcmp(kind, "chunk") != 0 && strcmp(kind, "done") != 0 && strcmp(kind, "error") != 0)
            continue;
        bool valid = json_is_true(json_object_get(v, "valid"));
        size_t len;
        char *bytes = read_file(json_string_value(json_object_get(v, "file")), &len);
        struct reply_msg msg;
        char err[128] = "";
        int rc = reply_decode(bytes, len, &msg, err, sizeof(err));
        free(bytes);
        seen++;
        if (!valid && strcmp(name, "error_bad_retryable") != 0) {
            if (rc == 0)
                fail_msg("%s: decoded, should be rejected", name);
            continue;
        }
        if (rc != 0)
            fail_msg("%s: %s", name, err);
        char json_name[256];
        snprintf(json_name, sizeof(json_name), "%s%s.json", VECTOR_DIR, name);
        json_t *meaning = json_load_file(json_name, 0, &jerr);
        assert_non_null(meaning);
        assert_string_equal(reply_type_name(msg.type),
                            json_string_value(json_object_get(meaning, "type")));
        assert_string_equal(msg.id, json_string_value(json_object_get(meaning, "id")));
        assert_string_equal(msg.run, json_string_value(json_object_get(meaning, "run")));
        if (msg.type != REPLY_ERROR)
            assert_string_equal(msg.text, json_string_value(json_object_get(meaning, "text")));
        else
            assert_string_equal(msg.code, json_string_value(json_object_get(meaning, "code")));
        assert_int_equal(msg.meta != NULL, json_object_get(meaning, "meta") != NULL);
        json_decref(meaning);
        reply_msg_free(&msg);
    }
    assert_true(seen >= 10);
    json_decref(index);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chunk_round_trip),
        cmocka_unit_test(test_done_round_trip),
        cmocka_unit_test(test_error_round_trip),
        cmocka_unit_test(test_unknown_fields_skipped_first_key_wins),
        cmocka_unit_test(test_rejects_name_the_field),
        cmocka_unit_test(test_rejects_bad_messages),
        cmocka_unit_test(test_vectors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
