/* test_cli_job.c — cli_job_build() completes a JSON job (v, id, reply_to),
 * refuses a reply_to the CLI would not read, and gives a worker's verdict
 * for a job a worker would reject. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <string.h>

#include "cli_job.h"
#include "job.h"

static enum llmq_code build(const char *text, struct cli_job *out, struct job_verdict *why)
{
    json_error_t err;
    json_t *obj = json_loads(text, JSON_DECODE_ANY, &err);
    assert_non_null(obj);
    enum llmq_code code = cli_job_build(obj, "made-up", "replies", out, why);
    json_decref(obj);
    return code;
}

static void test_completes_and_encodes(void **state)
{
    (void)state;
    struct cli_job cj;
    struct job_verdict why;
    assert_int_equal(
        build("{\"prompt\":\"hi\",\"max_tokens\":3,\"meta\":{\"k\":\"v\"}}", &cj, &why), LLMQ_OK);
    assert_string_equal(cj.id, "made-up");

    struct job job;
    assert_int_equal(job_decode(cj.wire.data, cj.wire.size, &job, &why), LLMQ_OK);
    assert_string_equal(job.id, "made-up");
    assert_string_equal(job.prompt, "hi");
    assert_string_equal(job.reply_to, "replies");
    assert_true(job.max_tokens.set && job.max_tokens.value == 3);
    assert_non_null(job.meta);
    job_free(&job);
    cli_job_free(&cj);

    /* a given id and the same reply_to are kept */
    assert_int_equal(build("{\"id\":\"mine\",\"reply_to\":\"replies\",\"messages\":"
                           "[{\"role\":\"user\",\"content\":\"x\"}]}",
                           &cj, &why),
                     LLMQ_OK);
    assert_string_equal(cj.id, "mine");
    cli_job_free(&cj);
}

static void test_refusals(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        enum llmq_code code;
        const char *message; /* its start */
    } cases[] = {
        {"[1]", LLMQ_MALFORMED, "a job must be a JSON object"},
        {"{\"prompt\":\"x\",\"reply_to\":\"elsewhere\"}", LLMQ_INVALID_FIELD, "reply_to:"},
        {"{\"v\":2,\"prompt\":\"x\"}", LLMQ_UNSUPPORTED_VERSION, "v:"},
        {"{\"id\":\"\",\"prompt\":\"x\"}", LLMQ_INVALID_ID, "id:"},
        {"{\"id\":7,\"prompt\":\"x\"}", LLMQ_INVALID_ID, "id:"},
        {"{}", LLMQ_INVALID_INPUT, ""},
        {"{\"prompt\":\"x\",\"messages\":[]}", LLMQ_INVALID_INPUT, ""},
        {"{\"prompt\":\"x\",\"temperature\":-1}", LLMQ_INVALID_FIELD, "temperature:"},
        {"{\"prompt\":\"x\",\"max_tokens\":2.0}", LLMQ_INVALID_FIELD, "max_tokens:"},
        {"{\"prompt\":\"x\",\"seed\":null}", LLMQ_INVALID_FIELD, "seed:"},
        {"{\"prompt\":\"x\",\"stop\":[\"\"]}", LLMQ_INVALID_FIELD, "stop"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cli_job cj;
        struct job_verdict why;
        enum llmq_code code = build(cases[i].json, &cj, &why);
        if (code != cases[i].code ||
            strncmp(why.message, cases[i].message, strlen(cases[i].message)) != 0)
            fail_msg("%s: got %s (%s)", cases[i].json, llmq_code_name(code), why.message);
        assert_null(cj.id);
        assert_null(cj.wire.data);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_completes_and_encodes),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
