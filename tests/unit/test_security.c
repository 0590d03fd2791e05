/* test_security.c — issue 11's configuration side: secrets never shown
 * (the sensitive names and patterns, each one; --check-config's dump and the
 * logger masking them), Kafka properties from kafka.properties_file,
 * LLMQ_KAFKA_PROP_* and "@/path" values (order, errors with file:line:key),
 * and reply topics that cannot be the worker's own. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "secrets.h"

#define ERR_LEN 512

/* A temp file holding `text`; its path into path (64 bytes). */
static void temp_file(char *path, const char *text)
{
    snprintf(path, 64, "/tmp/llmq-test-secrets-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t len = strlen(text);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
}

/* Load `text` as the configuration with environment `env`; config_load's
 * result, its error in err. */
static int load(const char *text, const char *const *env, struct llmq_config *cfg, char *err)
{
    char path[64];
    temp_file(path, text);
    err[0] = '\0';
    int rc = config_load(cfg, path, (char *const *)env, err, ERR_LEN);
    unlink(path);
    return rc;
}

static char *dump(const struct llmq_config *cfg)
{
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    config_dump(cfg, mem);
    fclose(mem);
    return text;
}

static const char *const no_env[] = {NULL};
#define MODEL_CFG "llama = { model = \"/m/tiny.gguf\"; };\n"

static void test_sensitive_names(void **state)
{
    (void)state;
    static const char *const secret[] = {
        "sasl.password",
        "ssl.keystore.password",
        "ssl_key_password",
        "ssl.key.password",
        "ssl.key.pem",
        "ssl_key_pem",
        "sasl.oauthbearer.config",
        "sasl.oauthbearer.client.secret",
        "my.Secret.thing",
    };
    static const char *const plain[] = {"sasl.username", "ssl.ca.location", "bootstrap.servers",
                                        "ssl.key.location", "sasl.oauthbearer.client.id"};
    for (size_t i = 0; i < sizeof(secret) / sizeof(secret[0]); i++)
        if (!secrets_property(secret[i]))
            fail_msg("%s is not taken for a secret", secret[i]);
    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
        if (secrets_property(plain[i]))
            fail_msg("%s is taken for a secret", plain[i]);

    const char *inline_value;
    assert_true(secrets_flag("--api-key", &inline_value) && !inline_value);
    assert_true(secrets_flag("--hf-token", &inline_value) && !inline_value);
    assert_true(secrets_flag("-hft", &inline_value) && !inline_value);
    assert_true(secrets_flag("--api-key=k", &inline_value));
    assert_string_equal(inline_value, "k");
    assert_false(secrets_flag("--api-key-file", &inline_value));
    assert_false(secrets_flag("--hf-repo", &inline_value));

    char out[128];
    assert_string_equal(secrets_url("http://u:p@h:1/x", out, sizeof(out)), "http://***@h:1/x");
    assert_string_equal(secrets_url("https://tok@h", out, sizeof(out)), "https://***@h");
    assert_string_equal(secrets_url("http://h:1/a@b", out, sizeof(out)), "http://h:1/a@b");
}

static const char secret_cfg[] =
    "llama = { url = \"http://alice:pw-in-url@h:1\"; api_key = \"sk-apikey1\";\n"
    "  extra_args = [\"--hf-token\", \"hf_tok_2\", \"--api-key=sk-inline3\", \"-fa\"]; };\n"
    "kafka = { properties = { ssl_key_pem = \"-----BEGIN KEY-----pem4\";\n"
    "  sasl_oauthbearer_config = \"principal=x secret5\";\n"
    "  sasl_oauthbearer_client_secret = \"oauth-secret6\"; ssl_key_password = \"keypw7\";\n"
    "  sasl_password = \"saslpw8\"; sasl_username = \"bob\"; }; };\n";

static const char *const secret_values[] = {
    "pw-in-url",           "sk-apikey1",    "hf_tok_2", "sk-inline3", "-----BEGIN KEY-----pem4",
    "principal=x secret5", "oauth-secret6", "keypw7",   "saslpw8",
};

static void test_check_config_masks_each(void **state)
{
    (void)state;
    struct llmq_config cfg;
    char err[ERR_LEN];
    assert_int_equal(load(secret_cfg, no_env, &cfg, err), 0);
    char *text = dump(&cfg);
    for (size_t i = 0; i < sizeof(secret_values) / sizeof(secret_values[0]); i++)
        if (strstr(text, secret_values[i]))
            fail_msg("--check-config shows %s:\n%s", secret_values[i], text);
    assert_non_null(strstr(text, "url = \"http://***@h:1\";"));
    assert_non_null(strstr(text, "extra_args = [ \"--hf-token\", \"***\", \"--api-key=***\", "
                                 "\"-fa\" ];"));
    assert_non_null(strstr(text, "ssl_key_pem = \"***\";"));
    assert_non_null(strstr(text, "sasl_oauthbearer_config = \"***\";"));
    assert_non_null(strstr(text, "sasl_username = \"bob\";"));
    free(text);
    config_free(&cfg);
}

/* Log `line` through a logger masking cfg's secrets; what it wrote. */
static void log_through(const struct secrets *s, const char *line, char *out, size_t cap)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    struct logger lg;
    logger_init(&lg, LOG_DEBUG, false, fileno(f));
    logger_mask(&lg, s);
    log_info(&lg, "test", "%s", line);
    rewind(f);
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
    fclose(f);
}

