/* supervisor.h — the llama-server child: spawn, GPU pinning, health wait,
 * stderr folded into the log, restart with backoff, no orphans.
 *
 * The child gets loopback, --port 0 (the port is read from its
 * "listening on http://HOST:PORT" stderr line), a random --api-key,
 * --parallel = slots, the GPU pinned through HIP_VISIBLE_DEVICES,
 * ROCR_VISIBLE_DEVICES and CUDA_VISIBLE_DEVICES, and every inherited
 * LLAMA_ARG_* variable removed. PR_SET_PDEATHSIG kills it if the worker dies,
 * SIGKILL included. Its exit is seen through a pidfd on the loop.
 *
 * With llama.url set there is no child: the supervisor only probes /health
 * of that server and reports it ready or down. */
#ifndef LLMQ_SUPERVISOR_H
#define LLMQ_SUPERVISOR_H

#include "config.h"
#include "log.h"

struct loop;
struct http;
struct supervisor;

enum supervisor_state {
    SUP_STARTING, /* spawned (or probing an external url), /health not 200 yet */
    SUP_READY,    /* /health answered 200 */
    SUP_BACKOFF,  /* died or failed to start; waiting to try again */
    SUP_STOPPED,  /* supervisor_stop() was called */
};

struct supervisor_events {
    /* llama-server answers /health with 200: jobs may start. */
    void (*on_ready)(void *ctx);
    /* It was ready and is not any more (exited, killed, stopped answering):
     * every request in flight is lost and must be rerun after the next
     * on_ready. */
    void (*on_down)(void *ctx, const char *reason);
};

struct supervisor *supervisor_new(struct loop *loop, struct http *http,
                                  const struct llmq_config *cfg, const struct logger *log,
                                  const struct supervisor_events *events, void *ctx);

/* Spawn the child (or start probing the external url). Returns -1 only if
 * nothing could be tried at all (e.g. fork failed); a child that exits is
 * handled by restarting with backoff, never by an error here. */
int supervisor_start(struct supervisor *sup);

/* Stop for good: SIGTERM, wait up to `grace_ms`, then SIGKILL; reaps the
 * child. Blocks (used at shutdown only). */
void supervisor_stop(struct supervisor *sup, int grace_ms);

void supervisor_free(struct supervisor *sup);

enum supervisor_state supervisor_state(const struct supervisor *sup);
/* "http://127.0.0.1:PORT" once known, else NULL. */
const char *supervisor_base_url(const struct supervisor *sup);
/* The API key requests must carry (NULL for an external url without one). */
const char *supervisor_api_key(const struct supervisor *sup);
/* Why it is not ready, e.g. "exited with status 1: failed to load model". */
const char *supervisor_last_error(const struct supervisor *sup);
unsigned supervisor_restarts(const struct supervisor *sup);

#endif
