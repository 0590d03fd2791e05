/* worker.c — the worker: it takes job messages while it has room, starts
 * queued tasks on free slots, follows the group's rebalances and
 * llama-server's ups and downs, drains on shutdown, and answers telemetry.
 * One job's own life is in task.c.
 *
 * Everything here runs on the loop thread. The flow of one task:
 *   message -> decode + admit -> (rejected: error reply + dead-letter copy)
 *           -> queued -> running (llama run streams chunks) -> finishing
 *           -> terminal reply acknowledged -> offset done -> commit. */
#include "worker.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "control.h"
#include "supervisor.h"
#include "telemetry.h"
#include "worker_internal.h"

/* Waiting for in-flight replies when partitions are revoked. */
#define REVOKE_FLUSH_MS 2000
/* Intake held this long by unacknowledged terminal messages is logged. */
#define HELD_LOG_MS 1000

/* ---- the queue and capacity ---- */

void worker_queue_remove(struct worker *w, struct task *t)
{
    struct task *prev = NULL;
    for (struct task *q = w->queue_head; q; prev = q, q = q->queue_next) {
        if (q != t)
            continue;
        if (prev)
            prev->queue_next = q->queue_next;
        else
            w->queue_head = q->queue_next;
        if (w->queue_tail == q)
            w->queue_tail = prev;
        q->queue_next = NULL;
        return;
    }
}

void worker_queue_push(struct worker *w, struct task *t, bool front)
{
    t->state = TASK_QUEUED;
    t->queue_next = NULL;
    if (!w->queue_head) {
        w->queue_head = w->queue_tail = t;
    } else if (front) {
        t->queue_next = w->queue_head;
        w->queue_head = t;
    } else {
        w->queue_tail->queue_next = t;
        w->queue_tail = t;
    }
}

static void hold_over(struct loop *loop, void *ctx)
{
    struct worker *w = ctx;
    (void)loop;
    worker_schedule(w);
}

/* Whether the queue's head may start now. A run lost with llama-server may
 * have been what killed it: such a suspect reruns alone, and nothing starts
 * beside it, until each suspect has run (the culprit crashes alone, the
 * others complete). */
static bool may_start(const struct worker *w)
{
    if (!w->backend_ready || !w->queue_head || w->n_running >= (unsigned)w->cfg->llama.slots)
        return false;
    if (w->queue_head->suspect && w->n_running > 0)
        return false;
    for (const struct task *t = w->tasks; t; t = t->next)
        if (t->suspect && t->state == TASK_RUNNING)
            return false;
    return true;
}

/* Held intake for HELD_LOG_MS: say so (not before, as under load it is
 * held and freed within milliseconds, every few jobs). */
static void held_long(struct loop *loop, void *ctx)
{
    struct worker *w = ctx;
    (void)loop;
    w->held_logged = true;
    log_warn(w->log, "worker",
             "taking no new job: %u job(s) wait for the broker to acknowledge their terminal "
             "messages, %zu bytes of job messages held (limits: %u tasks, %zu bytes)",
             w->n_tasks - w->n_unfinished, w->held_bytes, 2 * (unsigned)w->cfg->llama.slots,
             w->cfg->limits.max_pending_bytes);
}

/* Finishing tasks (terminal reply or dead-letter copy not yet acknowledged)
 * hold memory too: at most `slots` more tasks, and limits.max_pending_bytes
 * in all. Whether they hold intake now (a dead-letter topic that is gone,
 * say, keeps tasks finishing). */
static bool intake_held(struct worker *w, int64_t now)
{
    unsigned slots = (unsigned)w->cfg->llama.slots;
    bool held = w->n_tasks >= 2 * slots || w->held_bytes >= w->cfg->limits.max_pending_bytes;
    if (held && !w->held_since_ms) {
        w->held_since_ms = now;
        w->held_timer = loop_timer_after(w->loop, HELD_LOG_MS, held_long, w);
    } else if (!held && w->held_since_ms) {
        if (w->held_logged)
            log_info(w->log, "worker", "taking jobs again after %.1f s held",
                     (double)(now - w->held_since_ms) / 1000.0);
        loop_timer_cancel(w->loop, w->held_timer);
        w->held_since_ms = 0;
        w->held_logged = false;
    }
    return held;
}