static void test_log_lines_mask_each(void **state)
{
    (void)state;
    struct llmq_config cfg;
    struct secrets s;
    char err[ERR_LEN], out[1024];
    assert_int_equal(load(secret_cfg, no_env, &cfg, err), 0);
    assert_int_equal(secrets_collect(&s, &cfg), 0);
    for (size_t i = 0; i < sizeof(secret_values) / sizeof(secret_values[0]); i++) {
        char line[128];
        snprintf(line, sizeof(line), "error: value [%s] rejected", secret_values[i]);
        log_through(&s, line, out, sizeof(out));
        if (strstr(out, secret_values[i]) || !strstr(out, "value [***] rejected"))
            fail_msg("log line not masked: %s", out);
    }
    /* Patterns, whatever the configuration. */
    log_through(NULL, "started llama-server --api-key k123 --hf-token=t456 -hft t789 -m x", out,
                sizeof(out));
    assert_non_null(strstr(out, "--api-key *** --hf-token=*** -hft *** -m x"));
    log_through(NULL, "ready at https://u:p@host:8080/v1", out, sizeof(out));
    assert_non_null(strstr(out, "ready at https://***@host:8080/v1"));
    log_through(NULL, "a mail@host and http://host/a@b stay", out, sizeof(out));
    assert_non_null(strstr(out, "a mail@host and http://host/a@b stay"));
    secrets_free(&s);
    config_free(&cfg);
}

static const char *property(const struct llmq_config *cfg, const char *key)
{
    for (size_t i = 0; i < cfg->kafka.n_properties; i++)
        if (strcmp(cfg->kafka.properties[i].key, key) == 0)
            return cfg->kafka.properties[i].value;
    return NULL;
}

static void test_properties_from_file_env_and_at_path(void **state)
{
    (void)state;
    char secret_path[64], props_path[64], text[512], env_value[96];
    temp_file(secret_path, "from-secret-file\n");
    snprintf(text, sizeof(text),
             "# comment\n! comment\n\n  sasl.username = carol \nsasl.password=@%s\n"
             "client.rack=r1\nssl.ca.location=@@literal\n",
             secret_path);
    temp_file(props_path, text);
    snprintf(env_value, sizeof(env_value), "LLMQ_KAFKA_PROPERTIES_FILE=%s", props_path);
    const char *env[] = {env_value, "LLMQ_KAFKA_PROP_CLIENT_RACK=r2",
                         "LLMQ_KAFKA_PROP_SASL_MECHANISMS=SCRAM-SHA-512", NULL};
    snprintf(text, sizeof(text),
             MODEL_CFG "kafka = { properties = { sasl_username = \"file\"; linger_ms = 5;\n"
                       "  sasl_oauthbearer_config = \"@%s\"; }; };\n",
             secret_path);
    struct llmq_config cfg;
    char err[ERR_LEN];
    if (load(text, env, &cfg, err) != 0)
        fail_msg("%s", err);
    assert_string_equal(property(&cfg, "linger.ms"), "5");
    assert_string_equal(property(&cfg, "sasl.oauthbearer.config"), "from-secret-file");
    assert_string_equal(property(&cfg, "sasl.username"), "carol"); /* the file over the group */
    assert_string_equal(property(&cfg, "sasl.password"), "from-secret-file");
    assert_string_equal(property(&cfg, "client.rack"), "r2"); /* the environment over the file */
    assert_string_equal(property(&cfg, "sasl.mechanisms"), "SCRAM-SHA-512");
    assert_string_equal(property(&cfg, "ssl.ca.location"), "@literal");
    char *dumped = dump(&cfg);
    assert_null(strstr(dumped, "from-secret-file"));
    assert_non_null(strstr(dumped, "ssl_ca_location = \"@@literal\";"));
    free(dumped);
    config_free(&cfg);
    unlink(secret_path);
    unlink(props_path);
}

