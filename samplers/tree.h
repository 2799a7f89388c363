/* The rollout node pool (DESIGN.md §4: rollouts are trees).
 *
 * Every rollout topology — chains, branch points, trees — is one integer-indexed pool of nodes with
 * a preallocated capacity. A node is one latent x_step of one trajectory; the edge parent -> node is
 * the sampler transition from the parent's step to the node's step. The pool is host bookkeeping:
 * it never touches tensor memory (the latents live in a caller-owned backend buffer of
 * capacity x latent_elems floats; node i's latent is at element offset i * latent_elems).
 *
 * Build order: gv_tree_add_roots once (G roots per prompt slot, prompt-major), then one
 * gv_tree_expand / gv_tree_expand_each / gv_tree_expand_actions per sampler step (topology.h
 * turns a topology into those actions). The children of an expansion are appended
 * in frontier order, each node's children in child-index order, so the frontier is always a
 * contiguous index range sorted prompt-major, then by the root's group index, then by path — the
 * same order on every replay.
 *
 * Path-based node id (the RNG address's node field, rng.h; DESIGN.md §3, RNG): a root's id is its
 * index g within the prompt's group; a node expanded into K > 1 children gives child k the id
 *     id_child = id_parent + stride_parent * k,   stride_child = stride_parent * K,
 * with stride_root = G; a single child (K = 1: chains, non-split steps) keeps its parent's id and
 * stride. Since id < stride always, two distinct nodes of one prompt never share an id, so K
 * siblings get K different noises and a replayed tree gets the same ones. A stride beyond 2^24
 * (GV_RNG_NODE_BITS) is an error naming the node (too many roots or splits).
 *
 * Branch points (TempFlow, gv_tree_expand_actions with .branch): the parent's first child is the
 * ODE trunk continuation, which keeps the parent's id and stride; the K SDE branches at step s get
 *     id_branch(k) = id_parent + stride_parent * (k + K * s),  k = 1..K,
 *     stride_branch = stride_parent * (K * (s + 1) + 1),
 * and a branch never splits again (it is finished by single children, ODE in TempFlow). So the id
 * space grows with K x steps, not with (K + 1)^(branch steps) — a trunk with K = 6 branches at
 * every one of 19 steps needs ids < G * 115, where the mixed-radix rule would need G * 7^19. Ids of
 * one prompt stay pairwise distinct across trunks and branches (id = g + G * m with m = 0 on the
 * trunk and m = k + K*s >= 1 distinct for distinct (k, s) on the branches). Chains and plain
 * splits are untouched by this rule, so their ids (and the pinned Flow-GRPO noise) are unchanged.
 *
 * Deliberately not here: the sampler loop, the batched denoiser forward over the frontier, credit
 * assignment (engine/train), and any tensor memory. */
#ifndef GROVE_SAMPLERS_TREE_H
#define GROVE_SAMPLERS_TREE_H

#include <stdint.h>

#include "grove/rng.h"
#include "grove/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gv_tree_node {
    int32_t parent;      /* pool index, -1 for a root                                   */
    int32_t depth;       /* edges from the root                                         */
    int32_t step;        /* sampler step of this node's latent x_step (roots: 0)        */
    int64_t latent;      /* element offset of x_step in the caller's latent buffer      */
    uint8_t sde;         /* 1: the edge into this node is an SDE step (has logp_old)   */
    uint8_t split;       /* 1: drawn at a split (tree; noise lambda*std, topology.h)   */
    uint8_t branch;      /* 1: a branch-point branch or its continuation (never splits) */
    int32_t prompt;      /* prompt slot in the iteration's batch (RNG slot)            */
    int32_t group;       /* the root's index within the prompt's group, 0..G-1         */
    int32_t root;        /* pool index of the root                                      */
    int32_t child_index; /* k among its parent's children (0 for a root)               */
    uint32_t node_id;    /* path-based RNG id (< 2^24)                                  */
    uint32_t id_stride;  /* ids of this node's subtree are id + stride * (...)          */
    float logp_old;      /* mean log-prob of the edge into the node (SDE edges)         */
    float reward;        /* filled by the trainer (leaves / credit assignment)          */
    float advantage;     /* filled by the trainer                                       */
} gv_tree_node;

