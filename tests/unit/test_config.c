/* test_config.c — config module: defaults, full file, every kind of error
 * with file:line:key, environment overrides, kafka.properties passthrough,
 * the shipped example file, and config_dump round trips. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

#ifndef LLMQ_SOURCE_DIR
#define LLMQ_SOURCE_DIR "."
#endif

#define ERR_LEN 512

/* ---- a fake environment: NAME=value strings, NULL-terminated ---- */

static const char *const *fake_env;
#define FAKE_ENV ((char *const *)fake_env)

/* ---- temp files ---- */

struct temp_file {
    char path[64];
};

static void temp_write(struct temp_file *t, const char *text)
{
    snprintf(t->path, sizeof(t->path), "/tmp/llmq-test-config-XXXXXX");
    int fd = mkstemp(t->path);
    assert_true(fd >= 0);
    size_t len = strlen(text);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
}

/* Load `text` from a temp file with environment `env`; returns config_load's
 * result, the error text in err, and the temp file's name in t. */
static int load_text(const char *text, const char *const *env, struct llmq_config *cfg,
                     struct temp_file *t, char *err)
{
    temp_write(t, text);
    fake_env = env;
    err[0] = '\0';
    int rc = config_load(cfg, t->path, FAKE_ENV, err, ERR_LEN);
    unlink(t->path);
    return rc;
}

/* Load text that must fail; check the error is exactly "<tempfile><suffix>". */
static void expect_error(const char *text, const char *const *env, const char *suffix)
{
    struct llmq_config cfg;
    struct temp_file t;
    char err[ERR_LEN];
    assert_int_equal(load_text(text, env, &cfg, &t, err), -1);
    char want[ERR_LEN];
    snprintf(want, sizeof(want), "%s%s", t.path, suffix);
    assert_string_equal(err, want);
    config_free(&cfg);
}

static const char *const no_env[] = {NULL};
#define MODEL "llama = { model = \"/m/tiny.gguf\"; };\n"

/* ---- comparing two configurations field by field ---- */

static void assert_strings_equal(char *const *a, size_t na, char *const *b, size_t nb)
{
    assert_int_equal(na, nb);
    for (size_t i = 0; i < na; i++)
        assert_string_equal(a[i], b[i]);
}

static void assert_optional_equal(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        assert_ptr_equal(a, b);
    else
        assert_string_equal(a, b);
}

static void assert_config_equal(const struct llmq_config *a, const struct llmq_config *b)
{
    assert_string_equal(a->worker_id, b->worker_id);
    assert_string_equal(a->kafka.brokers, b->kafka.brokers);
    assert_string_equal(a->kafka.group_id, b->kafka.group_id);
    assert_strings_equal(a->kafka.jobs_topics, a->kafka.n_jobs_topics, b->kafka.jobs_topics,
                         b->kafka.n_jobs_topics);
    assert_string_equal(a->kafka.reply_topic, b->kafka.reply_topic);
    assert_strings_equal(a->kafka.reply_allowlist, a->kafka.n_reply_allowlist,
                         b->kafka.reply_allowlist, b->kafka.n_reply_allowlist);
    assert_string_equal(a->kafka.dead_letter_topic, b->kafka.dead_letter_topic);
    assert_string_equal(a->kafka.metrics_topic, b->kafka.metrics_topic);
    assert_int_equal(a->kafka.n_properties, b->kafka.n_properties);
    for (size_t i = 0; i < a->kafka.n_properties; i++) {
        assert_string_equal(a->kafka.properties[i].key, b->kafka.properties[i].key);
        assert_string_equal(a->kafka.properties[i].value, b->kafka.properties[i].value);
    }
    assert_string_equal(a->llama.binary, b->llama.binary);
    assert_optional_equal(a->llama.url, b->llama.url);
    assert_optional_equal(a->llama.api_key, b->llama.api_key);
    assert_optional_equal(a->llama.model, b->llama.model);
    assert_optional_equal(a->llama.model_name, b->llama.model_name);
    assert_int_equal(a->llama.gpu, b->llama.gpu);
    assert_int_equal(a->llama.gpu_layers, b->llama.gpu_layers);
    assert_int_equal(a->llama.context, b->llama.context);
    assert_int_equal(a->llama.slots, b->llama.slots);
    assert_strings_equal(a->llama.extra_args, a->llama.n_extra_args, b->llama.extra_args,
                         b->llama.n_extra_args);
    assert_int_equal(a->llama.startup_timeout_s, b->llama.startup_timeout_s);
    assert_int_equal(a->llama.restart_backoff_max_s, b->llama.restart_backoff_max_s);
    assert_int_equal(a->limits.max_prompt_bytes, b->limits.max_prompt_bytes);
    assert_int_equal(a->limits.max_tokens, b->limits.max_tokens);
    assert_int_equal(a->limits.default_max_tokens, b->limits.default_max_tokens);
    assert_int_equal(a->limits.job_timeout_s, b->limits.job_timeout_s);
    assert_int_equal(a->limits.retries, b->limits.retries);
    assert_int_equal(a->limits.drain_timeout_s, b->limits.drain_timeout_s);
    assert_int_equal(a->chunking.coalesce_ms, b->chunking.coalesce_ms);
    assert_int_equal(a->chunking.coalesce_tokens, b->chunking.coalesce_tokens);
    assert_string_equal(a->metrics.listen, b->metrics.listen);
    assert_int_equal(a->metrics.heartbeat_s, b->metrics.heartbeat_s);
    assert_int_equal(a->metrics.vram_floor_bytes, b->metrics.vram_floor_bytes);
    assert_string_equal(a->metrics.gpu_backend, b->metrics.gpu_backend);
    assert_int_equal(a->logging.level, b->logging.level);
    assert_int_equal(a->logging.json, b->logging.json);
}

