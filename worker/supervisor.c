/* supervisor.c — runs llama-server as a child: spawns it with a clean
 * environment and a pinned GPU, folds its output into the log, waits for
 * /health, restarts it with exponential backoff when it dies or hangs, and
 * never leaves it orphaned. With llama.url set it only probes that server. */
#include "supervisor.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "http.h"
#include "llama_child.h"
#include "loop.h"
#include "random_id.h"

enum {
    PROBE_STARTING_MS = 250, /* /health poll while loading */
    PROBE_READY_MS = 2000,   /* /health poll while ready */
    /* One probe, connect included. Generous: a llama-server busy on every
     * core answered /health in 1.46 s under the fault tests' load, and three
     * misses kill it. A hung server is still found within ~15 s. */
    PROBE_TIMEOUT_MS = 3000,
    PROBE_FAILURES_DOWN = 3,  /* consecutive failures that mean "hung" */
    BACKOFF_FIRST_MS = 500,   /* first restart delay, doubled up to the cap */
    BACKOFF_RESET_MS = 60000, /* ready this long: the next restart is fast again */
    OUTPUT_LINES = 20,        /* output lines kept for last_error */
    OUTPUT_LINE_MAX = 1024,   /* longer lines are split */
    ERROR_LINES = 3,          /* output lines quoted in last_error */
    API_KEY_BYTES = 16,       /* random bytes, 32 hex chars */
};

struct supervisor {
    struct loop *loop;
    struct http *http;
    const struct llmq_config *cfg;
    const struct logger *log;
    struct supervisor_events events;
    void *ctx;

    enum supervisor_state state;
    bool external;  /* cfg->llama.url: no child, only probes */
    char *base_url; /* NULL until known */
    char api_key[2 * API_KEY_BYTES + 1];

    /* The child (pid 0 when there is none). */
    pid_t pid;
    int pidfd;
    int out_fd; /* read end of its stdout+stderr pipe, -1 once closed */
    int64_t spawned_ms;
    char kill_reason[256]; /* set when we killed it ourselves */

    /* Its output: the line being assembled and a ring of the last lines. */
    char partial[OUTPUT_LINE_MAX];
    size_t partial_len;
    char lines[OUTPUT_LINES][OUTPUT_LINE_MAX];
    bool line_is_error[OUTPUT_LINES];
    unsigned n_lines; /* lines seen since the spawn */

    loop_timer_id probe_timer;
    loop_timer_id deadline_timer; /* startup timeout */
    loop_timer_id restart_timer;
    struct http_req *probe;
    int probe_failures;

    int64_t ready_since_ms;
    int64_t backoff_ms;
    unsigned restarts;
    char last_error[1024];
};

static void spawn_or_retry(struct supervisor *sup);

static void set_error(struct supervisor *sup, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void set_error(struct supervisor *sup, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sup->last_error, sizeof(sup->last_error), fmt, ap);
    va_end(ap);
}

static void cancel_probing(struct supervisor *sup)
{
    loop_timer_cancel(sup->loop, sup->probe_timer);
    if (sup->probe) {
        http_cancel(sup->http, sup->probe);
        sup->probe = NULL;
    }
}

static void set_timer(struct supervisor *sup, loop_timer_id *timer, int64_t delay_ms,
                      loop_timer_fn fn)
{
    loop_timer_cancel(sup->loop, *timer);
    *timer = loop_timer_after(sup->loop, delay_ms, fn, sup);
    if (!*timer)
        log_error(sup->log, "supervisor", "cannot create a timer: out of memory");
}

/* ---- health probes ---- */

static void on_probe_timer(struct loop *loop, void *ctx);

static void schedule_probe(struct supervisor *sup, int64_t delay_ms)
{
    set_timer(sup, &sup->probe_timer, delay_ms, on_probe_timer);
}

