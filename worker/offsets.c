/* offsets.c — per-partition completion tracker: a ring of the offsets from
 * the first unfinished one to the last one seen, so the commit point is
 * always the ring's front (or one past the last offset once it is empty).
 *
 * A done offset at the front is dropped at once, so the ring holds only the
 * window of jobs still in flight plus the finished ones behind the oldest
 * unfinished job; it grows by doubling and never holds a committable prefix.
 * Finding an offset is O(1) when offsets are contiguous (the usual case) and
 * a binary search over the window when there are gaps. */
#include "offsets.h"

#include <stdlib.h>

#define INITIAL_CAPACITY 16

struct entry {
    int64_t offset;
    bool done;
};

struct offsets {
    struct entry *ring;
    size_t capacity;   /* a power of two */
    size_t head;       /* index of the first (oldest, never done) entry */
    size_t count;      /* entries in the ring */
    size_t pending;    /* entries not done */
    int64_t last_seen; /* -1 before the first offsets_track */
    int64_t committed; /* -1 before the first offsets_committed */
};

static struct entry *entry_at(const struct offsets *t, size_t i)
{
    return &t->ring[(t->head + i) & (t->capacity - 1)];
}

struct offsets *offsets_new(void)
{
    struct offsets *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->ring = calloc(INITIAL_CAPACITY, sizeof(*t->ring));
    if (t->ring == NULL) {
        free(t);
        return NULL;
    }
    t->capacity = INITIAL_CAPACITY;
    t->last_seen = -1;
    t->committed = -1;
    return t;
}

void offsets_free(struct offsets *t)
{
    if (t == NULL)
        return;
    free(t->ring);
    free(t);
}

/* Double the ring, unwrapping it so the front is at index 0. */
static int grow(struct offsets *t)
{
    size_t capacity = t->capacity * 2;
    struct entry *ring = malloc(capacity * sizeof(*ring));
    if (ring == NULL)
        return -1;
    for (size_t i = 0; i < t->count; i++)
        ring[i] = *entry_at(t, i);
    free(t->ring);
    t->ring = ring;
    t->capacity = capacity;
    t->head = 0;
    return 0;
}

int offsets_track(struct offsets *t, int64_t offset)
{
    if (offset < 0 || offset <= t->last_seen)
        return -1;
    if (t->count == t->capacity && grow(t) != 0)
        return -1;
    *entry_at(t, t->count) = (struct entry){.offset = offset, .done = false};
    t->count++;
    t->pending++;
    t->last_seen = offset;
    return 0;
}

/* Index of `offset` in the ring, or -1. Offsets in the ring increase. */
static long find(const struct offsets *t, int64_t offset)
{
    if (t->count == 0 || offset < entry_at(t, 0)->offset || offset > t->last_seen)
        return -1;
    uint64_t guess = (uint64_t)(offset - entry_at(t, 0)->offset);
    if (guess < t->count && entry_at(t, (size_t)guess)->offset == offset)
        return (long)guess;
    size_t lo = 0, hi = t->count; /* search [lo, hi) */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int64_t at = entry_at(t, mid)->offset;
        if (at == offset)
            return (long)mid;
        if (at < offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

int offsets_done(struct offsets *t, int64_t offset)
{
    long i = find(t, offset);
    if (i < 0 || entry_at(t, (size_t)i)->done)
        return -1;
    entry_at(t, (size_t)i)->done = true;
    t->pending--;
    while (t->count > 0 && entry_at(t, 0)->done) {
        t->head = (t->head + 1) & (t->capacity - 1);
        t->count--;
    }
    return 0;
}

int64_t offsets_commit_point(const struct offsets *t)
{
    if (t->last_seen < 0)
        return -1;
    int64_t point = t->count > 0 ? entry_at(t, 0)->offset : t->last_seen + 1;
    return point > t->committed ? point : -1;
}

void offsets_committed(struct offsets *t, int64_t offset)
{
    if (offset > t->committed)
        t->committed = offset;
}

size_t offsets_pending(const struct offsets *t)
{
    return t->pending;
}
