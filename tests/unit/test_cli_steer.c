/* test_cli_steer.c — the CLI's steering flags (--lane, --logprobs, --lora,
 * --chunk-ms) and its check of the fields they set, against spec.md and the
 * job vectors of schemas/vectors/index.json additions[] that need only the
 * logprobs, lora and chunk_ms features (decode stage: admission against a
 * worker's adapters is the worker's). Also `llmq cancel`'s encoding,
 * byte for byte against the cancel vectors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cli_cancel.h"
#include "cli_job.h"
#include "cli_steer.h"

#define VECTOR_DIR LLMQ_SOURCE_DIR "/schemas/vectors/"

static void test_flags_set_fields(void **state)
{
    (void)state;
    struct cli_steer s = {0};
    struct cli_global g;
    cli_global_init(&g);
    assert_string_equal(cli_steer_topic(&s, &g), "llmq.jobs");
    assert_int_equal(cli_steer_option(&s, "t", CLI_OPT_LANE, "llmq.jobs.urgent"), 0);
    assert_int_equal(cli_steer_option(&s, "t", CLI_OPT_LOGPROBS, "20"), 0);
    assert_int_equal(cli_steer_option(&s, "t", CLI_OPT_CHUNK_MS, "0"), 0);
    assert_int_equal(cli_steer_option(&s, "t", CLI_OPT_LORA, "style:-0.5"), 0);
    assert_int_equal(cli_steer_option(&s, "t", CLI_OPT_LORA, "tiny-lora"), 0);
    assert_int_equal(cli_steer_option(&s, "t", 'x', "y"), 1);
    assert_string_equal(cli_steer_topic(&s, &g), "llmq.jobs.urgent");
    json_t *want = json_loads("{\"logprobs\":20,\"chunk_ms\":0,\"lora\":[{\"name\":\"style\","
                              "\"scale\":-0.5},{\"name\":\"tiny-lora\"}]}",
                              0, NULL);
    assert_true(json_equal(s.fields, want));
    json_decref(want);

    /* A job's own fields win; the others are added. */
    json_t *job = json_loads("{\"prompt\":\"x\",\"logprobs\":0}", 0, NULL);
    assert_int_equal(cli_steer_apply(&s, job), 0);
    assert_int_equal(json_integer_value(json_object_get(job, "logprobs")), 0);
    assert_int_equal(json_integer_value(json_object_get(job, "chunk_ms")), 0);
    assert_int_equal(json_array_size(json_object_get(job, "lora")), 2);
    json_decref(job);
    cli_steer_free(&s);
}

static void test_bad_flags(void **state)
{
    (void)state;
    static const struct {
        int opt;
        const char *arg;
    } cases[] = {
        {CLI_OPT_LOGPROBS, "21"},  {CLI_OPT_LOGPROBS, "-1"},    {CLI_OPT_LOGPROBS, "2.0"},
        {CLI_OPT_LOGPROBS, ""},    {CLI_OPT_CHUNK_MS, "60001"}, {CLI_OPT_CHUNK_MS, "-1"},
        {CLI_OPT_CHUNK_MS, "1e3"}, {CLI_OPT_LORA, ""},          {CLI_OPT_LORA, ":1"},
        {CLI_OPT_LORA, "a:"},      {CLI_OPT_LORA, "a:x"},       {CLI_OPT_LORA, "a:inf"},
        {CLI_OPT_LANE, ""},        {CLI_OPT_LANE, "a b"},       {CLI_OPT_LANE, ".."},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cli_steer s = {0};
        if (cli_steer_option(&s, "t", cases[i].opt, cases[i].arg) != -1)
            fail_msg("accepted %d %s", cases[i].opt, cases[i].arg);
        cli_steer_free(&s);
    }
    /* a name twice, and a 17th adapter */
    struct cli_steer s = {0};
    assert_int_equal(cli_steer_option(&s, "t", CLI_OPT_LORA, "a"), 0);
    assert_int_equal(cli_steer_option(&s, "t", CLI_OPT_LORA, "a:2"), -1);
    cli_steer_free(&s);
    char name[8];
    for (int n = 0; n < JOB_LORA_MAX; n++) {
        snprintf(name, sizeof(name), "a%d", n);
        assert_int_equal(cli_steer_option(&s, "t", CLI_OPT_LORA, name), 0);
    }
    assert_int_equal(cli_steer_option(&s, "t", CLI_OPT_LORA, "last"), -1);
    cli_steer_free(&s);
}

