/* test_supervisor.c — the llama-server supervisor on a real loop and HTTP
 * client, with tests/fakes/fake_llama_server.py standing in for llama-server:
 * health wait, restart after a crash or a hang, failed starts, startup
 * timeout, the child's environment and arguments, clean stop, external url. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "clock.h"
#include "http.h"
#include "log.h"
#include "loop.h"
#include "supervisor.h"

#ifndef LLMQ_SOURCE_DIR
#error "compile with -DLLMQ_SOURCE_DIR='\"/path/to/llmq\"'"
#endif

#define FAKE LLMQ_SOURCE_DIR "/tests/fakes/fake_llama_server.py"

enum { WAIT_MS = 10000, MAX_EXTRA = 8 };

struct harness {
    struct loop *loop;
    struct http *http;
    struct logger log;
    struct llmq_config cfg;
    char *extra[MAX_EXTRA];
    struct supervisor *sup;
    int ready_calls;
    int down_calls;
    char down_reason[1024];
    char dump_path[64];
    pid_t child; /* for child_reaped() */
    /* wait_until() */
    bool (*pred)(const struct harness *h);
    int64_t deadline;
};

static void on_ready(void *ctx)
{
    struct harness *h = ctx;
    h->ready_calls++;
}

static void on_down(void *ctx, const char *reason)
{
    struct harness *h = ctx;
    h->down_calls++;
    snprintf(h->down_reason, sizeof(h->down_reason), "%s", reason);
}

static const struct supervisor_events events = {.on_ready = on_ready, .on_down = on_down};

static int setup(void **state)
{
    struct harness *h = calloc(1, sizeof(*h));
    assert_non_null(h);
    h->loop = loop_new();
    assert_non_null(h->loop);
    h->http = http_new(h->loop, 8);
    assert_non_null(h->http);
    logger_init(&h->log, LOG_INFO, false, 2);
    h->cfg.llama.binary = FAKE;
    h->cfg.llama.model = "/nonexistent/fake-model.gguf";
    h->cfg.llama.gpu = -1;
    h->cfg.llama.gpu_layers = 0;
    h->cfg.llama.context = 2048;
    h->cfg.llama.slots = 3;
    h->cfg.llama.startup_timeout_s = 10;
    h->cfg.llama.restart_backoff_max_s = 30;
    h->cfg.llama.extra_args = h->extra;
    snprintf(h->dump_path, sizeof(h->dump_path), "/tmp/llmq-test-sup-%d.env", (int)getpid());
    unlink(h->dump_path);
    *state = h;
    return 0;
}

static int teardown(void **state)
{
    struct harness *h = *state;
    supervisor_free(h->sup);
    http_free(h->http);
    loop_free(h->loop);
    unlink(h->dump_path);
    free(h);
    return 0;
}

static void add_args(struct harness *h, ...)
{
    va_list ap;
    va_start(ap, h);
    const char *arg;
    while ((arg = va_arg(ap, const char *))) {
        assert_true(h->cfg.llama.n_extra_args < MAX_EXTRA);
        h->extra[h->cfg.llama.n_extra_args++] = (char *)arg;
    }
    va_end(ap);
}

static void start(struct harness *h)
{
    h->sup = supervisor_new(h->loop, h->http, &h->cfg, &h->log, &events, h);
    assert_non_null(h->sup);
    assert_int_equal(supervisor_start(h->sup), 0);
}

static void check_wait(struct loop *loop, void *ctx)
{
    struct harness *h = ctx;
    if (h->pred(h) || clock_mono_ms() >= h->deadline)
        loop_stop(loop);
    else
        assert_true(loop_timer_after(loop, 10, check_wait, h));
}

/* Run the loop until `pred` holds or `ms` pass; returns whether it holds. */
static bool wait_until(struct harness *h, bool (*pred)(const struct harness *h), int64_t ms)
{
    h->pred = pred;
    h->deadline = clock_mono_ms() + ms;
    assert_true(loop_timer_after(h->loop, 0, check_wait, h));
    assert_int_equal(loop_run(h->loop), 0);
    return pred(h);
}

