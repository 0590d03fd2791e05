/* test_job.c — job_decode and job_admit, rule by rule: each v1 field's type
 * and range, the malformed cases, the verdict order, what a rejected job
 * still carries for its error reply, and the policy checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <msgpack.h>
#include <string.h>

#include "job.h"

/* ---- building job messages ------------------------------------------------ */

struct msg {
    msgpack_sbuffer sb;
    msgpack_packer pk;
};

static void msg_init(struct msg *m)
{
    msgpack_sbuffer_init(&m->sb);
    msgpack_packer_init(&m->pk, &m->sb, msgpack_sbuffer_write);
}

static void put_str(struct msg *m, const char *s)
{
    msgpack_pack_str_with_body(&m->pk, s, strlen(s));
}

static void put_bytes_str(struct msg *m, const char *s, size_t len)
{
    msgpack_pack_str_with_body(&m->pk, s, len);
}

/* Start {v: 1, id: "job-1", prompt: "hi", ...} with `extra` more fields to come. */
static void msg_base(struct msg *m, size_t extra)
{
    msg_init(m);
    msgpack_pack_map(&m->pk, 3 + extra);
    put_str(m, "v");
    msgpack_pack_int(&m->pk, 1);
    put_str(m, "id");
    put_str(m, "job-1");
    put_str(m, "prompt");
    put_str(m, "hi");
}

static enum llmq_code msg_decode(struct msg *m, struct job *job, struct job_verdict *why)
{
    enum llmq_code code = job_decode(m->sb.data, m->sb.size, job, why);
    msgpack_sbuffer_destroy(&m->sb);
    assert_int_equal(why->code, code);
    return code;
}

/* Decode the base job plus one field `key` whose value the callback packs. */
typedef void (*pack_fn)(msgpack_packer *pk);

static enum llmq_code decode_one(const char *key, pack_fn value, struct job *job,
                                 struct job_verdict *why)
{
    struct msg m;
    msg_base(&m, 1);
    put_str(&m, key);
    value(&m.pk);
    return msg_decode(&m, job, why);
}

/* Decode and expect `code`; the message must start with `prefix`. */
static void expect_one(const char *key, pack_fn value, enum llmq_code code, const char *prefix)
{
    struct job job;
    struct job_verdict why;
    enum llmq_code got = decode_one(key, value, &job, &why);
    if (got != code)
        fail_msg("%s: got %s (%s), expected %s", key, llmq_code_name(got), why.message,
                 llmq_code_name(code));
    if (strncmp(why.message, prefix, strlen(prefix)) != 0)
        fail_msg("%s: message \"%s\" does not start with \"%s\"", key, why.message, prefix);
    job_free(&job);
}

static void expect_ok(const char *key, pack_fn value)
{
    expect_one(key, value, LLMQ_OK, "");
}

static void expect_bad(const char *key, pack_fn value)
{
    expect_one(key, value, LLMQ_INVALID_FIELD, key);
}

static void p_int0(msgpack_packer *pk)
{
    msgpack_pack_int(pk, 0);
}
static void p_int1(msgpack_packer *pk)
{
    msgpack_pack_int(pk, 1);
}
static void p_int2(msgpack_packer *pk)
{
    msgpack_pack_int(pk, 2);
}
static void p_neg1(msgpack_packer *pk)
{
    msgpack_pack_int(pk, -1);
}
static void p_int_min(msgpack_packer *pk)
{
    msgpack_pack_int64(pk, INT64_MIN);
}
static void p_uint_max(msgpack_packer *pk)
{
    msgpack_pack_uint64(pk, UINT64_MAX);
}
static void p_real_half(msgpack_packer *pk)
{
    msgpack_pack_double(pk, 0.5);
}
static void p_real_1(msgpack_packer *pk)
{
    msgpack_pack_double(pk, 1.0);
}
static void p_real_above_1(msgpack_packer *pk)
{
    msgpack_pack_double(pk, 1.0001);
}
static void p_real_neg(msgpack_packer *pk)
{
    msgpack_pack_double(pk, -0.001);
}
static void p_float32(msgpack_packer *pk)
{
    msgpack_pack_float(pk, 0.25f);
}
static void p_nan(msgpack_packer *pk)
{
    msgpack_pack_double(pk, NAN);
}
static void p_inf(msgpack_packer *pk)
{
    msgpack_pack_double(pk, INFINITY);
}
static void p_nil(msgpack_packer *pk)
{
    msgpack_pack_nil(pk);
}
static void p_true(msgpack_packer *pk)
{
    msgpack_pack_true(pk);
}
static void p_false(msgpack_packer *pk)
{
    msgpack_pack_false(pk);
}
static void p_str_x(msgpack_packer *pk)
{
    msgpack_pack_str_with_body(pk, "x", 1);
}
static void p_str_empty(msgpack_packer *pk)
{
    msgpack_pack_str_with_body(pk, "", 0);
}
static void p_bin(msgpack_packer *pk)
{
    msgpack_pack_bin_with_body(pk, "x", 1);
}
static void p_array_empty(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 0);
}
static void p_map_empty(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 0);
}

/* ---- a whole job ------------------------------------------------------------------ */

static void test_minimal_prompt_job(void **state)
{
    (void)state;
    struct msg m;
    struct job job;
    struct job_verdict why;

    msg_base(&m, 0);
    assert_int_equal(msg_decode(&m, &job, &why), LLMQ_OK);
    assert_string_equal(why.message, "");
    assert_string_equal(job.id, "job-1");
    assert_string_equal(job.prompt, "hi");
    assert_int_equal(job.prompt_len, 2);
    assert_null(job.messages);
    assert_true(job.stream);
    assert_false(job.max_tokens.set || job.top_k.set || job.seed.set || job.deadline_ms.set);
    assert_false(job.temperature.set || job.top_p.set || job.min_p.set || job.repeat_penalty.set);
    assert_null(job.stop);
    assert_null(job.grammar);
    assert_null(job.json_schema_json);
    assert_null(job.reply_to);
    assert_null(job.model);
    assert_null(job.meta);
    job_free(&job);
}

