/* cli_batch.c — `llmq batch`: read JSON-lines jobs, keep at most N of them
 * outstanding (sent, no terminal reply yet), match terminal replies to
 * them by id, time them out, and write each result as it comes.
 *
 * One thread: the loop tops the window up from the input, serves the
 * producer's acks, reads one reply and expires overdue jobs. Chunk replies
 * are skipped by their llmq-type header without decoding. A job's first
 * terminal reply is its result; later ones (a rerun) are ignored. */
#include "cli_batch.h"

#include "clock.h"
#include "random_id.h"

#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_cancel.h"
#include "cli_job.h"
#include "cli_kafka.h"
#include "cli_results.h"
#include "cli_steer.h"
#include "reply_decode.h"

#define BATCH_DEFAULT_CONCURRENCY 64
#define BATCH_MAX_CONCURRENCY     10000
#define BATCH_DEFAULT_TIMEOUT_S   300.0
#define BATCH_POLL_MS             50
#define BATCH_DRAIN_MAX           1024 /* replies read in a row before the loop goes round */
#define BATCH_PROGRESS_MS         250
#define BATCH_CANCEL_WAIT_MS      5000 /* at most this long for the cancels' acks at Ctrl-C */
#define BATCH_CANCEL_REASON       "llmq batch was interrupted"

enum {
    OPT_RETRY_FAILED = CLI_OPT_FIRST_LOCAL,
    OPT_TIMEOUT,
};

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: llmq batch [options] [INPUT.jsonl]\n"
        "\n"
        "Submit the jobs of INPUT (standard input when absent or \"-\"): one JSON object\n"
        "per line, in the shape of a v1 job (prompt or messages, optional fields).\n"
        "\"v\" and \"reply_to\" are filled in, and \"id\" when absent (batch-LINE-TAG).\n"
        "Each line is checked as a worker would; a bad one is reported with its line\n"
        "number and not sent. One result line per job goes to the output, in the\n"
        "order the jobs finish:\n"
        "  "
        "{\"line\",\"id\",\"status\":\"done\",\"text\",\"finish\",\"usage\",\"run\",\"worker\","
        "\"meta\"}\n"
        "  {\"line\",\"id\",\"status\":\"error\",\"code\",\"message\",\"retryable\",\"run\",...}\n"
        "  {\"line\",\"id\",\"status\":\"timeout\",\"message\"}\n"
        "  {\"line\",\"id\",\"status\":\"invalid\",\"code\",\"message\"}\n"
        "Progress goes to stderr (a live line when it is a terminal).\n"
        "\n"
        "SIGINT (Ctrl-C) or SIGTERM stops it at once: each job sent and not finished is\n"
        "cancelled (a cancel on the control topic; its result line says\n"
        "  {\"line\",\"id\",\"status\":\"cancelled\",\"message\"}),\n"
        "the cancels' acks are awaited (at most 5 s), and lines not sent yet have no\n"
        "result. --retry-failed with the results resumes: it sends the cancelled jobs\n"
        "again under new ids (a cancelled id never runs again; a line that gives its\n"
        "own id must be given a new one) and the lines without a result.\n"
        "\n"
        "  -c, --concurrency N   at most N jobs outstanding (default 64, at most 10000)\n"
        "  -o, --output FILE     the results (default standard output)\n"
        "      --timeout S       a job without a terminal reply S seconds after it was\n"
        "                        sent ends as timeout (default 300)\n"
        "      --retry-failed PREVIOUS.jsonl\n"
        "                        with the same INPUT: send again, under the same ids,\n"
        "                        only the lines whose result in PREVIOUS is a timeout,\n"
        "                        an invalid line (checked again), or an error that is\n"
        "                        retryable or expired, plus the lines PREVIOUS has no\n"
        "                        result for (an interrupted batch). The other results\n"
        "                        are copied to the output first, so it is complete.\n"
        "Steering, for every line that does not give the field itself:\n"
        "%s"
        "  -h, --help            this text\n"
        "\n"
        "%s"
        "\n"
        "Exit: 0 every job done, 1 some job not done, 2 usage, 4 Kafka failure (no\n"
        "broker within --connect-timeout), 130 SIGINT, 143 SIGTERM (finished results\n"
        "are written, the rest cancelled; --retry-failed resumes).\n",
        cli_steer_help, cli_global_help);
}

