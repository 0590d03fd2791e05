/* cli_steer.c — the steering flags of `llmq submit` and `llmq batch`
 * (--lane, --logprobs, --lora, --chunk-ms). The job fields they set are
 * checked by the wire library's decoder, so a flag is refused with the
 * words a worker would use. */
#include "cli_steer.h"

#include <stdio.h>
#include <string.h>

#include "cli_job.h"
#include "kafka_names.h"

const char cli_steer_help[] =
    "      --lane TOPIC        send to the jobs topic of a priority lane, e.g.\n"
    "                          llmq.jobs.urgent (workers weigh lanes: kafka.lanes)\n"
    "      --logprobs N        report the log-probability of each token and its N\n"
    "                          likeliest alternatives (0..20)\n"
    "      --lora NAME[:SCALE] apply the worker's LoRA adapter NAME (scale default\n"
    "                          1.0); repeatable, at most 16\n"
    "      --chunk-ms N        merge streamed output for at most N ms per chunk\n"
    "                          (0..60000; 0: a chunk per token)\n";

/* Check the fields the flags set as a worker would: a probe job carrying
 * them goes through cli_job_build(), that is the wire's job_decode(). */
static enum llmq_code check_fields(json_t *fields, struct job_verdict *why)
{
    json_t *probe = json_pack("{s:s, s:s}", "id", "steer-check", "prompt", "-");
    enum llmq_code code = LLMQ_INTERNAL;
    snprintf(why->message, sizeof(why->message), "out of memory");
    if (probe && json_object_update(probe, fields) == 0) {
        struct cli_job built;
        code = cli_job_build(probe, NULL, "llmq.replies", &built, why);
        if (code == LLMQ_OK)
            cli_job_free(&built);
    }
    json_decref(probe);
    why->code = code;
    return code;
}

/* --lora NAME[:SCALE] as one {name, scale} entry (scale left out when not given). */
static json_t *lora_entry(const char *arg)
{
    const char *colon = strrchr(arg, ':');
    double scale;
    if (colon && !cli_parse_real(colon + 1, &scale))
        return NULL;
    size_t name_len = colon ? (size_t)(colon - arg) : strlen(arg);
    json_t *entry = json_object();
    if (json_object_set_new(entry, "name", json_stringn(arg, name_len)) != 0 ||
        (colon && json_object_set_new(entry, "scale", json_real(scale)) != 0)) {
        json_decref(entry);
        return NULL;
    }
    return entry;
}

/* Set fields[key] = value (taking it); -1 when value is NULL or out of memory. */
static int set_field(struct cli_steer *s, const char *key, json_t *value)
{
    if (!s->fields)
        s->fields = json_object();
    return value && s->fields && json_object_set_new(s->fields, key, value) == 0 ? 0 : -1;
}

static int add_lora(struct cli_steer *s, const char *arg)
{
    json_t *entry = lora_entry(arg);
    json_t *list = s->fields ? json_object_get(s->fields, "lora") : NULL;
    if (!entry)
        return -1;
    if (!list && set_field(s, "lora", list = json_array()) != 0) {
        json_decref(entry);
        return -1;
    }
    return json_array_append_new(list, entry);
}

static int set_int(struct cli_steer *s, const char *key, const char *arg)
{
    int64_t n;
    return cli_parse_int(arg, &n) ? set_field(s, key, json_integer(n)) : -1;
}

int cli_steer_option(struct cli_steer *s, const char *command, int opt, const char *arg)
{
    int rc;
    if (opt == CLI_OPT_LANE) {
        s->lane = arg;
        rc = kafka_topic_valid(arg, strlen(arg)) ? 0 : -1;
    } else if (opt == CLI_OPT_LOGPROBS || opt == CLI_OPT_CHUNK_MS) {
        rc = set_int(s, opt == CLI_OPT_LOGPROBS ? "logprobs" : "chunk_ms", arg);
    } else if (opt == CLI_OPT_LORA) {
        rc = add_lora(s, arg);
    } else {
        return 1;
    }
    struct job_verdict why = {LLMQ_OK, ""};
    if (rc == 0 && (!s->fields || check_fields(s->fields, &why) == LLMQ_OK))
        return 0;
    static const char *const flags[] = {"--lane", "--logprobs", "--lora", "--chunk-ms"};
    fprintf(stderr, "llmq %s: %s %s: %s\n", command, flags[opt - CLI_OPT_LANE], arg,
            why.code != LLMQ_OK   ? why.message
            : opt == CLI_OPT_LANE ? "not a Kafka topic name"
            : opt == CLI_OPT_LORA ? "expected NAME or NAME:SCALE (SCALE a number)"
                                  : "not an integer");
    return -1;
}

int cli_steer_apply(const struct cli_steer *s, json_t *job)
{
    const char *key;
    json_t *value;
    json_object_foreach(s->fields, key, value)
    {
        if (!json_object_get(job, key) && json_object_set(job, key, value) != 0)
            return -1;
    }
    return 0;
}

const char *cli_steer_topic(const struct cli_steer *s, const struct cli_global *g)
{
    return s->lane ? s->lane : g->jobs_topic;
}

void cli_steer_free(struct cli_steer *s)
{
    json_decref(s->fields);
    s->fields = NULL;
}
