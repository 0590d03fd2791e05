/* test_cli_stream.c — the live printing of one job under at-least-once
 * delivery: the first run's chunks in seq order, each once; the terminal
 * reply adds what is missing, or replaces a run that was not the final one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "cli_stream.h"

static struct reply_msg chunk(const char *run, uint64_t seq, const char *text)
{
    return (struct reply_msg){.type = REPLY_CHUNK,
                              .id = "j",
                              .run = (char *)run,
                              .seq = seq,
                              .text = (char *)text,
                              .text_len = strlen(text)};
}

static struct reply_msg done(const char *run, const char *text)
{
    return (struct reply_msg){.type = REPLY_DONE,
                              .id = "j",
                              .run = (char *)run,
                              .text = (char *)text,
                              .text_len = strlen(text)};
}

/* Feed the replies; collect what would be printed; return the last step. */
static struct cli_stream_step feed(struct cli_stream *s, const struct reply_msg *replies, size_t n,
                                   char *printed, size_t len)
{
    struct cli_stream_step step = {0};
    printed[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(cli_stream_feed(s, &replies[i], &step), 0);
        if (step.what != CLI_STREAM_SKIP)
            snprintf(printed + strlen(printed), len - strlen(printed), "%.*s", (int)step.len,
                     step.text);
    }
    return step;
}

static void test_plain_stream(void **state)
{
    (void)state;
    struct reply_msg r[] = {chunk("a", 0, "Hel"), chunk("a", 1, "lo"), done("a", "Hello")};
    struct cli_stream s = {0};
    char out[64];
    struct cli_stream_step last = feed(&s, r, 3, out, sizeof(out));
    assert_string_equal(out, "Hello");
    assert_int_equal(last.what, CLI_STREAM_END);
    assert_false(last.restart);
    assert_int_equal(last.len, 0);
    cli_stream_free(&s);
}

static void test_repeats_and_other_runs_are_skipped(void **state)
{
    (void)state;
    struct reply_msg r[] = {
        chunk("b", 3, "late"), /* a run already under way: not the streamed one */
        chunk("a", 0, "A"),    chunk("a", 0, "A"),
        chunk("b", 4, "x"),    chunk("a", 2, "C"), /* out of order: held back */
        chunk("a", 1, "B"),    done("a", "ABC"),
    };
    struct cli_stream s = {0};
    char out[64];
    struct cli_stream_step last = feed(&s, r, sizeof(r) / sizeof(r[0]), out, sizeof(out));
    assert_string_equal(out, "ABC"); /* "C" comes with the done reply */
    assert_false(last.restart);
    assert_string_equal(s.run, "a");
    cli_stream_free(&s);
}

static void test_rerun_replaces_the_streamed_run(void **state)
{
    (void)state;
    struct reply_msg r[] = {chunk("a", 0, "Par"), chunk("b", 0, "Who"), chunk("b", 1, "le"),
                            done("b", "Whole")};
    struct cli_stream s = {0};
    char out[64];
    struct cli_stream_step last = feed(&s, r, 4, out, sizeof(out));
    assert_true(last.restart);
    assert_string_equal(out, "ParWhole"); /* the caller puts a notice in between */
    cli_stream_free(&s);
}

static void test_no_stream_and_errors(void **state)
{
    (void)state;
    struct cli_stream s = {0};
    char out[64];
    struct reply_msg only_done[] = {done("a", "All")};
    struct cli_stream_step last = feed(&s, only_done, 1, out, sizeof(out));
    assert_string_equal(out, "All");
    assert_false(last.restart);
    cli_stream_free(&s);

    struct reply_msg err = {.type = REPLY_ERROR, .id = "j", .run = "", .code = "expired"};
    struct reply_msg with_error[] = {chunk("a", 0, "x"), err};
    last = feed(&s, with_error, 2, out, sizeof(out));
    assert_int_equal(last.what, CLI_STREAM_END);
    assert_int_equal(last.len, 0);
    assert_string_equal(out, "x");
    cli_stream_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_stream),
        cmocka_unit_test(test_repeats_and_other_runs_are_skipped),
        cmocka_unit_test(test_rerun_replaces_the_streamed_run),
        cmocka_unit_test(test_no_stream_and_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