struct slot {
    char *id; /* NULL: free */
    long line;
    uint64_t serial; /* names the job's delivery report */
    int64_t sent_ms;
};

/* Every id sent in this batch, with its line (a tsearch tree). */
struct seen_id {
    char *id;
    long line;
};

struct batch {
    struct cli_global *g;
    long concurrency;
    double timeout_s;
    const char *input_path, *output_path, *retry_path;
    struct cli_steer steer;

    FILE *in;
    char *text; /* the current input line */
    size_t text_cap;
    long line_no;
    bool eof;
    char tag[17];
    void *ids;
    struct cli_previous_set previous;

    FILE *out;
    struct slot *slots;
    long n_pending;
    uint64_t next_serial;
    struct cli_producer *producer;
    struct cli_follower *follower;

    size_t n_done, n_error, n_timeout, n_invalid, n_cancelled, n_carried;
    long long tokens;
    int64_t start_ms, progress_ms;
    bool tty;
};

static int option(void *ctx, int opt, const char *arg)
{
    struct batch *b = ctx;
    int64_t n;
    int steered = cli_steer_option(&b->steer, "batch", opt, arg);
    if (steered != 1)
        return steered;
    switch (opt) {
    case 'c':
        if (!cli_parse_int(arg, &n) || n < 1 || n > BATCH_MAX_CONCURRENCY) {
            fprintf(stderr, "llmq batch: --concurrency %s: must be 1..%d\n", arg,
                    BATCH_MAX_CONCURRENCY);
            return -1;
        }
        b->concurrency = (long)n;
        return 0;
    case 'o':
        b->output_path = arg;
        return 0;
    case OPT_TIMEOUT:
        if (!cli_parse_seconds(arg, &b->timeout_s)) {
            fprintf(stderr, "llmq batch: --timeout %s: must be seconds, > 0 and <= %d\n", arg,
                    CLI_MAX_TIMEOUT_S);
            return -1;
        }
        return 0;
    case OPT_RETRY_FAILED:
        b->retry_path = arg;
        return 0;
    default:
        return -1;
    }
}

/* Parse argv into b; returns -1 to go on, or the exit code. */
static int parse(struct batch *b, int argc, char **argv)
{
    static const struct option options[] = {
        CLI_STEER_OPTIONS,
        {"concurrency", required_argument, NULL, 'c'},
        {"output", required_argument, NULL, 'o'},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"retry-failed", required_argument, NULL, OPT_RETRY_FAILED},
        {NULL, 0, NULL, 0},
    };
    static const struct cli_command command = {"batch", "c:o:", options, usage, option};
    int rc = cli_parse_options(b->g, &command, b, argc, argv);
    if (rc != -1)
        return rc;
    if (argc - optind > 1)
        return cli_usage_error("batch", "one INPUT file at most");
    b->input_path = optind < argc ? argv[optind] : "-";
    return -1;
}

/* ---- results ------------------------------------------------------------ */

/* The live progress line (a terminal only); final: clear it. */
static void progress(struct batch *b, bool final)
{
    if (!b->tty)
        return;
    if (final) {
        fputs("\r\033[K", stderr);
        return;
    }
    int64_t now = clock_mono_ms();
    if (now - b->progress_ms < BATCH_PROGRESS_MS)
        return;
    b->progress_ms = now;
    double elapsed_s = (double)(now - b->start_ms) / 1000.0;
    fprintf(stderr, "\r\033[Kllmq batch: %zu done, %zu failed, %ld pending, %.0f tokens/s",
            b->n_done, b->n_error + b->n_timeout + b->n_invalid, b->n_pending,
            elapsed_s > 0 ? (double)b->tokens / elapsed_s : 0.0);
}

