/* kafka_props.c — "@/path" values, key=value properties files and
 * LLMQ_KAFKA_PROP_* environment variables (see kafka_props.h). */
#include "kafka_props.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LINE_MAX_BYTES 65536

/* The whole of a file, one trailing newline (\n or \r\n) dropped. */
static char *read_secret_file(const char *path, char *reason, size_t len)
{
    FILE *f = fopen(path, "r");
    char *text = f ? malloc(KAFKA_PROPS_VALUE_MAX + 1) : NULL;
    size_t n = text ? fread(text, 1, KAFKA_PROPS_VALUE_MAX + 1, f) : 0;
    int saved = errno;
    bool failed = !f || !text || ferror(f);
    if (f)
        fclose(f);
    if (failed || n > KAFKA_PROPS_VALUE_MAX) {
        snprintf(reason, len, "cannot read @%s: %s", path,
                 failed ? strerror(f && !text ? ENOMEM : saved) : "larger than 1 MiB");
        free(text);
        return NULL;
    }
    if (n > 0 && text[n - 1] == '\n')
        n--;
    if (n > 0 && text[n - 1] == '\r')
        n--;
    text[n] = '\0';
    return text;
}

char *kafka_props_value(const char *raw, char *reason, size_t len)
{
    if (raw[0] == '@' && raw[1] != '@') {
        if (raw[1] == '\0') {
            snprintf(reason, len,
                     "\"@\" must be followed by a file's path (\"@@\" for a literal @)");
            return NULL;
        }
        return read_secret_file(raw + 1, reason, len);
    }
    char *copy = strdup(raw[0] == '@' ? raw + 1 : raw);
    if (!copy)
        snprintf(reason, len, "out of memory");
    return copy;
}

const char *kafka_props_env(const char *entry, char *name, size_t cap)
{
    size_t prefix = strlen(KAFKA_PROPS_ENV_PREFIX);
    const char *eq = strchr(entry, '=');
    if (!eq || strncmp(entry, KAFKA_PROPS_ENV_PREFIX, prefix) != 0 || cap == 0)
        return NULL;
    size_t n = 0;
    for (const char *c = entry + prefix; c < eq && n + 1 < cap; c++)
        name[n++] = *c == '_' ? '.' : (char)tolower((unsigned char)*c);
    name[n] = '\0';
    return eq + 1;
}

/* Trim spaces at both ends, in place. */
static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* One line: 0 (a pair passed to fn, or nothing to do), or -1 with why. */
static int read_line(char *line, kafka_props_fn fn, void *ctx, const char **key, char *reason,
                     size_t len)
{
    char *text = trim(line);
    *key = "";
    if (text[0] == '\0' || text[0] == '#' || text[0] == '!')
        return 0;
    char *eq = strchr(text, '=');
    if (!eq) {
        snprintf(reason, len, "must be key=value");
        return -1;
    }
    *eq = '\0';
    *key = trim(text);
    if ((*key)[0] == '\0') {
        snprintf(reason, len, "must be key=value (no key)");
        return -1;
    }
    char *value = kafka_props_value(trim(eq + 1), reason, len);
    if (!value)
        return -1;
    int rc = fn(ctx, *key, value, reason, len);
    free(value);
    return rc;
}

int kafka_props_read_file(const char *path, kafka_props_fn fn, void *ctx, char *err, size_t err_len)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, err_len, "cannot open %s: %s", path, strerror(errno));
        return 1;
    }
    char *line = malloc(LINE_MAX_BYTES);
    unsigned number = 0;
    int rc = line ? 0 : -1;
    if (!line)
        snprintf(err, err_len, "%s: out of memory", path);
    while (rc == 0 && fgets(line, LINE_MAX_BYTES, f)) {
        char reason[256];
        const char *key = "";
        number++;
        if (strlen(line) == LINE_MAX_BYTES - 1 && line[LINE_MAX_BYTES - 2] != '\n') {
            snprintf(err, err_len, "%s:%u: line longer than %d bytes", path, number,
                     LINE_MAX_BYTES - 2);
            rc = -1;
        } else if (read_line(line, fn, ctx, &key, reason, sizeof(reason)) != 0) {
            snprintf(err, err_len, "%s:%u: %s%s%s", path, number, key, key[0] ? ": " : "", reason);
            rc = -1;
        }
    }
    if (rc == 0 && ferror(f)) {
        snprintf(err, err_len, "cannot read %s: %s", path, strerror(errno));
        rc = -1;
    }
    free(line);
    fclose(f);
    return rc;
}
