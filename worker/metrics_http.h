/* metrics_http.h — the HTTP endpoint behind metrics.h: serves the pages
 * metrics.h documents (/metrics, /healthz, /readyz) on the worker's event
 * loop. It knows nothing of the metrics themselves: /metrics and /readyz
 * ask the callbacks in struct metrics_pages; /healthz is the age of its own
 * 1 s tick timer (stalled past stall_ms). Private to the metrics module. */
#ifndef LLMQ_METRICS_HTTP_H
#define LLMQ_METRICS_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"

struct loop;
struct metrics_http;

struct metrics_pages {
    /* The /metrics page, malloc'd (*len bytes), or NULL when out of memory. */
    char *(*render)(void *ctx, size_t *len);
    /* At each /readyz: true if ready, else false with *reason set. */
    bool (*ready)(void *ctx, const char **reason);
    void *ctx;
};

/* Serve on `listen` ("host:port" or "[v6]:port"; port 0: any free port).
 * stall_ms <= 0 means 10000. Returns NULL with "metrics.listen ...:
 * reason" in err if the address is bad or cannot be bound. */
struct metrics_http *metrics_http_start(struct loop *loop, const char *listen,
                                        const struct metrics_pages *pages, int64_t stall_ms,
                                        const struct logger *log, char *err, size_t err_len);

/* Stop serving (open connections are closed) and free; NULL is fine. */
void metrics_http_stop(struct metrics_http *h);

/* The bound TCP port, or 0 for NULL. */
int metrics_http_port(const struct metrics_http *h);

#endif
