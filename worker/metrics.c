/* metrics.c — the worker's Prometheus page (text format 0.0.4), its latency
 * histograms and Kafka consumer lag, and the libmicrohttpd server for
 * /metrics, /healthz and /readyz, driven by the worker's event loop. */
#include "metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <jansson.h>
#include <microhttpd.h>

#include "loop.h"

enum {
    TICK_INTERVAL_MS = 1000,
    DEFAULT_STALL_MS = 10000,
    HTTP_CONNECTION_LIMIT = 32,
    HTTP_CONNECTION_TIMEOUT_S = 10,
    HTTP_TIMER_MAX_MS = 60000,
};

#define PROMETHEUS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

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

struct metrics {
    struct loop *loop;
    const struct logger *log;
    char *base_labels; /* worker="...",model="...",gpu="..." */
    struct metrics_source source;
    struct histogram histograms[METRICS_HISTOGRAM_COUNT];
    struct metrics_partition_lag *lags;
    size_t n_lags;

    struct MHD_Daemon *daemon;
    int epoll_fd;
    int port;
    struct loop_timer *http_timer;
    char http_error[256]; /* libmicrohttpd's latest message */

    int64_t stall_ms;
    int64_t last_tick_ms;
    struct loop_timer *tick_timer;
};

/* ---- text building ---- */

struct text {
    char *buf;
    size_t len;
    size_t cap;
    bool failed;
};

static void text_append(struct text *t, const char *s, size_t n)
{
    if (t->failed) {
        return;
    }
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 4096;
        while (t->len + n + 1 > cap) {
            cap *= 2;
        }
        char *grown = realloc(t->buf, cap);
        if (!grown) {
            t->failed = true;
            return;
        }
        t->buf = grown;
        t->cap = cap;
    }
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = '\0';
}

