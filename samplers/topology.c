/* Rollout topologies as per-step node actions on the pool (see topology.h; DESIGN.md §4;
 * ALGORITHMS.md §4, §6). Host bookkeeping only: no tensors, no RNG, no allocation. */
#include "topology.h"

#include <math.h>
#include <string.h>

const char *const gv_topology_kind_names[GV_TOPOLOGY_KIND_COUNT] = {"chains", "branch_points",
                                                                    "tree"};
const char *const gv_split_density_names[GV_SPLIT_DENSITY_COUNT] = {"scaled", "reference"};
_Static_assert(sizeof gv_topology_kind_names / sizeof *gv_topology_kind_names ==
                   GV_TOPOLOGY_KIND_COUNT, "one name per topology kind");

static void set_sde(gv_topology *t, const uint8_t *sde_steps) {
    for (int i = 0; i < t->N - 1; ++i) t->sde[i] = sde_steps ? (sde_steps[i] != 0) : 1;
    t->sde[t->N - 1] = 0; /* ALGORITHMS.md §1: the last step is always ODE */
}

static gv_status check_N(int N) {
    if (N < 2 || N >= GV_TOPOLOGY_MAX_STEPS)
        return GV_ERROR(GV_ERR_INVALID, "topology: steps N = %d must be in [2, %d]", N,
                        GV_TOPOLOGY_MAX_STEPS - 1);
    return GV_OK;
}

/* B or P from a list: each step in [0, N-2], no duplicates. */
static gv_status set_steps(gv_topology *t, const int *steps, int n, const char *what) {
    for (int j = 0; j < n; ++j) {
        if (steps[j] < 0 || steps[j] > t->N - 2)
            return GV_ERROR(GV_ERR_INVALID,
                            "topology: %s step %d is outside the stochastic steps 0..%d (N = %d; "
                            "the last step N-1 is ODE)", what, steps[j], t->N - 2, t->N);
        if (t->branch[steps[j]])
            return GV_ERROR(GV_ERR_INVALID, "topology: %s step %d is listed twice", what,
                            steps[j]);
        t->branch[steps[j]] = 1;
    }
    return GV_OK;
}

gv_status gv_topology_chains(gv_topology *t, int N, int group_size, const uint8_t *sde_steps) {
    memset(t, 0, sizeof *t);
    GV_TRY(check_N(N));
    t->kind = GV_TOPOLOGY_CHAINS;
    t->N = N;
    t->group_size = group_size;
    t->K = 1;
    t->split_scale = 1.0;
    set_sde(t, sde_steps);
    return gv_topology_validate(t);
}

gv_status gv_topology_branch_points(gv_topology *t, int N, int group_size, int K,
                                    const int *steps, int n_steps) {
    memset(t, 0, sizeof *t);
    GV_TRY(check_N(N));
    t->kind = GV_TOPOLOGY_BRANCH_POINTS;
    t->N = N;
    t->group_size = group_size;
    t->K = K;
    t->split_scale = 1.0;
    GV_TRY(set_steps(t, steps, n_steps, "branch"));
    return gv_topology_validate(t); /* trunk and branch continuations are ODE: sde[] unused */
}

gv_status gv_topology_tree(gv_topology *t, int N, int group_size, int K, double split_scale,
                           gv_split_density density, const int *splits, int n_splits,
                           const uint8_t *sde_steps) {
    memset(t, 0, sizeof *t);
    GV_TRY(check_N(N));
    t->kind = GV_TOPOLOGY_TREE;
    t->N = N;
    t->group_size = group_size;
    t->K = K;
    t->split_scale = split_scale;
    t->split_density = density;
    set_sde(t, sde_steps);
    GV_TRY(set_steps(t, splits, n_splits, "split"));
    return gv_topology_validate(t);
}

gv_status gv_topology_splits_from_frac(int N, const double *frac, int n, int *splits) {
    for (int j = 0; j < n; ++j) {
        if (!(frac[j] >= 0.0 && frac[j] <= 1.0))
            return GV_ERROR(GV_ERR_INVALID, "topology: branch.splits_frac[%d] = %g is outside "
                            "[0, 1]", j, frac[j]);
        splits[j] = (int)floor(frac[j] * N + 0.5); /* ALGORITHMS.md §6 */
    }
    return GV_OK;
}

