/* config_dump.c — print the effective configuration in libconfig syntax,
 * secrets masked, in the order of the key table. */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "config_keys.h"
#include "secrets.h"

/* A libconfig string literal of prefix + s (prefix needs no escaping). */
static void dump_text(FILE *out, const char *prefix, const char *s)
{
    fprintf(out, "\"%s", prefix);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(out, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            fprintf(out, "\\x%02x", *p);
        else
            fputc(*p, out);
    }
    fputc('"', out);
}

static void dump_string(FILE *out, const char *s)
{
    dump_text(out, "", s);
}

static void dump_properties(FILE *out, const struct config_kv *kv, size_t n)
{
    fputs(" {\n", out);
    for (size_t i = 0; i < n; i++) {
        fputs("        ", out);
        for (const char *c = kv[i].key; *c; c++)
            fputc(*c == '.' ? '_' : *c, out);
        fputs(" = ", out);
        if (secrets_property(kv[i].key))
            dump_string(out, SECRETS_MASK);
        else /* a value that starts with '@' is literal: "@@" keeps it so */
            dump_text(out, kv[i].value[0] == '@' ? "@" : "", kv[i].value);
        fputs(";\n", out);
    }
    fputs("    }", out);
}

/* A list; the value after a secret flag (--api-key X, --api-key=X) masked. */
static void dump_strings(FILE *out, char *const *items, size_t n)
{
    bool secret_next = false;
    fputs(" [", out);
    for (size_t i = 0; i < n; i++) {
        const char *inline_value = NULL;
        bool flag = secrets_flag(items[i], &inline_value);
        fputs(i ? ", " : " ", out);
        if (secret_next) {
            dump_string(out, SECRETS_MASK);
        } else if (inline_value) {
            char flag_eq[32]; /* "--api-key=" */
            snprintf(flag_eq, sizeof(flag_eq), "%.*s", (int)(inline_value - items[i]), items[i]);
            dump_text(out, flag_eq, SECRETS_MASK);
        } else {
            dump_string(out, items[i]);
        }
        secret_next = flag && !inline_value && !secret_next;
    }
    fputs(" ]", out);
}

static void dump_key(FILE *out, const struct llmq_config *cfg, const struct key_spec *k)
{
    const char *name = strchr(k->path, '.') + 1;
    const void *field = config_field_const(cfg, k->field);
    if (k->kind == KIND_STRING && *(char *const *)field == NULL) {
        fprintf(out, "    # %s: not set\n", name);
        return;
    }
    fprintf(out, "    %s =", name);
    switch (k->kind) {
    case KIND_STRING: {
        char url[1024];
        const char *s = *(char *const *)field;
        fputc(' ', out);
        dump_string(out, (k->flags & SECRET) ? SECRETS_MASK : secrets_url(s, url, sizeof(url)));
        break;
    }
    case KIND_STRINGS:
        dump_strings(out, *(char **const *)field,
                     *(const size_t *)config_field_const(cfg, k->count_field));
        break;
    case KIND_INT:
        fprintf(out, " %d", *(const int *)field);
        break;
    case KIND_SIZE:
        fprintf(out, " %zu", *(const size_t *)field);
        break;
    case KIND_MIB:
        fprintf(out, " %llu", (unsigned long long)(*(const uint64_t *)field / MIB));
        break;
    case KIND_BOOL:
        fprintf(out, " %s", *(const bool *)field ? "true" : "false");
        break;
    case KIND_LOG_LEVEL:
        fputc(' ', out);
        dump_string(out, log_level_name(*(const enum log_level *)field));
        break;
    case KIND_PROPERTIES:
        dump_properties(out, *(struct config_kv *const *)field,
                        *(const size_t *)config_field_const(cfg, k->count_field));
        break;
    }
    fputs(";\n", out);
}

void config_dump(const struct llmq_config *cfg, FILE *out)
{
    fputs("# llmq-worker effective configuration (secrets masked)\n", out);
    size_t group_len = 0;
    for (size_t i = 0; i < CONFIG_KEY_COUNT; i++) {
        const struct key_spec *k = &config_keys[i];
        size_t len = (size_t)(strchr(k->path, '.') - k->path);
        if (i == 0 || len != group_len || strncmp(k->path, config_keys[i - 1].path, len) != 0) {
            if (i > 0)
                fputs("};\n\n", out);
            fprintf(out, "%.*s = {\n", (int)len, k->path);
            group_len = len;
        }
        dump_key(out, cfg, k);
    }
    fputs("};\n", out);
}
