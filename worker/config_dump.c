/* config_dump.c — print the effective configuration in libconfig syntax,
 * secrets masked, in the order of the key table. */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "config_keys.h"

#define SECRET_MASK "***"

/* A libconfig string literal. */
static void dump_string(FILE *out, const char *s)
{
    fputc('"', out);
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

static bool secret_property(const char *name)
{
    return strcasestr(name, "password") != NULL || strcasestr(name, "secret") != NULL;
}

static void dump_properties(FILE *out, const struct config_kv *kv, size_t n)
{
    fputs(" {\n", out);
    for (size_t i = 0; i < n; i++) {
        fputs("        ", out);
        for (const char *c = kv[i].key; *c; c++)
            fputc(*c == '.' ? '_' : *c, out);
        fputs(" = ", out);
        dump_string(out, secret_property(kv[i].key) ? SECRET_MASK : kv[i].value);
        fputs(";\n", out);
    }
    fputs("    }", out);
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
    case KIND_STRING:
        fputc(' ', out);
        dump_string(out, (k->flags & SECRET) ? SECRET_MASK : *(char *const *)field);
        break;
    case KIND_STRINGS: {
        char *const *items = *(char **const *)field;
        size_t n = *(const size_t *)config_field_const(cfg, k->count_field);
        fputs(" [", out);
        for (size_t i = 0; i < n; i++) {
            fputs(i ? ", " : " ", out);
            dump_string(out, items[i]);
        }
        fputs(" ]", out);
        break;
    }
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