int gv_topology_last_split(const gv_topology *t) {
    if (t->kind == GV_TOPOLOGY_CHAINS) return -1;
    for (int i = t->N - 1; i >= 0; --i)
        if (t->branch[i]) return i;
    return -1;
}

gv_status gv_topology_validate(const gv_topology *t) {
    GV_TRY(check_N(t->N));
    if ((unsigned)t->kind >= GV_TOPOLOGY_KIND_COUNT)
        return GV_ERROR(GV_ERR_INVALID, "topology: kind %d unknown", (int)t->kind);
    if (t->group_size < 1 || (uint64_t)t->group_size > ((uint64_t)1 << GV_RNG_NODE_BITS))
        return GV_ERROR(GV_ERR_INVALID, "topology: group.size = %d roots per prompt must be in "
                        "[1, 2^%d]", t->group_size, GV_RNG_NODE_BITS);
    if (t->branch[t->N - 1])
        return GV_ERROR(GV_ERR_INVALID, "topology: step %d (N-1) is the ODE step; it cannot "
                        "branch or split", t->N - 1);
    /* the largest node id the roots of one prompt reach (tree.h) must fit the RNG node field */
    uint64_t ids = (uint64_t)t->group_size;
    switch (t->kind) {
    case GV_TOPOLOGY_CHAINS: break;
    case GV_TOPOLOGY_BRANCH_POINTS: {
        if (t->K < 1)
            return GV_ERROR(GV_ERR_INVALID, "topology: branch points need K >= 1 branches, got %d",
                            t->K);
        const int last = gv_topology_last_split(t);
        if (last >= 0) ids *= (uint64_t)t->K * (uint64_t)(last + 1) + 1;
        break;
    }
    case GV_TOPOLOGY_TREE:
        if (t->K < 2)
            return GV_ERROR(GV_ERR_INVALID, "topology: a tree needs branching factor K >= 2, got "
                            "%d", t->K);
        if (!(t->split_scale > 0.0) || !isfinite(t->split_scale))
            return GV_ERROR(GV_ERR_INVALID, "topology: split noise scale lambda = %g must be "
                            "finite and > 0", t->split_scale);
        if ((unsigned)t->split_density >= GV_SPLIT_DENSITY_COUNT)
            return GV_ERROR(GV_ERR_INVALID, "topology: split_density %d unknown",
                            (int)t->split_density);
        for (int i = 0; i < t->N; ++i)
            if (t->branch[i]) {
                ids *= (uint64_t)t->K;
                if (ids > ((uint64_t)1 << GV_RNG_NODE_BITS)) break;
            }
        break;
    default: break;
    }
    if (ids > ((uint64_t)1 << GV_RNG_NODE_BITS))
        return GV_ERROR(GV_ERR_INVALID, "topology: %s with %d roots per prompt, K = %d needs "
                        "node ids beyond the RNG node field (2^%d); use fewer roots, splits or "
                        "children", gv_topology_kind_names[t->kind], t->group_size, t->K,
                        GV_RNG_NODE_BITS);
    return GV_OK;
}

/* One frontier node's action at step i. */
static gv_tree_action node_action(const gv_topology *t, const gv_tree_node *n, int i) {
    const int last = i == t->N - 1;
    switch (t->kind) {
    case GV_TOPOLOGY_BRANCH_POINTS:
        if (!n->branch && t->branch[i] && !last)
            return (gv_tree_action){.children = t->K, .sde = 1, .branch = 1};
        return (gv_tree_action){.children = 1, .sde = 0}; /* trunk and branches: ODE */
    case GV_TOPOLOGY_TREE:
        if (t->branch[i] && !last)
            return (gv_tree_action){.children = t->K, .sde = 1, .split = 1};
        return (gv_tree_action){.children = 1, .sde = !last && t->sde[i]};
    case GV_TOPOLOGY_CHAINS:
    default: return (gv_tree_action){.children = 1, .sde = !last && t->sde[i]};
    }
}