/* A file that sets every key to something other than its default. */
static const char full_cfg[] =
    "worker = { id = \"node-7\"; };\n"
    "kafka = {\n"
    "  brokers = \"k1:9092,k2:9092\";\n"
    "  group_id = \"g\";\n"
    "  jobs_topics = [\"jobs.a\", \"jobs.b\"];\n"
    "  reply_topic = \"out\";\n"
    "  reply_allowlist = [\"out\", \"team-*\"];\n"
    "  dead_letter_topic = \"dead\";\n"
    "  metrics_topic = \"beats\";\n"
    "  properties = { linger_ms = 5; enable_idempotence = true; client_id = \"w\\\"1\"; };\n"
    "};\n"
    "llama = {\n"
    "  binary = \"/opt/llama/llama-server\";\n"
    "  url = \"http://10.0.0.2:8080\";\n"
    "  model = \"/models/Qwen-0.5B.gguf\";\n"
    "  model_name = \"qwen\";\n"
    "  gpu = -1;\n"
    "  gpu_layers = 20;\n"
    "  context = 8192;\n"
    "  slots = 8;\n"
    "  extra_args = (\"--flash-attn\", \"\");\n"
    "  startup_timeout_s = 60;\n"
    "  restart_backoff_max_s = 5;\n"
    "};\n"
    "limits = { max_prompt_bytes = 2048; max_tokens = 100; default_max_tokens = 50;\n"
    "  job_timeout_s = 9; retries = 0; drain_timeout_s = 0; };\n"
    "chunking = { coalesce_ms = 25; };\n"
    "metrics = { listen = \"\"; heartbeat_s = 0; vram_floor_mb = 512; gpu_backend = \"none\"; };\n"
    "logging = { level = \"debug\"; json = true; };\n";

/* ---- tests ---- */