static void become_ready(struct supervisor *sup)
{
    int64_t now = clock_mono_ms();
    loop_timer_cancel(sup->loop, sup->deadline_timer);
    sup->state = SUP_READY;
    sup->ready_since_ms = now;
    sup->probe_failures = 0;
    sup->last_error[0] = '\0';
    if (sup->external)
        log_info(sup->log, "supervisor", "llama-server at %s is ready", sup->base_url);
    else
        log_info(sup->log, "supervisor", "llama-server pid %d ready at %s after %.1f s",
                 (int)sup->pid, sup->base_url, (double)(now - sup->spawned_ms) / 1000.0);
    schedule_probe(sup, PROBE_READY_MS);
    if (sup->events.on_ready)
        sup->events.on_ready(sup->ctx);
}

/* Kill the child ourselves (hung, or too slow to start); its exit is then
 * seen through the pidfd like any other. */
static void kill_child(struct supervisor *sup, const char *reason)
{
    snprintf(sup->kill_reason, sizeof(sup->kill_reason), "%s", reason);
    set_error(sup, "%s", reason);
    log_warn(sup->log, "supervisor", "killing llama-server pid %d: %s", (int)sup->pid, reason);
    if (pidfd_send_signal(sup->pidfd, SIGKILL, NULL, 0) != 0)
        log_error(sup->log, "supervisor", "cannot kill llama-server pid %d: %s", (int)sup->pid,
                  strerror(errno));
    cancel_probing(sup);
    loop_timer_cancel(sup->loop, sup->deadline_timer);
    sup->state = SUP_BACKOFF;
}

/* It was ready and stopped answering /health. */
static void health_lost(struct supervisor *sup, const char *why)
{
    char reason[512];
    snprintf(reason, sizeof(reason), "not answering %s/health: %s", sup->base_url, why);
    if (sup->external) {
        log_warn(sup->log, "supervisor", "%s", reason);
        set_error(sup, "%s", reason);
        sup->state = SUP_STARTING;
        sup->probe_failures = 0;
        schedule_probe(sup, PROBE_STARTING_MS);
    } else {
        kill_child(sup, reason);
    }
    if (sup->events.on_down)
        sup->events.on_down(sup->ctx, sup->last_error);
}

static void probe_result(struct supervisor *sup, bool ok, const char *why)
{
    if (sup->state == SUP_STARTING) {
        if (ok) {
            become_ready(sup);
            return;
        }
        if (sup->external)
            set_error(sup, "%s/health: %s", sup->base_url, why);
        schedule_probe(sup, PROBE_STARTING_MS);
    } else if (sup->state == SUP_READY) {
        if (ok) {
            sup->probe_failures = 0;
        } else if (++sup->probe_failures >= PROBE_FAILURES_DOWN) {
            health_lost(sup, why);
            return;
        } else {
            log_warn(sup->log, "supervisor", "%s/health: %s (%d of %d)", sup->base_url, why,
                     sup->probe_failures, PROBE_FAILURES_DOWN);
        }
        schedule_probe(sup, PROBE_READY_MS);
    }
}

static void on_probe_done(void *ctx, const struct http_result *result)
{
    struct supervisor *sup = ctx;
    sup->probe = NULL;
    char why[256];
    if (result->curl_code != 0)
        snprintf(why, sizeof(why), "%s", result->error ? result->error : "transfer failed");
    else
        snprintf(why, sizeof(why), "HTTP %ld", result->status);
    probe_result(sup, result->curl_code == 0 && result->status == 200, why);
}

static void on_probe_timer(struct loop *loop, void *ctx)
{
    (void)loop;
    struct supervisor *sup = ctx;
    char url[1024];
    snprintf(url, sizeof(url), "%s/health", sup->base_url);
    const char *key = supervisor_api_key(sup);
    struct http_req_opts opts = {
        .method = "GET",
        .url = url,
        .bearer = key && *key ? key : NULL,
        .connect_timeout_ms = PROBE_TIMEOUT_MS,
        .timeout_ms = PROBE_TIMEOUT_MS,
    };
    static const struct http_callbacks probe_callbacks = {.on_done = on_probe_done};
    sup->probe = http_start(sup->http, &opts, &probe_callbacks, sup);
    if (!sup->probe)
        probe_result(sup, false, "cannot start the request");
}