gv_status gv_topology_actions(const gv_topology *t, const gv_tree *tree, int step,
                              gv_tree_action *actions, int32_t cap) {
    int32_t begin, n;
    gv_tree_frontier(tree, &begin, &n);
    if (step < 0 || step >= t->N)
        return GV_ERROR(GV_ERR_INVALID, "topology: step %d outside 0..%d", step, t->N - 1);
    if (n > cap)
        return GV_ERROR(GV_ERR_INVALID, "topology: a frontier of %d nodes exceeds the action "
                        "buffer of %d", n, cap);
    for (int32_t j = 0; j < n; ++j) {
        const gv_tree_node *nd = &tree->nodes[begin + j];
        if (nd->step != step)
            return GV_ERROR(GV_ERR_INVALID, "topology: frontier node %d is at step %d, not %d",
                            begin + j, nd->step, step);
        actions[j] = node_action(t, nd, step);
    }
    return GV_OK;
}

gv_status gv_topology_expand(const gv_topology *t, gv_tree *tree, int step,
                             gv_tree_action *actions, int32_t cap, gv_step_batch *out) {
    GV_TRY(gv_topology_actions(t, tree, step, actions, cap));
    int32_t begin, n;
    gv_tree_frontier(tree, &begin, &n);
    GV_TRY(gv_tree_expand_actions(tree, actions));
    *out = (gv_step_batch){.step = step, .rows_begin = begin, .n_rows = n, .child_begin = begin + n,
                           .n_children = tree->count - (begin + n)};
    for (int32_t c = out->child_begin; c < tree->count; ++c) out->n_sde += tree->nodes[c].sde;
    return GV_OK;
}

void gv_topology_edge_scales(const gv_topology *t, const gv_tree_node *child, float *noise_scale,
                             float *logp_scale) {
    if (!child->sde || child->parent < 0) {
        *noise_scale = *logp_scale = 0.0f;
        return;
    }
    if (child->split) { /* ALGORITHMS.md §6: drawn mu + lambda std eps; split_density */
        *noise_scale = (float)t->split_scale;
        *logp_scale = t->split_density == GV_SPLIT_DENSITY_SCALED ? (float)t->split_scale : 1.0f;
        return;
    }
    *noise_scale = *logp_scale = 1.0f;
}

gv_status gv_topology_sizes(const gv_topology *t, int n_prompts, int64_t *nodes,
                            int64_t *max_rows, int64_t *max_children) {
    GV_TRY(gv_topology_validate(t));
    if (n_prompts < 1)
        return GV_ERROR(GV_ERR_INVALID, "topology: %d prompts must be >= 1", n_prompts);
    /* per root: the frontier at step i holds `trunk` trunk / tree nodes and `other` branch nodes */
    int64_t trunk = 1, other = 0, total = 1, rows = 0, children = 0;
    for (int i = 0; i < t->N; ++i) {
        int64_t next_trunk = trunk, next_other = other;
        if (t->branch[i] && i < t->N - 1) {
            if (t->kind == GV_TOPOLOGY_TREE) next_trunk = trunk * t->K;
            if (t->kind == GV_TOPOLOGY_BRANCH_POINTS) next_other = other + trunk * t->K;
        }
        if (trunk + other > rows) rows = trunk + other;
        if (next_trunk + next_other > children) children = next_trunk + next_other;
        total += next_trunk + next_other;
        trunk = next_trunk;
        other = next_other;
    }
    const int64_t roots = (int64_t)n_prompts * t->group_size;
    *nodes = total * roots;
    *max_rows = rows * roots;
    *max_children = children * roots;
    return GV_OK;
}

gv_status gv_topology_build(const gv_topology *t, gv_tree *tree, int n_prompts,
                            gv_tree_action *actions, int32_t cap) {
    int64_t nodes, rows, children;
    GV_TRY(gv_topology_sizes(t, n_prompts, &nodes, &rows, &children));
    if (nodes > tree->capacity)
        return GV_ERROR(GV_ERR_OOM, "topology: %lld nodes exceed the pool's capacity of %d",
                        (long long)nodes, tree->capacity);
    if (rows > cap)
        return GV_ERROR(GV_ERR_INVALID, "topology: frontiers of %lld nodes exceed the action "
                        "buffer of %d", (long long)rows, cap);
    gv_tree_reset(tree);
    GV_TRY(gv_tree_add_roots(tree, n_prompts, t->group_size));
    for (int i = 0; i < t->N; ++i) {
        gv_step_batch b;
        GV_TRY(gv_topology_expand(t, tree, i, actions, cap, &b));
    }
    return GV_OK;
}
