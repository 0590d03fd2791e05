/* commits.c — a list of the assigned partitions, each with its offset
 * tracker and the done prefix last handed to Kafka, when the last commit
 * went out, and the timer of the next commit. */
#include "commits.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "loop.h"
#include "offsets.h"

/* The shortest time between two commits of done offsets. A job's offset is
 * committed as soon as it is done if the last commit went out at least this
 * long ago, else when this much time has passed since it: a burst of
 * finished jobs costs one commit per gap, and a worker that dies loses at
 * most this long's finished jobs to a rerun (issue 16 point 5, FINDINGS.md
 * "Point 5"). It was a fixed 200 ms delay after each done before. */
#define COMMIT_GAP_MS 50
/* How soon a failed commit is tried again. */
#define COMMIT_RETRY_MS 1000

struct partition {
    struct partition *next;
    uint64_t id; /* this assignment's, for tickets */
    char *topic;
    int32_t partition;
    struct offsets *offsets;
    int64_t committed; /* the done prefix last handed to Kafka to commit; -1: none */
};

struct commits {
    struct loop *loop;
    struct kafka *kafka;
    const struct logger *log;
    struct partition *partitions;
    size_t n_partitions;
    uint64_t last_id;
    loop_timer_id timer;
    int64_t last_commit_ms; /* monotonic */
    bool retry;             /* a commit failed: the next one goes even if nothing moved */
};

struct commits *commits_new(struct loop *loop, struct kafka *kafka, const struct logger *log)
{
    struct commits *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    *c = (struct commits){.loop = loop,
                          .kafka = kafka,
                          .log = log,
                          .last_commit_ms = clock_mono_ms() - COMMIT_GAP_MS};
    return c;
}

static void partition_free(struct partition *p)
{
    offsets_free(p->offsets);
    free(p->topic);
    free(p);
}

void commits_free(struct commits *c)
{
    if (!c)
        return;
    loop_timer_cancel(c->loop, c->timer);
    while (c->partitions) {
        struct partition *p = c->partitions;
        c->partitions = p->next;
        partition_free(p);
    }
    free(c);
}

static struct partition *partition_find(const struct commits *c, const char *topic, int32_t id)
{
    for (struct partition *p = c->partitions; p; p = p->next)
        if (p->partition == id && strcmp(p->topic, topic) == 0)
            return p;
    return NULL;
}

static struct partition *partition_get(struct commits *c, const char *topic, int32_t id)
{
    struct partition *p = partition_find(c, topic, id);
    if (p)
        return p;
    p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->topic = strdup(topic);
    p->partition = id;
    p->committed = -1;
    p->offsets = offsets_new();
    if (!p->topic || !p->offsets) {
        partition_free(p);
        return NULL;
    }
    p->id = ++c->last_id;
    p->next = c->partitions;
    c->partitions = p;
    c->n_partitions++;
    return p;
}

void commits_assigned(struct commits *c, const struct kafka_partition *parts, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!partition_get(c, parts[i].topic, parts[i].partition))
            log_error(c->log, "commits", "out of memory: %s[%d] tracked from its first job",
                      parts[i].topic, (int)parts[i].partition);
}

int commits_track(struct commits *c, const char *topic, int32_t partition, int64_t offset,
                  struct commits_ticket *ticket)
{
    struct partition *p = partition_get(c, topic, partition);
    if (!p || offsets_track(p->offsets, offset) != 0)
        return -1;
    *ticket = (struct commits_ticket){p->id, offset};
    return 0;
}

/* When a done prefix moved, commit every partition's done prefix. An
 * asynchronous commit fails while the group rebalances (its generation is
 * gone), so each commit carries the prefixes already sent too: the next one
 * mends what a failed one left behind. */
static void commit_now(struct commits *c, bool sync)
{
    bool moved = c->retry;
    c->retry = false;
    for (struct partition *p = c->partitions; p; p = p->next) {
        int64_t at = offsets_commit_point(p->offsets);
        if (at < 0)
            continue;
        offsets_committed(p->offsets, at);
        p->committed = at;
        moved = true;
    }
    struct kafka_partition *list = moved ? calloc(c->n_partitions, sizeof(*list)) : NULL;
    if (moved && !list) {
        log_warn(c->log, "commits", "out of memory: commit left to the next one");
        return;
    }
    size_t n = 0;
    for (struct partition *p = c->partitions; list && p; p = p->next)
        if (p->committed >= 0)
            list[n++] = (struct kafka_partition){p->topic, p->partition, p->committed};
    if (n > 0) {
        c->last_commit_ms = clock_mono_ms();
        int err = kafka_commit(c->kafka, list, n, sync);
        if (err && kafka_error_kind(err) != KAFKA_ERR_NO_OFFSET)
            log_warn(c->log, "commits", "commit failed: %s", kafka_error_str(err));
    }
    free(list);
}

static void commit_due(struct loop *loop, void *ctx)
{
    struct commits *c = ctx;
    (void)loop;
    commit_now(c, false);
}

void commits_failed(struct commits *c, const struct kafka_partition *parts, size_t n)
{
    bool ours = false;
    for (size_t i = 0; i < n && !ours; i++)
        ours = partition_find(c, parts[i].topic, parts[i].partition) != NULL;
    if (!ours)
        return; /* revoked since: the revocation committed them */
    c->retry = true;
    if (!loop_timer_pending(c->loop, c->timer))
        c->timer = loop_timer_after(c->loop, COMMIT_RETRY_MS, commit_due, c);
}

void commits_done(struct commits *c, const struct commits_ticket *ticket)
{
    struct partition *p = c->partitions;
    while (p && p->id != ticket->partition_id)
        p = p->next;
    if (!p || offsets_done(p->offsets, ticket->offset) != 0 ||
        loop_timer_pending(c->loop, c->timer))
        return;
    int64_t since = clock_mono_ms() - c->last_commit_ms;
    if (since >= COMMIT_GAP_MS)
        commit_now(c, false);
    else
        c->timer = loop_timer_after(c->loop, COMMIT_GAP_MS - since, commit_due, c);
}

static void partition_remove(struct commits *c, struct partition *p)
{
    for (struct partition **pp = &c->partitions; *pp; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            c->n_partitions--;
            partition_free(p);
            return;
        }
    }
}

void commits_revoke(struct commits *c, struct kafka_partition *parts, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct partition *p = partition_find(c, parts[i].topic, parts[i].partition);
        if (!p)
            continue;
        /* The whole done prefix, even if sent before: that asynchronous
         * commit may have failed in this very rebalance. */
        int64_t at = offsets_commit_point(p->offsets);
        if (at < 0)
            at = p->committed;
        parts[i].offset = at >= 0 ? at : KAFKA_OFFSET_NONE;
        partition_remove(c, p);
    }
}

void commits_flush(struct commits *c)
{
    loop_timer_cancel(c->loop, c->timer);
    commit_now(c, true);
}
