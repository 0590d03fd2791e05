/* test_http.c — the asynchronous HTTP client against a tiny HTTP/1.1 server
 * run in a thread of this test (127.0.0.1, port 0): streaming, status codes,
 * headers, broken and refused connections, cancel (also from callbacks),
 * abort, timeouts, connection reuse and many concurrent requests. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "clock.h"
#include "http.h"
#include "loop.h"

/* ---- the test server: one thread accepts, one thread per connection ---- */

enum { SERVER_MAX_CONNS = 128, SERVER_WAIT_MS = 10000 };

static const char *const stream_pieces[] = {"one ", "two ", "three ", "four"};
#define STREAM_BODY "one two three four"

struct server {
    int listen_fd;
    int stop_pipe[2];
    int port;
    pthread_t acceptor;
    pthread_mutex_t mu;
    pthread_t conns[SERVER_MAX_CONNS];
    size_t conn_count;
    int accepted;    /* connections accepted */
    int slow_closed; /* /slow connections that the client closed */
    char last_method[8];
    char last_auth[256];
    char last_ctype[128];
};

struct server_conn {
    struct server *srv;
    int fd;
};

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* 1: fd readable, 0: stop requested or timed out. */
static int wait_readable(struct server *srv, int fd)
{
    struct pollfd p[2] = {{.fd = fd, .events = POLLIN},
                          {.fd = srv->stop_pipe[0], .events = POLLIN}};
    int n = poll(p, 2, SERVER_WAIT_MS);
    return n > 0 && !(p[1].revents & POLLIN) && p[0].revents != 0;
}

static bool send_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n <= 0) {
            return false;
        }
        buf += n;
        len -= (size_t)n;
    }
    return true;
}

static bool send_str(int fd, const char *s)
{
    return send_all(fd, s, strlen(s));
}

static bool send_chunk(int fd, const char *piece)
{
    char head[32];
    snprintf(head, sizeof(head), "%zx\r\n", strlen(piece));
    return send_str(fd, head) && send_str(fd, piece) && send_str(fd, "\r\n");
}

/* Copy the value of header `name` from the request head into out. */
static void header_value(const char *head, const char *name, char *out, size_t cap)
{
    out[0] = '\0';
    size_t nlen = strlen(name);
    for (const char *line = strstr(head, "\r\n"); line; line = strstr(line, "\r\n")) {
        line += 2;
        if (strncasecmp(line, name, nlen) == 0 && line[nlen] == ':') {
            const char *v = line + nlen + 1;
            while (*v == ' ') {
                v++;
            }
            size_t len = strcspn(v, "\r\n");
            if (len >= cap) {
                len = cap - 1;
            }
            memcpy(out, v, len);
            out[len] = '\0';
            return;
        }
    }
}

