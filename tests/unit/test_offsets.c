/* test_offsets.c — offsets tracker: in-order and out-of-order completion,
 * gaps, commit points after a commit, rejected calls, and a randomized run
 * checked against a plain array model. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>

#include "offsets.h"

static struct offsets *new_tracker(void)
{
    struct offsets *t = offsets_new();
    assert_non_null(t);
    return t;
}

static void test_empty(void **state)
{
    (void)state;
    struct offsets *t = new_tracker();
    assert_int_equal(offsets_commit_point(t), -1);
    assert_int_equal(offsets_pending(t), 0);
    assert_int_equal(offsets_done(t, 0), -1);
    offsets_free(t);
    offsets_free(NULL);
}

static void test_in_order(void **state)
{
    (void)state;
    struct offsets *t = new_tracker();
    for (int64_t o = 10; o < 15; o++)
        assert_int_equal(offsets_track(t, o), 0);
    assert_int_equal(offsets_pending(t), 5);
    assert_int_equal(offsets_commit_point(t), 10); /* nothing done: the first offset */
    for (int64_t o = 10; o < 15; o++) {
        assert_int_equal(offsets_done(t, o), 0);
        assert_int_equal(offsets_commit_point(t), o + 1);
    }
    assert_int_equal(offsets_pending(t), 0);
    offsets_free(t);
}

static void test_out_of_order(void **state)
{
    (void)state;
    struct offsets *t = new_tracker();
    for (int64_t o = 0; o < 4; o++)
        assert_int_equal(offsets_track(t, o), 0);
    assert_int_equal(offsets_done(t, 2), 0);
    assert_int_equal(offsets_done(t, 3), 0);
    assert_int_equal(offsets_commit_point(t), 0); /* 0 still running */
    assert_int_equal(offsets_pending(t), 2);
    assert_int_equal(offsets_done(t, 1), 0);
    assert_int_equal(offsets_commit_point(t), 0);
    assert_int_equal(offsets_done(t, 0), 0);
    assert_int_equal(offsets_commit_point(t), 4); /* all done: one past the last */
    assert_int_equal(offsets_pending(t), 0);
    offsets_free(t);
}

static void test_gaps(void **state)
{
    (void)state;
    struct offsets *t = new_tracker();
    const int64_t seen[] = {5, 9, 10, 100, 1000000};
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(offsets_track(t, seen[i]), 0);
    assert_int_equal(offsets_done(t, 6), -1); /* in a gap: never seen */
    assert_int_equal(offsets_done(t, 10), 0);
    assert_int_equal(offsets_done(t, 5), 0);
    assert_int_equal(offsets_commit_point(t), 9);
    assert_int_equal(offsets_done(t, 9), 0);
    assert_int_equal(offsets_commit_point(t), 100);
    assert_int_equal(offsets_done(t, 1000000), 0);
    assert_int_equal(offsets_done(t, 100), 0);
    assert_int_equal(offsets_commit_point(t), 1000001);
    offsets_free(t);
}

static void test_commit_point_after_committed(void **state)
{
    (void)state;
    struct offsets *t = new_tracker();
    for (int64_t o = 0; o < 3; o++)
        assert_int_equal(offsets_track(t, o), 0);
    assert_int_equal(offsets_done(t, 0), 0);
    assert_int_equal(offsets_commit_point(t), 1);
    offsets_committed(t, 1);
    assert_int_equal(offsets_commit_point(t), -1); /* nothing new */
    assert_int_equal(offsets_done(t, 2), 0);
    assert_int_equal(offsets_commit_point(t), -1); /* 1 still blocks */
    assert_int_equal(offsets_done(t, 1), 0);
    assert_int_equal(offsets_commit_point(t), 3);
    offsets_committed(t, 3);
    assert_int_equal(offsets_commit_point(t), -1);
    offsets_committed(t, 2); /* an older commit does not move it back */
    assert_int_equal(offsets_commit_point(t), -1);
    assert_int_equal(offsets_track(t, 3), 0);
    assert_int_equal(offsets_commit_point(t), -1); /* 3 is where the commit already is */
    assert_int_equal(offsets_done(t, 3), 0);
    assert_int_equal(offsets_commit_point(t), 4);
    offsets_free(t);
}