static void test_every_field(void **state)
{
    (void)state;
    struct msg m;
    struct job job;
    struct job_verdict why;

    msg_base(&m, 13);
    put_str(&m, "max_tokens");
    msgpack_pack_int(&m.pk, 64);
    put_str(&m, "temperature");
    msgpack_pack_double(&m.pk, 0.7);
    put_str(&m, "top_p");
    msgpack_pack_double(&m.pk, 0.9);
    put_str(&m, "top_k");
    msgpack_pack_int(&m.pk, 40);
    put_str(&m, "min_p");
    msgpack_pack_double(&m.pk, 0.05);
    put_str(&m, "seed");
    msgpack_pack_int64(&m.pk, -7);
    put_str(&m, "repeat_penalty");
    msgpack_pack_int(&m.pk, 2);
    put_str(&m, "stop");
    msgpack_pack_array(&m.pk, 2);
    put_str(&m, "\n\n");
    put_str(&m, "END");
    put_str(&m, "grammar");
    put_str(&m, "root ::= \"a\"");
    put_str(&m, "stream");
    msgpack_pack_false(&m.pk);
    put_str(&m, "reply_to");
    put_str(&m, "team.alpha");
    put_str(&m, "deadline_ms");
    msgpack_pack_int64(&m.pk, 1700000000000);
    put_str(&m, "model");
    put_str(&m, "tiny");

    assert_int_equal(msg_decode(&m, &job, &why), LLMQ_OK);
    assert_true(job.max_tokens.set);
    assert_int_equal(job.max_tokens.value, 64);
    assert_true(job.temperature.set);
    assert_true(job.temperature.value == 0.7);
    assert_true(job.top_p.value == 0.9);
    assert_int_equal(job.top_k.value, 40);
    assert_true(job.min_p.value == 0.05);
    assert_true(job.seed.set);
    assert_int_equal(job.seed.value, -7);
    assert_true(job.repeat_penalty.set);
    assert_true(job.repeat_penalty.value == 2.0);
    assert_int_equal(job.n_stop, 2);
    assert_string_equal(job.stop[0], "\n\n");
    assert_string_equal(job.stop[1], "END");
    assert_string_equal(job.grammar, "root ::= \"a\"");
    assert_false(job.stream);
    assert_string_equal(job.reply_to, "team.alpha");
    assert_true(job.deadline_ms.set);
    assert_int_equal(job.deadline_ms.value, 1700000000000);
    assert_string_equal(job.model, "tiny");
    job_free(&job);
}

static void test_chat_job(void **state)
{
    (void)state;
    struct msg m;
    struct job job;
    struct job_verdict why;

    msg_init(&m);
    msgpack_pack_map(&m.pk, 3);
    put_str(&m, "messages");
    msgpack_pack_array(&m.pk, 2);
    msgpack_pack_map(&m.pk, 2);
    put_str(&m, "role");
    put_str(&m, "system");
    put_str(&m, "content");
    put_str(&m, "Be brief.");
    msgpack_pack_map(&m.pk, 3); /* an unknown key in a message is ignored too */
    put_str(&m, "content");
    put_str(&m, "");
    put_str(&m, "name");
    msgpack_pack_int(&m.pk, 3);
    put_str(&m, "role");
    put_str(&m, "user");
    put_str(&m, "id");
    put_str(&m, "chat-1");
    put_str(&m, "v");
    msgpack_pack_int(&m.pk, 1);

    assert_int_equal(msg_decode(&m, &job, &why), LLMQ_OK);
    assert_null(job.prompt);
    assert_int_equal(job.n_messages, 2);
    assert_string_equal(job.messages[0].role, "system");
    assert_string_equal(job.messages[0].content, "Be brief.");
    assert_string_equal(job.messages[1].role, "user");
    assert_string_equal(job.messages[1].content, "");
    job_free(&job);
}

static void test_unknown_fields_are_ignored(void **state)
{
    (void)state;
    struct msg m;
    struct job job;
    struct job_verdict why;

    msg_base(&m, 2);
    put_str(&m, "priority");
    msgpack_pack_bin_with_body(&m.pk, "\x01", 1);
    put_str(&m, "x-future");
    msgpack_pack_map(&m.pk, 1);
    msgpack_pack_int(&m.pk, 7); /* non-string keys are fine below the top level */
    msgpack_pack_nil(&m.pk);
    assert_int_equal(msg_decode(&m, &job, &why), LLMQ_OK);
    job_free(&job);
}

/* ---- malformed ---------------------------------------------------------------------- */

static void expect_malformed(const void *buf, size_t len)
{
    struct job job;
    struct job_verdict why;
    assert_int_equal(job_decode(buf, len, &job, &why), LLMQ_MALFORMED);
    assert_int_equal(why.code, LLMQ_MALFORMED);
    assert_true(why.message[0] != '\0');
    assert_null(job.id);
    job_free(&job);
}

static void test_malformed(void **state)
{
    (void)state;
    struct msg m;

    expect_malformed(NULL, 0);
    expect_malformed("", 0);
    expect_malformed("\xc1", 1);             /* never-used byte */
    expect_malformed("\x93\x01\x02\x03", 4); /* an array */
    expect_malformed("\xa3"
                     "abc",
                     4);                                              /* a string */
    expect_malformed("\x2a", 1);                                      /* an integer */
    expect_malformed("\x81\x01\xa1x", 4);                             /* an integer key */
    expect_malformed("\x81\xa4meta\xdd\xff\xff\xff\xff", 11);         /* 4G entries declared */
    expect_malformed("\x81\xa4meta\xdb\xff\xff\xff\xff", 11);         /* 4 GB string declared */
    expect_malformed("\x81\xa4meta\xc9\x00\x00\x00\x10\x01\x02", 13); /* ext cut short */

    /* Every strict prefix of a valid job is cut short; a byte more is trailing. */
    msg_base(&m, 0);
    for (size_t n = 0; n < m.sb.size; n++)
        expect_malformed(m.sb.data, n);
    msgpack_sbuffer_write(&m.sb, "\xc0", 1);
    expect_malformed(m.sb.data, m.sb.size);
    msgpack_sbuffer_destroy(&m.sb);
}

