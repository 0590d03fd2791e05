/* cli_json.h — JSON <-> msgpack for the llmq CLI: jobs written as JSON
 * (input lines, flags) are packed as msgpack; replies (msgpack) are shown
 * as JSON.
 *
 * Packing is exact: object -> map, array -> array, string -> str, integer
 * -> int, real -> float64, true/false -> bool, null -> nil (which a job
 * then rejects: spec.md leaves optional fields out instead).
 * Showing is total, for display only: every msgpack value gets a JSON form.
 * bin, ext and a str that is not UTF-8 become base64 text, a float that is
 * not finite becomes null, an int above INT64_MAX becomes a real, and a map
 * key that is not a str becomes its compact JSON text. */
#ifndef LLMQ_CLI_JSON_H
#define LLMQ_CLI_JSON_H

#include <jansson.h>
#include <msgpack.h>
#include <stddef.h>

/* Append `value` to the packer. Returns 0, or -1 when the packer fails. */
int cli_json_pack(msgpack_packer *pk, const json_t *value);

/* The JSON form of one msgpack value in bytes; NULL when they are not
 * exactly one complete msgpack value, or when out of memory. */
json_t *cli_json_from_msgpack_bytes(const void *buf, size_t len);

#endif
