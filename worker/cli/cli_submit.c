/* cli_submit.c — `llmq submit`: build one job from flags, check it, start
 * following the reply topic, produce the job and wait for its ack, then
 * print its chunks live (cli_stream decides which) until its terminal reply. */
#include "cli_submit.h"

#include "clock.h"
#include "random_id.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_job.h"
#include "cli_kafka.h"
#include "cli_steer.h"
#include "cli_stream.h"
#include "reply_decode.h"

#define SUBMIT_DEFAULT_TIMEOUT_S 300.0
#define SUBMIT_POLL_MS           100

enum {
    OPT_CHAT = CLI_OPT_FIRST_LOCAL,
    OPT_SYSTEM,
    OPT_MAX_TOKENS,
    OPT_TEMPERATURE,
    OPT_SEED,
    OPT_STOP,
    OPT_JSON_SCHEMA,
    OPT_GRAMMAR,
    OPT_MODEL,
    OPT_NO_STREAM,
    OPT_ID,
    OPT_META,
    OPT_DEADLINE_MS,
    OPT_TTL_MS,
    OPT_TIMEOUT,
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: llmq submit [options] PROMPT\n"
            "\n"
            "Send one job and print its output on stdout as it is generated. PROMPT \"-\"\n"
            "reads standard input. When the job ends: a newline on stdout and a summary on\n"
            "stderr (finish, tokens, tokens/s, time to first token). If the job ran again\n"
            "after a crash, a notice on stderr and the final run's whole text follow.\n"
            "\n"
            "The job:\n"
            "      --chat              send PROMPT as a user message (chat template)\n"
            "      --system TEXT       a system message before it (implies --chat)\n"
            "      --max-tokens N      at most N tokens (the worker caps it)\n"
            "      --temperature X     sampling temperature (>= 0)\n"
            "      --seed N            sampling seed\n"
            "      --stop S            stop at S; repeatable (at most 16)\n"
            "      --json-schema FILE  constrain the output to the JSON Schema in FILE\n"
            "      --grammar FILE      constrain the output to the GBNF grammar in FILE\n"
            "      --model NAME        only a worker serving NAME may run it\n"
            "      --no-stream         no chunks: the text comes with the terminal reply\n"
            "      --id ID             the job id (default cli-<random>)\n"
            "      --meta KEY=VALUE    a meta entry (a string), echoed back; repeatable\n"
            "      --deadline-ms MS    expire at this Unix time in ms\n"
            "      --ttl-ms MS         expire MS milliseconds from now\n"
            "%s"
            "Waiting:\n"
            "      --timeout S         give up after S seconds (default 300)\n"
            "  -h, --help              this text\n"
            "\n"
            "%s"
            "\n"
            "Exit: 0 done, 1 error reply (code and message on stderr), 2 usage or invalid\n"
            "job, 3 no terminal reply within the timeout, 4 Kafka failure (no broker\n"
            "within --connect-timeout, or the job not acknowledged), 130 SIGINT, 143\n"
            "SIGTERM (at once; the job is not cancelled: 'llmq cancel ID' does that).\n",
            cli_steer_help, cli_global_help);
}

struct submit {
    json_t *job;      /* the fields given by flags */
    json_t *messages; /* --chat: the system message, if any; the user's comes last */
    struct cli_steer steer;
    bool chat;
    double timeout_s;
};

/* Set job[key] = value (taking the reference); value NULL: jansson refused it. */
static int set_field(struct submit *s, const char *key, json_t *value)
{
    if (!value || json_object_set_new(s->job, key, value) != 0) {
        fprintf(stderr, "llmq submit: %s: not UTF-8 text (or out of memory)\n", key);
        return -1;
    }
    return 0;
}

/* Append {role, content} to the chat messages (taking content). */
static int add_message(struct submit *s, const char *role, json_t *content)
{
    json_t *message = content ? json_pack("{s:s,s:o}", "role", role, "content", content) : NULL;
    if (!message || json_array_append_new(s->messages, message) != 0) {
        fprintf(stderr, "llmq submit: the %s message is not UTF-8 text\n", role);
        return -1;
    }
    return 0;
}

static int option_int(struct submit *s, const char *key, const char *flag, const char *arg)
{
    int64_t n;
    if (!cli_parse_int(arg, &n)) {
        fprintf(stderr, "llmq submit: %s %s: not an integer\n", flag, arg);
        return -1;
    }
    return set_field(s, key, json_integer(n));
}

