/* mpjson.h — a msgpack value as a jansson value, in one of two modes.
 *
 * MPJSON_EXACT (a job's json_schema): only values with an exact JSON
 * meaning convert; a str that is not UTF-8 without NUL bytes, a map key
 * that is not such a str, a key given twice, an int outside int64, a float
 * that is not finite, bin and ext each fail with a reason.
 * MPJSON_SHOW (the CLI's display of replies): every value converts. bin,
 * ext and a str that is not UTF-8 become base64 text, a float that is not
 * finite becomes null, an int above INT64_MAX becomes a real, a map key
 * that is not a str becomes its compact JSON text, and a key given twice
 * keeps its last value.
 *
 * Recursion follows the value's nesting: callers bound it (msgpack-c's
 * unpacker does, and job.c checks it before unpacking). */
#ifndef LLMQ_UTIL_MPJSON_H
#define LLMQ_UTIL_MPJSON_H

#include <jansson.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>

enum mpjson_mode { MPJSON_EXACT, MPJSON_SHOW };

/* The JSON form of o, or NULL: then *problem says why (EXACT only), or
 * stays as it was when memory ran out. */
json_t *mpjson_from_msgpack(const msgpack_object *o, enum mpjson_mode mode, const char **problem);

/* Whether s[0..len) is UTF-8 (no overlong forms, no surrogates, at most
 * U+10FFFF) without NUL bytes. */
bool utf8_text_valid(const char *s, size_t len);

/* Copy at most cap-1 bytes of the UTF-8 text src[0..len) into dst, never
 * cutting a character; dst is NUL-terminated. */
void utf8_copy_cut(char *dst, size_t cap, const char *src, size_t len);

#endif
