/* llama_proto.h — the JSON spoken with llama-server, without any I/O:
 * a request body built from a job, a stream event decoded into a delta,
 * an error body mapped to a wire code. Pure functions, unit-tested and
 * fuzzed on their own. */
#ifndef LLMQ_LLAMA_PROTO_H
#define LLMQ_LLAMA_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codes.h"
#include "job.h"

enum llama_endpoint {
    LLAMA_COMPLETION, /* POST /completion (prompt jobs) */
    LLAMA_CHAT,       /* POST /v1/chat/completions (chat jobs) */
};

struct llama_caps {
    int max_tokens;         /* the config's cap: a job asking for more gets this */
    int default_max_tokens; /* when the job gives none */
    /* The adapters llama-server loaded (llama.lora), in --lora order: a job's
     * lora names are sent as their index here. */
    const char *const *lora_names;
    size_t n_lora_names;
    int64_t t_max_predict_ms; /* per run: the job's time left, sent when > 0 */
};

/* The endpoint a job goes to, and its path ("/completion", ...). */
enum llama_endpoint llama_endpoint_for(const struct job *job);
const char *llama_endpoint_path(enum llama_endpoint ep);

/* The streaming request body for `job` as a malloc'd NUL-terminated JSON
 * string, caps applied; NULL on allocation failure or when the job holds what
 * JSON cannot carry (a string that is not UTF-8, a NaN, a json_schema_json
 * that does not parse). A job with both grammar and json_schema sends only the
 * json_schema (this llama-server's chat endpoint refuses both at once).
 * A job's logprobs become n_probs; when caps->lora_names is not empty, lora
 * is [{id, scale}] for every adapter there, by index, at the scale the job
 * gives its name or 0 (a job name not there is left out: admission has
 * refused such jobs); caps->t_max_predict_ms is sent when set. */
char *llama_request_json(const struct job *job, const struct llama_caps *caps);

struct llama_event {
    char *text; /* the new text (malloc'd, may be ""), NULL if none */
    size_t text_len;
    bool final;                /* generation ended (chat: its usage chunk may follow) */
    char finish[16];           /* when final: "stop" | "length" | ... */
    int64_t prompt_tokens;     /* when known, else -1 */
    int64_t completion_tokens; /* when known, else -1 */
    /* The tokens' log-probabilities (when the job asked for them): n_logprobs
     * entries packed by logprobs_pack_entry (malloc'd), NULL if none. */
    uint8_t *logprobs;
    size_t logprobs_len;
    size_t n_logprobs;
};

/* Decode one SSE data payload. Returns 0, 1 for the chat stream's "[DONE]"
 * sentinel (no event), or -1 for a payload that is not a valid event (msg
 * says why). An event carrying an "error" object returns -1 too. */
int llama_parse_event(enum llama_endpoint ep, const char *data, size_t len, struct llama_event *ev,
                      char *msg, size_t msg_len);
/* llama_parse_event's full parser alone (a jansson tree; llama_parse_event
 * tries llama_fast.h's in-place reader first): the tests and the fuzzer
 * check that the two agree. */
int llama_parse_event_tree(enum llama_endpoint ep, const char *data, size_t len,
                           struct llama_event *ev, char *msg, size_t msg_len);
void llama_event_clear(struct llama_event *ev);

/* Map an HTTP error response (status + body) to a code and message:
 * exceed_context_size_error -> LLMQ_CONTEXT_EXCEEDED, other 4xx ->
 * LLMQ_BACKEND_ERROR, 5xx -> LLMQ_BACKEND_ERROR. */
enum llmq_code llama_parse_error(long status, const char *body, size_t len, char *msg,
                                 size_t msg_len);

#endif
