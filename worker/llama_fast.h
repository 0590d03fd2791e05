/* llama_fast.h — the stream event that dominates a run, read without a JSON tree.
 *
 * Nearly every event llama-server streams is one plain piece of text (no
 * error, no probabilities), and a /completion run ends with a short final
 * event (response_fields trims it). Decoding each into a jansson tree was
 * about a third of the worker's loop thread at its ceiling (FINDINGS.md, "The
 * worker's cost per job, cut"). This reads those events in place with jsmn's
 * tokenizer and checks them as strictly as jansson would; anything it is not
 * sure of (an escape in the text, a chat stream's last events, an error,
 * logprobs, a duplicate key, more tokens than it holds) it declines, and llama_proto.c's
 * full parser decides. So declining is always safe, and an event it takes
 * decodes exactly as the full parser would decode it (the fuzzer compares
 * the two on every input). */
#ifndef LLMQ_LLAMA_FAST_H
#define LLMQ_LLAMA_FAST_H

#include <stddef.h>

#include "llama_proto.h"

enum llama_fast_result {
    LLAMA_FAST_TAKEN,    /* *ev holds the event */
    LLAMA_FAST_DECLINED, /* *ev untouched: use the full parser */
    LLAMA_FAST_NOMEM,    /* out of memory copying the text; *ev untouched */
};

/* Decode `data` (one SSE data payload of endpoint `ep`) into *ev when it is
 * valid JSON and a plain piece of text (or, for /completion, the final event
 * with its stop_type); `ev` must be cleared (llama_event_clear) beforehand. */
enum llama_fast_result llama_fast_event(enum llama_endpoint ep, const char *data, size_t len,
                                        struct llama_event *ev);

#endif
