/* delivery.c — each message kept, with its copy of topic, key, payload and
 * headers, from delivery_send until the broker acknowledges it or it is
 * given up; the rules are in delivery.h. */
#include "delivery.h"

#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gave_up.h"
#include "kafka_names.h"
#include "loop.h"
#include "reply.h"

/* A message the broker refused is produced again after this. */
#define REPRODUCE_DELAY_MS 1000
#define MAX_HEADERS        8

struct item {
    struct delivery *d;
    struct item *prev, *next;
    char *topic;
    char *key;
    size_t key_len;
    msgpack_sbuffer payload;
    struct kafka_header headers[MAX_HEADERS];
    size_t n_headers;
    char *header_data; /* the headers' names and values */
    char *job_id;      /* NULL when unknown */
    char *run;         /* NULL: none ran */
    char reply_type[16];
    bool trimmed; /* sent again without its optional bulk (logprobs, partial_text) */
    bool shrunk;  /* replaced by a small error reply: the broker refused its size */
    loop_timer_id retry;
    delivery_settled_fn on_settled;
    void *ctx;
};

struct delivery {
    struct loop *loop;
    struct kafka *kafka;
    const struct llmq_config *cfg;
    const struct logger *log;
    struct item *items; /* not settled yet */
    uint64_t failures;
    uint64_t gave_up[GAVE_UP_COUNT];
    bool stopped;
    char refused_topic[KAFKA_TOPIC_MAX + 1]; /* a configured topic the broker refuses; "" */
    char refused[KAFKA_TOPIC_MAX + 128];     /* and why, for /readyz */
};

struct delivery *delivery_new(struct loop *loop, struct kafka *kafka, const struct llmq_config *cfg,
                              const struct logger *log)
{
    struct delivery *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    *d = (struct delivery){.loop = loop, .kafka = kafka, .cfg = cfg, .log = log};
    return d;
}

static void item_free(struct item *it)
{
    loop_timer_cancel(it->d->loop, it->retry);
    msgpack_sbuffer_destroy(&it->payload);
    free(it->topic);
    free(it->key);
    free(it->header_data);
    free(it->job_id);
    free(it->run);
    free(it);
}

void delivery_free(struct delivery *d)
{
    if (!d)
        return;
    while (d->items) {
        struct item *it = d->items;
        d->items = it->next;
        item_free(it);
    }
    free(d);
}

void delivery_stop(struct delivery *d)
{
    d->stopped = true;
}

uint64_t delivery_failures(const struct delivery *d)
{
    return d->failures;
}

uint64_t delivery_gave_up(const struct delivery *d, enum gave_up_kind kind)
{
    return d->gave_up[kind];
}

static const char *job_name(const struct item *it)
{
    return it->job_id ? it->job_id : "?";
}

/* Forget the message, then tell its owner. */
static void settle(struct item *it, bool acknowledged)
{
    struct delivery *d = it->d;
    if (it->prev)
        it->prev->next = it->next;
    else
        d->items = it->next;
    if (it->next)
        it->next->prev = it->prev;
    delivery_settled_fn fn = it->on_settled;
    void *ctx = it->ctx;
    item_free(it);
    fn(ctx, acknowledged);
}

/* Errors after which the broker will never take the message: producing it
 * again would hold its job's offset, and so every commit of the partition,
 * back forever. A missing, forbidden or invalid topic, or any other refusal
 * that is not retriable, counts only for a job's own reply_to (bad input):
 * the worker's configured topics refused is a deployment error, and their
 * messages wait for the operator rather than be lost. */
static bool permanent(const struct item *it, int err)
{
    const struct llmq_config *cfg = it->d->cfg;
    switch (kafka_error_kind(err)) {
    case KAFKA_ERR_TOO_LARGE:
    case KAFKA_ERR_INVALID:
        return true;
    case KAFKA_ERR_NO_TOPIC:
    case KAFKA_ERR_REFUSED:
        return strcmp(it->topic, cfg->kafka.reply_topic) != 0 &&
               strcmp(it->topic, cfg->kafka.dead_letter_topic) != 0;
    default:
        return false;
    }
}

