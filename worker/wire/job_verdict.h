/* job_verdict.h — the verdict helpers job.c and job_admit.c share (not part
 * of the wire library's interface). */
#ifndef LLMQ_JOB_VERDICT_H
#define LLMQ_JOB_VERDICT_H

#include "job.h"

/* Record a rejection unless one is already recorded (the first failure
 * wins); a message too long for the verdict is cut between two UTF-8
 * characters. Returns the verdict's code. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
enum llmq_code
job_reject(struct job_verdict *why, enum llmq_code code, const char *fmt, ...);

/* An empty verdict: LLMQ_OK and no message. */
void job_verdict_clear(struct job_verdict *why);

#endif
