/* cancel_set.c — remembered cancels (cancel_set.h): a chained hash table of
 * entries that are also on a list in the order they were added, so the
 * oldest is forgotten first, by count or by age. */
#include "cancel_set.h"

#include <stdlib.h>
#include <string.h>

struct entry {
    struct entry *bucket_next;
    struct entry *older, *newer; /* the age list */
    int64_t at_ms;
    char *reason;
    char id[]; /* NUL-terminated */
};

struct cancel_set {
    struct entry **buckets;
    size_t n_buckets; /* a power of two */
    size_t n, max;
    int64_t keep_ms;
    struct entry *oldest, *newest;
};

static size_t hash(const char *s)
{
    size_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

struct cancel_set *cancel_set_new(size_t max, int64_t keep_ms)
{
    struct cancel_set *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->n_buckets = 16;
    while (s->n_buckets < max && s->n_buckets < ((size_t)1 << 24))
        s->n_buckets *= 2;
    s->buckets = calloc(s->n_buckets, sizeof(struct entry *));
    if (!s->buckets) {
        free(s);
        return NULL;
    }
    s->max = max;
    s->keep_ms = keep_ms;
    return s;
}

static struct entry **find(struct cancel_set *s, const char *id)
{
    struct entry **e = &s->buckets[hash(id) & (s->n_buckets - 1)];
    while (*e && strcmp((*e)->id, id) != 0)
        e = &(*e)->bucket_next;
    return e;
}

/* Take an entry off both lists and free it. */
static void forget(struct cancel_set *s, struct entry *e)
{
    struct entry **slot = find(s, e->id);
    *slot = e->bucket_next;
    if (e->older)
        e->older->newer = e->newer;
    else
        s->oldest = e->newer;
    if (e->newer)
        e->newer->older = e->older;
    else
        s->newest = e->older;
    s->n--;
    free(e->reason);
    free(e);
}

void cancel_set_free(struct cancel_set *s)
{
    if (!s)
        return;
    while (s->oldest)
        forget(s, s->oldest);
    free(s->buckets);
    free(s);
}

int cancel_set_add(struct cancel_set *s, const char *id, const char *reason, int64_t at_ms)
{
    if (s->max == 0)
        return 0;
    size_t len = strlen(id);
    struct entry *e = malloc(sizeof(*e) + len + 1);
    char *why = strdup(reason ? reason : "");
    if (!e || !why) {
        free(e);
        free(why);
        return -1;
    }
    struct entry *old = *find(s, id);
    if (old)
        forget(s, old);
    int forgotten = 0;
    if (s->n >= s->max) {
        forget(s, s->oldest);
        forgotten = 1;
    }
    memcpy(e->id, id, len + 1);
    e->reason = why;
    e->at_ms = at_ms;
    struct entry **slot = &s->buckets[hash(id) & (s->n_buckets - 1)];
    e->bucket_next = *slot;
    *slot = e;
    e->newer = NULL;
    e->older = s->newest;
    if (s->newest)
        s->newest->newer = e;
    else
        s->oldest = e;
    s->newest = e;
    s->n++;
    return forgotten;
}

bool cancel_set_has(struct cancel_set *s, const char *id, int64_t now_ms, const char **reason)
{
    struct entry *e = *find(s, id);
    if (!e || e->at_ms + s->keep_ms < now_ms)
        return false;
    if (reason)
        *reason = e->reason;
    return true;
}

size_t cancel_set_expire(struct cancel_set *s, int64_t now_ms)
{
    size_t n = 0;
    /* Added in about time order: the oldest are at the head. */
    /* forget() moves s->oldest on (the analyzer takes it for the freed one). */
    // NOLINTNEXTLINE(clang-analyzer-unix.Malloc)
    while (s->oldest && s->oldest->at_ms + s->keep_ms < now_ms) {
        forget(s, s->oldest);
        n++;
    }
    return n;
}

size_t cancel_set_size(const struct cancel_set *s)
{
    return s->n;
}
