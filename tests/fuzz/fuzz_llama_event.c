/* fuzz_llama_event.c — llama-server's stream events and error bodies from random bytes:
 * both endpoints' event decoders and the error mapper must never crash, leak or overread,
 * what they return must be consistent, and every event the in-place reader (llama_fast.c)
 * takes must decode the same way through the full parser. */
#include <stdlib.h>
#include <string.h>

#include "llama_fast.h"
#include "llama_proto.h"

static void check_event(enum llama_endpoint ep, const char *data, size_t size)
{
    struct llama_event ev;
    char msg[128];
    int rc = llama_parse_event(ep, data, size, &ev, msg, sizeof(msg));
    if (rc != 0 && rc != 1 && rc != -1)
        abort();
    if (rc != 0 && (ev.text || ev.final))
        abort(); /* a refused event carries nothing */
    if (rc == -1 && memchr(msg, '\0', sizeof(msg)) == NULL)
        abort();
    if (ev.text && ev.text[ev.text_len] != '\0')
        abort();
    if (ev.final && memchr(ev.finish, '\0', sizeof(ev.finish)) == NULL)
        abort();
    llama_event_clear(&ev);
}

/* What the in-place reader takes, the full parser must decode the same way. */
static void check_fast_agrees(enum llama_endpoint ep, const char *data, size_t size)
{
    struct llama_event fast = {0}, tree;
    char msg[128];
    llama_event_clear(&fast);
    if (llama_fast_event(ep, data, size, &fast) != LLAMA_FAST_TAKEN) {
        if (fast.text)
            abort(); /* a declined event is left untouched */
        return;
    }
    if (llama_parse_event_tree(ep, data, size, &tree, msg, sizeof(msg)) != 0 ||
        fast.final != tree.final || strcmp(fast.finish, tree.finish) != 0 || tree.logprobs ||
        !fast.text != !tree.text ||
        (fast.text &&
         (fast.text_len != tree.text_len || memcmp(fast.text, tree.text, fast.text_len) != 0)) ||
        fast.prompt_tokens != tree.prompt_tokens ||
        fast.completion_tokens != tree.completion_tokens)
        abort();
    llama_event_clear(&tree);
    llama_event_clear(&fast);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    /* a heap copy of exactly the input, so ASan sees any read past it */
    char *copy = malloc(size ? size : 1);
    if (!copy)
        abort();
    memcpy(copy, data, size);
    check_event(LLAMA_COMPLETION, copy, size);
    check_event(LLAMA_CHAT, copy, size);
    check_fast_agrees(LLAMA_COMPLETION, copy, size);
    check_fast_agrees(LLAMA_CHAT, copy, size);

    char msg[96];
    enum llmq_code code = llama_parse_error(size ? copy[0] * 3 : 500, copy, size, msg, sizeof(msg));
    if (code != LLMQ_BACKEND_ERROR && code != LLMQ_CONTEXT_EXCEEDED)
        abort();
    if (memchr(msg, '\0', sizeof(msg)) == NULL)
        abort();
    free(copy);
    return 0;
}
