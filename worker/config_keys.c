/* config_keys.c — the configuration keys (one table) and the checks of
 * single values they name: topic names, URLs, listen addresses. */
#include "config_keys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hostport.h"
#include "kafka_names.h"
#include "secrets.h"

#define WORKER_ID_MAX 128

static int check_worker_id(const char *s, char *reason, size_t len);
static int check_topic(const char *s, char *reason, size_t len);
static int check_subscription(const char *s, char *reason, size_t len);
static int check_topic_pattern(const char *s, char *reason, size_t len);
static int check_url(const char *s, char *reason, size_t len);
static int check_listen(const char *s, char *reason, size_t len);
static int check_gpu_backend(const char *s, char *reason, size_t len);
static int check_lane(const char *s, char *reason, size_t len);
static int check_lora(const char *s, char *reason, size_t len);

#define FIELD(member) offsetof(struct llmq_config, member)

/* Every key, grouped and ordered as in the file and the dump. */
const struct key_spec config_keys[CONFIG_KEY_COUNT] = {
    {"worker.id", KIND_STRING, FIELD(worker_id), 0, 0, 0, 0, check_worker_id, NULL},

    {"kafka.brokers", KIND_STRING, FIELD(kafka.brokers), 0, 0, 0, 0, NULL, "127.0.0.1:9092"},
    {"kafka.group_id", KIND_STRING, FIELD(kafka.group_id), 0, 0, 0, 0, NULL, "llmq"},
    {"kafka.jobs_topics", KIND_STRINGS, FIELD(kafka.jobs_topics), FIELD(kafka.n_jobs_topics), 1, 0,
     0, check_subscription, "llmq.jobs"},
    {"kafka.reply_topic", KIND_STRING, FIELD(kafka.reply_topic), 0, 0, 0, 0, check_topic,
     "llmq.replies"},
    {"kafka.reply_allowlist", KIND_STRINGS, FIELD(kafka.reply_allowlist),
     FIELD(kafka.n_reply_allowlist), 0, 0, 0, check_topic_pattern, ""},
    {"kafka.dead_letter_topic", KIND_STRING, FIELD(kafka.dead_letter_topic), 0, 0, 0, 0,
     check_topic, "llmq.dead"},
    {"kafka.metrics_topic", KIND_STRING, FIELD(kafka.metrics_topic), 0, 0, 0, 0, check_topic,
     "llmq.metrics"},
    {"kafka.control_topic", KIND_STRING, FIELD(kafka.control_topic), 0, 0, 0, EMPTY_OK, check_topic,
     "llmq.control"},
    {"kafka.lanes", KIND_STRINGS, FIELD(kafka.lanes), FIELD(kafka.n_lanes), 0, 0, 0, check_lane,
     ""},
    {"kafka.properties", KIND_PROPERTIES, FIELD(kafka.properties), FIELD(kafka.n_properties), 0, 0,
     0, NULL, NULL},
    {"kafka.static_membership", KIND_BOOL, FIELD(kafka.static_membership), 0, 0, 0, 0, NULL,
     "false"},
    {"kafka.properties_file", KIND_STRING, FIELD(kafka.properties_file), 0, 0, 0, NULLABLE, NULL,
     NULL},

    {"llama.binary", KIND_STRING, FIELD(llama.binary), 0, 0, 0, 0, NULL, "llama-server"},
    {"llama.url", KIND_STRING, FIELD(llama.url), 0, 0, 0, NULLABLE, check_url, NULL},
    {"llama.api_key", KIND_STRING, FIELD(llama.api_key), 0, 0, 0, NULLABLE | SECRET, NULL, NULL},
    {"llama.model", KIND_STRING, FIELD(llama.model), 0, 0, 0, NULLABLE, NULL, NULL},
    {"llama.model_name", KIND_STRING, FIELD(llama.model_name), 0, 0, 0, NULLABLE, NULL, NULL},
    {"llama.gpu", KIND_INT, FIELD(llama.gpu), 0, -1, 255, 0, NULL, "0"},
    {"llama.gpu_layers", KIND_INT, FIELD(llama.gpu_layers), 0, 0, 9999, 0, NULL, "999"},
    {"llama.context", KIND_INT, FIELD(llama.context), 0, 64, 16777216, 0, NULL, "4096"},
    {"llama.slots", KIND_INT, FIELD(llama.slots), 0, 1, 256, 0, NULL, "4"},
    {"llama.extra_args", KIND_STRINGS, FIELD(llama.extra_args), FIELD(llama.n_extra_args), 0, 0,
     EMPTY_OK, NULL, ""},
    {"llama.startup_timeout_s", KIND_INT, FIELD(llama.startup_timeout_s), 0, 1, 86400, 0, NULL,
     "300"},
    {"llama.restart_backoff_max_s", KIND_INT, FIELD(llama.restart_backoff_max_s), 0, 1, 3600, 0,
     NULL, "30"},
    {"llama.unready_leave_s", KIND_INT, FIELD(llama.unready_leave_s), 0, 0, 86400, 0, NULL, "60"},
    {"llama.lora", KIND_STRINGS, FIELD(llama.lora), FIELD(llama.n_lora), 0, 0, 0, check_lora, ""},

    {"control.remember_max", KIND_INT, FIELD(control.remember_max), 0, 0, 10000000, 0, NULL,
     "10000"},
    {"control.remember_s", KIND_INT, FIELD(control.remember_s), 0, 0, 31536000, 0, NULL, "86400"},

    {"limits.max_prompt_bytes", KIND_SIZE, FIELD(limits.max_prompt_bytes), 0, 1, 1073741824, 0,
     NULL, "1048576"},
    {"limits.max_pending_bytes", KIND_SIZE, FIELD(limits.max_pending_bytes), 0, 1, 17179869184, 0,
     NULL, "67108864"},
    {"limits.max_tokens", KIND_INT, FIELD(limits.max_tokens), 0, 1, 1048576, 0, NULL, "4096"},
    {"limits.default_max_tokens", KIND_INT, FIELD(limits.default_max_tokens), 0, 1, 1048576, 0,
     NULL, "512"},
    {"limits.job_timeout_s", KIND_INT, FIELD(limits.job_timeout_s), 0, 1, 604800, 0, NULL, "600"},
    {"limits.retries", KIND_INT, FIELD(limits.retries), 0, 0, 100, 0, NULL, "2"},
    {"limits.drain_timeout_s", KIND_INT, FIELD(limits.drain_timeout_s), 0, 0, 3600, 0, NULL, "30"},

    {"chunking.coalesce_ms", KIND_INT, FIELD(chunking.coalesce_ms), 0, 0, 60000, 0, NULL, "100"},
    {"chunking.coalesce_tokens", KIND_INT, FIELD(chunking.coalesce_tokens), 0, 0, 65536, 0, NULL,
     "8"},

    {"metrics.listen", KIND_STRING, FIELD(metrics.listen), 0, 0, 0, EMPTY_OK, check_listen,
     "127.0.0.1:9464"},
    {"metrics.heartbeat_s", KIND_INT, FIELD(metrics.heartbeat_s), 0, 0, 86400, 0, NULL, "10"},
    {"metrics.vram_floor_mb", KIND_MIB, FIELD(metrics.vram_floor_bytes), 0, 0, 16777216, 0, NULL,
     "0"},
    {"metrics.gpu_backend", KIND_STRING, FIELD(metrics.gpu_backend), 0, 0, 0, 0, check_gpu_backend,
     "auto"},

    {"logging.level", KIND_LOG_LEVEL, FIELD(logging.level), 0, 0, 0, 0, NULL, "info"},
    {"logging.json", KIND_BOOL, FIELD(logging.json), 0, 0, 0, 0, NULL, "false"},
};