static bool is_key(const msgpack_object *k, const char *key, size_t klen)
{
    return k->type == MSGPACK_OBJECT_STR && k->via.str.size == klen &&
           memcmp(k->via.str.ptr, key, klen) == 0;
}

/* Re-encode the msgpack map in it->payload without its top-level `key`.
 * Returns whether the key was there (and the payload now lacks it). */
static bool drop_key(struct item *it, const char *key)
{
    msgpack_unpacked top;
    msgpack_unpacked_init(&top);
    bool dropped = false;
    if (msgpack_unpack_next(&top, it->payload.data, it->payload.size, NULL) ==
            MSGPACK_UNPACK_SUCCESS &&
        top.data.type == MSGPACK_OBJECT_MAP) {
        const msgpack_object_map *map = &top.data.via.map;
        size_t klen = strlen(key), keep = 0;
        for (uint32_t i = 0; i < map->size; i++)
            keep += !is_key(&map->ptr[i].key, key, klen);
        if (keep < map->size) {
            msgpack_sbuffer out;
            msgpack_sbuffer_init(&out);
            msgpack_packer pk;
            msgpack_packer_init(&pk, &out, msgpack_sbuffer_write);
            int rc = msgpack_pack_map(&pk, keep);
            for (uint32_t i = 0; i < map->size; i++) {
                const msgpack_object *k = &map->ptr[i].key;
                if (is_key(k, key, klen))
                    continue;
                rc |= msgpack_pack_object(&pk, *k);
                rc |= msgpack_pack_object(&pk, map->ptr[i].val);
            }
            dropped = rc == 0;
            if (dropped) {
                msgpack_sbuffer_destroy(&it->payload);
                it->payload = out; /* the unpacked objects point into the old one: done with */
            } else {
                msgpack_sbuffer_destroy(&out);
            }
        }
    }
    msgpack_unpacked_destroy(&top);
    return dropped;
}

/* First answer to a terminal reply too large for the broker (spec.md):
 * send it again without its logprobs (done) or partial_text (error), which
 * the reader can do without. Returns whether it did. */
static bool trim(struct item *it, int err)
{
    if (kafka_error_kind(err) != KAFKA_ERR_TOO_LARGE || it->trimmed || !it->reply_type[0] ||
        !it->job_id)
        return false;
    it->trimmed = true;
    const char *bulk = strcmp(it->reply_type, "done") == 0 ? "logprobs" : "partial_text";
    size_t before = it->payload.size;
    if (!drop_key(it, bulk))
        return false;
    gave_up(it->d->gave_up, it->d->log, GAVE_UP_REPLY_TRIMMED, it->job_id, it->topic,
            "the %.16s reply (%zu bytes) is larger than the broker accepts (%s); "
            "sending it again without %s (%zu bytes)",
            it->reply_type, before, kafka_error_str(err), bulk, it->payload.size);
    return true;
}

/* A terminal reply the broker refuses for its size (a huge meta, a long
 * text) becomes a small `internal` error reply, so the producer still learns
 * how its job ended. Returns whether it did (once per message). */
static bool shrink(struct item *it, int err)
{
    if (kafka_error_kind(err) != KAFKA_ERR_TOO_LARGE || it->shrunk || !it->reply_type[0] ||
        !it->job_id)
        return false;
    char message[512];
    snprintf(message, sizeof(message),
             "the %.16s reply (%zu bytes) is larger than the broker accepts (%s)", it->reply_type,
             it->payload.size, kafka_error_str(err));
    struct reply_error e = {
        .id = it->job_id,
        .run = it->run,
        .code = LLMQ_INTERNAL,
        .message = message,
        .worker = it->d->cfg->worker_id,
    };
    msgpack_sbuffer_clear(&it->payload);
    if (reply_encode_error(&it->payload, &e) != 0)
        return false;
    it->headers[0] = (struct kafka_header){"llmq-type", "error", 5};
    it->headers[1] = (struct kafka_header){"llmq-id", it->job_id, strlen(it->job_id)};
    it->n_headers = 2;
    it->shrunk = true;
    gave_up(it->d->gave_up, it->d->log, GAVE_UP_REPLY_TOO_LARGE, it->job_id, it->topic,
            "%s; sending an error reply instead", message);
    return true;
}

