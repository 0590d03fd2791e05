/* llama_proto.c — llama-server's JSON (request bodies, stream events, error bodies), no I/O.
 *
 * Shapes follow the llama.cpp server this project builds (tools/server/):
 *   /completion events:  {"content", "tokens", "stop": false, "tokens_predicted",
 *                         "tokens_evaluated", ...}; the last has "stop": true, "stop_type"
 *                         ("eos" | "word" | "limit" | "none") and "timings" (we ask for
 *                         those fields only: "response_fields" trims the last event).
 *   chat events:         {"choices": [{"delta": {"content"}, "finish_reason"}], ...}; with
 *                         stream_options.include_usage a last chunk has "choices": [] and
 *                         "usage"; then "data: [DONE]".
 *   errors:              {"error": {"code", "message", "type"}} as the HTTP body, or as an SSE
 *                         event when generation fails after streaming started. */
#include "llama_proto.h"

#include "llama_fast.h"
#include "logprobs.h"
#include "mpjson.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum llama_endpoint llama_endpoint_for(const struct job *job)
{
    return job->prompt ? LLAMA_COMPLETION : LLAMA_CHAT;
}

const char *llama_endpoint_path(enum llama_endpoint ep)
{
    return ep == LLAMA_CHAT ? "/v1/chat/completions" : "/completion";
}

/* ---- request ---- */

/* Set obj[key] = value, taking the reference; -1 if value is NULL or the set fails. */
static int set_new(json_t *obj, const char *key, json_t *value)
{
    return value ? json_object_set_new(obj, key, value) : -1;
}

static int64_t effective_max_tokens(const struct job *job, const struct llama_caps *caps)
{
    if (!job->max_tokens.set)
        return caps->default_max_tokens < caps->max_tokens ? caps->default_max_tokens
                                                           : caps->max_tokens;
    /* llama-server reads a negative count as "no limit": never send one. */
    if (job->max_tokens.value < 0 || job->max_tokens.value > caps->max_tokens)
        return caps->max_tokens;
    return job->max_tokens.value;
}

static int add_sampling(json_t *req, const struct job *job)
{
    int rc = 0;
    if (job->temperature.set)
        rc |= set_new(req, "temperature", json_real(job->temperature.value));
    if (job->top_p.set)
        rc |= set_new(req, "top_p", json_real(job->top_p.value));
    if (job->top_k.set)
        rc |= set_new(req, "top_k", json_integer(job->top_k.value));
    if (job->min_p.set)
        rc |= set_new(req, "min_p", json_real(job->min_p.value));
    if (job->repeat_penalty.set)
        rc |= set_new(req, "repeat_penalty", json_real(job->repeat_penalty.value));
    if (job->seed.set)
        rc |= set_new(req, "seed", json_integer(job->seed.value));
    return rc;
}

static int add_stop(json_t *req, const struct job *job)
{
    if (job->n_stop == 0)
        return 0;
    json_t *stop = json_array();
    if (set_new(req, "stop", stop) != 0)
        return -1;
    for (size_t i = 0; i < job->n_stop; i++) {
        if (json_array_append_new(stop, json_string(job->stop[i])) != 0)
            return -1;
    }
    return 0;
}

/* Both endpoints of this llama-server accept top-level "json_schema" (an object) and
 * "grammar" (GBNF text). The chat endpoint refuses both at once and /completion would
 * silently prefer the grammar, so a job carrying both gets its json_schema. */
static int add_structured_output(json_t *req, const struct job *job)
{
    if (job->json_schema_json) {
        json_t *schema = json_loads(job->json_schema_json, 0, NULL);
        return set_new(req, "json_schema", schema);
    }
    if (job->grammar)
        return set_new(req, "grammar", json_string(job->grammar));
    return 0;
}

/* The final /completion event otherwise echoes the whole prompt and every generation
 * setting: a large prompt would come back in one event, maybe past the SSE size cap. */
static int add_completion_response_fields(json_t *req)
{
    static const char *const fields[] = {
        "content", "stop", "stop_type", "tokens_predicted", "tokens_evaluated", "timings"};
    json_t *list = json_array();
    if (set_new(req, "response_fields", list) != 0)
        return -1;
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        if (json_array_append_new(list, json_string(fields[i])) != 0)
            return -1;
    }
    return 0;
}

static int add_messages(json_t *req, const struct job *job)
{
    json_t *messages = json_array();
    if (set_new(req, "messages", messages) != 0)
        return -1;
    for (size_t i = 0; i < job->n_messages; i++) {
        json_t *m = json_object();
        if (json_array_append_new(messages, m) != 0 || !m)
            return -1;
        if (set_new(m, "role", json_string(job->messages[i].role)) != 0 ||
            set_new(m, "content", json_string(job->messages[i].content)) != 0)
            return -1;
    }
    return 0;
}

