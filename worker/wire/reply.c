/* reply.c — encode the v1 reply messages (chunk, done, error) as msgpack
 * maps in a fixed field order, so equal values give equal bytes (the valid
 * reply vectors in schemas/vectors are checked against this encoder).
 * A NULL string is encoded as "". On failure nothing is appended. */
#include "reply.h"

#include <string.h>

#define REPLY_VERSION 1

static int pack_str(msgpack_packer *pk, const char *s, size_t len)
{
    if (!s)
        len = 0;
    if (msgpack_pack_str(pk, len) != 0)
        return -1;
    return len ? msgpack_pack_str_body(pk, s, len) : 0;
}

static int pack_cstr(msgpack_packer *pk, const char *s)
{
    return pack_str(pk, s, s ? strlen(s) : 0);
}

/* Start a reply on out: its packer, the map header and the fields every
 * reply starts with (v, type, id, run). */
static int pack_head(msgpack_packer *pk, msgpack_sbuffer *out, size_t n_fields, const char *type,
                     const char *id, const char *run)
{
    msgpack_packer_init(pk, out, msgpack_sbuffer_write);
    int rc = msgpack_pack_map(pk, n_fields);
    rc |= pack_cstr(pk, "v");
    rc |= msgpack_pack_int(pk, REPLY_VERSION);
    rc |= pack_cstr(pk, "type");
    rc |= pack_cstr(pk, type);
    rc |= pack_cstr(pk, "id");
    rc |= pack_cstr(pk, id);
    rc |= pack_cstr(pk, "run");
    rc |= pack_cstr(pk, run);
    return rc;
}

/* Finish an encoding: the job's meta map last when there is one (echoed as
 * the raw msgpack it was decoded into); on failure take back what was
 * appended. */
static int finish(msgpack_sbuffer *out, msgpack_packer *pk, size_t start, int rc,
                  const uint8_t *meta, size_t meta_len)
{
    if (meta && meta_len) {
        rc |= pack_cstr(pk, "meta");
        rc |= msgpack_sbuffer_write(out, (const char *)meta, meta_len);
    }
    if (rc == 0)
        return 0;
    out->size = start;
    return -1;
}

/* One key, then its value. */
static int pack_kv_str(msgpack_packer *pk, const char *key, const char *value)
{
    int rc = pack_cstr(pk, key); /* key first: | leaves the order open */
    return rc | pack_cstr(pk, value);
}

static int pack_kv_int(msgpack_packer *pk, const char *key, int64_t value)
{
    int rc = pack_cstr(pk, key); /* key first: | leaves the order open */
    return rc | msgpack_pack_int64(pk, value);
}

static int pack_kv_double(msgpack_packer *pk, const char *key, double value)
{
    int rc = pack_cstr(pk, key); /* key first: | leaves the order open */
    return rc | msgpack_pack_double(pk, value);
}

/* logprobs: an array of entries packed beforehand. */
static int pack_logprobs(msgpack_sbuffer *out, msgpack_packer *pk, const struct reply_logprobs *lp)
{
    int rc = pack_cstr(pk, "logprobs");
    rc |= msgpack_pack_array(pk, lp->count);
    if (lp->len)
        rc |= msgpack_sbuffer_write(out, (const char *)lp->data, lp->len);
    return rc;
}

int reply_encode_chunk(msgpack_sbuffer *out, const char *id, const char *run, uint64_t seq,
                       const char *text, size_t text_len, const struct reply_logprobs *logprobs)
{
    size_t start = out->size;
    msgpack_packer pk;
    int rc = pack_head(&pk, out, logprobs ? 7 : 6, "chunk", id, run);
    rc |= pack_cstr(&pk, "seq");
    rc |= msgpack_pack_uint64(&pk, seq);
    rc |= pack_cstr(&pk, "text");
    rc |= pack_str(&pk, text, text_len);
    if (logprobs)
        rc |= pack_logprobs(out, &pk, logprobs);
    return finish(out, &pk, start, rc, NULL, 0);
}

int reply_encode_done(msgpack_sbuffer *out, const struct reply_done *done)
{
    size_t start = out->size;
    msgpack_packer pk; /* 9 fields, then meta and logprobs when there */
    int rc = pack_head(&pk, out, 9 + (done->meta && done->meta_len) + (done->logprobs != NULL),
                       "done", done->id, done->run);
    rc |= pack_cstr(&pk, "text");
    rc |= pack_str(&pk, done->text, done->text_len);
    if (done->logprobs)
        rc |= pack_logprobs(out, &pk, done->logprobs);
    rc |= pack_kv_str(&pk, "finish", done->finish);

    rc |= pack_cstr(&pk, "usage");
    rc |= msgpack_pack_map(&pk, 2);
    rc |= pack_kv_int(&pk, "prompt_tokens", done->usage.prompt_tokens);
    rc |= pack_kv_int(&pk, "completion_tokens", done->usage.completion_tokens);

    rc |= pack_cstr(&pk, "timings");
    rc |= msgpack_pack_map(&pk, 4);
    rc |= pack_kv_double(&pk, "queue_ms", done->timings.queue_ms);
    rc |= pack_kv_double(&pk, "ttft_ms", done->timings.ttft_ms);
    rc |= pack_kv_double(&pk, "gen_ms", done->timings.gen_ms);
    rc |= pack_kv_double(&pk, "tokens_per_s", done->timings.tokens_per_s);

    rc |= pack_kv_str(&pk, "worker", done->worker);
    return finish(out, &pk, start, rc, done->meta, done->meta_len);
}

int reply_encode_error(msgpack_sbuffer *out, const struct reply_error *err)
{
    size_t start = out->size;
    msgpack_packer pk; /* 8 fields, then meta and partial_text when there */
    int rc = pack_head(&pk, out, 8 + (err->meta && err->meta_len) + (err->partial_text != NULL),
                       "error", err->id, err->run);
    rc |= pack_kv_str(&pk, "code", llmq_code_name(err->code));
    rc |= pack_kv_str(&pk, "message", err->message);
    rc |= pack_cstr(&pk, "retryable");
    rc |= llmq_code_retryable(err->code) ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk);
    rc |= pack_kv_str(&pk, "worker", err->worker);
    if (err->partial_text) {
        rc |= pack_cstr(&pk, "partial_text");
        rc |= pack_str(&pk, err->partial_text, err->partial_text_len);
    }
    return finish(out, &pk, start, rc, err->meta, err->meta_len);
}
