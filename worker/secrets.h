/* secrets.h — what is secret in the worker's configuration, and masking it.
 *
 * One list of sensitive names and patterns, used by config_dump
 * (--check-config) and by the logger (every log line):
 *   - a librdkafka property whose name contains "password" or "secret", or is
 *     ssl.key.pem, ssl.key.password, sasl.oauthbearer.config or
 *     sasl.oauthbearer.client.secret ('_' may stand for '.');
 *   - the userinfo of a URL (user:pass in scheme://user:pass@host becomes ***);
 *   - the value after --api-key / --hf-token / -hft in llama.extra_args
 *     (also --api-key=VALUE);
 *   - llama.api_key.
 * The logger masks by value: struct secrets holds every secret value of the
 * loaded configuration, and secrets_mask() replaces each occurrence in a
 * line, plus URL userinfo and secret flags' values found by pattern. */
#ifndef LLMQ_SECRETS_H
#define LLMQ_SECRETS_H

#include <stdbool.h>
#include <stddef.h>

#define SECRETS_MASK "***"

struct llmq_config;

/* The secret values of one configuration (copies). */
struct secrets {
    char **values;
    size_t n;
};

/* Whether a librdkafka property named `name` holds a secret. */
bool secrets_property(const char *name);

/* Whether the argument after `arg` in llama.extra_args is a secret
 * (--api-key, --hf-token, -hft); *inline_value is set to the text after '='
 * when `arg` is "--api-key=VALUE" (then the next argument is not secret). */
bool secrets_flag(const char *arg, const char **inline_value);

/* `url` with its userinfo masked into out (user:pass@ becomes ***@); `url`
 * itself when it has none. */
const char *secrets_url(const char *url, char *out, size_t cap);

/* Collect the secret values of `cfg` into `s` (empty values skipped).
 * 0, or -1 when out of memory (s is then empty and safe to free). */
int secrets_collect(struct secrets *s, const struct llmq_config *cfg);

/* Free what secrets_collect made. */
void secrets_free(struct secrets *s);

/* Copy `text` into out (always terminated) with every known secret value,
 * URL userinfo and secret flag's value replaced by SECRETS_MASK. `s` may be
 * NULL (patterns only). */
void secrets_mask(const struct secrets *s, const char *text, char *out, size_t cap);

#endif