/* lora: every adapter llama-server loaded, by index, at the job's scale or 0.
 * Not just the job's own: this llama-server gives a request without lora the
 * adapters' start scales (1.0 even with --lora-init-without-apply) and keeps
 * the slot's cached prompt; a full list makes a job without lora the base
 * model, and a change of adapters clears the slot's cache. */
static json_t *lora_json(const struct job *job, const struct llama_caps *caps)
{
    json_t *lora = json_array();
    for (size_t id = 0; lora && id < caps->n_lora_names; id++) {
        double scale = 0.0;
        for (size_t k = 0; k < job->n_lora; k++)
            if (strcmp(caps->lora_names[id], job->lora[k].name) == 0)
                scale = job->lora[k].scale;
        json_t *entry = json_pack("{sIsf}", "id", (json_int_t)id, "scale", scale);
        if (!entry || json_array_append_new(lora, entry) != 0) {
            json_decref(lora);
            return NULL;
        }
    }
    return lora;
}

/* n_probs, lora and t_max_predict_ms: what a job steers beyond sampling. */
static int add_steering(json_t *req, const struct job *job, const struct llama_caps *caps)
{
    int rc = 0;
    if (job->logprobs > 0)
        rc |= set_new(req, "n_probs", json_integer(job->logprobs));
    if (caps->t_max_predict_ms > 0)
        rc |= set_new(req, "t_max_predict_ms", json_integer(caps->t_max_predict_ms));
    if (caps->n_lora_names > 0)
        rc |= set_new(req, "lora", lora_json(job, caps));
    return rc;
}

char *llama_request_json(const struct job *job, const struct llama_caps *caps)
{
    json_t *req = json_object();
    if (!req)
        return NULL;
    enum llama_endpoint ep = llama_endpoint_for(job);
    int rc = 0;
    if (ep == LLAMA_COMPLETION) {
        rc |= set_new(req, "prompt", json_stringn(job->prompt, job->prompt_len));
        rc |= set_new(req, "n_predict", json_integer(effective_max_tokens(job, caps)));
        rc |= add_completion_response_fields(req);
    } else {
        rc |= add_messages(req, job);
        rc |= set_new(req, "max_tokens", json_integer(effective_max_tokens(job, caps)));
    }
    rc |= set_new(req, "stream", json_true());
    if (ep == LLAMA_CHAT) {
        /* Without it the chat stream carries no token counts. */
        json_t *opts = json_object();
        rc |= set_new(req, "stream_options", opts);
        if (opts)
            rc |= set_new(opts, "include_usage", json_true());
    }
    rc |= set_new(req, "cache_prompt", json_true());
    rc |= add_sampling(req, job);
    rc |= add_stop(req, job);
    rc |= add_structured_output(req, job);
    rc |= add_steering(req, job, caps);

    char *text = rc == 0 ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    return text;
}

/* ---- events ---- */

void llama_event_clear(struct llama_event *ev)
{
    free(ev->text);
    free(ev->logprobs);
    memset(ev, 0, sizeof(*ev));
    ev->prompt_tokens = -1;
    ev->completion_tokens = -1;
}

static int fail(char *msg, size_t msg_len, const char *why)
{
    if (msg_len)
        snprintf(msg, msg_len, "%s", why);
    return -1;
}

/* "llama-server: <message> (<type>)" from an {"code","message","type"} object. */
static void describe_error(const json_t *err, const char *prefix, char *msg, size_t msg_len)
{
    const char *message = json_string_value(json_object_get(err, "message"));
    const char *type = json_string_value(json_object_get(err, "type"));
    char text[512];
    if (!message && json_is_string(err))
        message = json_string_value(err);
    snprintf(text, sizeof(text), "%s%s%s%s%s", prefix, message ? message : "unspecified error",
             type ? " (" : "", type ? type : "", type ? ")" : "");
    utf8_copy_cut(msg, msg_len, text, strlen(text));
}

static int set_text(struct llama_event *ev, const json_t *s)
{
    size_t n = json_string_length(s);
    ev->text = malloc(n + 1);
    if (!ev->text)
        return -1;
    memcpy(ev->text, json_string_value(s), n);
    ev->text[n] = '\0';
    ev->text_len = n;
    return 0;
}

/* A token count field: absent leaves *out alone, a non-negative integer sets it. */
static int read_count(const json_t *obj, const char *key, int64_t *out)
{
    const json_t *v = json_object_get(obj, key);
    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return -1;
    *out = json_integer_value(v);
    return 0;
}

static int set_finish(struct llama_event *ev, const char *finish)
{
    if (strlen(finish) >= sizeof(ev->finish))
        return -1;
    memcpy(ev->finish, finish, strlen(finish) + 1);
    ev->final = true;
    return 0;
}

