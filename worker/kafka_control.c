/* kafka_control.c — the control topic's reader: a consumer of its own,
 * outside the worker's group (no subscription, so it never joins and never
 * commits), assigned every partition of the topic from a point in time, so
 * every worker sees every cancel. Messages leave here as kafka.h's plain
 * structs, through on_control. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka_private.h"

/* Serve every control message waiting (the io event fires only when the
 * queue goes from empty to non-empty, so it is emptied each time). Cancels
 * are small and handled in constant time. */
static void serve_control(struct kafka *k)
{
    rd_kafka_message_t *msg;
    while ((msg = rd_kafka_consumer_poll(k->control, 0))) {
        if (msg->err) {
            if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                log_warn(k->log, "kafka", "control: %s", rd_kafka_message_errstr(msg));
        } else if (k->events.on_control) {
            struct kafka_message plain = kafka_plain_message(msg);
            k->events.on_control(k->ctx, &plain);
        }
        rd_kafka_message_destroy(msg);
    }
}

static void control_readable(struct loop *loop, int fd, unsigned events, void *ctx)
{
    (void)loop;
    (void)events;
    kafka_pipe_drain(fd);
    serve_control(ctx);
}

static rd_kafka_t *control_client(struct kafka *k, char *err, size_t err_len)
{
    rd_kafka_conf_t *conf = kafka_base_conf(k, err, err_len);
    if (!conf)
        return NULL;
    char group[300];
    snprintf(group, sizeof(group), "%s.control.%s", k->cfg->kafka.group_id, k->cfg->worker_id);
    /* group.id only because librdkafka wants one: assign() never joins it. */
    if (kafka_set_conf(conf, "group.id", group, err, err_len) ||
        kafka_set_conf(conf, "enable.auto.commit", "false", err, err_len) ||
        kafka_set_conf(conf, "enable.auto.offset.store", "false", err, err_len) ||
        kafka_set_conf(conf, "statistics.interval.ms", "0", err, err_len)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    char why[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof(why));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        snprintf(err, err_len, "kafka control consumer: %s", why);
    }
    return rk;
}

/* The topic's partitions, each at the offset of `since_ms`; NULL with
 * *missing set when the topic does not exist, or with err. */
static rd_kafka_topic_partition_list_t *partitions_since(rd_kafka_t *rk, const char *topic,
                                                         int64_t since_ms, int timeout_ms,
                                                         bool *missing, char *err, size_t err_len)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t rerr =
        rkt ? rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms) : RD_KAFKA_RESP_ERR__FAIL;
    if (rkt)
        rd_kafka_topic_destroy(rkt);
    rd_kafka_topic_partition_list_t *list = NULL;
    if (rerr || !md || md->topic_cnt != 1) {
        snprintf(err, err_len, "control topic %s: metadata: %s", topic, rd_kafka_err2str(rerr));
    } else if (md->topics[0].err || md->topics[0].partition_cnt == 0) {
        *missing = true;
    } else {
        list = rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
        for (int p = 0; p < md->topics[0].partition_cnt; p++)
            rd_kafka_topic_partition_list_add(list, topic, md->topics[0].partitions[p].id)->offset =
                since_ms;
        rerr = rd_kafka_offsets_for_times(rk, list, timeout_ms);
        if (rerr) {
            snprintf(err, err_len, "control topic %s: offsets: %s", topic, rd_kafka_err2str(rerr));
            rd_kafka_topic_partition_list_destroy(list);
            list = NULL;
        }
    }
    if (md)
        rd_kafka_metadata_destroy(md);
    for (int i = 0; list && i < list->cnt; i++)
        if (list->elems[i].offset < 0) /* nothing at or after since_ms */
            list->elems[i].offset = RD_KAFKA_OFFSET_END;
    return list;
}

int kafka_control_start(struct kafka *k, const char *topic, int64_t since_ms, int timeout_ms,
                        char *err, size_t err_len)
{
    if (k->control)
        return 0;
    rd_kafka_t *rk = control_client(k, err, err_len);
    if (!rk)
        return -1;
    bool missing = false;
    rd_kafka_topic_partition_list_t *list =
        partitions_since(rk, topic, since_ms, timeout_ms, &missing, err, err_len);
    if (!list) {
        rd_kafka_destroy(rk);
        return missing ? 1 : -1;
    }
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_resp_err_t rerr = rd_kafka_assign(rk, list);
    rd_kafka_topic_partition_list_destroy(list);
    k->control = rk;
    k->control_queue = rd_kafka_queue_get_consumer(rk);
    if (rerr) {
        snprintf(err, err_len, "control topic %s: assign: %s", topic, rd_kafka_err2str(rerr));
        kafka_control_free(k);
        return -1;
    }
    if (kafka_wake_loop_on(k, k->control_queue, k->control_pipe, control_readable)) {
        snprintf(err, err_len, "kafka: cannot watch the control queue: %s", strerror(errno));
        kafka_control_free(k);
        return -1;
    }
    serve_control(k); /* what came before the io event was enabled */
    return 0;
}

void kafka_control_free(struct kafka *k)
{
    if (!k->control)
        return;
    rd_kafka_consumer_close(k->control);
    kafka_client_free(k, k->control, k->control_queue, k->control_pipe);
    k->control = NULL;
    k->control_queue = NULL;
    k->control_pipe[0] = k->control_pipe[1] = -1;
}
