/* fuzz_job.c — job messages from random bytes: job_decode() and job_admit() must never
 * crash, leak or overread, their verdicts must be consistent with the wire contract
 * (schemas/spec.md), and what the worker builds from an accepted job (the llama-server
 * request) or a rejected one (the error reply echoing its meta) must be well formed.
 * Seed it with schemas/vectors/ (see FINDINGS.md for the long run). */
#include <jansson.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "job.h"
#include "llama_proto.h"
#include "reply.h"

#define NOW_MS 1700000000000LL

static const char *const allowlist[] = {"llmq.replies", "team.*"};
static const struct job_policy policy = {
    .max_prompt_bytes = 1024,
    .reply_topics = allowlist,
    .n_reply_topics = 2,
    .default_reply_topic = "llmq.replies",
    .model = "tiny",
};

static void check(bool ok)
{
    if (!ok)
        abort();
}

static bool verdict_ok(const struct job_verdict *why, enum llmq_code code)
{
    return why->code == code && memchr(why->message, '\0', sizeof(why->message)) &&
           (code == LLMQ_OK || why->message[0] != '\0');
}

static bool is_decode_code(enum llmq_code code)
{
    switch (code) {
    case LLMQ_MALFORMED:
    case LLMQ_UNSUPPORTED_VERSION:
    case LLMQ_INVALID_ID:
    case LLMQ_INVALID_FIELD:
    case LLMQ_INVALID_INPUT:
    case LLMQ_INTERNAL: /* out of memory */
        return true;
    default:
        return false;
    }
}

static bool is_admit_code(enum llmq_code code)
{
    return code == LLMQ_REPLY_TO_DENIED || code == LLMQ_PROMPT_TOO_LARGE ||
           code == LLMQ_MODEL_MISMATCH || code == LLMQ_EXPIRED;
}

/* What a decoded job promises its users, whatever the verdict. */
static void check_readable_parts(const struct job *job)
{
    if (job->id) {
        size_t n = strlen(job->id);
        check(n >= 1 && n <= JOB_ID_MAX);
    }
    if (job->reply_to)
        check(job->reply_to[0] != '\0');
    check((job->meta == NULL) == (job->meta_len == 0));
}

static void check_accepted(const struct job *job)
{
    check(job->id != NULL);
    check((job->prompt != NULL) != (job->messages != NULL));
    if (job->prompt)
        check(strlen(job->prompt) == job->prompt_len);
    if (job->messages) {
        check(job->n_messages >= 1);
        for (size_t i = 0; i < job->n_messages; i++)
            check(job->messages[i].role && job->messages[i].role[0] && job->messages[i].content);
    }
    check(job->n_stop <= 16);
    for (size_t i = 0; i < job->n_stop; i++)
        check(job->stop[i] && job->stop[i][0]);
    check(!(job->grammar && job->json_schema_json));
    if (job->max_tokens.set)
        check(job->max_tokens.value >= 1);
    if (job->json_schema_json) {
        json_t *schema = json_loads(job->json_schema_json, JSON_DECODE_ANY, NULL);
        check(schema != NULL);
        json_decref(schema);
    }

    /* The request the worker would send llama-server is JSON with a capped budget. */
    const struct llama_caps caps = {.max_tokens = 64, .default_max_tokens = 16};
    char *body = llama_request_json(job, &caps);
    check(body != NULL);
    json_t *req = json_loads(body, 0, NULL);
    check(json_is_object(req));
    free(body);
    json_decref(req);
}

/* The error reply of a rejected job is exactly one msgpack map. */
static void check_error_reply(const struct job *job, enum llmq_code code, const char *message)
{
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    struct reply_error e = {
        .id = job->id,
        .code = code,
        .message = message,
        .worker = "fuzz",
        .meta = job->meta,
        .meta_len = job->meta_len,
    };
    check(reply_encode_error(&buf, &e) == 0);
    msgpack_unpacked msg;
    msgpack_unpacked_init(&msg);
    size_t off = 0;
    check(msgpack_unpack_next(&msg, buf.data, buf.size, &off) == MSGPACK_UNPACK_SUCCESS);
    check(off == buf.size && msg.data.type == MSGPACK_OBJECT_MAP);
    msgpack_unpacked_destroy(&msg);
    msgpack_sbuffer_destroy(&buf);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    /* a heap copy of exactly the input, so ASan sees any read past it */
    unsigned char *copy = malloc(size ? size : 1);
    check(copy != NULL);
    memcpy(copy, data, size);

    struct job job;
    struct job_verdict why;
    memset(&why, 0xAA, sizeof(why)); /* the decoder must set it, whatever the input */
    enum llmq_code code = job_decode(copy, size, &job, &why);
    check(verdict_ok(&why, code));
    check(code == LLMQ_OK || is_decode_code(code));
    check_readable_parts(&job);

    if (code == LLMQ_OK) {
        check_accepted(&job);
        memset(&why, 0xAA, sizeof(why));
        code = job_admit(&job, &policy, NOW_MS, &why);
        check(verdict_ok(&why, code));
        check(code == LLMQ_OK || is_admit_code(code));
        const char *topic = job_reply_topic(&job, &policy);
        check(topic != NULL);
        if (code != LLMQ_REPLY_TO_DENIED)
            check(job_reply_topic_allowed(&policy, topic));
        if (code == LLMQ_REPLY_TO_DENIED)
            check(!job_reply_topic_allowed(&policy, topic));
    }
    if (code != LLMQ_OK)
        check_error_reply(&job, code, why.message);
    job_free(&job);
    free(copy);
    return 0;
}
