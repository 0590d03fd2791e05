/* http.h — asynchronous HTTP requests on the event loop (libcurl multi).
 *
 * curl's socket callback maps onto loop_watch, its timer callback onto a loop
 * timer, so transfers progress without blocking the loop. A request streams
 * its body to on_data as it arrives (for SSE) and ends with exactly one
 * on_done call — unless cancelled with http_cancel(), which closes the
 * connection (llama-server stops generating within about a second) and calls
 * nothing afterwards. */
#ifndef LLMQ_HTTP_H
#define LLMQ_HTTP_H

#include <stddef.h>

struct loop;
struct http;
struct http_req;

struct http_result {
    int curl_code;     /* CURLE_OK or the transfer error */
    long status;       /* HTTP status, 0 if no response */
    const char *error; /* curl's error text when curl_code != 0 */
};

struct http_callbacks {
    /* Status line and headers are in; called once before the first on_data. */
    void (*on_status)(void *ctx, long status);
    /* A piece of the body. Return 0 to go on, non-zero to abort the
     * transfer (on_done then reports the abort). */
    int (*on_data)(void *ctx, const char *buf, size_t len);
    /* The transfer ended (completed, failed or aborted). The request is freed
     * right after this returns. */
    void (*on_done)(void *ctx, const struct http_result *result);
};

struct http_req_opts {
    const char *method; /* "GET" or "POST" */
    const char *url;
    const char *body; /* POST body (copied), NULL for none */
    size_t body_len;
    const char *bearer;      /* Authorization: Bearer <bearer>, NULL for none */
    long connect_timeout_ms; /* 0: curl's default */
    long timeout_ms;         /* whole transfer, 0: none */
};

/* A client on the loop that keeps up to max_connections idle connections
 * open for the next requests (at least 1); NULL if curl cannot start. */
struct http *http_new(struct loop *loop, long max_connections);
/* Cancels every live request (no callbacks) and frees the client. */
void http_free(struct http *http);

/* Start a request. Returns NULL if it could not be started (nothing will be
 * called then). Callbacks run on the loop thread, never inside http_start. */
struct http_req *http_start(struct http *http, const struct http_req_opts *opts,
                            const struct http_callbacks *cb, void *ctx);

/* Abort a live request: no callback runs for it afterwards. */
void http_cancel(struct http *http, struct http_req *req);

/* Live requests (for tests and drain). */
size_t http_live(const struct http *http);

#endif