/* A configured topic the broker refuses (deleted, its ACLs): its messages
 * wait, and /readyz names it until one is acknowledged. The first refusal
 * is a warning; each message's later ones (every second, for every message
 * waiting) go to the debug log. Returns the level for this one's line. */
static enum log_level note_refusal(struct item *it, int err)
{
    struct delivery *d = it->d;
    enum kafka_error kind = kafka_error_kind(err);
    if (kind != KAFKA_ERR_NO_TOPIC && kind != KAFKA_ERR_REFUSED)
        return LOG_WARN;
    if (strcmp(d->refused_topic, it->topic) == 0)
        return LOG_DEBUG;
    snprintf(d->refused_topic, sizeof(d->refused_topic), "%s", it->topic);
    snprintf(d->refused, sizeof(d->refused), "the broker refuses messages to %s (%s)", it->topic,
             kafka_error_str(err));
    log_warn(d->log, "delivery",
             "%s: its messages wait, each produced again every second, until it takes one",
             d->refused);
    return LOG_WARN;
}

static void note_acknowledged(struct item *it)
{
    struct delivery *d = it->d;
    if (!d->refused_topic[0] || strcmp(d->refused_topic, it->topic) != 0)
        return;
    log_info(d->log, "delivery", "the broker takes messages to %s again", it->topic);
    d->refused_topic[0] = d->refused[0] = '\0';
}

const char *delivery_refused(const struct delivery *d)
{
    return d->refused[0] ? d->refused : NULL;
}

static void give_up(struct item *it, int err)
{
    it->d->failures++;
    gave_up(it->d->gave_up, it->d->log,
            it->reply_type[0] ? GAVE_UP_REPLY_NEVER_TAKEN : GAVE_UP_DEAD_NEVER_TAKEN, it->job_id,
            it->topic, "the broker will never take its message to %s (%s)", it->topic,
            kafka_error_str(err));
}

static void produce(struct item *it);

static void retry_due(struct loop *loop, void *ctx)
{
    struct item *it = ctx;
    (void)loop;
    produce(it);
}

static void abandon_due(struct loop *loop, void *ctx)
{
    struct item *it = ctx;
    (void)loop;
    settle(it, false);
}

static void delivered(void *opaque, int err)
{
    struct item *it = opaque;
    struct delivery *d = it->d;
    if (err && d->stopped) {
        /* Shutting down: not acknowledged, so not committed either; the
         * job's next owner runs it again. */
        gave_up(d->gave_up, d->log, GAVE_UP_UNACKED_AT_SHUTDOWN, it->job_id, it->topic,
                "not acknowledged while stopping (%s); its offset stays uncommitted",
                kafka_error_str(err));
        return;
    }
    if (err && (trim(it, err) || shrink(it, err))) {
        produce(it);
    } else if (err && permanent(it, err)) {
        give_up(it, err);
        settle(it, false);
    } else if (err) {
        /* librdkafka already retried for message.timeout.ms; the message
         * must not be lost, so keep trying while the worker runs. */
        d->failures++;
        log_at(d->log, note_refusal(it, err), "delivery",
               "job %s: reply to %s not acknowledged (%s); producing again", job_name(it),
               it->topic, kafka_error_str(err));
        it->retry = loop_timer_after(d->loop, REPRODUCE_DELAY_MS, retry_due, it);
    } else {
        note_acknowledged(it);
        settle(it, true);
    }
}

