/* cli_cancel.h — `llmq cancel`: ask every worker to cancel jobs, by
 * sending v1 cancel messages (spec.md, "Cancellation") to the control
 * topic; and the encoding of one cancel, which `llmq batch` also uses
 * when it is interrupted. */
#ifndef LLMQ_CLI_CANCEL_H
#define LLMQ_CLI_CANCEL_H

#include <msgpack.h>
#include <stddef.h>

#include "cli_common.h"
#include "cli_kafka.h"

/* argv[0] is "cancel". */
int cli_cancel(struct cli_global *g, int argc, char **argv);

/* The msgpack bytes of a cancel of job `id` (only its run `run`, when not
 * NULL; `reason` for people, when not NULL), fields in the order v, type,
 * id, run, reason, into `out` (initialised here; the caller destroys it
 * on success). Returns 0, or -1 with the field at fault in err: id must
 * be 1..128 bytes, run non-empty, all UTF-8 text without NUL. */
int cli_cancel_encode(const char *id, const char *run, const char *reason, msgpack_sbuffer *out,
                      char *err, size_t err_len);

/* Encode and queue a cancel on `topic`, keyed by id, with the headers
 * llmq-type = cancel and llmq-id = id. Returns 0, or -1 with why in err. */
int cli_cancel_send(struct cli_producer *p, const char *topic, const char *id, const char *run,
                    const char *reason, void *msg_opaque, char *err, size_t err_len);

#endif
