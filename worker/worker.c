/* worker.c — the job life: consume, validate, run, stream, reply, commit.
 *
 * Everything here runs on the loop thread. The flow of one task:
 *   message -> decode + admit -> (rejected: error reply + dead-letter copy)
 *           -> queued -> running (llama run streams chunks) -> finishing
 *           -> terminal reply acknowledged -> offset done -> commit.
 * A run lost with llama-server goes back to the head of the queue under a
 * new run id, up to limits.retries times. */
#include "worker.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "commits.h"
#include "delivery.h"
#include "http.h"
#include "job.h"
#include "kafka.h"
#include "llama.h"
#include "loop.h"
#include "reply.h"
#include "supervisor.h"
#include "telemetry.h"

/* How long a lost run waits before its rerun, so that the supervisor sees
 * llama-server's death before the rerun is sent to a dying process. */
#define RETRY_HOLD_MS 500
/* Waiting for in-flight replies when partitions are revoked. */
#define REVOKE_FLUSH_MS 2000
/* The longest header value sent; a longer error message is cut. */
#define HEADER_VALUE_MAX 255

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
    int64_t kafka_ts_ms;              /* the job message's timestamp (wall) */
    int64_t received_us;              /* monotonic, when it was consumed */
    int64_t deadline_wall_ms;         /* the job's deadline, or consumed + job_timeout */
    int64_t start_us, first_token_us; /* monotonic: timings keep sub-ms precision */
    struct llama_run *llama;
    uint64_t seq;
    char *text; /* the run's full text */
    size_t text_len, text_cap;
    size_t published_len; /* bytes of text already sent in chunks */
    struct loop_timer *coalesce_timer;
    struct loop_timer *deadline_timer;
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
    struct llama_caps caps;

    struct task *tasks; /* every live task */
    struct task *queue_head, *queue_tail;
    unsigned n_tasks; /* queued + running + finishing */
    unsigned n_running;
    unsigned n_unfinished; /* queued + running: what capacity counts */

    struct telemetry *telemetry;

    struct loop_timer *topic_check_timer;
    char topics_missing[256]; /* why the worker does not join yet, "" when it may */

    bool backend_ready;
    bool backend_was_ready; /* for the heartbeat: "starting" vs "restarting" */
    bool subscribed;
    bool draining;
    bool stopped;
    int64_t hold_until_ms; /* no run starts before this (after a lost run) */
    struct loop_timer *hold_timer;
    struct loop_timer *drain_timer;
    struct worker_stats stats;
};

static void schedule(struct worker *w);
static void task_finish_error(struct task *t, enum llmq_code code, const char *message,
                              bool dead_letter);

/* ---- tasks ---- */

static void queue_remove(struct worker *w, struct task *t)
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

static void queue_push(struct worker *w, struct task *t, bool front)
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

/* Forget a task; whatever it was doing stops without a reply. */
static void task_free(struct task *t)
{
    struct worker *w = t->w;
    if (t->state == TASK_QUEUED)
        queue_remove(w, t);
    if (t->llama) {
        llama_run_cancel(w->http, t->llama);
        t->llama = NULL;
    }
    if (t->state == TASK_RUNNING)
        w->n_running--;
    if (t->state != TASK_FINISHING)
        w->n_unfinished--;
    if (t->coalesce_timer)
        loop_timer_cancel(w->loop, t->coalesce_timer);
    if (t->deadline_timer)
        loop_timer_cancel(w->loop, t->deadline_timer);
    if (t->prev)
        t->prev->next = t->next;
    else
        w->tasks = t->next;
    if (t->next)
        t->next->prev = t->prev;
    w->n_tasks--;
    job_free(&t->job);
    free(t->text);
    free(t->raw);
    free(t->raw_key);
    free(t->source_topic);
    free(t);
}

static void drain_check(struct worker *w);