static void test_defaults(void **state)
{
    (void)state;
    struct llmq_config cfg;
    config_defaults(&cfg);
    char host[HOST_NAME_MAX + 1] = "";
    gethostname(host, sizeof(host));
    char id[HOST_NAME_MAX + 32];
    snprintf(id, sizeof(id), "%s-%ld", host, (long)getpid());
    assert_string_equal(cfg.worker_id, id);
    assert_string_equal(cfg.kafka.brokers, "127.0.0.1:9092");
    assert_string_equal(cfg.kafka.group_id, "llmq");
    assert_int_equal(cfg.kafka.n_jobs_topics, 1);
    assert_string_equal(cfg.kafka.jobs_topics[0], "llmq.jobs");
    assert_string_equal(cfg.kafka.reply_topic, "llmq.replies");
    assert_int_equal(cfg.kafka.n_reply_allowlist, 0);
    assert_string_equal(cfg.kafka.dead_letter_topic, "llmq.dead");
    assert_string_equal(cfg.kafka.metrics_topic, "llmq.metrics");
    assert_int_equal(cfg.kafka.n_properties, 0);
    assert_string_equal(cfg.llama.binary, "llama-server");
    assert_null(cfg.llama.url);
    assert_null(cfg.llama.api_key);
    assert_null(cfg.llama.model);
    assert_null(cfg.llama.model_name);
    assert_int_equal(cfg.llama.gpu, 0);
    assert_int_equal(cfg.llama.gpu_layers, 999);
    assert_int_equal(cfg.llama.context, 4096);
    assert_int_equal(cfg.llama.slots, 4);
    assert_int_equal(cfg.llama.n_extra_args, 0);
    assert_int_equal(cfg.llama.startup_timeout_s, 300);
    assert_int_equal(cfg.llama.restart_backoff_max_s, 30);
    assert_int_equal(cfg.limits.max_prompt_bytes, 1048576);
    assert_int_equal(cfg.limits.max_tokens, 4096);
    assert_int_equal(cfg.limits.default_max_tokens, 512);
    assert_int_equal(cfg.limits.job_timeout_s, 600);
    assert_int_equal(cfg.limits.retries, 2);
    assert_int_equal(cfg.limits.drain_timeout_s, 30);
    assert_int_equal(cfg.chunking.coalesce_ms, 100);
    assert_int_equal(cfg.chunking.coalesce_tokens, 8);
    assert_string_equal(cfg.metrics.listen, "127.0.0.1:9464");
    assert_int_equal(cfg.metrics.heartbeat_s, 10);
    assert_int_equal(cfg.metrics.vram_floor_bytes, 0);
    assert_string_equal(cfg.metrics.gpu_backend, "auto");
    assert_int_equal(cfg.logging.level, LOG_INFO);
    assert_false(cfg.logging.json);
    config_free(&cfg);
    config_free(&cfg); /* freeing twice is harmless */
}

static void test_minimal_file_is_defaults_plus_model(void **state)
{
    (void)state;
    struct llmq_config cfg, want;
    struct temp_file t;
    char err[ERR_LEN];
    assert_int_equal(load_text(MODEL, no_env, &cfg, &t, err), 0);
    config_defaults(&want);
    want.llama.model = strdup("/m/tiny.gguf");
    want.llama.model_name = strdup("tiny");
    assert_config_equal(&cfg, &want);
    config_free(&cfg);
    config_free(&want);
}

static void test_full_file(void **state)
{
    (void)state;
    struct llmq_config cfg;
    struct temp_file t;
    char err[ERR_LEN];
    assert_int_equal(load_text(full_cfg, no_env, &cfg, &t, err), 0);
    assert_string_equal(err, "");
    assert_string_equal(cfg.worker_id, "node-7");
    assert_string_equal(cfg.kafka.brokers, "k1:9092,k2:9092");
    assert_string_equal(cfg.kafka.group_id, "g");
    assert_int_equal(cfg.kafka.n_jobs_topics, 2);
    assert_string_equal(cfg.kafka.jobs_topics[1], "jobs.b");
    assert_string_equal(cfg.kafka.reply_topic, "out");
    assert_int_equal(cfg.kafka.n_reply_allowlist, 2);
    assert_string_equal(cfg.kafka.reply_allowlist[1], "team-*");
    assert_string_equal(cfg.kafka.dead_letter_topic, "dead");
    assert_string_equal(cfg.kafka.metrics_topic, "beats");
    assert_int_equal(cfg.kafka.n_properties, 3);
    assert_string_equal(cfg.llama.binary, "/opt/llama/llama-server");
    assert_string_equal(cfg.llama.url, "http://10.0.0.2:8080");
    assert_string_equal(cfg.llama.model, "/models/Qwen-0.5B.gguf");
    assert_string_equal(cfg.llama.model_name, "qwen");
    assert_int_equal(cfg.llama.gpu, -1);
    assert_int_equal(cfg.llama.gpu_layers, 20);
    assert_int_equal(cfg.llama.context, 8192);
    assert_int_equal(cfg.llama.slots, 8);
    assert_int_equal(cfg.llama.n_extra_args, 2);
    assert_string_equal(cfg.llama.extra_args[0], "--flash-attn");
    assert_string_equal(cfg.llama.extra_args[1], "");
    assert_int_equal(cfg.llama.startup_timeout_s, 60);
    assert_int_equal(cfg.llama.restart_backoff_max_s, 5);
    assert_int_equal(cfg.limits.max_prompt_bytes, 2048);
    assert_int_equal(cfg.limits.max_tokens, 100);
    assert_int_equal(cfg.limits.default_max_tokens, 50);
    assert_int_equal(cfg.limits.job_timeout_s, 9);
    assert_int_equal(cfg.limits.retries, 0);
    assert_int_equal(cfg.limits.drain_timeout_s, 0);
    assert_int_equal(cfg.chunking.coalesce_ms, 25);
    assert_string_equal(cfg.metrics.listen, "");
    assert_int_equal(cfg.metrics.heartbeat_s, 0);
    assert_int_equal(cfg.metrics.vram_floor_bytes, 512ULL * 1024 * 1024);
    assert_string_equal(cfg.metrics.gpu_backend, "none");
    assert_int_equal(cfg.logging.level, LOG_DEBUG);
    assert_true(cfg.logging.json);
    config_free(&cfg);
}

