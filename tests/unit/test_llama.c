/* test_llama.c — llama.c over real HTTP against a scripted server thread on 127.0.0.1:
 * streams as this llama-server sends them (chunked SSE), error statuses, connections that
 * fail or break, bad streams, and cancellation from outside and from inside on_text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http.h"
#include "llama.h"
#include "loop.h"

/* ---- the scripted server: one connection, one canned answer ---- */

enum ending {
    END_CLEAN,     /* the response is complete */
    END_CUT,       /* close mid-body (no terminating chunk) */
    END_NO_REPLY,  /* accept, read, close without a byte */
    END_KEEP_OPEN, /* hold the connection until the client closes it */
};

struct script {
    int status;             /* 0 with END_NO_REPLY */
    const char *const *sse; /* SSE bytes, one chunk each; NULL-terminated */
    const char *body;       /* a plain (non-SSE) body instead */
    enum ending ending;

    /* filled by the server */
    int listen_fd;
    int port;
    char request[8192];
    bool client_closed;
    pthread_t thread;
};

static void write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n <= 0)
            return; /* the client went away: fine for the cancel tests */
        buf += n;
        len -= (size_t)n;
    }
}

static void write_chunk(int fd, const char *data)
{
    char head[32];
    snprintf(head, sizeof(head), "%zx\r\n", strlen(data));
    write_all(fd, head, strlen(head));
    write_all(fd, data, strlen(data));
    write_all(fd, "\r\n", 2);
    usleep(2000); /* separate reads on the client, so events arrive in pieces */
}

/* Read the request head and its Content-Length body. */
static void read_request(int fd, struct script *s)
{
    size_t len = 0;
    for (;;) {
        ssize_t n = read(fd, s->request + len, sizeof(s->request) - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        s->request[len] = '\0';
        char *end = strstr(s->request, "\r\n\r\n");
        const char *cl = strcasestr(s->request, "Content-Length:");
        if (end && cl && len >= (size_t)(end + 4 - s->request) + strtoul(cl + 15, NULL, 10))
            break;
    }
}

static void *serve(void *arg)
{
    struct script *s = arg;
    int fd = accept(s->listen_fd, NULL, NULL);
    if (fd < 0)
        return NULL;
    read_request(fd, s);
    if (s->ending != END_NO_REPLY) {
        char head[256];
        snprintf(head, sizeof(head),
                 "HTTP/1.1 %d X\r\nContent-Type: %s\r\nTransfer-Encoding: chunked\r\n\r\n",
                 s->status, s->sse ? "text/event-stream" : "application/json");
        write_all(fd, head, strlen(head));
        if (s->body)
            write_chunk(fd, s->body);
        for (size_t i = 0; s->sse && s->sse[i]; i++)
            write_chunk(fd, s->sse[i]);
        if (s->ending == END_CLEAN)
            write_all(fd, "0\r\n\r\n", 5);
        if (s->ending == END_KEEP_OPEN) {
            char b[256];
            s->client_closed = read(fd, b, sizeof(b)) <= 0; /* EOF or reset */
        }
    }
    close(fd);
    return NULL;
}

static void script_listen(struct script *s)
{
    s->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s->listen_fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(s->listen_fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s->listen_fd, 4), 0);
    socklen_t alen = sizeof(a);
    assert_int_equal(getsockname(s->listen_fd, (struct sockaddr *)&a, &alen), 0);
    s->port = ntohs(a.sin_port);
}

static void script_start(struct script *s)
{
    script_listen(s);
    assert_int_equal(pthread_create(&s->thread, NULL, serve, s), 0);
}

static void script_join(struct script *s)
{
    pthread_join(s->thread, NULL);
    close(s->listen_fd);
}

/* ---- the client side ---- */

struct seen {
    struct loop *loop;
    struct http *http;
    struct llama_run *run;
    char text[4096];
    size_t text_len;
    int n_text;
    int n_done;
    struct llama_outcome out;
    int cancel_at_text; /* call llama_run_cancel from the n-th on_text; 0 = never */
};