/* Write one result line and count it (takes the reference). */
static void record(struct batch *b, json_t *result)
{
    const char *status = json_string_value(json_object_get(result, "status"));
    if (!result || !status) {
        fprintf(stderr, "llmq batch: out of memory writing a result\n");
        b->n_error++;
        json_decref(result);
        return;
    }
    if (strcmp(status, "done") == 0)
        b->n_done++;
    else if (strcmp(status, "timeout") == 0)
        b->n_timeout++;
    else if (strcmp(status, "invalid") == 0)
        b->n_invalid++;
    else if (strcmp(status, "cancelled") == 0)
        b->n_cancelled++;
    else
        b->n_error++;
    if (json_dumpf(result, b->out, JSON_COMPACT) != 0 || fputc('\n', b->out) == EOF ||
        fflush(b->out) != 0)
        fprintf(stderr, "llmq batch: cannot write to %s\n", b->output_path);
    json_decref(result);
    progress(b, false);
}

static void report_invalid(struct batch *b, const char *id, const struct job_verdict *why)
{
    if (b->tty)
        fputs("\r\033[K", stderr);
    fprintf(stderr, "llmq batch: %s:%ld: invalid job (%s): %s\n",
            strcmp(b->input_path, "-") == 0 ? "stdin" : b->input_path, b->line_no,
            llmq_code_name(why->code), why->message);
    record(b, cli_result_invalid(b->line_no, id, why));
}

static struct slot *slot_by_id(struct batch *b, const char *id)
{
    for (long i = 0; i < b->concurrency; i++)
        if (b->slots[i].id && strcmp(b->slots[i].id, id) == 0)
            return &b->slots[i];
    return NULL;
}

static void slot_release(struct batch *b, struct slot *s)
{
    free(s->id);
    memset(s, 0, sizeof(*s));
    b->n_pending--;
}

/* ---- sending ------------------------------------------------------------ */

static int seen_compare(const void *a, const void *b)
{
    return strcmp(((const struct seen_id *)a)->id, ((const struct seen_id *)b)->id);
}

static void seen_free(void *node)
{
    struct seen_id *s = node;
    free(s->id);
    free(s);
}

/* Remember that `id` is sent from the current line; false (and a verdict)
 * when an earlier line used it. */
static bool claim_id(struct batch *b, const char *id, struct job_verdict *why)
{
    struct seen_id *s = calloc(1, sizeof(*s));
    struct seen_id **found = s && (s->id = strdup(id)) ? tsearch(s, &b->ids, seen_compare) : NULL;
    if (!found) {
        if (s)
            free(s->id);
        free(s);
        why->code = LLMQ_INTERNAL;
        snprintf(why->message, sizeof(why->message), "out of memory");
        return false;
    }
    if (*found == s) {
        s->line = b->line_no;
        return true;
    }
    why->code = LLMQ_INVALID_ID;
    snprintf(why->message, sizeof(why->message), "id: %.128s is also the id of line %ld", id,
             (*found)->line);
    seen_free(s);
    return false;
}

static void send_job(struct batch *b, const struct cli_job *job)
{
    struct slot *s = NULL;
    for (long i = 0; i < b->concurrency && !s; i++)
        if (!b->slots[i].id)
            s = &b->slots[i];
    if (!s) { /* callers send only below the concurrency limit */
        record(b, cli_result_undelivered(b->line_no, job->id, "no free slot"));
        return;
    }
    s->id = strdup(job->id);
    if (!s->id) {
        record(b, cli_result_undelivered(b->line_no, job->id, "out of memory"));
        return;
    }
    s->line = b->line_no;
    s->serial = ++b->next_serial;
    s->sent_ms = clock_mono_ms();
    b->n_pending++;
    const char *err = cli_producer_send(
        b->producer, cli_steer_topic(&b->steer, b->g), job->id, job->wire.data, job->wire.size,
        NULL,
        (void *)(uintptr_t)s->serial); // NOLINT(performance-no-int-to-ptr): a tag, not a pointer
    if (err) {
        record(b, cli_result_undelivered(s->line, s->id, err));
        slot_release(b, s);
    }
}

/* The id to give the current line's job when it has none: its id in
 * PREVIOUS, unless that one was cancelled. */
