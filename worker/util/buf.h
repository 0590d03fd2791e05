/* buf.h — growable memory: grow_array() for arrays of any element, and
 * struct buf, a NUL-terminated byte buffer with an optional size cap.
 *
 * Both double their capacity from a first size, so n appends cost O(n)
 * copies. Neither frees on failure: what was there stays valid. */
#ifndef LLMQ_UTIL_BUF_H
#define LLMQ_UTIL_BUF_H

#include <stdbool.h>
#include <stddef.h>

/* Make room for `need` elements of `size` bytes in *items (capacity *cap,
 * doubling from `first`). Returns 0, or -1 when out of memory (then *items
 * and *cap are unchanged). */
int grow_array(void **items, size_t *cap, size_t need, size_t size, size_t first);

/* A byte buffer; zero it (or buf_init) before use. data is NULL until the
 * first append, and NUL-terminated after it. */
struct buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max;  /* the most bytes it may hold, the NUL aside; 0: no cap */
    bool failed; /* an append ran out of memory or hit the cap */
};

/* An empty buffer that holds at most max bytes (0: no cap). */
void buf_init(struct buf *b, size_t max);

/* Make room for `extra` more bytes and the NUL. Returns 0, or -1 when out
 * of memory or over the cap (failed is set then). */
int buf_reserve(struct buf *b, size_t extra);

/* Append n bytes. Returns 0, or -1 (failed set, nothing appended) when out
 * of memory or when they would pass the cap. */
int buf_append(struct buf *b, const void *p, size_t n);

/* Append as much of n bytes as the cap leaves room for; returns how many. */
size_t buf_append_some(struct buf *b, const void *p, size_t n);

/* Free the memory and leave an empty buffer with the same cap. */
void buf_free(struct buf *b);

#endif
