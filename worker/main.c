/* main.c — llmq-worker: flags, configuration, signals, exit codes.
 *
 * Exit codes (documented in README.md):
 *   0  clean shutdown (SIGTERM/SIGINT drained), or --check-config passed
 *   1  runtime failure (a client could not be created, the loop failed)
 *   2  usage error (unknown flag, missing -c)
 *   3  configuration error (the message names file:line and key), or the
 *      Kafka brokers refused the worker's SASL credentials at start */
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "loop.h"
#include "secrets.h"
#include "worker.h"

extern char **environ;

enum exit_code { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2, EXIT_CONFIG = 3 };

struct signals {
    int fd;
    struct worker *worker;
    struct loop *loop;
    const struct logger *log;
    unsigned received;
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: llmq-worker -c FILE [--check-config]\n"
            "       llmq-worker --help | --version\n"
            "\n"
            "Consume generation jobs from Kafka, run them through a local llama-server,\n"
            "and publish streamed replies. See deploy/worker.example.cfg for every key.\n"
            "\n"
            "  -c, --config FILE   the libconfig file to load (required)\n"
            "      --check-config  validate the file (and environment overrides), print the\n"
            "                      effective configuration with secrets masked, and exit\n"
            "  -h, --help          this text\n"
            "  -V, --version       the version\n"
            "\n"
            "Environment variables override common keys (LLMQ_KAFKA_BROKERS, ...; see README).\n"
            "Exit codes: 0 clean shutdown, 1 runtime failure, 2 usage error, 3 config error\n"
            "(also: the Kafka brokers refused the SASL credentials at start).\n");
}

static void signal_readable(struct loop *loop, int fd, unsigned events, void *ctx)
{
    struct signals *s = ctx;
    struct signalfd_siginfo info;
    (void)events;
    while (read(fd, &info, sizeof(info)) == (ssize_t)sizeof(info)) {
        s->received++;
        if (s->received == 1) {
            log_info(s->log, "main", "%s: draining (send again to stop at once)",
                     strsignal((int)info.ssi_signo));
            worker_drain(s->worker);
        } else {
            log_warn(s->log, "main", "%s again: stopping without draining",
                     strsignal((int)info.ssi_signo));
            loop_stop(loop);
        }
    }
}

struct flags {
    const char *config_path;
    bool check_only;
};

/* Read the command line into `f`. Returns -1 to go on, or the exit code
 * (--help, --version, a usage error). */
static int parse_flags(int argc, char **argv, struct flags *f)
{
    static const struct option options[] = {
        {"config", required_argument, NULL, 'c'},
        {"check-config", no_argument, NULL, 'k'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    *f = (struct flags){0};
    int opt;
    while ((opt = getopt_long(argc, argv, "c:hV", options, NULL)) != -1) {
        switch (opt) {
        case 'c':
            f->config_path = optarg;
            break;
        case 'k':
            f->check_only = true;
            break;
        case 'h':
            usage(stdout);
            return EXIT_OK;
        case 'V':
            printf("llmq-worker %s\n", LLMQ_VERSION);
            return EXIT_OK;
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (!f->config_path || optind != argc) {
        fprintf(stderr, "llmq-worker: %s\n",
                !f->config_path ? "-c FILE is required" : "unexpected argument");
        usage(stderr);
        return EXIT_USAGE;
    }
    return -1;
}

/* Block SIGTERM and SIGINT before librdkafka starts threads, so that they
 * all inherit the mask and the signals arrive only through the returned
 * signalfd (-1 on failure). */
static int signals_open(void)
{
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    return signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
}

/* How often freed heap memory goes back to the system. */
enum { TRIM_EVERY_MS = 5000 };

/* A burst (a large fetched batch of jobs, replies queued while the broker
 * pauses) grows the heaps of every thread that allocated in it, and glibc
 * gives a heap back only from its top: RSS stayed up 6-9 MiB for seconds.
 * malloc_trim() also returns the free pages in the middle of every arena;
 * it walks the free lists, well under a millisecond at this size. */
static void trim_heaps(struct loop *loop, void *ctx)
{
    malloc_trim(0);
    loop_timer_after(loop, TRIM_EVERY_MS, trim_heaps, ctx);
}

/* Run the worker until it drained or failed; the exit code. */
static int run(const struct llmq_config *cfg, const struct logger *log)
{
    char err[512];
    int rc = EXIT_RUNTIME;
    struct loop *loop = loop_new();
    struct worker *worker = NULL;
    struct signals sig = {.fd = signals_open(), .log = log};
    if (!loop || sig.fd < 0) {
        log_error(log, "main", "cannot create the event loop");
        goto out;
    }
    worker = worker_new(loop, cfg, log, err, sizeof(err));
    if (!worker) {
        log_error(log, "main", "%s", err);
        goto out;
    }
    sig.worker = worker;
    sig.loop = loop;
    loop_watch(loop, sig.fd, LOOP_READ, signal_readable, &sig);
    loop_timer_after(loop, TRIM_EVERY_MS, trim_heaps, NULL);
    log_info(log, "main", "llmq-worker %s starting as %s (brokers %s, group %s, %d slot(s))",
             LLMQ_VERSION, cfg->worker_id, cfg->kafka.brokers, cfg->kafka.group_id,
             cfg->llama.slots);
    if (worker_start(worker) != 0) {
        log_error(log, "main", "cannot start llama-server");
        goto out;
    }
    rc = loop_run(loop) != 0                  ? EXIT_RUNTIME
         : worker_credentials_refused(worker) ? EXIT_CONFIG
                                              : worker_exit_code(worker);
out:
    if (sig.fd >= 0) {
        if (loop)
            loop_unwatch(loop, sig.fd);
        close(sig.fd);
    }
    worker_free(worker);
    loop_free(loop);
    return rc;
}

/* glibc raises its mmap threshold each time a large block is freed, so
 * librdkafka's fetch and request buffers (up to a few hundred KiB) end up
 * in its threads' arenas, which grow and rarely shrink: RSS at the ceiling
 * crept from 20 to 27-30 MiB. A fixed threshold keeps such buffers mmap'd
 * and returned on free (FINDINGS.md, "The worker's cost per job, cut"). */
enum { MMAP_THRESHOLD_BYTES = 128 * 1024 };

int main(int argc, char **argv)
{
    mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES);
    struct flags flags;
    int rc = parse_flags(argc, argv, &flags);
    if (rc >= 0)
        return rc;
    struct llmq_config cfg;
    char err[512];
    if (config_load(&cfg, flags.config_path, environ, err, sizeof(err)) != 0) {
        fprintf(stderr, "llmq-worker: %s\n", err);
        config_free(&cfg);
        return EXIT_CONFIG;
    }
    if (flags.check_only) {
        config_dump(&cfg, stdout);
        fprintf(stderr, "llmq-worker: %s: configuration OK\n", flags.config_path);
        config_free(&cfg);
        return EXIT_OK;
    }
    struct logger log;
    struct secrets secrets;
    logger_init(&log, cfg.logging.level, cfg.logging.json, STDERR_FILENO);
    if (secrets_collect(&secrets, &cfg) != 0) {
        fprintf(stderr, "llmq-worker: out of memory\n");
        config_free(&cfg);
        return EXIT_RUNTIME;
    }
    logger_mask(&log, &secrets);
    rc = run(&cfg, &log);
    log_info(&log, "main", "exit %d", rc);
    secrets_free(&secrets);
    config_free(&cfg);
    return rc;
}
