/* telemetry.c — metrics endpoint, GPU polling, VRAM floor, heartbeats. */
#include "telemetry.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "gpu.h"
#include "heartbeat.h"
#include "kafka.h"
#include "loop.h"

/* How often the GPU is read (metrics, heartbeat, the VRAM floor). */
#define GPU_POLL_MS 2000

struct telemetry {
    struct loop *loop;
    const struct llmq_config *cfg;
    const struct logger *log;
    struct kafka *kafka;
    struct telemetry_source source;
    struct gpu *gpu;
    struct gpu_reading gpu_last;
    struct metrics *metrics;
    loop_timer_id gpu_timer;
    loop_timer_id heartbeat_timer;
    char host[256];
    char gpu_label[16];
    bool vram_paused;
    uint64_t gave_up[GAVE_UP_COUNT]; /* heartbeats refused by the producer */
};

static void status_of(struct telemetry *t, struct telemetry_status *out)
{
    memset(out, 0, sizeof(*out));
    t->source.status(t->source.ctx, out);
}

static void metrics_sample_fill(void *ctx, struct metrics_sample *out)
{
    struct telemetry *t = ctx;
    struct telemetry_status st;
    status_of(t, &st);
    out->jobs[LLMQ_OK] = st.stats->jobs_ok;
    for (int c = 1; c < LLMQ_CODE_COUNT; c++)
        out->jobs[c] = st.stats->jobs_error[c];
    out->jobs_in_flight = st.jobs_in_flight;
    out->jobs_finishing = st.jobs_finishing;
    out->held_bytes = st.held_bytes;
    out->intake_held = st.intake_held;
    out->tokens_generated = st.stats->tokens_generated;
    out->chunks_published = st.stats->chunks_published;
    out->dead_letters = st.stats->dead_lettered;
    out->runs_retried = st.stats->runs_retried;
    memcpy(out->cancels, st.stats->cancels, sizeof(out->cancels));
    memcpy(out->jobs_cancelled, st.stats->jobs_cancelled, sizeof(out->jobs_cancelled));
    out->cancels_forgotten = st.stats->cancels_forgotten;
    out->cancels_remembered = st.stats->cancels_remembered;
    out->producer_queue_messages = (uint64_t)kafka_outq_len(t->kafka);
    out->commits_failed = kafka_commits_failed(t->kafka);
    out->group_leaves = st.stats->group_leaves;
    out->llama_up = st.llama_up;
    out->llama_restarts = st.llama_restarts;
    out->llama_slots_busy = st.slots_busy;
    out->llama_slots_total = (unsigned)t->cfg->llama.slots;
    out->admission_paused = t->vram_paused;
    out->gpu = t->gpu_last;
    for (int k = 0; k < GAVE_UP_COUNT; k++)
        out->gave_up[k] = st.gave_up[k] + t->gave_up[k];
}

static bool metrics_ready(void *ctx, const char **reason)
{
    struct telemetry *t = ctx;
    struct telemetry_status st;
    status_of(t, &st);
    *reason = st.not_ready ? st.not_ready : st.degraded;
    return st.not_ready == NULL;
}

/* Read the GPU; tell the worker when free VRAM crosses the floor. */
static void gpu_poll(struct loop *loop, void *ctx)
{
    struct telemetry *t = ctx;
    (void)loop;
    gpu_read(t->gpu, &t->gpu_last);
    uint64_t floor = t->cfg->metrics.vram_floor_bytes;
    const struct gpu_reading *r = &t->gpu_last;
    bool low = gpu_vram_below_floor(r, floor);
    t->gpu_timer = loop_timer_after(t->loop, GPU_POLL_MS, gpu_poll, t);
    if (low == t->vram_paused)
        return;
    t->vram_paused = low;
    if (low)
        log_warn(t->log, "telemetry",
                 "free VRAM %" PRIu64 " MiB is under the floor of %" PRIu64
                 " MiB: taking no new jobs",
                 (r->vram_total_bytes - r->vram_used_bytes) >> 20, floor >> 20);
    else
        log_info(t->log, "telemetry", "free VRAM back above the floor: taking jobs again");
    t->source.admission_changed(t->source.ctx);
}