static void expect_load_error(const char *text, const char *const *env, const char *want)
{
    struct llmq_config cfg;
    char err[ERR_LEN];
    assert_int_equal(load(text, env, &cfg, err), -1);
    if (!strstr(err, want))
        fail_msg("error \"%s\" lacks \"%s\"", err, want);
    config_free(&cfg);
}

static void test_property_source_errors(void **state)
{
    (void)state;
    expect_load_error(MODEL_CFG "kafka = {\n properties = { sasl_password = \"@/nonexistent/pw\"; "
                                "}; };\n",
                      no_env,
                      ":3: kafka.properties.sasl_password: cannot read @/nonexistent/pw: No such "
                      "file or directory");
    expect_load_error(MODEL_CFG "kafka = {\n properties_file = \"/nonexistent/p\"; };\n", no_env,
                      ":3: kafka.properties_file: cannot open /nonexistent/p: No such file");
    const char *bad_env[] = {"LLMQ_KAFKA_PROP_SASL_PASSWORD=@/nonexistent/pw", NULL};
    expect_load_error(MODEL_CFG, bad_env,
                      "env LLMQ_KAFKA_PROP_SASL_PASSWORD: cannot read @/nonexistent/pw");
    const char *no_name[] = {"LLMQ_KAFKA_PROP_=x", NULL};
    expect_load_error(MODEL_CFG, no_name, "env LLMQ_KAFKA_PROP_: names no property");

    char props_path[64], text[256];
    temp_file(props_path, "a=1\nsasl.password hunter2\n");
    snprintf(text, sizeof(text), MODEL_CFG "kafka = { properties_file = \"%s\"; };\n", props_path);
    char want[128];
    snprintf(want, sizeof(want), "%s:2: must be key=value", props_path);
    expect_load_error(text, no_env, want);
    unlink(props_path);
}

static void test_reply_topic_rules(void **state)
{
    (void)state;
    expect_load_error(MODEL_CFG "kafka = {\n jobs_topics = [\"a.jobs\"];\n"
                                " reply_topic = \"a.jobs\"; };\n",
                      no_env, ":4: kafka.reply_topic: \"a.jobs\" is a jobs topic: replies must go");
    expect_load_error(MODEL_CFG "kafka = {\n jobs_topics = [\"^t\\\\.[a-z]+\\\\.jobs$\"];\n"
                                " reply_topic = \"t.x.jobs\"; };\n",
                      no_env, ":4: kafka.reply_topic: \"t.x.jobs\" is a jobs topic");
    expect_load_error(MODEL_CFG "kafka = {\n reply_topic = \"llmq.dead\"; };\n", no_env,
                      ":3: kafka.reply_topic: \"llmq.dead\" is the dead-letter topic");
    const char *env[] = {"LLMQ_KAFKA_REPLY_TOPIC=llmq.jobs", NULL};
    expect_load_error(MODEL_CFG, env, "env LLMQ_KAFKA_REPLY_TOPIC: \"llmq.jobs\" is a jobs topic");
    expect_load_error(MODEL_CFG "kafka = {\n reply_allowlist = [\"ok\", \"llmq.metrics\"]; };\n",
                      no_env, ":3: kafka.reply_allowlist: item 2: \"llmq.metrics\" is the metrics");
    /* A prefix entry covering the worker's own topics is fine: job admission
     * never lets it match them (test_job.c). */
    struct llmq_config cfg;
    char err[ERR_LEN];
    assert_int_equal(
        load(MODEL_CFG "kafka = { reply_allowlist = [\"llmq.*\"]; };\n", no_env, &cfg, err), 0);
    config_free(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sensitive_names),
        cmocka_unit_test(test_check_config_masks_each),
        cmocka_unit_test(test_log_lines_mask_each),
        cmocka_unit_test(test_properties_from_file_env_and_at_path),
        cmocka_unit_test(test_property_source_errors),
        cmocka_unit_test(test_reply_topic_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