/* The broker has every terminal message of the task: its offset is done. */
static void task_done(struct task *t)
{
    struct worker *w = t->w;
    commits_done(w->commits, &t->ticket);
    task_free(t);
    drain_check(w);
}

/* Move a task to finishing: it holds no slot and no timer any more. Its
 * terminal messages follow (task_send), then task_sent(). */
static void task_finishing(struct task *t)
{
    struct worker *w = t->w;
    if (t->state == TASK_QUEUED)
        queue_remove(w, t);
    if (t->state == TASK_RUNNING)
        w->n_running--;
    if (t->state != TASK_FINISHING)
        w->n_unfinished--;
    t->state = TASK_FINISHING;
    if (t->coalesce_timer) {
        loop_timer_cancel(w->loop, t->coalesce_timer);
        t->coalesce_timer = NULL;
    }
    if (t->deadline_timer) {
        loop_timer_cancel(w->loop, t->deadline_timer);
        t->deadline_timer = NULL;
    }
    t->deliveries_pending = 0;
}

/* A terminal message is acknowledged, or given up for good. */
static void terminal_settled(void *ctx, bool acknowledged)
{
    struct task *t = ctx;
    (void)acknowledged;
    if (--t->deliveries_pending == 0)
        task_done(t);
}

/* Send one terminal message; 0, or -1 when it could not be sent at all. */
static int task_send(struct task *t, const struct kafka_message *msg, const char *reply_type)
{
    struct delivery_job job = {t->job.id, t->attempts > 0 ? t->run : NULL, reply_type};
    if (delivery_send(t->w->delivery, msg, &job, terminal_settled, t) != 0)
        return -1;
    t->deliveries_pending++;
    return 0;
}

/* Every terminal message is sent: the task is done once they settle, or now
 * when there were none. */
static void task_sent(struct task *t)
{
    if (t->deliveries_pending == 0) {
        task_done(t);
        return;
    }
    schedule(t->w);
}

/* The topic a task's replies go to, or NULL when none is permitted. */
static const char *task_reply_topic(const struct task *t)
{
    const struct worker *w = t->w;
    const char *topic = job_reply_topic(&t->job, &w->policy);
    return job_reply_topic_allowed(&w->policy, topic) ? topic : NULL;
}

/* A reply of `type` to the job (keyed by its id), with its two headers
 * written to `headers`. */
static struct kafka_message reply_message(const struct task *t, const char *topic, const char *type,
                                          const msgpack_sbuffer *payload,
                                          struct kafka_header headers[2])
{
    headers[0] = (struct kafka_header){"llmq-type", type, strlen(type)};
    headers[1] = (struct kafka_header){"llmq-id", t->job.id, strlen(t->job.id)};
    return (struct kafka_message){
        .topic = topic,
        .key = t->job.id,
        .key_len = strlen(t->job.id),
        .payload = payload->data,
        .len = payload->size,
        .headers = headers,
        .n_headers = 2,
    };
}

/* Send the terminal reply, unless the job has no id or no permitted topic. */
static void send_reply(struct task *t, const char *type, const msgpack_sbuffer *payload)
{
    const char *topic = task_reply_topic(t);
    if (!topic || !t->job.id)
        return;
    struct kafka_header headers[2];
    struct kafka_message msg = reply_message(t, topic, type, payload, headers);
    task_send(t, &msg, type);
}

