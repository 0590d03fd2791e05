/* worker_internal.h — what worker.c (the worker: intake, capacity, the
 * Kafka and llama-server events, drain, telemetry) and task.c (one job's
 * life, from its admission to its terminal messages) share: the two structs
 * and the few calls between them. Besides them only control.c (cancels)
 * includes it. */
#ifndef LLMQ_WORKER_INTERNAL_H
#define LLMQ_WORKER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "buf.h"
#include "commits.h"
#include "config.h"
#include "delivery.h"
#include "http.h"
#include "job.h"
#include "kafka.h"
#include "llama.h"
#include "log.h"
#include "loop.h"
#include "worker_stats.h"

enum task_state { TASK_QUEUED, TASK_RUNNING, TASK_FINISHING };

struct task {
    struct worker *w;
    struct task *prev, *next;     /* all live tasks */
    struct task *queue_next;      /* queued tasks, FIFO */
    struct commits_ticket ticket; /* where its offset is tracked */
    char *source_topic;
    int32_t source_partition;
    int64_t offset;
    uint8_t *raw; /* the job message as received, for a dead-letter copy */
    size_t raw_len;
    char *raw_key;
    size_t raw_key_len;

    struct job job;
    enum task_state state;
    char run[17];
    unsigned attempts;
    unsigned crashes;                 /* runs lost with llama-server */
    bool suspect;                     /* in flight when llama-server died: its reruns run alone */
    int64_t kafka_ts_ms;              /* the job message's timestamp (wall) */
    int64_t received_us;              /* monotonic, when it was consumed */
    int64_t deadline_wall_ms;         /* the job's deadline, or consumed + job_timeout */
    int64_t start_us, first_token_us; /* monotonic: timings keep sub-ms precision */
    struct llama_run *llama;
    uint64_t seq;
    uint64_t pieces;          /* text pieces the run streamed (about one per token) */
    struct buf text;          /* the run's full text */
    size_t published_len;     /* bytes of text already sent in chunks */
    msgpack_sbuffer logprobs; /* the run's logprobs entries, packed (job.logprobs > 0) */
    size_t n_logprobs;
    size_t published_lp_len, published_lp_count; /* of them, already sent in chunks */
    loop_timer_id coalesce_timer;
    unsigned pieces_held; /* streamed pieces merged since the last chunk */
    loop_timer_id deadline_timer;
    unsigned deliveries_pending; /* terminal reply and/or dead-letter copy */
};

struct worker {
    struct loop *loop;
    const struct llmq_config *cfg;
    const struct logger *log;
    struct http *http;
    struct supervisor *sup;
    struct kafka *kafka;
    struct delivery *delivery;
    struct commits *commits;
    struct job_policy policy;
    const char **own_topics; /* the policy's: jobs, dead-letter and metrics topics */
    size_t n_own_topics;
    struct llama_caps caps;

    struct task *tasks; /* every live task */
    struct task *queue_head, *queue_tail;
    unsigned n_tasks; /* queued + running + finishing */
    unsigned n_running;
    unsigned n_unfinished; /* queued + running: what capacity counts */
    size_t held_bytes;     /* job messages (payload + key) of every live task */
    /* Finishing tasks hold intake (2 x slots tasks or max_pending_bytes):
     * since when (0: they do not), and whether the log said so. */
    int64_t held_since_ms;
    bool held_logged;
    loop_timer_id held_timer;

    struct telemetry *telemetry;

    const char **lora_names;    /* llama.lora's names, in --lora order */
    struct cancel_set *cancels; /* remembered cancels (control.c) */
    loop_timer_id control_timer;
    bool control_running;
    char control_missing[256]; /* why cancels have no effect, "" when they do */

    loop_timer_id topic_check_timer;
    char topics_missing[256];  /* why the worker does not join yet, "" when it may */
    loop_timer_id leave_timer; /* unable to serve: leave the group when it fires */
    char left_group[256];      /* why the worker left its group, "" while in it */
    int exit_code;             /* the process's, once the loop stops */

    bool backend_ready;
    bool backend_was_ready; /* for the heartbeat: "starting" vs "restarting" */
    bool subscribed;
    bool draining;
    bool stopped;
    bool credentials_refused; /* the loop stopped for it: exit 3 */
    int64_t hold_until_ms;    /* no run starts before this (after a lost run) */
    loop_timer_id hold_timer;
    loop_timer_id drain_timer;
    struct worker_stats stats;
};

/* ---- worker.c ---- */

/* Start what can start, then pause or resume consumption to match. */
void worker_schedule(struct worker *w);

/* Put a task in the queue of those waiting for a slot (at its head for a
 * rerun), or take it out. */
void worker_queue_push(struct worker *w, struct task *t, bool front);
void worker_queue_remove(struct worker *w, struct task *t);

/* A task is gone: when draining and none is left, stop. */
void worker_drain_check(struct worker *w);

/* ---- membership.c ---- */

/* llama-server, the VRAM floor or the topics changed: join the group, or
 * arm (or disarm) the leave after llama.unready_leave_s. */
void membership_update(struct worker *w);

/* kafka_events.on_consumer_fatal: log, set the exit code, drain. */
void membership_consumer_fatal(void *ctx);

/* Why /readyz says no on the group's side (evicted, fatal error, left,
 * topics missing), or NULL. */
const char *membership_not_ready(const struct worker *w);

/* Cancel the membership's timers. */
void membership_free(struct worker *w);

/* ---- task.c ---- */

/* A task for a job message, not linked anywhere yet (the worker counts it
 * in): NULL when out of memory. It keeps the message as it came, for a
 * dead-letter copy. */
struct task *task_new(struct worker *w, const struct kafka_message *msg);

/* Free a task that was never linked. */
void task_unmade(struct task *t);

/* Decode and admit the linked task's job: queued (with its deadline), or
 * ended at once with an error reply. */
void task_admit(struct task *t, const struct kafka_message *msg);

/* Run a queued task on a free slot (it is out of the queue already). */
void task_start(struct task *t);

/* The task's run was lost with llama-server: cancel it, and run it again
 * (or end it when its retries are spent). */
void task_run_lost(struct task *t, const char *reason);

/* A cancel named the task (queued or running): stop its run, and end it
 * with error `cancelled` (message "cancelled: <reason>", or "cancelled"). */
void task_cancel(struct task *t, const char *reason);

/* Forget a task; whatever it was doing stops without a reply. */
void task_free(struct task *t);

#endif
