/* metrics_http.c — the metrics module's HTTP endpoint: libmicrohttpd in
 * epoll mode without threads, its fd watched by the loop and its timeouts
 * driven by a loop timer, and a 1 s tick whose age is the loop's health. */
#include "metrics_http.h"

#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <jansson.h>
#include <microhttpd.h>

#include "clock.h"
#include "hostport.h"
#include "loop.h"

enum {
    TICK_INTERVAL_MS = 1000,
    DEFAULT_STALL_MS = 10000,
    HTTP_CONNECTION_LIMIT = 32,
    HTTP_CONNECTION_TIMEOUT_S = 10,
    HTTP_TIMER_MAX_MS = 60000,
};

#define PROMETHEUS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct metrics_http {
    struct loop *loop;
    const struct logger *log;
    struct metrics_pages pages;
    struct MHD_Daemon *daemon;
    int epoll_fd;
    int port;
    loop_timer_id http_timer;
    char http_error[256]; /* libmicrohttpd's latest message */
    int64_t stall_ms;
    int64_t last_tick_ms;
    loop_timer_id tick_timer;
};

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned status,
                               const char *content_type, const char *body, size_t len)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r) {
        return MHD_NO;
    }
    enum MHD_Result ok = MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    if (ok == MHD_YES && status == MHD_HTTP_METHOD_NOT_ALLOWED) {
        ok = MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    }
    if (ok == MHD_YES) {
        ok = MHD_queue_response(conn, status, r);
    }
    MHD_destroy_response(r);
    return ok;
}

/* Answer `body` as JSON; takes the reference. */
static enum MHD_Result respond_json(struct MHD_Connection *conn, unsigned status, json_t *body)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text) {
        return MHD_NO;
    }
    enum MHD_Result ok = respond(conn, status, "application/json", text, strlen(text));
    free(text);
    return ok;
}

static enum MHD_Result serve_metrics(struct metrics_http *h, struct MHD_Connection *conn)
{
    size_t len;
    char *text = h->pages.render(h->pages.ctx, &len);
    if (!text) {
        return MHD_NO;
    }
    enum MHD_Result ok = respond(conn, MHD_HTTP_OK, PROMETHEUS_CONTENT_TYPE, text, len);
    free(text);
    return ok;
}

static enum MHD_Result serve_health(struct metrics_http *h, struct MHD_Connection *conn)
{
    int64_t age = clock_mono_ms() - h->last_tick_ms;
    bool alive = age <= h->stall_ms;
    json_t *body =
        json_pack("{s:s, s:I}", "status", alive ? "ok" : "stalled", "loop_age_ms", (json_int_t)age);
    return respond_json(conn, alive ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, body);
}

static enum MHD_Result serve_ready(struct metrics_http *h, struct MHD_Connection *conn)
{
    const char *reason = NULL;
    if (h->pages.ready(h->pages.ctx, &reason)) {
        /* Ready, with something degraded: said, without failing the probe. */
        if (reason && reason[0])
            return respond_json(conn, MHD_HTTP_OK,
                                json_pack("{s:b, s:s}", "ready", 1, "detail", reason));
        return respond_json(conn, MHD_HTTP_OK, json_pack("{s:b}", "ready", 1));
    }
    json_t *body =
        json_pack("{s:b, s:s}", "ready", 0, "reason", reason && reason[0] ? reason : "not ready");
    return respond_json(conn, MHD_HTTP_SERVICE_UNAVAILABLE, body);
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
           const char *version, const char *upload_data,
           size_t *upload_data_size, // NOLINT(readability-non-const-parameter): MHD's signature
           void **req_cls)
{
    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    (void)req_cls;
    struct metrics_http *h = cls;
    static const char text_plain[] = "text/plain; charset=utf-8";
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
        static const char body[] = "method not allowed\n";
        return respond(conn, MHD_HTTP_METHOD_NOT_ALLOWED, text_plain, body, sizeof(body) - 1);
    }
    if (strcmp(url, "/metrics") == 0) {
        return serve_metrics(h, conn);
    }
    if (strcmp(url, "/healthz") == 0) {
        return serve_health(h, conn);
    }
    if (strcmp(url, "/readyz") == 0) {
        return serve_ready(h, conn);
    }
    static const char body[] = "not found\n";
    return respond(conn, MHD_HTTP_NOT_FOUND, text_plain, body, sizeof(body) - 1);
}

/* libmicrohttpd's messages: kept for metrics_new's error while starting,
 * logged as warnings once serving. */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 0)))
#endif
static void
on_mhd_message(void *cls, const char *fmt, va_list ap)
{
    struct metrics_http *h = cls;
    vsnprintf(h->http_error, sizeof(h->http_error), fmt, ap);
    h->http_error[strcspn(h->http_error, "\r\n")] = '\0';
    if (h->daemon && h->log) {
        log_warn(h->log, "metrics", "http: %s", h->http_error);
    }
}

