/* metrics.h — the worker's metrics in Prometheus text format 0.0.4, and its
 * health, served over HTTP on the worker's event loop.
 *
 * Endpoints (GET or HEAD; other methods get 405, other paths 404):
 *   /metrics  text/plain; version=0.0.4 — every series carries the worker,
 *             model and gpu labels given to metrics_new.
 *   /healthz  200 {"status":"ok","loop_age_ms":N}, or 503 with "stalled"
 *             when the loop has not run the module's 1 s tick timer for more
 *             than health_stall_ms (default 10 s). Being answered at all
 *             shows the loop runs; a request that waited out a stall is
 *             answered 503 before the tick catches up.
 *   /readyz   200 {"ready":true}, or 503 {"ready":false,"reason":"..."}
 *             as the source's ready callback says.
 *
 * The HTTP server (libmicrohttpd, MHD_USE_EPOLL without threads) lives on
 * the loop: its epoll fd is loop-watched and MHD_get_timeout drives a loop
 * timer, so no request ever blocks the loop and nothing here needs a lock.
 * Everything — observations, stats, the source callbacks — runs on the loop
 * thread.
 *
 * Counters and gauges the worker already keeps are read at each scrape
 * through the source's sample callback; the module itself keeps the three
 * latency histograms and the Kafka consumer lag (kafka_stats.h parses it
 * from librdkafka's statistics JSON). The HTTP side is metrics_http.c. */
#ifndef LLMQ_METRICS_H
#define LLMQ_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codes.h"
#include "gave_up.h"
#include "gpu.h"
#include "kafka_stats.h"
#include "log.h"
#include "worker_stats.h"

struct loop;
struct metrics;

/* What the worker reports at a scrape. The module zeroes it (and clears gpu
 * to "none", every value unknown) before calling sample. */
struct metrics_sample {
    uint64_t jobs[LLMQ_CODE_COUNT]; /* jobs ended, by code; [LLMQ_OK] = ended ok */
    uint64_t jobs_in_flight;        /* jobs taken from Kafka and not yet ended */
    uint64_t jobs_finishing;        /* ended, terminal messages not acknowledged yet */
    uint64_t held_bytes;            /* job messages held (limits.max_pending_bytes) */
    bool intake_held;               /* intake paused by finishing jobs (count or bytes) */
    uint64_t tokens_generated;
    uint64_t chunks_published;
    uint64_t dead_letters;
    uint64_t runs_retried;
    uint64_t cancels[CANCEL_RESULT_COUNT];       /* control messages, by what they did */
    uint64_t jobs_cancelled[CANCEL_STATE_COUNT]; /* by where the job was */
    uint64_t cancels_forgotten;                  /* remembered ids dropped for room */
    uint64_t cancels_remembered;
    uint64_t producer_queue_messages; /* kafka_outq_len(): produced, not acknowledged */
    uint64_t commits_failed;          /* partitions whose offset commit failed */
    uint64_t group_leaves;            /* the group left for want of a ready llama-server */
    bool llama_up;
    uint64_t llama_restarts;
    unsigned llama_slots_busy;
    unsigned llama_slots_total;
    bool admission_paused;           /* intake paused by the VRAM floor */
    struct gpu_reading gpu;          /* series whose value is unknown (NAN) are left out */
    uint64_t gave_up[GAVE_UP_COUNT]; /* messages or parts given up, by kind (gave_up.h) */
};

struct metrics_source {
    /* Fill *out at each /metrics scrape. NULL: everything reads zero. */
    void (*sample)(void *ctx, struct metrics_sample *out);
    /* At each /readyz: true if ready, else false and *reason (valid until
     * the next call) says why; ready with *reason set means ready with
     * something degraded (shown as "detail"). NULL: always ready. */
    bool (*ready)(void *ctx, const char **reason);
    void *ctx;
};

struct metrics_options {
    const char *listen; /* "host:port" or "[v6]:port"; port 0 = any free port;
                           NULL or "" = no HTTP server */
    const char *worker; /* label values on every series (copied) */
    const char *model;
    const char *gpu;
    struct metrics_source source;
    int64_t health_stall_ms; /* 0 = 10000 */
    const struct logger *log;
};

/* Create the registry and, when opts->listen is set, start serving on
 * `loop` (which may be NULL only without a listen address). Returns NULL
 * with "metrics.listen ...: reason" in err if the address is bad or cannot
 * be bound. */
struct metrics *metrics_new(struct loop *loop, const struct metrics_options *opts, char *err,
                            size_t err_len);

/* Stop serving (open connections are closed) and free; before loop_free,
 * and not from inside a source callback. NULL is fine. */
void metrics_free(struct metrics *m);

/* The bound TCP port (useful with port 0), or 0 without a server. */
int metrics_port(const struct metrics *m);

enum metrics_histogram {
    METRICS_QUEUE_WAIT,          /* llmq_queue_wait_seconds */
    METRICS_TIME_TO_FIRST_TOKEN, /* llmq_time_to_first_token_seconds */
    METRICS_JOB_DURATION,        /* llmq_job_duration_seconds */
    METRICS_HISTOGRAM_COUNT
};

/* Record one observation in seconds. Buckets: 0.001 s .. 600 s and +Inf.
 * Negative values (clock skew) count as 0; NAN is ignored. */
void metrics_observe(struct metrics *m, enum metrics_histogram h, double seconds);

/* Record one queue wait (seconds) of a job of lane `lane` (its jobs topic),
 * in llmq_lane_queue_wait_seconds{lane=...}; at most 64 lanes are kept,
 * later ones are not recorded. */
void metrics_observe_lane(struct metrics *m, const char *lane, double seconds);

/* Replace the consumer lag per partition with `lags` (sorted as
 * kafka_stats_consumer_lag gives them); takes ownership of the array. */
void metrics_set_consumer_lag(struct metrics *m, struct kafka_partition_lag *lags, size_t n_lags);

/* The /metrics page: calls the sample callback and returns a malloc'd text
 * (*len bytes, NUL-terminated), or NULL if out of memory. */
char *metrics_render(struct metrics *m, size_t *len);

#endif
