/* config_props.c — kafka.properties_file and LLMQ_KAFKA_PROP_* variables
 * laid over the properties the configuration file set (later wins). */
#include "config_props.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka_props.h"

int config_props_put(struct llmq_config *cfg, const char *key, const char *value)
{
    char *v = strdup(value);
    if (!v)
        return -1;
    for (size_t i = 0; i < cfg->kafka.n_properties; i++) {
        struct config_kv *kv = &cfg->kafka.properties[i];
        if (strcmp(kv->key, key) == 0) {
            free(kv->value);
            kv->value = v;
            return 0;
        }
    }
    size_t n = cfg->kafka.n_properties;
    struct config_kv *grown = realloc(cfg->kafka.properties, (n + 1) * sizeof(*grown));
    char *k = strdup(key);
    if (grown)
        cfg->kafka.properties = grown;
    if (!grown || !k) {
        free(k);
        free(v);
        return -1;
    }
    grown[n] = (struct config_kv){k, v};
    cfg->kafka.n_properties = n + 1;
    return 0;
}

static int put_pair(void *ctx, const char *key, const char *value, char *reason, size_t len)
{
    if (config_props_put(ctx, key, value) == 0)
        return 0;
    snprintf(reason, len, "out of memory");
    return -1;
}

static int from_env(struct llmq_config *cfg, const char *entry, char *err, size_t err_len)
{
    char name[KAFKA_PROPS_NAME_MAX];
    const char *raw = kafka_props_env(entry, name, sizeof(name));
    if (!raw)
        return 0;
    int env_len = (int)(strchr(entry, '=') - entry);
    char reason[256];
    char *value = name[0] ? kafka_props_value(raw, reason, sizeof(reason)) : NULL;
    if (!name[0])
        snprintf(reason, sizeof(reason), "names no property (%sSASL_PASSWORD sets sasl.password)",
                 KAFKA_PROPS_ENV_PREFIX);
    else if (value && config_props_put(cfg, name, value) != 0)
        snprintf(reason, sizeof(reason), "out of memory");
    else if (value) {
        free(value);
        return 0;
    }
    free(value);
    snprintf(err, err_len, "env %.*s: %s", env_len, entry, reason);
    return -1;
}

int config_props_sources(struct llmq_config *cfg, char *const *envp, char *err, size_t err_len)
{
    if (cfg->kafka.properties_file) {
        int rc = kafka_props_read_file(cfg->kafka.properties_file, put_pair, cfg, err, err_len);
        if (rc != 0)
            return rc;
    }
    for (size_t i = 0; envp && envp[i]; i++)
        if (from_env(cfg, envp[i], err, err_len) != 0)
            return -1;
    return 0;
}
