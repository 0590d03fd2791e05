/* lanes.h — priority lanes (schemas/spec.md, "Priority lanes"): each jobs
 * topic is a lane with a weight, and the next job to take comes from the
 * lanes that have work, by smooth weighted round robin. With weights w_i
 * over the lanes with work (sum W), each lane is picked w_i of every W
 * picks, spread evenly: a lane with work waits at most ceil(W / w_i) picks.
 * Pure bookkeeping, no I/O. */
#ifndef LLMQ_LANES_H
#define LLMQ_LANES_H

#include <stdbool.h>
#include <stddef.h>

#define LANES_MAX 64

struct lanes;

/* Lanes from kafka.lanes entries ("TOPIC:WEIGHT", already checked). NULL
 * when out of memory. */
struct lanes *lanes_new(char *const *entries, size_t n);
void lanes_free(struct lanes *l);

/* The index of the lane of `topic` (a topic not configured becomes a lane
 * of weight 1); -1 when LANES_MAX lanes exist already or out of memory. */
int lanes_index(struct lanes *l, const char *topic);

/* The lane to take the next job from, given which lanes have work
 * (has_work[i] for each index lanes_index gave); -1 when none has. */
int lanes_pick(struct lanes *l, const bool has_work[LANES_MAX]);

/* A lane's topic name, for metrics labels. */
const char *lanes_name(const struct lanes *l, int index);

#endif