static void test_properties_passthrough(void **state)
{
    (void)state;
    struct llmq_config cfg;
    struct temp_file t;
    char err[ERR_LEN];
    assert_int_equal(load_text(MODEL "kafka = { properties = {\n"
                                     "  security_protocol = \"SASL_SSL\";\n"
                                     "  sasl_password = \"hunter2\";\n"
                                     "  linger_ms = 5;\n"
                                     "  big = 10000000000L;\n"
                                     "  enable_idempotence = false;\n"
                                     "  debug = \"\";\n"
                                     "}; };\n",
                               no_env, &cfg, &t, err),
                     0);
    const char *want[][2] = {{"security.protocol", "SASL_SSL"},
                             {"sasl.password", "hunter2"},
                             {"linger.ms", "5"},
                             {"big", "10000000000"},
                             {"enable.idempotence", "false"},
                             {"debug", ""}};
    assert_int_equal(cfg.kafka.n_properties, 6);
    for (size_t i = 0; i < 6; i++) {
        assert_string_equal(cfg.kafka.properties[i].key, want[i][0]);
        assert_string_equal(cfg.kafka.properties[i].value, want[i][1]);
    }
    config_free(&cfg);
}

static void test_unknown_keys(void **state)
{
    (void)state;
    expect_error(MODEL "\nfoo = 1;\n", no_env, ":3: foo: unknown key");
    expect_error(MODEL "servers = { a = 1; };\n", no_env, ":2: servers: unknown key");
    expect_error("llama = {\n  model = \"m.gguf\";\n  slotz = 4;\n};\n", no_env,
                 ":3: llama.slotz: unknown key");
    expect_error(MODEL "kafka = 5;\n", no_env, ":2: kafka: must be a group, e.g. name = { ... };");
}

static void test_wrong_types(void **state)
{
    (void)state;
    expect_error("llama = {\n model = \"m\";\n slots = \"4\";\n};\n", no_env,
                 ":3: llama.slots: must be an integer");
    expect_error("llama = { model = \"m\"; context = 4096.0; };\n", no_env,
                 ":1: llama.context: must be an integer");
    expect_error("llama = { model = 5; };\n", no_env, ":1: llama.model: must be a string");
    expect_error(MODEL "logging = { json = \"yes\"; };\n", no_env,
                 ":2: logging.json: must be true or false");
    expect_error(MODEL "kafka = { jobs_topics = \"jobs\"; };\n", no_env,
                 ":2: kafka.jobs_topics: must be a list of strings, e.g. [\"a\", \"b\"]");
    expect_error(MODEL "kafka = { jobs_topics = (\"a\", 1); };\n", no_env,
                 ":2: kafka.jobs_topics: item 2: must be a string");
    expect_error(MODEL "kafka = { properties = 1; };\n", no_env,
                 ":2: kafka.properties: must be a group of librdkafka properties");
    expect_error(MODEL "kafka = { properties = {\n a = 1;\n b = [1];\n }; };\n", no_env,
                 ":4: kafka.properties.b: must be a string, an integer or a boolean");
}