static void on_text(void *ctx, const char *text, size_t len)
{
    struct seen *s = ctx;
    assert_true(len > 0);
    assert_true(s->text_len + len < sizeof(s->text));
    memcpy(s->text + s->text_len, text, len);
    s->text_len += len;
    s->text[s->text_len] = '\0';
    s->n_text++;
    if (s->n_text == s->cancel_at_text) {
        llama_run_cancel(s->http, s->run);
        s->run = NULL;
        loop_stop(s->loop);
    }
}

static void on_done(void *ctx, const struct llama_outcome *out)
{
    struct seen *s = ctx;
    s->n_done++;
    s->out = *out;
    s->run = NULL;
    loop_stop(s->loop);
}

static void on_guard(struct loop *loop, void *ctx)
{
    *(int *)ctx = 1;
    loop_stop(loop);
}

static struct job prompt_job = {.prompt = "Hello", .prompt_len = 5};
static struct job_message chat_msg = {.role = "user", .content = "Hi"};
static struct job chat_job = {.messages = &chat_msg, .n_messages = 1};
static const struct llama_caps caps = {.max_tokens = 64, .default_max_tokens = 8};

/* Run one job against 127.0.0.1:port until on_done (or the guard, which fails the test
 * unless `expect_guard`). */
static void run_job(struct seen *s, int port, const struct job *job, const char *api_key,
                    bool expect_guard)
{
    static const struct llama_run_events events = {on_text, on_done, NULL};
    char base[64];
    snprintf(base, sizeof(base), "http://127.0.0.1:%d/", port);
    struct llama_target target = {.base_url = base, .api_key = api_key};
    s->loop = loop_new();
    assert_non_null(s->loop);
    s->http = http_new(s->loop, 8);
    assert_non_null(s->http);
    s->run = llama_run_start(s->http, &target, job, &caps, &events, s);
    assert_non_null(s->run);
    int fired = 0;
    loop_timer_id guard = loop_timer_after(s->loop, expect_guard ? 300 : 5000, on_guard, &fired);
    assert_int_equal(loop_run(s->loop), 0);
    assert_int_equal(fired, expect_guard);
    loop_timer_cancel(s->loop, guard);
}

static void finish_client(struct seen *s)
{
    assert_int_equal(http_live(s->http), 0);
    http_free(s->http);
    loop_free(s->loop);
}

/* The /completion stream as this llama-server sends it (final event trimmed of its
 * generation_settings), split across chunks at awkward places. */
static const char *const completion_sse[] = {
    "data: "
    "{\"index\":0,\"content\":\"\xc3\xa5ng\",\"tokens\":[10000],\"stop\":false,\"id_slot\":-1,"
    "\"tokens_predicted\":1,\"tokens_evaluated\":2}\n\n",
    "data: {\"index\":0,\"content\":\"animation\",\"tokens\":[18962],\"stop\":false,\"id_slot\":-1,"
    "\"tokens_predicted\":2,\"tokens_evaluated\":2}\n\ndata: {\"index\":0,\"content\":\" Gy\",",
    "\"tokens\":[12842],\"stop\":false,\"id_slot\":-1,\"tokens_predicted\":3,\"tokens_evaluated\":"
    "2}"
    "\n\n",
    "data: {\"index\":0,\"content\":\"\",\"tokens\":[],\"id_slot\":1,\"stop\":true,\"model\":"
    "\"tiny.gguf\",\"tokens_predicted\":3,\"tokens_evaluated\":2,\"prompt\":\"<s> Hello\","
    "\"has_new_line\":false,\"truncated\":false,\"stop_type\":\"limit\",\"stopping_word\":\"\","
    "\"tokens_cached\":4,\"timings\":{\"cache_n\":0,\"prompt_n\":2,\"prompt_ms\":1.075,"
    "\"predicted_n\":3,\"predicted_ms\":4.992}}\n\n",
    NULL,
};

