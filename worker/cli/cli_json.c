/* cli_json.c — pack JSON values as msgpack, and show msgpack values as
 * JSON (util/mpjson.c's display mode: every msgpack value has a JSON form). */
#include "cli_json.h"

#include "mpjson.h"

#include <stdlib.h>
#include <string.h>

int cli_json_pack(msgpack_packer *pk, const json_t *value)
{
    const char *key;
    json_t *item;
    size_t i;
    int rc = 0;

    switch (json_typeof(value)) {
    case JSON_OBJECT:
        rc = msgpack_pack_map(pk, json_object_size(value));
        json_object_foreach((json_t *)value, key, item)
        {
            rc |= msgpack_pack_str_with_body(pk, key, strlen(key));
            rc |= cli_json_pack(pk, item);
        }
        return rc ? -1 : 0;
    case JSON_ARRAY:
        rc = msgpack_pack_array(pk, json_array_size(value));
        json_array_foreach(value, i, item)
        {
            rc |= cli_json_pack(pk, item);
        }
        return rc ? -1 : 0;
    case JSON_STRING:
        rc = msgpack_pack_str_with_body(pk, json_string_value(value), json_string_length(value));
        return rc ? -1 : 0;
    case JSON_INTEGER:
        return msgpack_pack_int64(pk, json_integer_value(value)) ? -1 : 0;
    case JSON_REAL:
        return msgpack_pack_double(pk, json_real_value(value)) ? -1 : 0;
    case JSON_TRUE:
        return msgpack_pack_true(pk) ? -1 : 0;
    case JSON_FALSE:
        return msgpack_pack_false(pk) ? -1 : 0;
    case JSON_NULL:
        return msgpack_pack_nil(pk) ? -1 : 0;
    }
    return -1;
}

json_t *cli_json_from_msgpack_bytes(const void *buf, size_t len)
{
    msgpack_unpacked u;
    size_t off = 0;
    json_t *value = NULL;
    const char *problem = NULL; /* SHOW converts every value */
    msgpack_unpacked_init(&u);
    if (msgpack_unpack_next(&u, buf, len, &off) == MSGPACK_UNPACK_SUCCESS && off == len)
        value = mpjson_from_msgpack(&u.data, MPJSON_SHOW, &problem);
    msgpack_unpacked_destroy(&u);
    return value;
}