static const char *default_id(struct batch *b, const struct cli_previous *prev, char *buf,
                              size_t len)
{
    if (prev && prev->id && !prev->cancelled)
        return prev->id;
    snprintf(buf, len, "batch-%ld-%s", b->line_no, b->tag);
    return buf;
}

/* Whether a line of a retry may be sent under the id it gives: the id of
 * its previous result, unless that job was cancelled (then only another). */
static bool id_reusable(const struct batch *b, const char *given, const struct cli_previous *prev,
                        struct job_verdict *why)
{
    bool same = strcmp(given, prev->id) == 0;
    if (prev->cancelled && same)
        snprintf(why->message, sizeof(why->message),
                 "id: %.100s was cancelled, and workers remember cancelled ids (a day by "
                 "default): give the line a new id to run it again",
                 given);
    else if (!prev->cancelled && !same)
        snprintf(why->message, sizeof(why->message),
                 "id: %.100s here but %.100s in %s: is this the same input?", given, prev->id,
                 b->retry_path);
    else
        return true;
    why->code = LLMQ_INVALID_ID;
    return false;
}

/* Check and send the job of the current line (or report it invalid). */
static void handle_line(struct batch *b, size_t len, const struct cli_previous *prev)
{
    struct job_verdict why = {LLMQ_OK, ""};
    json_error_t jerr;
    json_t *obj = json_loadb(b->text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!obj) {
        why.code = LLMQ_MALFORMED;
        snprintf(why.message, sizeof(why.message), "not JSON: %s (column %d)", jerr.text,
                 jerr.column);
        report_invalid(b, NULL, &why);
        return;
    }
    const char *given = json_string_value(json_object_get(obj, "id"));
    if (given && prev && prev->id && !id_reusable(b, given, prev, &why)) {
        report_invalid(b, given, &why);
        json_decref(obj);
        return;
    }
    char id_buf[64];
    if (cli_steer_apply(&b->steer, obj) != 0) {
        why.code = LLMQ_INTERNAL;
        snprintf(why.message, sizeof(why.message), "out of memory");
        report_invalid(b, given, &why);
        json_decref(obj);
        return;
    }
    struct cli_job job;
    if (cli_job_build(obj, default_id(b, prev, id_buf, sizeof(id_buf)), b->g->reply_topic, &job,
                      &why) != LLMQ_OK) {
        report_invalid(b, json_string_value(json_object_get(obj, "id")), &why);
    } else {
        if (claim_id(b, job.id, &why))
            send_job(b, &job);
        else
            report_invalid(b, job.id, &why);
        cli_job_free(&job);
    }
    json_decref(obj);
}

/* Read input lines until one job is handled or the input ends. */
static void read_next(struct batch *b)
{
    ssize_t len;
    while ((len = getline(&b->text, &b->text_cap, b->in)) >= 0) {
        b->line_no++;
        if (strspn(b->text, " \t\r\n") == (size_t)len)
            continue;
        const struct cli_previous *prev =
            b->retry_path ? cli_previous_find(&b->previous, b->line_no) : NULL;
        if (prev && !prev->retry)
            continue; /* its result was carried over */
        handle_line(b, (size_t)len, prev);
        return;
    }
    if (ferror(b->in))
        fprintf(stderr, "llmq batch: cannot read %s\n", b->input_path);
    b->eof = true;
}

/* ---- replies ------------------------------------------------------------ */

static void on_delivery(void *ctx, void *msg_opaque, const char *error)
{
    struct batch *b = ctx;
    uint64_t serial = (uintptr_t)msg_opaque;
    if (!error)
        return;
    for (long i = 0; i < b->concurrency; i++) {
        struct slot *s = &b->slots[i];
        if (s->id && s->serial == serial) {
            char why[512];
            const char *last = cli_producer_last_error(b->producer);
            snprintf(why, sizeof(why), "not acknowledged by Kafka: %s%s%s", error,
                     last[0] ? "; last error: " : "", last);
            record(b, cli_result_undelivered(s->line, s->id, why));
            slot_release(b, s);
            return;
        }
    }
}

