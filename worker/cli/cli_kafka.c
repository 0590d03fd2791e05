/* cli_kafka.c — librdkafka clients for the llmq CLI: configuration from the
 * global options, a producer with per-message delivery callbacks, and a
 * follower that assigns itself every partition of a topic at the offsets
 * it queried (no group join, no commits). */
#include "cli_kafka.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "kafka_props.h"
#include "random_id.h"

extern char **environ;

#define WAIT_SLICE_MS 100 /* the longest a blocking librdkafka call runs at once */

/* What librdkafka's callbacks write to: the first member of both clients,
 * so the opaque pointer of either client is also a struct client_state. */
struct client_state {
    bool verbose;
    bool consumer; /* its events are served by rd_kafka_consumer_poll() */
    bool refused;  /* the brokers refused the credentials or the TLS handshake */
    char last_error[512];
};

struct cli_producer {
    struct client_state st;
    rd_kafka_t *rk;
    cli_delivery_fn on_delivery;
    void *ctx;
};

struct cli_follower {
    struct client_state st;
    rd_kafka_t *rk;
};

static void on_log(const rd_kafka_t *rk, int level, const char *facility, const char *line)
{
    const struct client_state *st = rd_kafka_opaque(rk);
    (void)level;
    if (st->verbose)
        fprintf(stderr, "llmq: librdkafka %s: %s\n", facility, line);
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct client_state *st = opaque;
    (void)rk;
    /* "n/n brokers are down" follows the reason why: keep that one. */
    if (err != RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || !st->last_error[0])
        snprintf(st->last_error, sizeof(st->last_error), "%s", reason);
    /* Waiting does not mend wrong credentials or a TLS mismatch: stop now. */
    if (err == RD_KAFKA_RESP_ERR__AUTHENTICATION || err == RD_KAFKA_RESP_ERR__SSL)
        st->refused = true;
    if (st->verbose)
        fprintf(stderr, "llmq: kafka: %s (%s)\n", reason, rd_kafka_err2name(err));
}

static int conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, char *err,
                    size_t err_len)
{
    char why[256];
    if (rd_kafka_conf_set(conf, name, value, why, sizeof(why)) == RD_KAFKA_CONF_OK)
        return 0;
    snprintf(err, err_len, "-X %s: %s", name, why);
    return -1;
}

/* LLMQ_KAFKA_PROP_* variables ("@/path" values read from the file), so a
 * secret need not be on the command line (worker/util/kafka_props.h). */
static int conf_set_env(rd_kafka_conf_t *conf, char *err, size_t err_len)
{
    for (size_t i = 0; environ[i]; i++) {
        char name[KAFKA_PROPS_NAME_MAX], why[256];
        const char *raw = kafka_props_env(environ[i], name, sizeof(name));
        if (!raw)
            continue;
        char *value = name[0] ? kafka_props_value(raw, why, sizeof(why)) : NULL;
        int rc = value ? conf_set(conf, name, value, err, err_len) : -1;
        if (!value)
            snprintf(err, err_len, "%.*s: %s", (int)strcspn(environ[i], "="), environ[i],
                     name[0] ? why : "names no property");
        free(value);
        if (rc != 0)
            return -1;
    }
    return 0;
}

/* A configuration: the brokers, then `defaults` (pairs, NULL-terminated),
 * then LLMQ_KAFKA_PROP_* variables, then the user's -X properties ("@/path"
 * values read from the file), which win over all. */
static rd_kafka_conf_t *make_conf(const struct cli_global *g, const char *const *defaults,
                                  char *err, size_t err_len)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    int rc = conf_set(conf, "bootstrap.servers", g->brokers, err, err_len);
    rc = rc ? rc : conf_set(conf, "client.id", "llmq-cli", err, err_len);
    for (size_t i = 0; defaults && defaults[i] && rc == 0; i += 2)
        rc = conf_set(conf, defaults[i], defaults[i + 1], err, err_len);
    rc = rc ? rc : conf_set_env(conf, err, err_len);
    for (size_t i = 0; i < g->n_props && rc == 0; i++) {
        const char *eq = strchr(g->props[i], '=');
        char name[256], why[256];
        snprintf(name, sizeof(name), "%.*s", (int)(eq - g->props[i]), g->props[i]);
        char *value = kafka_props_value(eq + 1, why, sizeof(why));
        if (!value)
            snprintf(err, err_len, "-X %s: %s", name, why);
        rc = value ? conf_set(conf, name, value, err, err_len) : -1;
        free(value);
    }
    if (rc != 0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_log_cb(conf, on_log);
    rd_kafka_conf_set_error_cb(conf, on_error);
    return conf;
}

