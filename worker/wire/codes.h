/* codes.h — the stable error codes of wire contract v1.
 *
 * Every job that ends badly ends with exactly one of these codes in its
 * `error` reply (and, for bad input, in the dead-letter copy's headers).
 * The strings are part of the public contract (schemas/spec.md): never
 * rename one, only add. */
#ifndef LLMQ_CODES_H
#define LLMQ_CODES_H

#include <stdbool.h>

enum llmq_code {
    LLMQ_OK = 0,
    LLMQ_MALFORMED,           /* not msgpack, not a map, trailing bytes */
    LLMQ_UNSUPPORTED_VERSION, /* v missing or not 1 */
    LLMQ_INVALID_ID,          /* id missing, not a string, empty or > 128 bytes */
    LLMQ_INVALID_FIELD,       /* a known field has the wrong type or range */
    LLMQ_INVALID_INPUT,       /* both or neither of prompt / messages */
    LLMQ_PROMPT_TOO_LARGE,    /* prompt bytes over the worker's limit */
    LLMQ_REPLY_TO_DENIED,     /* reply_to not in the worker's allowlist */
    LLMQ_EXPIRED,             /* deadline_ms passed, queued or generating */
    LLMQ_MODEL_MISMATCH,      /* job names a model this worker does not serve */
    LLMQ_CONTEXT_EXCEEDED,    /* prompt longer than llama-server's context */
    LLMQ_BACKEND_ERROR,       /* llama-server answered an error for this job */
    LLMQ_BACKEND_FAILED,      /* llama-server died; retries used up */
    LLMQ_INTERNAL,            /* a bug or resource failure in the worker */
    LLMQ_CANCELLED,           /* a cancel on the control topic named the job */
    LLMQ_CODE_COUNT
};

/* The wire string of a code ("malformed", "expired", ...). */
const char *llmq_code_name(enum llmq_code code);

/* Whether a producer may usefully submit the same job again. */
bool llmq_code_retryable(enum llmq_code code);

/* Whether the raw job also goes to the dead-letter topic (bad input). */
bool llmq_code_dead_letters(enum llmq_code code);

#endif
