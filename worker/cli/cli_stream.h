/* cli_stream.h — what to print of one job's replies while they arrive, under
 * at-least-once delivery (spec.md, "Reading replies").
 *
 * The first run whose chunk seq 0 arrives is the one streamed; its chunks
 * are printed in seq order, each once (a repeated or out-of-order chunk is
 * held back). The first terminal reply ends the job. When it is a done of
 * the streamed run, what is left to print is the part of its text not yet
 * printed (normally nothing). When it names another run (the job ran again
 * after a crash), `restart` is set and the whole text of that run is to be
 * printed after a notice. */
#ifndef LLMQ_CLI_STREAM_H
#define LLMQ_CLI_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "reply_decode.h"

struct cli_stream {
    char *run;          /* the streamed run; NULL before its first chunk */
    uint64_t next_seq;  /* the seq of its next chunk to print */
    struct buf printed; /* its text printed so far */
};

enum cli_stream_what {
    CLI_STREAM_SKIP, /* nothing to print: another job, another run, a repeat */
    CLI_STREAM_TEXT, /* print text */
    CLI_STREAM_END,  /* the terminal reply: print text (may be empty); done or error */
};

struct cli_stream_step {
    enum cli_stream_what what;
    const char *text; /* points into the reply fed */
    size_t len;
    bool restart; /* END: the terminal run is not the streamed one; text is all of its output */
};

/* Feed one reply of the job. Returns 0, or -1 when out of memory. */
int cli_stream_feed(struct cli_stream *s, const struct reply_msg *reply,
                    struct cli_stream_step *step);

void cli_stream_free(struct cli_stream *s);

#endif
