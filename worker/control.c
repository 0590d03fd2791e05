/* control.c — cancels from the control topic, applied to this worker's
 * tasks or remembered for jobs not taken yet (control.h). */
#include "control.h"

#include <stdio.h>
#include <string.h>

#include "cancel.h"
#include "cancel_set.h"
#include "clock.h"
#include "worker_internal.h"

/* How often a missing control topic is looked for again. */
#define CONTROL_RETRY_MS 5000
/* How long the metadata and offset questions may take at start. */
#define CONTROL_START_TIMEOUT_MS 2000

int control_init(struct worker *w)
{
    w->cancels = cancel_set_new((size_t)w->cfg->control.remember_max,
                                (int64_t)w->cfg->control.remember_s * 1000);
    return w->cancels ? 0 : -1;
}

static void control_retry(struct loop *loop, void *ctx)
{
    struct worker *w = ctx;
    (void)loop;
    control_start(w);
}

void control_start(struct worker *w)
{
    const char *topic = w->cfg->kafka.control_topic;
    if (w->control_running || loop_timer_pending(w->loop, w->control_timer) || !topic || !topic[0])
        return;
    char err[256] = "";
    int64_t since = clock_wall_ms() - (int64_t)w->cfg->control.remember_s * 1000;
    int rc =
        kafka_control_start(w->kafka, topic, since, CONTROL_START_TIMEOUT_MS, err, sizeof(err));
    if (rc == 0) {
        if (w->control_missing[0])
            log_info(w->log, "control", "reading control topic %s now", topic);
        w->control_running = true;
        w->control_missing[0] = '\0';
        return;
    }
    char why[256];
    if (rc > 0)
        snprintf(why, sizeof(why), "control topic %.200s missing: cancels have no effect", topic);
    else
        snprintf(why, sizeof(why), "control topic: %.200s", err);
    if (strcmp(why, w->control_missing) != 0)
        log_error(w->log, "control", "%s; serving jobs anyway, trying again every %d s", why,
                  CONTROL_RETRY_MS / 1000);
    snprintf(w->control_missing, sizeof(w->control_missing), "%s", why);
    w->control_timer = loop_timer_after(w->loop, CONTROL_RETRY_MS, control_retry, w);
}

/* The live (not finishing) task of a job id, or NULL. */
static struct task *task_of(struct worker *w, const char *id)
{
    for (struct task *t = w->tasks; t; t = t->next)
        if (t->state != TASK_FINISHING && t->job.id && strcmp(t->job.id, id) == 0)
            return t;
    return NULL;
}

/* Remember a cancel for a job not here, from the cancel's own time. */
static void remember(struct worker *w, const struct cancel_msg *c, int64_t sent_ms)
{
    int64_t now = clock_wall_ms();
    int64_t at = sent_ms > 0 && sent_ms < now ? sent_ms : now;
    cancel_set_expire(w->cancels, now);
    int forgotten = cancel_set_add(w->cancels, c->id, c->reason, at);
    if (forgotten < 0)
        log_error(w->log, "control", "out of memory: cancel of %s not remembered", c->id);
    else
        w->stats.cancels_forgotten += (uint64_t)forgotten;
    w->stats.cancels_remembered = cancel_set_size(w->cancels);
}

void control_on_message(void *ctx, const struct kafka_message *msg)
{
    struct worker *w = ctx;
    struct cancel_msg c;
    char why[128];
    if (cancel_decode(msg->payload, msg->len, &c, why, sizeof(why)) != 0) {
        w->stats.cancels[CANCEL_INVALID]++;
        log_warn(w->log, "control", "%s[%d]@%lld ignored: %s", msg->topic, (int)msg->partition,
                 (long long)msg->offset, why);
        return;
    }
    struct task *t = task_of(w, c.id);
    bool running = t && t->state == TASK_RUNNING;
    if (c.run[0] && !(running && strcmp(t->run, c.run) == 0)) {
        w->stats.cancels[CANCEL_RUN_MISMATCH]++;
        log_info(w->log, "control", "cancel of %s run %s: not running here", c.id, c.run);
        return;
    }
    if (!c.run[0])
        remember(w, &c, msg->timestamp_ms); /* a later delivery of the job is cancelled too */
    if (!t) {
        w->stats.cancels[CANCEL_NOT_HERE]++;
        log_debug(w->log, "control", "cancel of %s: not here; remembered", c.id);
        return;
    }
    w->stats.cancels[CANCEL_APPLIED]++;
    w->stats.jobs_cancelled[running ? CANCEL_RUNNING : CANCEL_QUEUED]++;
    task_cancel(t, c.reason);
}

bool control_cancelled_on_arrival(struct task *t)
{
    struct worker *w = t->w;
    const char *reason = NULL;
    if (!t->job.id || !cancel_set_has(w->cancels, t->job.id, clock_wall_ms(), &reason))
        return false;
    w->stats.jobs_cancelled[CANCEL_ON_ARRIVAL]++;
    task_cancel(t, reason);
    return true;
}

void control_free(struct worker *w)
{
    loop_timer_cancel(w->loop, w->control_timer);
    w->control_timer = LOOP_TIMER_NONE;
    cancel_set_free(w->cancels);
    w->cancels = NULL;
}
