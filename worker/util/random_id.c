/* random_id.c — hex identifiers from the kernel's random numbers. */
#include "random_id.h"

#include <errno.h>
#include <stdint.h>
#include <sys/random.h>
#include <sys/types.h>

enum { RANDOM_MAX_BYTES = 64 };

void hex_encode(char *out, const void *in, size_t bytes)
{
    static const char digits[] = "0123456789abcdef";
    const uint8_t *p = in;
    for (size_t i = 0; i < bytes; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * bytes] = '\0';
}

int random_hex(char *out, size_t bytes)
{
    uint8_t raw[RANDOM_MAX_BYTES];
    ssize_t got;
    out[0] = '\0';
    if (bytes > sizeof(raw))
        return -1;
    do {
        got = getrandom(raw, bytes, 0);
    } while (got < 0 && errno == EINTR);
    if (got != (ssize_t)bytes)
        return -1;
    hex_encode(out, raw, bytes);
    return 0;
}
