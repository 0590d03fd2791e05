/* cli_cancel.c — `llmq cancel ID...`: check and encode a v1 cancel per ID,
 * produce them to the control topic keyed by the job id, and wait for the
 * broker's acks. What the workers then do (an error reply with code
 * cancelled) is for `llmq tail --id ID` to show. */
#include "cli_cancel.h"

#include <stdio.h>
#include <string.h>

#include "mpjson.h"

#define CANCEL_VERSION 1
#define CANCEL_ID_MAX  128 /* bytes, as a job id */
#define CANCEL_POLL_MS 100

enum { OPT_RUN = CLI_OPT_FIRST_LOCAL, OPT_REASON };

static void usage(FILE *out)
{
    fprintf(out,
            "usage: llmq cancel [options] ID...\n"
            "\n"
            "Ask every worker to cancel job ID: sends a cancel message to the control\n"
            "topic, keyed by ID, and waits for the broker's ack. A queued job is answered\n"
            "without running, a running one is stopped; an id no worker has taken yet is\n"
            "remembered (a day by default), so that job is cancelled when it comes. The\n"
            "job ends with an error reply, code cancelled (see it with 'llmq tail --id ID').\n"
            "A cancelled id never runs again: submit the job again under a new id.\n"
            "\n"
            "      --run RUN          cancel only run RUN of the job, while it runs (one ID;\n"
            "                         not remembered)\n"
            "      --reason TEXT      for people: workers quote it in the error reply\n"
            "  -h, --help             this text\n"
            "\n"
            "%s"
            "\n"
            "Exit: 0 every cancel acknowledged by Kafka, 2 usage, 4 Kafka failure (no\n"
            "broker within --connect-timeout, or a cancel not acknowledged), 130 SIGINT,\n"
            "143 SIGTERM.\n",
            cli_global_help);
}

/* NULL, or what is wrong with text (the value of a field). */
static const char *text_problem(const char *text, bool non_empty)
{
    if (non_empty && !text[0])
        return "must not be empty";
    return utf8_text_valid(text, strlen(text)) ? NULL : "must be UTF-8 text";
}

static void pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

int cli_cancel_encode(const char *id, const char *run, const char *reason, msgpack_sbuffer *out,
                      char *err, size_t err_len)
{
    const char *problem = text_problem(id, true), *field = "id";
    if (!problem && strlen(id) > CANCEL_ID_MAX)
        problem = "must be at most 128 bytes";
    if (!problem && run && (problem = text_problem(run, true)))
        field = "run";
    if (!problem && reason && (problem = text_problem(reason, false)))
        field = "reason";
    if (problem) {
        snprintf(err, err_len, "%s: %s", field, problem);
        return -1;
    }
    msgpack_packer pk;
    msgpack_sbuffer_init(out);
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3 + (run != NULL) + (reason != NULL));
    pack_str(&pk, "v");
    msgpack_pack_int(&pk, CANCEL_VERSION);
    pack_str(&pk, "type");
    pack_str(&pk, "cancel");
    pack_str(&pk, "id");
    pack_str(&pk, id);
    const char *const optional[][2] = {{"run", run}, {"reason", reason}};
    for (size_t i = 0; i < 2; i++) {
        if (optional[i][1]) {
            pack_str(&pk, optional[i][0]);
            pack_str(&pk, optional[i][1]);
        }
    }
    return 0;
}

int cli_cancel_send(struct cli_producer *p, const char *topic, const char *id, const char *run,
                    const char *reason, void *msg_opaque, char *err, size_t err_len)
{
    msgpack_sbuffer wire;
    if (cli_cancel_encode(id, run, reason, &wire, err, err_len) != 0)
        return -1;
    const char *const headers[] = {"llmq-type", "cancel", "llmq-id", id, NULL};
    const char *failed = cli_producer_send(p, topic, id, wire.data, wire.size, headers, msg_opaque);
    msgpack_sbuffer_destroy(&wire);
    if (failed)
        snprintf(err, err_len, "%s", failed);
    return failed ? -1 : 0;
}

struct cancel {
    const char *run, *reason;
    size_t acked, failed;
};

static int option(void *ctx, int opt, const char *arg)
{
    struct cancel *c = ctx;
    if (opt == OPT_RUN)
        c->run = arg;
    else if (opt == OPT_REASON)
        c->reason = arg;
    else
        return -1;
    return 0;
}

static void on_ack(void *ctx, void *msg_opaque, const char *error)
{
    struct cancel *c = ctx;
    if (!error) {
        c->acked++;
        return;
    }
    c->failed++;
    fprintf(stderr, "llmq cancel: the cancel of %s was not acknowledged by Kafka: %s\n",
            (const char *)msg_opaque, error);
}

/* Check every cancel before any is sent; returns -1 or the exit code. */
static int check_all(const struct cancel *c, int n, char **ids)
{
    char err[256];
    msgpack_sbuffer wire;
    if (c->run && n > 1) {
        fprintf(stderr, "llmq cancel: --run names the run of one job: give one ID\n");
        return CLI_EXIT_USAGE;
    }
    for (int i = 0; i < n; i++) {
        if (cli_cancel_encode(ids[i], c->run, c->reason, &wire, err, sizeof(err)) != 0) {
            fprintf(stderr, "llmq cancel: invalid cancel of '%s': %s\n", ids[i], err);
            return CLI_EXIT_USAGE;
        }
        msgpack_sbuffer_destroy(&wire);
    }
    return -1;
}

/* Send the cancels and wait for their acks; returns the exit code. */
static int send_all(struct cli_global *g, struct cancel *c, int n, char **ids)
{
    char err[512];
    struct cli_producer *p =
        cli_producer_new(g, cli_connect_timeout_ms(g), on_ack, c, err, sizeof(err));
    if (!p)
        return cli_kafka_failed(g, "cancel", err);
    for (int i = 0; i < n; i++) {
        if (cli_cancel_send(p, g->control_topic, ids[i], c->run, c->reason, ids[i], err,
                            sizeof(err)) != 0) {
            fprintf(stderr, "llmq cancel: the cancel of %s could not be sent: %s\n", ids[i], err);
            c->failed++;
        }
    }
    while (c->acked + c->failed < (size_t)n && !cli_stop_requested(g))
        cli_producer_poll(p, CANCEL_POLL_MS);
    cli_producer_free(p);
    if (g->stopped_by)
        return cli_stop_exit(g);
    if (c->failed == 0)
        fprintf(stderr, "llmq cancel: %d cancel(s) sent to %s\n", n, g->control_topic);
    return c->failed ? CLI_EXIT_KAFKA : CLI_EXIT_OK;
}

int cli_cancel(struct cli_global *g, int argc, char **argv)
{
    static const struct option options[] = {
        {"run", required_argument, NULL, OPT_RUN},
        {"reason", required_argument, NULL, OPT_REASON},
        {NULL, 0, NULL, 0},
    };
    static const struct cli_command command = {"cancel", "", options, usage, option};
    struct cancel c = {0};
    char err[512];
    int rc = cli_parse_options(g, &command, &c, argc, argv);
    if (rc != -1)
        return rc;
    if (optind == argc)
        return cli_usage_error("cancel", "ID is missing");
    if (cli_kafka_check_props(g, err, sizeof(err)) != 0) {
        fprintf(stderr, "llmq cancel: %s\n", err);
        return CLI_EXIT_USAGE;
    }
    rc = check_all(&c, argc - optind, argv + optind);
    return rc != -1 ? rc : send_all(g, &c, argc - optind, argv + optind);
}
