/* test_cli_results.c — the result lines of `llmq batch`, which of them
 * --retry-failed sends again, reading a results file back, and the one-line
 * reply form of `llmq tail`. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_results.h"
#include "cli_tail.h"

static struct reply_msg done_reply(void)
{
    static uint8_t meta[] = {0x81, 0xa1, 'k', 0x01}; /* {"k": 1} */
    return (struct reply_msg){.type = REPLY_DONE,
                              .id = "j1",
                              .run = "r1",
                              .text = "Hello \"there\"",
                              .text_len = 13,
                              .finish = "stop",
                              .usage = {4, 2},
                              .worker = "w",
                              .meta = meta,
                              .meta_len = sizeof(meta)};
}

static struct reply_msg error_reply(const char *code, bool retryable)
{
    return (struct reply_msg){.type = REPLY_ERROR,
                              .id = "j2",
                              .run = "",
                              .code = (char *)code,
                              .message = "m",
                              .retryable = retryable,
                              .worker = "w",
                              .text = "",
                              .finish = ""};
}

static void expect_json(json_t *value, const char *text)
{
    assert_non_null(value);
    char *dumped = json_dumps(value, JSON_COMPACT);
    assert_string_equal(dumped, text);
    free(dumped);
    json_decref(value);
}

static void test_result_shapes(void **state)
{
    (void)state;
    struct reply_msg d = done_reply();
    expect_json(cli_result_reply(3, &d),
                "{\"line\":3,\"id\":\"j1\",\"status\":\"done\",\"text\":\"Hello \\\"there\\\"\","
                "\"finish\":\"stop\",\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":2},"
                "\"run\":\"r1\",\"worker\":\"w\",\"meta\":{\"k\":1}}");
    struct reply_msg e = error_reply("expired", false);
    expect_json(cli_result_reply(4, &e),
                "{\"line\":4,\"id\":\"j2\",\"status\":\"error\",\"code\":\"expired\","
                "\"message\":\"m\",\"retryable\":false,\"run\":\"\",\"worker\":\"w\"}");
    expect_json(cli_result_timeout(5, "j3", 2.5),
                "{\"line\":5,\"id\":\"j3\",\"status\":\"timeout\","
                "\"message\":\"no terminal reply within 2.5 s\"}");
    struct job_verdict why = {LLMQ_INVALID_FIELD, "top_p: must be between 0 and 1"};
    expect_json(cli_result_invalid(6, NULL, &why),
                "{\"line\":6,\"id\":null,\"status\":\"invalid\",\"code\":\"invalid_field\","
                "\"message\":\"top_p: must be between 0 and 1\"}");
    expect_json(cli_result_undelivered(7, "j7", "no broker"),
                "{\"line\":7,\"id\":\"j7\",\"status\":\"error\",\"code\":\"undelivered\","
                "\"message\":\"no broker\",\"retryable\":true}");
    expect_json(cli_result_cancelled(8, "j8", "stopped"),
                "{\"line\":8,\"id\":\"j8\",\"status\":\"cancelled\",\"message\":\"stopped\"}");
}

static bool retryable(json_t *result)
{
    bool r = cli_result_retryable(result);
    json_decref(result);
    return r;
}

static void test_what_is_retried(void **state)
{
    (void)state;
    struct reply_msg d = done_reply();
    struct reply_msg expired = error_reply("expired", false);
    struct reply_msg failed = error_reply("backend_failed", true);
    struct reply_msg too_long = error_reply("context_exceeded", false);
    struct job_verdict why = {LLMQ_MALFORMED, "not JSON"};
    assert_false(retryable(cli_result_reply(1, &d)));
    assert_true(retryable(cli_result_reply(1, &expired)));
    assert_true(retryable(cli_result_reply(1, &failed)));
    assert_false(retryable(cli_result_reply(1, &too_long)));
    assert_true(retryable(cli_result_timeout(1, "x", 1)));
    assert_true(retryable(cli_result_invalid(1, NULL, &why)));
    assert_true(retryable(cli_result_undelivered(1, "x", "gone")));
    assert_true(retryable(cli_result_cancelled(1, "x", "interrupted")));
}

