/* cancel.c — decode a control-topic cancel message (cancel.h). */
#include "cancel.h"

#include <msgpack.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "mpjson.h"
#include "msgpack_skip.h"

#define CANCEL_ID_MAX      128
#define CANCEL_NESTING_MAX 32

static bool key_is(const msgpack_object *key, const char *name)
{
    size_t n = strlen(name);
    return key->type == MSGPACK_OBJECT_STR && key->via.str.size == n &&
           memcmp(key->via.str.ptr, name, n) == 0;
}

/* A str of min..max bytes of UTF-8 without NUL. */
static bool text_ok(const msgpack_object *o, size_t min, size_t max)
{
    return o->type == MSGPACK_OBJECT_STR && o->via.str.size >= min && o->via.str.size <= max &&
           utf8_text_valid(o->via.str.ptr, o->via.str.size);
}

static int fail(char *why, size_t why_len, const char *text)
{
    snprintf(why, why_len, "%s", text);
    return -1;
}

/* The map's fields into `out`; -1 with why on the first broken rule. */
static int decode_map(const msgpack_object_map *map, struct cancel_msg *out, char *why,
                      size_t why_len)
{
    const msgpack_object *v = NULL, *type = NULL, *id = NULL, *run = NULL, *reason = NULL;
    for (uint32_t k = 0; k < map->size; k++) {
        const msgpack_object *key = &map->ptr[k].key, *val = &map->ptr[k].val;
        if (key->type != MSGPACK_OBJECT_STR)
            return fail(why, why_len, "keys must be strings");
        const msgpack_object **slot = key_is(key, "v")        ? &v
                                      : key_is(key, "type")   ? &type
                                      : key_is(key, "id")     ? &id
                                      : key_is(key, "run")    ? &run
                                      : key_is(key, "reason") ? &reason
                                                              : NULL;
        if (slot && *slot)
            return fail(why, why_len, "a field is given more than once");
        if (slot)
            *slot = val;
    }
    if (!v || v->type != MSGPACK_OBJECT_POSITIVE_INTEGER || v->via.u64 != 1)
        return fail(why, why_len, "v: must be the integer 1");
    if (!type || !text_ok(type, 1, 64) || !key_is(type, "cancel"))
        return fail(why, why_len, "type: not \"cancel\"");
    if (!id || !text_ok(id, 1, CANCEL_ID_MAX))
        return fail(why, why_len, "id: must be a string of 1..128 bytes");
    if (run && !text_ok(run, 1, CANCEL_ID_MAX))
        return fail(why, why_len, "run: must be a non-empty string of at most 128 bytes");
    if (reason && !text_ok(reason, 0, SIZE_MAX))
        return fail(why, why_len, "reason: must be a string");
    utf8_copy_cut(out->id, sizeof(out->id), id->via.str.ptr, id->via.str.size);
    if (run)
        utf8_copy_cut(out->run, sizeof(out->run), run->via.str.ptr, run->via.str.size);
    if (reason)
        utf8_copy_cut(out->reason, sizeof(out->reason), reason->via.str.ptr, reason->via.str.size);
    return 0;
}

int cancel_decode(const void *buf, size_t len, struct cancel_msg *out, char *why, size_t why_len)
{
    size_t end = 0, off = 0;
    memset(out, 0, sizeof(*out));
    if (!buf || !msgpack_skip(buf, len, &end, CANCEL_NESTING_MAX) || end != len)
        return fail(why, why_len, "not one complete msgpack value");
    msgpack_unpacked msg;
    msgpack_unpacked_init(&msg);
    int rc;
    if (msgpack_unpack_next(&msg, buf, len, &off) != MSGPACK_UNPACK_SUCCESS)
        rc = fail(why, why_len, "not a msgpack value");
    else if (msg.data.type != MSGPACK_OBJECT_MAP)
        rc = fail(why, why_len, "not a map");
    else
        rc = decode_map(&msg.data.via.map, out, why, why_len);
    msgpack_unpacked_destroy(&msg);
    return rc;
}
