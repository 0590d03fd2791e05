/* control.h — cancellation on the worker's side (schemas/spec.md,
 * "Cancellation"): the control topic's reader is started with the worker,
 * each cancel ends the job it names when this worker holds it (queued, or
 * running: its llama-server request is closed), and is otherwise remembered
 * (cancel_set.h) so the job is answered without running when it comes.
 *
 * A control topic that does not exist does not stop the worker from serving
 * jobs: the worker logs it, says so in /readyz (ready, with a "detail") and
 * tries again every 5 s; until then cancels have no effect. */
#ifndef LLMQ_CONTROL_H
#define LLMQ_CONTROL_H

#include <stdbool.h>

#include "kafka.h"

struct worker;
struct task;

/* Create the remembered-cancel set (control.remember_max / remember_s).
 * 0, or -1 when out of memory. */
int control_init(struct worker *w);

/* Start reading the control topic (kafka.control_topic; "" = off), from
 * control.remember_s ago. Call when the worker is about to take jobs;
 * calling again once it runs does nothing. */
void control_start(struct worker *w);

/* kafka_events.on_control: one control message. */
void control_on_message(void *ctx, const struct kafka_message *msg);

/* Whether the admitted task's job was cancelled before it came: then it is
 * ended (error `cancelled`) and must not be queued. */
bool control_cancelled_on_arrival(struct task *t);

/* Free what control_init made, and the retry timer. */
void control_free(struct worker *w);

#endif
