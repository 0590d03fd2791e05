/* fuzz_sse.c — the SSE parser on random bytes fed in random pieces: no crash, no overread,
 * and the events are the same as when the whole input is fed at once. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sse.h"

/* Every event flattened into one buffer: "event\0" "len" data. */
struct trace {
    uint8_t *buf;
    size_t len, cap;
};

static int collect(void *ctx, const char *event, const char *data, size_t len)
{
    struct trace *t = ctx;
    size_t ev_len = strlen(event) + 1;
    size_t need = t->len + ev_len + sizeof(len) + len;
    if (data[len] != '\0')
        abort(); /* data must be NUL-terminated for the decoder */
    if (need > t->cap) {
        t->cap = need * 2;
        t->buf = realloc(t->buf, t->cap);
        if (!t->buf)
            abort();
    }
    memcpy(t->buf + t->len, event, ev_len);
    memcpy(t->buf + t->len + ev_len, &len, sizeof(len));
    memcpy(t->buf + t->len + ev_len + sizeof(len), data, len);
    t->len = need;
    return 0;
}

/* Parse `data` in pieces; piece sizes come from `seed`, 0 = all at once. Returns the
 * first non-zero sse_feed/sse_finish result. */
static int parse(const uint8_t *data, size_t size, uint32_t seed, struct trace *t)
{
    struct sse_parser p;
    sse_init(&p, collect, t);
    int rc = 0;
    size_t off = 0;
    while (off < size && rc == 0) {
        size_t piece = size - off;
        if (seed) {
            seed = seed * 1103515245u + 12345u;
            piece = 1 + (seed >> 16) % (piece < 17 ? piece : 17);
        }
        /* a heap copy of exactly the piece, so ASan sees any read past it */
        char *copy = malloc(piece);
        if (!copy)
            abort();
        memcpy(copy, data + off, piece);
        rc = sse_feed(&p, copy, piece);
        free(copy);
        off += piece;
    }
    if (rc == 0)
        rc = sse_finish(&p);
    sse_free(&p);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint32_t seed = (uint32_t)data[0] << 8 | data[1] | 1u;
    data += 2;
    size -= 2;
    struct trace whole = {0}, split = {0};
    int rc_whole = parse(data, size, 0, &whole);
    int rc_split = parse(data, size, seed, &split);
    if (rc_whole != rc_split || whole.len != split.len ||
        (whole.len && memcmp(whole.buf, split.buf, whole.len) != 0))
        abort();
    free(whole.buf);
    free(split.buf);
    return 0;
}
