/* kafka_stats.h — the parts of librdkafka's statistics JSON the worker
 * reads (the consumer's stats_cb payload, see librdkafka's STATISTICS.md):
 * for now the consumer lag of each partition, shown by metrics.h. */
#ifndef LLMQ_KAFKA_STATS_H
#define LLMQ_KAFKA_STATS_H

#include <stddef.h>
#include <stdint.h>

struct kafka_partition_lag {
    char *topic;
    int32_t partition;
    int64_t lag;
};

/* Extract topics.<t>.partitions.<p>.consumer_lag from a statistics JSON,
 * sorted by topic and partition. Skips the internal partition -1 and lags
 * librdkafka does not know (-1). Returns 0 with a malloc'd array (free with
 * kafka_stats_lags_free), or -1 with the reason in err. */
int kafka_stats_consumer_lag(const char *json, size_t len, struct kafka_partition_lag **lags,
                             size_t *n_lags, char *err, size_t err_len);
void kafka_stats_lags_free(struct kafka_partition_lag *lags, size_t n_lags);

#endif
