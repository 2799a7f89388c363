/* The rollout node pool (see tree.h; DESIGN.md §4). Host bookkeeping only: nodes are appended in
 * frontier order, so the frontier is a contiguous, stably ordered index range, and path-based node
 * ids follow the mixed-radix rule of tree.h. No allocation after gv_tree_init. */
#include "tree.h"

#include <stdlib.h>
#include <string.h>

#define GV_TREE_ID_LIMIT ((uint64_t)1 << GV_RNG_NODE_BITS)

gv_status gv_tree_init(gv_tree *t, int32_t capacity, int64_t latent_elems) {
    memset(t, 0, sizeof *t);
    if (capacity <= 0 || latent_elems <= 0)
        return GV_ERROR(GV_ERR_INVALID, "tree: capacity %d and latent size %lld must be positive",
                        capacity, (long long)latent_elems);
    t->nodes = calloc((size_t)capacity, sizeof *t->nodes);
    if (!t->nodes)
        return GV_ERROR(GV_ERR_OOM, "tree: cannot allocate %d nodes", capacity);
    t->capacity = capacity;
    t->latent_elems = latent_elems;
    t->is_chain = 1;
    return GV_OK;
}

void gv_tree_free(gv_tree *t) {
    free(t->nodes);
    memset(t, 0, sizeof *t);
}

void gv_tree_reset(gv_tree *t) {
    t->count = t->n_prompts = t->group_size = t->n_roots = 0;
    t->frontier_begin = t->expansions = 0;
    t->is_chain = 1;
}

static gv_tree_node *append(gv_tree *t) {
    gv_tree_node *n = &t->nodes[t->count];
    memset(n, 0, sizeof *n);
    n->latent = (int64_t)t->count * t->latent_elems;
    t->count++;
    return n;
}

gv_status gv_tree_add_roots(gv_tree *t, int32_t n_prompts, int32_t group_size) {
    if (t->count != 0)
        return GV_ERROR(GV_ERR_INVALID, "tree: roots must be added to an empty tree (%d nodes)",
                        t->count);
    if (n_prompts <= 0 || group_size <= 0)
        return GV_ERROR(GV_ERR_INVALID, "tree: %d prompts x group size %d must be positive",
                        n_prompts, group_size);
    if ((uint64_t)group_size > GV_TREE_ID_LIMIT)
        return GV_ERROR(GV_ERR_INVALID, "tree: group size %d exceeds the RNG node field (2^%d)",
                        group_size, GV_RNG_NODE_BITS);
    if ((int64_t)n_prompts * group_size > t->capacity)
        return GV_ERROR(GV_ERR_OOM, "tree: %d prompts x %d roots exceed the capacity of %d nodes",
                        n_prompts, group_size, t->capacity);
    for (int32_t p = 0; p < n_prompts; ++p)
        for (int32_t g = 0; g < group_size; ++g) {
            int32_t idx = t->count;
            gv_tree_node *n = append(t);
            n->parent = -1;
            n->prompt = p;
            n->group = g;
            n->root = idx;
            n->node_id = (uint32_t)g; /* DESIGN.md §3: the root's index within its group */
            n->id_stride = (uint32_t)group_size;
        }
    t->n_prompts = n_prompts;
    t->group_size = group_size;
    t->n_roots = t->count;
    t->frontier_begin = 0;
    return GV_OK;
}

void gv_tree_frontier(const gv_tree *t, int32_t *begin, int32_t *n) {
    *begin = t->frontier_begin;
    *n = t->count - t->frontier_begin;
}

/* Frontier node j's action: actions[j], or the uniform / per-node K shorthands. */
typedef struct expand_src {
    const gv_tree_action *actions;
    const int *K;
    int k_all;
    const uint8_t *sde;
    int sde_all;
} expand_src;

static gv_tree_action action_of(const expand_src *src, int32_t j) {
    if (src->actions) return src->actions[j];
    return (gv_tree_action){.children = src->K ? src->K[j] : src->k_all,
                            .sde = (uint8_t)((src->sde ? src->sde[j] : src->sde_all) != 0)};
}

/* Nodes the action appends: the trunk continuation of a branch point is one more. */
static int64_t appended(const gv_tree_action *a) {
    return a->branch ? (int64_t)a->children + 1 : (int64_t)a->children;
}

