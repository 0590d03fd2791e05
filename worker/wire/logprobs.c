/* logprobs.c — pack log-probability entries (logprobs.h): float32 values,
 * tokens as str or, when their bytes are not text on their own, bin. */
#include "logprobs.h"

#include "mpjson.h"

static int pack_token(msgpack_packer *pk, const struct logprob_token *t)
{
    int rc;
    if (utf8_text_valid(t->bytes, t->len)) {
        rc = msgpack_pack_str(pk, t->len);
        rc |= t->len ? msgpack_pack_str_body(pk, t->bytes, t->len) : 0;
    } else {
        rc = msgpack_pack_bin(pk, t->len);
        rc |= t->len ? msgpack_pack_bin_body(pk, t->bytes, t->len) : 0;
    }
    return rc | msgpack_pack_float(pk, (float)t->logprob);
}

int logprobs_pack_entry(msgpack_sbuffer *out, const struct logprob_token *token,
                        const struct logprob_token *top, size_t n_top)
{
    size_t start = out->size;
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    int rc = msgpack_pack_array(&pk, 3);
    rc |= pack_token(&pk, token);
    rc |= msgpack_pack_array(&pk, n_top);
    for (size_t k = 0; k < n_top; k++) {
        rc |= msgpack_pack_array(&pk, 2);
        rc |= pack_token(&pk, &top[k]);
    }
    if (rc != 0)
        out->size = start;
    return rc ? -1 : 0;
}
