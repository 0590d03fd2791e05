/* cli_tail.c — `llmq tail`: follow the reply topic and print each reply
 * that passes the filters (--type, --id) as one line, or as JSON. */
#include "cli_tail.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_json.h"
#include "cli_kafka.h"

#define TAIL_TEXT_MAX 60 /* bytes of text shown per line */
#define TAIL_POLL_MS  200

enum {
    OPT_FROM_BEGINNING = CLI_OPT_FIRST_LOCAL,
    OPT_TYPE,
    OPT_ID,
    OPT_JSON,
    OPT_COUNT,
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: llmq tail [options]\n"
            "\n"
            "Print the replies of the reply topic as they arrive, one line each:\n"
            "  job-1 run=ab12 chunk #3 \"text\"\n"
            "  job-1 run=ab12 done stop 12 tokens \"full text…\"\n"
            "  job-2 error expired: deadline_ms: passed 12 ms ago\n"
            "Runs until --count replies are printed, or SIGINT / SIGTERM.\n"
            "\n"
            "      --from-beginning  start at the oldest reply the topic keeps\n"
            "      --type TYPE       only replies of TYPE: chunk, done or error\n"
            "      --id ID           only the replies of job ID\n"
            "      --json            each reply as one JSON object per line, every field\n"
            "                        (bin and ext values as base64 text)\n"
            "      --count N         exit after printing N replies\n"
            "  -h, --help            this text\n"
            "\n"
            "%s"
            "\n"
            "Exit: 0 --count reached, 2 usage, 4 Kafka failure (no broker within\n"
            "--connect-timeout, or the topic cannot be read), 130 stopped by SIGINT\n"
            "(Ctrl-C), 143 stopped by SIGTERM.\n",
            cli_global_help);
}

struct tail {
    bool from_beginning;
    bool json;
    int type; /* an enum reply_type, or -1 for all */
    const char *id;
    int64_t count; /* 0: no limit */
};

/* A text as a JSON string literal, cut at a UTF-8 boundary after max bytes. */
static int quote(const char *text, size_t len, size_t max, char *out, size_t out_len)
{
    bool cut = len > max;
    if (cut) {
        len = max;
        while (len > 0 && ((unsigned char)text[len] & 0xc0) == 0x80)
            len--; /* text[len] continues a character: cut before it */
    }
    json_t *s = json_stringn(text, len);
    char *dumped = s ? json_dumps(s, JSON_ENCODE_ANY) : NULL;
    json_decref(s);
    int n =
        dumped ? snprintf(out, out_len, "%.*s%s\"", (int)strlen(dumped) - 1, dumped, cut ? "…" : "")
               : snprintf(out, out_len, "(not UTF-8)");
    free(dumped);
    return n;
}

int cli_tail_format(const struct reply_msg *r, size_t max_text, char *out, size_t out_len)
{
    char text[1024];
    const char *id = r->id[0] ? r->id : "-";
    switch (r->type) {
    case REPLY_CHUNK:
        quote(r->text, r->text_len, max_text, text, sizeof(text));
        return snprintf(out, out_len, "%s run=%s chunk #%llu %s", id, r->run,
                        (unsigned long long)r->seq, text);
    case REPLY_DONE:
        quote(r->text, r->text_len, max_text, text, sizeof(text));
        return snprintf(out, out_len, "%s run=%s done %s %lld tokens %s", id, r->run, r->finish,
                        (long long)r->usage.completion_tokens, text);
    case REPLY_ERROR:
        return snprintf(out, out_len, "%s%s%s error %s: %s", id, r->run[0] ? " run=" : "", r->run,
                        r->code, r->message);
    }
    return snprintf(out, out_len, "%s ?", id);
}

static bool wanted(const struct tail *t, const struct reply_msg *r)
{
    return (t->type < 0 || (int)r->type == t->type) && (!t->id || strcmp(t->id, r->id) == 0);
}

