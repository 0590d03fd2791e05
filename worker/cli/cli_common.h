/* cli_common.h — the frame every `llmq` subcommand shares: the global
 * options (brokers, librdkafka properties, topics), the exit codes, the
 * stop signals, clocks and reading a whole file.
 *
 * The global options are accepted before the subcommand and among its own
 * options: each subcommand puts CLI_GLOBAL_OPTIONS in its getopt_long table
 * and hands the options it does not know to cli_global_option(). */
#ifndef LLMQ_CLI_COMMON_H
#define LLMQ_CLI_COMMON_H

#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum cli_exit {
    CLI_EXIT_OK = 0,
    CLI_EXIT_FAILED = 1, /* an error reply, or (batch) a job that did not end done */
    CLI_EXIT_USAGE = 2,  /* bad flags or a job that fails validation */
    CLI_EXIT_TIMEOUT = 3,
    CLI_EXIT_KAFKA = 4,
    CLI_EXIT_INTERRUPTED = 130, /* stopped by SIGINT (128 + 2) */
    CLI_EXIT_TERMINATED = 143,  /* stopped by SIGTERM (128 + 15) */
};

/* How long a command waits for a broker to answer (--connect-timeout). */
#define CLI_DEFAULT_CONNECT_TIMEOUT_S 10.0

#define CLI_MAX_PROPS 64

struct cli_global {
    const char *brokers;
    const char *props[CLI_MAX_PROPS]; /* -X "name=value", in order */
    size_t n_props;
    const char *jobs_topic;
    const char *reply_topic;
    const char *control_topic;
    double connect_timeout_s; /* how long to wait for a broker to answer */
    bool verbose;             /* let librdkafka's own log lines through */
    sigset_t stop_signals;    /* SIGINT and SIGTERM, blocked: read with cli_stop_requested() */
    int stopped_by;           /* the stop signal received (0: none yet); it stays */
};

/* Long-only option values; the global short options are -b, -X and -v. */
enum {
    CLI_OPT_JOBS_TOPIC = 0x1000,
    CLI_OPT_REPLY_TOPIC,
    CLI_OPT_CONTROL_TOPIC,
    CLI_OPT_CONNECT_TIMEOUT,
    CLI_OPT_LANE, /* the steering flags (cli_steer.h) */
    CLI_OPT_LOGPROBS,
    CLI_OPT_LORA,
    CLI_OPT_CHUNK_MS,
    CLI_OPT_FIRST_LOCAL
};

#define CLI_GLOBAL_SHORT "b:X:v"
#define CLI_GLOBAL_OPTIONS                                                                         \
    {"brokers", required_argument, NULL, 'b'},                                                     \
        {"jobs-topic", required_argument, NULL, CLI_OPT_JOBS_TOPIC},                               \
        {"reply-topic", required_argument, NULL, CLI_OPT_REPLY_TOPIC},                             \
        {"control-topic", required_argument, NULL, CLI_OPT_CONTROL_TOPIC},                         \
        {"connect-timeout", required_argument, NULL, CLI_OPT_CONNECT_TIMEOUT},                     \
    {                                                                                              \
        "verbose", no_argument, NULL, 'v'                                                          \
    }

/* The global options' help lines, for each subcommand's --help. */
extern const char cli_global_help[];

/* Defaults: $LLMQ_BROKERS or 127.0.0.1:19092, llmq.jobs, llmq.replies,
 * llmq.control, a connect timeout of CLI_DEFAULT_CONNECT_TIMEOUT_S.
 * Blocks SIGINT and SIGTERM (before any Kafka thread starts, so that every
 * thread inherits the mask). */
void cli_global_init(struct cli_global *g);

/* Apply one option of CLI_GLOBAL_OPTIONS (or -X). Returns 0, 1 when `opt`
 * is not a global option, -1 when its argument is bad (said on stderr):
 * topic names must be Kafka topic names, the connect timeout seconds. */
int cli_global_option(struct cli_global *g, int opt, const char *arg);

/* One subcommand's command line: its name, its own options (short ones in
 * getopt's notation, long ones in a table ending with a {NULL} entry; the
 * global options and -h/--help are added to both), its --help text, and
 * what to do with each of its own options (0 = fine). */
struct cli_command {
    const char *name;
    const char *short_options;
    const struct option *options;
    void (*usage)(FILE *out);
    int (*option)(void *ctx, int opt, const char *arg);
};

/* Run getopt_long over argv with cmd's options, the global ones and
 * -h/--help: -h prints the usage and gives CLI_EXIT_OK, a bad option
 * CLI_EXIT_USAGE (with a hint on stderr); global options go to g, the rest
 * to cmd->option. Returns -1 when parsing may go on, with optind at the
 * first operand. */
int cli_parse_options(struct cli_global *g, const struct cli_command *cmd, void *ctx, int argc,
                      char **argv);

/* Say "llmq COMMAND: MESSAGE" and the hint to read COMMAND's --help on
 * stderr; returns CLI_EXIT_USAGE. */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
int
cli_usage_error(const char *command, const char *fmt, ...);

/* Whether SIGINT or SIGTERM has arrived (never blocks). The first one is
 * kept in g->stopped_by, so later calls keep answering true. */
bool cli_stop_requested(struct cli_global *g);

/* The exit code for a command stopped by g->stopped_by: CLI_EXIT_INTERRUPTED
 * for SIGINT, CLI_EXIT_TERMINATED for SIGTERM. */
int cli_stop_exit(const struct cli_global *g);

/* The exit code when a Kafka client could not be made: the stop signal's
 * when one came (nothing said), else CLI_EXIT_KAFKA with "llmq COMMAND:
 * ERR" on stderr. */
int cli_kafka_failed(const struct cli_global *g, const char *command, const char *err);

/* The connect timeout in milliseconds. */
int cli_connect_timeout_ms(const struct cli_global *g);

/* The whole content of a file ("-": standard input), NUL-terminated; NULL
 * with a message in err. The caller frees it. */
char *cli_read_file(const char *path, size_t *len, char *err, size_t err_len);

/* Parse a whole decimal integer / finite number; false if `s` is not one. */
bool cli_parse_int(const char *s, int64_t *out);
bool cli_parse_real(const char *s, double *out);

/* A timeout in seconds: a number > 0 and at most CLI_MAX_TIMEOUT_S. */
#define CLI_MAX_TIMEOUT_S 1000000
bool cli_parse_seconds(const char *s, double *out);

#endif
