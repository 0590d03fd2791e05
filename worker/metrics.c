/* metrics.c — the worker's Prometheus page (text format 0.0.4): the series
 * the worker samples, the latency histograms and the Kafka consumer lag
 * this module keeps. The HTTP endpoint is metrics_http.c. */
#include "metrics.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "metrics_http.h"

/* Upper bounds (le) in seconds shared by the latency histograms: from a
 * queue hop on an idle worker to the longest job a worker allows. */
static const double latency_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025,   0.05, 0.1,
                                        0.25,  0.5,    1,     2.5,  5,       10,   30,
                                        60,    120,    300,   600,  INFINITY};
#define LATENCY_BUCKETS (sizeof(latency_bounds) / sizeof(latency_bounds[0]))

struct histogram {
    uint64_t counts[LATENCY_BUCKETS]; /* per bucket, not cumulative */
    double sum;
    uint64_t count;
};

static const struct {
    const char *name;
    const char *help;
} histogram_families[METRICS_HISTOGRAM_COUNT] = {
    [METRICS_QUEUE_WAIT] = {"llmq_queue_wait_seconds",
                            "Time a job waited in the worker before its generation started."},
    [METRICS_TIME_TO_FIRST_TOKEN] = {"llmq_time_to_first_token_seconds",
                                     "Time from the start of a generation to its first token."},
    [METRICS_JOB_DURATION] = {"llmq_job_duration_seconds",
                              "Time from a job's arrival to its terminal reply."},
};

#define METRICS_LANES_MAX 64

struct metrics {
    char *base_labels; /* worker="...",model="...",gpu="..." */
    struct metrics_source source;
    struct histogram histograms[METRICS_HISTOGRAM_COUNT];
    struct {
        char *name;
        struct histogram h;
    } lanes[METRICS_LANES_MAX];
    size_t n_lanes;
    struct kafka_partition_lag *lags;
    size_t n_lags;
    struct metrics_http *http; /* NULL without a listen address */
};

/* ---- text building ---- */

/* Page text goes to a struct buf without a cap: failed when memory ran out. */

static void text_append(struct buf *t, const char *s, size_t n)
{
    buf_append(t, s, n); /* a failure stays in t->failed */
}

static void text_puts(struct buf *t, const char *s)
{
    text_append(t, s, strlen(s));
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void
text_printf(struct buf *t, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) {
        t->failed = true;
    } else if ((size_t)n < sizeof(small)) {
        text_append(t, small, (size_t)n);
    } else {
        char *big = malloc((size_t)n + 1);
        if (!big) {
            t->failed = true;
            return;
        }
        va_start(ap, fmt);
        vsnprintf(big, (size_t)n + 1, fmt, ap);
        va_end(ap);
        text_append(t, big, (size_t)n);
        free(big);
    }
}

/* A label value with backslash, double quote and newline escaped. */
static void text_label_value(struct buf *t, const char *value)
{
    for (const char *p = value; *p; p++) {
        switch (*p) {
        case '\\':
            text_puts(t, "\\\\");
            break;
        case '"':
            text_puts(t, "\\\"");
            break;
        case '\n':
            text_puts(t, "\\n");
            break;
        default:
            text_append(t, p, 1);
        }
    }
}

/* Shortest of %.15g / %.17g that reads back exactly; +Inf, -Inf, NaN. */
static void format_double(char *buf, size_t len, double v)
{
    if (isnan(v)) {
        snprintf(buf, len, "NaN");
    } else if (isinf(v)) {
        snprintf(buf, len, "%s", v > 0 ? "+Inf" : "-Inf");
    } else {
        snprintf(buf, len, "%.15g", v);
        if (strtod(buf, NULL) != v) {
            snprintf(buf, len, "%.17g", v);
        }
    }
}

/* ---- Prometheus families and series ---- */

