/* job.c — decode a v1 job (msgpack) into a validated struct job, and admit
 * it against the worker's policy. Every rejection carries a code and a
 * message that names the field it is about (schemas/spec.md).
 *
 * When several rules fail, the verdict is the first failure in the order of
 * the field table in spec.md (v, id, prompt/messages, sampling, ...), not the
 * order of the keys in the message: the same job always gets the same code.
 * Admission is in job_admit.c. */
#include "job.h"
#include "job_verdict.h"

#include "kafka_names.h"
#include "mpjson.h"
#include "msgpack_skip.h"

#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JOB_VERSION     1
#define JOB_STOP_MAX    16 /* strings in `stop` */
#define JOB_NESTING_MAX 32 /* containers inside containers (msgpack-c's own limit) */

enum field {
    F_V,
    F_ID,
    F_PROMPT,
    F_MESSAGES,
    F_MAX_TOKENS,
    F_TEMPERATURE,
    F_TOP_P,
    F_TOP_K,
    F_MIN_P,
    F_SEED,
    F_REPEAT_PENALTY,
    F_STOP,
    F_GRAMMAR,
    F_JSON_SCHEMA,
    F_STREAM,
    F_REPLY_TO,
    F_DEADLINE_MS,
    F_MODEL,
    F_META,
    F_LOGPROBS,
    F_LORA,
    F_CHUNK_MS,
    F_COUNT
};

static const char *const field_names[F_COUNT] = {
    [F_V] = "v",
    [F_ID] = "id",
    [F_PROMPT] = "prompt",
    [F_MESSAGES] = "messages",
    [F_MAX_TOKENS] = "max_tokens",
    [F_TEMPERATURE] = "temperature",
    [F_TOP_P] = "top_p",
    [F_TOP_K] = "top_k",
    [F_MIN_P] = "min_p",
    [F_SEED] = "seed",
    [F_REPEAT_PENALTY] = "repeat_penalty",
    [F_STOP] = "stop",
    [F_GRAMMAR] = "grammar",
    [F_JSON_SCHEMA] = "json_schema",
    [F_STREAM] = "stream",
    [F_REPLY_TO] = "reply_to",
    [F_DEADLINE_MS] = "deadline_ms",
    [F_MODEL] = "model",
    [F_META] = "meta",
    [F_LOGPROBS] = "logprobs",
    [F_LORA] = "lora",
    [F_CHUNK_MS] = "chunk_ms",
};

/* The known fields of one job map: where each value is, and which were given twice. */
struct fields {
    const msgpack_object *value[F_COUNT];
    bool repeated[F_COUNT];
};

enum llmq_code job_reject(struct job_verdict *why, enum llmq_code code, const char *fmt, ...)
{
    if (why->code == LLMQ_OK) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(why->message, sizeof why->message, fmt, ap);
        va_end(ap);
        if (n >= (int)sizeof why->message) /* cut: never inside a quoted character */
            utf8_trim_partial(why->message);
        why->code = code;
    }
    return why->code;
}

void job_verdict_clear(struct job_verdict *why)
{
    why->code = LLMQ_OK;
    why->message[0] = '\0';
}

/* ---- value helpers ---------------------------------------------------- */

/* Why `o` is not acceptable text, or NULL when it is. */
static const char *text_problem(const msgpack_object *o, bool non_empty)
{
    if (o->type != MSGPACK_OBJECT_STR)
        return non_empty ? "must be a non-empty string" : "must be a string";
    if (non_empty && o->via.str.size == 0)
        return "must be a non-empty string";
    if (!utf8_text_valid(o->via.str.ptr, o->via.str.size))
        return "must be valid UTF-8 without NUL bytes";
    return NULL;
}

static bool str_equals(const msgpack_object *o, const char *s)
{
    size_t n = strlen(s);
    return o->type == MSGPACK_OBJECT_STR && o->via.str.size == n &&
           memcmp(o->via.str.ptr, s, n) == 0;
}

