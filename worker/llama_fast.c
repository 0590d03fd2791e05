/* llama_fast.c — the common stream event read in place (see llama_fast.h for why).
 *
 * jsmn (libjsmn-dev, header-only, strict mode) cuts the payload into tokens
 * without allocating. jsmn alone is lax about separators (it would take
 * {"a":1,} or {"a" 1}), so every byte between tokens is checked here too:
 * whitespace and exactly the ':' or ',' JSON puts there. Strings with an
 * escape and numbers jansson might refuse (too long, an exponent) are
 * declined rather than decoded: the full parser takes those, so the rules
 * here only ever need to say "surely valid", never "invalid". */
#include "llama_fast.h"

#include "mpjson.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define JSMN_STATIC
#define JSMN_STRICT
#include <jsmn.h>

enum {
    MAX_TOKENS = 64,        /* a plain event has 10-25; the final one more (declined) */
    MAX_EVENT_BYTES = 4096, /* a plain event is a few hundred bytes */
    MAX_DEPTH = 8,
    MAX_INT_DIGITS = 18,   /* fits int64, and no double overflows: jansson takes it too */
    MAX_NUMBER_CHARS = 64, /* a fraction's length cannot overflow (timings have ~17) */
};

struct doc {
    const char *js;
    const jsmntok_t *tok;
    int n;
};

/* ---- checking the tokens ---- */

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* [from, to) is whitespace around exactly one `sep` (none when sep is 0). */
static bool gap_is(const struct doc *d, size_t from, size_t to, char sep)
{
    bool seen = sep == 0;
    for (size_t i = from; i < to; i++) {
        if (!seen && d->js[i] == sep)
            seen = true;
        else if (!is_space(d->js[i]))
            return false;
    }
    return seen && from <= to;
}

/* Where a token's text starts and ends, quotes included. */
static size_t lit_start(const jsmntok_t *t)
{
    return (size_t)t->start - (t->type == JSMN_STRING ? 1 : 0);
}

static size_t lit_end(const jsmntok_t *t)
{
    return (size_t)t->end + (t->type == JSMN_STRING ? 1 : 0);
}

static bool literal_is(const struct doc *d, int i, const char *word)
{
    const jsmntok_t *t = &d->tok[i];
    size_t n = strlen(word);
    return t->type == JSMN_PRIMITIVE && (size_t)(t->end - t->start) == n &&
           memcmp(d->js + t->start, word, n) == 0;
}

static bool digits(const char *s, size_t n, size_t *i)
{
    size_t from = *i;
    while (*i < n && s[*i] >= '0' && s[*i] <= '9')
        (*i)++;
    return *i > from;
}

/* true, false, null, or a JSON number without an exponent and with at most
 * MAX_INT_DIGITS before its point. */
static bool primitive_ok(const struct doc *d, int i)
{
    const jsmntok_t *t = &d->tok[i];
    if (literal_is(d, i, "true") || literal_is(d, i, "false") || literal_is(d, i, "null"))
        return true;
    const char *s = d->js + t->start;
    size_t n = (size_t)(t->end - t->start), at = 0;
    if (n == 0 || n > MAX_NUMBER_CHARS)
        return false;
    if (s[at] == '-')
        at++;
    size_t int_start = at;
    if (!digits(s, n, &at) || (s[int_start] == '0' && at - int_start > 1) ||
        at - int_start > MAX_INT_DIGITS)
        return false;
    if (at < n && s[at] == '.') {
        at++;
        if (!digits(s, n, &at))
            return false;
    }
    return at == n;
}

/* A string without escapes, in UTF-8, no control characters. */
static bool string_ok(const struct doc *d, int i)
{
    const jsmntok_t *t = &d->tok[i];
    const char *s = d->js + t->start;
    size_t n = (size_t)(t->end - t->start);
    for (size_t k = 0; k < n; k++)
        if ((unsigned char)s[k] < 0x20 || s[k] == '\\')
            return false;
    return utf8_text_valid(s, n);
}

static int check_value(const struct doc *d, int i, int depth);

/* An object's or array's members and the separators between them; returns
 * the token index after its subtree, or -1. */