static void family(struct buf *t, const char *name, const char *type, const char *help)
{
    text_printf(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A series is series_begin, any number of series_label, one series_end_*. */
static void series_begin(struct buf *t, const struct metrics *m, const char *name,
                         const char *suffix)
{
    text_printf(t, "%s%s{%s", name, suffix, m->base_labels);
}

static void series_label(struct buf *t, const char *key, const char *value)
{
    text_printf(t, ",%s=\"", key);
    text_label_value(t, value);
    text_puts(t, "\"");
}

static void series_end_u64(struct buf *t, uint64_t value)
{
    text_printf(t, "} %" PRIu64 "\n", value);
}

static void series_end_double(struct buf *t, double value)
{
    char num[40];
    format_double(num, sizeof(num), value);
    text_printf(t, "} %s\n", num);
}

/* A family of one series with only the base labels. */
static void single_u64(struct buf *t, const struct metrics *m, const char *name, const char *type,
                       const char *help, uint64_t value)
{
    family(t, name, type, help);
    series_begin(t, m, name, "");
    series_end_u64(t, value);
}

/* A gauge of one series, left out when its value is unknown (NAN). */
static void single_gauge(struct buf *t, const struct metrics *m, const char *name, const char *help,
                         double value)
{
    if (isnan(value)) {
        return;
    }
    family(t, name, "gauge", help);
    series_begin(t, m, name, "");
    series_end_double(t, value);
}

static void histogram_observe(struct histogram *h, double value)
{
    size_t i = 0;
    while (value > latency_bounds[i]) {
        i++; /* the last bound is +Inf, so this stops */
    }
    h->counts[i]++;
    h->sum += value;
    h->count++;
}

/* A histogram's series, with one more label when `lane` is not NULL. */
static void render_histogram_series(struct buf *t, const struct metrics *m, const char *name,
                                    const char *lane, const struct histogram *h)
{
    uint64_t cumulative = 0;
    for (size_t i = 0; i < LATENCY_BUCKETS; i++) {
        char le[40];
        format_double(le, sizeof(le), latency_bounds[i]);
        cumulative += h->counts[i];
        series_begin(t, m, name, "_bucket");
        if (lane)
            series_label(t, "lane", lane);
        series_label(t, "le", le);
        series_end_u64(t, cumulative);
    }
    series_begin(t, m, name, "_sum");
    if (lane)
        series_label(t, "lane", lane);
    series_end_double(t, h->sum);
    series_begin(t, m, name, "_count");
    if (lane)
        series_label(t, "lane", lane);
    series_end_u64(t, h->count);
}

static void render_histogram(struct buf *t, const struct metrics *m, const char *name,
                             const char *help, const struct histogram *h)
{
    family(t, name, "histogram", help);
    render_histogram_series(t, m, name, NULL, h);
}

/* One counter family with a label taking the values `names`. */
static void render_labelled(struct buf *t, const struct metrics *m, const char *name,
                            const char *help, const char *label, const char *const *names,
                            const uint64_t *values, size_t n)
{
    family(t, name, "counter", help);
    for (size_t i = 0; i < n; i++) {
        series_begin(t, m, name, "");
        series_label(t, label, names[i]);
        series_end_u64(t, values[i]);
    }
}

static void render_steering(struct buf *t, const struct metrics *m, const struct metrics_sample *s)
{
    static const char *const results[CANCEL_RESULT_COUNT] = {"applied", "not_here", "run_mismatch",
                                                             "invalid"};
    static const char *const states[CANCEL_STATE_COUNT] = {"queued", "running", "on_arrival"};
    render_labelled(t, m, "llmq_cancels_received_total",
                    "Control-topic messages, by what they did.", "result", results, s->cancels,
                    CANCEL_RESULT_COUNT);
    render_labelled(t, m, "llmq_jobs_cancelled_total",
                    "Jobs ended by a cancel, by where the job was.", "state", states,
                    s->jobs_cancelled, CANCEL_STATE_COUNT);
    single_u64(t, m, "llmq_cancels_forgotten_total", "counter",
               "Remembered cancels forgotten to make room (control.remember_max).",
               s->cancels_forgotten);
    single_u64(t, m, "llmq_cancels_remembered", "gauge",
               "Cancels remembered for jobs not taken yet.", s->cancels_remembered);
    if (m->n_lanes > 0)
        family(t, "llmq_lane_queue_wait_seconds", "histogram",
               "Time from a job's Kafka timestamp to the start of its generation, by lane.");
    for (size_t i = 0; i < m->n_lanes; i++)
        render_histogram_series(t, m, "llmq_lane_queue_wait_seconds", m->lanes[i].name,
                                &m->lanes[i].h);
}

static void render_jobs(struct buf *t, const struct metrics *m, const struct metrics_sample *s)
{
    family(t, "llmq_jobs_total", "counter",
           "Jobs ended, by terminal status: ok or the error code.");
    for (int code = 0; code < LLMQ_CODE_COUNT; code++) {
        series_begin(t, m, "llmq_jobs_total", "");
        series_label(t, "status", llmq_code_name((enum llmq_code)code));
        series_end_u64(t, s->jobs[code]);
    }
    single_u64(t, m, "llmq_jobs_in_flight", "gauge", "Jobs taken from Kafka and not yet ended.",
               s->jobs_in_flight);
    single_u64(t, m, "llmq_jobs_finishing", "gauge",
               "Jobs ended whose terminal reply or dead-letter copy the broker has not "
               "acknowledged yet.",
               s->jobs_finishing);
    single_u64(t, m, "llmq_jobs_held_bytes", "gauge",
               "Bytes of job messages held (queued, running, finishing); intake pauses at "
               "limits.max_pending_bytes.",
               s->held_bytes);
    single_u64(t, m, "llmq_intake_held", "gauge",
               "1 while finishing jobs hold intake (2 x slots jobs or limits.max_pending_bytes).",
               s->intake_held);
    for (int h = 0; h < METRICS_HISTOGRAM_COUNT; h++) {
        render_histogram(t, m, histogram_families[h].name, histogram_families[h].help,
                         &m->histograms[h]);
    }
    single_u64(t, m, "llmq_tokens_generated_total", "counter", "Tokens generated by llama-server.",
               s->tokens_generated);
    single_u64(t, m, "llmq_chunks_published_total", "counter", "Chunk replies published.",
               s->chunks_published);
    single_u64(t, m, "llmq_dead_letters_total", "counter",
               "Invalid jobs copied to the dead-letter topic.", s->dead_letters);
    single_u64(t, m, "llmq_runs_retried_total", "counter",
               "Runs started again after llama-server was lost.", s->runs_retried);
}

/* llmq_gave_up_total{what,reason}: every kind, zeros included. */
static void render_gave_up(struct buf *t, const struct metrics *m, const struct metrics_sample *s)
{
    family(t, "llmq_gave_up_total", "counter",
           "Messages (or parts of one) the worker gave up on, by what and why; each was logged "
           "with its job id and topic.");
    for (int k = 0; k < GAVE_UP_COUNT; k++) {
        struct gave_up_labels l = gave_up_labels_of((enum gave_up_kind)k);
        series_begin(t, m, "llmq_gave_up_total", "");
        series_label(t, "what", l.what);
        series_label(t, "reason", l.reason);
        series_end_u64(t, s->gave_up[k]);
    }
}

static void render_kafka(struct buf *t, const struct metrics *m, const struct metrics_sample *s)
{
    if (m->n_lags > 0) {
        family(t, "llmq_kafka_consumer_lag", "gauge",
               "Messages between the partition's high watermark and the group's committed "
               "offset (librdkafka statistics).");
    }
    for (size_t i = 0; i < m->n_lags; i++) {
        char partition[16];
        snprintf(partition, sizeof(partition), "%" PRId32, m->lags[i].partition);
        series_begin(t, m, "llmq_kafka_consumer_lag", "");
        series_label(t, "topic", m->lags[i].topic);
        series_label(t, "partition", partition);
        series_end_u64(t, (uint64_t)m->lags[i].lag);
    }
    single_u64(t, m, "llmq_kafka_producer_queue_messages", "gauge",
               "Messages in the producer's queue, not yet acknowledged by the broker.",
               s->producer_queue_messages);
    single_u64(t, m, "llmq_kafka_commits_failed_total", "counter",
               "Partition offset commits that failed (each is retried).", s->commits_failed);
    single_u64(t, m, "llmq_group_leaves_total", "counter",
               "Times the worker left its group for want of a ready llama-server or VRAM.",
               s->group_leaves);
}

static void render_llama(struct buf *t, const struct metrics *m, const struct metrics_sample *s)
{
    single_u64(t, m, "llmq_llama_up", "gauge", "1 when llama-server answers healthy.", s->llama_up);
    single_u64(t, m, "llmq_llama_restarts_total", "counter", "llama-server restarts.",
               s->llama_restarts);
    single_u64(t, m, "llmq_llama_slots_busy", "gauge", "llama-server slots running a job.",
               s->llama_slots_busy);
    single_u64(t, m, "llmq_llama_slots_total", "gauge", "llama-server slots (--parallel).",
               s->llama_slots_total);
}

static void render_gpu(struct buf *t, const struct metrics *m, const struct gpu_reading *g)
{
    family(t, "llmq_gpu_info", "gauge", "The GPU backend in use and the device's name; always 1.");
    series_begin(t, m, "llmq_gpu_info", "");
    series_label(t, "backend", g->backend);
    series_label(t, "name", g->name);
    series_end_u64(t, 1);
    if (g->vram_valid) {
        single_u64(t, m, "llmq_gpu_vram_used_bytes", "gauge", "GPU memory in use.",
                   g->vram_used_bytes);
        single_u64(t, m, "llmq_gpu_vram_total_bytes", "gauge", "GPU memory in all.",
                   g->vram_total_bytes);
    }
    const struct {
        const char *sensor;
        double value;
    } temps[] = {
        {"edge", g->temp_edge_c}, {"junction", g->temp_junction_c}, {"memory", g->temp_mem_c}};
    bool header = false;
    for (size_t i = 0; i < sizeof(temps) / sizeof(temps[0]); i++) {
        if (isnan(temps[i].value)) {
            continue;
        }
        if (!header) {
            family(t, "llmq_gpu_temperature_celsius", "gauge", "GPU temperature by sensor.");
            header = true;
        }
        series_begin(t, m, "llmq_gpu_temperature_celsius", "");
        series_label(t, "sensor", temps[i].sensor);
        series_end_double(t, temps[i].value);
    }
    single_gauge(t, m, "llmq_gpu_power_watts", "GPU average power draw.", g->power_w);
    single_gauge(t, m, "llmq_gpu_busy_ratio", "Fraction of time the GPU was busy (0..1).",
                 g->busy_percent / 100.0);
}

char *metrics_render(struct metrics *m, size_t *len)
{
    struct metrics_sample s;
    memset(&s, 0, sizeof(s));
    gpu_reading_clear(&s.gpu, "none");
    if (m->source.sample) {
        m->source.sample(m->source.ctx, &s);
    }
    struct buf t = {0};
    render_jobs(&t, m, &s);
    render_kafka(&t, m, &s);
    render_gave_up(&t, m, &s);
    render_llama(&t, m, &s);
    render_gpu(&t, m, &s.gpu);
    render_steering(&t, m, &s);
    single_u64(&t, m, "llmq_admission_paused", "gauge",
               "1 while intake is paused because free VRAM is under the floor.",
               s.admission_paused);
    if (t.failed) {
        free(t.data);
        return NULL;
    }
    *len = t.len;
    return t.data;
}

void metrics_observe(struct metrics *m, enum metrics_histogram h, double seconds)
{
    if ((unsigned)h >= METRICS_HISTOGRAM_COUNT || isnan(seconds)) {
        return;
    }
    histogram_observe(&m->histograms[h], seconds < 0 ? 0 : seconds);
}

void metrics_observe_lane(struct metrics *m, const char *lane, double seconds)
{
    if (isnan(seconds))
        return;
    size_t i = 0;
    while (i < m->n_lanes && strcmp(m->lanes[i].name, lane) != 0)
        i++;
    if (i == m->n_lanes) {
        if (i == METRICS_LANES_MAX || !(m->lanes[i].name = strdup(lane)))
            return;
        m->n_lanes++;
    }
    histogram_observe(&m->lanes[i].h, seconds < 0 ? 0 : seconds);
}

void metrics_set_consumer_lag(struct metrics *m, struct kafka_partition_lag *lags, size_t n_lags)
{
    kafka_stats_lags_free(m->lags, m->n_lags);
    m->lags = lags;
    m->n_lags = n_lags;
}

static char *page_render(void *ctx, size_t *len)
{
    return metrics_render(ctx, len);
}

static bool page_ready(void *ctx, const char **reason)
{
    const struct metrics *m = ctx;
    return !m->source.ready || m->source.ready(m->source.ctx, reason);
}

/* worker="...",model="...",gpu="..." */
static char *base_labels(const struct metrics_options *opts)
{
    struct buf t = {0};
    const char *keys[] = {"worker", "model", "gpu"};
    const char *values[] = {opts->worker, opts->model, opts->gpu};
    for (size_t i = 0; i < 3; i++) {
        text_printf(&t, "%s%s=\"", i ? "," : "", keys[i]);
        text_label_value(&t, values[i] ? values[i] : "");
        text_puts(&t, "\"");
    }
    if (t.failed) {
        free(t.data);
        return NULL;
    }
    return t.data;
}

struct metrics *metrics_new(struct loop *loop, const struct metrics_options *opts, char *err,
                            size_t err_len)
{
    bool serve = opts->listen && opts->listen[0];
    if (serve && !loop) {
        snprintf(err, err_len, "metrics.listen \"%s\": no event loop to serve on", opts->listen);
        return NULL;
    }
    struct metrics *m = calloc(1, sizeof(*m));
    if (!m || !(m->base_labels = base_labels(opts))) {
        free(m);
        snprintf(err, err_len, "metrics: out of memory");
        return NULL;
    }
    m->source = opts->source;
    const struct metrics_pages pages = {page_render, page_ready, m};
    if (serve && !(m->http = metrics_http_start(loop, opts->listen, &pages, opts->health_stall_ms,
                                                opts->log, err, err_len))) {
        metrics_free(m);
        return NULL;
    }
    return m;
}

void metrics_free(struct metrics *m)
{
    if (!m) {
        return;
    }
    metrics_http_stop(m->http);
    kafka_stats_lags_free(m->lags, m->n_lags);
    for (size_t i = 0; i < m->n_lanes; i++)
        free(m->lanes[i].name);
    free(m->base_labels);
    free(m);
}

int metrics_port(const struct metrics *m)
{
    return metrics_http_port(m->http);
}
