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
#include <unistd.h>

#include "buf.h"
#include "clock.h"

enum { LOOP_MAX_EVENTS = 64, LOOP_MIN_WATCHES = 64, LOOP_MIN_TIMERS = 16 };

#define TIMER_NO_SLOT UINT32_MAX /* the end of the free list */

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

/* A slot of loop->timers: an armed timer, or a free slot (fn NULL). */
struct timer {
    int64_t due_ms;
    uint64_t seq; /* creation order: timers due at the same ms fire first-in first-out */
    uint64_t gen; /* the slot's generation: bumped when its timer fires or is cancelled */
    size_t slot;  /* index in loop->heap while armed */
    loop_timer_fn fn;
    void *ctx;
    uint32_t next_free; /* while free: the next free slot, or TIMER_NO_SLOT */
};

struct loop {
    int epfd;
    bool stopping;
    struct watch *watches; /* indexed by fd */
    size_t watch_cap;
    struct timer *timers; /* slots; handles name them by index and generation */
    size_t timers_used;   /* slots ever taken */
    size_t timers_cap;
    uint32_t free_timers; /* the first free slot, or TIMER_NO_SLOT */
    uint32_t *heap;       /* indexes of the armed timers: a min-heap on (due_ms, seq) */
    size_t heap_len;
    size_t heap_cap;
    uint64_t next_seq;
};

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
    loop->free_timers = TIMER_NO_SLOT;
    return loop;
}

void loop_free(struct loop *loop)
{
    if (!loop) {
        return;
    }
    free(loop->timers);
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

/* A handle is the slot's generation above its index; generations start at
 * 1, so no handle is 0. 2^40 reuses of one slot before a generation repeats. */
enum { TIMER_INDEX_BITS = 24 };
#define TIMER_INDEX_MASK ((UINT64_C(1) << TIMER_INDEX_BITS) - 1)
#define TIMER_GEN_MASK   ((UINT64_C(1) << (64 - TIMER_INDEX_BITS)) - 1)

static struct timer *timer_at(const struct loop *loop, uint32_t index)
{
    return &loop->timers[index];
}

static bool timer_before(const struct loop *loop, uint32_t a, uint32_t b)
{
    const struct timer *ta = timer_at(loop, a), *tb = timer_at(loop, b);
    return ta->due_ms < tb->due_ms || (ta->due_ms == tb->due_ms && ta->seq < tb->seq);
}

static void heap_place(struct loop *loop, size_t slot, uint32_t index)
{
    loop->heap[slot] = index;
    timer_at(loop, index)->slot = slot;
}

static void sift_up(struct loop *loop, size_t slot)
{
    uint32_t index = loop->heap[slot];
    while (slot > 0) {
        size_t parent = (slot - 1) / 2;
        if (!timer_before(loop, index, loop->heap[parent])) {
            break;
        }
        heap_place(loop, slot, loop->heap[parent]);
        slot = parent;
    }
    heap_place(loop, slot, index);
}

static void sift_down(struct loop *loop, size_t slot)
{
    uint32_t index = loop->heap[slot];
    for (;;) {
        size_t child = 2 * slot + 1;
        if (child >= loop->heap_len) {
            break;
        }
        if (child + 1 < loop->heap_len &&
            timer_before(loop, loop->heap[child + 1], loop->heap[child])) {
            child++;
        }
        if (!timer_before(loop, loop->heap[child], index)) {
            break;
        }
        heap_place(loop, slot, loop->heap[child]);
        slot = child;
    }
    heap_place(loop, slot, index);
}

/* Take the timer out of the heap and free its slot: its handle goes stale. */
static void timer_release(struct loop *loop, uint32_t index)
{
    struct timer *t = timer_at(loop, index);
    size_t slot = t->slot;
    uint32_t last = loop->heap[--loop->heap_len];
    if (last != index) {
        heap_place(loop, slot, last);
        sift_down(loop, slot);
        sift_up(loop, timer_at(loop, last)->slot);
    }
    t->gen = (t->gen + 1) & TIMER_GEN_MASK;
    if (t->gen == 0) {
        t->gen = 1;
    }
    t->fn = NULL;
    t->ctx = NULL;
    t->next_free = loop->free_timers;
    loop->free_timers = index;
}

/* A free slot's index, or -1 when out of memory or slots. */
static int64_t timer_take(struct loop *loop)
{
    if (loop->free_timers != TIMER_NO_SLOT) {
        uint32_t index = loop->free_timers;
        loop->free_timers = timer_at(loop, index)->next_free;
        return index;
    }
    if (loop->timers_used > TIMER_INDEX_MASK ||
        grow_array((void **)&loop->timers, &loop->timers_cap, loop->timers_used + 1,
                   sizeof(*loop->timers), LOOP_MIN_TIMERS) != 0) {
        return -1;
    }
    timer_at(loop, (uint32_t)loop->timers_used)->gen = 1;
    return (int64_t)loop->timers_used++;
}

/* The armed timer a handle names, or NULL. */
static struct timer *timer_of(const struct loop *loop, loop_timer_id id)
{
    uint64_t index = id & TIMER_INDEX_MASK;
    if (id == LOOP_TIMER_NONE || index >= loop->timers_used) {
        return NULL;
    }
    struct timer *t = timer_at(loop, (uint32_t)index);
    return t->gen == id >> TIMER_INDEX_BITS ? t : NULL;
}

loop_timer_id loop_timer_after(struct loop *loop, int64_t delay_ms, loop_timer_fn fn, void *ctx)
{
    if (!fn || grow_array((void **)&loop->heap, &loop->heap_cap, loop->heap_len + 1,
                          sizeof(*loop->heap), LOOP_MIN_TIMERS) != 0) {
        return LOOP_TIMER_NONE;
    }
    int64_t taken = timer_take(loop);
    if (taken < 0) {
        return LOOP_TIMER_NONE;
    }
    uint32_t index = (uint32_t)taken;
    struct timer *t = timer_at(loop, index);
    t->due_ms = clock_mono_ms() + (delay_ms > 0 ? delay_ms : 0);
    t->seq = loop->next_seq++;
    t->fn = fn;
    t->ctx = ctx;
    heap_place(loop, loop->heap_len++, index);
    sift_up(loop, t->slot);
    return t->gen << TIMER_INDEX_BITS | index;
}

void loop_timer_cancel(struct loop *loop, loop_timer_id timer)
{
    if (timer_of(loop, timer)) {
        timer_release(loop, (uint32_t)(timer & TIMER_INDEX_MASK));
    }
}

bool loop_timer_pending(const struct loop *loop, loop_timer_id timer)
{
    return timer_of(loop, timer) != NULL;
}

/* Fire the timers due now that existed when the round began; timers that
 * callbacks add (even with delay 0) wait for the next round, so a timer that
 * re-arms itself cannot starve the fds. A timer's slot is freed before its
 * callback runs, so the callback sees its own handle as fired. */
static void fire_due_timers(struct loop *loop)
{
    int64_t now = clock_mono_ms();
    uint64_t horizon = loop->next_seq;
    while (!loop->stopping && loop->heap_len > 0) {
        uint32_t index = loop->heap[0];
        const struct timer *t = timer_at(loop, index);
        if (t->due_ms > now || t->seq >= horizon) {
            break;
        }
        loop_timer_fn fn = t->fn;
        void *ctx = t->ctx;
        timer_release(loop, index);
        fn(loop, ctx);
    }
}

static int next_timeout_ms(const struct loop *loop)
{
    if (loop->heap_len == 0) {
        return -1;
    }
    int64_t wait = timer_at(loop, loop->heap[0])->due_ms - clock_mono_ms();
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
