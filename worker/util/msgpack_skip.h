/* msgpack_skip.h — step over one msgpack value in raw bytes.
 *
 * Run before msgpack_unpack_next() on untrusted input: msgpack-c allocates a
 * container's declared element count up front, so a 5-byte array header
 * could ask for 100 GB. Once the whole value is known to be present, its
 * allocations are bounded by the input size. */
#ifndef LLMQ_UTIL_MSGPACK_SKIP_H
#define LLMQ_UTIL_MSGPACK_SKIP_H

#include <stdbool.h>
#include <stddef.h>

/* Step over one complete msgpack value at buf[*off], advancing *off past
 * it. False if it is cut short, uses the reserved byte 0xc1, or nests
 * containers more than max_depth deep. */
bool msgpack_skip(const void *buf, size_t len, size_t *off, unsigned max_depth);

#endif
