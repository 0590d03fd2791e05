/* commits.h — the assigned partitions and their commits.
 *
 * One offset tracker (offsets.h) per assigned partition: each job message's
 * offset is tracked when it is taken and marked done when its terminal
 * messages are acknowledged; a done mark commits every partition's done
 * prefix at once, or, when the last commit went out less than 50 ms ago, 50
 * ms after it, so a burst of finished jobs costs one commit per 50 ms. When
 * partitions are revoked their done prefix is handed to the rebalance's
 * synchronous commit and their trackers are forgotten.
 *
 * A job holds a ticket, not a pointer: a ticket whose partition was revoked
 * (even if it was assigned again since) marks nothing, so a job finishing
 * after its partition moved never commits past another owner's jobs. */
#ifndef LLMQ_COMMITS_H
#define LLMQ_COMMITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kafka.h"
#include "log.h"

struct loop;
struct commits;

/* Where a job's offset is tracked. */
struct commits_ticket {
    uint64_t partition_id; /* this assignment of the partition; 0: none */
    int64_t offset;
};

struct commits *commits_new(struct loop *loop, struct kafka *kafka, const struct logger *log);

/* Forget every partition and cancel a scheduled commit (no commit). NULL is fine. */
void commits_free(struct commits *c);

/* Partitions were assigned: track them from now on. */
void commits_assigned(struct commits *c, const struct kafka_partition *parts, size_t n);

/* Track a job message's offset (its partition is added if it was not
 * assigned yet). 0 and the ticket, or -1 (out of memory, or an offset not
 * above the last one of the partition): then it is not tracked, so not
 * committed, and another run will see it again. */
int commits_track(struct commits *c, const char *topic, int32_t partition, int64_t offset,
                  struct commits_ticket *ticket);

/* The ticket's job is done; if the done prefix moved, a commit follows at
 * once, or 50 ms after the last commit when that was less than 50 ms ago.
 * A ticket of a revoked partition, or one already done, is ignored. */
void commits_done(struct commits *c, const struct commits_ticket *ticket);

/* The commit of these partitions failed: commit every partition's done
 * prefix again within a second, without waiting for another job to finish
 * (nothing happens if none of them is assigned any more). */
void commits_failed(struct commits *c, const struct kafka_partition *parts, size_t n);

/* Partitions are being revoked: set each one's offset to its done prefix
 * (KAFKA_OFFSET_NONE when nothing was ever done) and forget it. Tickets of
 * these partitions mark nothing from now on. */
void commits_revoke(struct commits *c, struct kafka_partition *parts, size_t n);

/* Commit every partition's done prefix now, synchronously, and cancel a
 * scheduled commit (the last commit of a drain). */
void commits_flush(struct commits *c);

#endif
