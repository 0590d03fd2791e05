/* config.c — load the worker configuration: libconfig file -> validated
 * struct, then environment overrides, cross-key rules and derived defaults,
 * all driven by the table of keys in config_keys.c (so a key is declared
 * once and every path treats it the same). */
#include "config.h"

#include <errno.h>
#include <libconfig.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config_keys.h"
#include "config_props.h"
#include "kafka_names.h"
#include "kafka_props.h"

#define REASON_LEN 256
#define PATH_LEN   256

/* A value read from the file or the environment, before it is stored. */
struct raw_value {
    long long num;      /* numbers, bools */
    const char *str;    /* strings, log level */
    const char **items; /* lists */
    size_t n_items;
    char *owned; /* text the items point into (environment lists) */
};

const struct config_env_override config_env_overrides[] = {
    {"LLMQ_WORKER_ID", "worker.id"},
    {"LLMQ_KAFKA_BROKERS", "kafka.brokers"},
    {"LLMQ_KAFKA_GROUP_ID", "kafka.group_id"},
    {"LLMQ_KAFKA_JOBS_TOPICS", "kafka.jobs_topics"},
    {"LLMQ_KAFKA_REPLY_TOPIC", "kafka.reply_topic"},
    {"LLMQ_KAFKA_DEAD_LETTER_TOPIC", "kafka.dead_letter_topic"},
    {"LLMQ_KAFKA_PROPERTIES_FILE", "kafka.properties_file"},
    {"LLMQ_LLAMA_BINARY", "llama.binary"},
    {"LLMQ_LLAMA_URL", "llama.url"},
    {"LLMQ_LLAMA_API_KEY", "llama.api_key"},
    {"LLMQ_LLAMA_MODEL", "llama.model"},
    {"LLMQ_LLAMA_MODEL_NAME", "llama.model_name"},
    {"LLMQ_LLAMA_GPU", "llama.gpu"},
    {"LLMQ_LLAMA_SLOTS", "llama.slots"},
    {"LLMQ_LLAMA_CONTEXT", "llama.context"},
    {"LLMQ_METRICS_LISTEN", "metrics.listen"},
    {"LLMQ_LOG_LEVEL", "logging.level"},
    {"LLMQ_LOG_JSON", "logging.json"},
};
const size_t config_env_override_count =
    sizeof(config_env_overrides) / sizeof(config_env_overrides[0]);

/* State of one config_load call. */
struct load_ctx {
    struct llmq_config *cfg;
    const char *path;                         /* NULL: no file */
    config_t *lc;                             /* the parsed file, NULL if none */
    const char *env_origin[CONFIG_KEY_COUNT]; /* the variable that set each key last */
    char *err;
    size_t err_len;
};

/* ---- storing a raw value into the struct, with validation ---- */

static int out_of_memory(char *reason, size_t len)
{
    snprintf(reason, len, "out of memory");
    return -1;
}

static int store_number(struct llmq_config *cfg, const struct key_spec *k, long long v,
                        char *reason, size_t len)
{
    if (v < k->min || v > k->max) {
        snprintf(reason, len, "must be between %lld and %lld (got %lld)", k->min, k->max, v);
        return -1;
    }
    if (k->kind == KIND_INT)
        *(int *)config_field(cfg, k->field) = (int)v;
    else if (k->kind == KIND_SIZE)
        *(size_t *)config_field(cfg, k->field) = (size_t)v;
    else
        *(uint64_t *)config_field(cfg, k->field) = (uint64_t)v * MIB;
    return 0;
}

static int store_string(struct llmq_config *cfg, const struct key_spec *k, const char *s,
                        char *reason, size_t len)
{
    if (config_check_string(k, s, reason, len) != 0)
        return -1;
    char *copy = NULL;
    if (*s != '\0' || !(k->flags & NULLABLE)) {
        copy = strdup(s);
        if (copy == NULL)
            return out_of_memory(reason, len);
    }
    config_free_key(cfg, k);
    *(char **)config_field(cfg, k->field) = copy;
    return 0;
}

