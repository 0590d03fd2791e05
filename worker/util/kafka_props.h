/* kafka_props.h — librdkafka properties from where operators keep secrets,
 * shared by the worker's configuration and the CLI:
 *   - an "@/path" value stands for the file's content (one trailing newline
 *     dropped; at most 1 MiB), so a Kubernetes Secret mounted as a file or a
 *     systemd credential works; "@@..." is a literal value starting with '@';
 *   - a properties file: "key=value" lines (spaces around both trimmed),
 *     '#' and '!' comments and blank lines skipped;
 *   - the environment: LLMQ_KAFKA_PROP_SASL_PASSWORD=x sets sasl.password
 *     (the rest of the name lower-cased, '_' for '.'; no librdkafka property
 *     has a '_' in its name). */
#ifndef LLMQ_UTIL_KAFKA_PROPS_H
#define LLMQ_UTIL_KAFKA_PROPS_H

#include <stddef.h>

#define KAFKA_PROPS_ENV_PREFIX "LLMQ_KAFKA_PROP_"
#define KAFKA_PROPS_NAME_MAX   128
#define KAFKA_PROPS_VALUE_MAX  ((size_t)1024 * 1024)

/* The value `raw` stands for ('@' resolved), malloc'd; NULL with why in
 * reason ("cannot read @/path: ..."). */
char *kafka_props_value(const char *raw, char *reason, size_t len);

/* When the environment entry "NAME=value" is LLMQ_KAFKA_PROP_*: the
 * property's name into `name` (cap bytes) and its raw value returned;
 * otherwise NULL. An entry naming no property ("LLMQ_KAFKA_PROP_=x") gives
 * "" as its name. */
const char *kafka_props_env(const char *entry, char *name, size_t cap);

/* One pair of a properties file (its value resolved); 0, or -1 with why in
 * reason. */
typedef int (*kafka_props_fn)(void *ctx, const char *key, const char *value, char *reason,
                              size_t len);

/* Read the properties file `path`, calling fn for each pair in order. 0;
 * 1 when the file cannot be opened ("cannot open PATH: why" in err); -1
 * for a bad line or a failed fn ("PATH:LINE: KEY: why" in err). */
int kafka_props_read_file(const char *path, kafka_props_fn fn, void *ctx, char *err,
                          size_t err_len);

#endif