static void test_completion_ok(void **state)
{
    (void)state;
    struct script sc = {.status = 200, .sse = completion_sse};
    script_start(&sc);
    struct seen s = {0};
    run_job(&s, sc.port, &prompt_job, "sekrit", false);
    script_join(&sc);

    assert_true(strncmp(sc.request, "POST /completion HTTP/1.1\r\n", 27) == 0);
    assert_non_null(strstr(sc.request, "Authorization: Bearer sekrit\r\n"));
    assert_non_null(strstr(sc.request, "{\"prompt\":\"Hello\",\"n_predict\":8,"));
    assert_non_null(strstr(sc.request, "\"stream\":true"));
    assert_int_equal(s.n_done, 1);
    assert_int_equal(s.n_text, 3);
    assert_string_equal(s.text, "\xc3\xa5nganimation Gy");
    assert_int_equal(s.out.code, LLMQ_OK);
    assert_false(s.out.backend_lost);
    assert_string_equal(s.out.finish, "length");
    assert_int_equal(s.out.prompt_tokens, 2);
    assert_int_equal(s.out.completion_tokens, 3);
    finish_client(&s);
}

static const char *const chat_sse[] = {
    "data: {\"choices\":[{\"finish_reason\":null,\"index\":0,\"delta\":{\"role\":\"assistant\","
    "\"content\":null}}],\"object\":\"chat.completion.chunk\"}\n\n"
    "data: {\"choices\":[{\"finish_reason\":null,\"index\":0,\"delta\":{\"content\":\" cloth\"}}],"
    "\"object\":\"chat.completion.chunk\"}\n\n",
    ":\n\n", /* llama-server's keep-alive ping */
    "data: {\"choices\":[{\"finish_reason\":\"stop\",\"index\":0,\"delta\":{}}],\"object\":"
    "\"chat.completion.chunk\"}\r\n\r\n",
    "data: {\"choices\":[],\"object\":\"chat.completion.chunk\",\"usage\":{\"completion_tokens\":1,"
    "\"prompt_tokens\":29,\"total_tokens\":30}}\n\n",
    "data: [DONE]\n\n",
    NULL,
};

static void test_chat_ok(void **state)
{
    (void)state;
    struct script sc = {.status = 200, .sse = chat_sse};
    script_start(&sc);
    struct seen s = {0};
    run_job(&s, sc.port, &chat_job, NULL, false);
    script_join(&sc);

    assert_true(strncmp(sc.request, "POST /v1/chat/completions HTTP/1.1\r\n", 36) == 0);
    assert_null(strstr(sc.request, "Authorization:"));
    assert_non_null(strstr(sc.request, "\"stream_options\":{\"include_usage\":true}"));
    assert_int_equal(s.n_done, 1);
    assert_string_equal(s.text, " cloth");
    assert_int_equal(s.out.code, LLMQ_OK);
    assert_string_equal(s.out.finish, "stop");
    assert_int_equal(s.out.prompt_tokens, 29);
    assert_int_equal(s.out.completion_tokens, 1);
    finish_client(&s);
}

static void test_context_exceeded(void **state)
{
    (void)state;
    struct script sc = {
        .status = 400,
        .body = "{\"error\":{\"code\":400,\"message\":\"request (302 tokens) exceeds the available "
                "context size (256 tokens), try increasing it\",\"type\":"
                "\"exceed_context_size_error\",\"n_prompt_tokens\":302,\"n_ctx\":256}}",
    };
    script_start(&sc);
    struct seen s = {0};
    run_job(&s, sc.port, &prompt_job, NULL, false);
    script_join(&sc);
    assert_int_equal(s.n_done, 1);
    assert_int_equal(s.n_text, 0);
    assert_int_equal(s.out.code, LLMQ_CONTEXT_EXCEEDED);
    assert_false(s.out.backend_lost);
    assert_non_null(strstr(s.out.message, "exceeds the available context size"));
    finish_client(&s);
}

static void test_server_error_status(void **state)
{
    (void)state;
    struct script sc = {.status = 500, .body = "not json at all"};
    script_start(&sc);
    struct seen s = {0};
    run_job(&s, sc.port, &prompt_job, NULL, false);
    script_join(&sc);
    assert_int_equal(s.out.code, LLMQ_BACKEND_ERROR);
    assert_false(s.out.backend_lost);
    assert_string_equal(s.out.message, "llama-server HTTP 500: not json at all");
    finish_client(&s);
}