/* ---- the child's output ---- */

enum line_kind { LINE_PLAIN, LINE_WARNING, LINE_ERROR };

/* Skip llama-server's own line prefix, "[M.SS.mmm.uuu ]L " with L one of
 * I W E D, and return the kind it gives; unprefixed lines (the fake, older
 * builds, messages from libraries) are judged by their words. */
static enum line_kind classify_line(const char **line)
{
    const char *p = *line;
    const char *after_stamp = p + strspn(p, "0123456789.");
    if (after_stamp > p && *after_stamp == ' ')
        p = after_stamp + 1;
    if (p[0] && strchr("IWED", p[0]) && p[1] == ' ') {
        *line = p + 2;
        return p[0] == 'E' ? LINE_ERROR : p[0] == 'W' ? LINE_WARNING : LINE_PLAIN;
    }
    static const char *const error_words[] = {"error", "fail", "abort", "terminate", "fatal"};
    for (size_t i = 0; i < sizeof(error_words) / sizeof(error_words[0]); i++)
        if (strcasestr(p, error_words[i]))
            return LINE_ERROR;
    return strcasestr(p, "warn") ? LINE_WARNING : LINE_PLAIN;
}

/* "... listening on http://127.0.0.1:PORT ..." -> base_url. */
static void parse_listening(struct supervisor *sup, const char *line)
{
    static const char marker[] = "listening on http://";
    const char *p = strstr(line, marker);
    if (!p)
        return;
    p += sizeof(marker) - 1;
    size_t host_len = strcspn(p, " \t");
    const char *colon = memrchr(p, ':', host_len);
    if (!colon)
        return;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (end != p + host_len || port <= 0 || port > 65535)
        return;
    size_t cap = host_len + sizeof("http://");
    sup->base_url = malloc(cap);
    if (!sup->base_url) {
        log_error(sup->log, "supervisor", "out of memory");
        return;
    }
    snprintf(sup->base_url, cap, "http://%.*s", (int)host_len, p);
    schedule_probe(sup, 0);
}

static void output_line(struct supervisor *sup, char *line)
{
    const char *text = line + strspn(line, " \t");
    enum line_kind kind = classify_line(&text);
    if (!*text)
        return;
    unsigned slot = sup->n_lines++ % OUTPUT_LINES;
    snprintf(sup->lines[slot], OUTPUT_LINE_MAX, "%s", text);
    sup->line_is_error[slot] = kind == LINE_ERROR;
    bool milestone = strstr(text, "listening on ") || strstr(text, "model loaded");
    enum log_level level = kind != LINE_PLAIN ? LOG_WARN : milestone ? LOG_INFO : LOG_DEBUG;
    log_at(sup->log, level, "llama", "%s", text);
    if (!sup->base_url && sup->state == SUP_STARTING)
        parse_listening(sup, text);
}

static void flush_partial(struct supervisor *sup)
{
    if (sup->partial_len == 0)
        return;
    sup->partial[sup->partial_len] = '\0';
    sup->partial_len = 0;
    output_line(sup, sup->partial);
}

static void feed_output(struct supervisor *sup, const char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = buf[i];
        if (c == '\n') {
            flush_partial(sup);
        } else if (c != '\r') {
            if (sup->partial_len == OUTPUT_LINE_MAX - 1)
                flush_partial(sup);
            sup->partial[sup->partial_len++] = c;
        }
    }
}

static void close_output(struct supervisor *sup)
{
    if (sup->out_fd < 0)
        return;
    flush_partial(sup);
    loop_unwatch(sup->loop, sup->out_fd);
    close(sup->out_fd);
    sup->out_fd = -1;
}

/* Read what the pipe holds; close it at end of file. */
static void drain_output(struct supervisor *sup)
{
    char buf[4096];
    while (sup->out_fd >= 0) {
        ssize_t n = read(sup->out_fd, buf, sizeof(buf));
        if (n > 0) {
            feed_output(sup, buf, (size_t)n);
        } else if (n == 0) {
            close_output(sup);
        } else if (errno == EINTR) {
            continue;
        } else {
            if (errno != EAGAIN)
                log_error(sup->log, "supervisor", "reading llama-server output: %s",
                          strerror(errno));
            return;
        }
    }
}