int cli_kafka_check_props(const struct cli_global *g, char *err, size_t err_len)
{
    rd_kafka_conf_t *conf = make_conf(g, NULL, err, err_len);
    if (!conf)
        return -1;
    rd_kafka_conf_destroy(conf);
    return 0;
}

static int remaining_ms(int64_t deadline)
{
    int64_t left = deadline - clock_mono_ms();
    return left > 0 ? (int)left : 0;
}

/* The next slice of a wait that ends at `deadline`, or 0 when the wait is
 * over: the deadline passed or a stop signal came. Blocking calls are made
 * in slices so that SIGINT / SIGTERM are seen at once. */
static int next_slice(struct cli_global *g, int64_t deadline)
{
    int left = remaining_ms(deadline);
    if (left == 0 || cli_stop_requested(g))
        return 0;
    return left < WAIT_SLICE_MS ? left : WAIT_SLICE_MS;
}

/* Run the error callback for the client's pending error events (the
 * reason a broker cannot be reached), without waiting. */
static void serve_errors(rd_kafka_t *rk, const struct client_state *st)
{
    if (!st->consumer) {
        rd_kafka_poll(rk, 0);
        return;
    }
    rd_kafka_message_t *msg = rd_kafka_consumer_poll(rk, 0);
    if (msg) /* nothing is assigned yet: an error event */
        rd_kafka_message_destroy(msg);
}

/* The brokers' metadata (of `rkt`, or of no topic when NULL) into *md,
 * waiting at most until `deadline`, or until the brokers refused the
 * credentials or the TLS handshake. On failure, why (or nothing when a stop
 * signal came) is said in err. */
static rd_kafka_resp_err_t await_metadata(struct cli_global *g, rd_kafka_t *rk,
                                          const struct client_state *st, rd_kafka_topic_t *rkt,
                                          int64_t deadline, const struct rd_kafka_metadata **md,
                                          char *err, size_t err_len)
{
    rd_kafka_resp_err_t rc = RD_KAFKA_RESP_ERR__TIMED_OUT;
    for (int slice; rc != RD_KAFKA_RESP_ERR_NO_ERROR && !st->refused &&
                    (slice = next_slice(g, deadline)) > 0;) {
        rc = rd_kafka_metadata(rk, 0, rkt, md, slice);
        serve_errors(rk, st);
    }
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR && st->refused)
        snprintf(err, err_len, "the Kafka broker at %s refused the connection: %s", g->brokers,
                 st->last_error);
    else if (rc != RD_KAFKA_RESP_ERR_NO_ERROR && !g->stopped_by)
        snprintf(err, err_len, "no Kafka broker answered at %s within %g s (--connect-timeout): %s",
                 g->brokers, g->connect_timeout_s,
                 st->last_error[0] ? st->last_error : rd_kafka_err2str(rc));
    return rc;
}

/* rd_kafka_new() owns conf on success only. */
static rd_kafka_t *make_client(rd_kafka_type_t type, rd_kafka_conf_t *conf, char *err,
                               size_t err_len)
{
    char why[512];
    rd_kafka_t *rk = rd_kafka_new(type, conf, why, sizeof(why));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        snprintf(err, err_len, "cannot create a Kafka client: %s", why);
    }
    return rk;
}

/* ---- producer ----------------------------------------------------------- */

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    struct cli_producer *p = opaque;
    (void)rk;
    p->on_delivery(p->ctx, msg->_private, msg->err ? rd_kafka_err2str(msg->err) : NULL);
}

