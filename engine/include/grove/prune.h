/* Pruning of credit triples and the training reuse plan (ALGORITHMS.md §6; DESIGN.md §4).
 *
 * Pruning affects training only, never the rollout: it removes triples from a gv_credit_list.
 *   depth     drop edges whose CHILD depth is in a set D (`fixed`); `sliding` moves D one depth
 *             shallower every `interval` iterations until its shallowest depth reaches
 *             `stop_depth` (shift = min(iteration / interval, min(D) - stop_depth), >= 0).
 *   width     "tail" edges are those whose parent step is strictly greater than the last split
 *             step (last_split = -1: every edge is a tail edge). Within the tail edges that
 *             survive depth pruning:
 *               per_branch  in each leaf's tail chain of n listed edges keep max(1, floor(r n)),
 *                           ranked by advantage (highest first), ties broken by earlier step;
 *               global      over all listed tail edges of the iteration (M of them),
 *                           k = min(M, max(2, floor(r M))): keep the floor(k/2) highest and the
 *                           k - floor(k/2) lowest advantages, ties broken by (leaf index, step)
 *                           — the leaf index is the leaf's pool index, i.e. leaf order.
 *   Non-tail edges are never width-pruned. Edges with A = 0 were already skipped by the credit
 *   scheme (credit.h). The list keeps its (root, parent, child) order.
 *
 * Reuse plan: in training each kept parent's forward is computed ONCE and serves all its kept
 * children; with the list sorted by (root, parent, child), a parent's children are adjacent, so
 * the plan is the runs of equal parents: training forwards = the number of runs.
 *
 * Deliberately not here: credit schemes (credit.h), the training pass itself (grpo_train.c),
 * config parsing of the pruning keys (run_config.c, the integrator's). Pure host code. */
#ifndef GROVE_PRUNE_H
#define GROVE_PRUNE_H

#include <stdint.h>

#include "grove/credit.h"
#include "grove/status.h"
#include "samplers/tree.h"

#ifdef __cplusplus
extern "C" {
#endif

#define GV_PRUNE_MAX_DEPTHS 32

typedef enum gv_prune_width {
    GV_PRUNE_WIDTH_NONE,
    GV_PRUNE_WIDTH_PER_BRANCH,
    GV_PRUNE_WIDTH_GLOBAL,
    GV_PRUNE_WIDTH_COUNT
} gv_prune_width;

typedef enum gv_prune_depth {
    GV_PRUNE_DEPTH_NONE,
    GV_PRUNE_DEPTH_FIXED,
    GV_PRUNE_DEPTH_SLIDING,
    GV_PRUNE_DEPTH_COUNT
} gv_prune_depth;

extern const char *const gv_prune_width_names[GV_PRUNE_WIDTH_COUNT]; /* none per_branch global */
extern const char *const gv_prune_depth_names[GV_PRUNE_DEPTH_COUNT]; /* none fixed sliding */

typedef struct gv_prune_spec {
    gv_prune_width width;
    double width_ratio;                /* r in (0, 1]                                    */
    gv_prune_depth depth;
    int depths[GV_PRUNE_MAX_DEPTHS];   /* D: child depths (>= 1) to drop                 */
    int n_depths;
    int interval;                      /* sliding: iterations per move (>= 1)            */
    int stop_depth;                    /* sliding: the shallowest depth D may reach (>= 1) */
} gv_prune_spec;

typedef struct gv_prune_stats {
    int32_t n_in, n_out;          /* triples before / after                     */
    int32_t n_depth_dropped;      /* by depth pruning                           */
    int32_t n_tail, n_tail_kept;  /* tail edges seen by width pruning / kept    */
} gv_prune_stats;

/* Scratch sized once for trees of up to `capacity` nodes. */
typedef struct gv_prune_work {
    int32_t capacity;
    int32_t *leaf_of;            /* (capacity) the leaf below a tail node        */
    int32_t *next;               /* (capacity) a node's only child, -1 otherwise  */
    struct gv_prune_rank *ranks; /* (capacity) sort scratch (prune.c)             */
    uint8_t *keep;               /* (capacity) per listed edge                    */
} gv_prune_work;

gv_status gv_prune_work_init(gv_prune_work *w, int32_t capacity);
void gv_prune_work_free(gv_prune_work *w);

/* Every rule of the spec; the message names the bad value. */
gv_status gv_prune_validate(const gv_prune_spec *s);

/* mask (GV_PRUNE_MAX_DEPTHS... any length >= max_depth + 1): mask[d] = 1 when child depth d is
   dropped at `iteration`. */
gv_status gv_prune_depth_mask(const gv_prune_spec *s, int iteration, uint8_t *mask, int max_depth);

/* Prunes `list` in place (see above). last_split: the topology's last split step (-1: none). */
gv_status gv_prune_apply(const gv_prune_spec *s, const gv_tree *t, int last_split, int iteration,
                         gv_prune_work *w, gv_credit_list *list, gv_prune_stats *st);

/* The training reuse plan of a (root, parent, child)-sorted list. */
typedef struct gv_reuse_plan {
    int32_t n_parents;  /* = training forwards                                   */
    int32_t *parent;    /* (capacity) pool index of each distinct parent          */
    int32_t *first;     /* (capacity + 1) edges [first[j], first[j+1]) of parent j */
    int32_t capacity;
} gv_reuse_plan;

gv_status gv_reuse_plan_init(gv_reuse_plan *p, int32_t capacity);
void gv_reuse_plan_free(gv_reuse_plan *p);
/* GV_ERR_INVALID when the list is not sorted by (root, parent, child). */
gv_status gv_reuse_plan_build(const gv_credit_list *list, gv_reuse_plan *p);

#ifdef __cplusplus
}
#endif
#endif