static void text_puts(struct text *t, const char *s)
{
    text_append(t, s, strlen(s));
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void
text_printf(struct text *t, const char *fmt, ...)
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
static void text_label_value(struct text *t, const char *value)
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

static void family(struct text *t, const char *name, const char *type, const char *help)
{
    text_printf(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A series is series_begin, any number of series_label, one series_end_*. */
static void series_begin(struct text *t, const struct metrics *m, const char *name,
                         const char *suffix)
{
    text_printf(t, "%s%s{%s", name, suffix, m->base_labels);
}

static void series_label(struct text *t, const char *key, const char *value)
{
    text_printf(t, ",%s=\"", key);
    text_label_value(t, value);
    text_puts(t, "\"");
}

static void series_end_u64(struct text *t, uint64_t value)
{
    text_printf(t, "} %" PRIu64 "\n", value);
}

static void series_end_double(struct text *t, double value)
{
    char num[40];
    format_double(num, sizeof(num), value);
    text_printf(t, "} %s\n", num);
}

/* A family of one series with only the base labels. */
static void single_u64(struct text *t, const struct metrics *m, const char *name, const char *type,
                       const char *help, uint64_t value)
{
    family(t, name, type, help);
    series_begin(t, m, name, "");
    series_end_u64(t, value);
}

/* A gauge of one series, left out when its value is unknown (NAN). */
static void single_gauge(struct text *t, const struct metrics *m, const char *name,
                         const char *help, double value)
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

static void render_histogram(struct text *t, const struct metrics *m, const char *name,
                             const char *help, const struct histogram *h)
{
    family(t, name, "histogram", help);
    uint64_t cumulative = 0;
    for (size_t i = 0; i < LATENCY_BUCKETS; i++) {
        char le[40];
        format_double(le, sizeof(le), latency_bounds[i]);
        cumulative += h->counts[i];
        series_begin(t, m, name, "_bucket");
        series_label(t, "le", le);
        series_end_u64(t, cumulative);
    }
    series_begin(t, m, name, "_sum");
    series_end_double(t, h->sum);
    series_begin(t, m, name, "_count");
    series_end_u64(t, h->count);
}

static void render_jobs(struct text *t, const struct metrics *m, const struct metrics_sample *s)
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

static void render_kafka(struct text *t, const struct metrics *m, const struct metrics_sample *s)
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
}

static void render_llama(struct text *t, const struct metrics *m, const struct metrics_sample *s)
{
    single_u64(t, m, "llmq_llama_up", "gauge", "1 when llama-server answers healthy.", s->llama_up);
    single_u64(t, m, "llmq_llama_restarts_total", "counter", "llama-server restarts.",
               s->llama_restarts);
    single_u64(t, m, "llmq_llama_slots_busy", "gauge", "llama-server slots running a job.",
               s->llama_slots_busy);
    single_u64(t, m, "llmq_llama_slots_total", "gauge", "llama-server slots (--parallel).",
               s->llama_slots_total);
}

static void render_gpu(struct text *t, const struct metrics *m, const struct gpu_reading *g)
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
    struct text t = {0};
    render_jobs(&t, m, &s);
    render_kafka(&t, m, &s);
    render_llama(&t, m, &s);
    render_gpu(&t, m, &s.gpu);
    single_u64(&t, m, "llmq_admission_paused", "gauge",
               "1 while intake is paused because free VRAM is under the floor.",
               s.admission_paused);
    if (t.failed) {
        free(t.buf);
        return NULL;
    }
    *len = t.len;
    return t.buf;
}

void metrics_observe(struct metrics *m, enum metrics_histogram h, double seconds)
{
    if ((unsigned)h >= METRICS_HISTOGRAM_COUNT || isnan(seconds)) {
        return;
    }
    histogram_observe(&m->histograms[h], seconds < 0 ? 0 : seconds);
}

/* ---- librdkafka statistics ---- */

void metrics_lags_free(struct metrics_partition_lag *lags, size_t n_lags)
{
    for (size_t i = 0; i < n_lags; i++) {
        free(lags[i].topic);
    }
    free(lags);
}

static int compare_lags(const void *a, const void *b)
{
    const struct metrics_partition_lag *x = a, *y = b;
    int by_topic = strcmp(x->topic, y->topic);
    if (by_topic != 0) {
        return by_topic;
    }
    return (x->partition > y->partition) - (x->partition < y->partition);
}

/* A partition key of the statistics ("0", "1", ...); -1 for the internal
 * unassigned partition and anything else that is not a partition. */
static int32_t partition_number(const char *key)
{
    char *end;
    errno = 0;
    long p = strtol(key, &end, 10);
    if (end == key || *end != '\0' || errno != 0 || p < 0 || p > INT32_MAX) {
        return -1;
    }
    return (int32_t)p;
}

int metrics_parse_consumer_lag(const char *json, size_t len, struct metrics_partition_lag **lags,
                               size_t *n_lags, char *err, size_t err_len)
{
    *lags = NULL;
    *n_lags = 0;
    json_error_t jerr;
    json_t *root = json_loadb(json, len, 0, &jerr);
    if (!root) {
        snprintf(err, err_len, "kafka statistics: line %d column %d: %s", jerr.line, jerr.column,
                 jerr.text);
        return -1;
    }
    json_t *topics = json_object_get(root, "topics");
    if (topics && !json_is_object(topics)) {
        snprintf(err, err_len, "kafka statistics: \"topics\" is not an object");
        json_decref(root);
        return -1;
    }
    const char *topic_name;
    json_t *topic;
    size_t cap = 0;
    json_object_foreach(topics, topic_name, topic)
    {
        cap += json_object_size(json_object_get(topic, "partitions"));
    }
    struct metrics_partition_lag *out = cap ? calloc(cap, sizeof(*out)) : NULL;
    size_t n = 0;
    bool failed = cap && !out;
    json_object_foreach(topics, topic_name, topic)
    {
        json_t *partitions = json_object_get(topic, "partitions");
        const char *key;
        json_t *partition;
        json_object_foreach(partitions, key, partition)
        {
            int32_t number = partition_number(key);
            json_t *lag = json_object_get(partition, "consumer_lag");
            if (failed || number < 0 || !json_is_integer(lag) || json_integer_value(lag) < 0) {
                continue;
            }
            /* out is non-NULL: a partition here means cap > 0. */
            out[n].topic = strdup(topic_name); // NOLINT(clang-analyzer-core.NullDereference)
            if (!out[n].topic) {
                failed = true;
                continue;
            }
            out[n].partition = number;
            out[n].lag = json_integer_value(lag);
            n++;
        }
    }
    json_decref(root);
    if (failed) {
        metrics_lags_free(out, n);
        snprintf(err, err_len, "kafka statistics: out of memory");
        return -1;
    }
    if (n > 1) {
        qsort(out, n, sizeof(*out), compare_lags);
    }
    *lags = out;
    *n_lags = n;
    return 0;
}

int metrics_set_kafka_stats(struct metrics *m, const char *json, size_t len, char *err,
                            size_t err_len)
{
    struct metrics_partition_lag *lags;
    size_t n;
    if (metrics_parse_consumer_lag(json, len, &lags, &n, err, err_len) != 0) {
        return -1;
    }
    metrics_lags_free(m->lags, m->n_lags);
    m->lags = lags;
    m->n_lags = n;
    return 0;
}

/* ---- HTTP ---- */

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned status,
                               const char *content_type, const char *body, size_t len)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r) {
        return MHD_NO;
    }
    enum MHD_Result ok = MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    if (ok == MHD_YES && status == MHD_HTTP_METHOD_NOT_ALLOWED) {
        ok = MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    }
    if (ok == MHD_YES) {
        ok = MHD_queue_response(conn, status, r);
    }
    MHD_destroy_response(r);
    return ok;
}