/* An owned, NUL-terminated copy of a string object (already checked). */
static char *text_copy(const msgpack_object *o, struct job_verdict *why)
{
    char *s = malloc((size_t)o->via.str.size + 1);
    if (!s) {
        job_reject(why, LLMQ_INTERNAL, "out of memory");
        return NULL;
    }
    if (o->via.str.size)
        memcpy(s, o->via.str.ptr, o->via.str.size);
    s[o->via.str.size] = '\0';
    return s;
}

static bool int_value(const msgpack_object *o, int64_t *out)
{
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX) {
        *out = (int64_t)o->via.u64;
        return true;
    }
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *out = o->via.i64;
        return true;
    }
    return false;
}

/* A finite number: a float of either width, or an integer. */
static bool real_value(const msgpack_object *o, double *out)
{
    switch (o->type) {
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        *out = o->via.f64;
        break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        *out = (double)o->via.u64;
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        *out = (double)o->via.i64;
        break;
    default:
        return false;
    }
    return isfinite(*out);
}

/* ---- field decoders ----------------------------------------------------- */

/* Index the known fields of the job map. Keys must be strings; unknown
 * fields are ignored (evolution rule). */
static bool fields_index(const msgpack_object_map *map, struct fields *fs, struct job_verdict *why)
{
    memset(fs, 0, sizeof *fs);
    for (uint32_t k = 0; k < map->size; k++) {
        const msgpack_object *key = &map->ptr[k].key;
        if (key->type != MSGPACK_OBJECT_STR) {
            job_reject(why, LLMQ_MALFORMED, "job map keys must be strings");
            return false;
        }
        for (int f = 0; f < F_COUNT; f++) {
            if (str_equals(key, field_names[f])) {
                fs->repeated[f] = fs->value[f] != NULL;
                fs->value[f] = &map->ptr[k].val;
                break;
            }
        }
    }
    return true;
}

/* The value of field f, or NULL when absent or given twice (rejected here). */
static const msgpack_object *field(const struct fields *fs, enum field f, struct job_verdict *why)
{
    if (fs->repeated[f]) {
        job_reject(why, LLMQ_INVALID_FIELD, "%s: given more than once", field_names[f]);
        return NULL;
    }
    return fs->value[f];
}

static void decode_version(const struct fields *fs, struct job_verdict *why)
{
    const msgpack_object *o = field(fs, F_V, why);
    int64_t v;
    if (!o)
        job_reject(why, LLMQ_UNSUPPORTED_VERSION, "v: missing; this worker speaks v %d",
                   JOB_VERSION);
    else if (!int_value(o, &v) || v != JOB_VERSION)
        job_reject(why, LLMQ_UNSUPPORTED_VERSION, "v: must be the integer %d", JOB_VERSION);
}

static void decode_id(const struct fields *fs, struct job *job, struct job_verdict *why)
{
    const msgpack_object *o = field(fs, F_ID, why);
    const char *problem;
    if (!o) {
        job_reject(why, LLMQ_INVALID_ID, "id: missing");
    } else if ((problem = text_problem(o, true))) {
        job_reject(why, LLMQ_INVALID_ID, "id: %s", problem);
    } else if (o->via.str.size > JOB_ID_MAX) {
        job_reject(why, LLMQ_INVALID_ID, "id: must be at most %d bytes (got %" PRIu32 ")",
                   JOB_ID_MAX, o->via.str.size);
    } else {
        job->id = text_copy(o, why);
    }
}

/* One chat message: a map with a non-empty string role and a string content. */
static bool decode_message(const msgpack_object *o, uint32_t index, struct job_message *msg,
                           struct job_verdict *why)
{
    const msgpack_object *role = NULL, *content = NULL;
    const char *problem;