static void test_bad_values(void **state)
{
    (void)state;
    expect_error("llama = {\n model = \"m\";\n\n slots = 0;\n};\n", no_env,
                 ":4: llama.slots: must be between 1 and 256 (got 0)");
    expect_error(MODEL "metrics = { vram_floor_mb = -1; };\n", no_env,
                 ":2: metrics.vram_floor_mb: must be between 0 and 16777216 (got -1)");
    expect_error(MODEL "limits = { max_prompt_bytes = 5000000000L; };\n", no_env,
                 ":2: limits.max_prompt_bytes: must be between 1 and 1073741824 (got 5000000000)");
    expect_error(MODEL "kafka = { brokers = \"\"; };\n", no_env,
                 ":2: kafka.brokers: must not be empty");
    expect_error(MODEL "logging = { level = \"loud\"; };\n", no_env,
                 ":2: logging.level: must be one of debug, info, warn, error (got \"loud\")");
    expect_error(MODEL "kafka = { reply_topic = \"bad topic\"; };\n", no_env,
                 ":2: kafka.reply_topic: must be a Kafka topic name: at most 249 of a-z A-Z 0-9 "
                 ". _ - (got \"bad topic\")");
    expect_error(MODEL "kafka = { jobs_topics = []; };\n", no_env,
                 ":2: kafka.jobs_topics: must list at least 1 item(s)");
    expect_error(MODEL "kafka = { reply_allowlist = [\"ok\", \"no/*\"]; };\n", no_env,
                 ":2: kafka.reply_allowlist: item 2: must be a Kafka topic name: at most 249 of "
                 "a-z A-Z 0-9 . _ - (got \"no/*\")");
    expect_error(MODEL "metrics = { listen = \"9464\"; };\n", no_env,
                 ":2: metrics.listen: must be HOST:PORT, or \"\" for off (got \"9464\")");
    expect_error(MODEL "metrics = { gpu_backend = \"cuda\"; };\n", no_env,
                 ":2: metrics.gpu_backend: must be one of auto, rocm, nvml, none (got \"cuda\")");
    expect_error("llama = { url = \"10.0.0.1:8080\"; };\n", no_env,
                 ":1: llama.url: must be an http:// or https:// URL (got \"10.0.0.1:8080\")");
    expect_error(MODEL "worker = { id = \"a b\"; };\n", no_env,
                 ":2: worker.id: must not contain spaces or control characters");
}

static void test_cross_key_rules(void **state)
{
    (void)state;
    /* No model and no url: the llama group's line, or just the file. */
    expect_error("\nllama = { slots = 2; };\n", no_env,
                 ":2: llama.model: required when llama.url is not set");
    expect_error("logging = { json = true; };\n", no_env,
                 ": llama.model: required when llama.url is not set");
    expect_error(MODEL "limits = {\n max_tokens = 100;\n default_max_tokens = 200;\n};\n", no_env,
                 ":4: limits.default_max_tokens: must not exceed limits.max_tokens (100)");
    /* With url set the model is optional, and model_name stays unset. */
    struct llmq_config cfg;
    struct temp_file t;
    char err[ERR_LEN];
    assert_int_equal(load_text("llama = { url = \"https://llm:8443\"; api_key = \"k\"; };\n",
                               no_env, &cfg, &t, err),
                     0);
    assert_null(cfg.llama.model);
    assert_null(cfg.llama.model_name);
    config_free(&cfg);
}

static void test_model_name_default(void **state)
{
    (void)state;
    struct llmq_config cfg;
    struct temp_file t;
    char err[ERR_LEN];
    const char *cases[][2] = {{"/a/b/gemma-3-270m-Q4_K_M.gguf", "gemma-3-270m-Q4_K_M"},
                              {"plain.bin", "plain.bin"},
                              {"rel/dir/x.gguf", "x"}};
    for (size_t i = 0; i < 3; i++) {
        char text[256];
        snprintf(text, sizeof(text), "llama = { model = \"%s\"; };\n", cases[i][0]);
        assert_int_equal(load_text(text, no_env, &cfg, &t, err), 0);
        assert_string_equal(cfg.llama.model_name, cases[i][1]);
        config_free(&cfg);
    }
}

static void test_parse_error_and_missing_file(void **state)
{
    (void)state;
    expect_error("llama = {\n  model = \"m\"\n  slots = ;\n};\n", no_env, ":3: syntax error");
    expect_error("a = 1;\na = 2;\n", no_env, ":2: syntax error: duplicate setting name");

    struct llmq_config cfg;
    char err[ERR_LEN];
    assert_int_equal(config_load(&cfg, "/nonexistent/worker.cfg", FAKE_ENV, err, sizeof(err)), -1);
    assert_string_equal(err, "/nonexistent/worker.cfg: cannot open: No such file or directory");
    config_free(&cfg);
}

