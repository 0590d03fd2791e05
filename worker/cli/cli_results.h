/* cli_results.h — the result lines of `llmq batch`, and reading them back
 * for --retry-failed.
 *
 * One JSON object per job, with the input line it came from:
 *   {"line", "id", "status": "done", "text", "finish", "usage", "run", "worker", "meta"?}
 *   {"line", "id", "status": "error", "code", "message", "retryable", "run", "worker", "meta"?}
 *   {"line", "id", "status": "timeout", "message"}
 *   {"line", "id" (null when unreadable), "status": "invalid", "code", "message"}
 *   {"line", "id", "status": "cancelled", "message"}  (sent, then cancelled by an
 *                                                      interrupted batch)
 * A job the broker never acknowledged is an error with code "undelivered",
 * retryable. A result is worth retrying when its status is timeout or
 * invalid (the line is checked again, so a fixed line is sent), cancelled
 * (sent again under a new id: workers remember cancelled ids), or error
 * with retryable true or code expired. */
#ifndef LLMQ_CLI_RESULTS_H
#define LLMQ_CLI_RESULTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "job.h"
#include "reply_decode.h"

/* New result objects (NULL when out of memory). */
json_t *cli_result_reply(long line, const struct reply_msg *terminal); /* done or error */
json_t *cli_result_timeout(long line, const char *id, double timeout_s);
json_t *cli_result_invalid(long line, const char *id, const struct job_verdict *why);
json_t *cli_result_undelivered(long line, const char *id, const char *why);
json_t *cli_result_cancelled(long line, const char *id, const char *why);

bool cli_result_retryable(const json_t *result);

/* The results of an earlier batch, by input line. */
struct cli_previous {
    long line;
    char *id;       /* NULL when the result has none */
    bool retry;     /* cli_result_retryable() */
    bool cancelled; /* its status is cancelled: its id must not be sent again */
    json_t *result;
};

struct cli_previous_set {
    struct cli_previous *items; /* sorted by line, each line once */
    size_t n;
};

/* Read a results file. Returns 0, or -1 with "PATH:LINE: problem" in err. */
int cli_previous_load(const char *path, struct cli_previous_set *set, char *err, size_t err_len);

/* The result of input line `line`, or NULL when it has none. */
const struct cli_previous *cli_previous_find(const struct cli_previous_set *set, long line);

void cli_previous_free(struct cli_previous_set *set);

#endif
