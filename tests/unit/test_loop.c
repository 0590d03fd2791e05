/* test_loop.c — the event loop: fd readiness on pipes, unwatching during a
 * dispatch round (no stale events), EOF, timer order, cancel, stale timer
 * handles, timers that add timers, and loop_stop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>

#include "clock.h"
#include "loop.h"

/* A guard so that a broken loop fails the test instead of hanging it. */
static void on_guard(struct loop *loop, void *ctx)
{
    *(int *)ctx = 1;
    loop_stop(loop);
}

static void run_guarded(struct loop *loop, int64_t limit_ms)
{
    int fired = 0;
    loop_timer_id guard = loop_timer_after(loop, limit_ms, on_guard, &fired);
    assert_true(guard);
    assert_int_equal(loop_run(loop), 0);
    assert_int_equal(fired, 0);
    loop_timer_cancel(loop, guard);
}

static void on_stop(struct loop *loop, void *ctx)
{
    (void)ctx;
    loop_stop(loop);
}

/* ---- fds ---- */

struct pipe_probe {
    int fds[2];
    unsigned events_seen;
    int calls;
    char got;
};

static void on_writable(struct loop *loop, int fd, unsigned events, void *ctx)
{
    struct pipe_probe *p = ctx;
    p->calls++;
    p->events_seen |= events;
    assert_int_equal(write(fd, "x", 1), 1);
    assert_int_equal(loop_unwatch(loop, fd), 0);
}

static void on_readable(struct loop *loop, int fd, unsigned events, void *ctx)
{
    struct pipe_probe *p = ctx;
    p->calls++;
    p->events_seen |= events;
    assert_int_equal(read(fd, &p->got, 1), 1);
    assert_int_equal(loop_unwatch(loop, fd), 0);
    loop_stop(loop);
}

static void test_pipe_readiness(void **state)
{
    (void)state;
    struct loop *loop = loop_new();
    struct pipe_probe w = {0}, r = {0};
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    assert_int_equal(loop_watch(loop, fds[0], LOOP_READ, on_readable, &r), 0);
    assert_int_equal(loop_watch(loop, fds[1], LOOP_WRITE, on_writable, &w), 0);
    run_guarded(loop, 2000);
    assert_int_equal(w.calls, 1);
    assert_int_equal(w.events_seen, LOOP_WRITE);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.events_seen, LOOP_READ);
    assert_int_equal(r.got, 'x');
    assert_int_equal(loop_unwatch(loop, fds[0]), -1); /* no longer watched */
    close(fds[0]);
    close(fds[1]);
    loop_free(loop);
}

static void on_eof(struct loop *loop, int fd, unsigned events, void *ctx)
{
    struct pipe_probe *p = ctx;
    char c;
    p->calls++;
    p->events_seen |= events;
    assert_int_equal(read(fd, &c, 1), 0);
    loop_unwatch(loop, fd);
    loop_stop(loop);
}

static void test_hangup_wakes_reader(void **state)
{
    (void)state;
    struct loop *loop = loop_new();
    struct pipe_probe p = {0};
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    assert_int_equal(loop_watch(loop, fds[0], LOOP_READ, on_eof, &p), 0);
    close(fds[1]);
    run_guarded(loop, 2000);
    assert_int_equal(p.calls, 1);
    assert_true(p.events_seen & LOOP_READ);
    assert_true(p.events_seen & LOOP_ERROR);
    close(fds[0]);
    loop_free(loop);
}

/* Two readable pipes: whichever callback runs first unwatches the other
 * (which has an event queued in the same round) and itself. */
struct pair {
    int fd[2];
    int calls[2];
};

static void on_pair(struct loop *loop, int fd, unsigned events, void *ctx)
{
    (void)events;
    struct pair *p = ctx;
    int me = fd == p->fd[0] ? 0 : 1;
    p->calls[me]++;
    loop_unwatch(loop, p->fd[1 - me]);
    loop_unwatch(loop, fd);
}

