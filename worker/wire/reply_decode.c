/* reply_decode.c — decode v1 reply messages (chunk, done, error) into a
 * struct reply_msg: index the known fields of the map, check the ones the
 * reply's type requires, copy them out. The meta map is kept as msgpack
 * (re-packed from the decoded value) for the caller to render. */
#include "reply_decode.h"

#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REPLY_VERSION 1

enum field {
    F_V,
    F_TYPE,
    F_ID,
    F_RUN,
    F_SEQ,
    F_TEXT,
    F_FINISH,
    F_USAGE,
    F_TIMINGS,
    F_WORKER,
    F_CODE,
    F_MESSAGE,
    F_RETRYABLE,
    F_META,
    F_COUNT
};

static const char *const field_names[F_COUNT] = {
    [F_V] = "v",
    [F_TYPE] = "type",
    [F_ID] = "id",
    [F_RUN] = "run",
    [F_SEQ] = "seq",
    [F_TEXT] = "text",
    [F_FINISH] = "finish",
    [F_USAGE] = "usage",
    [F_TIMINGS] = "timings",
    [F_WORKER] = "worker",
    [F_CODE] = "code",
    [F_MESSAGE] = "message",
    [F_RETRYABLE] = "retryable",
    [F_META] = "meta",
};

#define BIT(f) (1u << (f))

/* The fields each type needs besides v, type, id and run. */
static const unsigned required_fields[] = {
    [REPLY_CHUNK] = BIT(F_SEQ) | BIT(F_TEXT),
    [REPLY_DONE] = BIT(F_TEXT) | BIT(F_FINISH) | BIT(F_USAGE) | BIT(F_TIMINGS) | BIT(F_WORKER),
    [REPLY_ERROR] = BIT(F_CODE) | BIT(F_MESSAGE) | BIT(F_RETRYABLE) | BIT(F_WORKER),
};

static const char *const type_names[] = {
    [REPLY_CHUNK] = "chunk",
    [REPLY_DONE] = "done",
    [REPLY_ERROR] = "error",
};

struct decoder {
    const msgpack_object *field[F_COUNT]; /* the first value of each known key */
    char *err;
    size_t err_len;
};

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static int
fail(struct decoder *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->err, d->err_len, fmt, ap);
    va_end(ap);
    return -1;
}

static bool str_equals(const msgpack_object *o, const char *s)
{
    size_t n = strlen(s);
    return o->type == MSGPACK_OBJECT_STR && o->via.str.size == n &&
           memcmp(o->via.str.ptr, s, n) == 0;
}

static const msgpack_object *map_get(const msgpack_object *map, const char *key)
{
    for (uint32_t i = 0; i < map->via.map.size; i++)
        if (str_equals(&map->via.map.ptr[i].key, key))
            return &map->via.map.ptr[i].val;
    return NULL;
}

static char *copy_text(const char *s, size_t len)
{
    char *out = malloc(len + 1);
    if (out) {
        memcpy(out, s, len);
        out[len] = '\0';
    }
    return out;
}

/* A str field into an owned copy ("" when the field is absent). */
static int take_str(struct decoder *d, enum field f, char **dst, size_t *len)
{
    const msgpack_object *o = d->field[f];
    if (o && o->type != MSGPACK_OBJECT_STR)
        return fail(d, "%s: must be a string", field_names[f]);
    *dst = o ? copy_text(o->via.str.ptr, o->via.str.size) : copy_text("", 0);
    if (!*dst)
        return fail(d, "out of memory");
    if (len)
        *len = o ? o->via.str.size : 0;
    return 0;
}

/* An int >= 0 that fits in int64 (msgpack-c gives non-negative ints as POSITIVE_INTEGER). */
static bool count_value(const msgpack_object *o, uint64_t *out)
{
    if (!o || o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > INT64_MAX)
        return false;
    *out = o->via.u64;
    return true;
}

static bool number_value(const msgpack_object *o, double *out)
{
    if (!o)
        return false;
    switch (o->type) {
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        *out = (double)o->via.u64;
        return true;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        *out = (double)o->via.i64;
        return true;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        *out = o->via.f64;
        return true;
    default:
        return false;
    }
}

static int take_usage(struct decoder *d, struct reply_usage *usage)
{
    const msgpack_object *o = d->field[F_USAGE];
    uint64_t prompt, completion;
    if (o->type != MSGPACK_OBJECT_MAP)
        return fail(d, "usage: must be a map");
    if (!count_value(map_get(o, "prompt_tokens"), &prompt))
        return fail(d, "usage.prompt_tokens: must be an int >= 0");
    if (!count_value(map_get(o, "completion_tokens"), &completion))
        return fail(d, "usage.completion_tokens: must be an int >= 0");
    usage->prompt_tokens = (int64_t)prompt;
    usage->completion_tokens = (int64_t)completion;
    return 0;
}

static int take_timings(struct decoder *d, struct reply_timings *t)
{
    static const char *const names[] = {"queue_ms", "ttft_ms", "gen_ms", "tokens_per_s"};
    double *const dst[] = {&t->queue_ms, &t->ttft_ms, &t->gen_ms, &t->tokens_per_s};
    const msgpack_object *o = d->field[F_TIMINGS];
    if (o->type != MSGPACK_OBJECT_MAP)
        return fail(d, "timings: must be a map");
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (!number_value(map_get(o, names[i]), dst[i]))
            return fail(d, "timings.%s: must be a number", names[i]);
    return 0;
}