static int option_file(struct submit *s, const char *key, const char *path, bool as_json)
{
    char err[512];
    if (as_json) {
        json_error_t jerr;
        json_t *schema = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
        if (!schema) {
            fprintf(stderr, "llmq submit: %s:%d: %s\n", path, jerr.line, jerr.text);
            return -1;
        }
        return set_field(s, key, schema);
    }
    size_t len;
    char *text = cli_read_file(path, &len, err, sizeof(err));
    if (!text) {
        fprintf(stderr, "llmq submit: %s\n", err);
        return -1;
    }
    int rc = set_field(s, key, json_stringn(text, len));
    free(text);
    return rc;
}

static int option_list_add(struct submit *s, const char *key, json_t *item)
{
    json_t *list = json_object_get(s->job, key);
    if (!list && set_field(s, key, list = json_array()) != 0) {
        json_decref(item);
        return -1;
    }
    if (!item || json_array_append_new(list, item) != 0) {
        fprintf(stderr, "llmq submit: %s: not UTF-8 text (or out of memory)\n", key);
        return -1;
    }
    return 0;
}

static int option_meta(struct submit *s, const char *arg)
{
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg) {
        fprintf(stderr, "llmq submit: --meta %s: expected KEY=VALUE\n", arg);
        return -1;
    }
    json_t *meta = json_object_get(s->job, "meta");
    if (!meta && set_field(s, "meta", meta = json_object()) != 0)
        return -1;
    return json_object_setn_new(meta, arg, (size_t)(eq - arg), json_string(eq + 1));
}

static int option_deadline(struct submit *s, const char *flag, const char *arg, bool relative)
{
    int64_t ms;
    if (!cli_parse_int(arg, &ms)) {
        fprintf(stderr, "llmq submit: %s %s: not an integer\n", flag, arg);
        return -1;
    }
    return set_field(s, "deadline_ms", json_integer(relative ? clock_wall_ms() + ms : ms));
}

static int option(void *ctx, int opt, const char *arg)
{
    struct submit *s = ctx;
    double x;
    int steered = cli_steer_option(&s->steer, "submit", opt, arg);
    if (steered != 1)
        return steered;
    switch (opt) {
    case OPT_CHAT:
        s->chat = true;
        return 0;
    case OPT_SYSTEM:
        s->chat = true;
        return add_message(s, "system", json_string(arg));
    case OPT_MAX_TOKENS:
        return option_int(s, "max_tokens", "--max-tokens", arg);
    case OPT_SEED:
        return option_int(s, "seed", "--seed", arg);
    case OPT_TEMPERATURE:
        if (!cli_parse_real(arg, &x)) {
            fprintf(stderr, "llmq submit: --temperature %s: not a number\n", arg);
            return -1;
        }
        return set_field(s, "temperature", json_real(x));
    case OPT_STOP:
        return option_list_add(s, "stop", json_string(arg));
    case OPT_JSON_SCHEMA:
        return option_file(s, "json_schema", arg, true);
    case OPT_GRAMMAR:
        return option_file(s, "grammar", arg, false);
    case OPT_MODEL:
        return set_field(s, "model", json_string(arg));
    case OPT_NO_STREAM:
        return set_field(s, "stream", json_false());
    case OPT_ID:
        return set_field(s, "id", json_string(arg));
    case OPT_META:
        return option_meta(s, arg);
    case OPT_DEADLINE_MS:
        return option_deadline(s, "--deadline-ms", arg, false);
    case OPT_TTL_MS:
        return option_deadline(s, "--ttl-ms", arg, true);
    case OPT_TIMEOUT:
        if (!cli_parse_seconds(arg, &s->timeout_s)) {
            fprintf(stderr, "llmq submit: --timeout %s: must be seconds, > 0 and <= %d\n", arg,
                    CLI_MAX_TIMEOUT_S);
            return -1;
        }
        return 0;
    default:
        return -1;
    }
}

/* The prompt into the job: as "prompt", or as the last chat message. */
static int set_prompt(struct submit *s, const char *arg)
{
    char err[512];
    size_t len = strlen(arg);
    char *stdin_text = NULL;
    if (strcmp(arg, "-") == 0) {
        stdin_text = cli_read_file("-", &len, err, sizeof(err));
        if (!stdin_text) {
            fprintf(stderr, "llmq submit: %s\n", err);
            return -1;
        }
        arg = stdin_text;
    }
    json_t *text = json_stringn(arg, len);
    free(stdin_text);
    if (!text) {
        fprintf(stderr, "llmq submit: the prompt is not UTF-8 text\n");
        return -1;
    }
    if (!s->chat)
        return set_field(s, "prompt", text);
    return add_message(s, "user", text) ? -1 : set_field(s, "messages", json_incref(s->messages));
}

