/* secrets.c — the list of sensitive names and patterns, the secret values
 * of a configuration, and masking them in text (see secrets.h). */
#include "secrets.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"

/* Values shorter than this are masked by name only (--check-config): masked
 * by value, a 1-3 character secret would garble every log line. */
#define MIN_MASKED_VALUE 4

static const char *const secret_property_names[] = {
    "ssl.key.pem",
    "ssl.key.password",
    "sasl.oauthbearer.config",
    "sasl.oauthbearer.client.secret",
};

static const char *const secret_flags[] = {"--api-key", "--hf-token", "-hft"};

/* Equal, with '_' standing for '.' in `name`. */
static bool same_property(const char *name, const char *want)
{
    for (; *name && *want; name++, want++)
        if (*name != *want && !(*name == '_' && *want == '.'))
            return false;
    return *name == *want;
}

bool secrets_property(const char *name)
{
    if (strcasestr(name, "password") || strcasestr(name, "secret"))
        return true;
    for (size_t i = 0; i < sizeof(secret_property_names) / sizeof(secret_property_names[0]); i++)
        if (same_property(name, secret_property_names[i]))
            return true;
    return false;
}

bool secrets_flag(const char *arg, const char **inline_value)
{
    *inline_value = NULL;
    for (size_t i = 0; i < sizeof(secret_flags) / sizeof(secret_flags[0]); i++) {
        size_t n = strlen(secret_flags[i]);
        if (strncmp(arg, secret_flags[i], n) != 0)
            continue;
        if (arg[n] == '\0')
            return true;
        if (arg[n] == '=') {
            *inline_value = arg + n + 1;
            return true;
        }
    }
    return false;
}

/* Where a URL's userinfo ends (its '@'), or NULL: `at` is just after "://". */
static const char *userinfo_end(const char *at)
{
    size_t n = strcspn(at, "/?#@ \t\r\n\"'");
    return at[n] == '@' && n > 0 ? at + n : NULL;
}

const char *secrets_url(const char *url, char *out, size_t cap)
{
    const char *scheme = strstr(url, "://");
    const char *end = scheme ? userinfo_end(scheme + 3) : NULL;
    if (!end)
        return url;
    snprintf(out, cap, "%.*s" SECRETS_MASK "%s", (int)(scheme + 3 - url), url, end);
    return out;
}

static int add_value(struct secrets *s, const char *value, size_t len)
{
    if (len < MIN_MASKED_VALUE)
        return 0;
    char **grown = realloc(s->values, (s->n + 1) * sizeof(*grown));
    if (!grown)
        return -1;
    s->values = grown;
    s->values[s->n] = strndup(value, len);
    if (!s->values[s->n])
        return -1;
    s->n++;
    return 0;
}

/* Longest first, so a secret inside another is not masked half. */
static int longer_first(const void *a, const void *b)
{
    size_t la = strlen(*(char *const *)a), lb = strlen(*(char *const *)b);
    return la < lb ? 1 : la > lb ? -1 : 0;
}

static int collect(struct secrets *s, const struct llmq_config *cfg)
{
    for (size_t i = 0; i < cfg->kafka.n_properties; i++) {
        const struct config_kv *kv = &cfg->kafka.properties[i];
        if (secrets_property(kv->key) && add_value(s, kv->value, strlen(kv->value)))
            return -1;
    }
    if (cfg->llama.api_key && add_value(s, cfg->llama.api_key, strlen(cfg->llama.api_key)))
        return -1;
    const char *scheme = cfg->llama.url ? strstr(cfg->llama.url, "://") : NULL;
    const char *end = scheme ? userinfo_end(scheme + 3) : NULL;
    const char *colon = end ? memchr(scheme + 3, ':', (size_t)(end - scheme - 3)) : NULL;
    if (end && add_value(s, scheme + 3, (size_t)(end - scheme - 3)))
        return -1;
    if (colon && add_value(s, colon + 1, (size_t)(end - colon - 1))) /* the password alone */
        return -1;
    for (size_t i = 0; i < cfg->llama.n_extra_args; i++) {
        const char *inline_value;
        if (!secrets_flag(cfg->llama.extra_args[i], &inline_value))
            continue;
        const char *v = inline_value                      ? inline_value
                        : i + 1 < cfg->llama.n_extra_args ? cfg->llama.extra_args[i + 1]
                                                          : "";
        if (add_value(s, v, strlen(v)))
            return -1;
    }
    return 0;
}

int secrets_collect(struct secrets *s, const struct llmq_config *cfg)
{
    *s = (struct secrets){0};
    if (collect(s, cfg) != 0) {
        secrets_free(s);
        return -1;
    }
    if (s->n > 1)
        qsort(s->values, s->n, sizeof(*s->values), longer_first);
    return 0;
}

void secrets_free(struct secrets *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->values[i]);
    free(s->values);
    *s = (struct secrets){0};
}

/* The length of the known secret value at `p`, or 0. */
static size_t known_at(const struct secrets *s, const char *p)
{
    for (size_t i = 0; s && i < s->n; i++) {
        size_t n = strlen(s->values[i]);
        if (strncmp(p, s->values[i], n) == 0)
            return n;
    }
    return 0;
}

/* A secret flag starting at p (a word of its own), followed by ' ' or '=':
 * its length with the separator, or 0. */
static size_t flag_at(const char *text, const char *p)
{
    if (p > text && !strchr(" \t\"'[,", p[-1]))
        return 0;
    for (size_t i = 0; i < sizeof(secret_flags) / sizeof(secret_flags[0]); i++) {
        size_t n = strlen(secret_flags[i]);
        if (strncmp(p, secret_flags[i], n) == 0 && (p[n] == ' ' || p[n] == '='))
            return n + 1;
    }
    return 0;
}

struct out {
    char *buf;
    size_t cap, len;
};

static void put(struct out *o, const char *s, size_t n)
{
    size_t room = o->cap - 1 - o->len;
    n = n < room ? n : room;
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

void secrets_mask(const struct secrets *s, const char *text, char *out, size_t cap)
{
    struct out o = {out, cap, 0};
    if (cap == 0)
        return;
    for (const char *p = text; *p;) {
        size_t n = known_at(s, p);
        const char *end = strncmp(p, "://", 3) == 0 ? userinfo_end(p + 3) : NULL;
        size_t flag = n ? 0 : flag_at(text, p);
        if (n) {
            put(&o, SECRETS_MASK, strlen(SECRETS_MASK));
            p += n;
        } else if (end) {
            put(&o, "://" SECRETS_MASK, 3 + strlen(SECRETS_MASK));
            p = end;
        } else if (flag) {
            put(&o, p, flag);
            p += flag;
            size_t value = strcspn(p, " \t\r\n\"',]");
            if (value)
                put(&o, SECRETS_MASK, strlen(SECRETS_MASK));
            p += value;
        } else {
            put(&o, p++, 1);
        }
    }
    out[o.len] = '\0';
}