static int take_meta(struct decoder *d, struct reply_msg *msg)
{
    const msgpack_object *o = d->field[F_META];
    if (!o)
        return 0;
    if (o->type != MSGPACK_OBJECT_MAP)
        return fail(d, "meta: must be a map");
    msgpack_sbuffer buf;
    msgpack_packer pk;
    msgpack_sbuffer_init(&buf);
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    if (msgpack_pack_object(&pk, *o) != 0) {
        msgpack_sbuffer_destroy(&buf);
        return fail(d, "out of memory");
    }
    msg->meta_len = buf.size;
    msg->meta = (uint8_t *)msgpack_sbuffer_release(&buf);
    return 0;
}

/* Index the known keys of the map (the first occurrence of each wins). */
static int index_fields(struct decoder *d, const msgpack_object *root)
{
    if (root->type != MSGPACK_OBJECT_MAP)
        return fail(d, "not a map");
    for (uint32_t i = 0; i < root->via.map.size; i++) {
        const msgpack_object_kv *kv = &root->via.map.ptr[i];
        for (int f = 0; f < F_COUNT; f++) {
            if (!d->field[f] && str_equals(&kv->key, field_names[f])) {
                d->field[f] = &kv->val;
                break;
            }
        }
    }
    return 0;
}

static int take_type(struct decoder *d, enum reply_type *type)
{
    const msgpack_object *v = d->field[F_V];
    if (!v || v->type != MSGPACK_OBJECT_POSITIVE_INTEGER || v->via.u64 != REPLY_VERSION)
        return fail(d, "v: must be %d", REPLY_VERSION);
    if (!d->field[F_TYPE])
        return fail(d, "type: missing");
    for (size_t t = 0; t < sizeof(type_names) / sizeof(type_names[0]); t++) {
        if (str_equals(d->field[F_TYPE], type_names[t])) {
            *type = (enum reply_type)t;
            return 0;
        }
    }
    return fail(d, "type: must be chunk, done or error");
}

static int take_fields(struct decoder *d, struct reply_msg *msg)
{
    unsigned required = BIT(F_ID) | BIT(F_RUN) | required_fields[msg->type];
    for (int f = 0; f < F_COUNT; f++)
        if ((required & BIT(f)) && !d->field[f])
            return fail(d, "%s: missing", field_names[f]);

    if (take_str(d, F_ID, &msg->id, NULL) || take_str(d, F_RUN, &msg->run, NULL) ||
        take_str(d, F_TEXT, &msg->text, &msg->text_len) ||
        take_str(d, F_FINISH, &msg->finish, NULL) || take_str(d, F_WORKER, &msg->worker, NULL) ||
        take_str(d, F_CODE, &msg->code, NULL) || take_str(d, F_MESSAGE, &msg->message, NULL))
        return -1;
    if (msg->type != REPLY_ERROR && msg->run[0] == '\0')
        return fail(d, "run: must not be empty");

    switch (msg->type) {
    case REPLY_CHUNK:
        if (!count_value(d->field[F_SEQ], &msg->seq))
            return fail(d, "seq: must be an int >= 0");
        return 0;
    case REPLY_DONE:
        if (take_usage(d, &msg->usage) || take_timings(d, &msg->timings))
            return -1;
        return take_meta(d, msg);
    case REPLY_ERROR:
        if (d->field[F_CODE]->via.str.size == 0)
            return fail(d, "code: must not be empty");
        if (d->field[F_RETRYABLE]->type != MSGPACK_OBJECT_BOOLEAN)
            return fail(d, "retryable: must be a bool");
        msg->retryable = d->field[F_RETRYABLE]->via.boolean;
        return take_meta(d, msg);
    }
    return 0;
}

int reply_decode(const void *buf, size_t len, struct reply_msg *msg, char *err, size_t err_len)
{
    struct decoder d = {.err = err, .err_len = err_len};
    msgpack_unpacked u;
    size_t off = 0;
    int rc;

    memset(msg, 0, sizeof(*msg));
    msgpack_unpacked_init(&u);
    if (msgpack_unpack_next(&u, buf, len, &off) != MSGPACK_UNPACK_SUCCESS)
        rc = fail(&d, "not a complete msgpack value");
    else if (off != len)
        rc = fail(&d, "%zu bytes after the map", len - off);
    else
        rc =
            index_fields(&d, &u.data) || take_type(&d, &msg->type) || take_fields(&d, msg) ? -1 : 0;
    msgpack_unpacked_destroy(&u);
    if (rc != 0)
        reply_msg_free(msg);
    return rc;
}

void reply_msg_free(struct reply_msg *msg)
{
    free(msg->id);
    free(msg->run);
    free(msg->text);
    free(msg->finish);
    free(msg->worker);
    free(msg->code);
    free(msg->message);
    free(msg->meta);
    memset(msg, 0, sizeof(*msg));
}

const char *reply_type_name(enum reply_type type)
{
    return (unsigned)type < sizeof(type_names) / sizeof(type_names[0]) ? type_names[type] : "?";
}