static void test_env_overrides(void **state)
{
    (void)state;
    static const char *const env[] = {"LLMQ_WORKER_ID=w-env",
                                      "LLMQ_KAFKA_BROKERS=b:1",
                                      "LLMQ_KAFKA_GROUP_ID=grp",
                                      "LLMQ_KAFKA_JOBS_TOPICS=t1,t2,^re[.].*",
                                      "LLMQ_KAFKA_REPLY_TOPIC=rep",
                                      "LLMQ_KAFKA_DEAD_LETTER_TOPIC=dl",
                                      "LLMQ_LLAMA_BINARY=/bin/ls",
                                      "LLMQ_LLAMA_URL=http://h:1",
                                      "LLMQ_LLAMA_API_KEY=sek",
                                      "LLMQ_LLAMA_MODEL=/x/env.gguf",
                                      "LLMQ_LLAMA_GPU=-1",
                                      "LLMQ_LLAMA_SLOTS=16",
                                      "LLMQ_LLAMA_CONTEXT=2048",
                                      "LLMQ_METRICS_LISTEN=0.0.0.0:0",
                                      "LLMQ_LOG_LEVEL=warn",
                                      "LLMQ_LOG_JSON=yes",
                                      "UNRELATED=1",
                                      NULL};
    struct llmq_config cfg;
    struct temp_file t;
    char err[ERR_LEN];
    assert_int_equal(
        load_text("llama = { model = \"/file.gguf\"; slots = 2; };\n", env, &cfg, &t, err), 0);
    assert_string_equal(cfg.worker_id, "w-env");
    assert_string_equal(cfg.kafka.brokers, "b:1");
    assert_string_equal(cfg.kafka.group_id, "grp");
    assert_int_equal(cfg.kafka.n_jobs_topics, 3);
    assert_string_equal(cfg.kafka.jobs_topics[0], "t1");
    assert_string_equal(cfg.kafka.jobs_topics[1], "t2");
    assert_string_equal(cfg.kafka.jobs_topics[2], "^re[.].*");
    assert_string_equal(cfg.kafka.reply_topic, "rep");
    assert_string_equal(cfg.kafka.dead_letter_topic, "dl");
    assert_string_equal(cfg.llama.binary, "/bin/ls");
    assert_string_equal(cfg.llama.url, "http://h:1");
    assert_string_equal(cfg.llama.api_key, "sek");
    assert_string_equal(cfg.llama.model, "/x/env.gguf");
    assert_string_equal(cfg.llama.model_name, "env"); /* derived after the override */
    assert_int_equal(cfg.llama.gpu, -1);
    assert_int_equal(cfg.llama.slots, 16);
    assert_int_equal(cfg.llama.context, 2048);
    assert_string_equal(cfg.metrics.listen, "0.0.0.0:0");
    assert_int_equal(cfg.logging.level, LOG_WARN);
    assert_true(cfg.logging.json);
    config_free(&cfg);

    /* Every required variable is in the table. */
    static const char *const required[] = {
        "LLMQ_WORKER_ID",         "LLMQ_KAFKA_BROKERS",     "LLMQ_KAFKA_GROUP_ID",
        "LLMQ_KAFKA_JOBS_TOPICS", "LLMQ_KAFKA_REPLY_TOPIC", "LLMQ_KAFKA_DEAD_LETTER_TOPIC",
        "LLMQ_LLAMA_BINARY",      "LLMQ_LLAMA_URL",         "LLMQ_LLAMA_MODEL",
        "LLMQ_LLAMA_GPU",         "LLMQ_LLAMA_SLOTS",       "LLMQ_LLAMA_CONTEXT",
        "LLMQ_METRICS_LISTEN",    "LLMQ_LOG_LEVEL"};
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
        bool found = false;
        for (size_t j = 0; j < config_env_override_count; j++)
            found = found || strcmp(config_env_overrides[j].env, required[i]) == 0;
        assert_true(found);
    }
}

static void test_env_empty_url_unsets_file_value(void **state)
{
    (void)state;
    static const char *const env[] = {"LLMQ_LLAMA_URL=", "LLMQ_METRICS_LISTEN=", NULL};
    struct llmq_config cfg;
    struct temp_file t;
    char err[ERR_LEN];
    assert_int_equal(
        load_text("llama = { url = \"http://x:1\"; model = \"m.gguf\"; };\n", env, &cfg, &t, err),
        0);
    assert_null(cfg.llama.url);
    assert_string_equal(cfg.metrics.listen, "");
    config_free(&cfg);
}