/* Answer `body` as JSON; takes the reference. */
static enum MHD_Result respond_json(struct MHD_Connection *conn, unsigned status, json_t *body)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text) {
        return MHD_NO;
    }
    enum MHD_Result ok = respond(conn, status, "application/json", text, strlen(text));
    free(text);
    return ok;
}

static enum MHD_Result serve_metrics(struct metrics *m, struct MHD_Connection *conn)
{
    size_t len;
    char *text = metrics_render(m, &len);
    if (!text) {
        return MHD_NO;
    }
    enum MHD_Result ok = respond(conn, MHD_HTTP_OK, PROMETHEUS_CONTENT_TYPE, text, len);
    free(text);
    return ok;
}

static enum MHD_Result serve_health(struct metrics *m, struct MHD_Connection *conn)
{
    int64_t age = loop_now_ms() - m->last_tick_ms;
    bool alive = age <= m->stall_ms;
    json_t *body =
        json_pack("{s:s, s:I}", "status", alive ? "ok" : "stalled", "loop_age_ms", (json_int_t)age);
    return respond_json(conn, alive ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, body);
}

static enum MHD_Result serve_ready(struct metrics *m, struct MHD_Connection *conn)
{
    const char *reason = NULL;
    if (!m->source.ready || m->source.ready(m->source.ctx, &reason)) {
        return respond_json(conn, MHD_HTTP_OK, json_pack("{s:b}", "ready", 1));
    }
    json_t *body =
        json_pack("{s:b, s:s}", "ready", 0, "reason", reason && reason[0] ? reason : "not ready");
    return respond_json(conn, MHD_HTTP_SERVICE_UNAVAILABLE, body);
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
           const char *version, const char *upload_data,
           size_t *upload_data_size, // NOLINT(readability-non-const-parameter): MHD's signature
           void **req_cls)
{
    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    (void)req_cls;
    struct metrics *m = cls;
    static const char text_plain[] = "text/plain; charset=utf-8";
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
        static const char body[] = "method not allowed\n";
        return respond(conn, MHD_HTTP_METHOD_NOT_ALLOWED, text_plain, body, sizeof(body) - 1);
    }
    if (strcmp(url, "/metrics") == 0) {
        return serve_metrics(m, conn);
    }
    if (strcmp(url, "/healthz") == 0) {
        return serve_health(m, conn);
    }
    if (strcmp(url, "/readyz") == 0) {
        return serve_ready(m, conn);
    }
    static const char body[] = "not found\n";
    return respond(conn, MHD_HTTP_NOT_FOUND, text_plain, body, sizeof(body) - 1);
}

/* libmicrohttpd's messages: kept for metrics_new's error while starting,
 * logged as warnings once serving. */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 0)))
#endif
static void
on_mhd_message(void *cls, const char *fmt, va_list ap)
{
    struct metrics *m = cls;
    vsnprintf(m->http_error, sizeof(m->http_error), fmt, ap);
    m->http_error[strcspn(m->http_error, "\r\n")] = '\0';
    if (m->daemon && m->log) {
        log_warn(m->log, "metrics", "http: %s", m->http_error);
    }
}

static void on_http_timer(struct loop *loop, void *ctx);

/* Let libmicrohttpd do what is ready, then wake it again when it asks. */
static void run_http(struct metrics *m)
{
    MHD_run(m->daemon);
    if (m->http_timer) {
        loop_timer_cancel(m->loop, m->http_timer);
        m->http_timer = NULL;
    }
    MHD_UNSIGNED_LONG_LONG timeout_ms;
    if (MHD_get_timeout(m->daemon, &timeout_ms) != MHD_YES) {
        return;
    }
    int64_t delay = timeout_ms > HTTP_TIMER_MAX_MS ? HTTP_TIMER_MAX_MS : (int64_t)timeout_ms;
    m->http_timer = loop_timer_after(m->loop, delay, on_http_timer, m);
    if (!m->http_timer && m->log) {
        log_warn(m->log, "metrics", "http: cannot arm a timer; idle connections may linger");
    }
}

static void on_http_timer(struct loop *loop, void *ctx)
{
    (void)loop;
    struct metrics *m = ctx;
    m->http_timer = NULL;
    run_http(m);
}

static void on_http_ready(struct loop *loop, int fd, unsigned events, void *ctx)
{
    (void)loop;
    (void)fd;
    (void)events;
    run_http(ctx);
}

static void on_tick(struct loop *loop, void *ctx)
{
    struct metrics *m = ctx;
    m->last_tick_ms = loop_now_ms();
    m->tick_timer = loop_timer_after(loop, TICK_INTERVAL_MS, on_tick, m);
}

