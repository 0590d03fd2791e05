/* http.c — asynchronous HTTP on the event loop: one libcurl multi handle (so
 * connections are reused) whose sockets are loop watches and whose timeout is
 * one loop timer. Bodies stream to on_data straight from curl's buffer.
 *
 * curl forbids calling the multi API from inside its callbacks, and user
 * callbacks (on_status, on_data) run inside curl_multi_socket_action. So a
 * request started or cancelled from there is only marked, and handled once
 * curl returns ("settle"); on_done runs after curl returns too. */
#include "http.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "loop.h"

enum req_state {
    REQ_QUEUED,    /* started from inside curl: added to the multi on settle */
    REQ_RUNNING,   /* in the multi handle */
    REQ_CANCELLED, /* cancelled from inside curl: freed on settle, calls nothing */
    REQ_FINISHING, /* finish() is calling on_status */
    REQ_DONE,      /* finish() is calling on_done */
};

struct http_req {
    CURL *easy;
    struct curl_slist *headers;
    struct http_callbacks cb;
    void *ctx;
    enum req_state state;
    bool status_sent;
    struct http_req *prev, *next;   /* http->live (QUEUED and RUNNING) */
    struct http_req *next_deferred; /* http->deferred (QUEUED and CANCELLED) */
    char errbuf[CURL_ERROR_SIZE];
};

/* Easy handles kept for the next request: curl_easy_reset is much cheaper
 * than a fresh curl_easy_init (tests/bench's ceiling runs one per job). */
enum { SPARE_HANDLES_MAX = 32 };

struct http {
    struct loop *loop;
    CURLM *multi;
    CURL *spare[SPARE_HANDLES_MAX];
    size_t n_spare;
    loop_timer_id timer; /* curl's requested timeout */
    struct http_req *live;
    size_t live_count;
    struct http_req *deferred; /* work for settle() */
    bool in_curl;              /* inside curl_multi_socket_action */
};

/* ---- request bookkeeping ---- */

static void live_push(struct http *http, struct http_req *req)
{
    req->prev = NULL;
    req->next = http->live;
    if (http->live) {
        http->live->prev = req;
    }
    http->live = req;
    http->live_count++;
}

static void live_remove(struct http *http, struct http_req *req)
{
    if (req->prev) {
        req->prev->next = req->next;
    } else {
        http->live = req->next;
    }
    if (req->next) {
        req->next->prev = req->prev;
    }
    req->prev = req->next = NULL;
    http->live_count--;
}

static void defer(struct http *http, struct http_req *req)
{
    req->next_deferred = http->deferred;
    http->deferred = req;
}

/* Only outside curl callbacks. Removing a running transfer closes its
 * connection, which is what stops llama-server generating. */
static void req_destroy(struct http *http, struct http_req *req)
{
    if (req->easy) {
        curl_multi_remove_handle(http->multi, req->easy); /* no-op if never added */
        if (http->n_spare < SPARE_HANDLES_MAX) {
            curl_easy_reset(req->easy);
            http->spare[http->n_spare++] = req->easy;
        } else {
            curl_easy_cleanup(req->easy);
        }
    }
    curl_slist_free_all(req->headers);
    free(req);
}

/* The transfer ended: report it (unless cancelled meanwhile) and free it. */
static void finish(struct http *http, struct http_req *req, CURLcode code)
{
    struct http_result result = {.curl_code = (int)code};
    curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &result.status);
    if (code != CURLE_OK) {
        result.error = req->errbuf[0] ? req->errbuf : curl_easy_strerror(code);
    }
    live_remove(http, req);
    req->state = REQ_FINISHING;
    if (!req->status_sent && result.status > 0 && req->cb.on_status) {
        req->status_sent = true; /* a response without a body still has a status */
        req->cb.on_status(req->ctx, result.status);
    }
    if (req->state == REQ_FINISHING) {
        req->state = REQ_DONE;
        if (req->cb.on_done) {
            req->cb.on_done(req->ctx, &result);
        }
    }
    req_destroy(http, req);
}

/* ---- driving curl ---- */

static void settle(struct http *http)
{
    struct http_req *req;
    while ((req = http->deferred)) {
        http->deferred = req->next_deferred;
        if (req->state == REQ_CANCELLED) {
            req_destroy(http, req);
        } else if (curl_multi_add_handle(http->multi, req->easy) == CURLM_OK) {
            req->state = REQ_RUNNING;
        } else {
            finish(http, req, CURLE_FAILED_INIT);
        }
    }
    CURLMsg *msg;
    int queued;
    while ((msg = curl_multi_info_read(http->multi, &queued))) {
        if (msg->msg == CURLMSG_DONE) {
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &req);
            finish(http, req, msg->data.result);
        }
    }
}

