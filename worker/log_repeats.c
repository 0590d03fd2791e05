/* log_repeats.c — a small table of recurring problems and their windows
 * (log_repeats.h): the first occurrence is said, the rest are counted. */
#include "log_repeats.h"

#include <stdio.h>
#include <string.h>

void log_repeats_init(struct log_repeats *r, int64_t window_ms)
{
    memset(r, 0, sizeof(*r));
    r->window_ms = window_ms;
}

/* When a window opened at now_ms ends (INT64_MAX at the latest). */
static int64_t window_end(const struct log_repeats *r, int64_t now_ms)
{
    return now_ms > INT64_MAX - r->window_ms ? INT64_MAX : now_ms + r->window_ms;
}

/* The slot of `key`, or a free one (or one whose window is over and holds
 * no count) for it; NULL when every slot is busy with other problems. */
static struct log_repeats_slot *slot_for(struct log_repeats *r, int key, int64_t now_ms)
{
    struct log_repeats_slot *spare = NULL;
    for (size_t i = 0; i < LOG_REPEATS_SLOTS; i++) {
        struct log_repeats_slot *s = &r->slot[i];
        if (s->used && s->key == key)
            return s;
        bool over = !s->used || (s->repeats == 0 && now_ms >= s->window_end_ms);
        if (over && !spare)
            spare = s;
    }
    if (spare)
        spare->used = false;
    return spare;
}

bool log_repeats_note(struct log_repeats *r, int key, const char *text, int64_t now_ms)
{
    struct log_repeats_slot *s = slot_for(r, key, now_ms);
    if (!s)
        return true;
    if (!s->used || (s->repeats == 0 && now_ms >= s->window_end_ms)) {
        s->used = true;
        s->key = key;
        s->window_end_ms = window_end(r, now_ms);
        s->repeats = 0;
        return true;
    }
    s->repeats++;
    snprintf(s->last, sizeof(s->last), "%s", text);
    return false;
}

int64_t log_repeats_next_due(const struct log_repeats *r)
{
    int64_t next = -1;
    for (size_t i = 0; i < LOG_REPEATS_SLOTS; i++) {
        const struct log_repeats_slot *s = &r->slot[i];
        if (s->used && s->repeats > 0 && (next < 0 || s->window_end_ms < next))
            next = s->window_end_ms;
    }
    return next;
}

bool log_repeats_due(struct log_repeats *r, int64_t now_ms, int *key, unsigned long *count,
                     char *last, size_t last_len)
{
    for (size_t i = 0; i < LOG_REPEATS_SLOTS; i++) {
        struct log_repeats_slot *s = &r->slot[i];
        if (!s->used || s->repeats == 0 || now_ms < s->window_end_ms)
            continue;
        *key = s->key;
        *count = s->repeats;
        snprintf(last, last_len, "%s", s->last);
        s->repeats = 0;
        s->window_end_ms = window_end(r, now_ms); /* still failing: a new window */
        return true;
    }
    return false;
}
