/* sse.c — incremental Server-Sent Events parser: bytes in, one callback per event out. */
#include "sse.h"

#include "buf.h"

#include <stdlib.h>
#include <string.h>

/* A line may hold the field name and separator on top of an event's data. */
#define SSE_MAX_LINE_BYTES (SSE_MAX_EVENT_BYTES + 64u)

void sse_init(struct sse_parser *p, sse_event_fn on_event, void *ctx)
{
    memset(p, 0, sizeof(*p));
    p->on_event = on_event;
    p->ctx = ctx;
}

void sse_free(struct sse_parser *p)
{
    free(p->line);
    free(p->data);
    p->line = NULL;
    p->data = NULL;
    p->line_len = p->line_cap = 0;
    p->data_len = p->data_cap = 0;
}

/* Make room for `need` bytes in a buffer; 0 or -1 when out of memory. */
static int reserve(char **buf, size_t *cap, size_t need)
{
    return grow_array((void **)buf, cap, need, 1, 256);
}

static void reset_event(struct sse_parser *p)
{
    p->data_len = 0;
    p->has_data = 0;
    p->event[0] = '\0';
}

/* Hand the buffered event to the callback (if it has data) and start a new one. */
static int dispatch(struct sse_parser *p)
{
    if (!p->has_data) {
        reset_event(p);
        return 0;
    }
    /* reserve() for the data guaranteed room for the terminating NUL. */
    p->data[p->data_len] = '\0';
    int rc = p->on_event(p->ctx, p->event, p->data, p->data_len);
    reset_event(p);
    return rc;
}

static int append_data(struct sse_parser *p, const char *value, size_t len)
{
    size_t sep = p->has_data ? 1 : 0;
    size_t total = p->data_len + sep + len;
    if (total > SSE_MAX_EVENT_BYTES)
        return -1;
    if (reserve(&p->data, &p->data_cap, total + 1) != 0)
        return -1;
    if (sep)
        p->data[p->data_len++] = '\n';
    if (len)
        memcpy(p->data + p->data_len, value, len);
    p->data_len += len;
    p->has_data = 1;
    return 0;
}

/* Interpret one complete line (without its terminator). */
static int process_line(struct sse_parser *p, const char *line, size_t len)
{
    if (len == 0)
        return dispatch(p);
    if (line[0] == ':')
        return 0; /* comment, e.g. llama-server's ":" keep-alive ping */

    const char *colon = memchr(line, ':', len);
    size_t name_len = colon ? (size_t)(colon - line) : len;
    const char *value = colon ? colon + 1 : line + len;
    size_t value_len = len - (size_t)(value - line);
    if (value_len > 0 && value[0] == ' ') {
        value++;
        value_len--;
    }

    if (name_len == 4 && memcmp(line, "data", 4) == 0)
        return append_data(p, value, value_len);
    if (name_len == 5 && memcmp(line, "event", 5) == 0) {
        size_t n = value_len < sizeof(p->event) - 1 ? value_len : sizeof(p->event) - 1;
        memcpy(p->event, value, n);
        p->event[n] = '\0';
    }
    return 0; /* id, retry and unknown fields are ignored */
}

static int append_line(struct sse_parser *p, const char *buf, size_t len)
{
    if (p->line_len + len > SSE_MAX_LINE_BYTES)
        return -1;
    if (reserve(&p->line, &p->line_cap, p->line_len + len) != 0)
        return -1;
    memcpy(p->line + p->line_len, buf, len);
    p->line_len += len;
    return 0;
}

/* Index of the first \r or \n in buf[from, len), or len. */
static size_t find_eol(const char *buf, size_t from, size_t len)
{
    for (size_t i = from; i < len; i++) {
        if (buf[i] == '\n' || buf[i] == '\r')
            return i;
    }
    return len;
}

int sse_feed(struct sse_parser *p, const char *buf, size_t len)
{
    size_t i = 0;
    while (i < len) {
        if (p->saw_cr) {
            p->saw_cr = 0;
            if (buf[i] == '\n') { /* the \n of a \r\n split across feeds or lines */
                i++;
                continue;
            }
        }
        size_t eol = find_eol(buf, i, len);
        if (eol == len) /* no terminator yet: keep the partial line */
            return append_line(p, buf + i, len - i);

        int rc;
        if (p->line_len == 0) {
            rc = process_line(p, buf + i, eol - i);
        } else {
            rc = append_line(p, buf + i, eol - i);
            if (rc == 0)
                rc = process_line(p, p->line, p->line_len);
            p->line_len = 0;
        }
        if (rc != 0)
            return rc;
        p->saw_cr = buf[eol] == '\r';
        i = eol + 1;
    }
    return 0;
}

int sse_finish(struct sse_parser *p)
{
    int rc = 0;
    if (p->line_len > 0) {
        rc = process_line(p, p->line, p->line_len);
        p->line_len = 0;
    }
    p->saw_cr = 0;
    if (rc == 0)
        rc = dispatch(p);
    reset_event(p);
    return rc;
}
