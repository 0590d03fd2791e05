/* gave_up.h — every message, or part of one, the worker gives up on: one
 * labelled counter per kind (llmq_gave_up_total{what,reason}) and one log
 * line naming the job, the topic and the reason. FINDINGS.md ("Nothing
 * given up in silence") lists where each kind happens and what becomes of
 * the job's offset. */
#ifndef LLMQ_GAVE_UP_H
#define LLMQ_GAVE_UP_H

#include <stdint.h>

#include "log.h"

enum gave_up_kind {
    GAVE_UP_CHUNK_NOT_PRODUCED,  /* chunk, refused by the producer */
    GAVE_UP_CHUNK_NOT_ACKED,     /* chunk, librdkafka gave up on it */
    GAVE_UP_HEARTBEAT,           /* heartbeat not produced or not acknowledged */
    GAVE_UP_REPLY_NO_ADDRESS,    /* terminal reply: no id, or reply_to denied or unusable */
    GAVE_UP_REPLY_NOT_ENCODED,   /* terminal reply could not be encoded (out of memory) */
    GAVE_UP_NOT_KEPT,            /* terminal or dead-letter message: no memory to keep it */
    GAVE_UP_REPLY_NEVER_TAKEN,   /* terminal reply the broker will never take */
    GAVE_UP_DEAD_NEVER_TAKEN,    /* dead-letter copy the broker will never take */
    GAVE_UP_REPLY_TRIMMED,       /* terminal reply sent without its logprobs/partial_text */
    GAVE_UP_REPLY_TOO_LARGE,     /* terminal reply replaced by a small internal error */
    GAVE_UP_UNACKED_AT_SHUTDOWN, /* terminal or dead-letter message failed while stopping */
    GAVE_UP_TEXT_OUT_OF_MEMORY,  /* generated text or logprobs not kept for the done */
    GAVE_UP_JOB_NOT_TRACKED,     /* job message not tracked (out of memory): redelivered later */
    GAVE_UP_COUNT
};

/* The labels of one kind. */
struct gave_up_labels {
    const char *what;   /* chunk, heartbeat, reply, dead_letter, message, text, job */
    const char *reason; /* snake_case */
};

/* The labels of `kind` (< GAVE_UP_COUNT). */
struct gave_up_labels gave_up_labels_of(enum gave_up_kind kind);

/* Count one give-up of `kind` in counts[kind] and log it as one error line:
 * "job <id>: <detail>; gave up <what> (<reason>), topic <topic>", the
 * detail printf-formatted from fmt. job_id and topic may be NULL. */
#if defined(__GNUC__)
__attribute__((format(printf, 6, 7)))
#endif
void gave_up(uint64_t counts[GAVE_UP_COUNT], const struct logger *log, enum gave_up_kind kind,
             const char *job_id, const char *topic, const char *fmt, ...);

#endif