    if (o->type != MSGPACK_OBJECT_MAP) {
        job_reject(why, LLMQ_INVALID_INPUT, "messages[%" PRIu32 "]: must be a map", index);
        return false;
    }
    for (uint32_t k = 0; k < o->via.map.size; k++) {
        const msgpack_object *key = &o->via.map.ptr[k].key;
        const msgpack_object **slot = str_equals(key, "role")      ? &role
                                      : str_equals(key, "content") ? &content
                                                                   : NULL;
        if (slot && *slot) {
            job_reject(why, LLMQ_INVALID_INPUT, "messages[%" PRIu32 "].%s: given more than once",
                       index, slot == &role ? "role" : "content");
            return false;
        }
        if (slot)
            *slot = &o->via.map.ptr[k].val;
    }
    if (!role || (problem = text_problem(role, true))) {
        job_reject(why, LLMQ_INVALID_INPUT, "messages[%" PRIu32 "].role: %s", index,
                   role ? problem : "missing");
        return false;
    }
    if (!content || (problem = text_problem(content, false))) {
        job_reject(why, LLMQ_INVALID_INPUT, "messages[%" PRIu32 "].content: %s", index,
                   content ? problem : "missing");
        return false;
    }
    msg->role = text_copy(role, why);
    msg->content = text_copy(content, why);
    return msg->role && msg->content;
}

static void decode_messages(const msgpack_object *o, struct job *job, struct job_verdict *why)
{
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size == 0) {
        job_reject(why, LLMQ_INVALID_INPUT, "messages: must be a non-empty array of maps");
        return;
    }
    job->messages = calloc(o->via.array.size, sizeof *job->messages);
    if (!job->messages) {
        job_reject(why, LLMQ_INTERNAL, "out of memory");
        return;
    }
    job->n_messages = o->via.array.size;
    for (uint32_t k = 0; k < o->via.array.size; k++)
        if (!decode_message(&o->via.array.ptr[k], k, &job->messages[k], why))
            return;
}

/* Exactly one of prompt / messages. */
static void decode_input(const struct fields *fs, struct job *job, struct job_verdict *why)
{
    const msgpack_object *prompt = field(fs, F_PROMPT, why);
    const msgpack_object *messages = field(fs, F_MESSAGES, why);
    const char *problem;

    if (prompt && messages) {
        job_reject(why, LLMQ_INVALID_INPUT, "prompt, messages: give one, not both");
    } else if (prompt) {
        if ((problem = text_problem(prompt, false))) {
            job_reject(why, LLMQ_INVALID_INPUT, "prompt: %s", problem);
        } else {
            job->prompt = text_copy(prompt, why);
            job->prompt_len = prompt->via.str.size;
        }
    } else if (messages) {
        decode_messages(messages, job, why);
    } else {
        job_reject(why, LLMQ_INVALID_INPUT, "prompt, messages: one of them is required");
    }
}

/* An optional integer field in [min, max] (INT64_MIN..INT64_MAX: any signed
 * 64-bit value). */
static void decode_int(const struct fields *fs, enum field f, int64_t min, int64_t max,
                       struct job_opt_int *dst, struct job_verdict *why)
{
    const msgpack_object *o = field(fs, f, why);
    int64_t v;
    if (!o)
        return;
    if (!int_value(o, &v) || v < min || v > max) {
        if (min == INT64_MIN)
            job_reject(why, LLMQ_INVALID_FIELD, "%s: must be a signed 64-bit integer",
                       field_names[f]);
        else if (max == INT64_MAX)
            job_reject(why, LLMQ_INVALID_FIELD, "%s: must be an integer >= %" PRId64,
                       field_names[f], min);
        else
            job_reject(why, LLMQ_INVALID_FIELD,
                       "%s: must be an integer between %" PRId64 " and %" PRId64, field_names[f],
                       min, max);
        return;
    }
    dst->set = true;
    dst->value = v;
}

/* An optional number field in [min, max] (max INFINITY: no upper bound). */
static void decode_real(const struct fields *fs, enum field f, double min, double max,
                        struct job_opt_real *dst, struct job_verdict *why)
{
    const msgpack_object *o = field(fs, f, why);
    double v;
    if (!o)
        return;
    if (!real_value(o, &v) || v < min || v > max) {
        if (isinf(max))
            job_reject(why, LLMQ_INVALID_FIELD, "%s: must be a number >= %g", field_names[f], min);
        else
            job_reject(why, LLMQ_INVALID_FIELD, "%s: must be a number between %g and %g",
                       field_names[f], min, max);
        return;
    }
    dst->set = true;
    dst->value = v;
}