typedef struct gv_tree {
    gv_tree_node *nodes;   /* capacity entries                                          */
    int32_t count, capacity;
    int64_t latent_elems;  /* elements per latent (D)                                   */
    int32_t n_prompts, group_size, n_roots;
    int32_t frontier_begin; /* the frontier is [frontier_begin, count)                  */
    int32_t expansions;    /* gv_tree_expand* calls so far                              */
    int is_chain;          /* 1 while every expansion gave every node exactly one child */
} gv_tree;

/* What one frontier node does at an expansion (gv_tree_expand_actions). */
typedef struct gv_tree_action {
    int32_t children; /* K >= 0 children (0 ends the node); with .branch, the K SDE branches   */
    uint8_t sde;      /* the children's edges are SDE steps (with .branch: the branches are)   */
    uint8_t split;    /* mark the children as split children (tree: noise scale lambda)         */
    uint8_t branch;   /* branch point: an ODE trunk child first, then K branches (see above)   */
} gv_tree_action;

/* One edge parent -> child: the transition at sampler step `step` (x_step -> x_step+1). */
typedef struct gv_tree_edge {
    int32_t parent, child;
    int32_t step;
    uint8_t sde;
} gv_tree_edge;

/* A pool of `capacity` nodes (host memory, allocated once), latents of latent_elems elements. */
gv_status gv_tree_init(gv_tree *t, int32_t capacity, int64_t latent_elems);
void gv_tree_free(gv_tree *t);
/* Forget every node (capacity kept) for the next iteration. */
void gv_tree_reset(gv_tree *t);

/* Creates G roots per prompt slot 0..n_prompts-1 (prompt-major), at step 0. Only on an empty tree.
   GV_ERR_OOM when they do not fit; GV_ERR_INVALID when G exceeds the node-id field. */
gv_status gv_tree_add_roots(gv_tree *t, int32_t n_prompts, int32_t group_size);

/* The frontier (nodes without children created yet): indices [*begin, *begin + *n). */
void gv_tree_frontier(const gv_tree *t, int32_t *begin, int32_t *n);

/* Every frontier node gets K children (K = 1 for chains, K = 0 ends the node), one step later,
   each marked sde. */
gv_status gv_tree_expand(gv_tree *t, int K, int sde);
/* Frontier node j gets K[j] >= 0 children, all with sde[j] (sde may be NULL: all ODE). */
gv_status gv_tree_expand_each(gv_tree *t, const int *K, const uint8_t *sde);

/* The general expansion: frontier node j does actions[j] (one entry per frontier node). Checked
   first (ids, step field, capacity; a branch node may not get K > 1 children), so a failed
   expansion leaves the tree unchanged. gv_tree_expand / gv_tree_expand_each are shorthands. */
gv_status gv_tree_expand_actions(gv_tree *t, const gv_tree_action *actions);

/* All edges in pool order of the child (parent-major, stable). `out` may be NULL to count only;
   else it must have room for `cap` edges (GV_ERR_INVALID otherwise). *n = the number of edges. */
gv_status gv_tree_edges(const gv_tree *t, gv_tree_edge *out, int32_t cap, int32_t *n);

/* Chains only: the latent offsets of x_step and x_step+1 of chain `sample` (the root's pool
   index: prompt-major, then group). GV_ERR_INVALID when the tree is not a chain or out of range. */
gv_status gv_tree_chain_offsets(const gv_tree *t, int32_t sample, int32_t step, int64_t *x,
                                 int64_t *x_next);

/* The RNG address of node `node`'s noise at `step` (slot = prompt, node = node_id). */
gv_status gv_tree_rng_addr(const gv_tree *t, int32_t node, uint32_t iteration, uint32_t step,
                           uint32_t purpose, gv_rng_addr *out);

#ifdef __cplusplus
}
#endif
#endif
