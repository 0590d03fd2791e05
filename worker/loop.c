/* loop.c — the worker's event loop: epoll readiness for file descriptors and
 * a binary min-heap of one-shot CLOCK_MONOTONIC timers, dispatched on one
 * thread. Each round waits until the nearest timer, delivers ready fds, then
 * fires the timers that were due when the round began. */
#include "loop.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"

enum { LOOP_MAX_EVENTS = 64, LOOP_MIN_WATCHES = 64, LOOP_MIN_TIMERS = 16 };

#define TIMER_IDLE SIZE_MAX /* heap slot of a timer that is not scheduled */

struct watch {
    loop_fd_fn fn;
    void *ctx;
    unsigned events;
    /* Bumped each time the fd is added to epoll; epoll events carry it, so an
     * event queued for an earlier registration of the same fd number is
     * dropped instead of reaching the new watcher. */
    uint32_t gen;
    bool active;
};

struct loop_timer {
    int64_t due_ms;
    uint64_t seq; /* creation order: timers due at the same ms fire first-in first-out */
    size_t slot;  /* index in loop->heap, or TIMER_IDLE */
    loop_timer_fn fn;
    void *ctx;
    struct loop_timer *next_free;
};

struct loop {
    int epfd;
    bool stopping;
    struct watch *watches; /* indexed by fd */
    size_t watch_cap;
    struct loop_timer **heap; /* min-heap on (due_ms, seq) */
    size_t heap_len;
    size_t heap_cap;
    uint64_t next_seq;
    struct loop_timer *free_timers; /* recycled timer structs */
};

int64_t loop_now_ms(void)
{
    return clock_mono_ms();
}

int64_t loop_now_us(void)
{
    return clock_mono_us();
}

int64_t loop_wall_ms(void)
{
    return clock_wall_ms();
}

struct loop *loop_new(void)
{
    struct loop *loop = calloc(1, sizeof(*loop));
    if (!loop) {
        return NULL;
    }
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epfd < 0) {
        free(loop);
        return NULL;
    }
    return loop;
}

void loop_free(struct loop *loop)
{
    if (!loop) {
        return;
    }
    for (size_t i = 0; i < loop->heap_len; i++) {
        free(loop->heap[i]);
    }
    while (loop->free_timers) {
        struct loop_timer *next = loop->free_timers->next_free;
        free(loop->free_timers);
        loop->free_timers = next;
    }
    free(loop->heap);
    free(loop->watches);
    close(loop->epfd);
    free(loop);
}

/* ---- file descriptors ---- */

static int grow_watches(struct loop *loop, int fd)
{
    size_t old = loop->watch_cap;
    if (grow_array((void **)&loop->watches, &loop->watch_cap, (size_t)fd + 1,
                   sizeof(*loop->watches), LOOP_MIN_WATCHES) != 0) {
        return -1;
    }
    memset(loop->watches + old, 0, (loop->watch_cap - old) * sizeof(*loop->watches));
    return 0;
}

static int epoll_set(struct loop *loop, int op, int fd, unsigned events, uint32_t gen)
{
    struct epoll_event ev = {0};
    if (events & LOOP_READ) {
        ev.events |= EPOLLIN;
    }
    if (events & LOOP_WRITE) {
        ev.events |= EPOLLOUT;
    }
    ev.data.u64 = (uint64_t)gen << 32 | (uint32_t)fd;
    return epoll_ctl(loop->epfd, op, fd, &ev);
}

int loop_watch(struct loop *loop, int fd, unsigned events, loop_fd_fn fn, void *ctx)
{
    if (fd < 0 || !fn) {
        errno = EINVAL;
        return -1;
    }
    if (grow_watches(loop, fd) != 0) {
        return -1;
    }
    struct watch *w = &loop->watches[fd];
    int rc = w->active ? epoll_set(loop, EPOLL_CTL_MOD, fd, events, w->gen)
                       : epoll_set(loop, EPOLL_CTL_ADD, fd, events, w->gen + 1);
    bool added = !w->active;
    if (rc != 0 && errno == ENOENT && w->active) {
        /* The fd was closed without an unwatch and its number reused. */
        rc = epoll_set(loop, EPOLL_CTL_ADD, fd, events, w->gen + 1);
        added = true;
    } else if (rc != 0 && errno == EEXIST && !w->active) {
        /* Still registered: an earlier unwatch could not remove it. */
        rc = epoll_set(loop, EPOLL_CTL_MOD, fd, events, w->gen);
        added = false;
    }
    if (rc != 0) {
        return -1;
    }
    if (added) {
        w->gen++;
    }
    w->fn = fn;
    w->ctx = ctx;
    w->events = events;
    w->active = true;
    return 0;
}

int loop_unwatch(struct loop *loop, int fd)
{
    if (fd < 0 || (size_t)fd >= loop->watch_cap || !loop->watches[fd].active) {
        errno = ENOENT;
        return -1;
    }
    loop->watches[fd].active = false;
    /* A closed fd has already left the epoll set on its own. */
    if (epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL) != 0 && errno != EBADF && errno != ENOENT) {
        return -1;
    }
    return 0;
}