static void decode_stop(const struct fields *fs, struct job *job, struct job_verdict *why)
{
    const msgpack_object *o = field(fs, F_STOP, why);
    if (!o)
        return;
    if (o->type != MSGPACK_OBJECT_ARRAY) {
        job_reject(why, LLMQ_INVALID_FIELD, "stop: must be an array of strings");
        return;
    }
    if (o->via.array.size > JOB_STOP_MAX) {
        job_reject(why, LLMQ_INVALID_FIELD, "stop: at most %d strings (got %" PRIu32 ")",
                   JOB_STOP_MAX, o->via.array.size);
        return;
    }
    for (uint32_t k = 0; k < o->via.array.size; k++) {
        const char *problem = text_problem(&o->via.array.ptr[k], true);
        if (problem) {
            job_reject(why, LLMQ_INVALID_FIELD, "stop[%" PRIu32 "]: %s", k, problem);
            return;
        }
    }
    if (o->via.array.size == 0)
        return;
    job->stop = calloc(o->via.array.size, sizeof *job->stop);
    if (!job->stop) {
        job_reject(why, LLMQ_INTERNAL, "out of memory");
        return;
    }
    job->n_stop = o->via.array.size;
    for (uint32_t k = 0; k < o->via.array.size; k++)
        job->stop[k] = text_copy(&o->via.array.ptr[k], why);
}

/* An optional text field (grammar, model). */
static void decode_text(const struct fields *fs, enum field f, bool non_empty, char **dst,
                        struct job_verdict *why)
{
    const msgpack_object *o = field(fs, f, why);
    const char *problem;
    if (!o)
        return;
    if ((problem = text_problem(o, non_empty)))
        job_reject(why, LLMQ_INVALID_FIELD, "%s: %s", field_names[f], problem);
    else
        *dst = text_copy(o, why);
}

