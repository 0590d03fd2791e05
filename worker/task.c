/* task.c — one job's life in the worker: admitted, run through
 * llama-server (its text streamed in chunks), ended with a terminal reply
 * (and, for bad input, a dead-letter copy) sent through delivery.h, and done
 * once the broker has them all (then its offset may be committed).
 *
 * A run lost with llama-server goes back to the head of the queue under a
 * new run id, up to limits.retries times. Everything runs on the loop
 * thread. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cancel.h"
#include "clock.h"
#include "control.h"
#include "mpjson.h"
#include "random_id.h"
#include "reply.h"
#include "supervisor.h"
#include "telemetry.h"
#include "worker_internal.h"

/* How long a lost run waits before its rerun, so that the supervisor sees
 * llama-server's death before the rerun is sent to a dying process. */
#define RETRY_HOLD_MS 500
/* The longest header value sent; a longer error message is cut. */
#define HEADER_VALUE_MAX 255

static void task_finish_error(struct task *t, enum llmq_code code, const char *message,
                              bool dead_letter);

/* Free a task that was never linked (task_new's copies only). */
void task_unmade(struct task *t)
{
    free(t->source_topic);
    free(t->raw);
    free(t->raw_key);
    free(t);
}

/* A task for a job message, not linked anywhere yet: NULL when out of
 * memory. It keeps the message as it came, for a dead-letter copy. */
