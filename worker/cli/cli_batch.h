/* cli_batch.h — `llmq batch`: submit the jobs of a JSON-lines file with a
 * bounded number outstanding, and write one result line per job, in the
 * order they finish. --retry-failed PREVIOUS sends again only the lines
 * whose previous result failed in a way worth retrying. Exit 0 when every
 * job ended done, 1 otherwise, 2 usage, 4 Kafka failure, 130 / 143 stopped
 * by SIGINT / SIGTERM (the jobs in flight are cancelled first). */
#ifndef LLMQ_CLI_BATCH_H
#define LLMQ_CLI_BATCH_H

#include "cli_common.h"

/* argv[0] is "batch". */
int cli_batch(struct cli_global *g, int argc, char **argv);

#endif
