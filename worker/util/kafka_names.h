/* kafka_names.h — Kafka's naming rules, checked before a name reaches a
 * broker: a topic is 1..249 of [a-zA-Z0-9._-] and not "." or "..". */
#ifndef LLMQ_UTIL_KAFKA_NAMES_H
#define LLMQ_UTIL_KAFKA_NAMES_H

#include <stdbool.h>
#include <stddef.h>

#define KAFKA_TOPIC_MAX 249 /* Kafka's limit on a topic name */

/* Whether s[0..n) is a legal topic name (s need not be NUL-terminated). */
bool kafka_topic_valid(const char *s, size_t n);

/* Whether a subscription names `topic`: the same name, or a "^regex"
 * (POSIX extended, as librdkafka reads it) that matches it. A regex that
 * does not compile matches nothing. */
bool kafka_subscription_matches(const char *subscription, const char *topic);

/* Whether `topic` is internal to Kafka or its tools (starts with "__"). */
bool kafka_topic_internal(const char *topic);

#endif