/* A job whose meta nests `depth` maps (the job map itself is one more). */
static enum llmq_code decode_nested(unsigned depth)
{
    struct msg m;
    struct job job;
    struct job_verdict why;

    msg_base(&m, 1);
    put_str(&m, "meta");
    for (unsigned k = 1; k < depth; k++) {
        msgpack_pack_map(&m.pk, 1);
        put_str(&m, "d");
    }
    msgpack_pack_map(&m.pk, 0);
    enum llmq_code code = msg_decode(&m, &job, &why);
    job_free(&job);
    return code;
}

static void test_nesting_limit(void **state)
{
    (void)state;
    assert_int_equal(decode_nested(31), LLMQ_OK); /* 32 containers deep in all */
    assert_int_equal(decode_nested(32), LLMQ_MALFORMED);
    assert_int_equal(decode_nested(200), LLMQ_MALFORMED);
}

/* ---- v, id ------------------------------------------------------------------------------ */

static enum llmq_code decode_v_id(pack_fn v, pack_fn id, struct job *job, struct job_verdict *why)
{
    struct msg m;
    msg_init(&m);
    msgpack_pack_map(&m.pk, 1 + (v != NULL) + (id != NULL));
    put_str(&m, "prompt");
    put_str(&m, "hi");
    if (v) {
        put_str(&m, "v");
        v(&m.pk);
    }
    if (id) {
        put_str(&m, "id");
        id(&m.pk);
    }
    return msg_decode(&m, job, why);
}

static void p_id_ok(msgpack_packer *pk)
{
    msgpack_pack_str_with_body(pk, "job-9", 5);
}

static void expect_version(pack_fn v, enum llmq_code code)
{
    struct job job;
    struct job_verdict why;
    assert_int_equal(decode_v_id(v, p_id_ok, &job, &why), code);
    if (code != LLMQ_OK)
        assert_memory_equal(why.message, "v: ", 3);
    assert_string_equal(job.id, "job-9"); /* still there for the error reply */
    job_free(&job);
}

static void test_version(void **state)
{
    (void)state;
    expect_version(p_int1, LLMQ_OK);
    expect_version(NULL, LLMQ_UNSUPPORTED_VERSION);
    expect_version(p_int2, LLMQ_UNSUPPORTED_VERSION);
    expect_version(p_int0, LLMQ_UNSUPPORTED_VERSION);
    expect_version(p_real_1, LLMQ_UNSUPPORTED_VERSION);
    expect_version(p_str_x, LLMQ_UNSUPPORTED_VERSION);
    expect_version(p_nil, LLMQ_UNSUPPORTED_VERSION);
}

static void p_id_128(msgpack_packer *pk)
{
    char id[128];
    memset(id, 'i', sizeof id);
    msgpack_pack_str_with_body(pk, id, sizeof id);
}
static void p_id_129(msgpack_packer *pk)
{
    char id[129];
    memset(id, 'i', sizeof id);
    msgpack_pack_str_with_body(pk, id, sizeof id);
}
static void p_id_nul(msgpack_packer *pk)
{
    msgpack_pack_str_with_body(pk, "a\0b", 3);
}
static void p_id_bad_utf8(msgpack_packer *pk)
{
    msgpack_pack_str_with_body(pk, "a\xc3", 2);
}

static void expect_id(pack_fn id, enum llmq_code code)
{
    struct job job;
    struct job_verdict why;
    assert_int_equal(decode_v_id(p_int1, id, &job, &why), code);
    if (code == LLMQ_OK) {
        assert_non_null(job.id);
    } else {
        assert_memory_equal(why.message, "id: ", 4);
        assert_null(job.id);
    }
    job_free(&job);
}

static void test_id(void **state)
{
    (void)state;
    expect_id(p_id_ok, LLMQ_OK);
    expect_id(p_id_128, LLMQ_OK);
    expect_id(NULL, LLMQ_INVALID_ID);
    expect_id(p_id_129, LLMQ_INVALID_ID);
    expect_id(p_str_empty, LLMQ_INVALID_ID);
    expect_id(p_int1, LLMQ_INVALID_ID);
    expect_id(p_bin, LLMQ_INVALID_ID);
    expect_id(p_id_nul, LLMQ_INVALID_ID);
    expect_id(p_id_bad_utf8, LLMQ_INVALID_ID);
}

/* ---- prompt / messages --------------------------------------------------------------- */

/* {v, id, <fields packed by the callback>}: n_fields of them. */
static enum llmq_code decode_input(size_t n_fields, void (*fields)(struct msg *m),
                                   struct job_verdict *why)
{
    struct msg m;
    struct job job;
    msg_init(&m);
    msgpack_pack_map(&m.pk, 2 + n_fields);
    put_str(&m, "v");
    msgpack_pack_int(&m.pk, 1);
    put_str(&m, "id");
    put_str(&m, "in-1");
    fields(&m);
    enum llmq_code code = msg_decode(&m, &job, why);
    job_free(&job);
    return code;
}

static void put_message(struct msg *m, const char *role, const char *content)
{
    msgpack_pack_map(&m->pk, (role != NULL) + (content != NULL));
    if (role) {
        put_str(m, "role");
        put_str(m, role);
    }
    if (content) {
        put_str(m, "content");
        put_str(m, content);
    }
}