/* "host:port" or "[v6 address]:port" into host and port. */
static int split_listen(const char *listen, char *host, size_t host_len, char *port,
                        size_t port_len)
{
    const char *colon = strrchr(listen, ':');
    if (!colon) {
        return -1;
    }
    const char *h = listen;
    size_t h_len = (size_t)(colon - listen);
    if (h_len >= 2 && h[0] == '[' && h[h_len - 1] == ']') {
        h++;
        h_len -= 2;
    }
    const char *p = colon + 1;
    size_t p_len = strlen(p);
    if (h_len == 0 || h_len >= host_len || p_len == 0 || p_len >= port_len ||
        strspn(p, "0123456789") != p_len || strtol(p, NULL, 10) > 65535) {
        return -1;
    }
    memcpy(host, h, h_len);
    host[h_len] = '\0';
    memcpy(port, p, p_len + 1);
    return 0;
}

static int start_http(struct metrics *m, const char *listen, char *err, size_t err_len)
{
    char host[256], port[8];
    if (split_listen(listen, host, sizeof(host), port, sizeof(port)) != 0) {
        snprintf(err, err_len, "metrics.listen \"%s\": expected host:port", listen);
        return -1;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *addr;
    int rc = getaddrinfo(host, port, &hints, &addr);
    if (rc != 0) {
        snprintf(err, err_len, "metrics.listen \"%s\": %s", listen, gai_strerror(rc));
        return -1;
    }
    unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    if (addr->ai_family == AF_INET6) {
        flags |= MHD_USE_IPv6;
    }
    /* The port is also given as a number only so that MHD's messages name it. */
    m->daemon = MHD_start_daemon(flags, (uint16_t)strtol(port, NULL, 10), NULL, NULL, on_request, m,
                                 MHD_OPTION_EXTERNAL_LOGGER, on_mhd_message, m,
                                 MHD_OPTION_SOCK_ADDR, addr->ai_addr, MHD_OPTION_CONNECTION_LIMIT,
                                 (unsigned)HTTP_CONNECTION_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT,
                                 (unsigned)HTTP_CONNECTION_TIMEOUT_S, MHD_OPTION_END);
    freeaddrinfo(addr);
    if (!m->daemon) {
        snprintf(err, err_len, "metrics.listen \"%s\": %s", listen,
                 m->http_error[0] ? m->http_error : "cannot start the HTTP server");
        return -1;
    }
    m->epoll_fd = MHD_get_daemon_info(m->daemon, MHD_DAEMON_INFO_EPOLL_FD)->epoll_fd;
    m->port = MHD_get_daemon_info(m->daemon, MHD_DAEMON_INFO_BIND_PORT)->port;
    if (loop_watch(m->loop, m->epoll_fd, LOOP_READ, on_http_ready, m) != 0) {
        snprintf(err, err_len, "metrics.listen \"%s\": cannot watch the server: %s", listen,
                 strerror(errno));
        return -1;
    }
    m->last_tick_ms = loop_now_ms();
    m->tick_timer = loop_timer_after(m->loop, TICK_INTERVAL_MS, on_tick, m);
    if (!m->tick_timer) {
        snprintf(err, err_len, "metrics.listen \"%s\": out of memory", listen);
        return -1;
    }
    run_http(m);
    return 0;
}

/* worker="...",model="...",gpu="..." */
static char *base_labels(const struct metrics_options *opts)
{
    struct text t = {0};
    const char *keys[] = {"worker", "model", "gpu"};
    const char *values[] = {opts->worker, opts->model, opts->gpu};
    for (size_t i = 0; i < 3; i++) {
        text_printf(&t, "%s%s=\"", i ? "," : "", keys[i]);
        text_label_value(&t, values[i] ? values[i] : "");
        text_puts(&t, "\"");
    }
    if (t.failed) {
        free(t.buf);
        return NULL;
    }
    return t.buf;
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
    m->loop = loop;
    m->log = opts->log;
    m->source = opts->source;
    m->stall_ms = opts->health_stall_ms > 0 ? opts->health_stall_ms : DEFAULT_STALL_MS;
    m->epoll_fd = -1;
    if (serve && start_http(m, opts->listen, err, err_len) != 0) {
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
    if (m->tick_timer) {
        loop_timer_cancel(m->loop, m->tick_timer);
    }
    if (m->http_timer) {
        loop_timer_cancel(m->loop, m->http_timer);
    }
    if (m->daemon) {
        loop_unwatch(m->loop, m->epoll_fd); /* fails harmlessly if the watch never started */
        MHD_stop_daemon(m->daemon);
    }
    metrics_lags_free(m->lags, m->n_lags);
    free(m->base_labels);
    free(m);
}

int metrics_port(const struct metrics *m)
{
    return m->port;
}