/* Whether every feature a vector requires is one the CLI checks. */
static bool cli_judges(const json_t *vector)
{
    static const char *const mine[] = {"logprobs", "lora", "chunk_ms"};
    size_t i;
    json_t *feature;
    json_array_foreach(json_object_get(vector, "requires"), i, feature)
    {
        bool known = false;
        for (size_t k = 0; k < sizeof(mine) / sizeof(mine[0]); k++)
            known |= strcmp(json_string_value(feature), mine[k]) == 0;
        if (!known)
            return false;
    }
    return true;
}

static json_t *load(const char *file)
{
    char path[512];
    snprintf(path, sizeof(path), VECTOR_DIR "%s", file);
    json_t *value = json_load_file(path, JSON_REJECT_DUPLICATES, NULL);
    if (!value)
        fail_msg("cannot read %s", path);
    return value;
}

/* One job vector through cli_job_build(): its verdict must be the vector's. */
static void judge_job(const json_t *vector)
{
    const char *name = json_string_value(json_object_get(vector, "name"));
    json_t *obj = load(json_string_value(json_object_get(vector, "json")));
    const char *reply_to = json_string_value(json_object_get(obj, "reply_to"));
    struct cli_job cj;
    struct job_verdict why;
    enum llmq_code code = cli_job_build(obj, NULL, reply_to ? reply_to : "llmq.replies", &cj, &why);
    json_decref(obj);
    if (json_is_true(json_object_get(vector, "valid"))) {
        if (code != LLMQ_OK)
            fail_msg("%s: refused: %s", name, why.message);
        cli_job_free(&cj);
        return;
    }
    const char *expected = json_string_value(json_object_get(vector, "expected_code"));
    const char *field = json_string_value(json_object_get(vector, "field"));
    if (code == LLMQ_OK || strcmp(llmq_code_name(code), expected) != 0 ||
        (field && strncmp(why.message, field, strlen(field)) != 0))
        fail_msg("%s: got %s (%s), want %s on %s", name, llmq_code_name(code), why.message,
                 expected, field ? field : "-");
}

static void test_job_vectors(void **state)
{
    (void)state;
    json_t *index = load("index.json");
    size_t i, judged = 0;
    json_t *vector;
    json_array_foreach(json_object_get(index, "additions"), i, vector)
    {
        const char *kind = json_string_value(json_object_get(vector, "kind"));
        const char *stage = json_string_value(json_object_get(vector, "stage"));
        if (strcmp(kind, "job") != 0 || !cli_judges(vector) || !json_object_get(vector, "json") ||
            (stage && strcmp(stage, "admit") == 0))
            continue;
        judge_job(vector);
        judged++;
    }
    json_decref(index);
    assert_true(judged >= 20); /* the additions for logprobs, lora and chunk_ms */
}

static void expect_bytes(const msgpack_sbuffer *got, const char *file)
{
    char path[512];
    unsigned char want[512];
    snprintf(path, sizeof(path), VECTOR_DIR "%s", file);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t n = fread(want, 1, sizeof(want), f);
    fclose(f);
    assert_int_equal(got->size, n);
    assert_memory_equal(got->data, want, n);
}

static void test_cancel_encoding(void **state)
{
    (void)state;
    msgpack_sbuffer wire;
    char err[128];
    assert_int_equal(cli_cancel_encode("job-5", NULL, NULL, &wire, err, sizeof(err)), 0);
    expect_bytes(&wire, "cancel_ok.msgpack");
    msgpack_sbuffer_destroy(&wire);
    assert_int_equal(
        cli_cancel_encode("job-5", "w1-000009", "user pressed Ctrl-C", &wire, err, sizeof(err)), 0);
    expect_bytes(&wire, "cancel_run_reason.msgpack");
    msgpack_sbuffer_destroy(&wire);

    char long_id[130];
    memset(long_id, 'x', 129);
    long_id[129] = '\0';
    const struct {
        const char *id, *run, *reason, *message;
    } bad[] = {
        {"", NULL, NULL, "id: must not be empty"},
        {long_id, NULL, NULL, "id: must be at most 128 bytes"}, /* cancel_bad_id_long */
        {"a", "", NULL, "run: must not be empty"},              /* cancel_bad_run_empty */
        {"a\xff", NULL, NULL, "id: must be UTF-8 text"},
        {"a", NULL, "\xc3", "reason: must be UTF-8 text"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(
            cli_cancel_encode(bad[i].id, bad[i].run, bad[i].reason, &wire, err, sizeof(err)), -1);
        assert_string_equal(err, bad[i].message);
    }
    /* 128 bytes is fine; the empty reason too */
    long_id[128] = '\0';
    assert_int_equal(cli_cancel_encode(long_id, NULL, "", &wire, err, sizeof(err)), 0);
    msgpack_sbuffer_destroy(&wire);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flags_set_fields),
        cmocka_unit_test(test_bad_flags),
        cmocka_unit_test(test_job_vectors),
        cmocka_unit_test(test_cancel_encoding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
