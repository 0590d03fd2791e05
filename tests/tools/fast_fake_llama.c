/* fast_fake_llama.c — a minimal llama-server stand-in for throughput benchmarks.
 *
 * One thread, epoll, HTTP/1.1 with keep-alive, 127.0.0.1 only. It answers
 *   GET  /health, /v1/health   200 {"status":"ok"}
 *   POST /completion           200, text/event-stream, chunked: --tokens SSE events in
 *                              llama-server's native shape (" tokN" pieces), cut at the
 *                              request's "n_predict", then the final "stop": true event
 *                              with stop_type, token counts and timings
 * and 404 to anything else. Tokens are streamed instantly, one send() per event as the
 * real server writes them. Like llama-server it prints "listening on http://HOST:PORT"
 * on stderr (--port 0 picks a free port), so a worker's supervisor can spawn it too;
 * other llama-server flags are accepted and ignored. Bodies are not parsed beyond
 * "n_predict", so this is for benchmarks only: the Python fake is the test double.
 *
 *   fast_fake_llama [--port N] [--tokens N] [--exit-after-s S] [llama-server flags...]
 *
 * Exits 0 on SIGTERM/SIGINT or after --exit-after-s seconds (0 = never), 1 on errors. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define MAX_REQUEST_BYTES (1u << 20)
#define READ_CHUNK        65536
#define MAX_EVENTS        64

struct options {
    int port;
    long tokens;
    long exit_after_s;
};

struct buffer {
    char *data;
    size_t len, cap;
};

/* What an epoll event points at: a client connection or one of the server's own fds. */
enum watch_kind { WATCH_CLIENT, WATCH_LISTEN, WATCH_SIGNAL, WATCH_TIMER };

struct conn {
    enum watch_kind kind;
    int fd;
    struct buffer in;
    struct buffer out; /* bytes not yet sent */
    bool want_write;   /* EPOLLOUT armed */
};

struct server {
    int epfd;
    struct conn listen, signal, timer; /* control fds (kind != WATCH_CLIENT) */
    uint64_t requests, events_sent;
};

static int fail(const char *what)
{
    fprintf(stderr, "fast_fake_llama: %s: %s\n", what, strerror(errno));
    return -1;
}

static int reserve(struct buffer *b, size_t extra)
{
    if (b->len + extra <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra)
        cap *= 2;
    char *grown = realloc(b->data, cap);
    if (!grown)
        return -1;
    b->data = grown;
    b->cap = cap;
    return 0;
}

static int append(struct buffer *b, const char *data, size_t len)
{
    if (reserve(b, len) != 0)
        return -1;
    memcpy(b->data + b->len, data, len);
    b->len += len;
    return 0;
}

static void consume(struct buffer *b, size_t len)
{
    memmove(b->data, b->data + len, b->len - len);
    b->len -= len;
}

static void conn_close(struct server *s, struct conn *c)
{
    epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->in.data);
    free(c->out.data);
    free(c);
}