static void in_nothing(struct msg *m)
{
    (void)m;
}
static void in_both(struct msg *m)
{
    put_str(m, "prompt");
    put_str(m, "hi");
    put_str(m, "messages");
    msgpack_pack_array(&m->pk, 1);
    put_message(m, "user", "hi");
}
static void in_prompt_int(struct msg *m)
{
    put_str(m, "prompt");
    msgpack_pack_int(&m->pk, 5);
}
static void in_prompt_overlong(struct msg *m)
{
    put_str(m, "prompt");
    put_bytes_str(m, "\xc0\x80", 2); /* an overlong NUL */
}
static void in_prompt_surrogate(struct msg *m)
{
    put_str(m, "prompt");
    put_bytes_str(m, "\xed\xa0\x80", 3);
}
static void in_prompt_beyond_unicode(struct msg *m)
{
    put_str(m, "prompt");
    put_bytes_str(m, "\xf4\x90\x80\x80", 4);
}
static void in_prompt_cut_utf8(struct msg *m)
{
    put_str(m, "prompt");
    put_bytes_str(m, "ok\xf0\x9f\x99", 5);
}
static void in_prompt_emoji(struct msg *m)
{
    put_str(m, "prompt");
    put_str(m, "\xf0\x9f\x99\x82 \xc3\xa9 \xe4\xb8\x96");
}
static void in_messages_empty(struct msg *m)
{
    put_str(m, "messages");
    msgpack_pack_array(&m->pk, 0);
}
static void in_messages_map(struct msg *m)
{
    put_str(m, "messages");
    put_message(m, "user", "hi");
}
static void in_message_not_map(struct msg *m)
{
    put_str(m, "messages");
    msgpack_pack_array(&m->pk, 1);
    put_str(m, "hi");
}
static void in_message_no_role(struct msg *m)
{
    put_str(m, "messages");
    msgpack_pack_array(&m->pk, 1);
    put_message(m, NULL, "hi");
}
static void in_message_empty_role(struct msg *m)
{
    put_str(m, "messages");
    msgpack_pack_array(&m->pk, 1);
    put_message(m, "", "hi");
}
static void in_message_no_content(struct msg *m)
{
    put_str(m, "messages");
    msgpack_pack_array(&m->pk, 2);
    put_message(m, "user", "hi");
    put_message(m, "user", NULL);
}
static void in_message_content_int(struct msg *m)
{
    put_str(m, "messages");
    msgpack_pack_array(&m->pk, 1);
    msgpack_pack_map(&m->pk, 2);
    put_str(m, "role");
    put_str(m, "user");
    put_str(m, "content");
    msgpack_pack_int(&m->pk, 1);
}
static void in_message_two_roles(struct msg *m)
{
    put_str(m, "messages");
    msgpack_pack_array(&m->pk, 1);
    msgpack_pack_map(&m->pk, 3);
    put_str(m, "role");
    put_str(m, "user");
    put_str(m, "role");
    put_str(m, "system");
    put_str(m, "content");
    put_str(m, "x");
}

static void expect_input(size_t n, void (*fields)(struct msg *m), enum llmq_code code,
                         const char *prefix)
{
    struct job_verdict why;
    enum llmq_code got = decode_input(n, fields, &why);
    if (got != code)
        fail_msg("got %s (%s), expected %s", llmq_code_name(got), why.message,
                 llmq_code_name(code));
    if (strncmp(why.message, prefix, strlen(prefix)) != 0)
        fail_msg("message \"%s\" does not start with \"%s\"", why.message, prefix);
}

static void test_input(void **state)
{
    (void)state;
    expect_input(1, in_prompt_emoji, LLMQ_OK, "");
    expect_input(0, in_nothing, LLMQ_INVALID_INPUT, "prompt, messages");
    expect_input(2, in_both, LLMQ_INVALID_INPUT, "prompt, messages");
    expect_input(1, in_prompt_int, LLMQ_INVALID_INPUT, "prompt: must be a string");
    expect_input(1, in_prompt_overlong, LLMQ_INVALID_INPUT, "prompt: must be valid UTF-8");
    expect_input(1, in_prompt_surrogate, LLMQ_INVALID_INPUT, "prompt: must be valid UTF-8");
    expect_input(1, in_prompt_beyond_unicode, LLMQ_INVALID_INPUT, "prompt: must be valid UTF-8");
    expect_input(1, in_prompt_cut_utf8, LLMQ_INVALID_INPUT, "prompt: must be valid UTF-8");
    expect_input(1, in_messages_empty, LLMQ_INVALID_INPUT, "messages: ");
    expect_input(1, in_messages_map, LLMQ_INVALID_INPUT, "messages: ");
    expect_input(1, in_message_not_map, LLMQ_INVALID_INPUT, "messages[0]: must be a map");
    expect_input(1, in_message_no_role, LLMQ_INVALID_INPUT, "messages[0].role: missing");
    expect_input(1, in_message_empty_role, LLMQ_INVALID_INPUT, "messages[0].role: must be a");
    expect_input(1, in_message_no_content, LLMQ_INVALID_INPUT, "messages[1].content: missing");
    expect_input(1, in_message_content_int, LLMQ_INVALID_INPUT,
                 "messages[0].content: must be a string");
    expect_input(1, in_message_two_roles, LLMQ_INVALID_INPUT,
                 "messages[0].role: given more than once");
}

/* ---- numbers ------------------------------------------------------------------------------ */

static void test_integer_fields(void **state)
{
    (void)state;
    expect_ok("max_tokens", p_int1);
    expect_bad("max_tokens", p_int0);
    expect_bad("max_tokens", p_neg1);
    expect_bad("max_tokens", p_real_1); /* a float is not an integer, even 1.0 */
    expect_bad("max_tokens", p_str_x);
    expect_bad("max_tokens", p_uint_max);
    expect_ok("top_k", p_int0);
    expect_bad("top_k", p_neg1);
    expect_bad("top_k", p_nil);
    expect_ok("seed", p_neg1);
    expect_ok("seed", p_int_min);
    expect_bad("seed", p_uint_max);
    expect_bad("seed", p_real_half);
    expect_ok("deadline_ms", p_int_min);
    expect_bad("deadline_ms", p_real_half);
    expect_bad("deadline_ms", p_true);
}

