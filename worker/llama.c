/* llama.c — one streamed generation against llama-server: request out, SSE events in,
 * text pieces to on_text and one outcome to on_done.
 *
 * The outcome is decided when the HTTP transfer ends, not at the final event: the chat
 * stream's usage chunk and [DONE] follow its finish_reason, and /completion closes the
 * stream right after its final event, so waiting costs nothing and sees everything. */
#include "llama.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "http.h"
#include "sse.h"

/* Enough for any error body llama-server sends; the rest is dropped. */
#define ERROR_BODY_MAX ((size_t)16 * 1024)

struct llama_run {
    struct http_req *req;
    struct llama_run_events events;
    void *ctx;
    enum llama_endpoint ep;
    struct sse_parser sse;
    long status;

    struct buf error_body; /* a non-200 response's body, capped */

    /* What the stream said so far. */
    bool final_seen;
    char finish[16];
    int64_t prompt_tokens, completion_tokens;
    bool failed; /* an error event or a bad stream: failure holds the message */
    char failure[256];

    /* llama_run_cancel() was called from inside one of our callbacks: the run is freed
     * once that callback unwinds. */
    bool in_callback;
    bool cancelled;
};

static void run_free(struct llama_run *run)
{
    sse_free(&run->sse);
    buf_free(&run->error_body);
    free(run);
}

static void fail_run(struct llama_run *run, const char *why)
{
    if (run->failed)
        return; /* keep the first reason */
    run->failed = true;
    snprintf(run->failure, sizeof(run->failure), "%s", why);
}

/* One SSE event from llama-server. Non-zero stops the stream. */
static int on_event(void *ctx, const char *event, const char *data, size_t len)
{
    (void)event; /* these endpoints send unnamed events only */
    struct llama_run *run = ctx;
    struct llama_event ev;
    char msg[256];
    int rc = llama_parse_event(run->ep, data, len, &ev, msg, sizeof(msg));
    if (rc < 0) {
        fail_run(run, msg);
        return 1;
    }
    if (rc == 1)
        return 0; /* [DONE]: the transfer ends next */
    if (ev.prompt_tokens >= 0)
        run->prompt_tokens = ev.prompt_tokens;
    if (ev.completion_tokens >= 0)
        run->completion_tokens = ev.completion_tokens;
    if (ev.final) {
        run->final_seen = true;
        memcpy(run->finish, ev.finish, sizeof(run->finish));
    }
    if (ev.n_logprobs > 0 && run->events.on_logprobs)
        run->events.on_logprobs(run->ctx, ev.logprobs, ev.logprobs_len, ev.n_logprobs);
    if (ev.text_len > 0 && run->events.on_text && !run->cancelled)
        run->events.on_text(run->ctx, ev.text, ev.text_len);
    llama_event_clear(&ev);
    return run->cancelled ? 1 : 0;
}

static void on_status(void *ctx, long status)
{
    struct llama_run *run = ctx;
    run->status = status;
}

static int on_data(void *ctx, const char *buf, size_t len)
{
    struct llama_run *run = ctx;
    if (run->status != 200) {
        buf_append_some(&run->error_body, buf, len); /* what is over the cap is dropped */
        return 0;
    }
    run->in_callback = true;
    int rc = sse_feed(&run->sse, buf, len);
    run->in_callback = false;
    if (run->cancelled) {
        run_free(run); /* http_cancel() already ran: no callback comes for it any more */
        return 1;
    }
    if (rc < 0)
        fail_run(run, "llama-server sent an SSE event over the size limit");
    return rc != 0;
}

static void on_done(void *ctx, const struct http_result *result)
{
    struct llama_run *run = ctx;
    struct llama_outcome out = {.code = LLMQ_OK, .prompt_tokens = -1, .completion_tokens = -1};

    if (result->status == 200 && result->curl_code == 0 && !run->failed) {
        /* A last event without its blank line still counts. */
        run->in_callback = true;
        int rc = sse_finish(&run->sse);
        run->in_callback = false;
        if (run->cancelled) {
            run_free(run);
            return;
        }
        if (rc < 0)
            fail_run(run, "llama-server sent an SSE event over the size limit");
    }

    if (run->failed) {
        out.code = LLMQ_BACKEND_ERROR;
        snprintf(out.message, sizeof(out.message), "%s", run->failure);
    } else if (result->status != 0 && result->status != 200) {
        out.code = llama_parse_error(result->status, run->error_body.data, run->error_body.len,
                                     out.message, sizeof(out.message));
    } else if (run->final_seen) {
        /* A break after the final event loses nothing. */
        memcpy(out.finish, run->finish, sizeof(out.finish));
        out.prompt_tokens = run->prompt_tokens;
        out.completion_tokens = run->completion_tokens;
    } else if (result->curl_code != 0) {
        /* Refused, reset, empty reply, cut mid-stream: llama-server is likely gone. */
        out.code = LLMQ_BACKEND_FAILED;
        out.backend_lost = true;
        snprintf(out.message, sizeof(out.message), "llama-server connection failed: %s",
                 result->error ? result->error : "transfer error");
    } else {
        out.code = LLMQ_BACKEND_ERROR;
        snprintf(out.message, sizeof(out.message),
                 "llama-server ended the stream without a final event");
    }
    if (run->events.on_done)
        run->events.on_done(run->ctx, &out);
    run_free(run);
}

/* base_url + path, without doubling the slash between them. */
static char *join_url(const char *base, const char *path)
{
    size_t n = strlen(base);
    while (n > 0 && base[n - 1] == '/')
        n--;
    size_t len = n + strlen(path) + 1;
    char *url = malloc(len);
    if (url)
        snprintf(url, len, "%.*s%s", (int)n, base, path);
    return url;
}

struct llama_run *llama_run_start(struct http *http, const struct llama_target *target,
                                  const struct job *job, const struct llama_caps *caps,
                                  const struct llama_run_events *events, void *ctx)
{
    struct llama_run *run = calloc(1, sizeof(*run));
    if (!run)
        return NULL;
    run->events = *events;
    run->ctx = ctx;
    run->ep = llama_endpoint_for(job);
    run->prompt_tokens = -1;
    run->completion_tokens = -1;
    buf_init(&run->error_body, ERROR_BODY_MAX);
    sse_init(&run->sse, on_event, run);

    char *body = llama_request_json(job, caps);
    char *url = join_url(target->base_url, llama_endpoint_path(run->ep));
    if (body && url) {
        struct http_req_opts opts = {
            .method = "POST",
            .url = url,
            .body = body,
            .body_len = strlen(body),
            .bearer = target->api_key,
        };
        static const struct http_callbacks callbacks = {on_status, on_data, on_done};
        run->req = http_start(http, &opts, &callbacks, run);
    }
    free(body);
    free(url);
    if (!run->req) {
        run_free(run);
        return NULL;
    }
    return run;
}

void llama_run_cancel(struct http *http, struct llama_run *run)
{
    if (!run)
        return;
    http_cancel(http, run->req);
    if (run->in_callback)
        run->cancelled = true; /* freed when the callback unwinds */
    else
        run_free(run);
}
