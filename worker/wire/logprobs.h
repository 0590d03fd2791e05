/* logprobs.h — one log-probability entry of wire contract v1, packed as
 * msgpack: [token, logprob, [[token, logprob], ...]] (schemas/spec.md,
 * "Log-probabilities"). Entries are packed as they are read, concatenated,
 * and handed to reply.h as a struct reply_logprobs. */
#ifndef LLMQ_LOGPROBS_H
#define LLMQ_LOGPROBS_H

#include <msgpack.h>
#include <stddef.h>

/* A token and its log-probability. */
struct logprob_token {
    const char *bytes; /* the token's bytes (not NUL-terminated) */
    size_t len;
    double logprob; /* written as a float32 */
};

/* Append one entry to `out`: the token (a str when its bytes are valid UTF-8
 * without NUL, else a bin), its logprob, and its `n_top` alternatives.
 * 0, or -1 with nothing appended. */
int logprobs_pack_entry(msgpack_sbuffer *out, const struct logprob_token *token,
                        const struct logprob_token *top, size_t n_top);

#endif