static void test_number_fields(void **state)
{
    (void)state;
    static const char *const any_positive[] = {"temperature", "repeat_penalty"};
    static const char *const unit[] = {"top_p", "min_p"};

    for (size_t k = 0; k < 2; k++) {
        expect_ok(any_positive[k], p_int0);
        expect_ok(any_positive[k], p_int2);
        expect_ok(any_positive[k], p_real_above_1);
        expect_ok(any_positive[k], p_float32);
        expect_bad(any_positive[k], p_real_neg);
        expect_bad(any_positive[k], p_neg1);
        expect_bad(any_positive[k], p_nan);
        expect_bad(any_positive[k], p_inf);
        expect_bad(any_positive[k], p_str_x);
        expect_bad(any_positive[k], p_false);

        expect_ok(unit[k], p_int0);
        expect_ok(unit[k], p_int1);
        expect_ok(unit[k], p_real_half);
        expect_bad(unit[k], p_real_above_1);
        expect_bad(unit[k], p_int2);
        expect_bad(unit[k], p_real_neg);
        expect_bad(unit[k], p_nan);
    }
    expect_one("temperature", p_real_neg, LLMQ_INVALID_FIELD, "temperature: must be a number >= 0");
    expect_one("top_p", p_int2, LLMQ_INVALID_FIELD, "top_p: must be a number between 0 and 1");
}

static void test_number_values(void **state)
{
    (void)state;
    struct job job;
    struct job_verdict why;

    assert_int_equal(decode_one("temperature", p_float32, &job, &why), LLMQ_OK);
    assert_true(job.temperature.set);
    assert_true(job.temperature.value == 0.25);
    job_free(&job);
    assert_int_equal(decode_one("top_p", p_int1, &job, &why), LLMQ_OK);
    assert_true(job.top_p.set && job.top_p.value == 1.0);
    job_free(&job);
    assert_int_equal(decode_one("seed", p_int_min, &job, &why), LLMQ_OK);
    assert_true(job.seed.set && job.seed.value == INT64_MIN);
    job_free(&job);
}

/* ---- stop, grammar, json_schema, stream, reply_to, model, meta ------------------------------ */

static void p_stop_16(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 16);
    for (int k = 0; k < 16; k++)
        msgpack_pack_str_with_body(pk, "s", 1);
}
static void p_stop_17(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 17);
    for (int k = 0; k < 17; k++)
        msgpack_pack_str_with_body(pk, "s", 1);
}
static void p_stop_with_empty(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 2);
    msgpack_pack_str_with_body(pk, "s", 1);
    msgpack_pack_str_with_body(pk, "", 0);
}
static void p_stop_with_int(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 1);
    msgpack_pack_int(pk, 1);
}

static void test_stop(void **state)
{
    (void)state;
    struct job job;
    struct job_verdict why;

    assert_int_equal(decode_one("stop", p_stop_16, &job, &why), LLMQ_OK);
    assert_int_equal(job.n_stop, 16);
    assert_string_equal(job.stop[15], "s");
    job_free(&job);
    assert_int_equal(decode_one("stop", p_array_empty, &job, &why), LLMQ_OK);
    assert_int_equal(job.n_stop, 0);
    job_free(&job);
    expect_one("stop", p_stop_17, LLMQ_INVALID_FIELD, "stop: at most 16");
    expect_one("stop", p_stop_with_empty, LLMQ_INVALID_FIELD, "stop[1]: must be a non-empty");
    expect_one("stop", p_stop_with_int, LLMQ_INVALID_FIELD, "stop[0]");
    expect_bad("stop", p_str_x);
}

static void test_grammar(void **state)
{
    (void)state;
    struct job job;
    struct job_verdict why;

    assert_int_equal(decode_one("grammar", p_str_x, &job, &why), LLMQ_OK);
    assert_string_equal(job.grammar, "x");
    job_free(&job);
    expect_ok("grammar", p_str_empty);
    expect_bad("grammar", p_int1);
    expect_bad("grammar", p_bin);
}

static void p_schema(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 3);
    msgpack_pack_str_with_body(pk, "type", 4);
    msgpack_pack_str_with_body(pk, "object", 6);
    msgpack_pack_str_with_body(pk, "x", 1);
    msgpack_pack_array(pk, 7);
    msgpack_pack_int(pk, 1);
    msgpack_pack_int(pk, -2);
    msgpack_pack_double(pk, 1.5);
    msgpack_pack_true(pk);
    msgpack_pack_false(pk);
    msgpack_pack_nil(pk);
    msgpack_pack_str_with_body(pk, "\xc3\xa9\"", 3);
    msgpack_pack_str_with_body(pk, "properties", 10);
    msgpack_pack_map(pk, 1);
    msgpack_pack_str_with_body(pk, "age", 3);
    msgpack_pack_map(pk, 1);
    msgpack_pack_str_with_body(pk, "minimum", 7);
    msgpack_pack_int(pk, 0);
}
static void p_schema_bin(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 1);
    msgpack_pack_str_with_body(pk, "const", 5);
    msgpack_pack_bin_with_body(pk, "x", 1);
}
static void p_schema_ext(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 1);
    msgpack_pack_str_with_body(pk, "const", 5);
    msgpack_pack_ext_with_body(pk, "x", 1, 5);
}
static void p_schema_int_key(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 1);
    msgpack_pack_int(pk, 1);
    msgpack_pack_true(pk);
}
static void p_schema_nan(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 1);
    msgpack_pack_str_with_body(pk, "maximum", 7);
    msgpack_pack_array(pk, 1);
    msgpack_pack_double(pk, NAN);
}
static void p_schema_huge_int(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 1);
    msgpack_pack_str_with_body(pk, "maximum", 7);
    msgpack_pack_uint64(pk, UINT64_MAX);
}
static void p_schema_duplicate(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 2);
    msgpack_pack_str_with_body(pk, "type", 4);
    msgpack_pack_str_with_body(pk, "object", 6);
    msgpack_pack_str_with_body(pk, "type", 4);
    msgpack_pack_str_with_body(pk, "string", 6);
}
static void p_schema_bad_utf8(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 1);
    msgpack_pack_str_with_body(pk, "type", 4);
    msgpack_pack_str_with_body(pk, "\xff", 1);
}

