/* test_vectors.c — the worker against schemas/vectors: every job vector gets
 * the verdict index.json expects (decode, then admit under the index's
 * policy) with a message that is valid UTF-8, every valid chunk/done/error
 * vector is byte-identical to what reply.c encodes for the same values, and
 * every .msgpack file means what its .json file says. Of index.json's
 * "additions", only those whose features the worker implements are judged;
 * the others are skipped and counted aloud, per feature. */
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

#include "cancel.h"
#include "codes.h"
#include "job.h"
#include "logprobs.h"
#include "reply.h"

#ifndef LLMQ_SOURCE_DIR
#error "LLMQ_SOURCE_DIR must name the repository root"
#endif
#define VECTOR_DIR LLMQ_SOURCE_DIR "/schemas/vectors/"

/* The features of index.json's additions that the worker implements
 * (NULL-terminated). An addition that requires any other is not judged. */
static const char *const worker_features[] = {"cancel", "partial_text", "logprobs",
                                              "lora",   "chunk_ms",     NULL};

struct vectors {
    json_t *index;
    json_t *list; /* index["vectors"], plus the additions the worker implements */
    json_t *all;  /* every vector and addition, for the checks of the files themselves */
    struct job_policy policy;
    const char *topics[8];
    const char *lora[8];
    int64_t now_ms;
};

static char *vector_path(const char *file)
{
    size_t n = strlen(VECTOR_DIR) + strlen(file) + 1;
    char *path = malloc(n);
    assert_non_null(path);
    snprintf(path, n, "%s%s", VECTOR_DIR, file);
    return path;
}

static uint8_t *read_vector(const char *file, size_t *len)
{
    char *path = vector_path(file);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    free(path);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long size = ftell(f);
    assert_true(size >= 0);
    rewind(f);
    uint8_t *buf = malloc((size_t)size + 1); /* +1: a 0-byte vector still gets a buffer */
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    *len = (size_t)size;
    return buf;
}