/* Start what can start, then pause or resume consumption to match. */
void worker_schedule(struct worker *w)
{
    int64_t now = clock_mono_ms();
    if (w->backend_ready && now < w->hold_until_ms) {
        if (!loop_timer_pending(w->loop, w->hold_timer))
            w->hold_timer = loop_timer_after(w->loop, w->hold_until_ms - now, hold_over, w);
    } else {
        for (struct task *t = w->queue_head; t && may_start(w); t = w->queue_head) {
            w->queue_head = t->queue_next;
            if (!w->queue_head)
                w->queue_tail = NULL;
            t->queue_next = NULL;
            task_start(t);
        }
    }
    if (!w->subscribed || w->stopped)
        return;
    bool full = w->n_unfinished >= (unsigned)w->cfg->llama.slots || intake_held(w, now);
    if (w->draining || !w->backend_ready || full || telemetry_admission_paused(w->telemetry))
        kafka_pause(w->kafka);
    else
        kafka_resume(w->kafka);
}

/* Count a new task in and link it (as queued; in the queue once admitted). */
static void task_link(struct worker *w, struct task *t)
{
    w->stats.jobs_received++;
    t->next = w->tasks;
    if (w->tasks)
        w->tasks->prev = t;
    w->tasks = t;
    w->n_tasks++;
    w->n_unfinished++;
    w->held_bytes += t->raw_len + t->raw_key_len;
    t->state = TASK_QUEUED;
}

/* ---- Kafka events ---- */

static void on_message(void *ctx, const struct kafka_message *msg)
{
    struct worker *w = ctx;
    struct task *t = task_new(w, msg);
    if (!t || commits_track(w->commits, msg->topic, msg->partition, msg->offset, &t->ticket) != 0) {
        /* Not tracked means not committed: another run will see it again. */
        gave_up(w->stats.gave_up, w->log, GAVE_UP_JOB_NOT_TRACKED, NULL, msg->topic,
                "%s[%" PRId32 "]@%" PRId64 ": cannot track this message (out of memory)",
                msg->topic, msg->partition, msg->offset);
        if (t)
            task_unmade(t);
        return;
    }
    task_link(w, t);
    task_admit(t, msg);
}

/* A chunk or heartbeat librdkafka gave up on: chunks may be lost (spec.md),
 * the done reply carries the whole text. */
static void on_lost(void *ctx, const char *topic, const char *type, const char *id, int err)
{
    struct worker *w = ctx;
    bool heartbeat = strcmp(type, "heartbeat") == 0;
    gave_up(w->stats.gave_up, w->log, heartbeat ? GAVE_UP_HEARTBEAT : GAVE_UP_CHUNK_NOT_ACKED,
            heartbeat || !id[0] ? NULL : id, topic, "%s not acknowledged (%s)",
            type[0] ? type : "message", kafka_error_str(err));
}

static void on_assigned(void *ctx, const struct kafka_partition *parts, size_t n)
{
    struct worker *w = ctx;
    commits_assigned(w->commits, parts, n);
    worker_schedule(w);
}

static void on_commit_failed(void *ctx, const struct kafka_partition *parts, size_t n)
{
    struct worker *w = ctx;
    commits_failed(w->commits, parts, n);
}

static bool task_in(const struct task *t, const struct kafka_partition *parts, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (t->source_partition == parts[i].partition &&
            strcmp(t->source_topic, parts[i].topic) == 0)
            return true;
    return false;
}

