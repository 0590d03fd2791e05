/* buf.c — growable arrays and byte buffers (see buf.h). */
#include "buf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int grow_array(void **items, size_t *cap, size_t need, size_t size, size_t first)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : first;
    while (n < need) {
        if (n > SIZE_MAX / 2 / size)
            return -1;
        n *= 2;
    }
    void *grown = realloc(*items, n * size);
    if (!grown)
        return -1;
    *items = grown;
    *cap = n;
    return 0;
}

void buf_init(struct buf *b, size_t max)
{
    memset(b, 0, sizeof(*b));
    b->max = max;
}

int buf_reserve(struct buf *b, size_t extra)
{
    if ((b->max && extra > b->max - b->len) ||
        grow_array((void **)&b->data, &b->cap, b->len + extra + 1, 1, 256) != 0) {
        b->failed = true;
        return -1;
    }
    return 0;
}

int buf_append(struct buf *b, const void *p, size_t n)
{
    if (buf_reserve(b, n) != 0)
        return -1;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

size_t buf_append_some(struct buf *b, const void *p, size_t n)
{
    if (b->max && n > b->max - b->len)
        n = b->max - b->len;
    return n && buf_append(b, p, n) == 0 ? n : 0;
}

void buf_free(struct buf *b)
{
    free(b->data);
    buf_init(b, b->max);
}