static json_t *read_json(const char *file)
{
    char *path = vector_path(file);
    json_error_t err;
    json_t *value = json_load_file(path, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    if (!value)
        fail_msg("%s:%d: %s", path, err.line, err.text);
    free(path);
    return value;
}

static bool worker_implements(const char *feature)
{
    for (size_t k = 0; worker_features[k]; k++)
        if (strcmp(worker_features[k], feature) == 0)
            return true;
    return false;
}

/* The first feature an addition requires that the worker lacks, or NULL. */
static const char *missing_feature(const json_t *entry)
{
    size_t k;
    json_t *feature;
    json_array_foreach(json_object_get(entry, "requires"), k, feature)
    {
        if (!worker_implements(json_string_value(feature)))
            return json_string_value(feature);
    }
    return NULL;
}

/* Sort the additions into v->list (judged) or skipped, and say how many
 * were skipped for which missing feature. */
static void sort_additions(struct vectors *v)
{
    json_t *additions = json_object_get(v->index, "additions");
    json_t *skipped = json_object(); /* feature -> count */
    size_t k, n_skipped = 0;
    json_t *entry;
    const char *feature;

    assert_non_null(json_object_get(v->index, "features"));
    json_array_foreach(additions, k, entry)
    {
        json_array_append(v->all, entry);
        const char *missing = missing_feature(entry);
        if (!missing) {
            json_array_append(v->list, entry);
            continue;
        }
        json_int_t seen = json_integer_value(json_object_get(skipped, missing));
        json_object_set_new(skipped, missing, json_integer(seen + 1));
        n_skipped++;
    }
    print_message("[ SKIPPED  ] %zu of %zu additions to the contract need worker support not "
                  "written yet (schemas/vectors/index.json \"requires\"); by first missing "
                  "feature:\n",
                  n_skipped, json_array_size(additions));
    json_object_foreach(skipped, feature, entry)
        print_message("[ SKIPPED  ]   %-20s %lld\n", feature, (long long)json_integer_value(entry));
    json_decref(skipped);
}

static int load_index(void **state)
{
    struct vectors *v = calloc(1, sizeof *v);
    assert_non_null(v);
    v->index = read_json("index.json");
    v->list = json_array();
    v->all = json_array();
    json_array_extend(v->list, json_object_get(v->index, "vectors"));
    json_array_extend(v->all, v->list);
    assert_true(json_array_size(v->list) > 0);
    sort_additions(v);

    json_t *policy = json_object_get(v->index, "policy");
    json_t *topics = json_object_get(policy, "reply_topics");
    assert_true(json_array_size(topics) <= sizeof v->topics / sizeof v->topics[0]);
    for (size_t k = 0; k < json_array_size(topics); k++)
        v->topics[k] = json_string_value(json_array_get(topics, k));
    v->policy.max_prompt_bytes =
        (size_t)json_integer_value(json_object_get(policy, "max_prompt_bytes"));
    v->policy.reply_topics = v->topics;
    v->policy.n_reply_topics = json_array_size(topics);
    v->policy.default_reply_topic =
        json_string_value(json_object_get(policy, "default_reply_topic"));
    v->policy.model = json_string_value(json_object_get(policy, "model"));
    v->now_ms = json_integer_value(json_object_get(policy, "now_ms"));
    json_t *lora = json_object_get(policy, "lora");
    assert_true(json_array_size(lora) <= sizeof v->lora / sizeof v->lora[0]);
    for (size_t k = 0; k < json_array_size(lora); k++)
        v->lora[k] = json_string_value(json_array_get(lora, k));
    v->policy.lora_names = v->lora;
    v->policy.n_lora_names = json_array_size(lora);
    assert_non_null(v->policy.default_reply_topic);
    assert_non_null(v->policy.model);
    *state = v;
    return 0;
}

static int free_index(void **state)
{
    struct vectors *v = *state;
    json_decref(v->list);
    json_decref(v->all);
    json_decref(v->index);
    free(v);
    return 0;
}

static const char *str_at(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

static int64_t int_at(const json_t *obj, const char *key)
{
    return json_integer_value(json_object_get(obj, key));
}

static double num_at(const json_t *obj, const char *key)
{
    return json_number_value(json_object_get(obj, key));
}

/* Pack a JSON value as msgpack (objects in their order in the file). */
static void pack_json(msgpack_packer *pk, const json_t *value)
{
    const char *key;
    json_t *item;
    size_t k;

    switch (json_typeof(value)) {
    case JSON_OBJECT:
        msgpack_pack_map(pk, json_object_size(value));
        json_object_foreach((json_t *)value, key, item)
        {
            msgpack_pack_str_with_body(pk, key, strlen(key));
            pack_json(pk, item);
        }
        break;
    case JSON_ARRAY:
        msgpack_pack_array(pk, json_array_size(value));
        json_array_foreach(value, k, item) pack_json(pk, item);
        break;
    case JSON_STRING:
        msgpack_pack_str_with_body(pk, json_string_value(value), json_string_length(value));
        break;
    case JSON_INTEGER:
        msgpack_pack_int64(pk, json_integer_value(value));
        break;
    case JSON_REAL:
        msgpack_pack_double(pk, json_real_value(value));
        break;
    case JSON_TRUE:
        msgpack_pack_true(pk);
        break;
    case JSON_FALSE:
        msgpack_pack_false(pk);
        break;
    case JSON_NULL:
        msgpack_pack_nil(pk);
        break;
    }
}

/* Whether a msgpack value means the JSON value (maps compared by key). */
static bool same_meaning(const msgpack_object *o, const json_t *j)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return json_is_null(j);
    case MSGPACK_OBJECT_BOOLEAN:
        return json_is_boolean(j) && o->via.boolean == json_is_true(j);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        return json_is_integer(j) && json_integer_value(j) >= 0 &&
               (uint64_t)json_integer_value(j) == o->via.u64;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return json_is_integer(j) && json_integer_value(j) == o->via.i64;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return json_is_real(j) && json_real_value(j) == o->via.f64;
    case MSGPACK_OBJECT_STR:
        return json_is_string(j) && json_string_length(j) == o->via.str.size &&
               memcmp(json_string_value(j), o->via.str.ptr, o->via.str.size) == 0;
    case MSGPACK_OBJECT_ARRAY:
        if (!json_is_array(j) || json_array_size(j) != o->via.array.size)
            return false;
        for (uint32_t k = 0; k < o->via.array.size; k++)
            if (!same_meaning(&o->via.array.ptr[k], json_array_get(j, k)))
                return false;
        return true;
    case MSGPACK_OBJECT_MAP:
        if (!json_is_object(j) || json_object_size(j) != o->via.map.size)
            return false;
        for (uint32_t k = 0; k < o->via.map.size; k++) {
            const msgpack_object *key = &o->via.map.ptr[k].key;
            if (key->type != MSGPACK_OBJECT_STR)
                return false;
            json_t *val = json_object_getn(j, key->via.str.ptr, key->via.str.size);
            if (!val || !same_meaning(&o->via.map.ptr[k].val, val))
                return false;
        }
        return true;
    default:
        return false;
    }
}