_Static_assert(sizeof(config_keys) / sizeof(config_keys[0]) == CONFIG_KEY_COUNT,
               "CONFIG_KEY_COUNT is the number of keys");

/* ---- validation of single values ---- */

static int check_worker_id(const char *s, char *reason, size_t len)
{
    if (strlen(s) > WORKER_ID_MAX) {
        snprintf(reason, len, "must be at most %d bytes", WORKER_ID_MAX);
        return -1;
    }
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p <= ' ' || *p == 0x7f) {
            snprintf(reason, len, "must not contain spaces or control characters");
            return -1;
        }
    }
    return 0;
}

static int topic_error(const char *s, char *reason, size_t len)
{
    snprintf(reason, len,
             "must be a Kafka topic name: at most %d of a-z A-Z 0-9 . _ - (got \"%s\")",
             KAFKA_TOPIC_MAX, s);
    return -1;
}

static int check_topic(const char *s, char *reason, size_t len)
{
    return kafka_topic_valid(s, strlen(s)) ? 0 : topic_error(s, reason, len);
}

/* A topic to subscribe to; "^..." is a librdkafka regular expression. */
static int check_subscription(const char *s, char *reason, size_t len)
{
    return s[0] == '^' ? 0 : check_topic(s, reason, len);
}

/* An allowlist entry: a topic, a topic prefix followed by '*', or "*". */
static int check_topic_pattern(const char *s, char *reason, size_t len)
{
    size_t n = strlen(s);
    if (s[n - 1] == '*')
        return n == 1 || kafka_topic_valid(s, n - 1) ? 0 : topic_error(s, reason, len);
    return check_topic(s, reason, len);
}