static void test_unwatch_inside_callback(void **state)
{
    (void)state;
    struct loop *loop = loop_new();
    int a[2], b[2];
    assert_int_equal(pipe(a), 0);
    assert_int_equal(pipe(b), 0);
    assert_int_equal(write(a[1], "a", 1), 1);
    assert_int_equal(write(b[1], "b", 1), 1);
    struct pair p = {.fd = {a[0], b[0]}};
    assert_int_equal(loop_watch(loop, a[0], LOOP_READ, on_pair, &p), 0);
    assert_int_equal(loop_watch(loop, b[0], LOOP_READ, on_pair, &p), 0);
    assert_true(loop_timer_after(loop, 50, on_stop, NULL));
    run_guarded(loop, 2000);
    /* Level-triggered data is still there, yet nothing more was delivered. */
    assert_int_equal(p.calls[0] + p.calls[1], 1);
    close(a[0]);
    close(a[1]);
    close(b[0]);
    close(b[1]);
    loop_free(loop);
}

/* The first callback closes the other pipe and opens a new one, which most
 * likely reuses the fd number, and watches it for writing with another
 * callback: the stale READ event of the old fd must not reach it. */
struct reuse {
    int fd[2][2];
    int old_calls;
    int fresh_calls;
    unsigned fresh_events;
    int fresh[2];
};

static void on_fresh(struct loop *loop, int fd, unsigned events, void *ctx)
{
    struct reuse *r = ctx;
    r->fresh_calls++;
    r->fresh_events |= events;
    loop_unwatch(loop, fd);
}

static void on_old(struct loop *loop, int fd, unsigned events, void *ctx)
{
    (void)events;
    struct reuse *r = ctx;
    r->old_calls++;
    int me = fd == r->fd[0][0] ? 0 : 1;
    int other = r->fd[1 - me][0];
    loop_unwatch(loop, fd);
    loop_unwatch(loop, other);
    close(other);
    close(r->fd[1 - me][1]);
    r->fd[1 - me][0] = r->fd[1 - me][1] = -1;
    assert_int_equal(pipe(r->fresh), 0);
    /* Its read end (probably the old number) is empty: nothing may arrive. */
    assert_int_equal(loop_watch(loop, r->fresh[0], LOOP_READ, on_fresh, r), 0);
    assert_true(loop_timer_after(loop, 50, on_stop, NULL));
}

static void test_stale_event_after_fd_reuse(void **state)
{
    (void)state;
    struct loop *loop = loop_new();
    struct reuse r = {0};
    assert_int_equal(pipe(r.fd[0]), 0);
    assert_int_equal(pipe(r.fd[1]), 0);
    assert_int_equal(write(r.fd[0][1], "a", 1), 1);
    assert_int_equal(write(r.fd[1][1], "b", 1), 1);
    assert_int_equal(loop_watch(loop, r.fd[0][0], LOOP_READ, on_old, &r), 0);
    assert_int_equal(loop_watch(loop, r.fd[1][0], LOOP_READ, on_old, &r), 0);
    run_guarded(loop, 2000);
    assert_int_equal(r.old_calls, 1);
    assert_int_equal(r.fresh_calls, 0); /* its pipe never had data */
    loop_unwatch(loop, r.fresh[0]);
    for (int i = 0; i < 2; i++) {
        if (r.fd[i][0] >= 0) {
            close(r.fd[i][0]);
            close(r.fd[i][1]);
        }
    }
    close(r.fresh[0]);
    close(r.fresh[1]);
    loop_free(loop);
}

static void on_count_write(struct loop *loop, int fd, unsigned events, void *ctx)
{
    (void)loop;
    (void)fd;
    (void)events;
    (*(int *)ctx)++;
}

