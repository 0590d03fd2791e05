/* llama_child.h — how the supervisor starts llama-server: the command line
 * (model, 127.0.0.1 on a free port, slots, context, GPU layers, then
 * llama.extra_args), the environment (LLAMA_ARG_* dropped, and LLMQ_*, which
 * may hold Kafka secrets (LLMQ_KAFKA_PROP_*); the API key as LLAMA_API_KEY,
 * which the pinned llama-server reads like --api-key, so the key is never on
 * a command line other users can read in /proc; the GPU pinned to llama.gpu
 * as gpu.h resolves it), and fork +
 * exec with stdout and stderr on one pipe. The child dies with the worker
 * (PR_SET_PDEATHSIG). */
#ifndef LLMQ_LLAMA_CHILD_H
#define LLMQ_LLAMA_CHILD_H

#include <stddef.h>
#include <sys/types.h>

#include "config.h"
#include "gpu.h"
#include "log.h"

#define LLAMA_CHILD_KEY_ENV "LLAMA_API_KEY"

/* A command to run; its strings point into cfg and itself. */
struct llama_child_cmd {
    char **argv; /* NULL-terminated */
    char **envp; /* NULL-terminated; the rest points into environ */
    char slots[16], context[16], layers[16];
    char gpu_env[GPU_CHILD_ENV][GPU_CHILD_ENV_LEN];
    char api_key_env[sizeof(LLAMA_CHILD_KEY_ENV) + 128];
};

/* Build the command for cfg; each LLAMA_ARG_* variable left out is logged
 * at info. Returns 0, or -1 with the reason in err (out of memory, or
 * llama.gpu does not fit the GPU lists the worker inherited; nothing to
 * free then). */
int llama_child_cmd_init(struct llama_child_cmd *c, const struct llmq_config *cfg,
                         const char *api_key, const struct logger *log, char *err, size_t err_len);

/* Free the command's arrays. */
void llama_child_cmd_free(struct llama_child_cmd *c);

/* Fork and exec the command. Returns the pid, with *out_fd the read end
 * (non-blocking, close-on-exec) of the child's stdout and stderr; or -1
 * with errno set and *what naming the call that failed ("pipe", "fork"). */
pid_t llama_child_spawn(const struct llama_child_cmd *c, int *out_fd, const char **what);

/* The command line for the log (it holds no key; the logger masks secret
 * flags of llama.extra_args). */
void llama_child_describe(const struct llama_child_cmd *c, char *out, size_t cap);

#endif