/* Send the job message as it came to the dead-letter topic, with why. */
static void send_dead_letter(struct task *t, enum llmq_code code, const char *message)
{
    struct worker *w = t->w;
    char partition[16], offset[32];
    snprintf(partition, sizeof(partition), "%" PRId32, t->source_partition);
    snprintf(offset, sizeof(offset), "%" PRId64, t->offset);
    const char *code_name = llmq_code_name(code);
    struct kafka_header headers[5] = {
        {"llmq-error-code", code_name, strlen(code_name)},
        /* A long error message is cut in its header only. */
        {"llmq-error-message", message, strnlen(message, HEADER_VALUE_MAX)},
        {"llmq-source-topic", t->source_topic, strlen(t->source_topic)},
        {"llmq-source-partition", partition, strlen(partition)},
        {"llmq-source-offset", offset, strlen(offset)},
    };
    struct kafka_message msg = {
        .topic = w->cfg->kafka.dead_letter_topic,
        .key = t->raw_key, /* the job message's own key */
        .key_len = t->raw_key_len,
        .payload = t->raw,
        .len = t->raw_len,
        .headers = headers,
        .n_headers = 5,
    };
    if (task_send(t, &msg, NULL) == 0)
        w->stats.dead_lettered++;
}

static void task_finish_error(struct task *t, enum llmq_code code, const char *message,
                              bool dead_letter)
{
    struct worker *w = t->w;
    w->stats.jobs_error[code]++;
    log_info(w->log, "worker", "job %s: %s: %s", t->job.id ? t->job.id : "(no id)",
             llmq_code_name(code), message);
    task_finishing(t);
    struct reply_error e = {
        .id = t->job.id,
        .run = t->attempts > 0 ? t->run : NULL,
        .code = code,
        .message = message,
        .worker = w->cfg->worker_id,
        .meta = t->job.meta,
        .meta_len = t->job.meta_len,
    };
    msgpack_sbuffer payload;
    msgpack_sbuffer_init(&payload);
    if (reply_encode_error(&payload, &e) == 0)
        send_reply(t, "error", &payload);
    msgpack_sbuffer_destroy(&payload);
    if (dead_letter && w->cfg->kafka.dead_letter_topic[0])
        send_dead_letter(t, code, message);
    task_sent(t);
}

/* Milliseconds from `from` to `to` (microsecond clock readings); 0 when
 * either is unknown. */
static double ms_between_us(int64_t from, int64_t to)
{
    return from > 0 && to >= from ? (double)(to - from) / 1000.0 : 0.0;
}

static void publish_chunk(struct task *t)
{
    struct worker *w = t->w;
    size_t len = t->text_len - t->published_len;
    if (len == 0 || !t->job.stream)
        return;
    const char *topic = task_reply_topic(t);
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    if (reply_encode_chunk(&buf, t->job.id, t->run, t->seq, t->text + t->published_len, len) == 0) {
        struct kafka_header headers[2];
        struct kafka_message msg = reply_message(t, topic, "chunk", &buf, headers);
        int err = kafka_produce(w->kafka, &msg, NULL, NULL);
        if (err)
            log_warn(w->log, "worker", "job %s: chunk %" PRIu64 " not produced: %s", t->job.id,
                     t->seq, kafka_error_str(err));
        else
            w->stats.chunks_published++;
    }
    msgpack_sbuffer_destroy(&buf);
    t->seq++;
    t->published_len = t->text_len;
}

static void coalesce_due(struct loop *loop, void *ctx)
{
    struct task *t = ctx;
    (void)loop;
    t->coalesce_timer = NULL;
    publish_chunk(t);
}

static void run_text(void *ctx, const char *text, size_t len)
{
    struct task *t = ctx;
    struct worker *w = t->w;
    if (t->first_token_us == 0) {
        t->first_token_us = loop_now_us();
        telemetry_observe(w->telemetry, METRICS_TIME_TO_FIRST_TOKEN,
                          (double)(t->first_token_us - t->start_us) / 1e6);
    }
    if (t->text_len + len + 1 > t->text_cap) {
        size_t cap = t->text_cap ? t->text_cap : 256;
        while (cap < t->text_len + len + 1)
            cap *= 2;
        char *grown = realloc(t->text, cap);
        if (!grown)
            return; /* the done reply carries what fit; the chunks stay whole */
        t->text = grown;
        t->text_cap = cap;
    }
    memcpy(t->text + t->text_len, text, len);
    t->text_len += len;
    t->text[t->text_len] = '\0';
    w->stats.tokens_generated++;
    /* The first piece goes out at once (time to first chunk); later ones are
     * merged for up to coalesce_ms, so that one message carries several. */
    if (w->cfg->chunking.coalesce_ms <= 0 || t->seq == 0)
        publish_chunk(t);
    else if (!t->coalesce_timer && t->job.stream)
        t->coalesce_timer =
            loop_timer_after(w->loop, w->cfg->chunking.coalesce_ms, coalesce_due, t);
}

