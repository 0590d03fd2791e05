/* kafka_stats.c — read what the worker needs from librdkafka's statistics
 * JSON (STATISTICS.md): the consumer lag of each assigned partition. Plain
 * jansson; kafka.c hands the JSON over from its stats callback. */
#include "kafka_stats.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

void kafka_stats_lags_free(struct kafka_partition_lag *lags, size_t n_lags)
{
    for (size_t i = 0; i < n_lags; i++) {
        free(lags[i].topic);
    }
    free(lags);
}

static int compare_lags(const void *a, const void *b)
{
    const struct kafka_partition_lag *x = a, *y = b;
    int by_topic = strcmp(x->topic, y->topic);
    if (by_topic != 0) {
        return by_topic;
    }
    return (x->partition > y->partition) - (x->partition < y->partition);
}

/* A partition key of the statistics ("0", "1", ...); -1 for the internal
 * unassigned partition and anything else that is not a partition. */
static int32_t partition_number(const char *key)
{
    char *end;
    errno = 0;
    long p = strtol(key, &end, 10);
    if (end == key || *end != '\0' || errno != 0 || p < 0 || p > INT32_MAX) {
        return -1;
    }
    return (int32_t)p;
}

/* How many partitions the statistics list, over every topic. */
static size_t partition_count(json_t *topics)
{
    const char *name;
    json_t *topic;
    size_t n = 0;
    json_object_foreach(topics, name, topic)
    {
        n += json_object_size(json_object_get(topic, "partitions"));
    }
    return n;
}

int kafka_stats_consumer_lag(const char *json, size_t len, struct kafka_partition_lag **lags,
                             size_t *n_lags, char *err, size_t err_len)
{
    *lags = NULL;
    *n_lags = 0;
    json_error_t jerr;
    json_t *root = json_loadb(json, len, 0, &jerr);
    if (!root) {
        snprintf(err, err_len, "kafka statistics: line %d column %d: %s", jerr.line, jerr.column,
                 jerr.text);
        return -1;
    }
    json_t *topics = json_object_get(root, "topics");
    if (topics && !json_is_object(topics)) {
        snprintf(err, err_len, "kafka statistics: \"topics\" is not an object");
        json_decref(root);
        return -1;
    }
    const char *topic_name;
    json_t *topic;
    size_t cap = partition_count(topics);
    struct kafka_partition_lag *out = cap ? calloc(cap, sizeof(*out)) : NULL;
    size_t n = 0;
    bool failed = cap && !out;
    json_object_foreach(topics, topic_name, topic)
    {
        json_t *partitions = json_object_get(topic, "partitions");
        const char *key;
        json_t *partition;
        json_object_foreach(partitions, key, partition)
        {
            int32_t number = partition_number(key);
            json_t *lag = json_object_get(partition, "consumer_lag");
            if (failed || number < 0 || !json_is_integer(lag) || json_integer_value(lag) < 0) {
                continue;
            }
            /* out is non-NULL: a partition here means cap > 0. */
            out[n].topic = strdup(topic_name); // NOLINT(clang-analyzer-core.NullDereference)
            if (!out[n].topic) {
                failed = true;
                continue;
            }
            out[n].partition = number;
            out[n].lag = json_integer_value(lag);
            n++;
        }
    }
    json_decref(root);
    if (failed) {
        kafka_stats_lags_free(out, n);
        snprintf(err, err_len, "kafka statistics: out of memory");
        return -1;
    }
    if (n > 1) {
        qsort(out, n, sizeof(*out), compare_lags);
    }
    *lags = out;
    *n_lags = n;
    return 0;
}
