/* membership.c — when the worker is in its consumer group: it joins once
 * llama-server is ready and every topic it needs exists, leaves (committing
 * what is done, through the revocation) after llama.unready_leave_s without a
 * ready llama-server or above the VRAM floor, and joins again once it can
 * serve; a fatal consumer error ends it with EXIT_KAFKA_FATAL. */
#include <stdio.h>
#include <string.h>

#include "control.h"
#include "supervisor.h"
#include "telemetry.h"
#include "worker.h"
#include "worker_internal.h"

/* How often missing topics are looked for again. */
#define TOPIC_CHECK_MS 5000

/* Whether the worker can serve jobs now (llama-server ready, VRAM enough). */
static bool can_serve(const struct worker *w)
{
    return w->backend_ready && !telemetry_admission_paused(w->telemetry);
}

/* The topics the worker reads and writes must exist before it takes a job:
 * a reply with nowhere to go would hold its partition's commits forever.
 * Topics named by a pattern (^...) and optional ones left empty are skipped. */
static bool topics_ready(struct worker *w)
{
    const struct llmq_config *cfg = w->cfg;
    const char *names[4 + 16];
    size_t n = 0;
    for (size_t i = 0; i < cfg->kafka.n_jobs_topics && n < 16; i++)
        if (cfg->kafka.jobs_topics[i][0] != '^')
            names[n++] = cfg->kafka.jobs_topics[i];
    const char *own[] = {cfg->kafka.reply_topic, cfg->kafka.dead_letter_topic,
                         cfg->metrics.heartbeat_s > 0 ? cfg->kafka.metrics_topic : NULL};
    for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
        if (own[i] && own[i][0])
            names[n++] = own[i];
    char missing[200];
    int count = kafka_topics_missing(w->kafka, names, n, 5000, missing, sizeof(missing));
    if (count == 0) {
        if (w->topics_missing[0])
            log_info(w->log, "worker", "every topic exists now");
        w->topics_missing[0] = '\0';
        return true;
    }
    char why[256];
    if (count < 0)
        snprintf(why, sizeof(why), "cannot check the topics (%.200s)", missing);
    else
        snprintf(why, sizeof(why), "missing topic(s): %.200s", missing);
    if (strcmp(why, w->topics_missing) != 0)
        log_error(w->log, "worker", "%s; not taking jobs until they exist (checking every 5 s)",
                  why);
    snprintf(w->topics_missing, sizeof(w->topics_missing), "%s", why);
    return false;
}

static void topic_check_due(struct loop *loop, void *ctx)
{
    struct worker *w = ctx;
    (void)loop;
    membership_update(w);
}

/* Join the group if the topics are there (else look again later). */
static void join(struct worker *w)
{
    if (!topics_ready(w)) {
        if (!loop_timer_pending(w->loop, w->topic_check_timer))
            w->topic_check_timer = loop_timer_after(w->loop, TOPIC_CHECK_MS, topic_check_due, w);
        return;
    }
    control_start(w); /* before the first job, so remembered cancels apply to it */
    char err[256];
    if (kafka_subscribe(w->kafka, err, sizeof(err)) != 0) {
        log_error(w->log, "worker", "%s", err);
        return;
    }
    if (w->left_group[0])
        log_info(w->log, "worker", "joining the group again: ready to serve");
    w->left_group[0] = '\0';
    w->subscribed = true;
}

static void leave_due(struct loop *loop, void *ctx)
{
    struct worker *w = ctx;
    (void)loop;
    if (can_serve(w) || !w->subscribed || w->draining)
        return;
    const char *why = !w->backend_ready ? supervisor_last_error(w->sup) : NULL;
    snprintf(w->left_group, sizeof(w->left_group), "left the group: %s for %d s%s%.160s",
             w->backend_ready ? "free VRAM under the floor" : "no ready llama-server",
             w->cfg->llama.unready_leave_s, why && why[0] ? ": " : "", why ? why : "");
    log_warn(w->log, "worker", "%s; its partitions go to the rest of the group", w->left_group);
    w->stats.group_leaves++;
    w->subscribed = false;
    kafka_unsubscribe(w->kafka); /* the revocation commits what is done */
}

void membership_update(struct worker *w)
{
    if (w->draining || w->stopped)
        return;
    if (can_serve(w))
        loop_timer_cancel(w->loop, w->leave_timer);
    /* The first join waits for llama-server only (under the VRAM floor the
     * worker joins paused); after a leave it waits until it can serve. */
    bool may_join = w->left_group[0] ? can_serve(w) : w->backend_ready;
    if (!w->subscribed && may_join)
        join(w);
    if (!can_serve(w) && w->subscribed && !loop_timer_pending(w->loop, w->leave_timer) &&
        w->cfg->llama.unready_leave_s > 0)
        w->leave_timer =
            loop_timer_after(w->loop, (int64_t)w->cfg->llama.unready_leave_s * 1000, leave_due, w);
}

void membership_consumer_fatal(void *ctx)
{
    struct worker *w = ctx;
    log_error(w->log, "worker", "%s; stopping (exit %d) so that the service manager restarts it",
              kafka_problem(w->kafka), EXIT_KAFKA_FATAL);
    w->exit_code = EXIT_KAFKA_FATAL;
    worker_drain(w);
}

const char *membership_not_ready(const struct worker *w)
{
    const char *problem = kafka_problem(w->kafka);
    if (problem)
        return problem;
    if (w->left_group[0])
        return w->left_group;
    if (w->topics_missing[0])
        return w->topics_missing;
    return NULL;
}

void membership_free(struct worker *w)
{
    loop_timer_cancel(w->loop, w->topic_check_timer);
    loop_timer_cancel(w->loop, w->leave_timer);
}