/* One expansion. Everything is checked first, so a failed expansion leaves the tree unchanged. */
static gv_status expand(gv_tree *t, const expand_src *src) {
    const int32_t begin = t->frontier_begin, end = t->count;
    if (t->n_roots == 0) return GV_ERROR(GV_ERR_INVALID, "tree: expand before adding roots");
    if (end == begin) return GV_ERROR(GV_ERR_INVALID, "tree: expand with an empty frontier");
    int64_t total = 0;
    for (int32_t j = 0; j < end - begin; ++j) {
        const gv_tree_node *p = &t->nodes[begin + j];
        const gv_tree_action a = action_of(src, j);
        const int k = a.children;
        if (k < 0) return GV_ERROR(GV_ERR_INVALID, "tree: node %d: K = %d < 0", begin + j, k);
        if (p->branch && (k > 1 || a.branch))
            return GV_ERROR(GV_ERR_INVALID,
                            "tree: node %d (prompt %d, root %d, step %d) is a branch-point branch; "
                            "branches are finished by single children, never split",
                            begin + j, p->prompt, p->group, p->step);
        /* the largest id and stride the children will use (tree.h) */
        uint64_t need = 0;
        if (a.branch && k > 0)
            need = (uint64_t)p->id_stride * ((uint64_t)k * (uint64_t)(p->step + 1) + 1);
        else if (k > 1)
            need = (uint64_t)p->id_stride * (uint64_t)k;
        if (need > GV_TREE_ID_LIMIT)
            return GV_ERROR(GV_ERR_INVALID,
                            "tree: node %d (prompt %d, root %d, depth %d): %d children need node "
                            "ids up to %llu, beyond the RNG node field (2^%d); use fewer roots, "
                            "splits or children",
                            begin + j, p->prompt, p->group, p->depth, k,
                            (unsigned long long)need, GV_RNG_NODE_BITS);
        if (appended(&a) > 0 && p->step + 1 >= (1 << GV_RNG_STEP_BITS))
            return GV_ERROR(GV_ERR_INVALID, "tree: node %d: step %d beyond the RNG step field",
                            begin + j, p->step + 1);
        total += appended(&a);
    }
    if (t->count + total > t->capacity)
        return GV_ERROR(GV_ERR_OOM, "tree: expansion %d needs %lld nodes, capacity is %d",
                        t->expansions + 1, (long long)(t->count + total), t->capacity);
    for (int32_t j = 0; j < end - begin; ++j) {
        const gv_tree_action a = action_of(src, j);
        const int k_n = a.children;
        if (appended(&a) != 1) t->is_chain = 0;
        for (int k = a.branch ? -1 : 0; k < k_n; ++k) {
            const gv_tree_node *p = &t->nodes[begin + j]; /* the pool never moves */
            gv_tree_node *c = append(t);
            c->parent = begin + j;
            c->depth = p->depth + 1;
            c->step = p->step + 1;
            c->prompt = p->prompt;
            c->group = p->group;
            c->root = p->root;
            c->branch = p->branch;
            if (a.branch && k < 0) { /* tree.h: the ODE trunk continuation keeps id and stride */
                c->child_index = 0;
                c->node_id = p->node_id;
                c->id_stride = p->id_stride;
                continue;
            }
            c->sde = a.sde != 0;
            c->split = a.split != 0;
            c->child_index = a.branch ? k + 1 : k;
            if (a.branch) { /* tree.h: step-addressed branch ids */
                const uint32_t m = (uint32_t)(k + 1) + (uint32_t)k_n * (uint32_t)p->step;
                c->node_id = p->node_id + p->id_stride * m;
                c->id_stride = p->id_stride * ((uint32_t)k_n * (uint32_t)(p->step + 1) + 1);
                c->branch = 1;
            } else if (k_n > 1) { /* tree.h: mixed-radix path id */
                c->node_id = p->node_id + p->id_stride * (uint32_t)k;
                c->id_stride = p->id_stride * (uint32_t)k_n;
            } else { /* a single child keeps its parent's id and stride */
                c->node_id = p->node_id;
                c->id_stride = p->id_stride;
            }
        }
    }
    t->frontier_begin = end;
    t->expansions++;
    return GV_OK;
}

gv_status gv_tree_expand_actions(gv_tree *t, const gv_tree_action *actions) {
    if (!actions) return GV_ERROR(GV_ERR_INVALID, "tree: expand_actions needs an action per node");
    return expand(t, &(expand_src){.actions = actions});
}

gv_status gv_tree_expand_each(gv_tree *t, const int *K, const uint8_t *sde) {
    if (!K) return GV_ERROR(GV_ERR_INVALID, "tree: expand_each needs a K per frontier node");
    return expand(t, &(expand_src){.K = K, .sde = sde});
}

gv_status gv_tree_expand(gv_tree *t, int K, int sde) {
    return expand(t, &(expand_src){.k_all = K, .sde_all = sde});
}

gv_status gv_tree_edges(const gv_tree *t, gv_tree_edge *out, int32_t cap, int32_t *n) {
    int32_t edges = t->count - t->n_roots;
    *n = edges;
    if (!out) return GV_OK;
    if (cap < edges)
        return GV_ERROR(GV_ERR_INVALID, "tree: %d edges do not fit a list of %d", edges, cap);
    int32_t e = 0;
    for (int32_t i = t->n_roots; i < t->count; ++i) {
        const gv_tree_node *c = &t->nodes[i];
        out[e++] = (gv_tree_edge){.parent = c->parent, .child = i,
                                  .step = t->nodes[c->parent].step, .sde = c->sde};
    }
    return GV_OK;
}

gv_status gv_tree_chain_offsets(const gv_tree *t, int32_t sample, int32_t step, int64_t *x,
                                int64_t *x_next) {
    if (!t->is_chain || t->n_roots == 0)
        return GV_ERROR(GV_ERR_INVALID, "tree: (sample, step) offsets need a chain topology");
    if (sample < 0 || sample >= t->n_roots || step < 0 || step >= t->expansions)
        return GV_ERROR(GV_ERR_INVALID,
                        "tree: (sample %d, step %d) outside %d chains of %d steps", sample, step,
                        t->n_roots, t->expansions);
    /* Chains: level i holds the n_roots nodes x_i in root order. */
    int32_t a = step * t->n_roots + sample, b = a + t->n_roots;
    *x = t->nodes[a].latent;
    *x_next = t->nodes[b].latent;
    return GV_OK;
}

gv_status gv_tree_rng_addr(const gv_tree *t, int32_t node, uint32_t iteration, uint32_t step,
                           uint32_t purpose, gv_rng_addr *out) {
    if (node < 0 || node >= t->count)
        return GV_ERROR(GV_ERR_INVALID, "tree: node %d outside the pool (%d nodes)", node,
                        t->count);
    const gv_tree_node *n = &t->nodes[node];
    *out = (gv_rng_addr){.iteration = iteration, .slot = (uint32_t)n->prompt,
                         .node = n->node_id, .step = step, .purpose = purpose};
    uint32_t ctr[3];
    return gv_rng_addr_pack(out, ctr); /* names the field that does not fit */
}