static void test_every_msgpack_means_its_json(void **state)
{
    struct vectors *v = *state;
    size_t k, checked = 0;
    json_t *entry;

    json_array_foreach(v->all, k, entry)
    {
        const char *json_file = str_at(entry, "json");
        if (!json_file) {
            assert_non_null(str_at(entry, "description"));
            continue;
        }
        size_t len, off = 0;
        uint8_t *buf = read_vector(str_at(entry, "file"), &len);
        json_t *meaning = read_json(json_file);
        msgpack_unpacked msg;
        msgpack_unpacked_init(&msg);
        int rc = msgpack_unpack_next(&msg, (const char *)buf, len, &off);
        if (rc != MSGPACK_UNPACK_SUCCESS) /* nested deeper than msgpack-c goes */
            assert_string_equal(str_at(entry, "expected_code"), "malformed");
        else if (!same_meaning(&msg.data, meaning))
            fail_msg("%s does not mean %s", str_at(entry, "file"), json_file);
        msgpack_unpacked_destroy(&msg);
        json_decref(meaning);
        free(buf);
        checked++;
    }
    assert_true(checked > 50);
}

/* For a valid job with a JSON meaning: json_schema and meta came through. */
static void check_job_payload(const struct job *job, const char *json_file)
{
    json_t *meaning = read_json(json_file);
    json_t *schema = json_object_get(meaning, "json_schema");
    json_t *meta = json_object_get(meaning, "meta");

    if (schema) {
        json_error_t err;
        json_t *decoded = json_loads(job->json_schema_json, 0, &err);
        assert_non_null(decoded);
        assert_true(json_equal(decoded, schema));
        json_decref(decoded);
    } else {
        assert_null(job->json_schema_json);
    }
    if (meta) {
        msgpack_sbuffer sb;
        msgpack_packer pk;
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        pack_json(&pk, meta);
        assert_int_equal(job->meta_len, sb.size);
        assert_memory_equal(job->meta, sb.data, sb.size);
        msgpack_sbuffer_destroy(&sb);
    } else {
        assert_null(job->meta);
    }
    json_decref(meaning);
}