static int check_members(const struct doc *d, int i, int depth)
{
    const jsmntok_t *c = &d->tok[i];
    bool object = c->type == JSMN_OBJECT;
    size_t at = (size_t)c->start + 1; /* after '{' or '[' */
    int next = i + 1;
    for (int k = 0; k < c->size; k++) {
        if (next >= d->n || !gap_is(d, at, lit_start(&d->tok[next]), k ? ',' : 0))
            return -1;
        if (object) {
            const jsmntok_t *key = &d->tok[next];
            if (key->type != JSMN_STRING || key->size != 1 || !string_ok(d, next))
                return -1;
            at = lit_end(key);
            if (++next >= d->n || !gap_is(d, at, lit_start(&d->tok[next]), ':'))
                return -1;
        }
        at = lit_end(&d->tok[next]);
        next = check_value(d, next, depth + 1);
        if (next < 0)
            return -1;
    }
    if (c->end < 1 || d->js[c->end - 1] != (object ? '}' : ']') ||
        !gap_is(d, at, (size_t)c->end - 1, 0))
        return -1;
    return next;
}

/* Token i and its subtree; returns the token index after it, or -1. */
static int check_value(const struct doc *d, int i, int depth)
{
    if (i >= d->n || depth > MAX_DEPTH)
        return -1;
    switch (d->tok[i].type) {
    case JSMN_STRING:
        return d->tok[i].size == 0 && string_ok(d, i) ? i + 1 : -1;
    case JSMN_PRIMITIVE:
        return d->tok[i].size == 0 && primitive_ok(d, i) ? i + 1 : -1;
    case JSMN_OBJECT:
    case JSMN_ARRAY:
        return check_members(d, i, depth);
    default:
        return -1;
    }
}

/* ---- reading what was checked ---- */

enum { ABSENT = -1, TWICE = -2 };

/* The index after token i's subtree (the tokens were checked). */
static int skip(const struct doc *d, int i)
{
    for (int todo = 1; todo > 0; i++)
        todo += d->tok[i].size - 1;
    return i;
}

/* The value tokens of `names` (n of them) in object token obj, into at[]
 * (ABSENT or TWICE where so), in one pass over its members. */
static void members(const struct doc *d, int obj, const char *const *names, int *at, size_t n)
{
    for (size_t k = 0; k < n; k++)
        at[k] = ABSENT;
    int i = obj + 1;
    for (int m = 0; m < d->tok[obj].size; m++) {
        const jsmntok_t *key = &d->tok[i];
        size_t len = (size_t)(key->end - key->start);
        /* strnlen reads a name no further than len + 1 bytes, whatever
         * bytes the key holds: no strlen of every name per member. */
        for (size_t k = 0; k < n; k++)
            if (strnlen(names[k], len + 1) == len && memcmp(d->js + key->start, names[k], len) == 0)
                at[k] = at[k] == ABSENT ? i + 1 : TWICE;
        i = skip(d, i + 1);
    }
}

static bool absent_or_null(const struct doc *d, int i)
{
    return i == ABSENT || (i >= 0 && literal_is(d, i, "null"));
}

/* A token count: absent leaves *out alone; a non-negative integer sets it. */
static bool count_of(const struct doc *d, int i, int64_t *out)
{
    if (i == ABSENT)
        return true;
    if (i < 0 || d->tok[i].type != JSMN_PRIMITIVE)
        return false;
    const char *s = d->js + d->tok[i].start;
    size_t n = (size_t)(d->tok[i].end - d->tok[i].start), at = 0;
    if (!digits(s, n, &at) || at != n || n > MAX_INT_DIGITS)
        return false;
    *out = strtoll(s, NULL, 10);
    return true;
}

/* The event's text from string token i (ABSENT: none). */
static enum llama_fast_result take(const struct doc *d, int i, struct llama_event *ev)
{
    if (i == ABSENT)
        return LLAMA_FAST_TAKEN;
    size_t n = (size_t)(d->tok[i].end - d->tok[i].start);
    char *text = malloc(n + 1);
    if (!text)
        return LLAMA_FAST_NOMEM;
    memcpy(text, d->js + d->tok[i].start, n);
    text[n] = '\0';
    ev->text = text;
    ev->text_len = n;
    return LLAMA_FAST_TAKEN;
}

/* A final event's finish from its "stop_type" token (llama-server's own
 * OpenAI mapping: eos and word are "stop", limit and none "length"); NULL
 * when absent or another value (the full parser says why). */
static const char *finish_of(const struct doc *d, int stop_type)
{
    static const struct {
        const char *type, *finish;
    } map[] = {{"eos", "stop"}, {"word", "stop"}, {"limit", "length"}, {"none", "length"}};
    if (stop_type < 0 || d->tok[stop_type].type != JSMN_STRING)
        return NULL;
    const char *s = d->js + d->tok[stop_type].start;
    size_t n = (size_t)(d->tok[stop_type].end - d->tok[stop_type].start);
    for (size_t k = 0; k < sizeof(map) / sizeof(map[0]); k++)
        if (strlen(map[k].type) == n && memcmp(s, map[k].type, n) == 0)
            return map[k].finish;
    return NULL;
}

