/* Rollout topologies on the node pool (DESIGN.md §4; ALGORITHMS.md §4, §6, §7): chains, branch
 * points (TempFlow) and trees (BranchGRPO, BranchGRPO-Mix), as per-step node actions.
 *
 * A topology says, for every sampler step i (x_i -> x_{i+1}, i = 0..N-1) and every frontier node,
 * how many children the node gets and how they are drawn:
 *   chains         one child; SDE where sde[i] (window / all stochastic steps), else ODE.
 *   branch points  an ODE trunk; at a branch step i in B every trunk node gets its ODE trunk
 *                  continuation plus K SDE branches mu_i + std_i eps_k; a branch is finished by ODE
 *                  (single ODE children) to x_N. Branches draw noise only at their branch step.
 *   tree           K children at a split step in P, drawn mu + lambda std eps_k (split children);
 *                  one child at other steps: SDE where sde[i], else ODE (Mix mode: outside the SDE
 *                  window). Leaves per root = K^|P|.
 * The last step N-1 is always ODE (ALGORITHMS.md §1); branch and split steps are <= N-2.
 *
 * One batched denoiser forward per step: every frontier node (all prompts, roots, trunks,
 * branches) is one row of the step's forward, the rows [rows_begin, rows_begin + n_rows) of the
 * pool; the children appended by the expansion read their parent's row (node.parent - rows_begin).
 * Siblings differ only through their path-based node ids (tree.h), hence their RNG addresses.
 *
 * Split density (ALGORITHMS.md §6): split children are drawn with lambda std; `scaled` (grove's
 * default) scores them under N(mu, (lambda std)^2), `reference` under N(mu, std^2) like the
 * BranchGRPO script. gv_topology_edge_scales gives both multipliers for any edge.
 *
 * Deliberately not here: denoiser calls, noise fills and the step ops (the rollout in
 * engine/train), window policies that move the SDE mask between iterations (rollout.c / §7), and
 * credit assignment (grove/credit.h). Pure host bookkeeping. */
#ifndef GROVE_SAMPLERS_TOPOLOGY_H
#define GROVE_SAMPLERS_TOPOLOGY_H

#include <stdint.h>

#include "grove/status.h"
#include "samplers/tree.h"

