/* loop.h — the worker's one event loop: epoll over file descriptors, plus
 * one-shot timers on the monotonic clock.
 *
 * Everything on the job path runs on this thread: librdkafka queues wake it
 * through an fd (kafka.c enables its io events), libcurl multi through its
 * socket and timer callbacks, signals through a signalfd, the llama-server
 * child's stderr through its pipe. No locks on the job path.
 * Callbacks may add or remove fds and timers, including their own. */
#ifndef LLMQ_LOOP_H
#define LLMQ_LOOP_H

#include <stdint.h>

struct loop;
struct loop_timer;

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

/* Call `fn` once, `delay_ms` from now. The handle is valid until the timer
 * fires or is cancelled; cancelling a fired timer is not allowed. */
struct loop_timer *loop_timer_after(struct loop *loop, int64_t delay_ms, loop_timer_fn fn,
                                    void *ctx);
void loop_timer_cancel(struct loop *loop, struct loop_timer *timer);

/* Run until loop_stop(). Returns 0, or -1 if epoll fails. */
int loop_run(struct loop *loop);
void loop_stop(struct loop *loop);

/* Monotonic milliseconds (CLOCK_MONOTONIC) and Unix wall-clock ms. */
int64_t loop_now_ms(void);
int64_t loop_now_us(void); /* monotonic microseconds, for sub-millisecond timings */
int64_t loop_wall_ms(void);

#endif