/* Print one message if it passes the filters; returns whether it did. */
static bool show(const struct tail *t, const struct cli_message *msg)
{
    struct reply_msg r;
    char err[256];
    if (reply_decode(msg->payload, msg->len, &r, err, sizeof(err)) != 0) {
        fprintf(stderr, "llmq tail: %s [%d] offset %lld: not a v1 reply: %s\n", msg->topic,
                (int)msg->partition, (long long)msg->offset, err);
        return false;
    }
    bool shown = wanted(t, &r);
    if (shown && t->json) {
        json_t *value = cli_json_from_msgpack_bytes(msg->payload, msg->len);
        char *line = value ? json_dumps(value, JSON_COMPACT) : NULL;
        printf("%s\n", line ? line : "null");
        free(line);
        json_decref(value);
    } else if (shown) {
        char line[2048];
        cli_tail_format(&r, TAIL_TEXT_MAX, line, sizeof(line));
        printf("%s\n", line);
    }
    reply_msg_free(&r);
    return shown;
}

static int option(void *ctx, int opt, const char *arg)
{
    struct tail *t = ctx;
    static const char *const types[] = {
        [REPLY_CHUNK] = "chunk", [REPLY_DONE] = "done", [REPLY_ERROR] = "error"};
    switch (opt) {
    case OPT_FROM_BEGINNING:
        t->from_beginning = true;
        return 0;
    case OPT_JSON:
        t->json = true;
        return 0;
    case OPT_ID:
        t->id = arg;
        return 0;
    case OPT_TYPE:
        for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
            if (strcmp(arg, types[i]) == 0) {
                t->type = (int)i;
                return 0;
            }
        }
        fprintf(stderr, "llmq tail: --type %s: must be chunk, done or error\n", arg);
        return -1;
    case OPT_COUNT:
        if (!cli_parse_int(arg, &t->count) || t->count < 1) {
            fprintf(stderr, "llmq tail: --count %s: must be an integer >= 1\n", arg);
            return -1;
        }
        return 0;
    default:
        return -1;
    }
}

/* Parse argv into t; returns -1 to go on, or the exit code. */
static int parse(struct cli_global *g, struct tail *t, int argc, char **argv)
{
    static const struct option options[] = {
        {"from-beginning", no_argument, NULL, OPT_FROM_BEGINNING},
        {"type", required_argument, NULL, OPT_TYPE},
        {"id", required_argument, NULL, OPT_ID},
        {"json", no_argument, NULL, OPT_JSON},
        {"count", required_argument, NULL, OPT_COUNT},
        {NULL, 0, NULL, 0},
    };
    static const struct cli_command command = {"tail", "", options, usage, option};
    int rc = cli_parse_options(g, &command, t, argc, argv);
    if (rc != -1)
        return rc;
    if (optind != argc)
        return cli_usage_error("tail", "unexpected argument %s", argv[optind]);
    return -1;
}

int cli_tail(struct cli_global *g, int argc, char **argv)
{
    struct tail t = {.type = -1};
    char err[1024];
    int rc = parse(g, &t, argc, argv);
    if (rc != -1)
        return rc;
    if (cli_kafka_check_props(g, err, sizeof(err)) != 0) {
        fprintf(stderr, "llmq tail: %s\n", err);
        return CLI_EXIT_USAGE;
    }
    struct cli_follower *f =
        cli_follower_new(g, g->reply_topic, t.from_beginning, err, sizeof(err));
    if (!f)
        return cli_kafka_failed(g, "tail", err);
    setvbuf(stdout, NULL, _IOLBF, 0);
    int64_t shown = 0;
    while (!cli_stop_requested(g) && (t.count == 0 || shown < t.count)) {
        struct cli_message msg;
        if (cli_follower_poll(f, TAIL_POLL_MS, &msg)) {
            shown += show(&t, &msg);
            cli_message_free(&msg);
        }
    }
    cli_follower_free(f);
    return g->stopped_by ? cli_stop_exit(g) : CLI_EXIT_OK;
}