/* Run the loop for `ms` whatever happens. */
static bool never(const struct harness *h)
{
    (void)h;
    return false;
}

static bool process_gone(pid_t pid)
{
    return kill(pid, 0) != 0 && errno == ESRCH;
}

static bool child_reaped(const struct harness *h)
{
    return process_gone(h->child);
}

static bool is_ready(const struct harness *h)
{
    return supervisor_state(h->sup) == SUP_READY;
}

static bool is_backoff(const struct harness *h)
{
    return supervisor_state(h->sup) == SUP_BACKOFF;
}

static bool went_down(const struct harness *h)
{
    return h->down_calls > 0;
}

static bool ready_twice(const struct harness *h)
{
    return h->ready_calls >= 2 && is_ready(h);
}

static bool restarted_twice(const struct harness *h)
{
    return supervisor_restarts(h->sup) >= 2 && is_backoff(h);
}

/* The fake's --fake-env-dump file ("pid N", "arg X", "env K=V" lines), with
 * a leading newline so every line can be matched as "\n...\n". */
static char *read_dump(const struct harness *h)
{
    static char buf[1 << 16];
    FILE *f = fopen(h->dump_path, "r");
    assert_non_null(f);
    buf[0] = '\n';
    size_t n = fread(buf + 1, 1, sizeof(buf) - 2, f);
    fclose(f);
    buf[n + 1] = '\0';
    return buf;
}

static pid_t dumped_pid(const struct harness *h)
{
    const char *dump = read_dump(h);
    assert_memory_equal(dump, "\npid ", 5);
    long pid = strtol(dump + 5, NULL, 10);
    assert_true(pid > 0);
    return (pid_t)pid;
}

static void test_ready_after_load(void **state)
{
    struct harness *h = *state;
    add_args(h, "--fake-load-s", "0.5", "--fake-env-dump", h->dump_path, NULL);
    int64_t t0 = clock_mono_ms();
    start(h);
    assert_int_equal(supervisor_state(h->sup), SUP_STARTING);
    assert_true(wait_until(h, is_ready, WAIT_MS));
    assert_true(clock_mono_ms() - t0 >= 500); /* /health said 503 while "loading" */
    assert_int_equal(h->ready_calls, 1);

    const char *url = supervisor_base_url(h->sup);
    assert_non_null(url);
    assert_memory_equal(url, "http://127.0.0.1:", 17);
    const char *key = supervisor_api_key(h->sup);
    assert_non_null(key);
    assert_int_equal(strlen(key), 32);
    assert_int_equal(strspn(key, "0123456789abcdef"), 32);
    assert_string_equal(supervisor_last_error(h->sup), "");

    /* Still ready (and no second on_ready) across a few ready-state probes. */
    wait_until(h, never, 2500);
    assert_true(is_ready(h));
    assert_int_equal(h->ready_calls, 1);
    assert_int_equal(h->down_calls, 0);
    assert_int_equal(supervisor_restarts(h->sup), 0);
}