static void test_connection_refused(void **state)
{
    (void)state;
    struct script sc = {0};
    script_listen(&sc);
    close(sc.listen_fd); /* a port nobody listens on */
    struct seen s = {0};
    run_job(&s, sc.port, &prompt_job, NULL, false);
    assert_int_equal(s.n_done, 1);
    assert_int_equal(s.out.code, LLMQ_BACKEND_FAILED);
    assert_true(s.out.backend_lost);
    assert_non_null(strstr(s.out.message, "connection failed"));
    finish_client(&s);
}

static void test_empty_reply(void **state)
{
    (void)state;
    struct script sc = {.ending = END_NO_REPLY};
    script_start(&sc);
    struct seen s = {0};
    run_job(&s, sc.port, &prompt_job, NULL, false);
    script_join(&sc);
    assert_int_equal(s.n_done, 1);
    assert_true(s.out.backend_lost);
    assert_int_equal(s.out.code, LLMQ_BACKEND_FAILED);
    finish_client(&s);
}

static void test_cut_mid_stream(void **state)
{
    (void)state;
    const char *const cut[] = {completion_sse[0], completion_sse[1], NULL};
    struct script sc = {.status = 200, .sse = cut, .ending = END_CUT};
    script_start(&sc);
    struct seen s = {0};
    run_job(&s, sc.port, &prompt_job, NULL, false);
    script_join(&sc);
    assert_int_equal(s.n_done, 1);
    assert_string_equal(s.text, "\xc3\xa5nganimation"); /* the half event is not delivered */
    assert_true(s.out.backend_lost);
    assert_int_equal(s.out.code, LLMQ_BACKEND_FAILED);
    finish_client(&s);
}

static void test_cut_after_final(void **state)
{
    (void)state;
    struct script sc = {.status = 200, .sse = completion_sse, .ending = END_CUT};
    script_start(&sc);
    struct seen s = {0};
    run_job(&s, sc.port, &prompt_job, NULL, false);
    script_join(&sc);
    assert_int_equal(s.out.code, LLMQ_OK);
    assert_false(s.out.backend_lost);
    assert_string_equal(s.out.finish, "length");
    finish_client(&s);
}

static void test_error_event(void **state)
{
    (void)state;
    const char *const sse[] = {
        completion_sse[0],
        "data: {\"error\":{\"code\":500,\"message\":\"boom\",\"type\":\"server_error\"}}\n\n",
        NULL,
    };
    struct script sc = {.status = 200, .sse = sse};
    script_start(&sc);
    struct seen s = {0};
    run_job(&s, sc.port, &prompt_job, NULL, false);
    script_join(&sc);
    assert_int_equal(s.n_done, 1);
    assert_int_equal(s.n_text, 1);
    assert_int_equal(s.out.code, LLMQ_BACKEND_ERROR);
    assert_false(s.out.backend_lost);
    assert_non_null(strstr(s.out.message, "boom (server_error)"));
    finish_client(&s);
}

static void test_bad_stream(void **state)
{
    (void)state;
    const char *const sse[] = {"data: {\"index\":0,\"content\":\"x\"\n\n", completion_sse[3], NULL};
    struct script sc = {.status = 200, .sse = sse};
    script_start(&sc);
    struct seen s = {0};
    run_job(&s, sc.port, &prompt_job, NULL, false);
    script_join(&sc);
    assert_int_equal(s.n_done, 1);
    assert_int_equal(s.n_text, 0);
    assert_int_equal(s.out.code, LLMQ_BACKEND_ERROR);
    assert_non_null(strstr(s.out.message, "not JSON"));
    finish_client(&s);
}