/* A done reply's timings, the run having ended at `end_us`. */
static struct reply_timings run_timings(const struct task *t, const struct llama_outcome *out,
                                        int64_t end_us)
{
    double gen_ms = ms_between_us(t->first_token_us, end_us);
    /* The wall-clock time the request started, against the job message's
     * (producer's) timestamp. */
    double started_wall_ms = (double)loop_wall_ms() - ms_between_us(t->start_us, end_us);
    return (struct reply_timings){
        .queue_ms = t->kafka_ts_ms > 0 && started_wall_ms > (double)t->kafka_ts_ms
                        ? started_wall_ms - (double)t->kafka_ts_ms
                        : 0.0,
        .ttft_ms = ms_between_us(t->start_us, t->first_token_us),
        .gen_ms = gen_ms,
        .tokens_per_s = gen_ms > 0 && out->completion_tokens > 0
                            ? (double)out->completion_tokens * 1000.0 / gen_ms
                            : 0.0,
    };
}

/* The run ended well: the last chunk, then the done reply. */
static void run_succeeded(struct task *t, const struct llama_outcome *out)
{
    struct worker *w = t->w;
    publish_chunk(t);
    int64_t end_us = loop_now_us();
    struct reply_done d = {
        .id = t->job.id,
        .run = t->run,
        .text = t->text ? t->text : "",
        .text_len = t->text_len,
        .finish = out->finish,
        .usage = {out->prompt_tokens, out->completion_tokens},
        .timings = run_timings(t, out, end_us),
        .worker = w->cfg->worker_id,
        .meta = t->job.meta,
        .meta_len = t->job.meta_len,
    };
    w->stats.jobs_ok++;
    telemetry_observe(w->telemetry, METRICS_JOB_DURATION, (double)(end_us - t->received_us) / 1e6);
    task_finishing(t);
    msgpack_sbuffer payload;
    msgpack_sbuffer_init(&payload);
    if (reply_encode_done(&payload, &d) == 0)
        send_reply(t, "done", &payload);
    msgpack_sbuffer_destroy(&payload);
    task_sent(t);
}

static void run_done(void *ctx, const struct llama_outcome *out)
{
    struct task *t = ctx;
    struct worker *w = t->w;
    t->llama = NULL;
    if (out->code == LLMQ_OK) {
        run_succeeded(t, out);
    } else if (out->backend_lost && t->attempts <= (unsigned)w->cfg->limits.retries) {
        w->n_running--;
        w->stats.runs_retried++;
        log_warn(w->log, "worker", "job %s: run %s lost (%s); running again", t->job.id, t->run,
                 out->message);
        queue_push(w, t, true);
        w->hold_until_ms = loop_now_ms() + RETRY_HOLD_MS;
        schedule(w);
    } else if (out->backend_lost) {
        char msg[300];
        snprintf(msg, sizeof(msg), "llama-server failed %u time(s): %s", t->attempts, out->message);
        task_finish_error(t, LLMQ_BACKEND_FAILED, msg, false);
    } else {
        task_finish_error(t, out->code, out->message, llmq_code_dead_letters(out->code));
    }
}

static void deadline_due(struct loop *loop, void *ctx)
{
    struct task *t = ctx;
    (void)loop;
    t->deadline_timer = NULL;
    if (t->llama) {
        llama_run_cancel(t->w->http, t->llama);
        t->llama = NULL;
    }
    task_finish_error(t, LLMQ_EXPIRED,
                      t->state == TASK_RUNNING ? "deadline passed while generating"
                                               : "deadline passed while queued",
                      false);
}