static void expect_env_error(const char *var, const char *want)
{
    const char *env[] = {var, NULL};
    struct llmq_config cfg;
    struct temp_file t;
    char err[ERR_LEN];
    assert_int_equal(load_text(MODEL, env, &cfg, &t, err), -1);
    assert_string_equal(err, want);
    config_free(&cfg);
}

static void test_env_errors(void **state)
{
    (void)state;
    expect_env_error("LLMQ_LLAMA_SLOTS=abc",
                     "env LLMQ_LLAMA_SLOTS: must be an integer (got \"abc\")");
    expect_env_error("LLMQ_LLAMA_SLOTS=", "env LLMQ_LLAMA_SLOTS: must be an integer (got \"\")");
    expect_env_error("LLMQ_LLAMA_SLOTS=4x",
                     "env LLMQ_LLAMA_SLOTS: must be an integer (got \"4x\")");
    expect_env_error("LLMQ_LLAMA_CONTEXT=1",
                     "env LLMQ_LLAMA_CONTEXT: must be between 64 and 16777216 (got 1)");
    expect_env_error("LLMQ_KAFKA_JOBS_TOPICS=a,,b",
                     "env LLMQ_KAFKA_JOBS_TOPICS: item 2: must not be empty");
    expect_env_error("LLMQ_KAFKA_JOBS_TOPICS=",
                     "env LLMQ_KAFKA_JOBS_TOPICS: must list at least 1 item(s)");
    expect_env_error("LLMQ_KAFKA_BROKERS=", "env LLMQ_KAFKA_BROKERS: must not be empty");
    expect_env_error("LLMQ_LOG_LEVEL=trace",
                     "env LLMQ_LOG_LEVEL: must be one of debug, info, warn, error (got \"trace\")");
    expect_env_error("LLMQ_LOG_JSON=maybe",
                     "env LLMQ_LOG_JSON: must be true or false (got \"maybe\")");
    expect_env_error("LLMQ_LLAMA_URL=ftp://x",
                     "env LLMQ_LLAMA_URL: must be an http:// or https:// URL (got \"ftp://x\")");

    /* A variable that unsets llama.url leaves llama.model missing: the error
     * points at the llama group, where the model belongs. */
    const char *env[] = {"LLMQ_LLAMA_URL=", NULL};
    struct llmq_config cfg;
    struct temp_file t;
    char err[ERR_LEN];
    assert_int_equal(load_text("llama = { url = \"http://x:1\"; };\n", env, &cfg, &t, err), -1);
    char want[ERR_LEN];
    snprintf(want, sizeof(want), "%s:1: llama.model: required when llama.url is not set", t.path);
    assert_string_equal(err, want);
    config_free(&cfg);
}

static void test_no_file_env_only(void **state)
{
    (void)state;
    static const char *const env[] = {"LLMQ_LLAMA_MODEL=/e/m.gguf", NULL};
    struct llmq_config cfg;
    char err[ERR_LEN];
    fake_env = env;
    assert_int_equal(config_load(&cfg, NULL, FAKE_ENV, err, sizeof(err)), 0);
    assert_string_equal(cfg.llama.model_name, "m");
    config_free(&cfg);
    fake_env = no_env;
    assert_int_equal(config_load(&cfg, NULL, FAKE_ENV, err, sizeof(err)), -1);
    assert_string_equal(err, "config: llama.model: required when llama.url is not set");
    config_free(&cfg);
}

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    int c;
    while ((c = fgetc(f)) != EOF)
        fputc(c, mem);
    fclose(mem);
    fclose(f);
    return buf;
}

