/* lanes.c — smooth weighted round robin over the lanes with work
 * (lanes.h), the choice nginx makes among upstreams: each pick adds every
 * eligible lane's weight to its credit, takes the lane with the most
 * credit, and takes the eligible weights' sum from it. */
#include "lanes.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct lane {
    char *topic;
    int64_t weight;
    int64_t credit;
};

struct lanes {
    struct lane lane[LANES_MAX];
    size_t n;
};

static int add_lane(struct lanes *l, const char *topic, size_t len, int64_t weight)
{
    if (l->n == LANES_MAX)
        return -1;
    char *name = strndup(topic, len);
    if (!name)
        return -1;
    l->lane[l->n] = (struct lane){name, weight, 0};
    return (int)l->n++;
}

struct lanes *lanes_new(char *const *entries, size_t n)
{
    struct lanes *l = calloc(1, sizeof(*l));
    for (size_t i = 0; l && i < n; i++) {
        const char *colon = strrchr(entries[i], ':');
        if (add_lane(l, entries[i], (size_t)(colon - entries[i]), strtoll(colon + 1, NULL, 10)) <
            0) {
            lanes_free(l);
            return NULL;
        }
    }
    return l;
}

void lanes_free(struct lanes *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        free(l->lane[i].topic);
    free(l);
}

int lanes_index(struct lanes *l, const char *topic)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->lane[i].topic, topic) == 0)
            return (int)i;
    return add_lane(l, topic, strlen(topic), 1);
}

int lanes_pick(struct lanes *l, const bool has_work[LANES_MAX])
{
    int best = -1;
    int64_t total = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (!has_work[i]) {
            l->lane[i].credit = 0; /* an idle lane saves no credit for later */
            continue;
        }
        l->lane[i].credit += l->lane[i].weight;
        total += l->lane[i].weight;
        if (best < 0 || l->lane[i].credit > l->lane[best].credit)
            best = (int)i;
    }
    if (best >= 0)
        l->lane[best].credit -= total;
    return best;
}

const char *lanes_name(const struct lanes *l, int index)
{
    return index >= 0 && (size_t)index < l->n ? l->lane[index].topic : "";
}
