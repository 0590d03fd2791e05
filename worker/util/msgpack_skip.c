/* msgpack_skip.c — walk msgpack bytes without unpacking them, to check that
 * one value is complete and not nested too deep before msgpack-c allocates
 * for it. */
#include "msgpack_skip.h"

#include <stdint.h>

/* Read a big-endian unsigned integer of `width` bytes (0, 1, 2, 4 or 8). */
static bool read_be(const uint8_t *buf, size_t len, size_t *off, unsigned width, uint64_t *out)
{
    if (width > len - *off)
        return false;
    *out = 0;
    for (unsigned i = 0; i < width; i++)
        *out = (*out << 8) | buf[*off + i];
    *off += width;
    return true;
}

enum wire_kind { WIRE_RESERVED = 0, WIRE_BYTES, WIRE_ARRAY, WIRE_MAP };

/* The type bytes 0xc0..0xdf: a length (or count) prefix of `width` bytes,
 * plus `extra` payload bytes (fixed-size values, the ext type byte). */
static const struct {
    uint8_t kind, width, extra;
} wire_forms[0x20] = {
    [0x00] = {WIRE_BYTES, 0, 0},    /* nil */
    [0x01] = {WIRE_RESERVED, 0, 0}, /* never used */
    [0x02] = {WIRE_BYTES, 0, 0},    /* false */
    [0x03] = {WIRE_BYTES, 0, 0},    /* true */
    [0x04] = {WIRE_BYTES, 1, 0},    /* bin 8 */
    [0x05] = {WIRE_BYTES, 2, 0},    /* bin 16 */
    [0x06] = {WIRE_BYTES, 4, 0},    /* bin 32 */
    [0x07] = {WIRE_BYTES, 1, 1},    /* ext 8 */
    [0x08] = {WIRE_BYTES, 2, 1},    /* ext 16 */
    [0x09] = {WIRE_BYTES, 4, 1},    /* ext 32 */
    [0x0a] = {WIRE_BYTES, 0, 4},    /* float 32 */
    [0x0b] = {WIRE_BYTES, 0, 8},    /* float 64 */
    [0x0c] = {WIRE_BYTES, 0, 1},    /* uint 8 */
    [0x0d] = {WIRE_BYTES, 0, 2},    /* uint 16 */
    [0x0e] = {WIRE_BYTES, 0, 4},    /* uint 32 */
    [0x0f] = {WIRE_BYTES, 0, 8},    /* uint 64 */
    [0x10] = {WIRE_BYTES, 0, 1},    /* int 8 */
    [0x11] = {WIRE_BYTES, 0, 2},    /* int 16 */
    [0x12] = {WIRE_BYTES, 0, 4},    /* int 32 */
    [0x13] = {WIRE_BYTES, 0, 8},    /* int 64 */
    [0x14] = {WIRE_BYTES, 0, 2},    /* fixext 1 */
    [0x15] = {WIRE_BYTES, 0, 3},    /* fixext 2 */
    [0x16] = {WIRE_BYTES, 0, 5},    /* fixext 4 */
    [0x17] = {WIRE_BYTES, 0, 9},    /* fixext 8 */
    [0x18] = {WIRE_BYTES, 0, 17},   /* fixext 16 */
    [0x19] = {WIRE_BYTES, 1, 0},    /* str 8 */
    [0x1a] = {WIRE_BYTES, 2, 0},    /* str 16 */
    [0x1b] = {WIRE_BYTES, 4, 0},    /* str 32 */
    [0x1c] = {WIRE_ARRAY, 2, 0},    /* array 16 */
    [0x1d] = {WIRE_ARRAY, 4, 0},    /* array 32 */
    [0x1e] = {WIRE_MAP, 2, 0},      /* map 16 */
    [0x1f] = {WIRE_MAP, 4, 0},      /* map 32 */
};

static bool skip(const uint8_t *buf, size_t len, size_t *off, unsigned depth, unsigned max_depth)
{
    uint64_t n;
    unsigned kind;

    if (*off >= len)
        return false;
    uint8_t b = buf[(*off)++];
    if (b <= 0x7f || b >= 0xe0)
        return true; /* fixint */
    if (b <= 0x8f) {
        kind = WIRE_MAP;
        n = b & 0x0f;
    } else if (b <= 0x9f) {
        kind = WIRE_ARRAY;
        n = b & 0x0f;
    } else if (b <= 0xbf) {
        kind = WIRE_BYTES;
        n = b & 0x1f;
    } else {
        kind = wire_forms[b - 0xc0].kind;
        if (kind == WIRE_RESERVED || !read_be(buf, len, off, wire_forms[b - 0xc0].width, &n))
            return false;
        n += wire_forms[b - 0xc0].extra;
    }
    if (kind == WIRE_BYTES) {
        if (n > len - *off)
            return false;
        *off += n;
        return true;
    }
    if (depth >= max_depth)
        return false;
    if (kind == WIRE_MAP)
        n *= 2;
    for (uint64_t i = 0; i < n; i++) /* each value takes a byte at least: bounded by len */
        if (!skip(buf, len, off, depth + 1, max_depth))
            return false;
    return true;
}

bool msgpack_skip(const void *buf, size_t len, size_t *off, unsigned max_depth)
{
    return skip(buf, len, off, 0, max_depth);
}
