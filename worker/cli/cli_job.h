/* cli_job.h — turn a job written as a JSON object (a batch input line, or
 * what `llmq submit` built from its flags) into the v1 msgpack message, and
 * check it with the worker's own decoder (job_decode) before it is sent.
 *
 * The object is completed in place: "v" is set to 1 when absent, "id" to
 * the given default when absent, "reply_to" to the reply topic the CLI
 * follows when absent. A "reply_to" naming another topic is refused: the
 * CLI would never see the replies. */
#ifndef LLMQ_CLI_JOB_H
#define LLMQ_CLI_JOB_H

#include <jansson.h>
#include <msgpack.h>

#include "codes.h"
#include "job.h"

struct cli_job {
    char *id;             /* the job's id, as sent */
    msgpack_sbuffer wire; /* the encoded job */
};

/* Build and check. Returns LLMQ_OK (then cli_job_free() `out` when done),
 * or the code of the first problem, with its message in `why` (the same
 * verdict a worker would give, or `reply_to` as above). */
enum llmq_code cli_job_build(json_t *obj, const char *default_id, const char *reply_topic,
                             struct cli_job *out, struct job_verdict *why);

void cli_job_free(struct cli_job *job);

#endif