static int arm(struct server *s, struct conn *c, bool want_write)
{
    if (c->want_write == want_write)
        return 0;
    struct epoll_event ev = {.events = EPOLLIN | (want_write ? EPOLLOUT : 0), .data.ptr = c};
    c->want_write = want_write;
    return epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Send what is pending; -1 when the peer is gone. */
static int flush_out(struct server *s, struct conn *c)
{
    while (c->out.len > 0) {
        ssize_t n = send(c->fd, c->out.data, c->out.len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return arm(s, c, true);
        if (n <= 0)
            return -1;
        consume(&c->out, (size_t)n);
    }
    return arm(s, c, false);
}

/* Queue bytes; while nothing is pending they go out at once, as one send(). */
static int emit(struct server *s, struct conn *c, const char *data, size_t len)
{
    if (append(&c->out, data, len) != 0)
        return -1;
    return c->want_write ? 0 : flush_out(s, c);
}

static int emit_json(struct server *s, struct conn *c, int status, const char *reason,
                     const char *body)
{
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json; charset=utf-8\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     status, reason, strlen(body));
    if (append(&c->out, head, (size_t)n) != 0)
        return -1;
    return emit(s, c, body, strlen(body));
}

/* One SSE event as one HTTP chunk. */
static int emit_event(struct server *s, struct conn *c, const char *json, size_t len)
{
    char frame[4096];
    int n = snprintf(frame, sizeof(frame), "%zx\r\ndata: %s\n\n\r\n", len + 8, json);
    if (n < 0 || (size_t)n >= sizeof(frame))
        return -1;
    s->events_sent++;
    return emit(s, c, frame, (size_t)n);
}

static long requested_tokens(const char *body, size_t len, long cap)
{
    static const char key[] = "\"n_predict\":";
    const char *at = memmem(body, len, key, sizeof(key) - 1);
    if (!at)
        return cap;
    long n = strtol(at + sizeof(key) - 1, NULL, 10);
    return n >= 0 && n < cap ? n : cap;
}

static int stream_completion(struct server *s, struct conn *c, const struct options *o,
                             const char *body, size_t body_len)
{
    static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                               "Transfer-Encoding: chunked\r\n\r\n";
    long limit = requested_tokens(body, body_len, o->tokens);
    if (emit(s, c, head, sizeof(head) - 1) != 0)
        return -1;
    char json[1024];
    for (long i = 0; i < limit; i++) {
        int n = snprintf(json, sizeof(json),
                         "{\"index\":0,\"content\":\"%stok%ld\",\"tokens\":[%ld],\"stop\":false,"
                         "\"id_slot\":0,\"tokens_predicted\":%ld,\"tokens_evaluated\":4}",
                         i == 0 ? "" : " ", i, 100 + i, i + 1);
        if (emit_event(s, c, json, (size_t)n) != 0)
            return -1;
    }
    int n = snprintf(json, sizeof(json),
                     "{\"index\":0,\"content\":\"\",\"tokens\":[],\"id_slot\":0,\"stop\":true,"
                     "\"tokens_predicted\":%ld,\"tokens_evaluated\":4,\"stop_type\":\"%s\","
                     "\"stopping_word\":\"\",\"timings\":{\"cache_n\":0,\"prompt_n\":4,"
                     "\"prompt_ms\":0.1,\"predicted_n\":%ld,\"predicted_ms\":0.1}}",
                     limit, limit < o->tokens ? "limit" : "eos", limit);
    if (emit_event(s, c, json, (size_t)n) != 0)
        return -1;
    return emit(s, c, "0\r\n\r\n", 5);
}

/* Content-Length of a header block, 0 if absent. */
static size_t content_length(const char *head, size_t len)
{
    static const char key[] = "\r\ncontent-length:";
    for (size_t i = 0; i + sizeof(key) - 1 <= len; i++) {
        if (strncasecmp(head + i, key, sizeof(key) - 1) == 0)
            return (size_t)strtoul(head + i + sizeof(key) - 1, NULL, 10);
    }
    return 0;
}

/* Serve every complete request in c->in; -1 closes the connection. */
static int serve_requests(struct server *s, struct conn *c, const struct options *o)
{
    for (;;) {
        char *end = memmem(c->in.data, c->in.len, "\r\n\r\n", 4);
        if (!end)
            return c->in.len > MAX_REQUEST_BYTES ? -1 : 0;
        size_t head_len = (size_t)(end - c->in.data) + 4;
        size_t body_len = content_length(c->in.data, head_len);
        if (body_len > MAX_REQUEST_BYTES)
            return -1;
        if (c->in.len < head_len + body_len)
            return 0;
        const char *line = c->in.data;
        const char *body = c->in.data + head_len;
        int rc;
        s->requests++;
        if (strncmp(line, "GET /health ", 12) == 0 || strncmp(line, "GET /v1/health ", 15) == 0)
            rc = emit_json(s, c, 200, "OK", "{\"status\":\"ok\"}");
        else if (strncmp(line, "POST /completion ", 17) == 0)
            rc = stream_completion(s, c, o, body, body_len);
        else
            rc = emit_json(s, c, 404, "Not Found",
                           "{\"error\":{\"code\":404,\"message\":\"File Not Found\","
                           "\"type\":\"not_found_error\"}}");
        if (rc != 0)
            return -1;
        consume(&c->in, head_len + body_len);
    }
}

static int on_readable(struct server *s, struct conn *c, const struct options *o)
{
    for (;;) {
        if (reserve(&c->in, READ_CHUNK) != 0)
            return -1;
        ssize_t n = recv(c->fd, c->in.data + c->in.len, READ_CHUNK, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0)
            return -1;
        c->in.len += (size_t)n;
    }
    return serve_requests(s, c, o);
}

static int accept_all(struct server *s)
{
    for (;;) {
        int fd = accept4(s->listen.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : fail("accept");
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        struct conn *c = calloc(1, sizeof(*c));
        if (!c) {
            close(fd);
            continue;
        }
        c->fd = fd;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
            close(fd);
            free(c);
            return fail("epoll_ctl");
        }
    }
}

static int listen_on(struct server *s, int port)
{
    s->listen.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->listen.fd < 0)
        return fail("socket");
    int one = 1;
    setsockopt(s->listen.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons((uint16_t)port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(s->listen.fd, (struct sockaddr *)&addr, sizeof(addr)) != 0)
        return fail("bind");
    if (listen(s->listen.fd, 512) != 0)
        return fail("listen");
    socklen_t len = sizeof(addr);
    if (getsockname(s->listen.fd, (struct sockaddr *)&addr, &len) != 0)
        return fail("getsockname");
    fprintf(stderr, "srv  main: listening on http://127.0.0.1:%d\n", ntohs(addr.sin_port));
    fprintf(stderr, "srv  main: model loaded\n");
    return 0;
}

/* The server's own fds: the listening socket, SIGTERM/SIGINT, the time limit. */
static int watch_control_fds(struct server *s, long exit_after_s)
{
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    if (sigprocmask(SIG_BLOCK, &mask, NULL) != 0)
        return fail("sigprocmask");
    s->signal.fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (s->signal.fd < 0)
        return fail("signalfd");
    s->timer.fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (s->timer.fd < 0)
        return fail("timerfd_create");
    struct itimerspec when = {.it_value.tv_sec = exit_after_s};
    if (exit_after_s > 0 && timerfd_settime(s->timer.fd, 0, &when, NULL) != 0)
        return fail("timerfd_settime");
    s->listen.kind = WATCH_LISTEN;
    s->signal.kind = WATCH_SIGNAL;
    s->timer.kind = WATCH_TIMER;
    struct conn *control[] = {&s->listen, &s->signal, &s->timer};
    for (size_t i = 0; i < sizeof(control) / sizeof(control[0]); i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = control[i]};
        if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, control[i]->fd, &ev) != 0)
            return fail("epoll_ctl");
    }
    return 0;
}