/* A token of llama-server's probabilities: its bytes (the "bytes" array of
 * ints, which keeps a character split over two tokens) and its logprob.
 * `store` holds the bytes. -1 when the shape is wrong. */
static int read_token(const json_t *obj, struct logprob_token *out, char *store, size_t cap)
{
    const json_t *bytes = json_object_get(obj, "bytes");
    const json_t *logprob = json_object_get(obj, "logprob");
    if (!json_is_array(bytes) || json_array_size(bytes) > cap || !json_is_number(logprob))
        return -1;
    for (size_t k = 0; k < json_array_size(bytes); k++) {
        json_int_t b = json_integer_value(json_array_get(bytes, k));
        if (b < 0 || b > 255)
            return -1;
        store[k] = (char)b;
    }
    *out = (struct logprob_token){store, json_array_size(bytes), json_number_value(logprob)};
    return 0;
}

/* One probabilities entry {token, bytes, logprob, top_logprobs} packed. */
static int pack_probs_entry(msgpack_sbuffer *sb, const json_t *entry)
{
    enum { TOKEN_BYTES_MAX = 256, TOP_MAX = JOB_LOGPROBS_MAX + 1 };
    char store[TOP_MAX + 1][TOKEN_BYTES_MAX];
    struct logprob_token token, top[TOP_MAX];
    const json_t *alts = json_object_get(entry, "top_logprobs");
    size_t n_top = json_array_size(alts);
    if (!json_is_array(alts) || n_top > TOP_MAX ||
        read_token(entry, &token, store[TOP_MAX], TOKEN_BYTES_MAX) != 0)
        return -1;
    for (size_t k = 0; k < n_top; k++)
        if (read_token(json_array_get(alts, k), &top[k], store[k], TOKEN_BYTES_MAX) != 0)
            return -1;
    return logprobs_pack_entry(sb, &token, top, n_top);
}

/* An array of probabilities entries into ev->logprobs; absent is fine. */
static int read_logprobs(const json_t *entries, struct llama_event *ev)
{
    if (!entries || json_is_null(entries))
        return 0;
    if (!json_is_array(entries))
        return -1;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    for (size_t k = 0; k < json_array_size(entries); k++)
        if (pack_probs_entry(&sb, json_array_get(entries, k)) != 0) {
            msgpack_sbuffer_destroy(&sb);
            return -1;
        }
    ev->n_logprobs = json_array_size(entries);
    ev->logprobs_len = sb.size;
    ev->logprobs = (uint8_t *)msgpack_sbuffer_release(&sb);
    return 0;
}

static int parse_completion(const json_t *root, struct llama_event *ev, char *msg, size_t msg_len)
{
    const json_t *content = json_object_get(root, "content");
    const json_t *stop = json_object_get(root, "stop");
    if (!json_is_boolean(stop))
        return fail(msg, msg_len, "/completion event without a boolean \"stop\"");
    if (content && !json_is_string(content))
        return fail(msg, msg_len, "/completion event \"content\" is not a string");
    if (content && set_text(ev, content) != 0)
        return fail(msg, msg_len, "out of memory");
    if (read_count(root, "tokens_evaluated", &ev->prompt_tokens) != 0 ||
        read_count(root, "tokens_predicted", &ev->completion_tokens) != 0)
        return fail(msg, msg_len, "/completion event has a bad token count");
    if (read_logprobs(json_object_get(root, "completion_probabilities"), ev) != 0)
        return fail(msg, msg_len, "/completion event has bad \"completion_probabilities\"");
    if (json_is_true(stop)) {
        /* llama-server's own OpenAI mapping: eos and word are "stop", the rest "length". */
        const char *type = json_string_value(json_object_get(root, "stop_type"));
        if (!type)
            return fail(msg, msg_len, "final /completion event without \"stop_type\"");
        if (strcmp(type, "eos") == 0 || strcmp(type, "word") == 0)
            set_finish(ev, "stop");
        else if (strcmp(type, "limit") == 0 || strcmp(type, "none") == 0)
            set_finish(ev, "length");
        else
            return fail(msg, msg_len, "final /completion event has an unknown \"stop_type\"");
    }
    return 0;
}

