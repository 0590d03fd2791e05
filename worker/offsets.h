/* offsets.h — per-partition completion tracker for at-least-once commits.
 *
 * Jobs of one partition start in offset order but finish in any order. The
 * tracker records each started offset and whether its job is done (its
 * terminal reply acknowledged by the broker). The offset safe to commit is
 * the first offset that is not done yet — or one past the last offset seen
 * when all are done — so a crash never skips an unfinished job. Offsets may
 * have gaps (compaction, transaction markers); only seen offsets count. */
#ifndef LLMQ_OFFSETS_H
#define LLMQ_OFFSETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct offsets; /* one per assigned partition */

struct offsets *offsets_new(void);
void offsets_free(struct offsets *t);

/* Record that the job at `offset` started. Offsets must increase; returns -1
 * (and records nothing) for an offset not above the last one seen. */
int offsets_track(struct offsets *t, int64_t offset);

/* Mark a tracked offset done. Returns -1 if it is not tracked or is
 * already done. */
int offsets_done(struct offsets *t, int64_t offset);

/* The offset to commit (next to consume), or -1 when nothing new is safe to
 * commit since the last offsets_committed(). */
int64_t offsets_commit_point(const struct offsets *t);

/* Tell the tracker `offset` was committed: forget the done prefix below it. */
void offsets_committed(struct offsets *t, int64_t offset);

/* Offsets tracked and not yet done (jobs in flight on this partition). */
size_t offsets_pending(const struct offsets *t);

#endif