static void on_revoking(void *ctx, struct kafka_partition *parts, size_t n)
{
    struct worker *w = ctx;
    /* Cancel what has not finished: the next owner runs it again. */
    struct task *next;
    for (struct task *t = w->tasks; t; t = next) {
        next = t->next;
        if (t->state != TASK_FINISHING && task_in(t, parts, n)) {
            log_info(w->log, "worker", "job %s: cancelled, partition %s[%" PRId32 "] revoked",
                     t->job.id ? t->job.id : "?", t->source_topic, t->source_partition);
            task_free(t);
        }
    }
    /* Replies already sent may still be acknowledged in time to commit. */
    kafka_flush(w->kafka, REVOKE_FLUSH_MS);
    commits_revoke(w->commits, parts, n);
    worker_schedule(w);
}

/* A wrong password is not an outage to wait out: say so once and stop, so
 * that an orchestrator shows a failing worker instead of one never ready. */
static void on_auth_failed(void *ctx, const char *reason)
{
    struct worker *w = ctx;
    log_error(w->log, "worker",
              "Kafka SASL authentication failed (%s): check the credentials in kafka.properties; "
              "exiting with code 3",
              reason);
    w->credentials_refused = true;
    loop_stop(w->loop);
}

bool worker_credentials_refused(const struct worker *w)
{
    return w->credentials_refused;
}

/* ---- llama-server and the topics ---- */

static void backend_ready(void *ctx)
{
    struct worker *w = ctx;
    if (!w->backend_ready)
        log_info(w->log, "worker", "llama-server ready at %s", supervisor_base_url(w->sup));
    w->backend_ready = true;
    w->backend_was_ready = true;
    membership_update(w);
    worker_schedule(w);
}

static void backend_down(void *ctx, const char *reason)
{
    struct worker *w = ctx;
    w->backend_ready = false;
    log_warn(w->log, "worker", "llama-server down: %s", reason);
    /* Runs in flight are lost with it: rerun them once it is back. */
    struct task *next;
    for (struct task *t = w->tasks; t; t = next) {
        next = t->next;
        if (t->state == TASK_RUNNING && t->llama)
            task_run_lost(t, reason);
    }
    membership_update(w);
    worker_schedule(w);
}

/* ---- drain ---- */

static void drain_finish(struct worker *w)
{
    if (w->stopped)
        return;
    w->stopped = true;
    loop_timer_cancel(w->loop, w->drain_timer);
    delivery_stop(w->delivery);
    commits_flush(w->commits);
    log_info(w->log, "worker", "drained; stopping");
    loop_stop(w->loop);
}

void worker_drain_check(struct worker *w)
{
    if (w->draining && w->n_tasks == 0)
        drain_finish(w);
}

static void drain_timeout(struct loop *loop, void *ctx)
{
    struct worker *w = ctx;
    (void)loop;
    log_warn(w->log, "worker", "drain timeout: cancelling %u unfinished job(s)", w->n_unfinished);
    struct task *next;
    for (struct task *t = w->tasks; t; t = next) {
        next = t->next;
        if (t->state != TASK_FINISHING)
            task_free(t);
    }
    /* Replies in flight get a last chance to be acknowledged and committed. */
    kafka_flush(w->kafka, 5000);
    drain_finish(w);
}

void worker_drain(struct worker *w)
{
    if (w->draining)
        return;
    w->draining = true;
    log_info(w->log, "worker", "draining: %u job(s) in flight, up to %d s", w->n_tasks,
             w->cfg->limits.drain_timeout_s);
    worker_schedule(w);
    if (w->n_tasks == 0) {
        drain_finish(w);
        return;
    }
    w->drain_timer =
        loop_timer_after(w->loop, (int64_t)w->cfg->limits.drain_timeout_s * 1000, drain_timeout, w);
}

/* ---- telemetry ---- */

