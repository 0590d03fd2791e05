/* reply.h — encode the reply messages of wire contract v1 (msgpack maps):
 * chunk, done, error.
 *
 * Each encoder appends one complete msgpack map to a msgpack_sbuffer that
 * the caller owns (and may reuse after msgpack_sbuffer_clear). Field order is
 * fixed so the output is byte-stable and matches schemas/vectors. */
#ifndef LLMQ_REPLY_H
#define LLMQ_REPLY_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "codes.h"

struct reply_usage {
    int64_t prompt_tokens;
    int64_t completion_tokens;
};

struct reply_timings {
    double queue_ms; /* from the job's Kafka timestamp to its request start */
    double ttft_ms;  /* from request start to the first token */
    double gen_ms;   /* from the first token to the end */
    double tokens_per_s;
};

/* A run's log-probabilities: `count` entries, each already packed as
 * msgpack by logprobs_pack_entry() and concatenated in `data`. */
struct reply_logprobs {
    const uint8_t *data;
    size_t len;
    size_t count;
};

struct reply_done {
    const char *id;
    const char *run;
    const char *text;
    size_t text_len;
    const struct reply_logprobs *logprobs; /* NULL: no logprobs field */
    const char *finish;                    /* "stop", "length", ... */
    struct reply_usage usage;
    struct reply_timings timings;
    const char *worker;
    const uint8_t *meta; /* raw msgpack or NULL: then meta is omitted */
    size_t meta_len;
};

struct reply_error {
    const char *id;  /* NULL: the job's id could not be read (the reply still carries "") */
    const char *run; /* NULL: the job never ran (rejected before a run) -> "" */
    enum llmq_code code;
    const char *message;
    const char *worker;
    const char *partial_text; /* NULL: no partial_text field (the job was not generating) */
    size_t partial_text_len;
    const uint8_t *meta;
    size_t meta_len;
};

/* `logprobs` NULL: the chunk has no logprobs field. */
int reply_encode_chunk(msgpack_sbuffer *out, const char *id, const char *run, uint64_t seq,
                       const char *text, size_t text_len, const struct reply_logprobs *logprobs);
/* Each returns 0, or -1 with nothing appended. */
int reply_encode_done(msgpack_sbuffer *out, const struct reply_done *done);
int reply_encode_error(msgpack_sbuffer *out, const struct reply_error *err);

#endif
