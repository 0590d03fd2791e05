/* cli_json.c — pack JSON values as msgpack, and show msgpack values as
 * JSON (lenient: every msgpack value has a JSON form, see cli_json.h).
 * job.c has its own strict msgpack -> JSON conversion for json_schema,
 * which must reject what this one shows. */
#include "cli_json.h"

#include <math.h>
#include <stdint.h>
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

static json_t *base64(const char *data, size_t len)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *in = (const unsigned char *)data;
    size_t out_len = (len + 2) / 3 * 4;
    char *out = malloc(out_len + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        out[o++] = alphabet[(v >> 18) & 63];
        out[o++] = alphabet[(v >> 12) & 63];
        out[o++] = i + 1 < len ? alphabet[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? alphabet[v & 63] : '=';
    }
    out[o] = '\0';
    json_t *s = json_stringn(out, o);
    free(out);
    return s;
}

/* A str as a JSON string; base64 when jansson refuses it (not UTF-8). */
static json_t *text(const char *s, size_t len)
{
    json_t *v = json_stringn(s, len);
    return v ? v : base64(s, len);
}

/* A map key as a JSON string: a str as text, anything else as its JSON text. */
static json_t *key_text(const msgpack_object *key)
{
    if (key->type == MSGPACK_OBJECT_STR)
        return text(key->via.str.ptr, key->via.str.size);
    json_t *k = cli_json_from_msgpack(key);
    char *dumped = k ? json_dumps(k, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
    json_t *s = dumped ? json_string(dumped) : NULL;
    json_decref(k);
    free(dumped);
    return s;
}

static json_t *from_map(const msgpack_object_map *map)
{
    json_t *obj = json_object();
    for (uint32_t i = 0; obj && i < map->size; i++) {
        json_t *key = key_text(&map->ptr[i].key);
        json_t *val = key ? cli_json_from_msgpack(&map->ptr[i].val) : NULL;
        int rc =
            val ? json_object_setn_new(obj, json_string_value(key), json_string_length(key), val)
                : -1;
        json_decref(key);
        if (rc != 0) {
            json_decref(obj);
            return NULL;
        }
    }
    return obj;
}

json_t *cli_json_from_msgpack(const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return json_null();
    case MSGPACK_OBJECT_BOOLEAN:
        return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        return o->via.u64 <= INT64_MAX ? json_integer((json_int_t)o->via.u64)
                                       : json_real((double)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return json_integer((json_int_t)o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return isfinite(o->via.f64) ? json_real(o->via.f64) : json_null();
    case MSGPACK_OBJECT_STR:
        return text(o->via.str.ptr, o->via.str.size);
    case MSGPACK_OBJECT_BIN:
        return base64(o->via.bin.ptr, o->via.bin.size);
    case MSGPACK_OBJECT_EXT:
        return base64(o->via.ext.ptr, o->via.ext.size);
    case MSGPACK_OBJECT_ARRAY: {
        json_t *arr = json_array();
        for (uint32_t i = 0; arr && i < o->via.array.size; i++) {
            if (json_array_append_new(arr, cli_json_from_msgpack(&o->via.array.ptr[i])) != 0) {
                json_decref(arr);
                return NULL;
            }
        }
        return arr;
    }
    case MSGPACK_OBJECT_MAP:
        return from_map(&o->via.map);
    }
    return NULL;
}

json_t *cli_json_from_msgpack_bytes(const void *buf, size_t len)
{
    msgpack_unpacked u;
    size_t off = 0;
    json_t *value = NULL;
    msgpack_unpacked_init(&u);
    if (msgpack_unpack_next(&u, buf, len, &off) == MSGPACK_UNPACK_SUCCESS && off == len)
        value = cli_json_from_msgpack(&u.data);
    msgpack_unpacked_destroy(&u);
    return value;
}