static void telemetry_status_fill(void *ctx, struct telemetry_status *out)
{
    struct worker *w = ctx;
    w->stats.deliveries_failed = delivery_failures(w->delivery);
    for (int k = 0; k < GAVE_UP_COUNT; k++)
        out->gave_up[k] = w->stats.gave_up[k] + delivery_gave_up(w->delivery, (enum gave_up_kind)k);
    out->stats = &w->stats;
    out->jobs_in_flight = w->n_unfinished;
    out->jobs_finishing = w->n_tasks - w->n_unfinished;
    out->held_bytes = w->held_bytes;
    out->intake_held = w->held_since_ms != 0;
    out->slots_busy = w->n_running;
    out->llama_up = w->backend_ready;
    out->llama_restarts = supervisor_restarts(w->sup);
    if (w->draining)
        out->state = "draining";
    else if (w->backend_ready)
        out->state = "ready";
    else
        out->state = w->backend_was_ready ? "restarting" : "starting";
    /* Why /readyz says no, first reason first. */
    const char *why = supervisor_last_error(w->sup);
    const char *group = membership_not_ready(w);
    if (w->draining)
        out->not_ready = "draining";
    else if (group && (w->backend_ready || !w->topics_missing[0]))
        out->not_ready = group;
    else if (!w->backend_ready)
        out->not_ready = why && why[0] ? why : "llama-server starting";
    else if (delivery_refused(w->delivery))
        out->not_ready = delivery_refused(w->delivery);
    else if (!w->subscribed || !kafka_joined(w->kafka))
        out->not_ready = "joining the consumer group";
    out->degraded = w->control_missing[0] ? w->control_missing : NULL;
}

static void admission_changed(void *ctx)
{
    membership_update(ctx);
    worker_schedule(ctx);
}

static void kafka_stats(void *ctx, const char *json, size_t len)
{
    struct worker *w = ctx;
    telemetry_kafka_stats(w->telemetry, json, len);
}

/* ---- life ---- */

/* The topics no reply_to may name (job_policy's own_topics). */
static int own_topics_init(struct worker *w)
{
    const struct llmq_config *cfg = w->cfg;
    size_t n = cfg->kafka.n_jobs_topics;
    w->own_topics = calloc(n + 3, sizeof(*w->own_topics));
    if (!w->own_topics)
        return -1;
    for (size_t i = 0; i < n; i++)
        w->own_topics[i] = cfg->kafka.jobs_topics[i];
    w->own_topics[n] = cfg->kafka.dead_letter_topic;
    w->own_topics[n + 1] = cfg->kafka.metrics_topic;
    w->n_own_topics = n + 2;
    if (cfg->kafka.control_topic[0])
        w->own_topics[w->n_own_topics++] = cfg->kafka.control_topic;
    return 0;
}

/* The adapters' names (llama.lora's NAME=PATH entries), for admission and
 * for the index each has in llama-server. 0, or -1 when out of memory. */
static int lora_names_init(struct worker *w)
{
    size_t n = w->cfg->llama.n_lora;
    w->lora_names = calloc(n ? n : 1, sizeof(*w->lora_names));
    if (!w->lora_names)
        return -1;
    for (size_t i = 0; i < n; i++) {
        const char *entry = w->cfg->llama.lora[i];
        w->lora_names[i] = strndup(entry, strcspn(entry, "="));
        if (!w->lora_names[i])
            return -1;
    }
    w->policy.lora_names = w->lora_names;
    return 0;
}

static void lora_names_free(struct worker *w)
{
    for (size_t i = 0; w->lora_names && i < w->cfg->llama.n_lora; i++)
        free((char *)w->lora_names[i]);
    free(w->lora_names);
}

/* What admission checks a job against (job_policy) and what a request may
 * ask of llama-server (llama_caps), with the remembered cancels. 0, or -1
 * when out of memory. */
