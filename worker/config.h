/* config.h — the worker's configuration: a libconfig file turned into a
 * validated struct llmq_config, with environment overrides.
 *
 * Every key has a default (deploy/worker.example.cfg documents each one).
 * Unknown keys, wrong types and bad values are rejected with the file, the
 * line and the key path in the error, e.g.
 *   worker.cfg:12: llama.slots: must be between 1 and 256 (got 0)
 * Environment variables override the common keys after the file is read
 * (config_env_overrides lists them). */
#ifndef LLMQ_CONFIG_H
#define LLMQ_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "log.h"

struct config_kv {
    char *key;
    char *value;
};

struct llmq_config {
    char *worker_id; /* worker.id; default: hostname-pid */

    struct {
        char *brokers;      /* kafka.brokers, default "127.0.0.1:9092" */
        char *group_id;     /* kafka.group_id, default "llmq" */
        char **jobs_topics; /* kafka.jobs_topics, default ["llmq.jobs"] */
        size_t n_jobs_topics;
        char *reply_topic;      /* kafka.reply_topic, default "llmq.replies" */
        char **reply_allowlist; /* kafka.reply_allowlist, default [] = reply_topic only; "x*" =
                                   prefix */
        size_t n_reply_allowlist;
        char *dead_letter_topic;      /* kafka.dead_letter_topic, default "llmq.dead" */
        char *metrics_topic;          /* kafka.metrics_topic (heartbeats), default "llmq.metrics" */
        struct config_kv *properties; /* kafka.properties: passed to librdkafka untouched */
        size_t n_properties;
    } kafka;

    struct {
        char *binary;      /* llama.binary, default "llama-server" (PATH) */
        char *url;         /* llama.url: external llama-server instead of a child; NULL = spawn */
        char *api_key;     /* llama.api_key: for an external url; NULL = none */
        char *model;       /* llama.model: GGUF path (required unless url is set) */
        char *model_name;  /* llama.model_name: what jobs' "model" must match; default basename of
                              model */
        int gpu;           /* llama.gpu: device index, -1 = no pinning; default 0 */
        int gpu_layers;    /* llama.gpu_layers, default 999 (all) */
        int context;       /* llama.context: total context tokens, default 4096 */
        int slots;         /* llama.slots (= --parallel), default 4 */
        char **extra_args; /* llama.extra_args, default [] */
        size_t n_extra_args;
        int startup_timeout_s;     /* llama.startup_timeout_s, default 300 */
        int restart_backoff_max_s; /* llama.restart_backoff_max_s, default 30 */
    } llama;

    struct {
        size_t max_prompt_bytes; /* limits.max_prompt_bytes, default 1048576 */
        int max_tokens;          /* limits.max_tokens: cap on a job's max_tokens, default 4096 */
        int default_max_tokens;  /* limits.default_max_tokens, default 512 */
        int job_timeout_s;       /* limits.job_timeout_s: when a job has no deadline, default 600 */
        int retries;             /* limits.retries after a backend failure, default 2 */
        int drain_timeout_s;     /* limits.drain_timeout_s on SIGTERM, default 30 */
    } limits;

    struct {
        int coalesce_ms;     /* chunking.coalesce_ms: 0 = one chunk per token event, default 100 */
        int coalesce_tokens; /* chunking.coalesce_tokens: send once this many pieces wait,
                                default 8; 0 = by time only */
    } chunking;

    struct {
        char *listen;              /* metrics.listen, default "127.0.0.1:9464"; "" = off */
        int heartbeat_s;           /* metrics.heartbeat_s, default 10; 0 = off */
        uint64_t vram_floor_bytes; /* metrics.vram_floor_mb * MiB; 0 = off */
        char *gpu_backend; /* metrics.gpu_backend: "auto" | "rocm" | "none", default "auto" */
    } metrics;

    struct {
        enum log_level level; /* logging.level: "debug" | "info" | "warn" | "error" */
        bool json;            /* logging.json: one JSON object per line, default false */
    } logging;
};

/* An environment override: variable -> key path. */
struct config_env_override {
    const char *env;
    const char *key;
};
extern const struct config_env_override config_env_overrides[];
extern const size_t config_env_override_count;

/* Fill `cfg` with every default. */
void config_defaults(struct llmq_config *cfg);

/* Load `path` over the defaults, then apply environment overrides from
 * `getenv_fn` (pass getenv; tests pass a fake). On error returns -1 and
 * writes "file:line: key: reason" into err. The struct is always safe to
 * config_free(). config_load fills `cfg` from scratch (do not call
 * config_defaults first: that would leak); `path` NULL means no file. */
int config_load(struct llmq_config *cfg, const char *path, char *(*getenv_fn)(const char *),
                char *err, size_t err_len);

void config_free(struct llmq_config *cfg);

/* Write the effective configuration (secrets masked) in libconfig syntax. */
void config_dump(const struct llmq_config *cfg, FILE *out);

#endif