/* {"content": "...", "stop": false|true, "tokens_predicted": N, ...}; a final
 * one ("stop": true) with its "stop_type" (its "timings" are not read). */
static enum llama_fast_result completion_event(const struct doc *d, struct llama_event *ev)
{
    enum { ERROR, PROBS, STOP, CONTENT, EVALUATED, PREDICTED, STOP_TYPE, N_KEYS };
    static const char *const names[N_KEYS] = {
        "error",    "completion_probabilities", "stop",
        "content",  "tokens_evaluated",         "tokens_predicted",
        "stop_type"};
    int at[N_KEYS];
    members(d, 0, names, at, N_KEYS);
    int stop = at[STOP], content = at[CONTENT];
    int64_t prompt = -1, generated = -1;
    const char *finish = NULL;
    if (at[ERROR] != ABSENT || at[PROBS] != ABSENT || stop < 0 || content == TWICE ||
        (content >= 0 && d->tok[content].type != JSMN_STRING) ||
        !count_of(d, at[EVALUATED], &prompt) || !count_of(d, at[PREDICTED], &generated))
        return LLAMA_FAST_DECLINED;
    if (!literal_is(d, stop, "false") &&
        !(literal_is(d, stop, "true") && (finish = finish_of(d, at[STOP_TYPE]))))
        return LLAMA_FAST_DECLINED;
    enum llama_fast_result r = take(d, content, ev);
    if (r == LLAMA_FAST_TAKEN) {
        ev->prompt_tokens = prompt;
        ev->completion_tokens = generated;
        if (finish) {
            memcpy(ev->finish, finish, strlen(finish) + 1);
            ev->final = true;
        }
    }
    return r;
}

/* {"choices": [{"delta": {"content": "..."}, "finish_reason": null}], ...}, no usage. */
static enum llama_fast_result chat_event(const struct doc *d, struct llama_event *ev)
{
    enum { ERROR, USAGE, CHOICES, N_ROOT };
    enum { FINISH, LOGPROBS, DELTA, N_CHOICE };
    static const char *const root_names[N_ROOT] = {"error", "usage", "choices"};
    static const char *const choice_names[N_CHOICE] = {"finish_reason", "logprobs", "delta"};
    static const char *const content_name = "content";
    int root[N_ROOT], choice[N_CHOICE], content = ABSENT;
    members(d, 0, root_names, root, N_ROOT);
    int choices = root[CHOICES];
    if (root[ERROR] != ABSENT || !absent_or_null(d, root[USAGE]) || choices < 0 ||
        d->tok[choices].type != JSMN_ARRAY || d->tok[choices].size != 1 ||
        d->tok[choices + 1].type != JSMN_OBJECT)
        return LLAMA_FAST_DECLINED;
    members(d, choices + 1, choice_names, choice, N_CHOICE);
    int delta = choice[DELTA];
    if (!absent_or_null(d, choice[FINISH]) || !absent_or_null(d, choice[LOGPROBS]) ||
        delta == TWICE || (delta >= 0 && d->tok[delta].type != JSMN_OBJECT))
        return LLAMA_FAST_DECLINED;
    if (delta >= 0) {
        members(d, delta, &content_name, &content, 1);
        if (content >= 0 && literal_is(d, content, "null"))
            content = ABSENT;
        if (content == TWICE || (content >= 0 && d->tok[content].type != JSMN_STRING))
            return LLAMA_FAST_DECLINED;
    }
    return take(d, content, ev);
}

enum llama_fast_result llama_fast_event(enum llama_endpoint ep, const char *data, size_t len,
                                        struct llama_event *ev)
{
    if (len == 0 || len > MAX_EVENT_BYTES)
        return LLAMA_FAST_DECLINED;
    jsmntok_t tok[MAX_TOKENS];
    jsmn_parser parser;
    jsmn_init(&parser);
    int n = jsmn_parse(&parser, data, len, tok, MAX_TOKENS);
    struct doc d = {data, tok, n};
    if (n < 1 || tok[0].type != JSMN_OBJECT || !gap_is(&d, 0, (size_t)tok[0].start, 0) ||
        !gap_is(&d, (size_t)tok[0].end, len, 0) || check_value(&d, 0, 0) != n)
        return LLAMA_FAST_DECLINED;
    return ep == LLAMA_CHAT ? chat_event(&d, ev) : completion_event(&d, ev);
}
