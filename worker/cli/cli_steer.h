/* cli_steer.h — the job fields added to v1 after its first release that
 * the CLI sets from flags (spec.md: `logprobs`, `lora`, `chunk_ms`), checked
 * by the wire library's job decoder, and the priority lane a job is sent to.
 *
 * A lane is a jobs topic (spec.md, "Priority lanes"): --lane TOPIC sends
 * the job there instead of --jobs-topic; the job message is the same in
 * every lane. The steering flags of `submit` and `batch`:
 *   --lane TOPIC        the jobs topic of a lane, e.g. llmq.jobs.urgent
 *   --logprobs N        logprobs = N (0..20)
 *   --lora NAME[:SCALE] one lora entry {name, scale}; repeatable (<= 16)
 *   --chunk-ms N        chunk_ms = N (0..60000)
 * For batch they are defaults: a line's own field wins. */
#ifndef LLMQ_CLI_STEER_H
#define LLMQ_CLI_STEER_H

#include <jansson.h>

#include "cli_common.h"

/* getopt_long entries of the steering flags, for a command's table. */
#define CLI_STEER_OPTIONS                                                                          \
    {"lane", required_argument, NULL, CLI_OPT_LANE},                                               \
        {"logprobs", required_argument, NULL, CLI_OPT_LOGPROBS},                                   \
        {"lora", required_argument, NULL, CLI_OPT_LORA},                                           \
    {                                                                                              \
        "chunk-ms", required_argument, NULL, CLI_OPT_CHUNK_MS                                      \
    }

/* Their help lines. */
extern const char cli_steer_help[];

struct cli_steer {
    const char *lane; /* NULL: the global jobs topic */
    json_t *fields;   /* the fields the flags set (an object), or NULL */
};

/* Apply one steering flag. Returns 0, 1 when `opt` is not one, -1 when its
 * argument is bad or makes a field the wire's job_decode() refuses (said
 * on stderr, prefixed by `command`, in the decoder's words). */
int cli_steer_option(struct cli_steer *s, const char *command, int opt, const char *arg);

/* Set in `job` each field the flags gave that it does not have. Returns 0,
 * or -1 when out of memory. */
int cli_steer_apply(const struct cli_steer *s, json_t *job);

/* The topic to send jobs to: the lane, else g->jobs_topic. */
const char *cli_steer_topic(const struct cli_steer *s, const struct cli_global *g);

void cli_steer_free(struct cli_steer *s);

#endif