/* Parse argv into s; returns -1 to go on, or the exit code. */
static int parse(struct cli_global *g, struct submit *s, int argc, char **argv)
{
    static const struct option options[] = {
        CLI_STEER_OPTIONS,
        {"chat", no_argument, NULL, OPT_CHAT},
        {"system", required_argument, NULL, OPT_SYSTEM},
        {"max-tokens", required_argument, NULL, OPT_MAX_TOKENS},
        {"temperature", required_argument, NULL, OPT_TEMPERATURE},
        {"seed", required_argument, NULL, OPT_SEED},
        {"stop", required_argument, NULL, OPT_STOP},
        {"json-schema", required_argument, NULL, OPT_JSON_SCHEMA},
        {"grammar", required_argument, NULL, OPT_GRAMMAR},
        {"model", required_argument, NULL, OPT_MODEL},
        {"no-stream", no_argument, NULL, OPT_NO_STREAM},
        {"id", required_argument, NULL, OPT_ID},
        {"meta", required_argument, NULL, OPT_META},
        {"deadline-ms", required_argument, NULL, OPT_DEADLINE_MS},
        {"ttl-ms", required_argument, NULL, OPT_TTL_MS},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {NULL, 0, NULL, 0},
    };
    static const struct cli_command command = {"submit", "", options, usage, option};
    int rc = cli_parse_options(g, &command, s, argc, argv);
    if (rc != -1)
        return rc;
    if (optind != argc - 1)
        return cli_usage_error("submit", "%s",
                               optind == argc ? "PROMPT is missing" : "one PROMPT only (quote it)");
    if (set_prompt(s, argv[optind]) != 0)
        return CLI_EXIT_USAGE;
    return -1;
}

struct ack {
    bool done;
    const char *err; /* NULL: acknowledged */
};

static void on_ack(void *ctx, void *msg_opaque, const char *error)
{
    struct ack *ack = ctx;
    (void)msg_opaque;
    ack->done = true;
    ack->err = error;
}

static int remaining_ms(int64_t deadline)
{
    int64_t left = deadline - clock_mono_ms();
    return left > 0 ? (int)left : 0;
}

/* Produce the job and wait for the broker's ack. Returns -1 when acked, or the exit code. */
static int produce(struct cli_global *g, const char *topic, const struct cli_job *job,
                   int64_t deadline)
{
    struct ack ack = {false, NULL};
    char err[512];
    struct cli_producer *p =
        cli_producer_new(g, remaining_ms(deadline), on_ack, &ack, err, sizeof(err));
    if (!p)
        return cli_kafka_failed(g, "submit", err);
    int rc = -1;
    const char *sent =
        cli_producer_send(p, topic, job->id, job->wire.data, job->wire.size, NULL, NULL);
    if (sent) {
        ack.done = true;
        ack.err = sent;
    }
    while (!ack.done && rc == -1) {
        cli_producer_poll(p, SUBMIT_POLL_MS);
        if (cli_stop_requested(g))
            rc = cli_stop_exit(g);
    }
    if (rc == -1 && ack.err) {
        const char *last = cli_producer_last_error(p);
        fprintf(stderr, "llmq submit: job %s not accepted by Kafka (%s): %s%s%s\n", job->id, topic,
                ack.err, last[0] ? "; last error: " : "", last);
        rc = CLI_EXIT_KAFKA;
    }
    cli_producer_free(p);
    return rc;
}

static void print_summary(const struct reply_msg *r)
{
    fprintf(stderr,
            "llmq: done (%s): %lld tokens (prompt %lld), %.1f tokens/s, ttft %.1f ms, "
            "queue %.1f ms; run %s on %s\n",
            r->finish, (long long)r->usage.completion_tokens, (long long)r->usage.prompt_tokens,
            r->timings.tokens_per_s, r->timings.ttft_ms, r->timings.queue_ms, r->run, r->worker);
}

/* Print the terminal reply's part; returns the exit code. */
static int finish(const struct cli_stream *stream, const struct reply_msg *r,
                  const struct cli_stream_step *step)
{
    if (step->restart) {
        fputc('\n', stdout);
        fflush(stdout);
        fprintf(stderr,
                "llmq: job %s ran again: run %s replaces the streamed run %s; "
                "its whole text follows\n",
                r->id, r->run, stream->run);
    }
    fwrite(step->text, 1, step->len, stdout);
    if (r->type == REPLY_DONE || stream->printed.len > 0 || step->len > 0)
        fputc('\n', stdout);
    fflush(stdout);
    if (r->type == REPLY_DONE) {
        print_summary(r);
        return CLI_EXIT_OK;
    }
    fprintf(stderr, "llmq: error %s: %s (retryable: %s; run %s, worker %s)\n", r->code, r->message,
            r->retryable ? "yes" : "no", r->run[0] ? r->run : "-", r->worker[0] ? r->worker : "-");
    return CLI_EXIT_FAILED;
}

