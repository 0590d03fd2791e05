/* log_repeats.h — say a recurring problem once, then at most one summary per
 * window while it goes on.
 *
 * A problem is an int key (e.g. a Kafka error code). Its first occurrence
 * is logged at once and opens a window (window_ms). Occurrences inside the
 * window are only counted, the latest text kept; when the window ends with
 * a count, one summary is due ("N more, the last: TEXT") and a new window
 * opens; a window that ends with none closes, so the next occurrence is
 * logged at once again. No clock and no timer of its own: the caller passes
 * the time and runs log_repeats_due() when log_repeats_next_due() says. */
#ifndef LLMQ_LOG_REPEATS_H
#define LLMQ_LOG_REPEATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LOG_REPEATS_SLOTS    8   /* problems followed at once; more are logged each time */
#define LOG_REPEATS_TEXT_MAX 256 /* bytes of the latest text kept (cut beyond) */

struct log_repeats_slot {
    bool used;
    int key;
    int64_t window_end_ms;
    unsigned long repeats; /* occurrences counted in this window */
    char last[LOG_REPEATS_TEXT_MAX];
};

struct log_repeats {
    int64_t window_ms;
    struct log_repeats_slot slot[LOG_REPEATS_SLOTS];
};

/* Empty, with windows of window_ms (> 0). */
void log_repeats_init(struct log_repeats *r, int64_t window_ms);

/* One occurrence of problem `key` at now_ms, described by `text`. Returns
 * true when it is to be logged now (the first of a window, or one that
 * cannot be followed); false when it was counted for a summary. */
bool log_repeats_note(struct log_repeats *r, int key, const char *text, int64_t now_ms);

/* When the next summary is due (the earliest end of a window holding a
 * count), or -1 when none is. */
int64_t log_repeats_next_due(const struct log_repeats *r);

/* Take one summary due by now_ms: its key, count and latest text (cut to
 * last_len). Returns false when none is due. Call until false; now_ms =
 * INT64_MAX takes every count (at the end). */
bool log_repeats_due(struct log_repeats *r, int64_t now_ms, int *key, unsigned long *count,
                     char *last, size_t last_len);

#endif
