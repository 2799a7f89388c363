/* Credit assignment over rollout trees (ALGORITHMS.md §3–6; DESIGN.md §4): every scheme is a
 * function from (rollout tree + rewards [+ completion rewards]) to (edge, advantage, weight)
 * triples, the only thing the trainer consumes.
 *
 *   terminal   (Flow-GRPO, §3) chains: every trained SDE edge of a chain gets its sample's
 *              advantage, computed by advantage.h from the terminal rewards (not redone here).
 *   tempflow   (§4) branch points: the K SDE branches of one trunk step form a column;
 *              A = (R - mean_col)/(std_col + 1e-4), population std over the column's valid
 *              branches (`group: prompt` pools every trunk of the prompt at that step). R of a
 *              branch is the reward of the leaf its ODE completion reaches.
 *   dense      (§5, DenseGRPO) chains + R_i of the ODE completion of every x_i (R_N = r(x_N)):
 *              the gain dR_i = R_{i+1} - R_i of step i, A = (dR - mean_g)/(std_g + 1e-4) across
 *              the prompt's chains at that step (population std). A masked R_i masks both gains
 *              that use it.
 *   branch     (§6, BranchGRPO) trees: node value R(n) = mean of its valid leaves (`fusion: mean`)
 *              or bottom-up sum_c softmax_c(alpha logp_c) R(c) (`prob_weighted`); per tree (or
 *              per prompt) and depth, A(n) = (R(n) - m_d)/(sd_d + 1e-8) with the unbiased sd,
 *              A = 0 when the depth has <= 1 valid node or sd_d < 1e-6; edge p -> c gets A(c).
 * Common rules: only SDE edges (trainable) whose step is trained are emitted; advantages are
 * clamped to +-adv_clip (> 0; <= 0 disables); a group (column, step group, tree depth) with fewer
 * than 2 valid members emits nothing (n_groups_small); tempflow / dense groups whose advantages
 * are all exactly 0 are dropped (n_groups_zero, as §3); branch edges with A = 0 are skipped (§6).
 *
 * Step weights (§4): uniform (1) or noise-aware w_i = std_i / mean_{j in T} std_j over the
 * trained steps T: the steps that carry a trainable (SDE) edge of the tree and are selected by
 * train_step (for TempFlow, the trained branch steps T ⊆ B). Mean 1 over T; std_i is the
 * schedule's step std (a split's lambda does not enter). The weight multiplies the clipped policy
 * term only, never the KL (the trainer's business).
 *
 * Output order: edges sorted by (root, parent, child) — a root's edges are contiguous (the
 * training unit) and a parent's kept children are adjacent (prune.h's reuse plan).
 * Rewards and validity are indexed by pool index (length tree->count; only leaves are read, and a
 * non-finite reward counts as invalid). Pure host code; scratch lives in a gv_credit_work sized
 * once. Deliberately not here: terminal advantage statistics (advantage.h), pruning and the reuse
 * plan (prune.h), reward evaluation and ODE completion sampling (the rollout). */
#ifndef GROVE_CREDIT_H
#define GROVE_CREDIT_H

#include <stdint.h>

#include "grove/status.h"
#include "samplers/tree.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One trainable edge parent -> child with its advantage and step weight. */
typedef struct gv_credit_edge {
    int32_t child;   /* pool index of the edge's child (the node x_{step+1})   */
    int32_t parent;  /* pool index of its parent (x_step)                       */
    int32_t root;    /* pool index of its root: the training unit (§3)          */
    int32_t step;    /* sampler step of the transition                          */
    float advantage;
    float weight;    /* step weight: 1 or the noise-aware w_step                */
} gv_credit_edge;

/* A caller-owned list; `capacity` >= the tree's edge count always suffices. */
typedef struct gv_credit_list {
    gv_credit_edge *edges;
    int32_t n, capacity;
} gv_credit_list;

/* The same values, in the same order, as train.step_weight's names ("uniform", "noise_aware"), so
   the config's enum converts by value. */
typedef enum gv_credit_weighting {
    GV_CREDIT_WEIGHT_UNIFORM,
    GV_CREDIT_WEIGHT_NOISE_AWARE,
    GV_CREDIT_WEIGHT_COUNT
} gv_credit_weighting;

typedef enum gv_credit_group {
    GV_CREDIT_GROUP_ROOT,   /* tempflow: one trunk's column; branch: one tree (the references) */
    GV_CREDIT_GROUP_PROMPT, /* pool every root of the prompt                                   */
    GV_CREDIT_GROUP_COUNT
} gv_credit_group;

typedef enum gv_fusion {
    GV_FUSION_MEAN,          /* mean of the node's valid leaf descendants       */
    GV_FUSION_PROB_WEIGHTED, /* sum_c softmax_c(alpha logp_c) R(c), bottom-up   */
    GV_FUSION_COUNT
} gv_fusion;

/* Names as configs spell them. */
extern const char *const gv_credit_weight_names[GV_CREDIT_WEIGHT_COUNT]; /* uniform, noise_aware */
extern const char *const gv_credit_group_names[GV_CREDIT_GROUP_COUNT];  /* root, prompt */
extern const char *const gv_fusion_names[GV_FUSION_COUNT];              /* mean, prob_weighted */