static void test_example_file(void **state)
{
    (void)state;
    const char *path = LLMQ_SOURCE_DIR "/deploy/worker.example.cfg";
    struct llmq_config cfg, want;
    char err[ERR_LEN] = "";
    fake_env = no_env;
    int rc = config_load(&cfg, path, FAKE_ENV, err, sizeof(err));
    if (rc != 0)
        fail_msg("%s", err);
    /* The values it shows are the defaults. */
    config_defaults(&want);
    want.llama.model = strdup(cfg.llama.model);
    want.llama.model_name = strdup(cfg.llama.model_name);
    assert_config_equal(&cfg, &want);
    config_free(&cfg);
    config_free(&want);

    /* It documents every key. */
    static const char *const names[] = {"id",
                                        "brokers",
                                        "group_id",
                                        "jobs_topics",
                                        "reply_topic",
                                        "reply_allowlist",
                                        "dead_letter_topic",
                                        "metrics_topic",
                                        "properties",
                                        "static_membership",
                                        "unready_leave_s",
                                        "max_pending_bytes",
                                        "properties_file",
                                        "binary",
                                        "url",
                                        "api_key",
                                        "model",
                                        "model_name",
                                        "gpu",
                                        "gpu_layers",
                                        "context",
                                        "slots",
                                        "extra_args",
                                        "startup_timeout_s",
                                        "restart_backoff_max_s",
                                        "max_prompt_bytes",
                                        "max_tokens",
                                        "default_max_tokens",
                                        "job_timeout_s",
                                        "retries",
                                        "drain_timeout_s",
                                        "coalesce_ms",
                                        "coalesce_tokens",
                                        "listen",
                                        "heartbeat_s",
                                        "vram_floor_mb",
                                        "gpu_backend",
                                        "level",
                                        "json"};
    char *text = read_all(path);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char needle[64];
        snprintf(needle, sizeof(needle), " %s = ", names[i]);
        if (strstr(text, needle) == NULL)
            fail_msg("example does not document %s", names[i]);
    }
    free(text);
}

/* Dump `cfg`, load the dump, return the result in `back`. */
static void dump_and_load(const struct llmq_config *cfg, struct llmq_config *back, char **dumped)
{
    size_t len = 0;
    FILE *mem = open_memstream(dumped, &len);
    config_dump(cfg, mem);
    fclose(mem);
    struct temp_file t;
    char err[ERR_LEN];
    int rc = load_text(*dumped, no_env, back, &t, err);
    if (rc != 0)
        fail_msg("%s\n%s", err, *dumped);
}

static void test_dump_round_trip(void **state)
{
    (void)state;
    static const char *const texts[] = {
        full_cfg, MODEL,
        "llama = { model = \"/odd \\\"name\\\\\\n.gguf\"; extra_args = [\"-a\", \"b\\tc\"]; };\n"};
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        struct llmq_config cfg, back;
        struct temp_file t;
        char err[ERR_LEN];
        assert_int_equal(load_text(texts[i], no_env, &cfg, &t, err), 0);
        char *dumped = NULL;
        dump_and_load(&cfg, &back, &dumped);
        assert_config_equal(&cfg, &back);
        free(dumped);
        config_free(&cfg);
        config_free(&back);
    }
}

static void test_dump_masks_secrets(void **state)
{
    (void)state;
    struct llmq_config cfg;
    struct temp_file t;
    char err[ERR_LEN];
    assert_int_equal(
        load_text("llama = { url = \"http://h:1\"; api_key = \"topsecret1\"; };\n"
                  "kafka = { properties = { sasl_password = \"topsecret2\";\n"
                  "  sasl_oauthbearer_client_secret = \"topsecret3\";\n"
                  "  ssl_key_password = \"topsecret4\"; sasl_username = \"u\"; }; };\n",
                  no_env, &cfg, &t, err),
        0);
    char *dumped = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&dumped, &len);
    config_dump(&cfg, mem);
    fclose(mem);
    assert_null(strstr(dumped, "topsecret"));
    assert_non_null(strstr(dumped, "api_key = \"***\";"));
    assert_non_null(strstr(dumped, "sasl_password = \"***\";"));
    assert_non_null(strstr(dumped, "sasl_username = \"u\";"));
    assert_non_null(strstr(dumped, "# model: not set"));
    free(dumped);
    config_free(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_minimal_file_is_defaults_plus_model),
        cmocka_unit_test(test_full_file),
        cmocka_unit_test(test_properties_passthrough),
        cmocka_unit_test(test_unknown_keys),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_cross_key_rules),
        cmocka_unit_test(test_model_name_default),
        cmocka_unit_test(test_parse_error_and_missing_file),
        cmocka_unit_test(test_env_overrides),
        cmocka_unit_test(test_env_empty_url_unsets_file_value),
        cmocka_unit_test(test_env_errors),
        cmocka_unit_test(test_no_file_env_only),
        cmocka_unit_test(test_example_file),
        cmocka_unit_test(test_dump_round_trip),
        cmocka_unit_test(test_dump_masks_secrets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
