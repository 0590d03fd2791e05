/* config.h — the worker's configuration: a libconfig file turned into a
 * validated struct llmq_config, with environment overrides.
 *
 * Every key has a default (deploy/worker.example.cfg documents each one).
 * Unknown keys, wrong types and bad values are rejected with the file, the
 * line and the key path in the error, e.g.
 *   worker.cfg:12: llama.slots: must be between 1 and 256 (got 0)
 * Environment variables override the common keys after the file is read
 * (config_env_overrides lists them); any librdkafka property may come from
 * the environment or a properties file, and a property's value "@/path"
 * from a file (secrets kept by a vault or a Kubernetes Secret). */
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
        char *dead_letter_topic; /* kafka.dead_letter_topic, default "llmq.dead" */
        char *metrics_topic;     /* kafka.metrics_topic (heartbeats), default "llmq.metrics" */
        char *control_topic;     /* kafka.control_topic (cancels), default "llmq.control"; ""
                                    = no cancellation */
        char **lanes; /* kafka.lanes: "TOPIC:WEIGHT" entries, default [] (every weight 1) */
        size_t n_lanes;
        struct config_kv *properties; /* kafka.properties, then properties_file, then
                                         LLMQ_KAFKA_PROP_* ("@/path" values read): to librdkafka */
        size_t n_properties;
        bool static_membership; /* kafka.static_membership: worker.id as group.instance.id */
        char *properties_file;  /* kafka.properties_file: key=value lines; NULL = none */
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
        int unready_leave_s; /* llama.unready_leave_s: leave the group after this long without a
                                ready llama-server, default 60; 0 = never */
        char **lora;         /* llama.lora: "NAME=PATH" adapters, loaded unapplied, default [] */
        size_t n_lora;
    } llama;

    struct {
        int remember_max; /* control.remember_max: cancels remembered, default 10000 */
        int remember_s;   /* control.remember_s: how long, default 86400 */
    } control;

    struct {
        size_t max_prompt_bytes;  /* limits.max_prompt_bytes, default 1048576 */
        size_t max_pending_bytes; /* limits.max_pending_bytes: job messages held (queued, running,
                                     finishing) before intake pauses, default 64 MiB */
        int max_tokens;           /* limits.max_tokens: cap on a job's max_tokens, default 4096 */
        int default_max_tokens;   /* limits.default_max_tokens, default 512 */
        int job_timeout_s;   /* limits.job_timeout_s: when a job has no deadline, default 600 */
        int retries;         /* limits.retries after a backend failure, default 2 */
        int drain_timeout_s; /* limits.drain_timeout_s on SIGTERM, default 30 */
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

/* Load `path` over the defaults, then apply the environment `envp`
 * ("NAME=value" entries, NULL-terminated: pass environ; tests pass a fake;
 * NULL: none): the overrides of config_env_overrides, then Kafka
 * properties from kafka.properties_file and LLMQ_KAFKA_PROP_* variables
 * (worker/util/kafka_props.h). On error returns -1 and writes
 * "file:line: key: reason" (or "env NAME: reason") into err. The struct is
 * always safe to config_free(). config_load fills `cfg` from scratch (do
 * not call config_defaults first: that would leak); `path` NULL means no
 * file. */
int config_load(struct llmq_config *cfg, const char *path, char *const *envp, char *err,
                size_t err_len);

void config_free(struct llmq_config *cfg);

/* Write the effective configuration (secrets masked) in libconfig syntax. */
void config_dump(const struct llmq_config *cfg, FILE *out);

#endif