static void decode_json_schema(const struct fields *fs, struct job *job, struct job_verdict *why)
{
    const msgpack_object *o = field(fs, F_JSON_SCHEMA, why);
    const char *problem = NULL; /* stays NULL when only memory ran out */
    json_t *schema;
    if (!o)
        return;
    if (o->type != MSGPACK_OBJECT_MAP) {
        job_reject(why, LLMQ_INVALID_FIELD, "json_schema: must be a map");
        return;
    }
    schema = mpjson_from_msgpack(o, MPJSON_EXACT, &problem);
    if (!schema) {
        if (problem)
            job_reject(why, LLMQ_INVALID_FIELD, "json_schema: %s", problem);
        else
            job_reject(why, LLMQ_INTERNAL, "out of memory");
        return;
    }
    job->json_schema_json = json_dumps(schema, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(schema);
    if (!job->json_schema_json)
        job_reject(why, LLMQ_INTERNAL, "out of memory");
}

static void decode_stream(const struct fields *fs, struct job *job, struct job_verdict *why)
{
    const msgpack_object *o = field(fs, F_STREAM, why);
    if (!o)
        return;
    if (o->type != MSGPACK_OBJECT_BOOLEAN)
        job_reject(why, LLMQ_INVALID_FIELD, "stream: must be a boolean");
    else
        job->stream = o->via.boolean;
}

/* A reply_to present but unusable (given twice, not a topic name) leaves
 * the job without a reply topic: its producer's is unknown. */
static void decode_reply_to(const struct fields *fs, struct job *job, struct job_verdict *why)
{
    job->reply_to_unusable = fs->repeated[F_REPLY_TO];
    const msgpack_object *o = field(fs, F_REPLY_TO, why);
    if (!o)
        return;
    if (o->type != MSGPACK_OBJECT_STR || !kafka_topic_valid(o->via.str.ptr, o->via.str.size)) {
        job->reply_to_unusable = true;
        job_reject(why, LLMQ_INVALID_FIELD,
                   "reply_to: must be a Kafka topic name (1..%d of [a-zA-Z0-9._-])",
                   KAFKA_TOPIC_MAX);
    } else {
        job->reply_to = text_copy(o, why);
    }
}

/* meta is opaque: re-packed as it came, to be echoed in the terminal reply. */
static void decode_meta(const struct fields *fs, struct job *job, struct job_verdict *why)
{
    const msgpack_object *o = field(fs, F_META, why);
    msgpack_sbuffer sb;
    msgpack_packer pk;
    if (!o)
        return;
    if (o->type != MSGPACK_OBJECT_MAP) {
        job_reject(why, LLMQ_INVALID_FIELD, "meta: must be a map");
        return;
    }
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    if (msgpack_pack_object(&pk, *o) != 0) {
        msgpack_sbuffer_destroy(&sb);
        job_reject(why, LLMQ_INTERNAL, "out of memory");
        return;
    }
    job->meta_len = sb.size;
    job->meta = (uint8_t *)msgpack_sbuffer_release(&sb);
}

/* One lora entry: a map with a non-empty str name and an optional number
 * scale; other keys are ignored. */
static bool decode_lora_entry(const msgpack_object *o, uint32_t index, struct job_lora *dst,
                              struct job_verdict *why)
{
    const msgpack_object *name = NULL, *scale = NULL;
    if (o->type != MSGPACK_OBJECT_MAP) {
        job_reject(why, LLMQ_INVALID_FIELD, "lora[%" PRIu32 "]: must be a map {name, scale}",
                   index);
        return false;
    }
    for (uint32_t k = 0; k < o->via.map.size; k++) {
        const msgpack_object *key = &o->via.map.ptr[k].key;
        if (str_equals(key, "name"))
            name = &o->via.map.ptr[k].val;
        else if (str_equals(key, "scale"))
            scale = &o->via.map.ptr[k].val;
    }
    const char *problem = name ? text_problem(name, true) : "missing";
    if (problem) {
        job_reject(why, LLMQ_INVALID_FIELD, "lora[%" PRIu32 "].name: %s", index, problem);
        return false;
    }
    dst->scale = 1.0;
    if (scale && !real_value(scale, &dst->scale)) {
        job_reject(why, LLMQ_INVALID_FIELD, "lora[%" PRIu32 "].scale: must be a number", index);
        return false;
    }
    dst->name = text_copy(name, why);
    return dst->name != NULL;
}

/* lora: at most JOB_LORA_MAX entries, no name twice. */
static void decode_lora(const msgpack_object *o, struct job *job, struct job_verdict *why)
{
    if (!o)
        return;
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size > JOB_LORA_MAX) {
        job_reject(why, LLMQ_INVALID_FIELD,
                   "lora: must be an array of at most %d maps {name, scale}", JOB_LORA_MAX);
        return;
    }
    if (o->via.array.size == 0)
        return;
    job->lora = calloc(o->via.array.size, sizeof *job->lora);
    if (!job->lora) {
        job_reject(why, LLMQ_INTERNAL, "out of memory");
        return;
    }
    for (uint32_t k = 0; k < o->via.array.size; k++) {
        if (!decode_lora_entry(&o->via.array.ptr[k], k, &job->lora[k], why))
            return;
        job->n_lora = k + 1;
        for (uint32_t j = 0; j < k; j++)
            if (strcmp(job->lora[j].name, job->lora[k].name) == 0) {
                job_reject(why, LLMQ_INVALID_FIELD, "lora[%" PRIu32 "].name: \"%s\" given twice", k,
                           job->lora[k].name);
                return;
            }
    }
}

/* Every field, in the order of the field table in spec.md. All of them are
 * decoded even after a failure, so an error reply can still be addressed. */