static int admission_init(struct worker *w)
{
    const struct llmq_config *cfg = w->cfg;
    if (own_topics_init(w) != 0)
        return -1;
    w->policy = (struct job_policy){
        .max_prompt_bytes = cfg->limits.max_prompt_bytes,
        .reply_topics = (const char *const *)cfg->kafka.reply_allowlist,
        .n_reply_topics = cfg->kafka.n_reply_allowlist,
        .default_reply_topic = cfg->kafka.reply_topic,
        .model = cfg->llama.model_name,
        .own_topics = w->own_topics,
        .n_own_topics = w->n_own_topics,
        .n_lora_names = cfg->llama.n_lora,
    };
    if (lora_names_init(w) != 0 || control_init(w) != 0)
        return -1;
    w->caps = (struct llama_caps){cfg->limits.max_tokens, cfg->limits.default_max_tokens,
                                  w->lora_names, cfg->llama.n_lora, 0};
    return 0;
}

struct worker *worker_new(struct loop *loop, const struct llmq_config *cfg,
                          const struct logger *log, char *err, size_t err_len)
{
    struct worker *w = calloc(1, sizeof(*w));
    if (!w) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    w->loop = loop;
    w->cfg = cfg;
    w->log = log;
    if (admission_init(w) != 0) {
        snprintf(err, err_len, "out of memory");
        goto fail;
    }
    static const struct kafka_events kafka_events = {
        .on_message = on_message,
        .on_assigned = on_assigned,
        .on_revoking = on_revoking,
        .on_stats = kafka_stats,
        .on_commit_failed = on_commit_failed,
        .on_consumer_fatal = membership_consumer_fatal,
        .on_auth_failed = on_auth_failed,
        .on_control = control_on_message,
        .on_lost = on_lost,
    };
    static const struct supervisor_events sup_events = {backend_ready, backend_down};
    /* A connection per slot, one for the health probe: no more, since
     * llama-server's HTTP threads are about slots + 2 and an idle
     * keep-alive connection holds one. */
    w->http = http_new(loop, cfg->llama.slots + 1L);
    if (!w->http) {
        snprintf(err, err_len, "cannot create the HTTP client");
        goto fail;
    }
    w->kafka = kafka_new(loop, cfg, log, &kafka_events, w, err, err_len);
    if (!w->kafka)
        goto fail;
    w->delivery = delivery_new(loop, w->kafka, cfg, log);
    w->commits = commits_new(loop, w->kafka, log);
    if (!w->delivery || !w->commits) {
        snprintf(err, err_len, "out of memory");
        goto fail;
    }
    w->sup = supervisor_new(loop, w->http, cfg, log, &sup_events, w);
    if (!w->sup) {
        snprintf(err, err_len, "cannot create the llama-server supervisor");
        goto fail;
    }
    struct telemetry_source source = {telemetry_status_fill, admission_changed, w};
    w->telemetry = telemetry_new(loop, cfg, log, w->kafka, &source, err, err_len);
    if (!w->telemetry)
        goto fail;
    return w;
fail:
    worker_free(w);
    return NULL;
}

int worker_exit_code(const struct worker *w)
{
    return w->exit_code;
}

int worker_start(struct worker *w)
{
    return supervisor_start(w->sup);
}

void worker_free(struct worker *w)
{
    if (!w)
        return;
    w->stopped = true;
    if (w->delivery)
        delivery_stop(w->delivery);
    /* Close Kafka while the tasks live: revocation and the last delivery
     * reports still refer to them. */
    if (w->kafka)
        kafka_close(w->kafka, 5000);
    while (w->tasks) {
        /* task_free unlinks the head, so no freed task is seen again. */
        task_free(w->tasks); // NOLINT(clang-analyzer-unix.Malloc)
    }
    delivery_free(w->delivery);
    commits_free(w->commits);
    if (w->sup) {
        supervisor_stop(w->sup, 5000);
        supervisor_free(w->sup);
    }
    loop_timer_cancel(w->loop, w->hold_timer);
    loop_timer_cancel(w->loop, w->held_timer);
    loop_timer_cancel(w->loop, w->drain_timer);
    membership_free(w);
    telemetry_free(w->telemetry);
    http_free(w->http);
    free(w->own_topics);
    control_free(w);
    lora_names_free(w);
    free(w);
}