static void on_reply(struct batch *b, const struct cli_message *msg)
{
    char type[16];
    const char *t = cli_kafka_header(msg, "llmq-type", type, sizeof(type));
    if (t && strcmp(t, "chunk") == 0)
        return;
    struct reply_msg r;
    char err[256];
    if (reply_decode(msg->payload, msg->len, &r, err, sizeof(err)) != 0)
        return;
    struct slot *s = r.type != REPLY_CHUNK ? slot_by_id(b, r.id) : NULL;
    if (s) {
        if (r.type == REPLY_DONE)
            b->tokens += r.usage.completion_tokens;
        record(b, cli_result_reply(s->line, &r));
        slot_release(b, s);
    }
    reply_msg_free(&r);
}

static void expire(struct batch *b)
{
    int64_t now = clock_mono_ms();
    for (long i = 0; i < b->concurrency; i++) {
        struct slot *s = &b->slots[i];
        if (s->id && now - s->sent_ms >= (int64_t)(b->timeout_s * 1000)) {
            record(b, cli_result_timeout(s->line, s->id, b->timeout_s));
            slot_release(b, s);
        }
    }
}

/* ---- the run ------------------------------------------------------------ */

static int open_files(struct batch *b)
{
    char err[512];
    if (b->retry_path && cli_previous_load(b->retry_path, &b->previous, err, sizeof(err)) != 0) {
        fprintf(stderr, "llmq batch: --retry-failed %s\n", err);
        return CLI_EXIT_USAGE;
    }
    b->in = strcmp(b->input_path, "-") == 0 ? stdin : fopen(b->input_path, "r");
    if (!b->in) {
        fprintf(stderr, "llmq batch: cannot open %s\n", b->input_path);
        return CLI_EXIT_USAGE;
    }
    if (cli_kafka_check_props(b->g, err, sizeof(err)) != 0) {
        fprintf(stderr, "llmq batch: %s\n", err);
        return CLI_EXIT_USAGE;
    }
    return -1;
}

/* Opened last, once Kafka answered: the output may be the PREVIOUS file,
 * which is only overwritten when the retry can run. */
static int open_output(struct batch *b)
{
    b->out = b->output_path ? fopen(b->output_path, "w") : stdout;
    if (!b->out) {
        fprintf(stderr, "llmq batch: cannot write %s\n", b->output_path);
        return CLI_EXIT_USAGE;
    }
    if (!b->output_path)
        b->output_path = "stdout";
    return -1;
}

static int open_kafka(struct batch *b)
{
    char err[1024];
    b->slots = calloc((size_t)b->concurrency, sizeof(*b->slots));
    if (!b->slots || random_hex(b->tag, 8) != 0) {
        fprintf(stderr, "llmq batch: out of memory or random numbers\n");
        return CLI_EXIT_FAILED;
    }
    /* Follow first: the end offsets are taken before any job exists. */
    b->follower = cli_follower_new(b->g, b->g->reply_topic, false, err, sizeof(err));
    if (b->follower)
        b->producer =
            cli_producer_new(b->g, (int)(b->timeout_s * 1000), on_delivery, b, err, sizeof(err));
    return b->producer ? -1 : cli_kafka_failed(b->g, "batch", err);
}

/* SIGINT / SIGTERM: cancel each job sent and not finished (its result:
 * cancelled), wait a little for the acks, and give the signal's exit code. */
static int interrupt(struct batch *b)
{
    char err[256];
    size_t cancelled = b->n_cancelled;
    for (long i = 0; i < b->concurrency; i++) {
        struct slot *s = &b->slots[i];
        if (!s->id)
            continue;
        if (cli_cancel_send(b->producer, b->g->control_topic, s->id, NULL, BATCH_CANCEL_REASON,
                            NULL, err, sizeof(err)) == 0)
            record(b, cli_result_cancelled(s->line, s->id,
                                           BATCH_CANCEL_REASON ": the job was cancelled"));
        else
            fprintf(stderr, "llmq batch: the cancel of %s could not be sent: %s\n", s->id, err);
        slot_release(b, s);
    }
    int wait_ms = cli_connect_timeout_ms(b->g);
    int64_t until =
        clock_mono_ms() + (wait_ms < BATCH_CANCEL_WAIT_MS ? wait_ms : BATCH_CANCEL_WAIT_MS);
    while (cli_producer_pending(b->producer) > 0 && clock_mono_ms() < until)
        cli_producer_poll(b->producer, BATCH_POLL_MS);
    progress(b, true);
    fprintf(stderr, "llmq batch: interrupted: %zu job(s) cancelled on %s%s\n",
            b->n_cancelled - cancelled, b->g->control_topic,
            cli_producer_pending(b->producer) > 0 ? " (not all acknowledged by Kafka)" : "");
    return cli_stop_exit(b->g);
}