static char *write_temp(const char *text)
{
    static char path[64];
    snprintf(path, sizeof(path), "/tmp/test_cli_results.XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void test_previous_load(void **state)
{
    (void)state;
    char *path = write_temp("{\"line\":9,\"id\":\"a\",\"status\":\"done\"}\n"
                            "\n"
                            "{\"line\":2,\"id\":\"b\",\"status\":\"timeout\"}\n"
                            "{\"line\":4,\"id\":null,\"status\":\"invalid\"}\n"
                            "{\"line\":5,\"id\":\"c\",\"status\":\"cancelled\"}\n");
    struct cli_previous_set set;
    char err[256];
    assert_int_equal(cli_previous_load(path, &set, err, sizeof(err)), 0);
    unlink(path);
    assert_int_equal(set.n, 4);
    const struct cli_previous *p = cli_previous_find(&set, 9);
    assert_non_null(p);
    assert_string_equal(p->id, "a");
    assert_false(p->retry);
    p = cli_previous_find(&set, 2);
    assert_true(p->retry);
    assert_string_equal(p->id, "b");
    p = cli_previous_find(&set, 4);
    assert_null(p->id);
    assert_true(p->retry);
    assert_false(p->cancelled);
    p = cli_previous_find(&set, 5);
    assert_true(p->retry && p->cancelled);
    assert_null(cli_previous_find(&set, 3));
    cli_previous_free(&set);

    static const struct {
        const char *text, *error;
    } bad[] = {
        {"{\"line\":1,\"status\":\"done\"}\n{\"line\":1,\"status\":\"done\"}\n",
         "input line 1 has two results"},
        {"{\"line\":1,\"status\":\"done\"}\n{oops\n", ":2: "},
        {"{\"status\":\"done\"}\n", ":1: not a result line"},
        {"{\"line\":1,\"status\":\"done\",\"id\":5}\n", ":1: id:"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        path = write_temp(bad[i].text);
        assert_int_equal(cli_previous_load(path, &set, err, sizeof(err)), -1);
        unlink(path);
        if (!strstr(err, bad[i].error))
            fail_msg("case %zu: %s", i, err);
        assert_int_equal(set.n, 0);
    }
    assert_int_equal(cli_previous_load("/nonexistent/x", &set, err, sizeof(err)), -1);
}

static void test_tail_lines(void **state)
{
    (void)state;
    char line[512];
    struct reply_msg c = {.type = REPLY_CHUNK,
                          .id = "job-1",
                          .run = "ab12",
                          .seq = 3,
                          .text = "a\"b\n",
                          .text_len = 4};
    cli_tail_format(&c, 60, line, sizeof(line));
    assert_string_equal(line, "job-1 run=ab12 chunk #3 \"a\\\"b\\n\"");

    struct reply_msg d = done_reply();
    d.text = "h\xc3\xa9llo world";
    d.text_len = strlen(d.text);
    cli_tail_format(&d, 2, line, sizeof(line)); /* the cut falls inside "é": before it */
    assert_string_equal(line, "j1 run=r1 done stop 2 tokens \"h…\"");
    cli_tail_format(&d, 3, line, sizeof(line));
    assert_string_equal(line, "j1 run=r1 done stop 2 tokens \"h\xc3\xa9…\"");

    struct reply_msg e = error_reply("expired", false);
    e.id = "";
    cli_tail_format(&e, 60, line, sizeof(line));
    assert_string_equal(line, "- error expired: m");
    e.run = "r9";
    cli_tail_format(&e, 60, line, sizeof(line));
    assert_string_equal(line, "- run=r9 error expired: m");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_result_shapes),
        cmocka_unit_test(test_what_is_retried),
        cmocka_unit_test(test_previous_load),
        cmocka_unit_test(test_tail_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
