/* test_log_repeats.c — log_repeats.c: the first occurrence of a problem is
 * said, the rest of its window counted and summed up once the window ends,
 * a window that ends quiet closes, problems are followed apart, and one
 * that finds no free slot is said every time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>

#include "log_repeats.h"

#define WINDOW 30000

static void test_said_once_then_summed_up(void **state)
{
    (void)state;
    struct log_repeats r;
    int key;
    unsigned long count;
    char last[64];
    log_repeats_init(&r, WINDOW);
    assert_int_equal(log_repeats_next_due(&r), -1);
    assert_true(log_repeats_note(&r, -195, "refused", 1000));
    assert_int_equal(log_repeats_next_due(&r), -1); /* nothing counted yet */
    assert_false(log_repeats_note(&r, -195, "refused again", 2000));
    assert_false(log_repeats_note(&r, -195, "refused, 3rd", 3000));
    assert_int_equal(log_repeats_next_due(&r), 1000 + WINDOW);
    assert_false(log_repeats_due(&r, 1000 + WINDOW - 1, &key, &count, last, sizeof(last)));
    assert_true(log_repeats_due(&r, 1000 + WINDOW, &key, &count, last, sizeof(last)));
    assert_int_equal(key, -195);
    assert_int_equal(count, 2);
    assert_string_equal(last, "refused, 3rd");
    assert_false(log_repeats_due(&r, 1000 + WINDOW, &key, &count, last, sizeof(last)));

    /* Still failing: the next window counts too. */
    assert_false(log_repeats_note(&r, -195, "refused, 4th", 1000 + WINDOW + 5));
    assert_int_equal(log_repeats_next_due(&r), 1000 + 2 * WINDOW);
    assert_true(log_repeats_due(&r, 1000 + 2 * WINDOW, &key, &count, last, sizeof(last)));
    assert_int_equal(count, 1);

    /* A window that ends quiet closes: the next one is said again. */
    assert_true(log_repeats_note(&r, -195, "refused later", 1000 + 3 * WINDOW));

    /* At the end every count is taken, whatever its window. */
    assert_false(log_repeats_note(&r, -195, "refused at the end", 1000 + 3 * WINDOW + 1));
    assert_true(log_repeats_due(&r, INT64_MAX, &key, &count, last, sizeof(last)));
    assert_int_equal(count, 1);
    assert_false(log_repeats_due(&r, INT64_MAX, &key, &count, last, sizeof(last)));
}

static void test_problems_apart_and_full_table(void **state)
{
    (void)state;
    struct log_repeats r;
    int key;
    unsigned long count;
    char last[8];
    log_repeats_init(&r, WINDOW);
    for (int k = 0; k < LOG_REPEATS_SLOTS; k++) {
        assert_true(log_repeats_note(&r, k, "first", 0));
        assert_false(log_repeats_note(&r, k, "a long text, cut", 10));
    }
    /* No slot for a ninth problem: said each time. */
    assert_true(log_repeats_note(&r, 99, "ninth", 20));
    assert_true(log_repeats_note(&r, 99, "ninth", 30));
    for (int k = 0; k < LOG_REPEATS_SLOTS; k++) {
        assert_true(log_repeats_due(&r, WINDOW, &key, &count, last, sizeof(last)));
        assert_int_equal(count, 1);
        assert_string_equal(last, "a long ");
    }
    assert_false(log_repeats_due(&r, WINDOW, &key, &count, last, sizeof(last)));
    /* Once a window closes quiet, its slot serves another problem. */
    assert_true(log_repeats_note(&r, 99, "ninth", 2 * WINDOW));
    assert_false(log_repeats_note(&r, 99, "ninth", 2 * WINDOW + 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_said_once_then_summed_up),
        cmocka_unit_test(test_problems_apart_and_full_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
