/* clock.h — the two clocks llmq reads: monotonic for intervals and
 * timeouts (never jumps), and wall time for timestamps and deadlines. */
#ifndef LLMQ_UTIL_CLOCK_H
#define LLMQ_UTIL_CLOCK_H

#include <stdint.h>

/* Monotonic time in milliseconds (an arbitrary origin). */
int64_t clock_mono_ms(void);

/* Monotonic time in microseconds (the same origin). */
int64_t clock_mono_us(void);

/* Unix time in milliseconds. */
int64_t clock_wall_ms(void);

#endif