static void test_stream_without_final(void **state)
{
    (void)state;
    const char *const sse[] = {completion_sse[0], NULL};
    struct script sc = {.status = 200, .sse = sse};
    script_start(&sc);
    struct seen s = {0};
    run_job(&s, sc.port, &prompt_job, NULL, false);
    script_join(&sc);
    assert_int_equal(s.out.code, LLMQ_BACKEND_ERROR);
    assert_false(s.out.backend_lost);
    assert_non_null(strstr(s.out.message, "without a final event"));
    finish_client(&s);
}

static void test_last_event_without_blank_line(void **state)
{
    (void)state;
    const char *const sse[] = {
        "data: {\"content\":\"a\",\"stop\":false}\n\n",
        "data: {\"content\":\"\",\"stop\":true,\"stop_type\":\"eos\",\"tokens_predicted\":1}",
        NULL,
    };
    struct script sc = {.status = 200, .sse = sse};
    script_start(&sc);
    struct seen s = {0};
    run_job(&s, sc.port, &prompt_job, NULL, false);
    script_join(&sc);
    assert_int_equal(s.out.code, LLMQ_OK);
    assert_string_equal(s.out.finish, "stop");
    assert_int_equal(s.out.completion_tokens, 1);
    assert_int_equal(s.out.prompt_tokens, -1);
    finish_client(&s);
}

static void test_cancel_from_on_text(void **state)
{
    (void)state;
    struct script sc = {.status = 200, .sse = completion_sse, .ending = END_KEEP_OPEN};
    script_start(&sc);
    struct seen s = {.cancel_at_text = 2};
    run_job(&s, sc.port, &prompt_job, NULL, false);
    script_join(&sc); /* returns once the client closed the connection */
    assert_true(sc.client_closed);
    assert_int_equal(s.n_text, 2);
    assert_int_equal(s.n_done, 0);
    finish_client(&s);
}

static void test_cancel_before_answer(void **state)
{
    (void)state;
    struct script sc = {0};
    script_listen(&sc); /* never accepted: the request waits, like a full llama-server */
    struct seen s = {0};
    static const struct llama_run_events events = {on_text, on_done, NULL};
    char base[64];
    snprintf(base, sizeof(base), "http://127.0.0.1:%d", sc.port);
    struct llama_target target = {.base_url = base};
    s.loop = loop_new();
    s.http = http_new(s.loop, 8);
    s.run = llama_run_start(s.http, &target, &prompt_job, &caps, &events, &s);
    assert_non_null(s.run);
    assert_int_equal(http_live(s.http), 1);
    llama_run_cancel(s.http, s.run);
    int fired = 0;
    loop_timer_after(s.loop, 100, on_guard, &fired);
    assert_int_equal(loop_run(s.loop), 0);
    assert_int_equal(fired, 1);
    assert_int_equal(s.n_text + s.n_done, 0);
    finish_client(&s);
    close(sc.listen_fd);
}

static void test_start_fails(void **state)
{
    (void)state;
    struct loop *loop = loop_new();
    struct http *http = http_new(loop, 8);
    static const struct llama_run_events events = {on_text, on_done, NULL};
    struct llama_target target = {.base_url = "http://127.0.0.1:1"};
    struct job bad = {.prompt = "x", .prompt_len = 1, .json_schema_json = "{not json"};
    assert_null(llama_run_start(http, &target, &bad, &caps, &events, NULL));
    assert_int_equal(http_live(http), 0);
    llama_run_cancel(http, NULL);
    http_free(http);
    loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_completion_ok),
        cmocka_unit_test(test_chat_ok),
        cmocka_unit_test(test_context_exceeded),
        cmocka_unit_test(test_server_error_status),
        cmocka_unit_test(test_connection_refused),
        cmocka_unit_test(test_empty_reply),
        cmocka_unit_test(test_cut_mid_stream),
        cmocka_unit_test(test_cut_after_final),
        cmocka_unit_test(test_error_event),
        cmocka_unit_test(test_bad_stream),
        cmocka_unit_test(test_stream_without_final),
        cmocka_unit_test(test_last_event_without_blank_line),
        cmocka_unit_test(test_cancel_from_on_text),
        cmocka_unit_test(test_cancel_before_answer),
        cmocka_unit_test(test_start_fails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