static void decode_fields(const struct fields *fs, struct job *job, struct job_verdict *why)
{
    decode_version(fs, why);
    decode_id(fs, job, why);
    decode_input(fs, job, why);
    decode_int(fs, F_MAX_TOKENS, 1, INT64_MAX, &job->max_tokens, why);
    decode_real(fs, F_TEMPERATURE, 0, INFINITY, &job->temperature, why);
    decode_real(fs, F_TOP_P, 0, 1, &job->top_p, why);
    decode_int(fs, F_TOP_K, 0, INT64_MAX, &job->top_k, why);
    decode_real(fs, F_MIN_P, 0, 1, &job->min_p, why);
    decode_int(fs, F_SEED, INT64_MIN, INT64_MAX, &job->seed, why);
    decode_real(fs, F_REPEAT_PENALTY, 0, INFINITY, &job->repeat_penalty, why);
    decode_stop(fs, job, why);
    decode_text(fs, F_GRAMMAR, false, &job->grammar, why);
    decode_json_schema(fs, job, why);
    if (fs->value[F_GRAMMAR] && fs->value[F_JSON_SCHEMA])
        job_reject(why, LLMQ_INVALID_INPUT, "grammar, json_schema: give one, not both");
    decode_stream(fs, job, why);
    decode_reply_to(fs, job, why);
    decode_int(fs, F_DEADLINE_MS, INT64_MIN, INT64_MAX, &job->deadline_ms, why);
    decode_text(fs, F_MODEL, true, &job->model, why);
    decode_meta(fs, job, why);
    struct job_opt_int logprobs = {0};
    decode_int(fs, F_LOGPROBS, 0, JOB_LOGPROBS_MAX, &logprobs, why);
    job->logprobs = (int)logprobs.value;
    decode_lora(field(fs, F_LORA, why), job, why);
    decode_int(fs, F_CHUNK_MS, 0, JOB_CHUNK_MS_MAX, &job->chunk_ms, why);
}

enum llmq_code job_decode(const void *buf, size_t len, struct job *job, struct job_verdict *why)
{
    struct job_verdict scratch;
    msgpack_unpacked msg;
    struct fields fs;
    size_t end = 0, off = 0;

    if (!why)
        why = &scratch;
    job_verdict_clear(why);
    memset(job, 0, sizeof *job);
    job->stream = true;

    if (!buf || !msgpack_skip(buf, len, &end, JOB_NESTING_MAX))
        return job_reject(
            why, LLMQ_MALFORMED,
            "not one complete msgpack value (cut short, byte 0xc1, or nested over %d deep)",
            JOB_NESTING_MAX);
    if (end != len)
        return job_reject(why, LLMQ_MALFORMED, "%zu trailing byte(s) after the job map", len - end);

    msgpack_unpacked_init(&msg);
    if (msgpack_unpack_next(&msg, buf, len, &off) != MSGPACK_UNPACK_SUCCESS)
        job_reject(why, LLMQ_MALFORMED, "not a msgpack value");
    else if (msg.data.type != MSGPACK_OBJECT_MAP)
        job_reject(why, LLMQ_MALFORMED, "a job must be a msgpack map");
    else if (fields_index(&msg.data.via.map, &fs, why))
        decode_fields(&fs, job, why);
    msgpack_unpacked_destroy(&msg);
    return why->code;
}

void job_drop_input(struct job *job)
{
    free(job->prompt);
    for (size_t k = 0; k < job->n_messages; k++) {
        free(job->messages[k].role);
        free(job->messages[k].content);
    }
    free(job->messages);
    for (size_t k = 0; k < job->n_stop; k++)
        free(job->stop[k]);
    free(job->stop);
    free(job->grammar);
    free(job->json_schema_json);
    for (size_t k = 0; k < job->n_lora; k++)
        free(job->lora[k].name);
    free(job->lora);
    job->prompt = job->grammar = job->json_schema_json = NULL;
    job->prompt_len = job->n_messages = job->n_stop = job->n_lora = 0;
    job->messages = NULL;
    job->stop = NULL;
    job->lora = NULL;
}

void job_free(struct job *job)
{
    job_drop_input(job);
    free(job->id);
    free(job->reply_to);
    free(job->model);
    free(job->meta);
    memset(job, 0, sizeof *job);
}