static void heartbeat_due(struct loop *loop, void *ctx)
{
    struct telemetry *t = ctx;
    (void)loop;
    struct telemetry_status st;
    status_of(t, &st);
    uint64_t failed = 0;
    for (int c = 1; c < LLMQ_CODE_COUNT; c++)
        failed += st.stats->jobs_error[c];
    const char *worker = t->cfg->worker_id;
    struct heartbeat hb = {
        .worker = worker,
        .host = t->host,
        .model = t->cfg->llama.model_name ? t->cfg->llama.model_name : "",
        .state = st.state,
        .ts_ms = clock_wall_ms(),
        .gpu = &t->gpu_last,
        .slots_busy = st.slots_busy,
        .slots_total = (unsigned)t->cfg->llama.slots,
        .jobs_done = st.stats->jobs_ok,
        .jobs_failed = failed,
        .tokens = st.stats->tokens_generated,
    };
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    if (heartbeat_encode(&buf, &hb) == 0) {
        struct kafka_header headers[2] = {{"llmq-type", "heartbeat", 9},
                                          {"llmq-id", worker, strlen(worker)}};
        struct kafka_message msg = {
            .topic = t->cfg->kafka.metrics_topic,
            .key = worker,
            .key_len = strlen(worker),
            .payload = buf.data,
            .len = buf.size,
            .headers = headers,
            .n_headers = 2,
        };
        int err = kafka_produce(t->kafka, &msg, NULL, NULL);
        if (err)
            gave_up(t->gave_up, t->log, GAVE_UP_HEARTBEAT, NULL, msg.topic,
                    "heartbeat not produced (%s)", kafka_error_str(err));
    }
    msgpack_sbuffer_destroy(&buf);
    t->heartbeat_timer =
        loop_timer_after(t->loop, (int64_t)t->cfg->metrics.heartbeat_s * 1000, heartbeat_due, t);
}

struct telemetry *telemetry_new(struct loop *loop, const struct llmq_config *cfg,
                                const struct logger *log, struct kafka *kafka,
                                const struct telemetry_source *source, char *err, size_t err_len)
{
    struct telemetry *t = calloc(1, sizeof(*t));
    if (!t) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    t->loop = loop;
    t->cfg = cfg;
    t->log = log;
    t->kafka = kafka;
    t->source = *source;
    if (gethostname(t->host, sizeof(t->host)) != 0)
        snprintf(t->host, sizeof(t->host), "unknown");
    t->host[sizeof(t->host) - 1] = '\0';
    t->gpu = gpu_open(cfg->metrics.gpu_backend, cfg->llama.gpu, log, err, err_len);
    if (!t->gpu)
        goto fail;
    gpu_read(t->gpu, &t->gpu_last);
    if (cfg->llama.gpu >= 0)
        snprintf(t->gpu_label, sizeof(t->gpu_label), "%d", cfg->llama.gpu);
    else
        snprintf(t->gpu_label, sizeof(t->gpu_label), "none");
    struct metrics_options opts = {
        .listen = cfg->metrics.listen,
        .worker = cfg->worker_id,
        .model = cfg->llama.model_name ? cfg->llama.model_name : "",
        .gpu = t->gpu_label,
        .source = {metrics_sample_fill, metrics_ready, t},
        .log = log,
    };
    t->metrics = metrics_new(loop, &opts, err, err_len);
    if (!t->metrics)
        goto fail;
    if (cfg->metrics.listen && cfg->metrics.listen[0])
        log_info(log, "telemetry", "metrics on http://%s/metrics (port %d)", cfg->metrics.listen,
                 metrics_port(t->metrics));
    t->gpu_timer = loop_timer_after(loop, GPU_POLL_MS, gpu_poll, t);
    if (cfg->metrics.heartbeat_s > 0 && cfg->kafka.metrics_topic && cfg->kafka.metrics_topic[0])
        t->heartbeat_timer = loop_timer_after(loop, 0, heartbeat_due, t);
    return t;
fail:
    telemetry_free(t);
    return NULL;
}

void telemetry_free(struct telemetry *t)
{
    if (!t)
        return;
    loop_timer_cancel(t->loop, t->gpu_timer);
    loop_timer_cancel(t->loop, t->heartbeat_timer);
    metrics_free(t->metrics);
    gpu_close(t->gpu);
    free(t);
}

bool telemetry_admission_paused(const struct telemetry *t)
{
    return t->vram_paused;
}

void telemetry_observe(struct telemetry *t, enum metrics_histogram h, double seconds)
{
    metrics_observe(t->metrics, h, seconds);
}

void telemetry_observe_lane(struct telemetry *t, const char *lane, double seconds)
{
    metrics_observe_lane(t->metrics, lane, seconds);
}

void telemetry_kafka_stats(struct telemetry *t, const char *json, size_t len)
{
    char err[128];
    struct kafka_partition_lag *lags;
    size_t n;
    if (kafka_stats_consumer_lag(json, len, &lags, &n, err, sizeof(err)) != 0)
        log_debug(t->log, "telemetry", "librdkafka statistics not understood: %s", err);
    else
        metrics_set_consumer_lag(t->metrics, lags, n);
}
