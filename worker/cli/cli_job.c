/* cli_job.c — complete a JSON job object, pack it as msgpack and run the
 * worker's job_decode() on the bytes, so that a job the worker would reject
 * is reported here, with the worker's words, and never sent. */
#include "cli_job.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_json.h"

#define JOB_VERSION 1

static enum llmq_code refuse(struct job_verdict *why, enum llmq_code code, const char *message)
{
    why->code = code;
    snprintf(why->message, sizeof(why->message), "%s", message);
    return code;
}

/* Add the fields the CLI fills in. Returns LLMQ_OK or a verdict. */
static enum llmq_code complete(json_t *obj, const char *default_id, const char *reply_topic,
                               struct job_verdict *why)
{
    int rc = 0;
    if (!json_object_get(obj, "v"))
        rc |= json_object_set_new(obj, "v", json_integer(JOB_VERSION));
    if (!json_object_get(obj, "id") && default_id)
        rc |= json_object_set_new(obj, "id", json_string(default_id));
    json_t *reply_to = json_object_get(obj, "reply_to");
    if (!reply_to) {
        rc |= json_object_set_new(obj, "reply_to", json_string(reply_topic));
    } else if (json_is_string(reply_to) && strcmp(json_string_value(reply_to), reply_topic) != 0) {
        char message[sizeof(why->message)];
        snprintf(message, sizeof(message),
                 "reply_to: names %.80s, but replies are read from %.80s (--reply-topic)",
                 json_string_value(reply_to), reply_topic);
        return refuse(why, LLMQ_INVALID_FIELD, message);
    }
    return rc ? refuse(why, LLMQ_INTERNAL, "out of memory") : LLMQ_OK;
}

enum llmq_code cli_job_build(json_t *obj, const char *default_id, const char *reply_topic,
                             struct cli_job *out, struct job_verdict *why)
{
    memset(out, 0, sizeof(*out));
    why->code = LLMQ_OK;
    why->message[0] = '\0';
    if (!json_is_object(obj))
        return refuse(why, LLMQ_MALFORMED, "a job must be a JSON object");
    if (complete(obj, default_id, reply_topic, why) != LLMQ_OK)
        return why->code;

    msgpack_packer pk;
    msgpack_sbuffer_init(&out->wire);
    msgpack_packer_init(&pk, &out->wire, msgpack_sbuffer_write);
    if (cli_json_pack(&pk, obj) != 0) {
        cli_job_free(out);
        return refuse(why, LLMQ_INTERNAL, "out of memory");
    }

    struct job job;
    enum llmq_code code = job_decode(out->wire.data, out->wire.size, &job, why);
    if (code == LLMQ_OK) {
        out->id = strdup(job.id);
        if (!out->id)
            code = refuse(why, LLMQ_INTERNAL, "out of memory");
    }
    job_free(&job);
    if (code != LLMQ_OK)
        cli_job_free(out);
    return code;
}

void cli_job_free(struct cli_job *job)
{
    free(job->id);
    msgpack_sbuffer_destroy(&job->wire);
    memset(job, 0, sizeof(*job));
}