static void test_watch_replaces_and_rejects_bad_fd(void **state)
{
    (void)state;
    struct loop *loop = loop_new();
    int fds[2], calls = 0;
    assert_int_equal(pipe(fds), 0);
    assert_int_equal(loop_watch(loop, -1, LOOP_READ, on_count_write, &calls), -1);
    assert_int_equal(loop_unwatch(loop, 12345), -1);
    /* Readable interest on an empty pipe, then replaced by WRITE on the write end. */
    assert_int_equal(loop_watch(loop, fds[1], LOOP_READ, on_count_write, &calls), 0);
    assert_true(loop_timer_after(loop, 30, on_stop, NULL));
    run_guarded(loop, 2000);
    assert_int_equal(calls, 0);
    assert_int_equal(loop_watch(loop, fds[1], LOOP_WRITE, on_count_write, &calls), 0);
    assert_true(loop_timer_after(loop, 0, on_stop, NULL));
    run_guarded(loop, 2000);
    assert_true(calls >= 1);
    assert_int_equal(loop_unwatch(loop, fds[1]), 0);
    close(fds[0]);
    close(fds[1]);
    loop_free(loop);
}

/* ---- timers ---- */

struct order {
    int seen[512];
    int n;
    int64_t due[512];
    int64_t fired_at[512];
};

struct order_entry {
    struct order *order;
    int id;
};

static void on_order(struct loop *loop, void *ctx)
{
    (void)loop;
    struct order_entry *e = ctx;
    e->order->fired_at[e->order->n] = clock_mono_ms();
    e->order->seen[e->order->n++] = e->id;
}

static void test_timers_in_order(void **state)
{
    (void)state;
    struct loop *loop = loop_new();
    struct order o = {0};
    const int64_t delays[] = {30, 10, 20, 0, 10};
    struct order_entry entries[5];
    int64_t start = clock_mono_ms();
    for (int i = 0; i < 5; i++) {
        entries[i] = (struct order_entry){&o, i};
        assert_true(loop_timer_after(loop, delays[i], on_order, &entries[i]));
    }
    assert_true(loop_timer_after(loop, 60, on_stop, NULL));
    run_guarded(loop, 2000);
    assert_int_equal(o.n, 5);
    const int expect[] = {3, 1, 4, 2, 0}; /* equal delays fire in creation order */
    for (int i = 0; i < 5; i++) {
        assert_int_equal(o.seen[i], expect[i]);
        assert_true(o.fired_at[i] - start >= delays[expect[i]]);
    }
    loop_free(loop);
}

/* Hundreds of timers with scattered delays, half cancelled: the survivors
 * fire in deadline order, the cancelled never. */
static void test_many_timers_heap(void **state)
{
    (void)state;
    struct loop *loop = loop_new();
    static struct order o;
    static struct order_entry entries[400];
    loop_timer_id handles[400];
    o.n = 0;
    srand(7);
    int64_t t0 = clock_mono_ms();
    for (int i = 0; i < 400; i++) {
        entries[i] = (struct order_entry){&o, i};
        o.due[i] = rand() % 80;
        handles[i] = loop_timer_after(loop, o.due[i], on_order, &entries[i]);
        assert_true(handles[i]);
    }
    int64_t skew = clock_mono_ms() - t0; /* deadlines are add time + delay */
    for (int i = 0; i < 400; i += 2) {
        loop_timer_cancel(loop, handles[i]);
    }
    assert_true(loop_timer_after(loop, 150, on_stop, NULL));
    run_guarded(loop, 3000);
    assert_int_equal(o.n, 200);
    for (int i = 0; i < o.n; i++) {
        assert_int_equal(o.seen[i] % 2, 1);
        if (i > 0) {
            assert_true(o.due[o.seen[i - 1]] <= o.due[o.seen[i]] + skew);
            assert_true(o.fired_at[i - 1] <= o.fired_at[i]);
        }
    }
    loop_free(loop);
}

struct canceller {
    loop_timer_id victim;
    int fired;
};