static int check_url(const char *s, char *reason, size_t len)
{
    const char *rest = NULL;
    if (strncmp(s, "http://", 7) == 0)
        rest = s + 7;
    else if (strncmp(s, "https://", 8) == 0)
        rest = s + 8;
    if (rest == NULL || *rest == '\0' || *rest == '/') {
        char masked[512];
        snprintf(reason, len, "must be an http:// or https:// URL (got \"%s\")",
                 secrets_url(s, masked, sizeof(masked)));
        return -1;
    }
    return 0;
}

/* HOST:PORT with a port 0..65535 (0: any free port). */
static int check_listen(const char *s, char *reason, size_t len)
{
    char host[256], port[8];
    if (hostport_split(s, host, sizeof(host), port, sizeof(port)) != 0) {
        snprintf(reason, len, "must be HOST:PORT, or \"\" for off (got \"%s\")", s);
        return -1;
    }
    return 0;
}

static int check_gpu_backend(const char *s, char *reason, size_t len)
{
    if (strcmp(s, "auto") != 0 && strcmp(s, "rocm") != 0 && strcmp(s, "nvml") != 0 &&
        strcmp(s, "none") != 0) {
        snprintf(reason, len, "must be one of auto, rocm, nvml, none (got \"%s\")", s);
        return -1;
    }
    return 0;
}

/* A lane: TOPIC:WEIGHT, the topic one of the jobs topics' names, the weight
 * 1..1000000. */
static int check_lane(const char *s, char *reason, size_t len)
{
    const char *colon = strrchr(s, ':');
    char *end = NULL;
    long weight = colon ? strtol(colon + 1, &end, 10) : 0;
    if (!colon || !kafka_topic_valid(s, (size_t)(colon - s)) || end == colon + 1 || *end ||
        weight < 1 || weight > 1000000) {
        snprintf(reason, len, "must be TOPIC:WEIGHT with a weight of 1..1000000 (got \"%s\")", s);
        return -1;
    }
    return 0;
}

/* An adapter: NAME=PATH, the name without '=' or spaces. */
static int check_lora(const char *s, char *reason, size_t len)
{
    const char *eq = strchr(s, '=');
    if (!eq || eq == s || eq[1] == '\0' || strcspn(s, " \t") < (size_t)(eq - s)) {
        snprintf(reason, len, "must be NAME=PATH (got \"%s\")", s);
        return -1;
    }
    return 0;
}

int config_check_string(const struct key_spec *k, const char *s, char *reason, size_t len)
{
    if (*s == '\0') {
        if (k->flags & (NULLABLE | EMPTY_OK))
            return 0;
        snprintf(reason, len, "must not be empty");
        return -1;
    }
    return k->check ? k->check(s, reason, len) : 0;
}

/* ---- access to the fields a key names ---- */

void *config_field(struct llmq_config *cfg, size_t offset)
{
    return (char *)cfg + offset;
}

const void *config_field_const(const struct llmq_config *cfg, size_t offset)
{
    return (const char *)cfg + offset;
}

const struct key_spec *config_find_key(const char *path)
{
    for (size_t i = 0; i < CONFIG_KEY_COUNT; i++) {
        if (strcmp(config_keys[i].path, path) == 0)
            return &config_keys[i];
    }
    return NULL;
}

bool config_group_known(const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < CONFIG_KEY_COUNT; i++) {
        if (strncmp(config_keys[i].path, name, n) == 0 && config_keys[i].path[n] == '.')
            return true;
    }
    return false;
}

void config_free_strings(char **items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(items[i]);
    free(items);
}

void config_free_properties(struct config_kv *kv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(kv[i].key);
        free(kv[i].value);
    }
    free(kv);
}

void config_free_key(struct llmq_config *cfg, const struct key_spec *k)
{
    switch (k->kind) {
    case KIND_STRING: {
        char **s = config_field(cfg, k->field);
        free(*s);
        *s = NULL;
        break;
    }
    case KIND_STRINGS: {
        char ***items = config_field(cfg, k->field);
        size_t *n = config_field(cfg, k->count_field);
        config_free_strings(*items, *n);
        *items = NULL;
        *n = 0;
        break;
    }
    case KIND_PROPERTIES: {
        struct config_kv **kv = config_field(cfg, k->field);
        size_t *n = config_field(cfg, k->count_field);
        config_free_properties(*kv, *n);
        *kv = NULL;
        *n = 0;
        break;
    }
    default:
        break;
    }
}