/* Answer one request; false closes the connection. */
static bool respond(struct server *srv, int fd, const char *path, const char *body, size_t body_len)
{
    char head[256];
    if (strcmp(path, "/stream") == 0) {
        if (!send_str(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                          "Transfer-Encoding: chunked\r\n\r\n")) {
            return false;
        }
        for (size_t i = 0; i < sizeof(stream_pieces) / sizeof(stream_pieces[0]); i++) {
            nap_ms(20);
            if (!send_chunk(fd, stream_pieces[i])) {
                return false;
            }
        }
        return send_str(fd, "0\r\n\r\n");
    }
    if (strcmp(path, "/echo") == 0) {
        snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", body_len);
        return send_str(fd, head) && send_all(fd, body, body_len);
    }
    if (strcmp(path, "/busy") == 0) {
        return send_str(fd, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy");
    }
    if (strcmp(path, "/empty") == 0) {
        return send_str(fd, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    }
    if (strcmp(path, "/cut") == 0) {
        send_str(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial");
        nap_ms(20);
        return false;
    }
    if (strcmp(path, "/slow") == 0) {
        if (!send_str(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n") ||
            !send_chunk(fd, "tick")) {
            return false;
        }
        /* Never finish: wait for the client to go away (or the test to end). */
        char sink[256];
        while (wait_readable(srv, fd)) {
            if (recv(fd, sink, sizeof(sink), 0) <= 0) {
                pthread_mutex_lock(&srv->mu);
                srv->slow_closed++;
                pthread_mutex_unlock(&srv->mu);
                break;
            }
        }
        return false;
    }
    send_str(fd, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    return true;
}

static void *conn_main(void *arg)
{
    struct server_conn *c = arg;
    struct server *srv = c->srv;
    char buf[16384];
    size_t have = 0;
    for (;;) {
        char *end;
        buf[have] = '\0';
        while (!(end = strstr(buf, "\r\n\r\n"))) {
            if (have == sizeof(buf) - 1 || !wait_readable(srv, c->fd)) {
                goto out;
            }
            ssize_t n = recv(c->fd, buf + have, sizeof(buf) - 1 - have, 0);
            if (n <= 0) {
                goto out;
            }
            have += (size_t)n;
            buf[have] = '\0';
        }
        size_t head_len = (size_t)(end - buf) + 4;
        char method[8] = "", path[128] = "", clen[32], auth[256], ctype[128];
        if (sscanf(buf, "%7s %127s", method, path) != 2) {
            goto out;
        }
        char *query = strchr(path, '?');
        if (query) {
            *query = '\0';
        }
        end[2] = '\0'; /* headers end at the blank line */
        header_value(buf, "Content-Length", clen, sizeof(clen));
        header_value(buf, "Authorization", auth, sizeof(auth));
        header_value(buf, "Content-Type", ctype, sizeof(ctype));
        size_t body_len = clen[0] ? strtoul(clen, NULL, 10) : 0;
        if (head_len + body_len >= sizeof(buf)) {
            goto out;
        }
        while (have < head_len + body_len) {
            if (!wait_readable(srv, c->fd)) {
                goto out;
            }
            ssize_t n = recv(c->fd, buf + have, sizeof(buf) - 1 - have, 0);
            if (n <= 0) {
                goto out;
            }
            have += (size_t)n;
        }
        pthread_mutex_lock(&srv->mu);
        snprintf(srv->last_method, sizeof(srv->last_method), "%s", method);
        snprintf(srv->last_auth, sizeof(srv->last_auth), "%s", auth);
        snprintf(srv->last_ctype, sizeof(srv->last_ctype), "%s", ctype);
        pthread_mutex_unlock(&srv->mu);
        if (!respond(srv, c->fd, path, buf + head_len, body_len)) {
            goto out;
        }
        have -= head_len + body_len;
        memmove(buf, buf + head_len + body_len, have);
    }
out:
    close(c->fd);
    free(c);
    return NULL;
}

static void *acceptor_main(void *arg)
{
    struct server *srv = arg;
    while (wait_readable(srv, srv->listen_fd)) {
        int fd = accept(srv->listen_fd, NULL, NULL);
        if (fd < 0) {
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        struct server_conn *c = malloc(sizeof(*c));
        pthread_mutex_lock(&srv->mu);
        bool room = c && srv->conn_count < SERVER_MAX_CONNS;
        if (room) {
            c->srv = srv;
            c->fd = fd;
            room = pthread_create(&srv->conns[srv->conn_count], NULL, conn_main, c) == 0;
            srv->conn_count += room;
            srv->accepted += room;
        }
        pthread_mutex_unlock(&srv->mu);
        if (!room) {
            close(fd);
            free(c);
        }
    }
    return NULL;
}

static void server_start(struct server *srv)
{
    memset(srv, 0, sizeof(*srv));
    pthread_mutex_init(&srv->mu, NULL);
    assert_int_equal(pipe(srv->stop_pipe), 0);
    srv->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(srv->listen_fd >= 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(addr);
    assert_int_equal(bind(srv->listen_fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    assert_int_equal(listen(srv->listen_fd, 128), 0);
    assert_int_equal(getsockname(srv->listen_fd, (struct sockaddr *)&addr, &alen), 0);
    srv->port = ntohs(addr.sin_port);
    assert_int_equal(pthread_create(&srv->acceptor, NULL, acceptor_main, srv), 0);
}

static void server_stop(struct server *srv)
{
    assert_int_equal(write(srv->stop_pipe[1], "x", 1), 1);
    pthread_join(srv->acceptor, NULL);
    for (size_t i = 0; i < srv->conn_count; i++) {
        pthread_join(srv->conns[i], NULL);
    }
    close(srv->listen_fd);
    close(srv->stop_pipe[0]);
    close(srv->stop_pipe[1]);
    pthread_mutex_destroy(&srv->mu);
}

static int server_get(struct server *srv, const int *field)
{
    pthread_mutex_lock(&srv->mu);
    int v = *field;
    pthread_mutex_unlock(&srv->mu);
    return v;
}

/* ---- the client side ---- */

struct env {
    struct server srv;
    struct loop *loop;
    struct http *http;
    int outstanding; /* requests whose on_done is awaited */
    char url[64];
};

struct probe {
    struct env *env;
    struct http_req *req;
    int status_calls;
    long status;
    int data_calls;
    char body[4096];
    size_t body_len;
    int done_calls;
    struct http_result result;
    char error[CURL_ERROR_SIZE];
    /* behaviours */
    int abort_on_data;         /* on_data returns non-zero */
    bool cancel_self_on_data;  /* http_cancel(own request) from on_data */
    struct probe *cancel_peer; /* http_cancel(peer) from the first on_data */
    struct probe *start_peer;  /* start the peer (POST /echo) from the first on_data */
    bool stop_on_data;         /* loop_stop from the first on_data */
};

static const char *url_of(struct env *env, const char *path)
{
    snprintf(env->url, sizeof(env->url), "http://127.0.0.1:%d%s", env->srv.port, path);
    return env->url;
}

static void probe_on_status(void *ctx, long status)
{
    struct probe *p = ctx;
    assert_int_equal(p->data_calls, 0);
    assert_int_equal(p->done_calls, 0);
    p->status_calls++;
    p->status = status;
}

static void start_echo(struct probe *p, const char *body);

static int probe_on_data(void *ctx, const char *buf, size_t len)
{
    struct probe *p = ctx;
    assert_int_equal(p->status_calls, 1);
    assert_int_equal(p->done_calls, 0);
    assert_true(p->body_len + len < sizeof(p->body));
    memcpy(p->body + p->body_len, buf, len);
    p->body_len += len;
    p->body[p->body_len] = '\0';
    if (p->data_calls++ == 0) {
        if (p->cancel_peer && p->cancel_peer->req) {
            http_cancel(p->env->http, p->cancel_peer->req);
            p->cancel_peer->req = NULL;
            p->env->outstanding--;
        }
        if (p->start_peer) {
            start_echo(p->start_peer, "from-on-data");
        }
        if (p->stop_on_data) {
            loop_stop(p->env->loop);
        }
    }
    if (p->cancel_self_on_data) {
        http_cancel(p->env->http, p->req);
        p->req = NULL;
        p->env->outstanding--;
        if (p->env->outstanding == 0) {
            loop_stop(p->env->loop);
        }
    }
    return p->abort_on_data;
}

static void probe_on_done(void *ctx, const struct http_result *result)
{
    struct probe *p = ctx;
    assert_non_null(p->req); /* not called after a cancel */
    p->done_calls++;
    p->result = *result;
    if (result->error) {
        snprintf(p->error, sizeof(p->error), "%s", result->error);
    }
    p->result.error = NULL;
    p->req = NULL;
    if (--p->env->outstanding == 0) {
        loop_stop(p->env->loop);
    }
}

static const struct http_callbacks probe_callbacks = {
    .on_status = probe_on_status,
    .on_data = probe_on_data,
    .on_done = probe_on_done,
};

static void start_with(struct probe *p, const struct http_req_opts *opts)
{
    p->req = http_start(p->env->http, opts, &probe_callbacks, p);
    assert_non_null(p->req);
    p->env->outstanding++;
}

static void start_get(struct probe *p, const char *path)
{
    struct http_req_opts opts = {.method = "GET", .url = url_of(p->env, path)};
    start_with(p, &opts);
}

static void start_echo(struct probe *p, const char *body)
{
    struct http_req_opts opts = {
        .method = "POST", .url = url_of(p->env, "/echo"), .body = body, .body_len = strlen(body)};
    start_with(p, &opts);
}

static void on_watchdog(struct loop *loop, void *ctx)
{
    *(bool *)ctx = true;
    loop_stop(loop);
}

/* Run the loop until something stops it; fail if that takes over limit_ms. */
static void run_until_stopped(struct env *env, int64_t limit_ms)
{
    bool fired = false;
    loop_timer_id t = loop_timer_after(env->loop, limit_ms, on_watchdog, &fired);
    assert_true(t);
    assert_int_equal(loop_run(env->loop), 0);
    assert_false(fired);
    loop_timer_cancel(env->loop, t);
}

static void on_stop(struct loop *loop, void *ctx)
{
    (void)ctx;
    loop_stop(loop);
}

/* Run the loop for ms (to see that nothing more happens). */
static void run_for(struct env *env, int64_t ms)
{
    assert_true(loop_timer_after(env->loop, ms, on_stop, NULL));
    assert_int_equal(loop_run(env->loop), 0);
}

/* Run the loop until the server saw `want` /slow connections closed. */
static void wait_slow_closed(struct env *env, int want)
{
    for (int i = 0; i < 200 && server_get(&env->srv, &env->srv.slow_closed) < want; i++) {
        run_for(env, 10);
    }
    assert_int_equal(server_get(&env->srv, &env->srv.slow_closed), want);
}

static int setup(void **state)
{
    struct env *env = calloc(1, sizeof(*env));
    assert_non_null(env);
    server_start(&env->srv);
    env->loop = loop_new();
    assert_non_null(env->loop);
    env->http = http_new(env->loop, 8);
    assert_non_null(env->http);
    *state = env;
    return 0;
}

static int teardown(void **state)
{
    struct env *env = *state;
    http_free(env->http);
    loop_free(env->loop);
    server_stop(&env->srv);
    free(env);
    return 0;
}

/* ---- tests ---- */

static void test_get_streams_in_order(void **state)
{
    struct env *env = *state;
    struct probe p = {.env = env};
    start_get(&p, "/stream");
    assert_int_equal(http_live(env->http), 1);
    run_until_stopped(env, 10000);
    assert_int_equal(p.status_calls, 1);
    assert_int_equal(p.status, 200);
    assert_true(p.data_calls >= 2); /* pieces 20 ms apart arrive separately */
    assert_string_equal(p.body, STREAM_BODY);
    assert_int_equal(p.done_calls, 1);
    assert_int_equal(p.result.curl_code, CURLE_OK);
    assert_int_equal(p.result.status, 200);
    assert_int_equal(http_live(env->http), 0);
    assert_string_equal(env->srv.last_method, "GET");
    assert_string_equal(env->srv.last_auth, "");
}

static void test_post_sends_body_json_and_bearer(void **state)
{
    struct env *env = *state;
    struct probe p = {.env = env};
    const char body[] = "{\"prompt\":\"hi\",\"n\":1}";
    struct http_req_opts opts = {.method = "POST",
                                 .url = url_of(env, "/echo"),
                                 .body = body,
                                 .body_len = strlen(body),
                                 .bearer = "s3cret-token",
                                 .connect_timeout_ms = 2000,
                                 .timeout_ms = 5000};
    start_with(&p, &opts);
    run_until_stopped(env, 10000);
    assert_int_equal(p.done_calls, 1);
    assert_int_equal(p.result.curl_code, CURLE_OK);
    assert_int_equal(p.status, 200);
    assert_string_equal(p.body, body);
    pthread_mutex_lock(&env->srv.mu);
    assert_string_equal(env->srv.last_method, "POST");
    assert_string_equal(env->srv.last_auth, "Bearer s3cret-token");
    assert_string_equal(env->srv.last_ctype, "application/json");
    pthread_mutex_unlock(&env->srv.mu);
}

static void test_error_status_and_empty_body(void **state)
{
    struct env *env = *state;
    struct probe busy = {.env = env}, empty = {.env = env};
    start_get(&busy, "/busy");
    start_get(&empty, "/empty");
    run_until_stopped(env, 10000);
    assert_int_equal(busy.done_calls, 1);
    assert_int_equal(busy.result.curl_code, CURLE_OK);
    assert_int_equal(busy.result.status, 503);
    assert_int_equal(busy.status_calls, 1);
    assert_int_equal(busy.status, 503);
    assert_string_equal(busy.body, "busy");
    /* No body: on_status still comes, before on_done. */
    assert_int_equal(empty.done_calls, 1);
    assert_int_equal(empty.status_calls, 1);
    assert_int_equal(empty.status, 200);
    assert_int_equal(empty.data_calls, 0);
}

static void test_connection_closed_mid_body(void **state)
{
    struct env *env = *state;
    struct probe p = {.env = env};
    start_get(&p, "/cut");
    run_until_stopped(env, 10000);
    assert_int_equal(p.done_calls, 1);
    assert_int_equal(p.result.curl_code, CURLE_PARTIAL_FILE);
    assert_int_equal(p.result.status, 200);
    assert_string_equal(p.body, "partial");
    assert_true(strlen(p.error) > 0);
}

static void test_connection_refused(void **state)
{
    struct env *env = *state;
    /* A port that was free a moment ago and has no listener. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(addr);
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &alen), 0);
    close(fd);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/x", ntohs(addr.sin_port));
    struct probe p = {.env = env};
    struct http_req_opts opts = {.method = "GET", .url = url, .connect_timeout_ms = 2000};
    start_with(&p, &opts);
    /* Nothing is called from inside http_start, even for a quick failure. */
    assert_int_equal(p.done_calls, 0);
    run_until_stopped(env, 10000);
    assert_int_equal(p.done_calls, 1);
    assert_int_equal(p.result.curl_code, CURLE_COULDNT_CONNECT);
    assert_int_equal(p.result.status, 0);
    assert_int_equal(p.status_calls, 0);
    assert_true(strlen(p.error) > 0);
}

static void test_cancel_closes_connection(void **state)
{
    struct env *env = *state;
    struct probe p = {.env = env, .stop_on_data = true};
    start_get(&p, "/slow");
    run_until_stopped(env, 10000);
    assert_int_equal(p.data_calls, 1);
    http_cancel(env->http, p.req);
    p.req = NULL;
    assert_int_equal(http_live(env->http), 0);
    run_for(env, 100);
    wait_slow_closed(env, 1);
    assert_int_equal(p.data_calls, 1);
    assert_int_equal(p.done_calls, 0);
}

static void test_cancel_from_own_on_data(void **state)
{
    struct env *env = *state;
    struct probe p = {.env = env, .cancel_self_on_data = true};
    start_get(&p, "/stream");
    run_until_stopped(env, 10000);
    assert_int_equal(http_live(env->http), 0);
    run_for(env, 200); /* the rest of the stream would have arrived by now */
    assert_int_equal(p.data_calls, 1);
    assert_int_equal(p.done_calls, 0);
    assert_string_equal(p.body, "one ");
}

/* Two streams; the first to get data cancels the other, which may have an
 * event pending in the same loop round. */
static void test_cancel_peer_from_on_data(void **state)
{
    struct env *env = *state;
    struct probe a = {.env = env}, b = {.env = env};
    a.cancel_peer = &b;
    b.cancel_peer = &a;
    start_get(&a, "/stream");
    start_get(&b, "/stream");
    run_until_stopped(env, 10000);
    run_for(env, 200);
    struct probe *winner = a.done_calls ? &a : &b;
    struct probe *loser = a.done_calls ? &b : &a;
    assert_int_equal(winner->done_calls, 1);
    assert_string_equal(winner->body, STREAM_BODY);
    assert_int_equal(loser->done_calls, 0);
    assert_int_equal(loser->data_calls, 0);
    assert_int_equal(http_live(env->http), 0);
}

static void test_abort_from_on_data(void **state)
{
    struct env *env = *state;
    struct probe p = {.env = env, .abort_on_data = 1};
    start_get(&p, "/stream");
    run_until_stopped(env, 10000);
    assert_int_equal(p.data_calls, 1);
    assert_int_equal(p.done_calls, 1);
    assert_int_equal(p.result.curl_code, CURLE_WRITE_ERROR);
    assert_int_equal(p.result.status, 200);
    assert_int_equal(http_live(env->http), 0);
}

static void test_start_from_on_data(void **state)
{
    struct env *env = *state;
    struct probe echo = {.env = env};
    struct probe p = {.env = env, .start_peer = &echo};
    start_get(&p, "/stream");
    run_until_stopped(env, 10000);
    assert_int_equal(p.done_calls, 1);
    assert_string_equal(p.body, STREAM_BODY);
    assert_int_equal(echo.done_calls, 1);
    assert_int_equal(echo.result.curl_code, CURLE_OK);
    assert_string_equal(echo.body, "from-on-data");
}

static void test_timeout(void **state)
{
    struct env *env = *state;
    struct probe p = {.env = env};
    /* 1 s: under a loaded machine the server thread once took over 300 ms
     * to send its first chunk, and the test saw no body. */
    struct http_req_opts opts = {.method = "GET", .url = url_of(env, "/slow"), .timeout_ms = 1000};
    int64_t t0 = clock_mono_ms();
    start_with(&p, &opts);
    run_until_stopped(env, 10000);
    int64_t took = clock_mono_ms() - t0;
    assert_int_equal(p.done_calls, 1);
    assert_int_equal(p.result.curl_code, CURLE_OPERATION_TIMEDOUT);
    assert_string_equal(p.body, "tick");
    assert_true(took >= 990);
    assert_true(took < 5000);
    wait_slow_closed(env, 1);
}

static void test_connection_reused(void **state)
{
    struct env *env = *state;
    struct probe first = {.env = env}, second = {.env = env};
    start_echo(&first, "1");
    run_until_stopped(env, 10000);
    start_echo(&second, "2");
    run_until_stopped(env, 10000);
    assert_string_equal(first.body, "1");
    assert_string_equal(second.body, "2");
    assert_int_equal(server_get(&env->srv, &env->srv.accepted), 1);
}

static void test_many_concurrent(void **state)
{
    struct env *env = *state;
    enum { N = 50 };
    static struct probe probes[N];
    char bodies[N][16];
    for (int i = 0; i < N; i++) {
        probes[i] = (struct probe){.env = env};
        if (i % 2) {
            snprintf(bodies[i], sizeof(bodies[i]), "req-%d", i);
            start_echo(&probes[i], bodies[i]);
        } else {
            start_get(&probes[i], "/stream");
        }
    }
    assert_int_equal(http_live(env->http), N);
    run_until_stopped(env, 20000);
    for (int i = 0; i < N; i++) {
        assert_int_equal(probes[i].done_calls, 1);
        assert_int_equal(probes[i].result.curl_code, CURLE_OK);
        assert_int_equal(probes[i].status, 200);
        assert_string_equal(probes[i].body, i % 2 ? bodies[i] : STREAM_BODY);
    }
    assert_int_equal(http_live(env->http), 0);
}

static void test_free_with_live_requests(void **state)
{
    struct env *env = *state;
    struct probe slow = {.env = env, .stop_on_data = true}, other = {.env = env};
    start_get(&slow, "/slow");
    start_get(&other, "/stream");
    run_until_stopped(env, 10000);
    http_free(env->http); /* no callbacks; ASan checks nothing leaks */
    env->http = NULL;
    assert_int_equal(slow.done_calls, 0);
    assert_int_equal(other.done_calls, 0);
    wait_slow_closed(env, 1);
}

static void test_rejects_bad_requests(void **state)
{
    struct env *env = *state;
    struct probe p = {.env = env};
    struct http_req_opts put = {.method = "PUT", .url = url_of(env, "/echo")};
    assert_null(http_start(env->http, &put, &probe_callbacks, &p));
    struct http_req_opts get_body = {
        .method = "GET", .url = url_of(env, "/echo"), .body = "x", .body_len = 1};
    assert_null(http_start(env->http, &get_body, &probe_callbacks, &p));
    struct http_req_opts injected = {
        .method = "GET", .url = url_of(env, "/echo"), .bearer = "a\r\nX-Evil: 1"};
    assert_null(http_start(env->http, &injected, &probe_callbacks, &p));
    assert_int_equal(http_live(env->http), 0);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_get_streams_in_order),
        T(test_post_sends_body_json_and_bearer),
        T(test_error_status_and_empty_body),
        T(test_connection_closed_mid_body),
        T(test_connection_refused),
        T(test_cancel_closes_connection),
        T(test_cancel_from_own_on_data),
        T(test_cancel_peer_from_on_data),
        T(test_abort_from_on_data),
        T(test_start_from_on_data),
        T(test_timeout),
        T(test_connection_reused),
        T(test_many_concurrent),
        T(test_free_with_live_requests),
        T(test_rejects_bad_requests),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
