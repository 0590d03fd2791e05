/* cli_steer.c — the steering flags of `llmq submit` and `llmq batch`
 * (--lane, --logprobs, --lora, --chunk-ms) and the CLI's own check of the
 * job fields they set, worded as a worker words its verdicts. */
#include "cli_steer.h"

#include <stdio.h>
#include <string.h>

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

static enum llmq_code invalid(struct job_verdict *why, const char *message)
{
    why->code = LLMQ_INVALID_FIELD;
    snprintf(why->message, sizeof(why->message), "%s", message);
    return why->code;
}

/* The field `name` of job, when present, is an int in 0..max. */
static bool in_range(const json_t *job, const char *name, json_int_t max)
{
    const json_t *x = json_object_get(job, name);
    return !x || (json_is_integer(x) && json_integer_value(x) >= 0 && json_integer_value(x) <= max);
}

/* One lora entry (index i); `names` holds the entries before it. */
static enum llmq_code check_lora_entry(const json_t *lora, size_t i, struct job_verdict *why)
{
    char message[sizeof(why->message)];
    const json_t *entry = json_array_get(lora, i);
    const json_t *name = json_object_get(entry, "name");
    const json_t *scale = json_object_get(entry, "scale");
    const char *problem = NULL, *where = "";
    if (!json_is_object(entry))
        problem = "must be a map";
    else if (!name)
        problem = "missing", where = ".name";
    else if (!json_is_string(name) || json_string_length(name) == 0 ||
             strlen(json_string_value(name)) != json_string_length(name))
        problem = "must be a non-empty string without NUL", where = ".name";
    else if (scale && !json_is_number(scale))
        problem = "must be a number", where = ".scale";
    for (size_t k = 0; !problem && k < i; k++)
        if (json_equal(name, json_object_get(json_array_get(lora, k), "name")))
            problem = "adapter given twice";
    if (!problem)
        return LLMQ_OK;
    snprintf(message, sizeof(message), "lora[%zu]%s: %s", i, where, problem);
    return invalid(why, message);
}

enum llmq_code cli_steer_check(const json_t *job, struct job_verdict *why)
{
    char message[sizeof(why->message)];
    if (!in_range(job, "logprobs", CLI_LOGPROBS_MAX)) {
        snprintf(message, sizeof(message), "logprobs: must be an integer between 0 and %d",
                 CLI_LOGPROBS_MAX);
        return invalid(why, message);
    }
    const json_t *lora = json_object_get(job, "lora");
    if (lora && !json_is_array(lora))
        return invalid(why, "lora: must be an array of {name, scale} maps");
    if (json_array_size(lora) > CLI_LORA_MAX) {
        snprintf(message, sizeof(message), "lora: at most %d {name, scale} maps (got %zu)",
                 CLI_LORA_MAX, json_array_size(lora));
        return invalid(why, message);
    }
    for (size_t i = 0; i < json_array_size(lora); i++)
        if (check_lora_entry(lora, i, why) != LLMQ_OK)
            return why->code;
    if (!in_range(job, "chunk_ms", CLI_CHUNK_MS_MAX)) {
        snprintf(message, sizeof(message), "chunk_ms: must be an integer between 0 and %d",
                 CLI_CHUNK_MS_MAX);
        return invalid(why, message);
    }
    return LLMQ_OK;
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
    if (rc == 0 && (!s->fields || cli_steer_check(s->fields, &why) == LLMQ_OK))
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
