/* telemetry.h — how a worker is seen from outside: the Prometheus endpoint
 * and probes (metrics.h), the GPU readings and the VRAM admission floor
 * (gpu.h), and the heartbeat on the metrics topic (heartbeat.h).
 *
 * The worker owns one and answers its questions through a status callback,
 * called at each scrape, probe and heartbeat; telemetry tells the worker when
 * free VRAM crosses the floor, so intake can stop or start again. Everything
 * runs on the loop thread. */
#ifndef LLMQ_TELEMETRY_H
#define LLMQ_TELEMETRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "log.h"
#include "metrics.h"
#include "worker_stats.h"

struct loop;
struct kafka;
struct telemetry;

/* The worker's side of the picture, filled at each question. */
struct telemetry_status {
    const struct worker_stats *stats;
    unsigned jobs_in_flight; /* taken from Kafka, not yet ended */
    unsigned jobs_finishing; /* ended, terminal messages not acknowledged yet */
    uint64_t held_bytes;     /* job messages of every live task (max_pending_bytes) */
    bool intake_held;        /* finishing tasks hold intake (count or bytes) */
    unsigned slots_busy;
    const char *state;     /* "starting" | "ready" | "restarting" | "draining" */
    const char *not_ready; /* NULL when ready for jobs, else why not */
    const char *degraded;  /* ready, but this is missing (NULL: nothing) */
    bool llama_up;
    unsigned llama_restarts;
    uint64_t gave_up[GAVE_UP_COUNT]; /* given up, by kind (the worker's and delivery's) */
};

struct telemetry_source {
    void (*status)(void *ctx, struct telemetry_status *out);
    /* Free VRAM crossed metrics.vram_floor_mb (see telemetry_admission_paused). */
    void (*admission_changed)(void *ctx);
    void *ctx;
};

/* Open the GPU backend, start the HTTP endpoint (metrics.listen) and the
 * GPU and heartbeat timers. NULL with the reason in err. */
struct telemetry *telemetry_new(struct loop *loop, const struct llmq_config *cfg,
                                const struct logger *log, struct kafka *kafka,
                                const struct telemetry_source *source, char *err, size_t err_len);
void telemetry_free(struct telemetry *t); /* NULL is fine */

/* Whether free VRAM is under the floor: take no new jobs. */
bool telemetry_admission_paused(const struct telemetry *t);

/* One latency observation, in seconds. */
void telemetry_observe(struct telemetry *t, enum metrics_histogram h, double seconds);

/* Record a job's queue wait in its lane's histogram (metrics_observe_lane). */
void telemetry_observe_lane(struct telemetry *t, const char *lane, double seconds);

/* librdkafka's statistics JSON of the consumer (for the consumer lag). */
void telemetry_kafka_stats(struct telemetry *t, const char *json, size_t len);

#endif
