/* cli_tail.h — `llmq tail`: print the replies of the reply topic as they
 * arrive, one line each (or one JSON object each with --json), until
 * --count lines (exit 0) or SIGINT / SIGTERM (130 / 143). Exit 2 on usage
 * errors, 4 when the topic cannot be read. */
#ifndef LLMQ_CLI_TAIL_H
#define LLMQ_CLI_TAIL_H

#include <stddef.h>

#include "cli_common.h"
#include "reply_decode.h"

/* argv[0] is "tail". */
int cli_tail(struct cli_global *g, int argc, char **argv);

/* The one-line form of a reply, e.g. `job-1 run=ab12 chunk #3 "text"`:
 * texts are quoted JSON-style and cut after `max_text` bytes (marked with
 * "…"). Returns the length, as snprintf does. */
int cli_tail_format(const struct reply_msg *r, size_t max_text, char *out, size_t out_len);

#endif