static void test_json_schema(void **state)
{
    (void)state;
    struct job job;
    struct job_verdict why;

    assert_int_equal(decode_one("json_schema", p_schema, &job, &why), LLMQ_OK);
    assert_string_equal(job.json_schema_json,
                        "{\"type\":\"object\",\"x\":[1,-2,1.5,true,false,null,\"\xc3\xa9\\\"\"],"
                        "\"properties\":{\"age\":{\"minimum\":0}}}");
    job_free(&job);
    expect_ok("json_schema", p_map_empty);
    expect_bad("json_schema", p_str_x);
    expect_bad("json_schema", p_array_empty);
    expect_bad("json_schema", p_schema_bin);
    expect_bad("json_schema", p_schema_ext);
    expect_bad("json_schema", p_schema_int_key);
    expect_bad("json_schema", p_schema_nan);
    expect_bad("json_schema", p_schema_huge_int);
    expect_bad("json_schema", p_schema_duplicate);
    expect_bad("json_schema", p_schema_bad_utf8);
}

static void test_grammar_and_json_schema(void **state)
{
    (void)state;
    struct msg m;
    struct job job;
    struct job_verdict why;

    msg_base(&m, 2);
    put_str(&m, "json_schema");
    msgpack_pack_map(&m.pk, 0);
    put_str(&m, "grammar");
    put_str(&m, "root ::= \"a\"");
    assert_int_equal(msg_decode(&m, &job, &why), LLMQ_INVALID_INPUT);
    assert_string_equal(why.message, "grammar, json_schema: give one, not both");
    job_free(&job);
}

static void test_stream(void **state)
{
    (void)state;
    struct job job;
    struct job_verdict why;

    assert_int_equal(decode_one("stream", p_false, &job, &why), LLMQ_OK);
    assert_false(job.stream);
    job_free(&job);
    assert_int_equal(decode_one("stream", p_true, &job, &why), LLMQ_OK);
    assert_true(job.stream);
    job_free(&job);
    expect_bad("stream", p_int1);
    expect_bad("stream", p_nil);
}

static void p_topic_249(msgpack_packer *pk)
{
    char t[249];
    memset(t, 'r', sizeof t);
    msgpack_pack_str_with_body(pk, t, sizeof t);
}
static void p_topic_250(msgpack_packer *pk)
{
    char t[250];
    memset(t, 'r', sizeof t);
    msgpack_pack_str_with_body(pk, t, sizeof t);
}
static void p_topic_chars(msgpack_packer *pk)
{
    msgpack_pack_str_with_body(pk, "Az09._-", 7);
}
static void p_topic_dots(msgpack_packer *pk)
{
    msgpack_pack_str_with_body(pk, "...", 3);
}
static void p_topic_dot(msgpack_packer *pk)
{
    msgpack_pack_str_with_body(pk, ".", 1);
}
static void p_topic_dotdot(msgpack_packer *pk)
{
    msgpack_pack_str_with_body(pk, "..", 2);
}
static void p_topic_slash(msgpack_packer *pk)
{
    msgpack_pack_str_with_body(pk, "a/b", 3);
}
static void p_topic_space(msgpack_packer *pk)
{
    msgpack_pack_str_with_body(pk, "a b", 3);
}
static void p_topic_nul(msgpack_packer *pk)
{
    msgpack_pack_str_with_body(pk, "a\0", 2);
}

static void test_reply_to(void **state)
{
    (void)state;
    struct job job;
    struct job_verdict why;

    assert_int_equal(decode_one("reply_to", p_topic_chars, &job, &why), LLMQ_OK);
    assert_string_equal(job.reply_to, "Az09._-");
    job_free(&job);
    expect_ok("reply_to", p_topic_249);
    expect_ok("reply_to", p_topic_dots);
    expect_bad("reply_to", p_topic_250);
    expect_bad("reply_to", p_topic_dot);
    expect_bad("reply_to", p_topic_dotdot);
    expect_bad("reply_to", p_topic_slash);
    expect_bad("reply_to", p_topic_space);
    expect_bad("reply_to", p_topic_nul);
    expect_bad("reply_to", p_str_empty);
    expect_bad("reply_to", p_int1);
}

static void test_model(void **state)
{
    (void)state;
    struct job job;
    struct job_verdict why;

    assert_int_equal(decode_one("model", p_str_x, &job, &why), LLMQ_OK);
    assert_string_equal(job.model, "x");
    job_free(&job);
    expect_bad("model", p_str_empty);
    expect_bad("model", p_int1);
}

/* A meta map with a bin, an ext, a float32, nested containers and a
 * non-string key: opaque, so all of it comes back. */
static void p_meta(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 5);
    msgpack_pack_str_with_body(pk, "blob", 4);
    msgpack_pack_bin_with_body(pk, "\x00\xff", 2);
    msgpack_pack_str_with_body(pk, "ext", 3);
    msgpack_pack_ext_with_body(pk, "abcd", 4, 9);
    msgpack_pack_str_with_body(pk, "f", 1);
    msgpack_pack_float(pk, 1.5f);
    msgpack_pack_int(pk, 7);
    msgpack_pack_array(pk, 2);
    msgpack_pack_int64(pk, -300);
    msgpack_pack_nil(pk);
    msgpack_pack_str_with_body(pk, "n", 1);
    msgpack_pack_map(pk, 1);
    msgpack_pack_str_with_body(pk, "big", 3);
    msgpack_pack_uint64(pk, UINT64_MAX);
}

static void test_meta_is_echoed(void **state)
{
    (void)state;
    struct job job;
    struct job_verdict why;
    msgpack_sbuffer want;
    msgpack_packer pk;

    msgpack_sbuffer_init(&want);
    msgpack_packer_init(&pk, &want, msgpack_sbuffer_write);
    p_meta(&pk);
    assert_int_equal(decode_one("meta", p_meta, &job, &why), LLMQ_OK);
    assert_int_equal(job.meta_len, want.size);
    assert_memory_equal(job.meta, want.data, want.size);
    job_free(&job);
    msgpack_sbuffer_destroy(&want);

    assert_int_equal(decode_one("meta", p_map_empty, &job, &why), LLMQ_OK);
    assert_int_equal(job.meta_len, 1);
    job_free(&job);
    expect_bad("meta", p_bin);
    expect_bad("meta", p_array_empty);
    expect_bad("meta", p_nil);
}

/* ---- duplicates, verdict order, what a rejected job still carries ---------------------------- */

