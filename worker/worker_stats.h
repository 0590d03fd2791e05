/* worker_stats.h — the worker's counters, as telemetry reads them. */
#ifndef LLMQ_WORKER_STATS_H
#define LLMQ_WORKER_STATS_H

#include <stdint.h>

#include "codes.h"

/* Where a cancelled job was when its cancel acted. */
enum cancel_state { CANCEL_QUEUED, CANCEL_RUNNING, CANCEL_ON_ARRIVAL, CANCEL_STATE_COUNT };

/* What a control message did. */
enum cancel_result {
    CANCEL_APPLIED,      /* it ended a job held or running here */
    CANCEL_NOT_HERE,     /* no such job here (not consumed yet, elsewhere, finished or unknown) */
    CANCEL_RUN_MISMATCH, /* it named a run this worker is not running */
    CANCEL_INVALID,      /* not a valid cancel message: ignored */
    CANCEL_RESULT_COUNT
};

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
    uint64_t cancels[CANCEL_RESULT_COUNT];       /* control messages, by what they did */
    uint64_t jobs_cancelled[CANCEL_STATE_COUNT]; /* by where the job was */
    uint64_t cancels_forgotten;                  /* remembered ids dropped for room */
    uint64_t cancels_remembered;                 /* ids remembered now (a gauge) */
};

#endif
