/* cli_common.c — global options, stop signals, clocks and file reading for
 * the llmq subcommands. */
#include "cli_common.h"

#include "buf.h"
#include "kafka_names.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum {
    READ_CHUNK = 4096,    /* bytes read at a time */
    CLI_MAX_OPTIONS = 48, /* long options of one command, global ones and the end included */
};

#define CLI_DEFAULT_BROKERS "127.0.0.1:19092"

const char cli_global_help[] =
    "Global options (also accepted before the command):\n"
    "  -b, --brokers LIST     Kafka bootstrap servers (default $LLMQ_BROKERS "
    "or " CLI_DEFAULT_BROKERS ")\n"
    "  -X NAME=VALUE          a librdkafka property (SASL, TLS, ...); repeatable\n"
    "      --jobs-topic T     where jobs go (default llmq.jobs)\n"
    "      --reply-topic T    where replies are read (default llmq.replies); jobs\n"
    "                         ask for their replies there (reply_to)\n"
    "      --control-topic T  where cancels go (default llmq.control)\n"
    "      --connect-timeout S\n"
    "                         give up (exit 4) when no broker answers within S\n"
    "                         seconds (default 10)\n"
    "  -v, --verbose          show librdkafka's own log lines\n";

void cli_global_init(struct cli_global *g)
{
    const char *env = getenv("LLMQ_BROKERS");
    memset(g, 0, sizeof(*g));
    g->brokers = env && env[0] ? env : CLI_DEFAULT_BROKERS;
    g->jobs_topic = "llmq.jobs";
    g->reply_topic = "llmq.replies";
    g->control_topic = "llmq.control";
    g->connect_timeout_s = CLI_DEFAULT_CONNECT_TIMEOUT_S;
    sigemptyset(&g->stop_signals);
    sigaddset(&g->stop_signals, SIGINT);
    sigaddset(&g->stop_signals, SIGTERM);
    sigprocmask(SIG_BLOCK, &g->stop_signals, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* The global options and -h/--help, put before each command's own. */
static const struct option global_options[] = {CLI_GLOBAL_OPTIONS,
                                               {"help", no_argument, NULL, 'h'}};

/* The whole getopt tables of cmd (global options, help, its own) in `all`
 * (CLI_MAX_OPTIONS entries) and `shorts`; false when they do not fit. */
static bool full_tables(const struct cli_command *cmd, struct option *all, char *shorts,
                        size_t shorts_len)
{
    size_t n = sizeof(global_options) / sizeof(global_options[0]);
    memcpy(all, global_options, sizeof(global_options));
    for (const struct option *o = cmd->options; o->name; o++) {
        if (n + 1 >= CLI_MAX_OPTIONS)
            return false;
        all[n++] = *o;
    }
    all[n] = (struct option){NULL, 0, NULL, 0};
    int len = snprintf(shorts, shorts_len, "%sh%s", CLI_GLOBAL_SHORT, cmd->short_options);
    return len > 0 && (size_t)len < shorts_len;
}

int cli_parse_options(struct cli_global *g, const struct cli_command *cmd, void *ctx, int argc,
                      char **argv)
{
    struct option options[CLI_MAX_OPTIONS];
    char shorts[2 * CLI_MAX_OPTIONS];
    if (!full_tables(cmd, options, shorts, sizeof(shorts))) {
        fprintf(stderr, "llmq %s: internal error: more than %d options\n", cmd->name,
                CLI_MAX_OPTIONS);
        return CLI_EXIT_USAGE;
    }
    int opt;
    optind = 0;
    while ((opt = getopt_long(argc, argv, shorts, options, NULL)) != -1) {
        if (opt == 'h') {
            cmd->usage(stdout);
            return CLI_EXIT_OK;
        }
        int rc = cli_global_option(g, opt, optarg);
        if (rc == 1)
            rc = opt == '?' ? -1 : cmd->option(ctx, opt, optarg);
        if (rc != 0) {
            fprintf(stderr, "Try 'llmq %s --help'.\n", cmd->name);
            return CLI_EXIT_USAGE;
        }
    }
    return -1;
}

int cli_usage_error(const char *command, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "llmq %s: ", command);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'llmq %s --help'.\n", command);
    return CLI_EXIT_USAGE;
}

/* Set *topic to arg when it is a topic name. */
static int topic_option(const char **topic, const char *flag, const char *arg)
{
    if (!kafka_topic_valid(arg, strlen(arg))) {
        fprintf(stderr,
                "llmq: %s %s: not a Kafka topic name (1..%d of a-z A-Z 0-9 . _ -, "
                "not . or ..)\n",
                flag, arg, KAFKA_TOPIC_MAX);
        return -1;
    }
    *topic = arg;
    return 0;
}

int cli_global_option(struct cli_global *g, int opt, const char *arg)
{
    switch (opt) {
    case 'b':
        g->brokers = arg;
        return 0;
    case 'X':
        if (!strchr(arg, '=') || arg[0] == '=') {
            fprintf(stderr, "llmq: -X %s: expected NAME=VALUE\n", arg);
            return -1;
        }
        if (g->n_props == CLI_MAX_PROPS) {
            fprintf(stderr, "llmq: more than %d -X properties\n", CLI_MAX_PROPS);
            return -1;
        }
        g->props[g->n_props++] = arg;
        return 0;
    case CLI_OPT_JOBS_TOPIC:
        return topic_option(&g->jobs_topic, "--jobs-topic", arg);
    case CLI_OPT_REPLY_TOPIC:
        return topic_option(&g->reply_topic, "--reply-topic", arg);
    case CLI_OPT_CONTROL_TOPIC:
        return topic_option(&g->control_topic, "--control-topic", arg);
    case CLI_OPT_CONNECT_TIMEOUT:
        if (!cli_parse_seconds(arg, &g->connect_timeout_s) || g->connect_timeout_s > 3600) {
            fprintf(stderr, "llmq: --connect-timeout %s: must be seconds, > 0 and <= 3600\n", arg);
            return -1;
        }
        return 0;
    case 'v':
        g->verbose = true;
        return 0;
    default:
        return 1;
    }
}

bool cli_stop_requested(struct cli_global *g)
{
    struct timespec zero = {0, 0};
    int sig = sigtimedwait(&g->stop_signals, NULL, &zero);
    if (sig > 0 && g->stopped_by == 0)
        g->stopped_by = sig;
    return g->stopped_by != 0;
}

int cli_stop_exit(const struct cli_global *g)
{
    return g->stopped_by == SIGTERM ? CLI_EXIT_TERMINATED : CLI_EXIT_INTERRUPTED;
}

int cli_kafka_failed(const struct cli_global *g, const char *command, const char *err)
{
    if (g->stopped_by)
        return cli_stop_exit(g);
    fprintf(stderr, "llmq %s: %s\n", command, err);
    return CLI_EXIT_KAFKA;
}

int cli_connect_timeout_ms(const struct cli_global *g)
{
    return (int)(g->connect_timeout_s * 1000);
}

char *cli_read_file(const char *path, size_t *len, char *err, size_t err_len)
{
    bool is_stdin = strcmp(path, "-") == 0;
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (!f) {
        snprintf(err, err_len, "%s: %s", path, strerror(errno));
        return NULL;
    }
    struct buf b = {0};
    while (buf_reserve(&b, READ_CHUNK) == 0) {
        size_t got = fread(b.data + b.len, 1, b.cap - b.len - 1, f);
        b.len += got;
        b.data[b.len] = '\0';
        if (got == 0)
            break;
    }
    bool failed = ferror(f);
    if (!is_stdin)
        fclose(f);
    if (b.failed || failed) {
        snprintf(err, err_len, "%s: %s", is_stdin ? "standard input" : path,
                 b.failed ? "out of memory" : "read error");
        buf_free(&b);
        return NULL;
    }
    *len = b.len;
    return b.data;
}

bool cli_parse_int(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end != '\0')
        return false;
    *out = v;
    return true;
}

bool cli_parse_real(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end != '\0' || !isfinite(v))
        return false;
    *out = v;
    return true;
}

bool cli_parse_seconds(const char *s, double *out)
{
    return cli_parse_real(s, out) && *out > 0 && *out <= CLI_MAX_TIMEOUT_S;
}
