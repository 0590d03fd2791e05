/* test_steer.c — the steering bookkeeping: remembered cancels (bounded by
 * count and by age) and the lanes' smooth weighted round robin (its ratio
 * and its starvation bound ceil(W / w)). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "cancel_set.h"
#include "lanes.h"

static void test_cancel_set_remembers_within_bounds(void **state)
{
    (void)state;
    struct cancel_set *s = cancel_set_new(2, 1000);
    const char *reason = NULL;
    assert_int_equal(cancel_set_add(s, "a", "why a", 100), 0);
    assert_int_equal(cancel_set_add(s, "b", "", 200), 0);
    assert_true(cancel_set_has(s, "a", 500, &reason));
    assert_string_equal(reason, "why a");
    assert_int_equal(cancel_set_add(s, "c", NULL, 300), 1); /* "a", the oldest, goes */
    assert_false(cancel_set_has(s, "a", 500, NULL));
    assert_true(cancel_set_has(s, "b", 1200, NULL));
    assert_false(cancel_set_has(s, "b", 1201, NULL));           /* older than keep_ms */
    assert_int_equal(cancel_set_add(s, "c", "again", 1500), 0); /* refreshed, not added */
    assert_int_equal(cancel_set_size(s), 2);
    assert_int_equal(cancel_set_expire(s, 2000), 1); /* "b" */
    assert_true(cancel_set_has(s, "c", 2000, &reason));
    assert_string_equal(reason, "again");
    cancel_set_free(s);

    struct cancel_set *none = cancel_set_new(0, 1000);
    assert_int_equal(cancel_set_add(none, "x", "", 1), 0);
    assert_false(cancel_set_has(none, "x", 1, NULL));
    cancel_set_free(none);
}

static void test_lanes_follow_their_weights(void **state)
{
    (void)state;
    char *entries[] = {"urgent:4", "bulk:1"};
    struct lanes *l = lanes_new(entries, 2);
    assert_int_equal(lanes_index(l, "urgent"), 0);
    assert_int_equal(lanes_index(l, "bulk"), 1);
    assert_int_equal(lanes_index(l, "other"), 2); /* weight 1 */
    assert_string_equal(lanes_name(l, 2), "other");
    bool work[LANES_MAX] = {true, true};
    int count[2] = {0, 0}, since_bulk = 0;
    for (int k = 0; k < 100; k++) {
        int lane = lanes_pick(l, work);
        count[lane]++;
        since_bulk = lane == 1 ? 0 : since_bulk + 1;
        assert_true(since_bulk < 5); /* ceil(5 / 1) */
    }
    assert_int_equal(count[0], 80);
    assert_int_equal(count[1], 20);
    bool only_bulk[LANES_MAX] = {false, true};
    assert_int_equal(lanes_pick(l, only_bulk), 1);
    bool nothing[LANES_MAX] = {false};
    assert_int_equal(lanes_pick(l, nothing), -1);
    lanes_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cancel_set_remembers_within_bounds),
        cmocka_unit_test(test_lanes_follow_their_weights),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
