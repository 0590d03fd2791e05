/* sse.h — an incremental parser for Server-Sent Events (text/event-stream).
 *
 * Bytes arrive from libcurl in arbitrary pieces; sse_feed() buffers partial
 * lines and calls on_event once per complete event with its `data` field
 * (multi-line data joined with '\n', as the SSE spec says). Comments and
 * fields other than data/event are skipped. Lines end in \n, \r\n or \r.
 * The parser never reads past what it was given and caps an event's size. */
#ifndef LLMQ_SSE_H
#define LLMQ_SSE_H

#include <stddef.h>

#define SSE_MAX_EVENT_BYTES (4u << 20)

/* Return 0 to go on, non-zero to stop parsing (sse_feed returns it). */
typedef int (*sse_event_fn)(void *ctx, const char *event, const char *data, size_t data_len);

struct sse_parser {
    sse_event_fn on_event;
    void *ctx;
    char *line; /* the partial line */
    size_t line_len, line_cap;
    char *data; /* the event's data so far */
    size_t data_len, data_cap;
    char event[64]; /* the event's type, "" = "message" */
    int saw_cr;     /* the previous byte was \r: a following \n is part of it */
    int has_data;
};

void sse_init(struct sse_parser *p, sse_event_fn on_event, void *ctx);

/* Feed bytes. Returns 0, the callback's non-zero value, or -1 when an event
 * exceeds SSE_MAX_EVENT_BYTES or memory runs out. */
int sse_feed(struct sse_parser *p, const char *buf, size_t len);

/* End of stream: a pending event with data but no blank line is dispatched
 * (llama-server's last /completion event may lack one). */
int sse_finish(struct sse_parser *p);

void sse_free(struct sse_parser *p);

#endif
