/* kafka_names.c — Kafka's topic name rules, and what a subscription names. */
#include "kafka_names.h"

#include <regex.h>
#include <string.h>

bool kafka_topic_valid(const char *s, size_t n)
{
    static const char chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-";
    if (n == 0 || n > KAFKA_TOPIC_MAX)
        return false;
    if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
        return false; /* "." and ".." are reserved */
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\0' || strchr(chars, s[i]) == NULL)
            return false;
    }
    return true;
}

bool kafka_subscription_matches(const char *subscription, const char *topic)
{
    if (subscription[0] != '^')
        return strcmp(subscription, topic) == 0;
    regex_t re;
    if (regcomp(&re, subscription, REG_EXTENDED | REG_NOSUB) != 0)
        return false;
    bool match = regexec(&re, topic, 0, NULL, 0) == 0;
    regfree(&re);
    return match;
}

bool kafka_topic_internal(const char *topic)
{
    return strncmp(topic, "__", 2) == 0;
}
