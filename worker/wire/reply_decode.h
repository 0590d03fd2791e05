/* reply_decode.h — read the reply messages of wire contract v1 (chunk, done,
 * error) back from msgpack: the reader's side of reply.h.
 *
 * Every field the spec lists for a reply's type is required with its type
 * (meta excepted); unknown fields are skipped, and an unknown `finish` value
 * or error `code` is kept as text (spec.md, Evolution). A chunk or done
 * reply must name a run; an error's run may be "" (the job never ran). On
 * success every string is an owned, NUL-terminated copy (never NULL). */
#ifndef LLMQ_REPLY_DECODE_H
#define LLMQ_REPLY_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "reply.h"

enum reply_type { REPLY_CHUNK, REPLY_DONE, REPLY_ERROR };

struct reply_msg {
    enum reply_type type;
    char *id;     /* "" when the worker could not read the job's id */
    char *run;    /* "" for an error of a job that never ran */
    uint64_t seq; /* chunk */
    char *text;   /* chunk, done; "" for an error */
    size_t text_len;
    char *finish;                 /* done; "" otherwise */
    struct reply_usage usage;     /* done; zero otherwise */
    struct reply_timings timings; /* done; zero otherwise */
    char *worker;                 /* done, error; "" for a chunk */
    char *code;                   /* error: the code's wire name; "" otherwise */
    char *message;                /* error; "" otherwise */
    bool retryable;               /* error */
    uint8_t *meta;                /* done, error: the meta map as msgpack, NULL when absent */
    size_t meta_len;
};

/* Decode one reply message. Returns 0, or -1 with a message in err naming
 * the field at fault; `msg` then holds nothing to free. */
int reply_decode(const void *buf, size_t len, struct reply_msg *msg, char *err, size_t err_len);

void reply_msg_free(struct reply_msg *msg);

/* "chunk", "done" or "error". */
const char *reply_type_name(enum reply_type type);

#endif
