/* random_id.h — random identifiers as lowercase hex, from getrandom(2):
 * job ids, run ids, consumer group suffixes and API keys. */
#ifndef LLMQ_UTIL_RANDOM_ID_H
#define LLMQ_UTIL_RANDOM_ID_H

#include <stddef.h>

/* Write `bytes` random bytes as 2 * bytes hex digits and a NUL into out
 * (room for 2 * bytes + 1). Returns 0, or -1 when the kernel gave no
 * random bytes (out is then an empty string). */
int random_hex(char *out, size_t bytes);

/* Write `bytes` bytes as hex digits and a NUL (room for 2 * bytes + 1). */
void hex_encode(char *out, const void *in, size_t bytes);

#endif