static void on_output(struct loop *loop, int fd, unsigned events, void *ctx)
{
    (void)loop;
    (void)fd;
    (void)events;
    drain_output(ctx);
}

/* The first few error lines of the recent output, joined with " | ";
 * without any, the last few lines if `or_last` (a child that exited on its
 * own may say why in them), else nothing. */
static void recent_errors(const struct supervisor *sup, bool or_last, char *out, size_t cap)
{
    unsigned first = sup->n_lines > OUTPUT_LINES ? sup->n_lines - OUTPUT_LINES : 0;
    unsigned picked[ERROR_LINES];
    unsigned n = 0;
    for (unsigned i = first; i < sup->n_lines && n < ERROR_LINES; i++)
        if (sup->line_is_error[i % OUTPUT_LINES])
            picked[n++] = i;
    if (n == 0 && or_last)
        for (unsigned i = sup->n_lines > ERROR_LINES ? sup->n_lines - ERROR_LINES : first;
             i < sup->n_lines; i++)
            picked[n++] = i;
    size_t pos = 0;
    out[0] = '\0';
    for (unsigned k = 0; k < n && pos < cap; k++)
        pos += (size_t)snprintf(out + pos, cap - pos, "%s%s", k ? " | " : "",
                                sup->lines[picked[k] % OUTPUT_LINES]);
}

/* ---- child exit and restart ---- */

static void on_restart_timer(struct loop *loop, void *ctx)
{
    (void)loop;
    struct supervisor *sup = ctx;
    sup->restarts++;
    spawn_or_retry(sup);
}

static void schedule_restart(struct supervisor *sup)
{
    int64_t cap = (int64_t)sup->cfg->llama.restart_backoff_max_s * 1000;
    if (sup->ready_since_ms && clock_mono_ms() - sup->ready_since_ms >= BACKOFF_RESET_MS)
        sup->backoff_ms = BACKOFF_FIRST_MS;
    sup->ready_since_ms = 0;
    int64_t delay = sup->backoff_ms < cap ? sup->backoff_ms : cap;
    if (sup->backoff_ms < cap)
        sup->backoff_ms *= 2;
    sup->state = SUP_BACKOFF;
    log_warn(sup->log, "supervisor", "llama-server down (%s); restarting in %.1f s",
             sup->last_error, (double)delay / 1000.0);
    set_timer(sup, &sup->restart_timer, delay, on_restart_timer);
}