static void test_duplicate_keys(void **state)
{
    (void)state;
    struct msg m;
    struct job job;
    struct job_verdict why;

    msg_base(&m, 2);
    put_str(&m, "temperature");
    msgpack_pack_double(&m.pk, 0.5);
    put_str(&m, "temperature");
    msgpack_pack_double(&m.pk, 0.5);
    assert_int_equal(msg_decode(&m, &job, &why), LLMQ_INVALID_FIELD);
    assert_string_equal(why.message, "temperature: given more than once");
    job_free(&job);

    msg_base(&m, 1); /* a second id: neither is used */
    put_str(&m, "id");
    put_str(&m, "job-2");
    assert_int_equal(msg_decode(&m, &job, &why), LLMQ_INVALID_FIELD);
    assert_string_equal(why.message, "id: given more than once");
    assert_null(job.id);
    job_free(&job);
}

static void test_first_rule_in_table_order_wins(void **state)
{
    (void)state;
    struct msg m;
    struct job job;
    struct job_verdict why;

    /* top_p comes first in the map, temperature first in the table. */
    msg_base(&m, 3);
    put_str(&m, "reply_to");
    put_str(&m, "a/b");
    put_str(&m, "top_p");
    msgpack_pack_int(&m.pk, 2);
    put_str(&m, "temperature");
    msgpack_pack_int(&m.pk, -1);
    assert_int_equal(msg_decode(&m, &job, &why), LLMQ_INVALID_FIELD);
    assert_memory_equal(why.message, "temperature:", 12);
    job_free(&job);

    /* Bad v, bad id, no input: the version speaks first. */
    msg_init(&m);
    msgpack_pack_map(&m.pk, 2);
    put_str(&m, "id");
    msgpack_pack_int(&m.pk, 1);
    put_str(&m, "v");
    msgpack_pack_int(&m.pk, 3);
    assert_int_equal(msg_decode(&m, &job, &why), LLMQ_UNSUPPORTED_VERSION);
    job_free(&job);
}

static void test_rejected_job_keeps_its_address(void **state)
{
    (void)state;
    struct msg m;
    struct job job;
    struct job_verdict why;

    msg_base(&m, 3);
    put_str(&m, "meta");
    msgpack_pack_map(&m.pk, 1);
    put_str(&m, "k");
    msgpack_pack_int(&m.pk, 1);
    put_str(&m, "temperature");
    put_str(&m, "warm");
    put_str(&m, "reply_to");
    put_str(&m, "team.a");
    assert_int_equal(msg_decode(&m, &job, &why), LLMQ_INVALID_FIELD);
    assert_string_equal(job.id, "job-1");
    assert_string_equal(job.reply_to, "team.a");
    assert_int_equal(job.meta_len, 4);
    assert_memory_equal(job.meta, "\x81\xa1k\x01", 4);
    job_free(&job);

    /* An invalid reply_to is not kept; the id still is. */
    msg_base(&m, 1);
    put_str(&m, "reply_to");
    put_str(&m, "a b");
    assert_int_equal(msg_decode(&m, &job, &why), LLMQ_INVALID_FIELD);
    assert_string_equal(job.id, "job-1");
    assert_null(job.reply_to);
    job_free(&job);
}

static void test_job_free(void **state)
{
    (void)state;
    struct job job, zero;
    struct job_verdict why;

    memset(&job, 0, sizeof job);
    memset(&zero, 0, sizeof zero);
    job_free(&job);
    assert_int_equal(decode_one("stop", p_stop_16, &job, &why), LLMQ_OK);
    job_free(&job);
    assert_memory_equal(&job, &zero, sizeof job);
    job_free(&job);                                                      /* twice is fine */
    assert_int_equal(job_decode("\xc1", 1, &job, NULL), LLMQ_MALFORMED); /* why is optional */
    job_free(&job);
}

/* ---- admission -------------------------------------------------------------------------- */

static const char *const allowlist[] = {"llmq.replies", "team.*", "exact"};

static struct job_policy test_policy(void)
{
    struct job_policy p = {
        .max_prompt_bytes = 10,
        .reply_topics = allowlist,
        .n_reply_topics = 3,
        .default_reply_topic = "llmq.replies",
        .model = "tiny",
    };
    return p;
}

static void test_reply_topic_allowlist(void **state)
{
    (void)state;
    struct job_policy p = test_policy();
    static const char *const star[] = {"*"};

    assert_true(job_reply_topic_allowed(&p, "llmq.replies"));
    assert_true(job_reply_topic_allowed(&p, "team."));
    assert_true(job_reply_topic_allowed(&p, "team.alpha"));
    assert_true(job_reply_topic_allowed(&p, "exact"));
    assert_false(job_reply_topic_allowed(&p, "exactly"));
    assert_false(job_reply_topic_allowed(&p, "teamx"));
    assert_false(job_reply_topic_allowed(&p, "other"));
    assert_false(job_reply_topic_allowed(&p, NULL));

    p.n_reply_topics = 0; /* only the default */
    assert_true(job_reply_topic_allowed(&p, "llmq.replies"));
    assert_false(job_reply_topic_allowed(&p, "team.alpha"));

    p.reply_topics = star;
    p.n_reply_topics = 1;
    assert_true(job_reply_topic_allowed(&p, "anything"));
}

static void test_reply_topic(void **state)
{
    (void)state;
    struct job_policy p = test_policy();
    struct job job;
    memset(&job, 0, sizeof job);
    assert_string_equal(job_reply_topic(&job, &p), "llmq.replies");
    job.reply_to = "team.b";
    assert_string_equal(job_reply_topic(&job, &p), "team.b");
}

static void expect_admit(const struct job *job, const struct job_policy *p, enum llmq_code code,
                         const char *prefix)
{
    struct job_verdict why;
    enum llmq_code got = job_admit(job, p, 1000, &why);
    if (got != code)
        fail_msg("got %s (%s), expected %s", llmq_code_name(got), why.message,
                 llmq_code_name(code));
    assert_int_equal(why.code, code);
    if (strncmp(why.message, prefix, strlen(prefix)) != 0)
        fail_msg("message \"%s\" does not start with \"%s\"", why.message, prefix);
}