static void on_cancel_victim(struct loop *loop, void *ctx)
{
    struct canceller *c = ctx;
    c->fired++;
    loop_timer_cancel(loop, c->victim);
}

static void on_count(struct loop *loop, void *ctx)
{
    (void)loop;
    (*(int *)ctx)++;
}

static void test_cancel(void **state)
{
    (void)state;
    struct loop *loop = loop_new();
    int a = 0, b = 0, c = 0;
    loop_timer_id ta = loop_timer_after(loop, 10, on_count, &a);
    loop_timer_id tb = loop_timer_after(loop, 20, on_count, &b);
    assert_true(ta);
    assert_true(tb);
    assert_true(loop_timer_after(loop, 30, on_count, &c));
    loop_timer_cancel(loop, tb);
    /* A timer cancels another that is due in the same round. */
    struct canceller k = {0};
    assert_true(loop_timer_after(loop, 15, on_cancel_victim, &k));
    int victim = 0;
    k.victim = loop_timer_after(loop, 15, on_count, &victim);
    assert_true(loop_timer_after(loop, 60, on_stop, NULL));
    run_guarded(loop, 2000);
    assert_int_equal(a, 1);
    assert_int_equal(b, 0);
    assert_int_equal(c, 1);
    assert_int_equal(k.fired, 1);
    assert_int_equal(victim, 0);
    loop_free(loop);
}

/* Handles after their timer is gone: cancelling one that fired, cancelling
 * twice, and a stale handle once its slot holds another timer all do
 * nothing. A callback finds its own handle fired. */
struct self_check {
    loop_timer_id self;
    int fired;
    int pending_inside;
};

static void on_self_check(struct loop *loop, void *ctx)
{
    struct self_check *c = ctx;
    c->fired++;
    c->pending_inside = loop_timer_pending(loop, c->self);
    loop_timer_cancel(loop, c->self); /* its own, already fired */
}

enum { REUSE_TIMERS = 8 };

static void test_stale_handles(void **state)
{
    (void)state;
    struct loop *loop = loop_new();
    assert_false(loop_timer_pending(loop, LOOP_TIMER_NONE));
    loop_timer_cancel(loop, LOOP_TIMER_NONE);
    struct self_check c = {0};
    c.self = loop_timer_after(loop, 0, on_self_check, &c);
    loop_timer_id cancelled = loop_timer_after(loop, 0, on_count, &c.fired);
    assert_true(loop_timer_pending(loop, c.self));
    assert_true(loop_timer_pending(loop, cancelled));
    loop_timer_cancel(loop, cancelled);
    loop_timer_cancel(loop, cancelled); /* twice */
    assert_false(loop_timer_pending(loop, cancelled));
    assert_true(loop_timer_after(loop, 5, on_stop, NULL));
    run_guarded(loop, 2000);
    assert_int_equal(c.fired, 1);
    assert_int_equal(c.pending_inside, 0);
    assert_false(loop_timer_pending(loop, c.self));
    loop_timer_cancel(loop, c.self); /* after it fired */
    /* More timers than slots ever used: some reuse the stale handles' slots,
     * under new handles that the stale ones must not reach. */
    int counts[REUSE_TIMERS] = {0};
    loop_timer_id fresh[REUSE_TIMERS];
    for (int i = 0; i < REUSE_TIMERS; i++) {
        fresh[i] = loop_timer_after(loop, 1, on_count, &counts[i]);
        assert_true(fresh[i]);
        assert_true(fresh[i] != c.self && fresh[i] != cancelled);
    }
    loop_timer_cancel(loop, c.self);
    loop_timer_cancel(loop, cancelled);
    for (int i = 0; i < REUSE_TIMERS; i++) {
        assert_true(loop_timer_pending(loop, fresh[i]));
    }
    assert_true(loop_timer_after(loop, 10, on_stop, NULL));
    run_guarded(loop, 2000);
    for (int i = 0; i < REUSE_TIMERS; i++) {
        assert_int_equal(counts[i], 1);
    }
    loop_free(loop);
}

