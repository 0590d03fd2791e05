/* cli_submit.h — `llmq submit`: send one job, stream its output to stdout,
 * and exit with the outcome of its terminal reply (0 done, 1 error reply,
 * 2 usage or invalid job, 3 timeout, 4 Kafka failure, 130 / 143 stopped
 * by SIGINT / SIGTERM). */
#ifndef LLMQ_CLI_SUBMIT_H
#define LLMQ_CLI_SUBMIT_H

#include "cli_common.h"

/* argv[0] is "submit". */
int cli_submit(struct cli_global *g, int argc, char **argv);

#endif