struct task *task_new(struct worker *w, const struct kafka_message *msg)
{
    struct task *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->w = w;
    msgpack_sbuffer_init(&t->logprobs);
    t->received_us = clock_mono_us();
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

/* Forget a task; whatever it was doing stops without a reply. */
void task_free(struct task *t)
{
    struct worker *w = t->w;
    if (t->state == TASK_QUEUED)
        worker_queue_remove(w, t);
    if (t->llama) {
        llama_run_cancel(w->http, t->llama);
        t->llama = NULL;
    }
    if (t->state == TASK_RUNNING)
        w->n_running--;
    if (t->state != TASK_FINISHING)
        w->n_unfinished--;
    loop_timer_cancel(w->loop, t->coalesce_timer);
    loop_timer_cancel(w->loop, t->deadline_timer);
    if (t->prev)
        t->prev->next = t->next;
    else
        w->tasks = t->next;
    if (t->next)
        t->next->prev = t->prev;
    w->n_tasks--;
    w->held_bytes -= t->raw_len + t->raw_key_len;
    job_free(&t->job);
    buf_free(&t->text);
    msgpack_sbuffer_destroy(&t->logprobs);
    free(t->raw);
    free(t->raw_key);
    free(t->source_topic);
    free(t);
}

/* The broker has every terminal message of the task: its offset is done. */
static void task_done(struct task *t)
{
    struct worker *w = t->w;
    commits_done(w->commits, &t->ticket);
    task_free(t);
    worker_drain_check(w);
    worker_schedule(w); /* a finishing task held room too */
}

/* Move a task to finishing: it holds no slot and no timer any more. Its
 * terminal messages follow (task_send), then task_sent(). */
static void task_finishing(struct task *t)
{
    struct worker *w = t->w;
    if (t->state == TASK_QUEUED)
        worker_queue_remove(w, t);
    if (t->state == TASK_RUNNING)
        w->n_running--;
    if (t->state != TASK_FINISHING)
        w->n_unfinished--;
    t->state = TASK_FINISHING;
    loop_timer_cancel(w->loop, t->coalesce_timer);
    loop_timer_cancel(w->loop, t->deadline_timer);
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
 * when there were none. Delivery holds its own copies, so the job message
 * and the prompt are freed now; held_bytes keeps counting them until the
 * task is done, as the copies delivery holds meanwhile. */
static void task_sent(struct task *t)
{
    free(t->raw);
    free(t->raw_key);
    t->raw = NULL;
    t->raw_key = NULL;
    job_drop_input(&t->job);
    if (t->deliveries_pending == 0) {
        task_done(t);
        return;
    }
    worker_schedule(t->w);
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

/* Send the terminal reply, unless the job has no id or no permitted topic
 * (then it is given up: its dead-letter copy, if any, is all there is). */
static void send_reply(struct task *t, const char *type, const msgpack_sbuffer *payload)
{
    const char *topic = task_reply_topic(t);
    if (!topic || !t->job.id) {
        gave_up(t->w->stats.gave_up, t->w->log, GAVE_UP_REPLY_NO_ADDRESS, t->job.id, topic,
                "no %s reply: %s", type,
                !t->job.id                 ? "its id could not be read"
                : t->job.reply_to_unusable ? "its reply_to is present but unusable"
                                           : "its reply_to is not allowed on this worker");
        return;
    }
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
        {"llmq-error-message", message, utf8_cut_len(message, strlen(message), HEADER_VALUE_MAX)},
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
    /* A run stopped for time or by a cancel says what it had generated. */
    bool partial = t->state == TASK_RUNNING && (code == LLMQ_EXPIRED || code == LLMQ_CANCELLED);
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
        .partial_text = partial ? (t->text.data ? t->text.data : "") : NULL,
        .partial_text_len = partial ? t->text.len : 0,
        .meta = t->job.meta,
        .meta_len = t->job.meta_len,
    };
    msgpack_sbuffer payload;
    msgpack_sbuffer_init(&payload);
    if (reply_encode_error(&payload, &e) == 0)
        send_reply(t, "error", &payload);
    else
        gave_up(w->stats.gave_up, w->log, GAVE_UP_REPLY_NOT_ENCODED, t->job.id, NULL,
                "error reply not encoded (out of memory)");
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
    size_t len = t->text.len - t->published_len;
    size_t n_lp = t->n_logprobs - t->published_lp_count;
    loop_timer_cancel(w->loop, t->coalesce_timer); /* a chunk due early */
    t->coalesce_timer = LOOP_TIMER_NONE;
    t->pieces_held = 0;
    if ((len == 0 && n_lp == 0) || !t->job.stream)
        return;
    const char *topic = task_reply_topic(t);
    struct reply_logprobs lp = {(const uint8_t *)t->logprobs.data + t->published_lp_len,
                                t->logprobs.size - t->published_lp_len, n_lp};
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    if (reply_encode_chunk(&buf, t->job.id, t->run, t->seq, t->text.data + t->published_len, len,
                           t->job.logprobs > 0 ? &lp : NULL) == 0) {
        struct kafka_header headers[2];
        struct kafka_message msg = reply_message(t, topic, "chunk", &buf, headers);
        int err = kafka_produce(w->kafka, &msg, NULL, NULL);
        if (err) /* chunks may be lost (spec.md): the done carries the whole text */
            gave_up(w->stats.gave_up, w->log, GAVE_UP_CHUNK_NOT_PRODUCED, t->job.id, topic,
                    "chunk %" PRIu64 " of run %s not produced (%s)", t->seq, t->run,
                    kafka_error_str(err));
        else
            w->stats.chunks_published++;
    }
    msgpack_sbuffer_destroy(&buf);
    t->seq++;
    t->published_len = t->text.len;
    t->published_lp_len = t->logprobs.size;
    t->published_lp_count = t->n_logprobs;
}

static void coalesce_due(struct loop *loop, void *ctx)
{
    struct task *t = ctx;
    (void)loop;
    publish_chunk(t);
}

static void run_text(void *ctx, const char *text, size_t len)
{
    struct task *t = ctx;
    struct worker *w = t->w;
    if (t->first_token_us == 0) {
        t->first_token_us = clock_mono_us();
        telemetry_observe(w->telemetry, METRICS_TIME_TO_FIRST_TOKEN,
                          (double)(t->first_token_us - t->start_us) / 1e6);
    }
    if (buf_append(&t->text, text, len) != 0) { /* the done reply carries what fit */
        gave_up(w->stats.gave_up, w->log, GAVE_UP_TEXT_OUT_OF_MEMORY, t->job.id, NULL,
                "%zu bytes of text not kept (out of memory)", len);
        return;
    }
    w->stats.tokens_generated++;
    t->pieces++;
    t->pieces_held++;
    /* The first piece goes out at once (time to first chunk); later ones are
     * merged for up to coalesce_ms (the job's chunk_ms), or until
     * coalesce_tokens pieces wait, whichever comes first, so that one message
     * carries several. */
    int64_t coalesce_ms =
        t->job.chunk_ms.set ? t->job.chunk_ms.value : (int64_t)w->cfg->chunking.coalesce_ms;
    int max_pieces = w->cfg->chunking.coalesce_tokens;
    if (coalesce_ms <= 0 || t->seq == 0 ||
        (max_pieces > 0 && t->pieces_held >= (unsigned)max_pieces))
        publish_chunk(t);
    else if (t->job.stream && !loop_timer_pending(w->loop, t->coalesce_timer))
        t->coalesce_timer = loop_timer_after(w->loop, coalesce_ms, coalesce_due, t);
}

/* The log-probabilities of the tokens of the next text piece. */
static void run_logprobs(void *ctx, const uint8_t *entries, size_t len, size_t count)
{
    struct task *t = ctx;
    if (msgpack_sbuffer_write(&t->logprobs, (const char *)entries, len) == 0)
        t->n_logprobs += count;
    else /* the done reply and chunks carry what fit, whole entries */
        gave_up(t->w->stats.gave_up, t->w->log, GAVE_UP_TEXT_OUT_OF_MEMORY, t->job.id, NULL,
                "logprobs of %zu token(s) not kept (out of memory)", count);
}

/* A done reply's timings, the run having ended at `end_us`. */
static struct reply_timings run_timings(const struct task *t, const struct llama_outcome *out,
                                        int64_t end_us)
{
    double gen_ms = ms_between_us(t->first_token_us, end_us);
    /* The wall-clock time the request started, against the job message's
     * (producer's) timestamp. */
    double started_wall_ms = (double)clock_wall_ms() - ms_between_us(t->start_us, end_us);
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

/* A done reply's usage: never negative. A count llama-server did not
 * report (a chat stream that ended before its usage chunk) is derived from
 * what the run streamed: the tokens of its logprobs, else its text pieces
 * (llama-server streams one per token); the prompt's count is then 0. */
static struct reply_usage run_usage(const struct task *t, const struct llama_outcome *out)
{
    struct reply_usage u = {out->prompt_tokens, out->completion_tokens};
    if (u.prompt_tokens < 0)
        u.prompt_tokens = 0;
    if (u.completion_tokens < 0)
        u.completion_tokens = (int64_t)(t->job.logprobs > 0 ? t->n_logprobs : t->pieces);
    if (out->prompt_tokens < 0 || out->completion_tokens < 0)
        log_warn(t->w->log, "worker",
                 "job %s: llama-server reported no usage; completion_tokens %" PRId64
                 " counted from the stream",
                 t->job.id, u.completion_tokens);
    return u;
}

/* The run ended well: the last chunk, then the done reply. */
static void run_succeeded(struct task *t, const struct llama_outcome *out)
{
    struct worker *w = t->w;
    if (clock_wall_ms() >= t->deadline_wall_ms) {
        /* llama-server's t_max_predict_ms ended it just as the time ran out. */
        task_finish_error(t, LLMQ_EXPIRED, "deadline passed while generating", false);
        return;
    }
    publish_chunk(t);
    int64_t end_us = clock_mono_us();
    struct reply_logprobs lp = {(const uint8_t *)t->logprobs.data, t->logprobs.size, t->n_logprobs};
    struct reply_done d = {
        .id = t->job.id,
        .run = t->run,
        .text = t->text.data ? t->text.data : "",
        .text_len = t->text.len,
        .logprobs = t->job.logprobs > 0 ? &lp : NULL,
        .finish = out->finish,
        .usage = run_usage(t, out),
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
    else
        gave_up(w->stats.gave_up, w->log, GAVE_UP_REPLY_NOT_ENCODED, t->job.id, NULL,
                "done reply not encoded (out of memory)");
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
    } else if (out->backend_lost && ++t->crashes <= (unsigned)w->cfg->limits.retries) {
        w->n_running--;
        w->stats.runs_retried++;
        log_warn(w->log, "worker", "job %s: run %s lost (%s); running again, alone", t->job.id,
                 t->run, out->message);
        t->suspect = true;
        worker_queue_push(w, t, true);
        w->hold_until_ms = clock_mono_ms() + RETRY_HOLD_MS;
        worker_schedule(w);
    } else if (out->backend_lost) {
        char msg[300];
        snprintf(msg, sizeof(msg), "llama-server died in %u run(s) of this job%s: %.*s", t->crashes,
                 t->suspect ? ", the last ones alone (a poison job)" : "",
                 (int)utf8_cut_len(out->message, strlen(out->message), 200), out->message);
        task_finish_error(t, LLMQ_BACKEND_FAILED, msg, false);
    } else {
        task_finish_error(t, out->code, out->message, llmq_code_dead_letters(out->code));
    }
}

static void deadline_due(struct loop *loop, void *ctx)
{
    struct task *t = ctx;
    (void)loop;
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
    if (random_hex(out, 8) != 0) {
        /* No entropy: fall back on the clock, still unique per attempt. */
        uint64_t now = (uint64_t)clock_wall_ms() ^ ((uint64_t)clock_mono_ms() << 20);
        hex_encode(out, &now, sizeof(now));
    }
}

void task_start(struct task *t)
{
    struct worker *w = t->w;
    static const struct llama_run_events events = {run_text, run_done, run_logprobs};
    t->state = TASK_RUNNING;
    w->n_running++;
    t->attempts++;
    new_run_id(t->run);
    t->start_us = clock_mono_us();
    if (t->attempts == 1) {
        telemetry_observe(w->telemetry, METRICS_QUEUE_WAIT,
                          (double)(t->start_us - t->received_us) / 1e6);
        if (t->kafka_ts_ms > 0)
            telemetry_observe_lane(w->telemetry, t->source_topic,
                                   (double)(clock_wall_ms() - t->kafka_ts_ms) / 1e3);
    }
    t->first_token_us = 0;
    t->seq = 0;
    t->pieces = 0;
    t->text.len = 0;
    t->published_len = 0;
    msgpack_sbuffer_clear(&t->logprobs);
    t->n_logprobs = t->published_lp_len = t->published_lp_count = 0;
    w->stats.runs_started++;
    struct llama_target target = {supervisor_base_url(w->sup), supervisor_api_key(w->sup)};
    /* The time left reaches llama-server, which stops by itself only at a
     * newline (deadline_due closes the request at the limit in any case). */
    struct llama_caps caps = w->caps;
    int64_t left_ms = t->deadline_wall_ms - clock_wall_ms();
    caps.t_max_predict_ms = left_ms > 0 ? left_ms : 1;
    t->llama = llama_run_start(w->http, &target, &t->job, &caps, &events, t);
    if (!t->llama)
        task_finish_error(t, LLMQ_INTERNAL, "cannot start the request to llama-server", false);
}

void task_admit(struct task *t, const struct kafka_message *msg)
{
    struct worker *w = t->w;
    struct job_verdict why = {0};
    enum llmq_code code = job_decode(msg->payload, msg->len, &t->job, &why);
    if (code == LLMQ_OK)
        code = job_admit(&t->job, &w->policy, clock_wall_ms(), &why);
    if (code != LLMQ_OK) {
        task_finish_error(t, code, why.message, llmq_code_dead_letters(code));
        return;
    }
    if (control_cancelled_on_arrival(t))
        return;
    /* A deadline_ms never gives a job more than the worker's job timeout. */
    int64_t now_wall = clock_wall_ms();
    int64_t timeout_wall = now_wall + (int64_t)w->cfg->limits.job_timeout_s * 1000;
    t->deadline_wall_ms = t->job.deadline_ms.set && t->job.deadline_ms.value < timeout_wall
                              ? t->job.deadline_ms.value
                              : timeout_wall;
    t->deadline_timer = loop_timer_after(w->loop, t->deadline_wall_ms - now_wall, deadline_due, t);
    worker_queue_push(w, t, false);
    worker_schedule(w);
}

void task_cancel(struct task *t, const char *reason)
{
    char message[sizeof("cancelled: ") + CANCEL_REASON_MAX];
    snprintf(message, sizeof(message), "cancelled%s%s", reason && reason[0] ? ": " : "",
             reason ? reason : "");
    if (t->llama) {
        llama_run_cancel(t->w->http, t->llama);
        t->llama = NULL;
    }
    task_finish_error(t, LLMQ_CANCELLED, message, false);
}

void task_run_lost(struct task *t, const char *reason)
{
    struct llama_outcome lost = {.code = LLMQ_BACKEND_FAILED, .backend_lost = true};
    snprintf(lost.message, sizeof(lost.message), "%s", reason);
    llama_run_cancel(t->w->http, t->llama);
    run_done(t, &lost);
}