static int parse_chat(const json_t *root, struct llama_event *ev, char *msg, size_t msg_len)
{
    const json_t *choices = json_object_get(root, "choices");
    if (!json_is_array(choices))
        return fail(msg, msg_len, "chat event without a \"choices\" array");
    const json_t *usage = json_object_get(root, "usage");
    if (usage && !json_is_null(usage)) {
        if (!json_is_object(usage) || read_count(usage, "prompt_tokens", &ev->prompt_tokens) != 0 ||
            read_count(usage, "completion_tokens", &ev->completion_tokens) != 0)
            return fail(msg, msg_len, "chat event has a bad \"usage\"");
    }
    if (json_array_size(choices) == 0)
        return 0; /* the usage chunk */

    const json_t *choice = json_array_get(choices, 0);
    if (!json_is_object(choice))
        return fail(msg, msg_len, "chat event choice is not an object");
    const json_t *delta = json_object_get(choice, "delta");
    if (delta && !json_is_object(delta))
        return fail(msg, msg_len, "chat event \"delta\" is not an object");
    const json_t *content = json_object_get(delta, "content");
    if (content && !json_is_null(content)) {
        if (!json_is_string(content))
            return fail(msg, msg_len, "chat event \"content\" is not a string");
        if (set_text(ev, content) != 0)
            return fail(msg, msg_len, "out of memory");
    }
    if (read_logprobs(json_object_get(json_object_get(choice, "logprobs"), "content"), ev) != 0)
        return fail(msg, msg_len, "chat event has bad \"logprobs\"");
    const json_t *finish = json_object_get(choice, "finish_reason");
    if (finish && !json_is_null(finish)) {
        if (!json_is_string(finish) || set_finish(ev, json_string_value(finish)) != 0)
            return fail(msg, msg_len, "chat event has a bad \"finish_reason\"");
    }
    return 0;
}

int llama_parse_event(enum llama_endpoint ep, const char *data, size_t len, struct llama_event *ev,
                      char *msg, size_t msg_len)
{
    memset(ev, 0, sizeof(*ev));
    ev->prompt_tokens = -1;
    ev->completion_tokens = -1;
    switch (llama_fast_event(ep, data, len, ev)) {
    case LLAMA_FAST_TAKEN:
        return 0;
    case LLAMA_FAST_NOMEM:
        return fail(msg, msg_len, "out of memory");
    case LLAMA_FAST_DECLINED:
        break;
    }
    return llama_parse_event_tree(ep, data, len, ev, msg, msg_len);
}

int llama_parse_event_tree(enum llama_endpoint ep, const char *data, size_t len,
                           struct llama_event *ev, char *msg, size_t msg_len)
{
    memset(ev, 0, sizeof(*ev));
    ev->prompt_tokens = -1;
    ev->completion_tokens = -1;
    if (ep == LLAMA_CHAT && len == 6 && memcmp(data, "[DONE]", 6) == 0)
        return 1;

    json_error_t jerr;
    json_t *root = json_loadb(data, len, JSON_ALLOW_NUL, &jerr);
    if (!root) {
        char why[256];
        snprintf(why, sizeof(why), "event is not JSON: %s", jerr.text);
        return fail(msg, msg_len, why);
    }
    int rc;
    const json_t *err = json_object_get(root, "error");
    if (!json_is_object(root)) {
        rc = fail(msg, msg_len, "event is not a JSON object");
    } else if (err) {
        describe_error(err, "llama-server error mid-stream: ", msg, msg_len);
        rc = -1;
    } else {
        rc = ep == LLAMA_CHAT ? parse_chat(root, ev, msg, msg_len)
                              : parse_completion(root, ev, msg, msg_len);
    }
    json_decref(root);
    if (rc != 0)
        llama_event_clear(ev);
    return rc;
}

/* ---- errors ---- */

/* A body that is not the JSON error shape: quote its start, printable ASCII only. */
static void describe_raw(long status, const char *body, size_t len, char *msg, size_t msg_len)
{
    char quoted[161];
    size_t n = len < sizeof(quoted) - 1 ? len : sizeof(quoted) - 1;
    for (size_t i = 0; i < n; i++)
        quoted[i] = body[i] >= 0x20 && body[i] < 0x7f ? body[i] : ' ';
    quoted[n] = '\0';
    if (msg_len)
        snprintf(msg, msg_len, "llama-server HTTP %ld%s%s", status, n ? ": " : "", quoted);
}

enum llmq_code llama_parse_error(long status, const char *body, size_t len, char *msg,
                                 size_t msg_len)
{
    json_t *root = body && len ? json_loadb(body, len, 0, NULL) : NULL;
    const json_t *err = json_object_get(root, "error");
    enum llmq_code code = LLMQ_BACKEND_ERROR;
    if (err) {
        char prefix[48];
        snprintf(prefix, sizeof(prefix), "llama-server HTTP %ld: ", status);
        describe_error(err, prefix, msg, msg_len);
        const char *type = json_string_value(json_object_get(err, "type"));
        if (type && strcmp(type, "exceed_context_size_error") == 0)
            code = LLMQ_CONTEXT_EXCEEDED;
    } else {
        describe_raw(status, body, body ? len : 0, msg, msg_len);
    }
    json_decref(root);
    return code;
}