static int store_strings(struct llmq_config *cfg, const struct key_spec *k,
                         const struct raw_value *v, char *reason, size_t len)
{
    if ((long long)v->n_items < k->min) {
        snprintf(reason, len, "must list at least %lld item(s)", k->min);
        return -1;
    }
    for (size_t i = 0; i < v->n_items; i++) {
        int prefix = snprintf(reason, len, "item %zu: ", i + 1);
        size_t at = prefix > 0 && (size_t)prefix < len ? (size_t)prefix : 0;
        if (config_check_string(k, v->items[i], reason + at, len - at) != 0)
            return -1;
    }
    char **items = calloc(v->n_items ? v->n_items : 1, sizeof(*items));
    if (items == NULL)
        return out_of_memory(reason, len);
    for (size_t i = 0; i < v->n_items; i++) {
        items[i] = strdup(v->items[i]);
        if (items[i] == NULL) {
            config_free_strings(items, i);
            return out_of_memory(reason, len);
        }
    }
    config_free_key(cfg, k);
    *(char ***)config_field(cfg, k->field) = items;
    *(size_t *)config_field(cfg, k->count_field) = v->n_items;
    return 0;
}

static int store_value(struct llmq_config *cfg, const struct key_spec *k, const struct raw_value *v,
                       char *reason, size_t len)
{
    switch (k->kind) {
    case KIND_STRING:
        return store_string(cfg, k, v->str, reason, len);
    case KIND_STRINGS:
        return store_strings(cfg, k, v, reason, len);
    case KIND_INT:
    case KIND_SIZE:
    case KIND_MIB:
        return store_number(cfg, k, v->num, reason, len);
    case KIND_BOOL:
        *(bool *)config_field(cfg, k->field) = v->num != 0;
        return 0;
    case KIND_LOG_LEVEL:
        if (log_level_parse(v->str, config_field(cfg, k->field)) != 0) {
            snprintf(reason, len, "must be one of debug, info, warn, error (got \"%s\")", v->str);
            return -1;
        }
        return 0;
    case KIND_PROPERTIES:
        break;
    }
    snprintf(reason, len, "cannot be set this way");
    return -1;
}

/* ---- raw values from environment syntax ---- */