static void dispatch_fd(struct loop *loop, const struct epoll_event *ev)
{
    int fd = (int)(uint32_t)ev->data.u64;
    uint32_t gen = (uint32_t)(ev->data.u64 >> 32);
    if ((size_t)fd >= loop->watch_cap) {
        return;
    }
    const struct watch *w = &loop->watches[fd];
    if (!w->active || w->gen != gen) {
        return; /* unwatched (or re-registered) earlier in this round */
    }
    unsigned got = 0;
    if (ev->events & EPOLLIN) {
        got |= LOOP_READ;
    }
    if (ev->events & EPOLLOUT) {
        got |= LOOP_WRITE;
    }
    if (ev->events & (EPOLLERR | EPOLLHUP)) {
        got |= LOOP_ERROR | LOOP_READ; /* a reader finds EOF or the error by reading */
    }
    got &= w->events | LOOP_ERROR; /* the watch may have changed earlier in this round */
    if (got) {
        w->fn(loop, fd, got, w->ctx);
    }
}

/* ---- timers ---- */

static bool timer_before(const struct loop_timer *a, const struct loop_timer *b)
{
    return a->due_ms < b->due_ms || (a->due_ms == b->due_ms && a->seq < b->seq);
}

static void heap_place(struct loop *loop, size_t slot, struct loop_timer *t)
{
    loop->heap[slot] = t;
    t->slot = slot;
}

static void sift_up(struct loop *loop, size_t slot)
{
    struct loop_timer *t = loop->heap[slot];
    while (slot > 0) {
        size_t parent = (slot - 1) / 2;
        if (!timer_before(t, loop->heap[parent])) {
            break;
        }
        heap_place(loop, slot, loop->heap[parent]);
        slot = parent;
    }
    heap_place(loop, slot, t);
}

static void sift_down(struct loop *loop, size_t slot)
{
    struct loop_timer *t = loop->heap[slot];
    for (;;) {
        size_t child = 2 * slot + 1;
        if (child >= loop->heap_len) {
            break;
        }
        if (child + 1 < loop->heap_len && timer_before(loop->heap[child + 1], loop->heap[child])) {
            child++;
        }
        if (!timer_before(loop->heap[child], t)) {
            break;
        }
        heap_place(loop, slot, loop->heap[child]);
        slot = child;
    }
    heap_place(loop, slot, t);
}

static void heap_remove(struct loop *loop, struct loop_timer *t)
{
    size_t slot = t->slot;
    struct loop_timer *last = loop->heap[--loop->heap_len];
    t->slot = TIMER_IDLE;
    if (last == t) {
        return;
    }
    heap_place(loop, slot, last);
    sift_down(loop, slot);
    sift_up(loop, last->slot);
}

static void recycle_timer(struct loop *loop, struct loop_timer *t)
{
    t->next_free = loop->free_timers;
    loop->free_timers = t;
}

struct loop_timer *loop_timer_after(struct loop *loop, int64_t delay_ms, loop_timer_fn fn,
                                    void *ctx)
{
    if (!fn) {
        return NULL;
    }
    if (loop->heap_len == loop->heap_cap) {
        size_t cap = loop->heap_cap ? loop->heap_cap * 2 : LOOP_MIN_TIMERS;
        /* An array of pointers: sizeof(*grown) is the pointer's size. */
        struct loop_timer **grown =
            realloc(loop->heap, cap * sizeof(*grown)); // NOLINT(bugprone-sizeof-expression)
        if (!grown) {
            return NULL;
        }
        loop->heap = grown;
        loop->heap_cap = cap;
    }
    struct loop_timer *t = loop->free_timers;
    if (t) {
        loop->free_timers = t->next_free;
    } else if (!(t = malloc(sizeof(*t)))) {
        return NULL;
    }
    t->due_ms = loop_now_ms() + (delay_ms > 0 ? delay_ms : 0);
    t->seq = loop->next_seq++;
    t->fn = fn;
    t->ctx = ctx;
    t->next_free = NULL;
    heap_place(loop, loop->heap_len++, t);
    sift_up(loop, t->slot);
    return t;
}

void loop_timer_cancel(struct loop *loop, struct loop_timer *timer)
{
    if (!timer || timer->slot == TIMER_IDLE) {
        return;
    }
    heap_remove(loop, timer);
    recycle_timer(loop, timer);
}

/* Fire the timers due now that existed when the round began; timers that
 * callbacks add (even with delay 0) wait for the next round, so a timer that
 * re-arms itself cannot starve the fds. */
static void fire_due_timers(struct loop *loop)
{
    int64_t now = loop_now_ms();
    uint64_t horizon = loop->next_seq;
    while (!loop->stopping && loop->heap_len > 0) {
        struct loop_timer *t = loop->heap[0];
        if (t->due_ms > now || t->seq >= horizon) {
            break;
        }
        heap_remove(loop, t);
        t->fn(loop, t->ctx);
        recycle_timer(loop, t);
    }
}

static int next_timeout_ms(const struct loop *loop)
{
    if (loop->heap_len == 0) {
        return -1;
    }
    int64_t wait = loop->heap[0]->due_ms - loop_now_ms();
    if (wait <= 0) {
        return 0;
    }
    return wait > INT_MAX ? INT_MAX : (int)wait;
}

/* ---- running ---- */

int loop_run(struct loop *loop)
{
    struct epoll_event events[LOOP_MAX_EVENTS];
    while (!loop->stopping) {
        int n = epoll_wait(loop->epfd, events, LOOP_MAX_EVENTS, next_timeout_ms(loop));
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            loop->stopping = false;
            return -1;
        }
        for (int i = 0; i < n && !loop->stopping; i++) {
            dispatch_fd(loop, &events[i]);
        }
        fire_due_timers(loop);
    }
    loop->stopping = false;
    return 0;
}

void loop_stop(struct loop *loop)
{
    loop->stopping = true;
}
