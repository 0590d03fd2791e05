/* kafka_group.c — the consumer group's settings and what librdkafka says
 * about the group: the partition assignment strategy for the librdkafka that
 * is linked (unless kafka.properties names one), and the results of offset
 * commits (failures counted, logged and handed back to the owner to retry). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka_private.h"

/* The first release with every fix the cooperative protocol needs (see
 * FINDINGS.md, "Fleet topologies"): #4381 (2.3.0), #4528 (2.4.0), #4783 via
 * PR #4800 (2.6.1) and #4059 via PR #4908 (2.10.0). */
#define COOPERATIVE_SAFE_VERSION 0x020a0000
#define EAGER_STRATEGY           "range,roundrobin"

const char *kafka_assignment_default(int version, char *why, size_t why_len)
{
    unsigned major = ((unsigned)version >> 24) & 0xff, minor = ((unsigned)version >> 16) & 0xff,
             patch = ((unsigned)version >> 8) & 0xff;
    if (version >= COOPERATIVE_SAFE_VERSION) {
        snprintf(why, why_len,
                 "librdkafka %u.%u.%u has the cooperative-sticky fixes (2.10.0 and later)", major,
                 minor, patch);
        return "cooperative-sticky";
    }
    snprintf(why, why_len,
             "librdkafka %u.%u.%u predates 2.10.0: its cooperative-sticky protocol can lose an "
             "assignment (#4059, fixed in 2.10.0) or loop (#4783, fixed in 2.6.1), so the eager "
             "protocol",
             major, minor, patch);
    return EAGER_STRATEGY;
}

/* Count and log each partition whose commit failed, and hand the failed
 * ones to the owner (it commits them again). */
static void committed(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    struct kafka *k = opaque;
    (void)rk;
    if (err == RD_KAFKA_RESP_ERR__NO_OFFSET || !offsets)
        return;
    struct kafka_partition *failed =
        offsets->cnt > 0 ? calloc((size_t)offsets->cnt, sizeof(*failed)) : NULL;
    size_t n = 0;
    for (int i = 0; i < offsets->cnt; i++) {
        const rd_kafka_topic_partition_t *p = &offsets->elems[i];
        rd_kafka_resp_err_t perr = p->err ? p->err : err;
        if (!perr)
            continue;
        k->commits_failed++;
        log_warn(k->log, "kafka", "commit of %s[%" PRId32 "]@%" PRId64 " failed: %s; retrying",
                 p->topic, p->partition, p->offset, rd_kafka_err2str(perr));
        if (failed)
            failed[n++] = (struct kafka_partition){p->topic, p->partition, p->offset};
    }
    if (n > 0 && k->events.on_commit_failed)
        k->events.on_commit_failed(k->ctx, failed, n);
    free(failed);
}

/* librdkafka prefetches up to queued.min.messages (100000) and
 * queued.max.messages.kbytes (64 MiB) per partition: far more than a worker
 * with a few slots ever needs, and memory the worker does not count. Unless
 * kafka.properties sets them: 4 messages per slot, and a MiB per slot (at
 * least 4 MiB: a job message may be 1 MiB). Each fetch also asks for up to
 * fetch.message.max.bytes (1 MiB) per partition, whatever the queue needs,
 * and a fetched buffer lives until its last message is freed: 16 KiB per
 * slot (64 KiB .. 1 MiB) is plenty at any rate a GPU serves, and a larger
 * job still comes (librdkafka grows the request for it). Measured in
 * FINDINGS.md ("The worker's cost per job"): RSS 33 -> 23-27 MiB at the
 * ceiling. */
static int prefetch_conf(struct kafka *k, rd_kafka_conf_t *conf, char *err, size_t err_len)
{
    int slots = k->cfg->llama.slots;
    char value[32];
    snprintf(value, sizeof(value), "%d", 4 * slots);
    if (!kafka_user_property(k, "queued.min.messages") &&
        kafka_set_conf(conf, "queued.min.messages", value, err, err_len))
        return -1;
    snprintf(value, sizeof(value), "%d", (slots > 4 ? slots : 4) * 1024);
    if (!kafka_user_property(k, "queued.max.messages.kbytes") &&
        kafka_set_conf(conf, "queued.max.messages.kbytes", value, err, err_len))
        return -1;
    int fetch_kib = slots < 4 ? 64 : slots > 64 ? 1024 : 16 * slots;
    snprintf(value, sizeof(value), "%d", fetch_kib * 1024);
    if (!kafka_user_property(k, "fetch.message.max.bytes") &&
        !kafka_user_property(k, "max.partition.fetch.bytes") &&
        kafka_set_conf(conf, "fetch.message.max.bytes", value, err, err_len))
        return -1;
    return 0;
}

int kafka_group_conf(struct kafka *k, rd_kafka_conf_t *conf, char *err, size_t err_len)
{
    rd_kafka_conf_set_offset_commit_cb(conf, committed);
    if (kafka_set_conf(conf, "group.id", k->cfg->kafka.group_id, err, err_len) ||
        kafka_set_conf(conf, "enable.auto.commit", "false", err, err_len) ||
        kafka_set_conf(conf, "enable.auto.offset.store", "false", err, err_len) ||
        kafka_set_conf(conf, "auto.offset.reset", "earliest", err, err_len) ||
        prefetch_conf(k, conf, err, err_len))
        return -1;
    if (k->cfg->kafka.static_membership &&
        kafka_set_conf(conf, "group.instance.id", k->cfg->worker_id, err, err_len))
        return -1;
    char value[256];
    size_t len = sizeof(value);
    if (kafka_user_property(k, "partition.assignment.strategy")) {
        if (rd_kafka_conf_get(conf, "partition.assignment.strategy", value, &len) !=
            RD_KAFKA_CONF_OK)
            snprintf(value, sizeof(value), "?");
        log_info(k->log, "kafka", "partition.assignment.strategy %s (from kafka.properties)",
                 value);
        return 0;
    }
    char why[256];
    const char *strategy = kafka_assignment_default(rd_kafka_version(), why, sizeof(why));
    log_info(k->log, "kafka", "partition.assignment.strategy %s: %s", strategy, why);
    return kafka_set_conf(conf, "partition.assignment.strategy", strategy, err, err_len);
}

unsigned long kafka_commits_failed(const struct kafka *k)
{
    return k->commits_failed;
}
