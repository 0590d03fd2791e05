/* log.h — leveled log lines on stderr, plain or JSON.
 *
 * A struct logger is created once by main from the config and handed to each
 * module (no global logger). A line is written with one write(2) so lines
 * from the worker and the llama-server child never interleave mid-line. */
#ifndef LLMQ_LOG_H
#define LLMQ_LOG_H

#include <stdbool.h>

struct secrets;

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

struct logger {
    enum log_level level;
    bool json;
    int fd;                        /* usually 2 */
    const struct secrets *secrets; /* masked in every line (secrets.h); NULL: patterns only */
};

/* A logger with no secret values known yet (patterns are masked anyway). */
void logger_init(struct logger *lg, enum log_level level, bool json, int fd);

/* Mask `secrets` (borrowed: it must outlive the logger) in every line. */
void logger_mask(struct logger *lg, const struct secrets *secrets);

#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
void log_at(const struct logger *lg, enum log_level level, const char *module, const char *fmt, ...);

#define log_debug(lg, module, ...) log_at((lg), LOG_DEBUG, (module), __VA_ARGS__)
#define log_info(lg, module, ...)  log_at((lg), LOG_INFO, (module), __VA_ARGS__)
#define log_warn(lg, module, ...)  log_at((lg), LOG_WARN, (module), __VA_ARGS__)
#define log_error(lg, module, ...) log_at((lg), LOG_ERROR, (module), __VA_ARGS__)

/* Parse "debug" / "info" / "warn" / "error"; returns -1 if unknown. */
int log_level_parse(const char *name, enum log_level *out);
const char *log_level_name(enum log_level level);

#endif