static void on_http_timer(struct loop *loop, void *ctx);

/* Let libmicrohttpd do what is ready, then wake it again when it asks. */
static void run_http(struct metrics_http *h)
{
    MHD_run(h->daemon);
    loop_timer_cancel(h->loop, h->http_timer);
    MHD_UNSIGNED_LONG_LONG timeout_ms;
    if (MHD_get_timeout(h->daemon, &timeout_ms) != MHD_YES) {
        return;
    }
    int64_t delay = timeout_ms > HTTP_TIMER_MAX_MS ? HTTP_TIMER_MAX_MS : (int64_t)timeout_ms;
    h->http_timer = loop_timer_after(h->loop, delay, on_http_timer, h);
    if (!h->http_timer && h->log) {
        log_warn(h->log, "metrics", "http: cannot arm a timer; idle connections may linger");
    }
}

static void on_http_timer(struct loop *loop, void *ctx)
{
    (void)loop;
    struct metrics_http *h = ctx;
    run_http(h);
}

static void on_http_ready(struct loop *loop, int fd, unsigned events, void *ctx)
{
    (void)loop;
    (void)fd;
    (void)events;
    run_http(ctx);
}

static void on_tick(struct loop *loop, void *ctx)
{
    struct metrics_http *h = ctx;
    h->last_tick_ms = clock_mono_ms();
    h->tick_timer = loop_timer_after(loop, TICK_INTERVAL_MS, on_tick, h);
}

static int start_http(struct metrics_http *h, const char *listen, char *err, size_t err_len)
{
    char host[256], port[8];
    if (hostport_split(listen, host, sizeof(host), port, sizeof(port)) != 0) {
        snprintf(err, err_len, "metrics.listen \"%s\": expected host:port", listen);
        return -1;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *addr;
    int rc = getaddrinfo(host, port, &hints, &addr);
    if (rc != 0) {
        snprintf(err, err_len, "metrics.listen \"%s\": %s", listen, gai_strerror(rc));
        return -1;
    }
    unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    if (addr->ai_family == AF_INET6) {
        flags |= MHD_USE_IPv6;
    }
    /* The port is also given as a number only so that MHD's messages name it. */
    h->daemon = MHD_start_daemon(flags, (uint16_t)strtol(port, NULL, 10), NULL, NULL, on_request, h,
                                 MHD_OPTION_EXTERNAL_LOGGER, on_mhd_message, h,
                                 MHD_OPTION_SOCK_ADDR, addr->ai_addr, MHD_OPTION_CONNECTION_LIMIT,
                                 (unsigned)HTTP_CONNECTION_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT,
                                 (unsigned)HTTP_CONNECTION_TIMEOUT_S, MHD_OPTION_END);
    freeaddrinfo(addr);
    if (!h->daemon) {
        snprintf(err, err_len, "metrics.listen \"%s\": %s", listen,
                 h->http_error[0] ? h->http_error : "cannot start the HTTP server");
        return -1;
    }
    h->epoll_fd = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_EPOLL_FD)->epoll_fd;
    h->port = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT)->port;
    if (loop_watch(h->loop, h->epoll_fd, LOOP_READ, on_http_ready, h) != 0) {
        snprintf(err, err_len, "metrics.listen \"%s\": cannot watch the server: %s", listen,
                 strerror(errno));
        return -1;
    }
    h->last_tick_ms = clock_mono_ms();
    h->tick_timer = loop_timer_after(h->loop, TICK_INTERVAL_MS, on_tick, h);
    if (!h->tick_timer) {
        snprintf(err, err_len, "metrics.listen \"%s\": out of memory", listen);
        return -1;
    }
    run_http(h);
    return 0;
}

struct metrics_http *metrics_http_start(struct loop *loop, const char *listen,
                                        const struct metrics_pages *pages, int64_t stall_ms,
                                        const struct logger *log, char *err, size_t err_len)
{
    struct metrics_http *h = calloc(1, sizeof(*h));
    if (!h) {
        snprintf(err, err_len, "metrics: out of memory");
        return NULL;
    }
    h->loop = loop;
    h->log = log;
    h->pages = *pages;
    h->stall_ms = stall_ms > 0 ? stall_ms : DEFAULT_STALL_MS;
    h->epoll_fd = -1;
    if (start_http(h, listen, err, err_len) != 0) {
        metrics_http_stop(h);
        return NULL;
    }
    return h;
}

void metrics_http_stop(struct metrics_http *h)
{
    if (!h) {
        return;
    }
    loop_timer_cancel(h->loop, h->tick_timer);
    loop_timer_cancel(h->loop, h->http_timer);
    if (h->daemon) {
        loop_unwatch(h->loop, h->epoll_fd); /* fails harmlessly if the watch never started */
        MHD_stop_daemon(h->daemon);
    }
    free(h);
}

int metrics_http_port(const struct metrics_http *h)
{
    return h ? h->port : 0;
}
