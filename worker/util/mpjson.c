/* mpjson.c — msgpack -> jansson, exact (json_schema) or for display (the
 * CLI); see mpjson.h for what each mode does with values JSON lacks. */
#include "mpjson.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void utf8_copy_cut(char *dst, size_t cap, const char *src, size_t len)
{
    if (cap == 0)
        return;
    size_t n = len;
    if (n >= cap) {
        n = cap - 1;
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
}

bool utf8_text_valid(const char *s, size_t len)
{
    const uint8_t *p = (const uint8_t *)s;
    size_t i = 0;

    while (i < len) {
        uint8_t c = p[i];
        unsigned tail;
        uint32_t cp, min;
        if (c == 0)
            return false;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c < 0xc2 || c > 0xf4) /* a continuation byte, or a lead that can only be overlong */
            return false;
        tail = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : 1;
        cp = c & (0x3fu >> tail);
        min = tail == 1 ? 0x80 : tail == 2 ? 0x800 : 0x10000;
        if (tail > len - i - 1)
            return false;
        for (unsigned k = 1; k <= tail; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += tail + 1;
    }
    return true;
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

static json_t *fail(const char **problem, const char *why)
{
    *problem = why;
    return NULL;
}

static json_t *from_str(const char *s, size_t len, enum mpjson_mode mode, const char **problem)
{
    if (mode == MPJSON_EXACT) {
        if (!utf8_text_valid(s, len))
            return fail(problem, "strings must be valid UTF-8 without NUL bytes");
        return json_stringn(s, len);
    }
    json_t *v = json_stringn(s, len);
    return v ? v : base64(s, len); /* jansson refuses what is not UTF-8 */
}

static json_t *from_int(const msgpack_object *o, enum mpjson_mode mode, const char **problem)
{
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        return json_integer((json_int_t)o->via.i64);
    if (o->via.u64 <= INT64_MAX)
        return json_integer((json_int_t)o->via.u64);
    if (mode == MPJSON_EXACT)
        return fail(problem, "integer out of the signed 64-bit range");
    return json_real((double)o->via.u64);
}

static json_t *from_real(double d, enum mpjson_mode mode, const char **problem)
{
    if (isfinite(d))
        return json_real(d);
    if (mode == MPJSON_EXACT)
        return fail(problem, "NaN and infinity have no JSON meaning");
    return json_null();
}

static json_t *from_bytes(const char *p, size_t len, enum mpjson_mode mode, const char **problem)
{
    if (mode == MPJSON_EXACT)
        return fail(problem, "bin and ext values have no JSON meaning");
    return base64(p, len);
}

static json_t *from_array(const msgpack_object_array *a, enum mpjson_mode mode,
                          const char **problem)
{
    json_t *arr = json_array();
    for (uint32_t k = 0; arr && k < a->size; k++) {
        json_t *item = mpjson_from_msgpack(&a->ptr[k], mode, problem);
        if (!item || json_array_append_new(arr, item) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

/* A map key as a JSON string (NULL with *problem set when EXACT refuses it). */
static json_t *key_text(const msgpack_object *key, enum mpjson_mode mode, const char **problem)
{
    const char *p = key->via.str.ptr;
    size_t len = key->via.str.size;
    if (key->type == MSGPACK_OBJECT_STR && (mode == MPJSON_SHOW || utf8_text_valid(p, len)))
        return from_str(p, len, mode, problem);
    if (mode == MPJSON_EXACT)
        return fail(problem, "map keys must be UTF-8 strings");
    json_t *k = mpjson_from_msgpack(key, mode, problem);
    char *dumped = k ? json_dumps(k, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
    json_t *s = dumped ? json_string(dumped) : NULL;
    json_decref(k);
    free(dumped);
    return s;
}

static json_t *from_map(const msgpack_object_map *map, enum mpjson_mode mode, const char **problem)
{
    json_t *obj = json_object();
    for (uint32_t i = 0; obj && i < map->size; i++) {
        json_t *key = key_text(&map->ptr[i].key, mode, problem);
        const char *name = json_string_value(key);
        size_t len = json_string_length(key);
        json_t *val = NULL;
        if (key && mode == MPJSON_EXACT && json_object_getn(obj, name, len))
            *problem = "a map key is given more than once";
        else if (key)
            val = mpjson_from_msgpack(&map->ptr[i].val, mode, problem);
        int rc = val ? json_object_setn_new(obj, name, len, val) : -1;
        json_decref(key);
        if (rc != 0) {
            json_decref(obj);
            return NULL;
        }
    }
    return obj;
}

json_t *mpjson_from_msgpack(const msgpack_object *o, enum mpjson_mode mode, const char **problem)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return json_null();
    case MSGPACK_OBJECT_BOOLEAN:
        return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return from_int(o, mode, problem);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return from_real(o->via.f64, mode, problem);
    case MSGPACK_OBJECT_STR:
        return from_str(o->via.str.ptr, o->via.str.size, mode, problem);
    case MSGPACK_OBJECT_BIN:
        return from_bytes(o->via.bin.ptr, o->via.bin.size, mode, problem);
    case MSGPACK_OBJECT_EXT:
        return from_bytes(o->via.ext.ptr, o->via.ext.size, mode, problem);
    case MSGPACK_OBJECT_ARRAY:
        return from_array(&o->via.array, mode, problem);
    case MSGPACK_OBJECT_MAP:
        return from_map(&o->via.map, mode, problem);
    }
    return fail(problem, "unknown msgpack type");
}
