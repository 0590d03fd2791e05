/* kafka_names.c — Kafka's topic name rules. */
#include "kafka_names.h"

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
