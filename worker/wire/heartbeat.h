/* heartbeat.h — encode the v1 heartbeat message (schemas/spec.md,
 * "Heartbeat"): who the worker is, its state, its GPU readings, its slots
 * and its counters, one msgpack map in the spec's field order. A reading
 * the GPU backend cannot give is nil. */
#ifndef LLMQ_HEARTBEAT_H
#define LLMQ_HEARTBEAT_H

#include <msgpack.h>
#include <stdint.h>

struct gpu_reading; /* gpu.h */

struct heartbeat {
    const char *worker;
    const char *host;
    const char *model;
    const char *state; /* "starting" | "ready" | "restarting" | "draining" */
    int64_t ts_ms;
    const struct gpu_reading *gpu;
    unsigned slots_busy;
    unsigned slots_total;
    uint64_t jobs_done;
    uint64_t jobs_failed;
    uint64_t tokens;
};

/* Append one heartbeat map to `out`. Returns 0, or -1 if memory ran out
 * (then nothing usable was appended). */
int heartbeat_encode(msgpack_sbuffer *out, const struct heartbeat *hb);

#endif
