/* llama_child.c — the llama-server child: its command line from the
 * config, an environment without LLAMA_ARG_* and pinned to llama.gpu, and
 * fork + exec with its output on a pipe. */
#include "llama_child.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/uio.h>
#include <unistd.h>

extern char **environ;

/* In the forked child: never returns. Only async-signal-safe calls: the
 * worker may have other threads (librdkafka) holding locks. PDEATHSIG
 * follows the thread that forked: spawns come from the loop thread, which
 * lives as long as the worker. */
static void exec_child(char *const argv[], char *const envp[], int out_fd, pid_t parent)
{
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
        _exit(127);
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    for (int sig = 1; sig < NSIG; sig++)
        sigaction(sig, &dfl, NULL); /* SIGKILL, SIGSTOP and reserved ones fail: fine */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    int null_fd = open("/dev/null", O_RDONLY);
    if (null_fd < 0 || dup2(null_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(out_fd, 2) < 0)
        _exit(127);
    close_range(3, ~0U, 0);
    execvpe(argv[0], argv, envp);
    char *why = strerror(errno);
    struct iovec msg[] = {
        {.iov_base = (char *)"cannot run ", .iov_len = 11},
        {.iov_base = argv[0], .iov_len = strlen(argv[0])},
        {.iov_base = (char *)": ", .iov_len = 2},
        {.iov_base = why, .iov_len = strlen(why)},
        {.iov_base = (char *)"\n", .iov_len = 1},
    };
    if (writev(2, msg, sizeof(msg) / sizeof(msg[0])) < 0)
        _exit(126);
    _exit(127);
}

/* The environment without LLAMA_ARG_*, LLAMA_API_KEY and LLMQ_* (and, when
 * pinning, without the inherited GPU variables), plus the variables that pin
 * llama.gpu's card (gpu.h: N counts within the lists the worker inherited)
 * and the API key. c->gpu_env and c->api_key_env hold the added strings; the
 * rest points into environ. NULL with the reason in err when llama.gpu does
 * not fit those lists or memory runs out. */
static char **child_env(struct llama_child_cmd *c, int gpu, const struct logger *log, char *err,
                        size_t err_len)
{
    struct gpu_visible vis;
    struct gpu_target target;
    gpu_visible_from_environ(&vis);
    if (gpu_target_resolve(gpu, &vis, &target, err, err_len) != 0)
        return NULL;
    size_t n = 0;
    while (environ[n])
        n++;
    char **envp = calloc(n + GPU_CHILD_ENV + 2, sizeof(*envp));
    if (!envp) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    size_t k = 0;
    envp[k++] = c->api_key_env;
    for (size_t i = 0; i < n; i++) {
        const char *e = environ[i];
        if (strncmp(e, LLAMA_CHILD_KEY_ENV "=", sizeof(LLAMA_CHILD_KEY_ENV)) == 0 ||
            strncmp(e, "LLMQ_", 5) == 0)
            continue; /* the worker's own key instead; the worker's settings and secrets */
        if (strncmp(e, "LLAMA_ARG_", 10) == 0) {
            log_info(log, "supervisor", "not passing %.*s to llama-server", (int)strcspn(e, "="),
                     e);
            continue;
        }
        if (gpu < 0 || !gpu_child_env_replaces(e))
            envp[k++] = environ[i];
    }
    if (gpu >= 0) {
        gpu_target_child_env(&target, c->gpu_env);
        for (size_t g = 0; g < GPU_CHILD_ENV; g++)
            envp[k++] = c->gpu_env[g];
    }
    return envp;
}

int llama_child_cmd_init(struct llama_child_cmd *c, const struct llmq_config *cfg,
                         const char *api_key, const struct logger *log, char *err, size_t err_len)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->api_key_env, sizeof(c->api_key_env), "%s=%s", LLAMA_CHILD_KEY_ENV, api_key);
    snprintf(c->slots, sizeof(c->slots), "%d", cfg->llama.slots);
    snprintf(c->context, sizeof(c->context), "%d", cfg->llama.context);
    snprintf(c->layers, sizeof(c->layers), "%d", cfg->llama.gpu_layers);
    /* clang-format off */
    char *fixed[] = {
        cfg->llama.binary,
        "-m", cfg->llama.model,
        "--host", "127.0.0.1",
        "--port", "0",
        "--parallel", c->slots,
        "-c", c->context,
        "-ngl", c->layers,
    };
    /* clang-format on */
    size_t n_fixed = sizeof(fixed) / sizeof(fixed[0]);
    /* --lora PATH each, --lora-init-without-apply, and --cache-ram 0: the
     * server-wide prompt cache is keyed by tokens, not adapters, so a slot
     * could reuse a prompt computed under another job's adapters. */
    size_t n_lora = cfg->llama.n_lora ? 2 * cfg->llama.n_lora + 3 : 0;
    c->argv = calloc(n_fixed + n_lora + cfg->llama.n_extra_args + 1, sizeof(*c->argv));
    if (!c->argv)
        snprintf(err, err_len, "out of memory");
    c->envp = c->argv ? child_env(c, cfg->llama.gpu, log, err, err_len) : NULL;
    if (!c->argv || !c->envp) {
        llama_child_cmd_free(c);
        return -1;
    }
    memcpy(c->argv, fixed, sizeof(fixed));
    /* llama.lora: NAME=PATH each, loaded at scale 0; a job's lora applies them. */
    for (size_t i = 0; i < cfg->llama.n_lora; i++) {
        c->argv[n_fixed + 2 * i] = "--lora";
        c->argv[n_fixed + 2 * i + 1] = strchr(cfg->llama.lora[i], '=') + 1;
    }
    if (n_lora) {
        c->argv[n_fixed + n_lora - 3] = "--lora-init-without-apply";
        c->argv[n_fixed + n_lora - 2] = "--cache-ram";
        c->argv[n_fixed + n_lora - 1] = "0";
    }
    for (size_t i = 0; i < cfg->llama.n_extra_args; i++)
        c->argv[n_fixed + n_lora + i] = cfg->llama.extra_args[i];
    return 0;
}

void llama_child_cmd_free(struct llama_child_cmd *c)
{
    free(c->argv);
    free(c->envp);
    c->argv = NULL;
    c->envp = NULL;
}

pid_t llama_child_spawn(const struct llama_child_cmd *c, int *out_fd, const char **what)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        *what = "pipe";
        return -1;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        int saved = errno;
        close(fds[0]);
        close(fds[1]);
        errno = saved;
        *what = "fork";
        return -1;
    }
    if (pid == 0)
        exec_child(c->argv, c->envp, fds[1], parent);
    close(fds[1]);
    fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK);
    *out_fd = fds[0];
    return pid;
}

void llama_child_describe(const struct llama_child_cmd *c, char *out, size_t cap)
{
    size_t pos = 0;
    out[0] = '\0';
    for (size_t i = 0; c->argv[i] && pos < cap; i++)
        pos += (size_t)snprintf(out + pos, cap - pos, "%s%s", i ? " " : "", c->argv[i]);
}