/* No allowlist entry ever names the worker's own topics nor "__*" (issue 11
 * point 5): reply_to = "llmq.jobs" under "llmq.*" would loop its replies
 * back in as jobs. */
static void test_reply_topic_never_own(void **state)
{
    (void)state;
    static const char *const prefix[] = {"llmq.*", "exact.jobs"};
    static const char *const star[] = {"*"};
    static const char *const own[] = {"llmq.jobs", "^team\\.(a|b)\\.jobs$", "llmq.dead",
                                      "llmq.metrics"};
    struct job_policy p = test_policy();
    p.reply_topics = prefix;
    p.n_reply_topics = 2;
    p.own_topics = own;
    p.n_own_topics = 4;
    assert_true(job_reply_topic_allowed(&p, "llmq.replies")); /* the default */
    assert_true(job_reply_topic_allowed(&p, "llmq.team-a"));
    assert_false(job_reply_topic_allowed(&p, "llmq.jobs"));
    assert_false(job_reply_topic_allowed(&p, "llmq.dead"));
    assert_false(job_reply_topic_allowed(&p, "llmq.metrics"));
    p.reply_topics = star;
    p.n_reply_topics = 1;
    assert_false(job_reply_topic_allowed(&p, "team.a.jobs")); /* by the jobs regex */
    assert_true(job_reply_topic_allowed(&p, "team.c.jobs"));
    assert_false(job_reply_topic_allowed(&p, "__consumer_offsets"));
    assert_false(job_reply_topic_allowed(&p, "__transaction_state"));
    assert_true(job_reply_topic_allowed(&p, "_one_underscore"));

    struct job job;
    memset(&job, 0, sizeof job);
    job.reply_to = "llmq.jobs";
    p.reply_topics = prefix;
    p.n_reply_topics = 2;
    expect_admit(&job, &p, LLMQ_REPLY_TO_DENIED, "reply_to: \"llmq.jobs\" is not allowed");
}

static void test_admit(void **state)
{
    (void)state;
    struct job_policy p = test_policy();
    struct job_message msgs[2] = {{"system", "12345"}, {"user", "123456"}};
    char prompt[] = "0123456789";
    struct job job;

    memset(&job, 0, sizeof job);
    job.prompt = prompt;
    job.prompt_len = 10;
    expect_admit(&job, &p, LLMQ_OK, "");

    job.prompt_len = 11;
    expect_admit(&job, &p, LLMQ_PROMPT_TOO_LARGE, "prompt: 11 bytes");
    job.prompt = NULL;
    job.prompt_len = 0;
    job.messages = msgs;
    job.n_messages = 2;
    expect_admit(&job, &p, LLMQ_PROMPT_TOO_LARGE, "messages: 11 bytes");
    job.n_messages = 1;
    expect_admit(&job, &p, LLMQ_OK, "");

    job.model = "tiny";
    expect_admit(&job, &p, LLMQ_OK, "");
    job.model = "big";
    expect_admit(&job, &p, LLMQ_MODEL_MISMATCH, "model: ");
    p.model = NULL;
    expect_admit(&job, &p, LLMQ_OK, "");
    p.model = "tiny";
    job.model = NULL;

    job.deadline_ms.set = true;
    job.deadline_ms.value = 1001;
    expect_admit(&job, &p, LLMQ_OK, "");
    job.deadline_ms.value = 1000;
    expect_admit(&job, &p, LLMQ_EXPIRED, "deadline_ms: ");
    job.deadline_ms.value = INT64_MIN;
    expect_admit(&job, &p, LLMQ_EXPIRED, "deadline_ms: ");

    job.reply_to = "nope";
    expect_admit(&job, &p, LLMQ_REPLY_TO_DENIED, "reply_to: \"nope\"");
    job.reply_to = NULL;
    p.default_reply_topic = NULL; /* nowhere to reply */
    p.n_reply_topics = 0;
    expect_admit(&job, &p, LLMQ_REPLY_TO_DENIED, "reply_to: ");
}

static void test_admit_order(void **state)
{
    (void)state;
    struct job_policy p = test_policy();
    char prompt[] = "far too long a prompt";
    struct job job;

    memset(&job, 0, sizeof job);
    job.prompt = prompt;
    job.prompt_len = strlen(prompt);
    job.model = "big";
    job.deadline_ms.set = true;
    job.deadline_ms.value = 0;
    job.reply_to = "nope";
    expect_admit(&job, &p, LLMQ_REPLY_TO_DENIED, "reply_to");
    job.reply_to = NULL;
    expect_admit(&job, &p, LLMQ_PROMPT_TOO_LARGE, "prompt");
    job.prompt_len = 1;
    expect_admit(&job, &p, LLMQ_MODEL_MISMATCH, "model");
    job.model = NULL;
    expect_admit(&job, &p, LLMQ_EXPIRED, "deadline_ms");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minimal_prompt_job),
        cmocka_unit_test(test_every_field),
        cmocka_unit_test(test_chat_job),
        cmocka_unit_test(test_unknown_fields_are_ignored),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_nesting_limit),
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_id),
        cmocka_unit_test(test_input),
        cmocka_unit_test(test_integer_fields),
        cmocka_unit_test(test_number_fields),
        cmocka_unit_test(test_number_values),
        cmocka_unit_test(test_stop),
        cmocka_unit_test(test_grammar),
        cmocka_unit_test(test_json_schema),
        cmocka_unit_test(test_grammar_and_json_schema),
        cmocka_unit_test(test_stream),
        cmocka_unit_test(test_reply_to),
        cmocka_unit_test(test_model),
        cmocka_unit_test(test_meta_is_echoed),
        cmocka_unit_test(test_duplicate_keys),
        cmocka_unit_test(test_first_rule_in_table_order_wins),
        cmocka_unit_test(test_rejected_job_keeps_its_address),
        cmocka_unit_test(test_job_free),
        cmocka_unit_test(test_reply_topic_allowlist),
        cmocka_unit_test(test_reply_topic_never_own),
        cmocka_unit_test(test_reply_topic),
        cmocka_unit_test(test_admit),
        cmocka_unit_test(test_admit_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
