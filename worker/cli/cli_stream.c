/* cli_stream.c — dedupe the replies of one job for live printing: stream
 * the chunks of the first run, then settle on the terminal reply's run. */
#include "cli_stream.h"

#include <stdlib.h>
#include <string.h>

static int feed_chunk(struct cli_stream *s, const struct reply_msg *reply,
                      struct cli_stream_step *step)
{
    if (!s->run) {
        if (reply->seq != 0)
            return 0;
        s->run = strdup(reply->run);
        if (!s->run)
            return -1;
    }
    if (strcmp(s->run, reply->run) != 0 || reply->seq != s->next_seq)
        return 0;
    if (buf_append(&s->printed, reply->text, reply->text_len) != 0)
        return -1;
    s->next_seq++;
    step->what = CLI_STREAM_TEXT;
    step->text = reply->text;
    step->len = reply->text_len;
    return 0;
}

static void feed_terminal(const struct cli_stream *s, const struct reply_msg *reply,
                          struct cli_stream_step *step)
{
    step->what = CLI_STREAM_END;
    step->text = "";
    step->len = 0;
    if (reply->type == REPLY_ERROR)
        return;
    bool continues = s->printed.len == 0 ||
                     (strcmp(s->run, reply->run) == 0 && reply->text_len >= s->printed.len &&
                      memcmp(reply->text, s->printed.data, s->printed.len) == 0);
    step->restart = !continues;
    step->text = continues ? reply->text + s->printed.len : reply->text;
    step->len = continues ? reply->text_len - s->printed.len : reply->text_len;
}

int cli_stream_feed(struct cli_stream *s, const struct reply_msg *reply,
                    struct cli_stream_step *step)
{
    memset(step, 0, sizeof(*step));
    step->what = CLI_STREAM_SKIP;
    if (reply->type == REPLY_CHUNK)
        return feed_chunk(s, reply, step);
    feed_terminal(s, reply, step);
    return 0;
}

void cli_stream_free(struct cli_stream *s)
{
    free(s->run);
    buf_free(&s->printed);
    memset(s, 0, sizeof(*s));
}