static void new_run_id(char out[17])
{
    uint8_t bytes[8];
    if (getrandom(bytes, sizeof(bytes), 0) != (ssize_t)sizeof(bytes)) {
        /* No entropy: fall back on the clock, still unique per attempt. */
        uint64_t now = (uint64_t)loop_wall_ms() ^ ((uint64_t)loop_now_ms() << 20);
        memcpy(bytes, &now, sizeof(bytes));
    }
    for (size_t i = 0; i < sizeof(bytes); i++)
        snprintf(out + 2 * i, 3, "%02x", bytes[i]);
}

static void task_start(struct task *t)
{
    struct worker *w = t->w;
    static const struct llama_run_events events = {run_text, run_done};
    t->state = TASK_RUNNING;
    w->n_running++;
    t->attempts++;
    new_run_id(t->run);
    t->start_us = loop_now_us();
    if (t->attempts == 1)
        telemetry_observe(w->telemetry, METRICS_QUEUE_WAIT,
                          (double)(t->start_us - t->received_us) / 1e6);
    t->first_token_us = 0;
    t->seq = 0;
    t->text_len = 0;
    t->published_len = 0;
    w->stats.runs_started++;
    struct llama_target target = {supervisor_base_url(w->sup), supervisor_api_key(w->sup)};
    t->llama = llama_run_start(w->http, &target, &t->job, &w->caps, &events, t);
    if (!t->llama)
        task_finish_error(t, LLMQ_INTERNAL, "cannot start the request to llama-server", false);
}

static void hold_over(struct loop *loop, void *ctx)
{
    struct worker *w = ctx;
    (void)loop;
    w->hold_timer = NULL;
    schedule(w);
}

/* Start what can start, then pause or resume consumption to match. */
static void schedule(struct worker *w)
{
    int64_t now = loop_now_ms();
    if (w->backend_ready && now < w->hold_until_ms) {
        if (!w->hold_timer)
            w->hold_timer = loop_timer_after(w->loop, w->hold_until_ms - now, hold_over, w);
    } else {
        while (w->backend_ready && w->queue_head && w->n_running < (unsigned)w->cfg->llama.slots) {
            struct task *t = w->queue_head;
            w->queue_head = t->queue_next;
            if (!w->queue_head)
                w->queue_tail = NULL;
            t->queue_next = NULL;
            task_start(t);
        }
    }
    if (!w->subscribed || w->stopped)
        return;
    bool full = w->n_unfinished >= (unsigned)w->cfg->llama.slots;
    if (w->draining || !w->backend_ready || full || telemetry_admission_paused(w->telemetry))
        kafka_pause(w->kafka);
    else
        kafka_resume(w->kafka);
}

/* ---- Kafka events ---- */

/* Free a task that was never linked (task_new's copies only). */
static void task_unmade(struct task *t)
{
    free(t->source_topic);
    free(t->raw);
    free(t->raw_key);
    free(t);
}

/* A task for a job message, not linked anywhere yet: NULL when out of
 * memory. It keeps the message as it came, for a dead-letter copy. */
static struct task *task_new(struct worker *w, const struct kafka_message *msg)
{
    struct task *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->w = w;
    t->received_us = loop_now_us();
    t->source_topic = strdup(msg->topic);
    t->source_partition = msg->partition;
    t->offset = msg->offset;
    t->kafka_ts_ms = msg->timestamp_ms;
    t->raw = malloc(msg->len ? msg->len : 1);
    t->raw_len = msg->len;
    if (t->raw && msg->len)
        memcpy(t->raw, msg->payload, msg->len);
    if (msg->key_len) {
        t->raw_key = malloc(msg->key_len);
        t->raw_key_len = msg->key_len;
        if (t->raw_key)
            memcpy(t->raw_key, msg->key, msg->key_len);
    }
    if (!t->source_topic || !t->raw || (msg->key_len && !t->raw_key)) {
        task_unmade(t);
        return NULL;
    }
    return t;
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
    t->state = TASK_QUEUED;
}

