/* job.h — a v1 generation job: decode msgpack into a validated struct job,
 * then admit it against the worker's policy.
 *
 * Two steps, because they fail differently:
 *   job_decode()  checks the message itself (types, ranges, required
 *                 fields) and needs nothing but the bytes;
 *   job_admit()   checks it against this worker (allowlist, prompt size,
 *                 deadline, model) and needs the policy and the clock.
 * On failure both still fill what they could read (id, reply_to, meta), so
 * the caller can address an error reply; `why` names the code and a
 * human-readable message. Every string in a struct job is an owned,
 * NUL-terminated copy: the Kafka message may be freed right after decoding. */
#ifndef LLMQ_JOB_H
#define LLMQ_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codes.h"

#define JOB_ID_MAX 128

struct job_message {
    char *role;
    char *content;
};

/* Optional sampling fields: `set` says whether the job gave a value. */
struct job_opt_int {
    bool set;
    int64_t value;
};
struct job_opt_real {
    bool set;
    double value;
};

#define JOB_LOGPROBS_MAX 20
#define JOB_LORA_MAX     16
#define JOB_CHUNK_MS_MAX 60000

/* One adapter a job asks for, by its name in the worker's llama.lora. */
struct job_lora {
    char *name;
    double scale; /* default 1.0 */
};

struct job {
    char *id;     /* 1..JOB_ID_MAX bytes; NULL when unreadable */
    char *prompt; /* raw completion; NULL for a chat job */
    size_t prompt_len;
    struct job_message *messages; /* chat; NULL for a prompt job */
    size_t n_messages;

    struct job_opt_int max_tokens, top_k, seed;
    struct job_opt_real temperature, top_p, min_p, repeat_penalty;
    char **stop; /* n_stop strings */
    size_t n_stop;
    char *grammar;          /* GBNF text or NULL */
    char *json_schema_json; /* the json_schema map re-encoded as JSON text, or NULL */

    bool stream;                    /* default true */
    char *reply_to;                 /* NULL: the worker's default reply topic */
    struct job_opt_int deadline_ms; /* absolute Unix ms */
    char *model;                    /* NULL: any */

    int logprobs;          /* 0..JOB_LOGPROBS_MAX alternatives per token; 0 = none */
    struct job_lora *lora; /* adapters asked for (n_lora), NULL for the base model */
    size_t n_lora;
    struct job_opt_int chunk_ms; /* coalescing override, 0..60000 */

    uint8_t *meta; /* the meta map as raw msgpack bytes, echoed verbatim; NULL if absent */
    size_t meta_len;
};

struct job_verdict {
    enum llmq_code code;
    char message[256];
};

/* What job_admit() checks against. Arrays are borrowed, not copied. */
struct job_policy {
    size_t max_prompt_bytes;         /* prompt, or the sum of message contents */
    const char *const *reply_topics; /* allowlist; an entry ending in '*' is a prefix */
    size_t n_reply_topics;           /* 0: only default_reply_topic is allowed */
    const char *default_reply_topic;
    const char *model; /* the model this worker serves; NULL: skip the check */
    /* The worker's own topics (jobs subscriptions, "^regex" ones included,
     * dead-letter, metrics, control): no allowlist entry ever matches them,
     * nor a topic starting with "__", so a job cannot aim its replies at the
     * fleet. */
    const char *const *own_topics;
    size_t n_own_topics;
    const char *const *lora_names; /* the worker's adapters (llama.lora), by name */
    size_t n_lora_names;
};

/* Decode one job message. Returns LLMQ_OK or the rejection code (also in
 * why->code). Always call job_free() afterwards, whatever the result. */
enum llmq_code job_decode(const void *buf, size_t len, struct job *job, struct job_verdict *why);

/* Policy checks on a decoded job, in a fixed order: reply_to, prompt size,
 * model, lora names, deadline. `now_ms` is the Unix time in ms. */
enum llmq_code job_admit(const struct job *job, const struct job_policy *policy, int64_t now_ms,
                         struct job_verdict *why);

/* The reply topic a job's replies go to (its reply_to or the default). */
const char *job_reply_topic(const struct job *job, const struct job_policy *policy);

/* Whether `topic` passes the allowlist of `policy`: the default reply topic,
 * or a topic an entry names that is neither one of own_topics nor "__*". */
bool job_reply_topic_allowed(const struct job_policy *policy, const char *topic);

void job_free(struct job *job);

#endif
