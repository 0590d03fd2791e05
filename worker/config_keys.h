/* config_keys.h — the table of configuration keys shared by config.c
 * (loading) and config_dump.c (printing): each key's path, kind, field,
 * range, flags, check and default. Private to the config module. */
#ifndef LLMQ_CONFIG_KEYS_H
#define LLMQ_CONFIG_KEYS_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

#define MIB (1024ULL * 1024ULL)

enum key_kind {
    KIND_STRING,     /* char * */
    KIND_STRINGS,    /* char ** + size_t count */
    KIND_INT,        /* int, range-checked */
    KIND_SIZE,       /* size_t, range-checked */
    KIND_MIB,        /* uint64_t bytes, written in MiB */
    KIND_BOOL,       /* bool */
    KIND_LOG_LEVEL,  /* enum log_level, written as its name */
    KIND_PROPERTIES, /* struct config_kv * + size_t count; file only */
};

#define NULLABLE 0x1u /* "" means not set (NULL) */
#define EMPTY_OK 0x2u /* "" is a meaningful value, kept as "" */
#define SECRET   0x4u /* masked by config_dump */

/* Checks a non-empty string value; writes why it is bad into reason. */
typedef int (*string_check)(const char *s, char *reason, size_t len);

struct key_spec {
    const char *path; /* "group.name" */
    enum key_kind kind;
    size_t field;       /* offsetof the value in struct llmq_config */
    size_t count_field; /* KIND_STRINGS, KIND_PROPERTIES: offsetof the count */
    long long min, max; /* numbers: range; KIND_STRINGS: min = fewest items */
    unsigned flags;
    string_check check;       /* strings and list items */
    const char *default_text; /* in environment syntax; NULL: NULL / computed */
};

#define CONFIG_KEY_COUNT 44

/* Every key, grouped and ordered as in the file and the dump. */
extern const struct key_spec config_keys[CONFIG_KEY_COUNT];

/* Check a string value against the key's flags and check; 0, or -1 with
 * why in reason. */
int config_check_string(const struct key_spec *k, const char *s, char *reason, size_t len);

/* The field at `offset` in cfg (a key_spec's field or count_field). */
void *config_field(struct llmq_config *cfg, size_t offset);
const void *config_field_const(const struct llmq_config *cfg, size_t offset);

/* The key named `path` ("group.name"), or NULL. */
const struct key_spec *config_find_key(const char *path);

/* Whether some key lives in group `name`. */
bool config_group_known(const char *name);

/* Free a list of n strings / n properties (NULL is fine). */
void config_free_strings(char **items, size_t n);
void config_free_properties(struct config_kv *kv, size_t n);

/* Free what a string, list or properties key holds and reset it. */
void config_free_key(struct llmq_config *cfg, const struct key_spec *k);

#endif