static void on_message(void *ctx, const struct kafka_message *msg)
{
    struct worker *w = ctx;
    struct task *t = task_new(w, msg);
    if (!t || commits_track(w->commits, msg->topic, msg->partition, msg->offset, &t->ticket) != 0) {
        /* Not tracked means not committed: another run will see it again. */
        log_error(w->log, "worker", "%s[%" PRId32 "]@%" PRId64 ": cannot track this message",
                  msg->topic, msg->partition, msg->offset);
        if (t)
            task_unmade(t);
        return;
    }
    task_link(w, t);
    struct job_verdict why = {0};
    enum llmq_code code = job_decode(msg->payload, msg->len, &t->job, &why);
    if (code == LLMQ_OK)
        code = job_admit(&t->job, &w->policy, loop_wall_ms(), &why);
    if (code != LLMQ_OK) {
        task_finish_error(t, code, why.message, llmq_code_dead_letters(code));
        return;
    }
    int64_t now_wall = loop_wall_ms();
    t->deadline_wall_ms = t->job.deadline_ms.set
                              ? t->job.deadline_ms.value
                              : now_wall + (int64_t)w->cfg->limits.job_timeout_s * 1000;
    t->deadline_timer = loop_timer_after(w->loop, t->deadline_wall_ms - now_wall, deadline_due, t);
    queue_push(w, t, false);
    schedule(w);
}

static void on_assigned(void *ctx, const struct kafka_partition *parts, size_t n)
{
    struct worker *w = ctx;
    commits_assigned(w->commits, parts, n);
    schedule(w);
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
    schedule(w);
}

/* ---- llama-server ---- */

/* The topics the worker reads and writes must exist before it takes a job:
 * a reply with nowhere to go would hold its partition's commits forever.
 * Topics named by a pattern (^...) and optional ones left empty are skipped. */
static bool topics_ready(struct worker *w)
{
    const struct llmq_config *cfg = w->cfg;
    const char *names[4 + 16];
    size_t n = 0;
    for (size_t i = 0; i < cfg->kafka.n_jobs_topics && n < 16; i++)
        if (cfg->kafka.jobs_topics[i][0] != '^')
            names[n++] = cfg->kafka.jobs_topics[i];
    const char *own[] = {cfg->kafka.reply_topic, cfg->kafka.dead_letter_topic,
                         cfg->metrics.heartbeat_s > 0 ? cfg->kafka.metrics_topic : NULL};
    for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
        if (own[i] && own[i][0])
            names[n++] = own[i];
    char missing[200];
    int count = kafka_topics_missing(w->kafka, names, n, 5000, missing, sizeof(missing));
    if (count == 0) {
        if (w->topics_missing[0])
            log_info(w->log, "worker", "every topic exists now");
        w->topics_missing[0] = '\0';
        return true;
    }
    char why[256];
    if (count < 0)
        snprintf(why, sizeof(why), "cannot check the topics (%.200s)", missing);
    else
        snprintf(why, sizeof(why), "missing topic(s): %.200s", missing);
    if (strcmp(why, w->topics_missing) != 0)
        log_error(w->log, "worker", "%s; not taking jobs until they exist (checking every 5 s)",
                  why);
    snprintf(w->topics_missing, sizeof(w->topics_missing), "%s", why);
    return false;
}

static void backend_ready(void *ctx);

static void topic_check_due(struct loop *loop, void *ctx)
{
    struct worker *w = ctx;
    (void)loop;
    w->topic_check_timer = NULL;
    if (w->backend_ready && !w->subscribed)
        backend_ready(w);
}

