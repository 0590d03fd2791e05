/* llama.h — run one job through llama-server, streaming.
 *
 * Prompt jobs go to POST /completion, chat jobs to POST /v1/chat/completions,
 * both with "stream": true. The SSE events are parsed (sse.h) and decoded
 * (llama_proto.h); each non-empty piece of text goes to on_text, and exactly
 * one on_done ends the run — unless llama_run_cancel() is called first, which
 * closes the connection and calls nothing afterwards. */
#ifndef LLMQ_LLAMA_H
#define LLMQ_LLAMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codes.h"
#include "job.h"
#include "llama_proto.h"

struct http;
struct llama_run;

struct llama_outcome {
    enum llmq_code code; /* LLMQ_OK, or why the run failed */
    /* The connection failed or broke before the final event: llama-server is
     * probably gone, and the job should run again once it is back. The code
     * is then LLMQ_BACKEND_FAILED. */
    bool backend_lost;
    char message[256];
    char finish[16]; /* "stop", "length", ... (LLMQ_OK only) */
    int64_t prompt_tokens;
    int64_t completion_tokens;
};

struct llama_run_events {
    void (*on_text)(void *ctx, const char *text, size_t len);
    void (*on_done)(void *ctx, const struct llama_outcome *outcome);
    /* The log-probabilities of an event's tokens (`count` entries packed by
     * logprobs_pack_entry), before its text goes to on_text. May be NULL. */
    void (*on_logprobs)(void *ctx, const uint8_t *entries, size_t len, size_t count);
};

struct llama_target {
    const char *base_url; /* "http://127.0.0.1:PORT" */
    const char *api_key;  /* NULL: none */
};

/* Start a run. Returns NULL (and calls nothing) if the request could not be
 * built or started. */
struct llama_run *llama_run_start(struct http *http, const struct llama_target *target,
                                  const struct job *job, const struct llama_caps *caps,
                                  const struct llama_run_events *events, void *ctx);

/* Close the connection; no callback runs for this run afterwards. Allowed
 * from inside on_text; not after on_done, which frees the run. */
void llama_run_cancel(struct http *http, struct llama_run *run);

#endif
