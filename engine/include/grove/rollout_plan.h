/* Plan counts of one iteration's rollout and training for a topology + pruning (ALGORITHMS.md
 * §4–6; what `grove train --dry-run` prints).
 *
 * Counted by building the iteration's node pool with the real topology code (topology.h),
 * listing every trained edge with a nonzero advantage, pruning it with the real pruning code and
 * building the real reuse plan (prune.h):
 *   nodes               pool nodes, roots included
 *   leaves              nodes without children (final samples x_N)
 *   transitions         edges (sampler transitions; BranchGRPO's "NFE" figure)
 *   trainable_edges     SDE edges (the last step and Mix-mode ODE steps are not trainable)
 *   trained_edges       trainable edges on trained steps (train_step), after pruning
 *   rollout_forwards    denoiser rows of the rollout: one per frontier node per step
 *   training_forwards   denoiser rows of one training pass with parent reuse (distinct parents of
 *                       the trained edges); training_forwards_no_reuse = trained_edges
 *   completion_forwards DenseGRPO's ODE completions of x_i (completion_steps `all`: N - i
 *                       forwards for each needed R_i, R_{N-1} = R_N needs none; `n`: n each)
 * Forwards are rows, before CFG doubling (a CFG pair is 2 NFE). Assumption: no advantage is 0
 * (edges with A = 0 are skipped at run time, so real counts can only be lower); width pruning's
 * counts do not depend on the advantages (a tail edge's parent is a tail node of one chain, so
 * every kept tail edge costs one forward whatever is kept).
 * Deliberately not here: timing, memory, and config parsing. */
#ifndef GROVE_ROLLOUT_PLAN_H
#define GROVE_ROLLOUT_PLAN_H

#include <stdint.h>

#include "grove/prune.h"
#include "grove/status.h"
#include "samplers/schedule.h" /* GV_DENSE_COMPLETION_ALL */
#include "samplers/topology.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gv_plan_opts {
    int n_prompts;                /* prompts per iteration (>= 1)                            */
    const gv_prune_spec *prune;   /* NULL: no pruning                                        */
    const uint8_t *train_step;    /* (N) trained steps; NULL: every SDE step                 */
    int iteration;                /* for sliding depth pruning                               */
    int dense_completion;         /* 0: none; GV_DENSE_COMPLETION_ALL; n > 0 Euler steps      */
} gv_plan_opts;

typedef struct gv_rollout_plan {
    int64_t roots, nodes, leaves, transitions, trainable_edges, trained_edges;
    int64_t rollout_forwards, training_forwards, training_forwards_no_reuse;
    int64_t completion_forwards;
} gv_rollout_plan;

gv_status gv_rollout_plan_compute(const gv_topology *t, const gv_plan_opts *o,
                                  gv_rollout_plan *out);

#ifdef __cplusplus
}
#endif
#endif