struct cli_producer *cli_producer_new(struct cli_global *g, int message_timeout_ms,
                                      cli_delivery_fn delivery_fn, void *ctx, char *err,
                                      size_t err_len)
{
    char timeout[32];
    snprintf(timeout, sizeof(timeout), "%d", message_timeout_ms > 1 ? message_timeout_ms : 1);
    /* batch.size 64 KiB (librdkafka's is 1 MB): a worker holds a fetched
     * record batch whole until its last job is read (FINDINGS, "The
     * worker's cost per job"). */
    const char *const defaults[] = {"message.timeout.ms", timeout, "linger.ms", "5",
                                    "batch.size",         "65536", NULL};
    struct cli_producer *p = calloc(1, sizeof(*p));
    if (!p) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    p->st.verbose = g->verbose;
    p->on_delivery = delivery_fn;
    p->ctx = ctx;
    rd_kafka_conf_t *conf = make_conf(g, defaults, err, err_len);
    if (conf) {
        rd_kafka_conf_set_opaque(conf, p);
        rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
        p->rk = make_client(RD_KAFKA_PRODUCER, conf, err, err_len);
    }
    /* Some broker must answer (a metadata request for no topic) before
     * anything is sent, within the connect timeout. */
    const struct rd_kafka_metadata *md = NULL;
    int64_t deadline = clock_mono_ms() + cli_connect_timeout_ms(g);
    if (p->rk && await_metadata(g, p->rk, &p->st, NULL, deadline, &md, err, err_len) ==
                     RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_metadata_destroy(md);
        return p;
    }
    cli_producer_free(p);
    return NULL;
}

const char *cli_producer_send(struct cli_producer *p, const char *topic, const char *key,
                              const void *payload, size_t len, const char *const *headers,
                              void *msg_opaque)
{
    rd_kafka_headers_t *hdrs = NULL;
    for (size_t i = 0; headers && headers[i]; i += 2) {
        hdrs = hdrs ? hdrs : rd_kafka_headers_new(4);
        rd_kafka_header_add(hdrs, headers[i], -1, headers[i + 1], -1);
    }
    rd_kafka_resp_err_t err = rd_kafka_producev(
        p->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
        RD_KAFKA_V_VALUE((void *)payload, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(msg_opaque), RD_KAFKA_V_END);
    if (err && hdrs) /* on success the message owns them */
        rd_kafka_headers_destroy(hdrs);
    return err ? rd_kafka_err2str(err) : NULL;
}

void cli_producer_poll(struct cli_producer *p, int timeout_ms)
{
    rd_kafka_poll(p->rk, timeout_ms);
}

int cli_producer_pending(const struct cli_producer *p)
{
    return rd_kafka_outq_len(p->rk);
}

const char *cli_producer_last_error(const struct cli_producer *p)
{
    return p->st.last_error;
}

void cli_producer_free(struct cli_producer *p)
{
    if (!p)
        return;
    if (p->rk) {
        /* Whatever was not acknowledged by now is given up, without waiting. */
        rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_destroy(p->rk);
    }
    free(p);
}

/* ---- follower ----------------------------------------------------------- */

/* The end offset of one partition into *high, waiting at most until deadline. */
static rd_kafka_resp_err_t await_end_offset(struct cli_global *g, struct cli_follower *f,
                                            const char *topic, int32_t partition, int64_t deadline,
                                            int64_t *high)
{
    rd_kafka_resp_err_t rc = RD_KAFKA_RESP_ERR__TIMED_OUT;
    int64_t low;
    for (int slice; rc == RD_KAFKA_RESP_ERR__TIMED_OUT && (slice = next_slice(g, deadline)) > 0;)
        rc = rd_kafka_query_watermark_offsets(f->rk, topic, partition, &low, high, slice);
    return rc;
}

/* The partitions of `topic` with the offsets to start from. */
static rd_kafka_topic_partition_list_t *start_offsets(struct cli_global *g, struct cli_follower *f,
                                                      const char *topic, bool from_beginning,
                                                      int64_t deadline, char *err, size_t err_len)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(f->rk, topic, NULL);
    rd_kafka_resp_err_t rc =
        rkt ? await_metadata(g, f->rk, &f->st, rkt, deadline, &md, err, err_len)
            : rd_kafka_last_error();
    if (rkt)
        rd_kafka_topic_destroy(rkt);
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (!rkt)
            snprintf(err, err_len, "topic %s: %s", topic, rd_kafka_err2str(rc));
        return NULL;
    }
    if (!md) {
        snprintf(err, err_len, "topic %s: no metadata", topic);
        return NULL;
    }
    if (md->topic_cnt != 1 || md->topics[0].err || md->topics[0].partition_cnt == 0) {
        snprintf(err, err_len, "topic %s: %s", topic,
                 md->topic_cnt == 1 && md->topics[0].err ? rd_kafka_err2str(md->topics[0].err)
                                                         : "no partitions");
        rd_kafka_metadata_destroy(md);
        return NULL;
    }
    const struct rd_kafka_metadata_topic *t = &md->topics[0];
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(t->partition_cnt);
    for (int i = 0; i < t->partition_cnt && parts; i++) {
        int32_t id = t->partitions[i].id;
        int64_t high = RD_KAFKA_OFFSET_BEGINNING;
        if (!from_beginning)
            rc = await_end_offset(g, f, topic, id, deadline, &high);
        if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
            snprintf(err, err_len, "cannot read the end offset of %s [%d]: %s", topic, (int)id,
                     rd_kafka_err2str(rc));
            rd_kafka_topic_partition_list_destroy(parts);
            parts = NULL;
            break;
        }
        rd_kafka_topic_partition_list_add(parts, topic, id)->offset = high;
    }
    rd_kafka_metadata_destroy(md);
    return parts;
}

