/* gave_up.c — the give-up counter kinds, their labels and their log line. */
#include "gave_up.h"

#include <stdarg.h>
#include <stdio.h>

static const struct gave_up_labels labels[GAVE_UP_COUNT] = {
    [GAVE_UP_CHUNK_NOT_PRODUCED] = {"chunk", "not_produced"},
    [GAVE_UP_CHUNK_NOT_ACKED] = {"chunk", "not_acknowledged"},
    [GAVE_UP_HEARTBEAT] = {"heartbeat", "not_delivered"},
    [GAVE_UP_REPLY_NO_ADDRESS] = {"reply", "no_address"},
    [GAVE_UP_REPLY_NOT_ENCODED] = {"reply", "not_encoded"},
    [GAVE_UP_NOT_KEPT] = {"message", "out_of_memory"},
    [GAVE_UP_REPLY_NEVER_TAKEN] = {"reply", "broker_never_takes"},
    [GAVE_UP_DEAD_NEVER_TAKEN] = {"dead_letter", "broker_never_takes"},
    [GAVE_UP_REPLY_TRIMMED] = {"reply", "too_large_trimmed"},
    [GAVE_UP_REPLY_TOO_LARGE] = {"reply", "too_large_replaced"},
    [GAVE_UP_UNACKED_AT_SHUTDOWN] = {"message", "unacknowledged_at_shutdown"},
    [GAVE_UP_TEXT_OUT_OF_MEMORY] = {"text", "out_of_memory"},
    [GAVE_UP_JOB_NOT_TRACKED] = {"job", "not_tracked"},
};

struct gave_up_labels gave_up_labels_of(enum gave_up_kind kind)
{
    return labels[kind];
}

void gave_up(uint64_t counts[GAVE_UP_COUNT], const struct logger *log, enum gave_up_kind kind,
             const char *job_id, const char *topic, const char *fmt, ...)
{
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    counts[kind]++;
    log_error(log, "gave_up", "job %s: %s; gave up %s (%s), topic %s", job_id ? job_id : "(no id)",
              detail, labels[kind].what, labels[kind].reason, topic ? topic : "(none)");
}