static void produce(struct item *it)
{
    struct delivery *d = it->d;
    struct kafka_message msg = {
        .topic = it->topic,
        .key = it->key,
        .key_len = it->key_len,
        .payload = it->payload.data,
        .len = it->payload.size,
        .headers = it->headers,
        .n_headers = it->n_headers,
    };
    int err = kafka_produce(d->kafka, &msg, delivered, it);
    if (err && (trim(it, err) || shrink(it, err))) {
        it->retry = loop_timer_after(d->loop, 0, retry_due, it);
    } else if (err && permanent(it, err)) {
        give_up(it, err);
        /* Not now: delivery_send promises no callback from within. */
        it->retry = loop_timer_after(d->loop, 0, abandon_due, it);
    } else if (err) {
        log_at(d->log, note_refusal(it, err), "delivery",
               "job %s: cannot produce to %s (%s); trying again", job_name(it), it->topic,
               kafka_error_str(err));
        it->retry = loop_timer_after(d->loop, REPRODUCE_DELAY_MS, retry_due, it);
    }
}

/* A copy of a key; NULL stays NULL (no key, which an empty key is not). */
static char *key_copy(const void *key, size_t len)
{
    char *copy = key ? malloc(len ? len : 1) : NULL;
    if (copy && len)
        memcpy(copy, key, len);
    return copy;
}

/* Copy the headers' names and values into one block the item owns. */
static int copy_headers(struct item *it, const struct kafka_message *msg)
{
    size_t size = 0;
    for (size_t i = 0; i < msg->n_headers; i++)
        size += strlen(msg->headers[i].name) + 1 + msg->headers[i].len;
    it->header_data = malloc(size ? size : 1);
    if (!it->header_data)
        return -1;
    char *at = it->header_data;
    for (size_t i = 0; i < msg->n_headers; i++) {
        const struct kafka_header *h = &msg->headers[i];
        size_t name_len = strlen(h->name) + 1;
        memcpy(at, h->name, name_len);
        if (h->len)
            memcpy(at + name_len, h->value, h->len);
        it->headers[i] = (struct kafka_header){at, at + name_len, h->len};
        at += name_len + h->len;
    }
    it->n_headers = msg->n_headers;
    return 0;
}

static struct item *item_new(struct delivery *d, const struct kafka_message *msg,
                             const struct delivery_job *job)
{
    struct item *it = calloc(1, sizeof(*it));
    if (!it)
        return NULL;
    it->d = d;
    msgpack_sbuffer_init(&it->payload);
    it->topic = strdup(msg->topic);
    it->key = key_copy(msg->key, msg->key_len);
    it->key_len = msg->key_len;
    it->job_id = job->id ? strdup(job->id) : NULL;
    it->run = job->run ? strdup(job->run) : NULL;
    snprintf(it->reply_type, sizeof(it->reply_type), "%s", job->reply_type ? job->reply_type : "");
    bool ok = it->topic && (!msg->key || it->key) && (!job->id || it->job_id) &&
              (!job->run || it->run) && copy_headers(it, msg) == 0 &&
              msgpack_sbuffer_write(&it->payload, (const char *)msg->payload, msg->len) == 0;
    if (!ok) {
        item_free(it);
        return NULL;
    }
    return it;
}

int delivery_send(struct delivery *d, const struct kafka_message *msg,
                  const struct delivery_job *job, delivery_settled_fn on_settled, void *ctx)
{
    struct item *it = msg->n_headers <= MAX_HEADERS ? item_new(d, msg, job) : NULL;
    if (!it) {
        gave_up(d->gave_up, d->log, GAVE_UP_NOT_KEPT, job->id, msg->topic,
                "cannot keep its message (%s); not sent",
                msg->n_headers > MAX_HEADERS ? "too many headers" : "out of memory");
        return -1;
    }
    it->on_settled = on_settled;
    it->ctx = ctx;
    it->next = d->items;
    if (d->items)
        d->items->prev = it;
    d->items = it;
    produce(it);
    return 0;
}