static void test_child_env_and_args(void **state)
{
    struct harness *h = *state;
    setenv("LLAMA_ARG_CTX_SIZE", "99", 1);
    setenv("LLAMA_ARG_MODEL", "/elsewhere.gguf", 1);
    setenv("CUDA_VISIBLE_DEVICES", "7,5", 1); /* llama.gpu = 1 is the scheduler's 5 */
    setenv("CUDA_DEVICE_ORDER", "FASTEST_FIRST", 1);
    setenv("LLAMA_API_KEY", "inherited", 1);
    setenv("LLMQ_KAFKA_PROP_SASL_PASSWORD", "worker-only", 1);
    h->cfg.llama.gpu = 1;
    add_args(h, "--fake-env-dump", h->dump_path, NULL);
    start(h);
    bool ready = wait_until(h, is_ready, WAIT_MS);
    unsetenv("LLAMA_ARG_CTX_SIZE");
    unsetenv("LLAMA_ARG_MODEL");
    unsetenv("CUDA_VISIBLE_DEVICES");
    unsetenv("CUDA_DEVICE_ORDER");
    unsetenv("LLAMA_API_KEY");
    unsetenv("LLMQ_KAFKA_PROP_SASL_PASSWORD");
    assert_true(ready);

    const char *dump = read_dump(h);
    assert_null(strstr(dump, "\nenv LLAMA_ARG_"));
    assert_non_null(strstr(dump, "\nenv HIP_VISIBLE_DEVICES=0\n")); /* after ROCR's renumbering */
    assert_non_null(strstr(dump, "\nenv ROCR_VISIBLE_DEVICES=5\n"));
    assert_non_null(strstr(dump, "\nenv CUDA_VISIBLE_DEVICES=5\n"));
    assert_non_null(strstr(dump, "\nenv CUDA_DEVICE_ORDER=PCI_BUS_ID\n"));
    assert_null(strstr(dump, "\nenv CUDA_VISIBLE_DEVICES=7,5\n"));
    assert_null(strstr(dump, "FASTEST_FIRST"));
    assert_non_null(strstr(dump, "\nenv PATH="));
    assert_non_null(strstr(dump, "\narg -m\narg /nonexistent/fake-model.gguf\n"));
    assert_non_null(strstr(dump, "\narg --host\narg 127.0.0.1\narg --port\narg 0\n"));
    assert_non_null(strstr(dump, "\narg --parallel\narg 3\narg -c\narg 2048\narg -ngl\narg 0\n"));
    /* The key reaches the child through its environment, never argv. */
    assert_null(strstr(dump, "\narg --api-key"));
    assert_null(strstr(dump, "\nenv LLAMA_API_KEY=inherited\n"));
    assert_null(strstr(dump, "\nenv LLMQ_"));
    char key_env[64];
    snprintf(key_env, sizeof(key_env), "\nenv LLAMA_API_KEY=%s\n", supervisor_api_key(h->sup));
    assert_non_null(strstr(dump, key_env));
}

static void test_gpu_unpinned_keeps_env(void **state)
{
    struct harness *h = *state;
    setenv("CUDA_VISIBLE_DEVICES", "7", 1);
    add_args(h, "--fake-env-dump", h->dump_path, NULL);
    start(h);
    bool ready = wait_until(h, is_ready, WAIT_MS);
    unsetenv("CUDA_VISIBLE_DEVICES");
    assert_true(ready);
    const char *dump = read_dump(h);
    assert_non_null(strstr(dump, "\nenv CUDA_VISIBLE_DEVICES=7\n"));
    assert_null(strstr(dump, "\nenv HIP_VISIBLE_DEVICES="));
}

/* llama.gpu past the end of the scheduler's list: the start fails, no
 * llama-server, and last_error says why. */
static void test_gpu_outside_inherited_list(void **state)
{
    struct harness *h = *state;
    setenv("CUDA_VISIBLE_DEVICES", "7", 1);
    h->cfg.llama.gpu = 1;
    h->sup = supervisor_new(h->loop, h->http, &h->cfg, &h->log, &events, h);
    assert_non_null(h->sup);
    int rc = supervisor_start(h->sup);
    unsetenv("CUDA_VISIBLE_DEVICES");
    assert_int_equal(rc, -1);
    assert_non_null(strstr(supervisor_last_error(h->sup),
                           "llama.gpu = 1, but the worker inherited CUDA_VISIBLE_DEVICES=7"));
}

