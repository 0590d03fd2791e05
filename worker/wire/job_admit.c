/* job_admit.c — admit a decoded job against the worker's policy
 * (allowlist, prompt size, model, lora names, deadline), and the reply topic
 * a job's replies go to (job.h). */
#include "job.h"
#include "job_verdict.h"
#include "kafka_names.h"

#include <inttypes.h>
#include <string.h>

const char *job_reply_topic(const struct job *job, const struct job_policy *policy)
{
    if (job->reply_to_unusable)
        return NULL;
    return job->reply_to ? job->reply_to : policy->default_reply_topic;
}

bool job_reply_topic_allowed(const struct job_policy *policy, const char *topic)
{
    if (!topic)
        return false;
    if (policy->default_reply_topic && strcmp(topic, policy->default_reply_topic) == 0)
        return true;
    if (kafka_topic_internal(topic))
        return false;
    for (size_t k = 0; k < policy->n_own_topics; k++)
        if (kafka_subscription_matches(policy->own_topics[k], topic))
            return false;
    for (size_t k = 0; k < policy->n_reply_topics; k++) {
        const char *entry = policy->reply_topics[k];
        size_t n = strlen(entry);
        if (n > 0 && entry[n - 1] == '*' ? strncmp(topic, entry, n - 1) == 0
                                         : strcmp(topic, entry) == 0)
            return true;
    }
    return false;
}

/* The prompt's size: the prompt's bytes, or the sum of the messages' role
 * and content bytes. */
static size_t prompt_bytes(const struct job *job)
{
    size_t n = job->prompt_len;
    for (size_t k = 0; k < job->n_messages; k++) {
        n += job->messages[k].role ? strlen(job->messages[k].role) : 0;
        n += job->messages[k].content ? strlen(job->messages[k].content) : 0;
    }
    return n;
}

static bool lora_known(const struct job_policy *policy, const char *name)
{
    for (size_t k = 0; k < policy->n_lora_names; k++)
        if (strcmp(policy->lora_names[k], name) == 0)
            return true;
    return false;
}

enum llmq_code job_admit(const struct job *job, const struct job_policy *policy, int64_t now_ms,
                         struct job_verdict *why)
{
    struct job_verdict scratch;
    const char *topic = job_reply_topic(job, policy);
    size_t size = prompt_bytes(job);

    if (!why)
        why = &scratch;
    job_verdict_clear(why);
    if (!job_reply_topic_allowed(policy, topic))
        return job_reject(why, LLMQ_REPLY_TO_DENIED,
                          "reply_to: \"%s\" is not allowed on this worker", topic ? topic : "");
    if (size > policy->max_prompt_bytes)
        return job_reject(why, LLMQ_PROMPT_TOO_LARGE,
                          "%s: %zu bytes, over this worker's limit of %zu",
                          job->prompt ? "prompt" : "messages", size, policy->max_prompt_bytes);
    if (job->model && policy->model && strcmp(job->model, policy->model) != 0)
        return job_reject(why, LLMQ_MODEL_MISMATCH, "model: this worker serves \"%s\", not \"%s\"",
                          policy->model, job->model);
    for (size_t k = 0; k < job->n_lora; k++)
        if (!lora_known(policy, job->lora[k].name))
            return job_reject(why, LLMQ_INVALID_FIELD,
                              "lora[%zu].name: \"%s\" is not an adapter of this worker", k,
                              job->lora[k].name);
    if (job->deadline_ms.set && job->deadline_ms.value <= now_ms)
        return job_reject(why, LLMQ_EXPIRED, "deadline_ms: passed %" PRIu64 " ms ago",
                          (uint64_t)now_ms - (uint64_t)job->deadline_ms.value);
    return LLMQ_OK;
}