typedef struct gv_credit_opts {
    gv_credit_weighting weighting;
    const float *step_std;      /* (N) schedule std of each step; needed for noise_aware     */
    const uint8_t *train_step;  /* (N) 1 = the step is trained; NULL: every SDE step         */
    int N;                      /* sampler steps (length of step_std / train_step)           */
    double std_eps;             /* tempflow / dense: 1e-4; branch: 1e-8                       */
    double adv_clip;            /* 5; <= 0: no clamp                                          */
    gv_credit_group group;      /* tempflow.group / branch.normalize                          */
    gv_fusion fusion;           /* branch                                                     */
    double fusion_alpha;        /* prob_weighted alpha (1)                                    */
} gv_credit_opts;

/* Defaults per scheme (ALGORITHMS.md §4–6): uniform weights except tempflow (noise_aware);
   eps 1e-4 (terminal / tempflow / dense) or 1e-8 (branch); clip 5; group root; fusion mean,
   alpha 1. The caller sets N, step_std and train_step. */
gv_credit_opts gv_credit_opts_tempflow(void);
gv_credit_opts gv_credit_opts_dense(void);
gv_credit_opts gv_credit_opts_branch(void);
gv_credit_opts gv_credit_opts_terminal(void);

typedef struct gv_credit_stats {
    int32_t n_edges;         /* triples emitted                                          */
    int32_t n_groups;        /* groups with >= 2 valid members                           */
    int32_t n_groups_small;  /* groups dropped for < 2 valid members                     */
    int32_t n_groups_zero;   /* groups dropped because every advantage is exactly 0       */
    int32_t n_masked;        /* invalid leaves (tempflow / branch) or masked gains (dense)  */
    int32_t n_zero;          /* branch: edges skipped for A == 0                          */
    int32_t n_clipped;       /* emitted advantages clamped to +-adv_clip                  */
    double adv_mean, adv_std, adv_min, adv_max; /* over emitted edges (0 when none)       */
} gv_credit_stats;

/* Scratch for one tree of up to `capacity` nodes (allocated once). */
typedef struct gv_credit_work {
    int32_t capacity;
    int32_t *first_child, *n_children; /* (capacity) children are contiguous in the pool */
    double *value;                     /* (capacity) fused node values                  */
    double *count;                     /* (capacity) valid leaves below a node           */
    struct gv_credit_member *members;  /* (capacity) group members (credit.c)            */
} gv_credit_work;

gv_status gv_credit_work_init(gv_credit_work *w, int32_t capacity);
void gv_credit_work_free(gv_credit_work *w);

/* Sorts a list by (root, parent, child), the order every scheme returns (for lists built or
   edited elsewhere). */
void gv_credit_sort(gv_credit_list *list);

/* Noise-aware step weights (§4): w[i] = std[i] / mean_{j: use[j]} std[j] for steps with use[i],
   0 elsewhere (so the mean over the used steps is 1). GV_ERR_INVALID when no step is used or a
   used std is not finite and > 0. */
gv_status gv_credit_noise_aware_weights(const float *std, const uint8_t *use, int N, float *w);

/* terminal: root_adv / root_valid (n_roots: the chains' terminal advantages and validity from
   gv_advantage_compute, by root pool index). Chains only. */
gv_status gv_credit_terminal(const gv_tree *t, const float *root_adv, const uint8_t *root_valid,
                             const gv_credit_opts *o, gv_credit_work *w, gv_credit_list *out,
                             gv_credit_stats *st);

/* tempflow: a branch-points tree (topology.h); reward / valid by pool index (leaves). */
gv_status gv_credit_tempflow(const gv_tree *t, const float *reward, const uint8_t *valid,
                             const gv_credit_opts *o, gv_credit_work *w, gv_credit_list *out,
                             gv_credit_stats *st);

/* dense: R (n_roots, N+1): R[r*(N+1) + i] = reward of the ODE completion of chain r's x_i,
   R[.. + N] = r(x_N); R_valid likewise (NULL: all valid; non-finite R is invalid). Chains only. */
gv_status gv_credit_dense(const gv_tree *t, const float *R, const uint8_t *R_valid,
                          const gv_credit_opts *o, gv_credit_work *w, gv_credit_list *out,
                          gv_credit_stats *st);

/* DenseGRPO gains (§5), shared with the noise calibration: gains[r*N + i] = R_{i+1} - R_i for
   i = 0..N-1 and gain_valid likewise (R as for gv_credit_dense). Σ_i gains = R_N - R_0. */
void gv_dense_gains(const float *R, const uint8_t *R_valid, int n_roots, int N, float *gains,
                    uint8_t *gain_valid);

/* branch: a tree (topology.h); reward / valid by pool index (leaves). */
gv_status gv_credit_branch(const gv_tree *t, const float *reward, const uint8_t *valid,
                           const gv_credit_opts *o, gv_credit_work *w, gv_credit_list *out,
                           gv_credit_stats *st);

#ifdef __cplusplus
}
#endif
#endif