/* "exited with status 1" / "killed by signal 9" for a reaped child. */
static void describe_exit(pid_t pid, char *out, size_t cap)
{
    int status;
    pid_t r;
    do {
        r = waitpid(pid, &status, WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r == pid && WIFEXITED(status))
        snprintf(out, cap, "exited with status %d", WEXITSTATUS(status));
    else if (r == pid && WIFSIGNALED(status))
        snprintf(out, cap, "killed by signal %d", WTERMSIG(status));
    else
        snprintf(out, cap, "exited (status unknown: %s)", r < 0 ? strerror(errno) : "not reaped");
}

static void forget_child(struct supervisor *sup)
{
    close_output(sup);
    loop_unwatch(sup->loop, sup->pidfd);
    close(sup->pidfd);
    sup->pidfd = -1;
    sup->pid = 0;
    free(sup->base_url);
    sup->base_url = NULL;
}

static void on_child_exit(struct loop *loop, int fd, unsigned events, void *ctx)
{
    (void)loop;
    (void)fd;
    (void)events;
    struct supervisor *sup = ctx;
    bool was_ready = sup->state == SUP_READY;
    drain_output(sup);
    char how[64];
    describe_exit(sup->pid, how, sizeof(how));
    log_info(sup->log, "supervisor", "llama-server pid %d %s", (int)sup->pid, how);
    cancel_probing(sup);
    loop_timer_cancel(sup->loop, sup->deadline_timer);
    forget_child(sup);

    char output[3 * OUTPUT_LINE_MAX];
    bool killed = sup->kill_reason[0] != '\0';
    recent_errors(sup, !killed, output, sizeof(output));
    set_error(sup, "%s%s%s", killed ? sup->kill_reason : how, *output ? ": " : "", output);
    schedule_restart(sup);
    if (was_ready && sup->events.on_down)
        sup->events.on_down(sup->ctx, sup->last_error);
}

static void on_startup_deadline(struct loop *loop, void *ctx)
{
    (void)loop;
    struct supervisor *sup = ctx;
    if (sup->state != SUP_STARTING)
        return;
    char reason[64];
    snprintf(reason, sizeof(reason), "not ready after %d s", sup->cfg->llama.startup_timeout_s);
    kill_child(sup, reason);
}

/* ---- spawning ---- */

static int make_api_key(struct supervisor *sup)
{
    errno = 0;
    if (random_hex(sup->api_key, API_KEY_BYTES) != 0) {
        set_error(sup, "getrandom failed: %s", errno ? strerror(errno) : "short read");
        return -1;
    }
    return 0;
}

/* Fork and exec llama-server; watch its output and exit. On failure sets
 * last_error and returns -1 (no child). */
/* Start watching a forked child; on failure kills it. 0 or -1 (error set). */
static int watch_child(struct supervisor *sup, pid_t pid, int out_fd)
{
    int pidfd = pidfd_open(pid, 0);
    if (pidfd < 0 || loop_watch(sup->loop, pidfd, LOOP_READ, on_child_exit, sup) != 0 ||
        loop_watch(sup->loop, out_fd, LOOP_READ, on_output, sup) != 0) {
        set_error(sup, "cannot watch llama-server pid %d: %s", (int)pid, strerror(errno));
        if (pidfd >= 0) {
            loop_unwatch(sup->loop, pidfd);
            close(pidfd);
        }
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return -1;
    }
    sup->pid = pid;
    sup->pidfd = pidfd;
    sup->out_fd = out_fd;
    return 0;
}

/* Fork and exec llama-server; watch its output and exit. On failure sets
 * last_error and returns -1 (no child). */
static int spawn(struct supervisor *sup)
{
    struct llama_child_cmd cmd;
    int out_fd = -1;
    pid_t pid = -1;
    if (make_api_key(sup) != 0)
        return -1;
    char why[256];
    if (llama_child_cmd_init(&cmd, sup->cfg, sup->api_key, sup->log, why, sizeof(why)) != 0) {
        set_error(sup, "%s", why);
    } else {
        const char *what = "";
        pid = llama_child_spawn(&cmd, &out_fd, &what);
        if (pid < 0)
            set_error(sup, "%s failed: %s", what, strerror(errno));
    }
    if (pid < 0 || watch_child(sup, pid, out_fd) != 0) {
        if (out_fd >= 0)
            close(out_fd);
        llama_child_cmd_free(&cmd);
        log_error(sup->log, "supervisor", "cannot start llama-server: %s", sup->last_error);
        return -1;
    }
    sup->spawned_ms = clock_mono_ms();
    sup->kill_reason[0] = '\0';
    sup->partial_len = 0;
    sup->n_lines = 0;
    sup->state = SUP_STARTING;
    if (!sup->last_error[0])
        set_error(sup, "starting (pid %d)", (int)pid);
    set_timer(sup, &sup->deadline_timer, (int64_t)sup->cfg->llama.startup_timeout_s * 1000,
              on_startup_deadline);
    char cmdline[2048];
    llama_child_describe(&cmd, cmdline, sizeof(cmdline));
    log_info(sup->log, "supervisor", "started llama-server pid %d: %s", (int)pid, cmdline);
    llama_child_cmd_free(&cmd);
    return 0;
}

static void spawn_or_retry(struct supervisor *sup)
{
    if (spawn(sup) != 0)
        schedule_restart(sup);
}

/* ---- public ---- */

struct supervisor *supervisor_new(struct loop *loop, struct http *http,
                                  const struct llmq_config *cfg, const struct logger *log,
                                  const struct supervisor_events *events, void *ctx)
{
    struct supervisor *sup = calloc(1, sizeof(*sup));
    if (!sup)
        return NULL;
    sup->loop = loop;
    sup->http = http;
    sup->cfg = cfg;
    sup->log = log;
    if (events)
        sup->events = *events;
    sup->ctx = ctx;
    sup->state = SUP_STOPPED;
    sup->external = cfg->llama.url && *cfg->llama.url;
    sup->pidfd = -1;
    sup->out_fd = -1;
    sup->backoff_ms = BACKOFF_FIRST_MS;
    return sup;
}

int supervisor_start(struct supervisor *sup)
{
    if (sup->external) {
        const char *url = sup->cfg->llama.url;
        size_t len = strlen(url);
        while (len > 0 && url[len - 1] == '/')
            len--;
        free(sup->base_url);
        sup->base_url = strndup(url, len);
        if (!sup->base_url)
            return -1;
        sup->state = SUP_STARTING;
        set_error(sup, "waiting for %s/health", sup->base_url);
        log_info(sup->log, "supervisor", "using the external llama-server at %s", sup->base_url);
        schedule_probe(sup, 0);
        return 0;
    }
    if (!sup->cfg->llama.binary || !sup->cfg->llama.model) {
        set_error(sup, "llama.binary and llama.model must be set");
        log_error(sup->log, "supervisor", "%s", sup->last_error);
        return -1;
    }
    return spawn(sup);
}

/* Wait up to `ms` (-1: forever) for the pidfd to say the child exited. */
static bool wait_exit(int pidfd, int ms)
{
    int64_t deadline = clock_mono_ms() + ms;
    for (;;) {
        int left = ms < 0 ? -1 : (int)(deadline - clock_mono_ms());
        struct pollfd p = {.fd = pidfd, .events = POLLIN};
        int r = poll(&p, 1, ms < 0 ? -1 : (left > 0 ? left : 0));
        if (r > 0)
            return true;
        if (r == 0 || errno != EINTR)
            return false;
    }
}

void supervisor_stop(struct supervisor *sup, int grace_ms)
{
    if (sup->state == SUP_STOPPED)
        return;
    sup->state = SUP_STOPPED;
    cancel_probing(sup);
    loop_timer_cancel(sup->loop, sup->deadline_timer);
    loop_timer_cancel(sup->loop, sup->restart_timer);
    if (sup->pid > 0) {
        pid_t pid = sup->pid;
        pidfd_send_signal(sup->pidfd, SIGTERM, NULL, 0);
        if (!wait_exit(sup->pidfd, grace_ms)) {
            log_warn(sup->log, "supervisor",
                     "llama-server pid %d still running %d ms after SIGTERM; killing it", (int)pid,
                     grace_ms);
            pidfd_send_signal(sup->pidfd, SIGKILL, NULL, 0);
            wait_exit(sup->pidfd, -1);
        }
        drain_output(sup);
        char how[64];
        describe_exit(pid, how, sizeof(how));
        log_info(sup->log, "supervisor", "llama-server pid %d stopped: %s", (int)pid, how);
        forget_child(sup);
    }
    free(sup->base_url);
    sup->base_url = NULL;
    set_error(sup, "stopped");
}

void supervisor_free(struct supervisor *sup)
{
    if (!sup)
        return;
    supervisor_stop(sup, 0);
    free(sup);
}

enum supervisor_state supervisor_state(const struct supervisor *sup)
{
    return sup->state;
}

const char *supervisor_base_url(const struct supervisor *sup)
{
    return sup->base_url;
}

const char *supervisor_api_key(const struct supervisor *sup)
{
    return sup->external ? sup->cfg->llama.api_key : sup->api_key;
}

const char *supervisor_last_error(const struct supervisor *sup)
{
    return sup->last_error;
}

unsigned supervisor_restarts(const struct supervisor *sup)
{
    return sup->restarts;
}
