/* loop.h — the worker's one event loop: epoll over file descriptors, plus
 * one-shot timers on the monotonic clock (util/clock.h reads the clocks).
 *
 * Everything on the job path runs on this thread: librdkafka queues wake it
 * through an fd (kafka.c enables its io events), libcurl multi through its
 * socket and timer callbacks, signals through a signalfd, the llama-server
 * child's stderr through its pipe. No locks on the job path.
 * Callbacks may add or remove fds and timers, including their own. */
#ifndef LLMQ_LOOP_H
#define LLMQ_LOOP_H

#include <stdbool.h>
#include <stdint.h>

struct loop;

/* A timer's handle. LOOP_TIMER_NONE (0) names no timer. A handle stays safe
 * to pass after its timer fired or was cancelled: it then names nothing,
 * even once the loop reuses the timer's slot for another (each slot has a
 * generation count, as Redis's ae has timer ids). So a callback need not
 * clear the handle that armed it. */
typedef uint64_t loop_timer_id;
#define LOOP_TIMER_NONE ((loop_timer_id)0)

/* `events` is a mask of LOOP_READ / LOOP_WRITE / LOOP_ERROR. */
enum { LOOP_READ = 1, LOOP_WRITE = 2, LOOP_ERROR = 4 };

typedef void (*loop_fd_fn)(struct loop *loop, int fd, unsigned events, void *ctx);
typedef void (*loop_timer_fn)(struct loop *loop, void *ctx);

struct loop *loop_new(void);
void loop_free(struct loop *loop);

/* Watch `fd` for `events` (LOOP_READ and/or LOOP_WRITE). One watch per fd;
 * loop_watch on a watched fd replaces its events, callback and ctx. */
int loop_watch(struct loop *loop, int fd, unsigned events, loop_fd_fn fn, void *ctx);
int loop_unwatch(struct loop *loop, int fd);

/* Call `fn` once, `delay_ms` from now. Returns the timer's handle, or
 * LOOP_TIMER_NONE when out of memory (or fn is NULL). */
loop_timer_id loop_timer_after(struct loop *loop, int64_t delay_ms, loop_timer_fn fn, void *ctx);

/* Stop `timer` from firing. Does nothing if it has fired or was cancelled
 * already, or is LOOP_TIMER_NONE. */
void loop_timer_cancel(struct loop *loop, loop_timer_id timer);

/* Whether `timer` is armed: neither fired nor cancelled yet. */
bool loop_timer_pending(const struct loop *loop, loop_timer_id timer);

/* Run until loop_stop(). Returns 0, or -1 if epoll fails. */
int loop_run(struct loop *loop);
void loop_stop(struct loop *loop);

#endif