static void test_restart_after_kill(void **state)
{
    struct harness *h = *state;
    add_args(h, "--fake-env-dump", h->dump_path, NULL);
    start(h);
    assert_true(wait_until(h, is_ready, WAIT_MS));
    pid_t first = dumped_pid(h);
    unlink(h->dump_path);

    assert_int_equal(kill(first, SIGKILL), 0);
    assert_true(wait_until(h, went_down, WAIT_MS));
    assert_int_equal(h->down_calls, 1);
    assert_non_null(strstr(h->down_reason, "killed by signal 9"));
    assert_int_not_equal(supervisor_state(h->sup), SUP_READY);
    assert_true(process_gone(first)); /* reaped, not a zombie */

    assert_true(wait_until(h, ready_twice, WAIT_MS));
    assert_int_equal(h->ready_calls, 2);
    assert_int_equal(h->down_calls, 1);
    assert_int_equal(supervisor_restarts(h->sup), 1);
    assert_int_not_equal(dumped_pid(h), first);
}

static void test_exit_at_start(void **state)
{
    struct harness *h = *state;
    add_args(h, "--fake-mode", "exit-at-start", NULL);
    start(h);
    assert_true(wait_until(h, is_backoff, WAIT_MS));
    const char *err = supervisor_last_error(h->sup);
    assert_non_null(strstr(err, "exited with status 1"));
    assert_non_null(strstr(err, "failed to load model"));
    assert_null(supervisor_base_url(h->sup));

    /* It keeps trying: 0.5 s, then 1 s later. */
    assert_true(wait_until(h, restarted_twice, WAIT_MS));
    assert_non_null(strstr(supervisor_last_error(h->sup), "failed to load model"));
    assert_int_equal(h->ready_calls, 0);
    assert_int_equal(h->down_calls, 0);
}

static void test_missing_binary(void **state)
{
    struct harness *h = *state;
    h->cfg.llama.binary = "llmq-no-such-llama-server";
    start(h);
    assert_true(wait_until(h, is_backoff, WAIT_MS));
    const char *err = supervisor_last_error(h->sup);
    assert_non_null(strstr(err, "exited with status 127"));
    assert_non_null(strstr(err, "llmq-no-such-llama-server"));
}

static void test_startup_timeout(void **state)
{
    struct harness *h = *state;
    /* 3 s, not 1: the fake is a Python program, and on a loaded machine its
     * interpreter alone can take over a second to start and write its dump. */
    h->cfg.llama.startup_timeout_s = 3;
    add_args(h, "--fake-load-s", "30", "--fake-env-dump", h->dump_path, NULL);
    start(h);
    assert_true(wait_until(h, is_backoff, WAIT_MS));
    assert_non_null(strstr(supervisor_last_error(h->sup), "not ready after 3 s"));
    h->child = dumped_pid(h);
    assert_true(wait_until(h, child_reaped, WAIT_MS));
    assert_non_null(strstr(supervisor_last_error(h->sup), "not ready after 3 s"));
    assert_int_equal(supervisor_state(h->sup), SUP_BACKOFF);
    assert_int_equal(h->ready_calls, 0);
    assert_int_equal(h->down_calls, 0);
}

static void test_hung_server_restarted(void **state)
{
    struct harness *h = *state;
    add_args(h, "--fake-env-dump", h->dump_path, NULL);
    start(h);
    assert_true(wait_until(h, is_ready, WAIT_MS));
    pid_t first = dumped_pid(h);
    unlink(h->dump_path);

    /* Stopped: connections are accepted, nothing answers. Three probes
     * 2 s apart time out after 1 s each. */
    assert_int_equal(kill(first, SIGSTOP), 0);
    assert_true(wait_until(h, went_down, 20000)); /* 3 probes 2 s apart, 3 s timeout each */
    assert_non_null(strstr(h->down_reason, "/health"));
    assert_true(wait_until(h, ready_twice, WAIT_MS));
    assert_int_equal(supervisor_restarts(h->sup), 1);
    assert_true(process_gone(first));
}

