/* cancel.h — the control topic's `cancel` message of wire contract v1
 * (schemas/spec.md, "Cancellation"): {v: 1, type: "cancel", id, run?, reason?}.
 * Unknown fields are ignored; anything else wrong makes the message one to
 * ignore (the caller counts and logs it; control messages get no reply). */
#ifndef LLMQ_CANCEL_H
#define LLMQ_CANCEL_H

#include <stddef.h>

#define CANCEL_REASON_MAX 200 /* bytes of the reason kept, cut between characters */

struct cancel_msg {
    char id[129];                       /* 1..128 bytes */
    char run[129];                      /* "" when the cancel names no run */
    char reason[CANCEL_REASON_MAX + 1]; /* "" when none; shortened */
};

/* Decode one control message. 0, or -1 with why it is ignored in `why`. */
int cancel_decode(const void *buf, size_t len, struct cancel_msg *out, char *why, size_t why_len);

#endif