static void drive(struct http *http, curl_socket_t fd, int mask)
{
    int running;
    http->in_curl = true;
    /* Transfer failures come back through curl_multi_info_read; a stale
     * socket (CURLM_BAD_SOCKET) needs nothing. */
    (void)curl_multi_socket_action(http->multi, fd, mask, &running);
    http->in_curl = false;
    settle(http);
}

static void on_socket_ready(struct loop *loop, int fd, unsigned events, void *ctx)
{
    (void)loop;
    int mask = 0;
    if (events & LOOP_READ) {
        mask |= CURL_CSELECT_IN;
    }
    if (events & LOOP_WRITE) {
        mask |= CURL_CSELECT_OUT;
    }
    if (events & LOOP_ERROR) {
        mask |= CURL_CSELECT_ERR;
    }
    drive(ctx, fd, mask);
}

static void on_timeout(struct loop *loop, void *ctx)
{
    (void)loop;
    struct http *http = ctx;
    drive(http, CURL_SOCKET_TIMEOUT, 0);
}

static int curl_socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    (void)socketp;
    struct http *http = userp;
    if (what == CURL_POLL_REMOVE) {
        (void)loop_unwatch(http->loop, fd); /* fails only if never watched */
        return 0;
    }
    unsigned events = 0;
    if (what & CURL_POLL_IN) {
        events |= LOOP_READ;
    }
    if (what & CURL_POLL_OUT) {
        events |= LOOP_WRITE;
    }
    return loop_watch(http->loop, fd, events, on_socket_ready, http) == 0 ? 0 : -1;
}

/* timeout_ms -1: no timeout; 0: act as soon as possible, which is the next
 * loop round (never recursively from here). */
static int curl_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    struct http *http = userp;
    loop_timer_cancel(http->loop, http->timer);
    if (timeout_ms < 0) {
        return 0;
    }
    http->timer = loop_timer_after(http->loop, timeout_ms, on_timeout, http);
    return http->timer ? 0 : -1;
}

/* The per-token path: no allocation, the piece goes straight to on_data. */
static size_t curl_write_cb(char *buf, size_t size, size_t nmemb, void *userp)
{
    struct http_req *req = userp;
    size_t len = size * nmemb;
    if (req->state != REQ_RUNNING) {
        return CURL_WRITEFUNC_ERROR;
    }
    if (!req->status_sent) {
        req->status_sent = true;
        if (req->cb.on_status) {
            long status = 0;
            curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &status);
            req->cb.on_status(req->ctx, status);
            if (req->state != REQ_RUNNING) {
                return CURL_WRITEFUNC_ERROR;
            }
        }
    }
    if (req->cb.on_data && req->cb.on_data(req->ctx, buf, len) != 0) {
        return CURL_WRITEFUNC_ERROR;
    }
    return len; /* if on_data cancelled, the next call (or settle) ends it */
}

/* ---- public ---- */

struct http *http_new(struct loop *loop, long max_connections)
{
    if (!loop || max_connections < 1 || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        return NULL;
    }
    struct http *http = calloc(1, sizeof(*http));
    if (!http || !(http->multi = curl_multi_init())) {
        free(http);
        curl_global_cleanup();
        return NULL;
    }
    http->loop = loop;
    CURLM *m = http->multi;
    bool bad = curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, curl_socket_cb) != CURLM_OK;
    bad |= curl_multi_setopt(m, CURLMOPT_SOCKETDATA, http) != CURLM_OK;
    bad |= curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION, curl_timer_cb) != CURLM_OK;
    bad |= curl_multi_setopt(m, CURLMOPT_TIMERDATA, http) != CURLM_OK;
    /* curl's own limit is 4 per transfer running at the time a transfer ends:
     * after a lull it closed the connections of a busy spell, ~1 in 8 jobs
     * paid a new connection at the ceiling (FINDINGS "The worker's cost per
     * job"). A fixed limit keeps them. */
    bad |= curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, max_connections) != CURLM_OK;
    if (bad) {
        http_free(http);
        return NULL;
    }
    return http;
}

