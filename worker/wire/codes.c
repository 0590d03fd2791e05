/* codes.c — names and properties of the wire error codes. */
#include "codes.h"

static const struct {
    const char *name;
    bool retryable;
    bool dead_letter;
} code_table[LLMQ_CODE_COUNT] = {
    [LLMQ_OK] = {"ok", false, false},
    [LLMQ_MALFORMED] = {"malformed", false, true},
    [LLMQ_UNSUPPORTED_VERSION] = {"unsupported_version", false, true},
    [LLMQ_INVALID_ID] = {"invalid_id", false, true},
    [LLMQ_INVALID_FIELD] = {"invalid_field", false, true},
    [LLMQ_INVALID_INPUT] = {"invalid_input", false, true},
    [LLMQ_PROMPT_TOO_LARGE] = {"prompt_too_large", false, true},
    [LLMQ_REPLY_TO_DENIED] = {"reply_to_denied", false, true},
    [LLMQ_EXPIRED] = {"expired", false, false},
    [LLMQ_MODEL_MISMATCH] = {"model_mismatch", true, true},
    [LLMQ_CONTEXT_EXCEEDED] = {"context_exceeded", false, true},
    [LLMQ_BACKEND_ERROR] = {"backend_error", true, false},
    [LLMQ_BACKEND_FAILED] = {"backend_failed", true, false},
    [LLMQ_INTERNAL] = {"internal", true, false},
    [LLMQ_CANCELLED] = {"cancelled", false, false},
};

const char *llmq_code_name(enum llmq_code code)
{
    if ((unsigned)code >= LLMQ_CODE_COUNT)
        return "internal";
    return code_table[code].name;
}

bool llmq_code_retryable(enum llmq_code code)
{
    return (unsigned)code < LLMQ_CODE_COUNT && code_table[code].retryable;
}

bool llmq_code_dead_letters(enum llmq_code code)
{
    return (unsigned)code < LLMQ_CODE_COUNT && code_table[code].dead_letter;
}