/* Whether s is valid UTF-8: shortest forms, no surrogates, at most U+10FFFF. */
static bool utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p, n = c < 0x80                 ? 0
                             : c >= 0xC2 && c <= 0xDF ? 1
                             : (c & 0xF0) == 0xE0     ? 2
                             : c >= 0xF0 && c <= 0xF4 ? 3
                                                      : 4;
        if (n == 4)
            return false;
        uint32_t cp = n == 0 ? c : c & (0x3F >> n);
        for (unsigned k = 1; k <= n; k++) {
            if ((p[k] & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (p[k] & 0x3F);
        }
        if ((n == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
            (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
            return false;
        p += n + 1;
    }
    return true;
}

/* An entry's reply_topic (where a rejected job's error reply goes, null for
 * nowhere) against the topic the worker addresses: the job's reply topic
 * when its id was read and the topic passes the allowlist. */
static void check_reply_topic(const json_t *entry, const struct job *job,
                              const struct job_policy *policy)
{
    const json_t *want = json_object_get(entry, "reply_topic");
    if (!want)
        return;
    const char *topic = job_reply_topic(job, policy);
    const char *got = job->id && job_reply_topic_allowed(policy, topic) ? topic : NULL;
    const char *expected = json_string_value(want); /* NULL for json null */
    if (got == NULL ? expected != NULL : expected == NULL || strcmp(got, expected) != 0)
        fail_msg("%s: error reply to %s, expected %s", str_at(entry, "name"), got ? got : "(none)",
                 expected ? expected : "(none)");
}

static void test_job_vectors_get_their_verdict(void **state)
{
    struct vectors *v = *state;
    size_t k, n_jobs = 0, n_admit = 0;
    json_t *entry;

    json_array_foreach(v->list, k, entry)
    {
        if (strcmp(str_at(entry, "kind"), "job") != 0)
            continue;
        const char *name = str_at(entry, "name");
        bool valid = json_is_true(json_object_get(entry, "valid"));
        const char *expected = valid ? "ok" : str_at(entry, "expected_code");
        const char *stage = str_at(entry, "stage");
        const char *field = str_at(entry, "field");
        struct job job;
        struct job_verdict why;
        size_t len;
        uint8_t *buf = read_vector(str_at(entry, "file"), &len);

        enum llmq_code code = job_decode(buf, len, &job, &why);
        if (!valid && strcmp(stage, "decode") == 0 && code == LLMQ_OK)
            fail_msg("%s: decoded fine, expected %s", name, expected);
        if (code == LLMQ_OK) {
            code = job_admit(&job, &v->policy, v->now_ms, &why);
            n_admit++;
        }
        if (strcmp(llmq_code_name(code), expected) != 0)
            fail_msg("%s: got %s (%s), expected %s", name, llmq_code_name(code), why.message,
                     expected);
        assert_int_equal(why.code, code);
        if (field && strncmp(why.message, field, strlen(field)) != 0)
            fail_msg("%s: message \"%s\" does not start with %s", name, why.message, field);
        if (!utf8_valid(why.message))
            fail_msg("%s: message \"%s\" is not valid UTF-8", name, why.message);
        check_reply_topic(entry, &job, &v->policy);
        if (valid && str_at(entry, "json"))
            check_job_payload(&job, str_at(entry, "json"));
        job_free(&job);
        free(buf);
        n_jobs++;
    }
    assert_true(n_jobs > 40);
    assert_true(n_admit > 20);
}

static enum llmq_code code_named(const char *name)
{
    for (int c = 0; c < LLMQ_CODE_COUNT; c++)
        if (strcmp(llmq_code_name((enum llmq_code)c), name) == 0)
            return (enum llmq_code)c;
    fail_msg("unknown code %s", name);
    return LLMQ_INTERNAL;
}

/* A [token, logprob] pair of a JSON meaning. */
static struct logprob_token token_at(const json_t *pair)
{
    const json_t *token = json_array_get(pair, 0);
    return (struct logprob_token){json_string_value(token), json_string_length(token),
                                  json_number_value(json_array_get(pair, 1))};
}

/* Pack a JSON logprobs array's entries with logprobs.c into `sb`. */
static void pack_logprobs(msgpack_sbuffer *sb, const json_t *entries, struct reply_logprobs *lp)
{
    size_t k, j;
    json_t *entry, *alt;
    json_array_foreach(entries, k, entry)
    {
        struct logprob_token top[JOB_LOGPROBS_MAX + 1];
        const json_t *alts = json_array_get(entry, 2);
        assert_true(json_array_size(alts) <= JOB_LOGPROBS_MAX + 1);
        json_array_foreach(alts, j, alt) top[j] = token_at(alt);
        struct logprob_token token = token_at(entry);
        assert_int_equal(logprobs_pack_entry(sb, &token, top, json_array_size(alts)), 0);
    }
    *lp = (struct reply_logprobs){(const uint8_t *)sb->data, sb->size, json_array_size(entries)};
}

/* Encode the values of a reply's JSON meaning with reply.c. */
static void encode_reply(msgpack_sbuffer *out, const json_t *r)
{
    const char *type = json_string_value(json_object_get(r, "type"));
    const json_t *text = json_object_get(r, "text");
    const json_t *meta_json = json_object_get(r, "meta");
    const json_t *logprobs_json = json_object_get(r, "logprobs");
    const json_t *partial = json_object_get(r, "partial_text");
    msgpack_sbuffer meta, lp_buf;
    msgpack_packer pk;
    struct reply_logprobs lp;
    int rc;

    msgpack_sbuffer_init(&lp_buf);
    if (logprobs_json)
        pack_logprobs(&lp_buf, logprobs_json, &lp);
    msgpack_sbuffer_init(&meta);
    msgpack_packer_init(&pk, &meta, msgpack_sbuffer_write);
    if (meta_json)
        pack_json(&pk, meta_json);

    if (strcmp(type, "chunk") == 0) {
        rc = reply_encode_chunk(out, str_at(r, "id"), str_at(r, "run"), (uint64_t)int_at(r, "seq"),
                                json_string_value(text), json_string_length(text),
                                logprobs_json ? &lp : NULL);
    } else if (strcmp(type, "done") == 0) {
        const json_t *usage = json_object_get(r, "usage");
        const json_t *timings = json_object_get(r, "timings");
        struct reply_done d = {
            .id = str_at(r, "id"),
            .run = str_at(r, "run"),
            .text = json_string_value(text),
            .text_len = json_string_length(text),
            .logprobs = logprobs_json ? &lp : NULL,
            .finish = str_at(r, "finish"),
            .usage = {int_at(usage, "prompt_tokens"), int_at(usage, "completion_tokens")},
            .timings = {num_at(timings, "queue_ms"), num_at(timings, "ttft_ms"),
                        num_at(timings, "gen_ms"), num_at(timings, "tokens_per_s")},
            .worker = str_at(r, "worker"),
            .meta = (const uint8_t *)meta.data,
            .meta_len = meta.size,
        };
        rc = reply_encode_done(out, &d);
    } else {
        assert_string_equal(type, "error");
        struct reply_error e = {
            .id = str_at(r, "id"),
            .run = str_at(r, "run"),
            .code = code_named(str_at(r, "code")),
            .message = str_at(r, "message"),
            .worker = str_at(r, "worker"),
            .partial_text = json_string_value(partial),
            .partial_text_len = json_string_length(partial),
            .meta = (const uint8_t *)meta.data,
            .meta_len = meta.size,
        };
        assert_int_equal(llmq_code_retryable(e.code),
                         json_is_true(json_object_get(r, "retryable")));
        rc = reply_encode_error(out, &e);
    }
    assert_int_equal(rc, 0);
    msgpack_sbuffer_destroy(&meta);
    msgpack_sbuffer_destroy(&lp_buf);
}

static void test_reply_vectors_match_the_encoder(void **state)
{
    struct vectors *v = *state;
    size_t k, checked = 0;
    json_t *entry;

    json_array_foreach(v->list, k, entry)
    {
        const char *kind = str_at(entry, "kind");
        if (!json_is_true(json_object_get(entry, "valid")) ||
            (strcmp(kind, "chunk") != 0 && strcmp(kind, "done") != 0 && strcmp(kind, "error") != 0))
            continue;
        if (!str_at(entry, "json")) { /* a bin token: unit-tested in test_reply.c */
            assert_string_equal(str_at(entry, "name"), "chunk_logprobs_split_char");
            continue;
        }
        size_t len;
        uint8_t *want = read_vector(str_at(entry, "file"), &len);
        json_t *meaning = read_json(str_at(entry, "json"));
        msgpack_sbuffer out;
        msgpack_sbuffer_init(&out);
        encode_reply(&out, meaning);
        if (out.size != len || memcmp(out.data, want, len) != 0)
            fail_msg("%s: reply.c encodes %zu bytes that differ from the vector's %zu",
                     str_at(entry, "name"), out.size, len);
        msgpack_sbuffer_destroy(&out);
        json_decref(meaning);
        free(want);
        checked++;
    }
    assert_true(checked >= 9);
}

static void test_cancel_vectors_get_their_verdict(void **state)
{
    struct vectors *v = *state;
    size_t k, checked = 0;
    json_t *entry;

    json_array_foreach(v->list, k, entry)
    {
        if (strcmp(str_at(entry, "kind"), "cancel") != 0)
            continue;
        size_t len;
        uint8_t *buf = read_vector(str_at(entry, "file"), &len);
        struct cancel_msg msg;
        char why[128];
        bool valid = json_is_true(json_object_get(entry, "valid"));
        int rc = cancel_decode(buf, len, &msg, why, sizeof(why));
        if (valid != (rc == 0))
            fail_msg("%s: cancel_decode says %s", str_at(entry, "name"), rc == 0 ? "ok" : why);
        if (valid) {
            json_t *meaning = read_json(str_at(entry, "json"));
            assert_string_equal(msg.id, str_at(meaning, "id"));
            assert_string_equal(msg.run, str_at(meaning, "run") ? str_at(meaning, "run") : "");
            json_decref(meaning);
        }
        free(buf);
        checked++;
    }
    assert_true(checked >= 9);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_msgpack_means_its_json),
        cmocka_unit_test(test_job_vectors_get_their_verdict),
        cmocka_unit_test(test_reply_vectors_match_the_encoder),
        cmocka_unit_test(test_cancel_vectors_get_their_verdict),
    };
    return cmocka_run_group_tests(tests, load_index, free_index);
}