void http_free(struct http *http)
{
    if (!http) {
        return;
    }
    /* QUEUED requests are on both lists: free them from the live one. */
    while (http->deferred) {
        struct http_req *req = http->deferred;
        http->deferred = req->next_deferred;
        if (req->state == REQ_CANCELLED) {
            req_destroy(http, req);
        }
    }
    while (http->live) {
        struct http_req *req = http->live;
        /* live_remove advances http->live, so no freed request is seen
         * again (the analyzer does not follow that). */
        live_remove(http, req); // NOLINT(clang-analyzer-unix.Malloc)
        req_destroy(http, req);
    }
    while (http->n_spare > 0)
        curl_easy_cleanup(http->spare[--http->n_spare]);
    curl_multi_cleanup(http->multi);
    loop_timer_cancel(http->loop, http->timer);
    free(http);
    curl_global_cleanup();
}

static int add_header(struct http_req *req, const char *line)
{
    struct curl_slist *list = curl_slist_append(req->headers, line);
    if (!list) {
        return -1;
    }
    req->headers = list;
    return 0;
}

static int add_bearer(struct http_req *req, const char *token)
{
    static const char prefix[] = "Authorization: Bearer ";
    size_t len = strlen(token);
    if (strpbrk(token, "\r\n")) {
        return -1; /* would inject headers */
    }
    char *line = malloc(sizeof(prefix) + len);
    if (!line) {
        return -1;
    }
    memcpy(line, prefix, sizeof(prefix) - 1);
    memcpy(line + sizeof(prefix) - 1, token, len + 1);
    int rc = add_header(req, line);
    free(line);
    return rc;
}

static int configure(struct http_req *req, const struct http_req_opts *opts, bool post)
{
    CURL *e = req->easy;
    bool bad = curl_easy_setopt(e, CURLOPT_URL, opts->url) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_PRIVATE, req) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, req->errbuf) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, curl_write_cb) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_WRITEDATA, req) != CURLE_OK;
    if (opts->connect_timeout_ms > 0) {
        bad |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, opts->connect_timeout_ms) != CURLE_OK;
    }
    if (opts->timeout_ms > 0) {
        bad |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, opts->timeout_ms) != CURLE_OK;
    }
    if (post) {
        /* Size first, so COPYPOSTFIELDS copies exactly body_len bytes. */
        curl_off_t len = opts->body ? (curl_off_t)opts->body_len : 0;
        bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, len) != CURLE_OK;
        bad |=
            curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, opts->body ? opts->body : "") != CURLE_OK;
        bad |= add_header(req, "Content-Type: application/json") != 0;
        bad |= add_header(req, "Expect:") != 0; /* no 100-continue round trip */
    } else {
        bad |= curl_easy_setopt(e, CURLOPT_HTTPGET, 1L) != CURLE_OK;
    }
    if (opts->bearer) {
        bad |= add_bearer(req, opts->bearer) != 0;
    }
    if (req->headers) {
        bad |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, req->headers) != CURLE_OK;
    }
    return bad ? -1 : 0;
}

struct http_req *http_start(struct http *http, const struct http_req_opts *opts,
                            const struct http_callbacks *cb, void *ctx)
{
    if (!http || !opts || !opts->url || !opts->method || !cb) {
        return NULL;
    }
    bool post = strcmp(opts->method, "POST") == 0;
    if (!post && (strcmp(opts->method, "GET") != 0 || opts->body)) {
        return NULL;
    }
    struct http_req *req = calloc(1, sizeof(*req));
    if (!req) {
        return NULL;
    }
    req->cb = *cb;
    req->ctx = ctx;
    req->easy = http->n_spare > 0 ? http->spare[--http->n_spare] : curl_easy_init();
    if (!req->easy || configure(req, opts, post) != 0) {
        req_destroy(http, req);
        return NULL;
    }
    if (http->in_curl) {
        req->state = REQ_QUEUED;
        defer(http, req);
    } else if (curl_multi_add_handle(http->multi, req->easy) == CURLM_OK) {
        req->state = REQ_RUNNING;
    } else {
        req_destroy(http, req);
        return NULL;
    }
    live_push(http, req);
    return req;
}

void http_cancel(struct http *http, struct http_req *req)
{
    if (!http || !req) {
        return;
    }
    switch (req->state) {
    case REQ_QUEUED: /* already deferred: settle() frees it */
        live_remove(http, req);
        req->state = REQ_CANCELLED;
        break;
    case REQ_RUNNING:
        live_remove(http, req);
        if (http->in_curl) {
            req->state = REQ_CANCELLED;
            defer(http, req);
        } else {
            req_destroy(http, req);
        }
        break;
    case REQ_FINISHING: /* from its own on_status in finish(): skip on_done */
        req->state = REQ_CANCELLED;
        break;
    case REQ_CANCELLED:
    case REQ_DONE: /* inside its own on_done: freed right after */
        break;
    }
}

size_t http_live(const struct http *http)
{
    return http ? http->live_count : 0;
}
