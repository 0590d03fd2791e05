/* cancel_set.h — the cancels a worker remembers for jobs it has not taken
 * yet (schemas/spec.md, "Cancellation"): job ids, each with its reason and
 * the time the cancel was sent, bounded by count (the oldest is forgotten
 * first) and by age. Lookups are by id, in constant time. */
#ifndef LLMQ_CANCEL_SET_H
#define LLMQ_CANCEL_SET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cancel_set;

/* A set of at most `max` ids, each kept `keep_ms` after its time. NULL
 * when out of memory. max 0: nothing is remembered. */
struct cancel_set *cancel_set_new(size_t max, int64_t keep_ms);
void cancel_set_free(struct cancel_set *s);

/* Remember `id` (again: its time and reason are replaced) as cancelled at
 * `at_ms` (Unix ms). Returns how many older ids were forgotten to make room
 * (0 or 1), or -1 when out of memory (then nothing changed). */
int cancel_set_add(struct cancel_set *s, const char *id, const char *reason, int64_t at_ms);

/* Whether `id` is remembered and not older than keep_ms at `now_ms`; its
 * reason ("" when none) goes to *reason (valid until the set changes). */
bool cancel_set_has(struct cancel_set *s, const char *id, int64_t now_ms, const char **reason);

/* Forget what is older than keep_ms at `now_ms`; returns how many. */
size_t cancel_set_expire(struct cancel_set *s, int64_t now_ms);

/* How many ids are remembered. */
size_t cancel_set_size(const struct cancel_set *s);

#endif