static int run(struct server *s, const struct options *o)
{
    struct epoll_event events[MAX_EVENTS];
    for (;;) {
        int n = epoll_wait(s->epfd, events, MAX_EVENTS, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return fail("epoll_wait");
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;
            if (c->kind == WATCH_SIGNAL || c->kind == WATCH_TIMER)
                return 0;
            if (c->kind == WATCH_LISTEN) {
                if (accept_all(s) != 0)
                    return -1;
                continue;
            }
            int rc = 0;
            if (events[i].events & (EPOLLERR | EPOLLHUP))
                rc = -1;
            if (rc == 0 && (events[i].events & EPOLLOUT))
                rc = flush_out(s, c);
            if (rc == 0 && (events[i].events & EPOLLIN))
                rc = on_readable(s, c, o);
            if (rc != 0)
                conn_close(s, c);
        }
    }
}

static int parse_options(int argc, char **argv, struct options *o)
{
    *o = (struct options){.port = 8080, .tokens = 10, .exit_after_s = 0};
    for (int i = 1; i < argc; i++) {
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        long *target = NULL;
        long port = o->port;
        if (strcmp(argv[i], "--port") == 0)
            target = &port;
        else if (strcmp(argv[i], "--tokens") == 0)
            target = &o->tokens;
        else if (strcmp(argv[i], "--exit-after-s") == 0)
            target = &o->exit_after_s;
        if (!target)
            continue; /* a llama-server flag (or its value): ignored */
        char *end = NULL;
        if (!value || (*target = strtol(value, &end, 10), *end != '\0') || *target < 0) {
            fprintf(stderr, "fast_fake_llama: %s needs a non-negative integer\n", argv[i]);
            return -1;
        }
        if (target == &port) {
            if (port > 65535) {
                fprintf(stderr, "fast_fake_llama: --port out of range\n");
                return -1;
            }
            o->port = (int)port;
        }
        i++;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct options o;
    if (parse_options(argc, argv, &o) != 0)
        return 1;
    struct server s = {.epfd = -1, .listen = {.fd = -1}, .signal = {.fd = -1}, .timer = {.fd = -1}};
    s.epfd = epoll_create1(EPOLL_CLOEXEC);
    int rc = s.epfd < 0 ? fail("epoll_create1") : 0;
    if (rc == 0)
        rc = listen_on(&s, o.port);
    if (rc == 0)
        rc = watch_control_fds(&s, o.exit_after_s);
    if (rc == 0)
        rc = run(&s, &o);
    fprintf(stderr, "fast_fake_llama: %llu request(s), %llu event(s) sent\n",
            (unsigned long long)s.requests, (unsigned long long)s.events_sent);
    return rc == 0 ? 0 : 1;
}
