/* config_props.h — the Kafka properties' sources beyond the file's
 * kafka.properties group: kafka.properties_file and LLMQ_KAFKA_PROP_*
 * variables (worker/util/kafka_props.h has the formats). Private to the
 * config module. */
#ifndef LLMQ_CONFIG_PROPS_H
#define LLMQ_CONFIG_PROPS_H

#include "config.h"

/* Set property `key` to a copy of `value` in cfg (replacing one of the same
 * name). 0, or -1 when out of memory. */
int config_props_put(struct llmq_config *cfg, const char *key, const char *value);

/* Over cfg's properties: kafka.properties_file's pairs, then the
 * LLMQ_KAFKA_PROP_* entries of envp ("NAME=value", NULL-terminated; NULL
 * is none). 0; 1 when the properties file cannot be opened (why in err,
 * for the caller to name the key); -1 with "PATH:LINE: KEY: why" or
 * "env NAME: why" in err. */
int config_props_sources(struct llmq_config *cfg, char *const *envp, char *err, size_t err_len);

#endif