/* Print the job's replies until its terminal one; returns the exit code. */
static int follow(struct cli_global *g, struct cli_follower *f, const char *id, int64_t deadline,
                  double timeout_s)
{
    struct cli_stream stream = {0};
    int rc = -1;
    while (rc == -1) {
        if (cli_stop_requested(g)) {
            rc = cli_stop_exit(g);
            break;
        }
        int left = remaining_ms(deadline);
        if (left == 0) {
            fprintf(stderr, "%sllmq submit: no terminal reply for job %s within %g s on %s\n",
                    stream.printed.len ? "\n" : "", id, timeout_s, g->reply_topic);
            rc = CLI_EXIT_TIMEOUT;
            break;
        }
        struct cli_message msg;
        if (!cli_follower_poll(f, left < SUBMIT_POLL_MS ? left : SUBMIT_POLL_MS, &msg))
            continue;
        struct reply_msg reply;
        char err[256];
        int decoded = reply_decode(msg.payload, msg.len, &reply, err, sizeof(err));
        cli_message_free(&msg);
        if (decoded != 0) {
            if (g->verbose)
                fprintf(stderr, "llmq submit: skipping an undecodable reply: %s\n", err);
            continue;
        }
        struct cli_stream_step step;
        if (strcmp(reply.id, id) != 0) {
            reply_msg_free(&reply);
            continue;
        }
        if (cli_stream_feed(&stream, &reply, &step) != 0) {
            fprintf(stderr, "llmq submit: out of memory\n");
            rc = CLI_EXIT_FAILED;
        } else if (step.what == CLI_STREAM_TEXT) {
            fwrite(step.text, 1, step.len, stdout);
            fflush(stdout);
        } else if (step.what == CLI_STREAM_END) {
            rc = finish(&stream, &reply, &step);
        }
        reply_msg_free(&reply);
    }
    cli_stream_free(&stream);
    return rc;
}

static int run(struct cli_global *g, const char *topic, const struct cli_job *job, double timeout_s)
{
    char err[1024];
    /* Follow first: the end offsets are taken before the job exists. */
    struct cli_follower *f = cli_follower_new(g, g->reply_topic, false, err, sizeof(err));
    if (!f)
        return cli_kafka_failed(g, "submit", err);
    /* --timeout counts from when the broker answered. */
    int64_t deadline = clock_mono_ms() + (int64_t)(timeout_s * 1000);
    int rc = produce(g, topic, job, deadline);
    if (rc == -1)
        rc = follow(g, f, job->id, deadline, timeout_s);
    cli_follower_free(f);
    return rc;
}

/* Build and check the job, then run it; returns the exit code. */
static int submit(struct cli_global *g, struct submit *s)
{
    char tag[17], id[32], err[512];
    struct cli_job job;
    struct job_verdict why;
    if (cli_kafka_check_props(g, err, sizeof(err)) != 0) {
        fprintf(stderr, "llmq submit: %s\n", err);
        return CLI_EXIT_USAGE;
    }
    if (random_hex(tag, 8) != 0) {
        fprintf(stderr, "llmq submit: no random numbers for the job id\n");
        return CLI_EXIT_FAILED;
    }
    snprintf(id, sizeof(id), "cli-%s", tag);
    if (cli_steer_apply(&s->steer, s->job) != 0) {
        fprintf(stderr, "llmq submit: out of memory\n");
        return CLI_EXIT_FAILED;
    }
    if (cli_job_build(s->job, id, g->reply_topic, &job, &why) != LLMQ_OK) {
        fprintf(stderr, "llmq submit: invalid job (%s): %s\n", llmq_code_name(why.code),
                why.message);
        return CLI_EXIT_USAGE;
    }
    int rc = run(g, cli_steer_topic(&s->steer, g), &job, s->timeout_s);
    cli_job_free(&job);
    return rc;
}

int cli_submit(struct cli_global *g, int argc, char **argv)
{
    struct submit s = {
        .job = json_object(), .messages = json_array(), .timeout_s = SUBMIT_DEFAULT_TIMEOUT_S};
    int rc = s.job && s.messages ? parse(g, &s, argc, argv) : CLI_EXIT_FAILED;
    if (rc == -1)
        rc = submit(g, &s);
    json_decref(s.job);
    json_decref(s.messages);
    cli_steer_free(&s.steer);
    return rc;
}
