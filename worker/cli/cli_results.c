/* cli_results.c — build the result objects of `llmq batch` and load an
 * earlier results file for --retry-failed. */
#include "cli_results.h"

#include "buf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_json.h"

/* {"line": line, "id": id, "status": status}; id NULL gives null. */
static json_t *result_head(long line, const char *id, const char *status)
{
    return json_pack("{s:I,s:o,s:s}", "line", (json_int_t)line, "id",
                     id ? json_string(id) : json_null(), "status", status);
}

/* Add the reply's meta when it has one; false when that failed. */
static bool add_meta(json_t *result, const struct reply_msg *r)
{
    if (!r->meta)
        return true;
    json_t *meta = cli_json_from_msgpack_bytes(r->meta, r->meta_len);
    return meta && json_object_set_new(result, "meta", meta) == 0;
}

json_t *cli_result_reply(long line, const struct reply_msg *r)
{
    bool done = r->type == REPLY_DONE;
    json_t *result = result_head(line, r->id, done ? "done" : "error");
    json_t *fields =
        done ? json_pack("{s:s%,s:s,s:{s:I,s:I},s:s,s:s}", "text", r->text, r->text_len, "finish",
                         r->finish, "usage", "prompt_tokens", (json_int_t)r->usage.prompt_tokens,
                         "completion_tokens", (json_int_t)r->usage.completion_tokens, "run", r->run,
                         "worker", r->worker)
             : json_pack("{s:s,s:s,s:b,s:s,s:s}", "code", r->code, "message", r->message,
                         "retryable", r->retryable, "run", r->run, "worker", r->worker);
    if (!result || !fields || json_object_update(result, fields) != 0 || !add_meta(result, r)) {
        json_decref(result);
        result = NULL;
    }
    json_decref(fields);
    return result;
}

/* {"line", "id", "status", "message"}. */
static json_t *result_message(long line, const char *id, const char *status, const char *message)
{
    json_t *result = result_head(line, id, status);
    if (result && json_object_set_new(result, "message", json_string(message)) != 0) {
        json_decref(result);
        return NULL;
    }
    return result;
}

json_t *cli_result_timeout(long line, const char *id, double timeout_s)
{
    char message[128];
    snprintf(message, sizeof(message), "no terminal reply within %g s", timeout_s);
    return result_message(line, id, "timeout", message);
}

json_t *cli_result_cancelled(long line, const char *id, const char *why)
{
    return result_message(line, id, "cancelled", why);
}

json_t *cli_result_invalid(long line, const char *id, const struct job_verdict *why)
{
    json_t *result = result_head(line, id, "invalid");
    json_t *fields =
        json_pack("{s:s,s:s}", "code", llmq_code_name(why->code), "message", why->message);
    if (!result || !fields || json_object_update(result, fields) != 0) {
        json_decref(result);
        result = NULL;
    }
    json_decref(fields);
    return result;
}

json_t *cli_result_undelivered(long line, const char *id, const char *why)
{
    json_t *result = result_head(line, id, "error");
    json_t *fields =
        json_pack("{s:s,s:s,s:b}", "code", "undelivered", "message", why, "retryable", 1);
    if (!result || !fields || json_object_update(result, fields) != 0) {
        json_decref(result);
        result = NULL;
    }
    json_decref(fields);
    return result;
}

bool cli_result_retryable(const json_t *result)
{
    const char *status = json_string_value(json_object_get(result, "status"));
    const char *code = json_string_value(json_object_get(result, "code"));
    if (!status)
        return false;
    if (strcmp(status, "timeout") == 0 || strcmp(status, "invalid") == 0 ||
        strcmp(status, "cancelled") == 0)
        return true;
    return strcmp(status, "error") == 0 && (json_is_true(json_object_get(result, "retryable")) ||
                                            (code && strcmp(code, "expired") == 0));
}

static int by_line(const void *a, const void *b)
{
    long la = ((const struct cli_previous *)a)->line, lb = ((const struct cli_previous *)b)->line;
    return (la > lb) - (la < lb);
}

/* Add one result line to the set; returns NULL or what is wrong with it. */
static const char *add_previous(struct cli_previous_set *set, size_t *cap, json_t *result)
{
    json_t *line = json_object_get(result, "line");
    json_t *id = json_object_get(result, "id");
    if (!json_is_object(result) || !json_is_integer(line) || json_integer_value(line) < 1 ||
        !json_is_string(json_object_get(result, "status")))
        return "not a result line (an object with line and status)";
    if (id && !json_is_string(id) && !json_is_null(id))
        return "id: must be a string or null";
    if (grow_array((void **)&set->items, cap, set->n + 1, sizeof(*set->items), 64) != 0)
        return "out of memory";
    struct cli_previous *p = &set->items[set->n];
    p->line = (long)json_integer_value(line);
    p->id = json_is_string(id) ? strdup(json_string_value(id)) : NULL;
    if (json_is_string(id) && !p->id)
        return "out of memory";
    p->retry = cli_result_retryable(result);
    p->cancelled = strcmp(json_string_value(json_object_get(result, "status")), "cancelled") == 0;
    p->result = json_incref(result);
    set->n++;
    return NULL;
}

int cli_previous_load(const char *path, struct cli_previous_set *set, char *err, size_t err_len)
{
    memset(set, 0, sizeof(*set));
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, err_len, "%s: %s", path, strerror(errno));
        return -1;
    }
    char *text = NULL;
    size_t text_cap = 0, cap = 0;
    ssize_t len;
    long line_no = 0;
    json_error_t jerr;
    const char *problem = NULL;
    while (!problem && (len = getline(&text, &text_cap, f)) >= 0) {
        line_no++;
        if (strspn(text, " \t\r\n") == (size_t)len)
            continue;
        json_t *result = json_loadb(text, (size_t)len, 0, &jerr);
        problem = result ? add_previous(set, &cap, result) : jerr.text;
        json_decref(result);
    }
    free(text);
    fclose(f);
    if (problem) {
        snprintf(err, err_len, "%s:%ld: %s", path, line_no, problem);
        cli_previous_free(set);
        return -1;
    }
    qsort(set->items, set->n, sizeof(*set->items), by_line);
    for (size_t i = 1; i < set->n; i++) {
        if (set->items[i].line == set->items[i - 1].line) {
            snprintf(err, err_len, "%s: input line %ld has two results", path, set->items[i].line);
            cli_previous_free(set);
            return -1;
        }
    }
    return 0;
}

const struct cli_previous *cli_previous_find(const struct cli_previous_set *set, long line)
{
    struct cli_previous key = {.line = line};
    return set->n ? bsearch(&key, set->items, set->n, sizeof(key), by_line) : NULL;
}

void cli_previous_free(struct cli_previous_set *set)
{
    for (size_t i = 0; i < set->n; i++) {
        free(set->items[i].id);
        json_decref(set->items[i].result);
    }
    free(set->items);
    memset(set, 0, sizeof(*set));
}