static void backend_ready(void *ctx)
{
    struct worker *w = ctx;
    if (!w->backend_ready)
        log_info(w->log, "worker", "llama-server ready at %s", supervisor_base_url(w->sup));
    w->backend_ready = true;
    w->backend_was_ready = true;
    if (!w->subscribed && !w->draining) {
        if (!topics_ready(w)) {
            if (!w->topic_check_timer)
                w->topic_check_timer = loop_timer_after(w->loop, 5000, topic_check_due, w);
            return;
        }
        char err[256];
        if (kafka_subscribe(w->kafka, err, sizeof(err)) != 0) {
            log_error(w->log, "worker", "%s", err);
            return;
        }
        w->subscribed = true;
    }
    schedule(w);
}

static void backend_down(void *ctx, const char *reason)
{
    struct worker *w = ctx;
    w->backend_ready = false;
    log_warn(w->log, "worker", "llama-server down: %s", reason);
    /* Runs in flight are lost with it: rerun them once it is back. */
    struct llama_outcome lost = {.code = LLMQ_BACKEND_FAILED, .backend_lost = true};
    snprintf(lost.message, sizeof(lost.message), "%s", reason);
    struct task *next;
    for (struct task *t = w->tasks; t; t = next) {
        next = t->next;
        if (t->state == TASK_RUNNING && t->llama) {
            llama_run_cancel(w->http, t->llama);
            run_done(t, &lost);
        }
    }
    schedule(w);
}

/* ---- drain ---- */

static void drain_finish(struct worker *w)
{
    if (w->stopped)
        return;
    w->stopped = true;
    if (w->drain_timer) {
        loop_timer_cancel(w->loop, w->drain_timer);
        w->drain_timer = NULL;
    }
    delivery_stop(w->delivery);
    commits_flush(w->commits);
    log_info(w->log, "worker", "drained; stopping");
    loop_stop(w->loop);
}

static void drain_check(struct worker *w)
{
    if (w->draining && w->n_tasks == 0)
        drain_finish(w);
}

static void drain_timeout(struct loop *loop, void *ctx)
{
    struct worker *w = ctx;
    (void)loop;
    w->drain_timer = NULL;
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
    schedule(w);
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
    out->stats = &w->stats;
    out->jobs_in_flight = w->n_unfinished;
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
    if (w->draining)
        out->not_ready = "draining";
    else if (!w->backend_ready)
        out->not_ready = why && why[0] ? why : "llama-server starting";
    else if (w->topics_missing[0])
        out->not_ready = w->topics_missing;
    else if (!w->subscribed || !kafka_joined(w->kafka))
        out->not_ready = "joining the consumer group";
}

static void admission_changed(void *ctx)
{
    schedule(ctx);
}

static void kafka_stats(void *ctx, const char *json, size_t len)
{
    struct worker *w = ctx;
    telemetry_kafka_stats(w->telemetry, json, len);
}

/* ---- life ---- */

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
    w->policy = (struct job_policy){
        .max_prompt_bytes = cfg->limits.max_prompt_bytes,
        .reply_topics = (const char *const *)cfg->kafka.reply_allowlist,
        .n_reply_topics = cfg->kafka.n_reply_allowlist,
        .default_reply_topic = cfg->kafka.reply_topic,
        .model = cfg->llama.model_name,
    };
    w->caps = (struct llama_caps){cfg->limits.max_tokens, cfg->limits.default_max_tokens};
    static const struct kafka_events kafka_events = {on_message, on_assigned, on_revoking,
                                                     kafka_stats};
    static const struct supervisor_events sup_events = {backend_ready, backend_down};
    w->http = http_new(loop);
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
    if (w->hold_timer)
        loop_timer_cancel(w->loop, w->hold_timer);
    if (w->drain_timer)
        loop_timer_cancel(w->loop, w->drain_timer);
    if (w->topic_check_timer)
        loop_timer_cancel(w->loop, w->topic_check_timer);
    telemetry_free(w->telemetry);
    http_free(w->http);
    free(w);
}