static int run(struct batch *b)
{
    b->start_ms = clock_mono_ms();
    for (size_t i = 0; i < b->previous.n; i++) {
        if (!b->previous.items[i].retry) {
            record(b, json_incref(b->previous.items[i].result));
            b->n_carried++;
        }
    }
    while (!b->eof || b->n_pending > 0) {
        if (cli_stop_requested(b->g))
            return interrupt(b);
        while (!b->eof && b->n_pending < b->concurrency)
            read_next(b);
        cli_producer_poll(b->producer, 0);
        /* Wait for one reply, then take what else is there (chunks come in floods). */
        struct cli_message msg;
        bool got = cli_follower_poll(b->follower, BATCH_POLL_MS, &msg);
        for (int n = 0; got && n < BATCH_DRAIN_MAX; n++) {
            on_reply(b, &msg);
            cli_message_free(&msg);
            got = n + 1 < BATCH_DRAIN_MAX && cli_follower_poll(b->follower, 0, &msg);
        }
        expire(b);
        progress(b, false);
    }
    size_t failed = b->n_error + b->n_timeout + b->n_invalid;
    return failed ? CLI_EXIT_FAILED : CLI_EXIT_OK;
}

static void summary(const struct batch *b)
{
    double elapsed_s = (double)(clock_mono_ms() - b->start_ms) / 1000.0;
    size_t total = b->n_done + b->n_error + b->n_timeout + b->n_invalid + b->n_cancelled;
    fprintf(stderr, "llmq batch: %zu job(s): %zu done, %zu error, %zu timeout, %zu invalid", total,
            b->n_done, b->n_error, b->n_timeout, b->n_invalid);
    if (b->n_cancelled)
        fprintf(stderr, ", %zu cancelled", b->n_cancelled);
    if (b->n_carried)
        fprintf(stderr, " (%zu carried over from %s)", b->n_carried, b->retry_path);
    if (b->n_pending)
        fprintf(stderr, "; %ld left without a result", b->n_pending);
    fprintf(stderr, "; %lld tokens in %.1f s (%.0f tokens/s)\n", b->tokens, elapsed_s,
            elapsed_s > 0 ? (double)b->tokens / elapsed_s : 0.0);
}

static void batch_free(struct batch *b)
{
    for (long i = 0; b->slots && i < b->concurrency; i++)
        free(b->slots[i].id);
    free(b->slots);
    cli_producer_free(b->producer);
    cli_follower_free(b->follower);
    tdestroy(b->ids, seen_free);
    cli_previous_free(&b->previous);
    free(b->text);
    cli_steer_free(&b->steer);
    if (b->in && b->in != stdin)
        fclose(b->in);
    if (b->out && b->out != stdout)
        fclose(b->out);
}

int cli_batch(struct cli_global *g, int argc, char **argv)
{
    struct batch b = {.g = g,
                      .concurrency = BATCH_DEFAULT_CONCURRENCY,
                      .timeout_s = BATCH_DEFAULT_TIMEOUT_S,
                      .tty = isatty(STDERR_FILENO)};
    int rc = parse(&b, argc, argv);
    if (rc == -1)
        rc = open_files(&b);
    if (rc == -1)
        rc = open_kafka(&b);
    if (rc == -1)
        rc = open_output(&b);
    if (rc == -1) {
        rc = run(&b);
        progress(&b, true);
        summary(&b);
    }
    batch_free(&b);
    return rc;
}