static void test_rejections(void **state)
{
    (void)state;
    struct offsets *t = new_tracker();
    assert_int_equal(offsets_track(t, -1), -1);
    assert_int_equal(offsets_track(t, 7), 0);
    assert_int_equal(offsets_track(t, 7), -1); /* not increasing */
    assert_int_equal(offsets_track(t, 3), -1);
    assert_int_equal(offsets_pending(t), 1);
    assert_int_equal(offsets_done(t, 8), -1); /* never tracked */
    assert_int_equal(offsets_done(t, 6), -1);
    assert_int_equal(offsets_done(t, 7), 0);
    assert_int_equal(offsets_done(t, 7), -1);  /* already done */
    assert_int_equal(offsets_track(t, 7), -1); /* still below the last seen */
    assert_int_equal(offsets_commit_point(t), 8);
    offsets_free(t);
}

/* The model: every offset seen with its done flag, in a plain array; the
 * commit point is found by scanning from the first entry not yet done. */
struct model {
    int64_t *offsets;
    bool *done;
    size_t n;
    size_t first_undone; /* done flags only turn true, so this only advances */
    int64_t committed;
};

static int64_t model_commit_point(struct model *m)
{
    if (m->n == 0)
        return -1;
    while (m->first_undone < m->n && m->done[m->first_undone])
        m->first_undone++;
    int64_t point = m->first_undone < m->n ? m->offsets[m->first_undone] : m->offsets[m->n - 1] + 1;
    return point > m->committed ? point : -1;
}

static size_t model_pending(const struct model *m)
{
    size_t pending = 0;
    for (size_t i = 0; i < m->n; i++)
        pending += !m->done[i];
    return pending;
}

static void test_randomized_against_model(void **state)
{
    (void)state;
    enum { TOTAL = 10000, WINDOW = 300 };
    struct model m = {.offsets = calloc(TOTAL, sizeof(int64_t)),
                      .done = calloc(TOTAL, sizeof(bool)),
                      .committed = -1};
    size_t *running = calloc(TOTAL, sizeof(size_t)); /* model indexes not done */
    assert_non_null(m.offsets);
    assert_non_null(m.done);
    assert_non_null(running);
    size_t n_running = 0;
    struct offsets *t = new_tracker();
    srand(12345);
    int64_t next = 0;
    size_t steps = 0;
    while (m.n < TOTAL || n_running > 0) {
        int action = rand() % 10;
        if (m.n < TOTAL && (n_running == 0 || (action < 5 && n_running < WINDOW))) {
            next += 1 + (rand() % 4 == 0 ? rand() % 50 : 0); /* sometimes a gap */
            assert_int_equal(offsets_track(t, next), 0);
            running[n_running++] = m.n;
            m.offsets[m.n++] = next;
        } else if (action < 9) {
            size_t pick = (size_t)rand() % n_running;
            size_t idx = running[pick];
            running[pick] = running[--n_running];
            assert_int_equal(offsets_done(t, m.offsets[idx]), 0);
            m.done[idx] = true;
            assert_int_equal(offsets_done(t, m.offsets[idx]), -1);
        } else {
            int64_t point = offsets_commit_point(t);
            if (point >= 0) {
                offsets_committed(t, point);
                m.committed = point;
            }
        }
        assert_int_equal(offsets_commit_point(t), model_commit_point(&m));
        if (++steps % 97 == 0)
            assert_int_equal(offsets_pending(t), model_pending(&m));
    }
    assert_int_equal(offsets_pending(t), 0);
    int64_t point = offsets_commit_point(t);
    assert_true(point == -1 || point == next + 1);
    offsets_free(t);
    free(running);
    free(m.offsets);
    free(m.done);
}

/* A long run with a bounded window keeps working as the ring wraps and the
 * done prefix is dropped. */
static void test_long_run_bounded_window(void **state)
{
    (void)state;
    struct offsets *t = new_tracker();
    for (int64_t o = 0; o < 100000; o++) {
        assert_int_equal(offsets_track(t, o), 0);
        if (o >= 8)
            assert_int_equal(offsets_done(t, o - 8), 0);
    }
    assert_int_equal(offsets_pending(t), 8);
    assert_int_equal(offsets_commit_point(t), 100000 - 8);
    offsets_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_in_order),
        cmocka_unit_test(test_out_of_order),
        cmocka_unit_test(test_gaps),
        cmocka_unit_test(test_commit_point_after_committed),
        cmocka_unit_test(test_rejections),
        cmocka_unit_test(test_randomized_against_model),
        cmocka_unit_test(test_long_run_bounded_window),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
