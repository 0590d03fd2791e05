/* worker_stats.h — the worker's counters, as telemetry reads them. */
#ifndef LLMQ_WORKER_STATS_H
#define LLMQ_WORKER_STATS_H

#include <stdint.h>

#include "codes.h"

struct worker_stats {
    uint64_t jobs_received;
    uint64_t jobs_ok;
    uint64_t jobs_error[LLMQ_CODE_COUNT]; /* terminal errors by code */
    uint64_t runs_started;
    uint64_t runs_retried; /* reruns after llama-server was lost */
    uint64_t dead_lettered;
    uint64_t chunks_published;
    uint64_t tokens_generated;
    uint64_t group_leaves;      /* the group left for want of a ready llama-server */
    uint64_t deliveries_failed; /* terminal or dead-letter messages re-produced or given up */
};

#endif