#ifdef __cplusplus
extern "C" {
#endif

#define GV_TOPOLOGY_MAX_STEPS (1 << GV_RNG_STEP_BITS) /* sampler steps fit the RNG step field */

typedef enum gv_topology_kind {
    GV_TOPOLOGY_CHAINS,
    GV_TOPOLOGY_BRANCH_POINTS,
    GV_TOPOLOGY_TREE,
    GV_TOPOLOGY_KIND_COUNT
} gv_topology_kind;

typedef enum gv_split_density {
    GV_SPLIT_DENSITY_SCALED,    /* N(mu, (lambda std)^2): the density the child was drawn from */
    GV_SPLIT_DENSITY_REFERENCE, /* N(mu, std^2): the BranchGRPO script's scoring               */
    GV_SPLIT_DENSITY_COUNT
} gv_split_density;

/* Names as configs spell them ("chains", "branch_points", "tree"; "scaled", "reference"). */
extern const char *const gv_topology_kind_names[GV_TOPOLOGY_KIND_COUNT];
extern const char *const gv_split_density_names[GV_SPLIT_DENSITY_COUNT];

typedef struct gv_topology {
    gv_topology_kind kind;
    int N;             /* sampler steps; step N-1 is the ODE step                          */
    int group_size;    /* roots per prompt: chains, trunks or trees (ALGORITHMS.md §4, §6) */
    int K;             /* branch points: SDE branches per branch step (>= 1);
                          tree: branching factor at a split (>= 2); chains: unused         */
    double split_scale;           /* tree: lambda (> 0), the split noise scale         */
    gv_split_density split_density;
    uint8_t branch[GV_TOPOLOGY_MAX_STEPS]; /* branch points: B; tree: split steps P      */
    uint8_t sde[GV_TOPOLOGY_MAX_STEPS];    /* chains / tree: non-split steps drawn SDE   */
} gv_topology;

/* Constructors (they validate). `sde_steps` (N entries, nonzero = SDE) may be NULL: every
   stochastic step 0..N-2 is SDE; the entry of step N-1 is ignored (always ODE). */
gv_status gv_topology_chains(gv_topology *t, int N, int group_size, const uint8_t *sde_steps);
/* B = the n_steps entries of `steps` (each <= N-2, duplicates are an error). */
gv_status gv_topology_branch_points(gv_topology *t, int N, int group_size, int K,
                                    const int *steps, int n_steps);
/* P = the n_splits entries of `splits` (each <= N-2); sde_steps as for chains (Mix: a window). */
gv_status gv_topology_tree(gv_topology *t, int N, int group_size, int K, double split_scale,
                           gv_split_density density, const int *splits, int n_splits,
                           const uint8_t *sde_steps);

/* ALGORITHMS.md §6, branch.splits_frac: split step floor(f N + 0.5) for each fraction
   (N = 20, {0, .15, .3, .45} -> {0, 3, 6, 9}). GV_ERR_INVALID names a fraction outside [0, 1]. */
gv_status gv_topology_splits_from_frac(int N, const double *frac, int n, int *splits);

/* Every rule of the topology (N range, K, lambda, steps <= N-2, the RNG node field for
   n_prompts x group_size roots); the message names the offending value. */
gv_status gv_topology_validate(const gv_topology *t);

/* The last split (tree) or branch (branch points) step; -1 when there is none (chains). */
int gv_topology_last_split(const gv_topology *t);

/* One sampler step's batch: the forward rows and the children they produce. */
typedef struct gv_step_batch {
    int32_t step;                    /* i: the transition x_i -> x_{i+1}                  */
    int32_t rows_begin, n_rows;      /* the frontier: ONE batched forward over these nodes */
    int32_t child_begin, n_children; /* the children appended: pool [child_begin, +n)     */
    int32_t n_sde;                   /* children whose edge is SDE (they draw noise)      */
} gv_step_batch;

/* The actions of step `step` for the tree's current frontier, into `actions` (caller buffer of
   `cap` entries, cap >= the frontier size). The frontier must be at step `step`. */
gv_status gv_topology_actions(const gv_topology *t, const gv_tree *tree, int step,
                              gv_tree_action *actions, int32_t cap);
/* Expands the frontier by step `step`'s actions (scratch `actions` of cap entries) and describes
   the batch. Call for step = 0..N-1 after gv_tree_add_roots(tree, n_prompts, group_size). */
gv_status gv_topology_expand(const gv_topology *t, gv_tree *tree, int step,
                             gv_tree_action *actions, int32_t cap, gv_step_batch *out);

/* The edge into pool node `child`: noise multiplier of its step std (0 ODE, 1 SDE, lambda for a
   split child) and the std multiplier of its log-density (lambda for split children under
   `scaled`, else 1; 0 for ODE edges, which have none). */
void gv_topology_edge_scales(const gv_topology *t, const gv_tree_node *child, float *noise_scale,
                             float *logp_scale);

/* Pool capacity and the widest step of one iteration with n_prompts prompts (roots included). */
gv_status gv_topology_sizes(const gv_topology *t, int n_prompts, int64_t *nodes,
                            int64_t *max_rows, int64_t *max_children);

/* Builds the whole rollout tree of n_prompts prompts into `tree` (initialised with enough
   capacity, reset here): what the rollout does, without tensors. For plans and tests. `actions`
   is scratch of cap >= max_rows (gv_topology_sizes) entries. */
gv_status gv_topology_build(const gv_topology *t, gv_tree *tree, int n_prompts,
                            gv_tree_action *actions, int32_t cap);

#ifdef __cplusplus
}
#endif
#endif