static void test_stop_leaves_no_child(void **state)
{
    struct harness *h = *state;
    add_args(h, "--fake-env-dump", h->dump_path, NULL);
    start(h);
    assert_true(wait_until(h, is_ready, WAIT_MS));
    pid_t pid = dumped_pid(h);
    supervisor_stop(h->sup, 5000);
    assert_true(process_gone(pid));
    assert_int_equal(supervisor_state(h->sup), SUP_STOPPED);
    assert_null(supervisor_base_url(h->sup));
    wait_until(h, never, 300);
    assert_int_equal(h->down_calls, 0);
    assert_int_equal(h->ready_calls, 1);
}

static void test_stop_kills_after_grace(void **state)
{
    struct harness *h = *state;
    add_args(h, "--fake-ignore-sigterm", "--fake-env-dump", h->dump_path, NULL);
    start(h);
    assert_true(wait_until(h, is_ready, WAIT_MS));
    pid_t pid = dumped_pid(h);
    int64_t t0 = clock_mono_ms();
    supervisor_stop(h->sup, 300);
    int64_t took = clock_mono_ms() - t0;
    assert_true(took >= 300 && took < 3000);
    assert_true(process_gone(pid));
    assert_int_equal(h->down_calls, 0);
}

/* Start the fake ourselves, its stderr in `err_path`; returns its pid and
 * fills `port` from its "listening on" line. */
static pid_t start_fake(const char *err_path, int *port)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (!freopen(err_path, "w", stderr))
            _exit(127);
        execl(FAKE, FAKE, "--port", "0", "--fake-load-s", "0.3", (char *)NULL);
        _exit(127);
    }
    static const char marker[] = "listening on http://127.0.0.1:";
    *port = 0;
    int64_t deadline = clock_mono_ms() + WAIT_MS;
    while (*port == 0 && clock_mono_ms() < deadline) {
        usleep(20000);
        char buf[4096] = "";
        FILE *f = fopen(err_path, "r");
        if (!f)
            continue;
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        const char *at = strstr(buf, marker);
        if (at && strchr(at, '\n'))
            *port = (int)strtol(at + strlen(marker), NULL, 10);
    }
    if (*port == 0)
        kill(pid, SIGKILL);
    assert_true(*port > 0);
    return pid;
}

static void test_external_url(void **state)
{
    struct harness *h = *state;
    int port;
    char err_path[64];
    snprintf(err_path, sizeof(err_path), "/tmp/llmq-test-sup-%d.err", (int)getpid());
    pid_t fake = start_fake(err_path, &port);
    unlink(err_path);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", port);
    h->cfg.llama.url = url;
    h->cfg.llama.api_key = "external-key";
    start(h);
    assert_int_equal(supervisor_state(h->sup), SUP_STARTING);
    bool ready = wait_until(h, is_ready, WAIT_MS);
    if (!ready)
        kill(fake, SIGKILL);
    assert_true(ready);
    assert_int_equal(h->ready_calls, 1);
    char base[64];
    snprintf(base, sizeof(base), "http://127.0.0.1:%d", port);
    assert_string_equal(supervisor_base_url(h->sup), base);
    assert_string_equal(supervisor_api_key(h->sup), "external-key");

    /* The server goes away: three refused probes, then on_down and back to
     * probing (nothing to restart). */
    assert_int_equal(kill(fake, SIGKILL), 0);
    assert_int_equal(waitpid(fake, NULL, 0), fake);
    assert_true(wait_until(h, went_down, WAIT_MS));
    assert_int_equal(h->down_calls, 1);
    assert_int_equal(supervisor_state(h->sup), SUP_STARTING);
    assert_non_null(strstr(h->down_reason, base));
    assert_int_equal(supervisor_restarts(h->sup), 0);
    supervisor_stop(h->sup, 1000);
    assert_int_equal(supervisor_state(h->sup), SUP_STOPPED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ready_after_load, setup, teardown),
        cmocka_unit_test_setup_teardown(test_child_env_and_args, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gpu_unpinned_keeps_env, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gpu_outside_inherited_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_after_kill, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exit_at_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_binary, setup, teardown),
        cmocka_unit_test_setup_teardown(test_startup_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hung_server_restarted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_leaves_no_child, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_kills_after_grace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_external_url, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