struct chain {
    int left;
    int fired;
};

static void on_chain(struct loop *loop, void *ctx)
{
    struct chain *ch = ctx;
    ch->fired++;
    if (--ch->left > 0) {
        assert_true(loop_timer_after(loop, 1, on_chain, ch));
    } else {
        loop_stop(loop);
    }
}

static void test_timer_adds_timer(void **state)
{
    (void)state;
    struct loop *loop = loop_new();
    struct chain ch = {.left = 5};
    assert_true(loop_timer_after(loop, 1, on_chain, &ch));
    run_guarded(loop, 2000);
    assert_int_equal(ch.fired, 5);
    loop_free(loop);
}

/* A 0 ms timer that re-arms itself must not starve a ready fd: on its third
 * run it makes a pipe readable, and the very next round delivers that. */
struct spinner {
    int spins;
    int stop;
    int write_fd;
};

static void on_spin(struct loop *loop, void *ctx)
{
    struct spinner *s = ctx;
    if (++s->spins == 3) {
        assert_int_equal(write(s->write_fd, "x", 1), 1);
    }
    if (!s->stop) {
        assert_true(loop_timer_after(loop, 0, on_spin, s));
    }
}

struct fd_then_stop {
    struct spinner *spinner;
    int calls;
    int spins_seen;
};

static void on_ready_stop(struct loop *loop, int fd, unsigned events, void *ctx)
{
    (void)events;
    struct fd_then_stop *f = ctx;
    f->calls++;
    f->spins_seen = f->spinner->spins;
    f->spinner->stop = 1;
    loop_unwatch(loop, fd);
    loop_stop(loop);
}

static void test_zero_timer_does_not_starve_fds(void **state)
{
    (void)state;
    struct loop *loop = loop_new();
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    struct spinner s = {.write_fd = fds[1]};
    struct fd_then_stop f = {.spinner = &s};
    assert_true(loop_timer_after(loop, 0, on_spin, &s));
    assert_int_equal(loop_watch(loop, fds[0], LOOP_READ, on_ready_stop, &f), 0);
    run_guarded(loop, 2000);
    assert_int_equal(f.calls, 1);
    assert_int_equal(f.spins_seen, 3);
    close(fds[0]);
    close(fds[1]);
    loop_free(loop); /* frees the still-armed spinner timer */
}

/* ---- stop ---- */

static void test_stop(void **state)
{
    (void)state;
    struct loop *loop = loop_new();
    int later = 0;
    /* Stop from a timer: a timer due in the same round does not run. */
    assert_true(loop_timer_after(loop, 5, on_stop, NULL));
    assert_true(loop_timer_after(loop, 5, on_count, &later));
    run_guarded(loop, 2000);
    assert_int_equal(later, 0);
    /* The loop runs again afterwards, and that timer fires then. */
    assert_true(loop_timer_after(loop, 1, on_stop, NULL));
    run_guarded(loop, 2000);
    assert_int_equal(later, 1);
    /* Stop requested before running: loop_run returns at once. */
    loop_stop(loop);
    assert_int_equal(loop_run(loop), 0);
    loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pipe_readiness),
        cmocka_unit_test(test_hangup_wakes_reader),
        cmocka_unit_test(test_unwatch_inside_callback),
        cmocka_unit_test(test_stale_event_after_fd_reuse),
        cmocka_unit_test(test_watch_replaces_and_rejects_bad_fd),
        cmocka_unit_test(test_timers_in_order),
        cmocka_unit_test(test_many_timers_heap),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_stale_handles),
        cmocka_unit_test(test_timer_adds_timer),
        cmocka_unit_test(test_zero_timer_does_not_starve_fds),
        cmocka_unit_test(test_stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