static int parse_bool_text(const char *s, long long *out)
{
    static const char *const truths[] = {"true", "yes", "on", "1"};
    static const char *const falsehoods[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < sizeof(truths) / sizeof(truths[0]); i++) {
        if (strcasecmp(s, truths[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(s, falsehoods[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

/* Split a comma-separated list; "" is the empty list. */
static int split_list(const char *text, struct raw_value *v)
{
    v->owned = strdup(text);
    if (v->owned == NULL)
        return -1;
    if (*text == '\0')
        return 0;
    size_t n = 1;
    for (const char *p = text; *p; p++)
        n += *p == ',';
    v->items = calloc(n, sizeof(*v->items));
    if (v->items == NULL)
        return -1;
    char *item = v->owned;
    for (;;) {
        char *comma = strchr(item, ',');
        v->items[v->n_items++] = item;
        if (comma == NULL)
            break;
        *comma = '\0';
        item = comma + 1;
    }
    return 0;
}

static void raw_value_free(struct raw_value *v)
{
    free(v->items);
    free(v->owned);
}

static int raw_from_text(const struct key_spec *k, const char *text, struct raw_value *v,
                         char *reason, size_t len)
{
    switch (k->kind) {
    case KIND_INT:
    case KIND_SIZE:
    case KIND_MIB: {
        char *end = NULL;
        errno = 0;
        v->num = strtoll(text, &end, 10);
        if (*text == '\0' || *end != '\0' || errno == ERANGE) {
            snprintf(reason, len, "must be an integer (got \"%s\")", text);
            return -1;
        }
        return 0;
    }
    case KIND_BOOL:
        if (parse_bool_text(text, &v->num) != 0) {
            snprintf(reason, len, "must be true or false (got \"%s\")", text);
            return -1;
        }
        return 0;
    case KIND_STRINGS:
        return split_list(text, v) == 0 ? 0 : out_of_memory(reason, len);
    case KIND_STRING:
    case KIND_LOG_LEVEL:
        v->str = text;
        return 0;
    case KIND_PROPERTIES:
        break;
    }
    snprintf(reason, len, "cannot be set this way");
    return -1;
}

static int apply_text(struct llmq_config *cfg, const struct key_spec *k, const char *text,
                      char *reason, size_t len)
{
    struct raw_value v = {0};
    int rc = raw_from_text(k, text, &v, reason, len);
    if (rc == 0)
        rc = store_value(cfg, k, &v, reason, len);
    raw_value_free(&v);
    return rc;
}

/* ---- raw values from libconfig settings ---- */

static int raw_from_setting(const struct key_spec *k, const config_setting_t *s,
                            struct raw_value *v, char *reason, size_t len)
{
    int type = config_setting_type(s);
    switch (k->kind) {
    case KIND_INT:
    case KIND_SIZE:
    case KIND_MIB:
        if (type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64) {
            snprintf(reason, len, "must be an integer");
            return -1;
        }
        v->num = config_setting_get_int64(s);
        return 0;
    case KIND_BOOL:
        if (type != CONFIG_TYPE_BOOL) {
            snprintf(reason, len, "must be true or false");
            return -1;
        }
        v->num = config_setting_get_bool(s);
        return 0;
    case KIND_STRING:
    case KIND_LOG_LEVEL:
        if (type != CONFIG_TYPE_STRING) {
            snprintf(reason, len, "must be a string");
            return -1;
        }
        v->str = config_setting_get_string(s);
        return 0;
    case KIND_STRINGS: {
        if (type != CONFIG_TYPE_ARRAY && type != CONFIG_TYPE_LIST) {
            snprintf(reason, len, "must be a list of strings, e.g. [\"a\", \"b\"]");
            return -1;
        }
        size_t n = (size_t)config_setting_length(s);
        v->items = calloc(n ? n : 1, sizeof(*v->items));
        if (v->items == NULL)
            return out_of_memory(reason, len);
        for (size_t i = 0; i < n; i++) {
            const config_setting_t *item = config_setting_get_elem(s, (unsigned)i);
            if (config_setting_type(item) != CONFIG_TYPE_STRING) {
                snprintf(reason, len, "item %zu: must be a string", i + 1);
                return -1;
            }
            v->items[v->n_items++] = config_setting_get_string(item);
        }
        return 0;
    }
    case KIND_PROPERTIES:
        break;
    }
    snprintf(reason, len, "cannot be set this way");
    return -1;
}

/* ---- errors that name where a value came from ---- */

static const char *setting_file(const struct load_ctx *ctx, const config_setting_t *s)
{
    const char *file = config_setting_source_file(s);
    return file ? file : ctx->path;
}

static int setting_error(struct load_ctx *ctx, const config_setting_t *s, const char *path,
                         const char *reason)
{
    snprintf(ctx->err, ctx->err_len, "%s:%u: %s: %s", setting_file(ctx, s),
             (unsigned)config_setting_source_line(s), path, reason);
    return -1;
}

/* An error about a key's final value: names the variable that set it, or
 * its line in the file, or its group's line, or just the file. */
static int key_error(struct load_ctx *ctx, const struct key_spec *k, const char *reason)
{
    const char *env = ctx->env_origin[k - config_keys];
    if (env != NULL) {
        snprintf(ctx->err, ctx->err_len, "env %s: %s", env, reason);
        return -1;
    }
    if (ctx->lc != NULL) {
        const config_setting_t *s = config_lookup(ctx->lc, k->path);
        if (s == NULL) {
            char group[PATH_LEN];
            snprintf(group, sizeof(group), "%.*s", (int)(strchr(k->path, '.') - k->path), k->path);
            s = config_lookup(ctx->lc, group);
        }
        if (s != NULL)
            return setting_error(ctx, s, k->path, reason);
    }
    snprintf(ctx->err, ctx->err_len, "%s: %s: %s", ctx->path ? ctx->path : "config", k->path,
             reason);
    return -1;
}

/* ---- reading the file ---- */

/* One kafka.properties setting's value as text ('@' resolved): malloc'd, or
 * NULL with why in reason. */
static char *property_value(const config_setting_t *s, char *reason, size_t len)
{
    char number[64];
    switch (config_setting_type(s)) {
    case CONFIG_TYPE_STRING:
        return kafka_props_value(config_setting_get_string(s), reason, len);
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64:
        snprintf(number, sizeof(number), "%lld", config_setting_get_int64(s));
        break;
    case CONFIG_TYPE_BOOL:
        snprintf(number, sizeof(number), "%s", config_setting_get_bool(s) ? "true" : "false");
        break;
    default:
        snprintf(reason, len, "must be a string, an integer or a boolean");
        return NULL;
    }
    return kafka_props_value(number, reason, len);
}

/* kafka.properties: names use '_' where librdkafka has '.', because a
 * libconfig name cannot contain a dot (security_protocol ->
 * security.protocol). Values may be strings ("@/path": the file's content),
 * integers or booleans. */
static int load_properties(struct load_ctx *ctx, const struct key_spec *k,
                           const config_setting_t *group)
{
    if (!config_setting_is_group(group))
        return setting_error(ctx, group, k->path, "must be a group of librdkafka properties");
    size_t n = (size_t)config_setting_length(group);
    struct config_kv *kv = calloc(n ? n : 1, sizeof(*kv));
    if (kv == NULL)
        return key_error(ctx, k, "out of memory");
    for (size_t filled = 0; filled < n; filled++) {
        const config_setting_t *s = config_setting_get_elem(group, (unsigned)filled);
        char reason[REASON_LEN];
        kv[filled].key = strdup(config_setting_name(s));
        kv[filled].value = property_value(s, reason, sizeof(reason));
        if (kv[filled].key == NULL || kv[filled].value == NULL) {
            char path[PATH_LEN];
            snprintf(path, sizeof(path), "%s.%s", k->path, config_setting_name(s));
            bool no_memory = kv[filled].key == NULL;
            config_free_properties(kv, filled + 1);
            return setting_error(ctx, s, path, no_memory ? "out of memory" : reason);
        }
        for (char *c = kv[filled].key; *c; c++) {
            if (*c == '_')
                *c = '.';
        }
    }
    config_free_key(ctx->cfg, k);
    *(struct config_kv **)config_field(ctx->cfg, k->field) = kv;
    *(size_t *)config_field(ctx->cfg, k->count_field) = n;
    return 0;
}

static int load_setting(struct load_ctx *ctx, const struct key_spec *k, const config_setting_t *s)
{
    if (k->kind == KIND_PROPERTIES)
        return load_properties(ctx, k, s);
    char reason[REASON_LEN];
    struct raw_value v = {0};
    int rc = raw_from_setting(k, s, &v, reason, sizeof(reason));
    if (rc == 0)
        rc = store_value(ctx->cfg, k, &v, reason, sizeof(reason));
    raw_value_free(&v);
    return rc == 0 ? 0 : setting_error(ctx, s, k->path, reason);
}

static int load_settings(struct load_ctx *ctx)
{
    const config_setting_t *root = config_root_setting(ctx->lc);
    for (int i = 0; i < config_setting_length(root); i++) {
        const config_setting_t *group = config_setting_get_elem(root, (unsigned)i);
        const char *name = config_setting_name(group);
        if (!config_group_known(name))
            return setting_error(ctx, group, name, "unknown key");
        if (!config_setting_is_group(group))
            return setting_error(ctx, group, name, "must be a group, e.g. name = { ... };");
        for (int j = 0; j < config_setting_length(group); j++) {
            const config_setting_t *s = config_setting_get_elem(group, (unsigned)j);
            char path[PATH_LEN];
            snprintf(path, sizeof(path), "%s.%s", name, config_setting_name(s));
            const struct key_spec *k = config_find_key(path);
            if (k == NULL)
                return setting_error(ctx, s, path, "unknown key");
            if (load_setting(ctx, k, s) != 0)
                return -1;
        }
    }
    return 0;
}

static int read_file(struct load_ctx *ctx)
{
    FILE *f = fopen(ctx->path, "r");
    if (f == NULL) {
        snprintf(ctx->err, ctx->err_len, "%s: cannot open: %s", ctx->path, strerror(errno));
        return -1;
    }
    fclose(f);
    if (config_read_file(ctx->lc, ctx->path) == CONFIG_TRUE)
        return 0;
    const char *file = config_error_file(ctx->lc) ? config_error_file(ctx->lc) : ctx->path;
    const char *text = config_error_text(ctx->lc) ? config_error_text(ctx->lc) : "unknown error";
    if (config_error_type(ctx->lc) == CONFIG_ERR_FILE_IO)
        snprintf(ctx->err, ctx->err_len, "%s: cannot read: %s", file, text);
    else if (strcmp(text, "syntax error") == 0)
        snprintf(ctx->err, ctx->err_len, "%s:%d: syntax error", file, config_error_line(ctx->lc));
    else
        snprintf(ctx->err, ctx->err_len, "%s:%d: syntax error: %s", file,
                 config_error_line(ctx->lc), text);
    return -1;
}

/* ---- environment, cross-key rules, derived defaults ---- */

/* The value of variable `name` in envp, or NULL. */
static const char *env_lookup(char *const *envp, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; envp[i]; i++)
        if (strncmp(envp[i], name, n) == 0 && envp[i][n] == '=')
            return envp[i] + n + 1;
    return NULL;
}

static int apply_env(struct load_ctx *ctx, char *const *envp)
{
    for (size_t i = 0; i < config_env_override_count; i++) {
        const struct config_env_override *o = &config_env_overrides[i];
        const char *text = env_lookup(envp, o->env);
        if (text == NULL)
            continue;
        const struct key_spec *k = config_find_key(o->key);
        char reason[REASON_LEN];
        if (k == NULL || apply_text(ctx->cfg, k, text, reason, sizeof(reason)) != 0) {
            snprintf(ctx->err, ctx->err_len, "env %s: %s", o->env,
                     k ? reason : "names no configuration key");
            return -1;
        }
        ctx->env_origin[k - config_keys] = o->env;
    }
    return 0;
}

/* llama.model_name when not set: the model file's name without ".gguf". */
static int derive_model_name(struct llmq_config *cfg)
{
    if (cfg->llama.model_name != NULL || cfg->llama.model == NULL)
        return 0;
    const char *slash = strrchr(cfg->llama.model, '/');
    const char *base = slash && slash[1] ? slash + 1 : cfg->llama.model;
    size_t n = strlen(base);
    if (n > 5 && strcmp(base + n - 5, ".gguf") == 0)
        n -= 5;
    cfg->llama.model_name = strndup(base, n);
    return cfg->llama.model_name ? 0 : -1;
}

/* Which of the worker's own topics (jobs subscriptions, dead-letter) names
 * `topic`, or NULL. */
static const char *own_topic_naming(const struct llmq_config *cfg, const char *topic)
{
    for (size_t i = 0; i < cfg->kafka.n_jobs_topics; i++)
        if (kafka_subscription_matches(cfg->kafka.jobs_topics[i], topic))
            return "a jobs topic";
    if (strcmp(cfg->kafka.dead_letter_topic, topic) == 0)
        return "the dead-letter topic";
    return NULL;
}

/* Replies must never land where the worker reads jobs (it would take its
 * own replies for jobs) nor in the dead-letter topic. */
static int check_topic_rules(struct load_ctx *ctx)
{
    const struct llmq_config *cfg = ctx->cfg;
    char reason[REASON_LEN];
    const char *own = own_topic_naming(cfg, cfg->kafka.reply_topic);
    if (own) {
        snprintf(reason, sizeof(reason), "\"%s\" is %s: replies must go elsewhere",
                 cfg->kafka.reply_topic, own);
        return key_error(ctx, config_find_key("kafka.reply_topic"), reason);
    }
    for (size_t i = 0; i < cfg->kafka.n_reply_allowlist; i++) {
        const char *entry = cfg->kafka.reply_allowlist[i];
        own = strchr(entry, '*') ? NULL : own_topic_naming(cfg, entry);
        if (!own && strcmp(entry, cfg->kafka.metrics_topic) == 0)
            own = "the metrics topic";
        if (own) {
            snprintf(reason, sizeof(reason), "item %zu: \"%s\" is %s: replies must go elsewhere",
                     i + 1, entry, own);
            return key_error(ctx, config_find_key("kafka.reply_allowlist"), reason);
        }
    }
    return 0;
}

/* Whether the lane entry (TOPIC:WEIGHT) names one of the jobs topics. */
static bool lane_subscribed(const struct llmq_config *cfg, const char *lane)
{
    size_t n = (size_t)(strrchr(lane, ':') - lane);
    for (size_t i = 0; i < cfg->kafka.n_jobs_topics; i++)
        if (strlen(cfg->kafka.jobs_topics[i]) == n &&
            strncmp(cfg->kafka.jobs_topics[i], lane, n) == 0)
            return true;
    return false;
}

/* Whether two adapters share a name (the part before '='). */
static bool lora_names_repeat(const struct llmq_config *cfg)
{
    for (size_t i = 0; i < cfg->llama.n_lora; i++)
        for (size_t j = 0; j < i; j++) {
            size_t n = strcspn(cfg->llama.lora[i], "=");
            if (n == strcspn(cfg->llama.lora[j], "=") &&
                strncmp(cfg->llama.lora[i], cfg->llama.lora[j], n) == 0)
                return true;
        }
    return false;
}

static int check_cross_rules(struct load_ctx *ctx)
{
    struct llmq_config *cfg = ctx->cfg;
    if (check_topic_rules(ctx) != 0)
        return -1;
    for (size_t i = 0; i < cfg->kafka.n_lanes; i++)
        if (!lane_subscribed(cfg, cfg->kafka.lanes[i]))
            return key_error(ctx, config_find_key("kafka.lanes"),
                             "each lane's topic must be one of kafka.jobs_topics");
    if (lora_names_repeat(cfg))
        return key_error(ctx, config_find_key("llama.lora"), "an adapter name is given twice");
    if (cfg->llama.url == NULL && cfg->llama.model == NULL)
        return key_error(ctx, config_find_key("llama.model"), "required when llama.url is not set");
    if (cfg->limits.default_max_tokens > cfg->limits.max_tokens) {
        char reason[REASON_LEN];
        snprintf(reason, sizeof(reason), "must not exceed limits.max_tokens (%d)",
                 cfg->limits.max_tokens);
        return key_error(ctx, config_find_key("limits.default_max_tokens"), reason);
    }
    if (derive_model_name(cfg) != 0)
        return key_error(ctx, config_find_key("llama.model_name"), "out of memory");
    return 0;
}

/* ---- public functions ---- */

static int set_defaults(struct llmq_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    char reason[REASON_LEN];
    for (size_t i = 0; i < CONFIG_KEY_COUNT; i++) {
        if (config_keys[i].default_text != NULL &&
            apply_text(cfg, &config_keys[i], config_keys[i].default_text, reason, sizeof(reason)) !=
                0)
            return -1;
    }
    char host[HOST_NAME_MAX + 1];
    if (gethostname(host, sizeof(host)) != 0 || host[0] == '\0')
        snprintf(host, sizeof(host), "llmq");
    host[sizeof(host) - 1] = '\0';
    char id[HOST_NAME_MAX + 32];
    snprintf(id, sizeof(id), "%s-%ld", host, (long)getpid());
    cfg->worker_id = strdup(id);
    return cfg->worker_id ? 0 : -1;
}

void config_defaults(struct llmq_config *cfg)
{
    if (set_defaults(cfg) != 0) {
        fputs("llmq: out of memory while setting configuration defaults\n", stderr);
        abort();
    }
}

/* kafka.properties_file and LLMQ_KAFKA_PROP_* over kafka.properties. */
static int apply_property_sources(struct load_ctx *ctx, char *const *envp)
{
    char why[512];
    int rc = config_props_sources(ctx->cfg, envp, why, sizeof(why));
    if (rc == 1)
        return key_error(ctx, config_find_key("kafka.properties_file"), why);
    if (rc != 0)
        snprintf(ctx->err, ctx->err_len, "%s", why);
    return rc;
}

int config_load(struct llmq_config *cfg, const char *path, char *const *envp, char *err,
                size_t err_len)
{
    struct load_ctx ctx = {.cfg = cfg, .path = path, .err = err, .err_len = err_len};
    config_t lc;
    if (set_defaults(cfg) != 0) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    int rc = 0;
    if (path != NULL) {
        config_init(&lc);
        ctx.lc = &lc;
        rc = read_file(&ctx);
        if (rc == 0)
            rc = load_settings(&ctx);
    }
    if (rc == 0 && envp != NULL)
        rc = apply_env(&ctx, envp);
    if (rc == 0)
        rc = apply_property_sources(&ctx, envp);
    if (rc == 0)
        rc = check_cross_rules(&ctx);
    if (ctx.lc != NULL)
        config_destroy(&lc);
    return rc;
}

void config_free(struct llmq_config *cfg)
{
    for (size_t i = 0; i < CONFIG_KEY_COUNT; i++)
        config_free_key(cfg, &config_keys[i]);
    memset(cfg, 0, sizeof(*cfg));
}
