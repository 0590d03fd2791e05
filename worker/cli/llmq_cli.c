/* llmq_cli.c — `llmq`, the command-line companion of llmq-worker: submit one
 * job and stream its output, tail the reply topic, run a file of jobs, or
 * cancel jobs.
 * This file reads the global options and hands over to the subcommand. */
#include <stdio.h>
#include <string.h>

#include "cli_batch.h"
#include "cli_cancel.h"
#include "cli_common.h"
#include "cli_submit.h"
#include "cli_tail.h"

static const struct {
    const char *name;
    int (*run)(struct cli_global *g, int argc, char **argv);
    const char *summary;
} commands[] = {
    {"submit", cli_submit, "send one job and print its output as it is generated"},
    {"tail", cli_tail, "print the replies of the reply topic as they arrive"},
    {"batch", cli_batch, "submit a file of jobs, write one result line per job"},
    {"cancel", cli_cancel, "ask the workers to cancel jobs, by id"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: llmq [global options] COMMAND [options] [arguments]\n"
                 "\n"
                 "Talk to llmq workers through Kafka.\n"
                 "\n"
                 "Commands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fprintf(out,
            "Run 'llmq COMMAND --help' for its options.\n"
            "\n"
            "%s"
            "  -h, --help             this text\n"
            "  -V, --version          the version\n"
            "\n"
            "Exit: 0 success, 1 a job failed, 2 usage, 3 timeout, 4 Kafka failure (no\n"
            "broker answered within --connect-timeout, 10 s by default), 130 stopped by\n"
            "SIGINT (Ctrl-C), 143 stopped by SIGTERM.\n",
            cli_global_help);
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        CLI_GLOBAL_OPTIONS,
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    struct cli_global g;
    cli_global_init(&g);
    int opt;
    /* "+": stop at the command; its own options follow it. */
    while ((opt = getopt_long(argc, argv, "+" CLI_GLOBAL_SHORT "hV", options, NULL)) != -1) {
        if (opt == 'h') {
            usage(stdout);
            return CLI_EXIT_OK;
        }
        if (opt == 'V') {
            printf("llmq %s\n", LLMQ_VERSION);
            return CLI_EXIT_OK;
        }
        if (cli_global_option(&g, opt, optarg) != 0) {
            usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (optind == argc) {
        fprintf(stderr, "llmq: a COMMAND is missing\n");
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(argv[optind], commands[i].name) == 0)
            return commands[i].run(&g, argc - optind, argv + optind);
    fprintf(stderr, "llmq: unknown command %s\n", argv[optind]);
    usage(stderr);
    return CLI_EXIT_USAGE;
}