struct cli_follower *cli_follower_new(struct cli_global *g, const char *topic, bool from_beginning,
                                      char *err, size_t err_len)
{
    int64_t deadline = clock_mono_ms() + cli_connect_timeout_ms(g);
    char group[64] = "llmq-cli-";
    if (random_hex(group + strlen(group), 8) != 0) {
        snprintf(err, err_len, "no random numbers for the consumer's group id");
        return NULL;
    }
    /* librdkafka wants a group.id for assign(); it is never joined. */
    const char *const defaults[] = {"group.id",
                                    group,
                                    "enable.auto.commit",
                                    "false",
                                    "enable.auto.offset.store",
                                    "false",
                                    "enable.partition.eof",
                                    "false",
                                    "fetch.wait.max.ms",
                                    "100",
                                    NULL};
    struct cli_follower *f = calloc(1, sizeof(*f));
    if (!f) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    f->st.verbose = g->verbose;
    f->st.consumer = true;
    rd_kafka_conf_t *conf = make_conf(g, defaults, err, err_len);
    if (conf) {
        rd_kafka_conf_set_opaque(conf, f);
        f->rk = make_client(RD_KAFKA_CONSUMER, conf, err, err_len);
    }
    if (!f->rk) {
        cli_follower_free(f);
        return NULL;
    }
    rd_kafka_poll_set_consumer(f->rk);

    rd_kafka_topic_partition_list_t *parts =
        start_offsets(g, f, topic, from_beginning, deadline, err, err_len);
    rd_kafka_resp_err_t rc = parts ? rd_kafka_assign(f->rk, parts) : RD_KAFKA_RESP_ERR__FAIL;
    if (parts && rc != RD_KAFKA_RESP_ERR_NO_ERROR)
        snprintf(err, err_len, "cannot assign %s: %s", topic, rd_kafka_err2str(rc));
    if (parts)
        rd_kafka_topic_partition_list_destroy(parts);
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
        cli_follower_free(f);
        return NULL;
    }
    return f;
}

bool cli_follower_poll(struct cli_follower *f, int timeout_ms, struct cli_message *out)
{
    rd_kafka_message_t *msg = rd_kafka_consumer_poll(f->rk, timeout_ms);
    if (msg && msg->err) {
        snprintf(f->st.last_error, sizeof(f->st.last_error), "%s", rd_kafka_message_errstr(msg));
        if (f->st.verbose)
            fprintf(stderr, "llmq: kafka: %s\n", f->st.last_error);
        rd_kafka_message_destroy(msg);
        return false;
    }
    if (!msg)
        return false;
    out->topic = rd_kafka_topic_name(msg->rkt);
    out->partition = msg->partition;
    out->offset = msg->offset;
    out->payload = msg->payload;
    out->len = msg->len;
    out->handle = msg;
    return true;
}

void cli_message_free(struct cli_message *msg)
{
    rd_kafka_message_destroy(msg->handle);
    memset(msg, 0, sizeof(*msg));
}

const char *cli_follower_last_error(const struct cli_follower *f)
{
    return f->st.last_error;
}

void cli_follower_free(struct cli_follower *f)
{
    if (!f)
        return;
    /* Nothing to commit and no group joined: no consumer close handshake. */
    if (f->rk)
        rd_kafka_destroy_flags(f->rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    free(f);
}

const char *cli_kafka_header(const struct cli_message *msg, const char *name, char *buf, size_t len)
{
    rd_kafka_headers_t *headers;
    const void *value;
    size_t n;
    if (rd_kafka_message_headers(msg->handle, &headers) != 0 ||
        rd_kafka_header_get_last(headers, name, &value, &n) != 0 || n >= len)
        return NULL;
    if (n)
        memcpy(buf, value, n);
    buf[n] = '\0';
    return buf;
}
