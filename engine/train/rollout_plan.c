/* Plan counts (see rollout_plan.h): the real topology, pruning and reuse code run on a pool
 * without latents. Allocates its own scratch (a planning call, not a training step). */
#include "grove/rollout_plan.h"

#include <stdlib.h>
#include <string.h>

/* DenseGRPO completion forwards of one chain (ALGORITHMS.md §5): R_i for every i that a trained
   gain uses (ΔR_i needs R_i and R_{i+1}); R_N is the rollout's own sample. */
static int64_t dense_completions(const gv_topology *t, const uint8_t *trained, int completion) {
    const int N = t->N;
    uint8_t need[GV_TOPOLOGY_MAX_STEPS + 1] = {0};
    for (int i = 0; i < N; ++i)
        if (trained[i]) need[i] = need[i + 1] = 1;
    int64_t f = 0;
    for (int i = 0; i < N; ++i) {
        if (!need[i]) continue;
        if (completion == GV_DENSE_COMPLETION_ALL)
            f += i == N - 1 ? 0 : N - i; /* the last step's completion is x_N itself */
        else
            f += completion;
    }
    return f;
}

gv_status gv_rollout_plan_compute(const gv_topology *t, const gv_plan_opts *o,
                                  gv_rollout_plan *out) {
    memset(out, 0, sizeof *out);
    if (o->n_prompts < 1)
        return GV_ERROR(GV_ERR_INVALID, "plan: %d prompts per iteration must be >= 1",
                        o->n_prompts);
    if (o->dense_completion < GV_DENSE_COMPLETION_ALL)
        return GV_ERROR(GV_ERR_INVALID, "plan: completion_steps %d invalid", o->dense_completion);
    int64_t nodes, rows, children;
    GV_TRY(gv_topology_sizes(t, o->n_prompts, &nodes, &rows, &children));
    if (nodes > INT32_MAX / 2)
        return GV_ERROR(GV_ERR_INVALID, "plan: %lld nodes per iteration are too many",
                        (long long)nodes);
    gv_tree tree;
    GV_TRY(gv_tree_init(&tree, (int32_t)nodes, 1));
    gv_credit_list list = {.edges = malloc((size_t)nodes * sizeof *list.edges),
                           .capacity = (int32_t)nodes};
    gv_tree_action *actions = malloc((size_t)rows * sizeof *actions);
    gv_prune_work pw = {0};
    gv_reuse_plan rp = {0};
    gv_status s = list.edges && actions
                      ? GV_OK
                      : GV_ERROR(GV_ERR_OOM, "plan: cannot allocate %lld nodes' scratch",
                                 (long long)nodes);
    if (s == GV_OK) s = gv_prune_work_init(&pw, (int32_t)nodes);
    if (s == GV_OK) s = gv_reuse_plan_init(&rp, (int32_t)nodes);
    if (s == GV_OK) s = gv_topology_build(t, &tree, o->n_prompts, actions, (int32_t)rows);
    if (s == GV_OK) {
        uint8_t trained_step[GV_TOPOLOGY_MAX_STEPS] = {0};
        int32_t frontier_rows = 0;
        out->roots = tree.n_roots;
        out->nodes = tree.count;
        for (int32_t c = 0; c < tree.count; ++c) {
            const gv_tree_node *n = &tree.nodes[c];
            if (n->step < t->N) frontier_rows++; /* every node before x_N is a forward row */
            if (n->parent < 0) continue;
            out->transitions++;
            if (!n->sde) continue;
            out->trainable_edges++;
            const int step = tree.nodes[n->parent].step;
            if (o->train_step && !o->train_step[step]) continue;
            trained_step[step] = 1;
            list.edges[list.n++] = (gv_credit_edge){.child = c, .parent = n->parent,
                                                    .root = n->root, .step = step,
                                                    .advantage = 1.0f, .weight = 1.0f};
        }
        out->rollout_forwards = frontier_rows;
        /* every root reaches x_N on every path (no node ends early), so the leaves are the x_N */
        for (int32_t c = 0; c < tree.count; ++c) out->leaves += tree.nodes[c].step == t->N;
        gv_credit_sort(&list);
        if (o->prune) {
            gv_prune_stats ps;
            s = gv_prune_apply(o->prune, &tree, gv_topology_last_split(t), o->iteration, &pw,
                               &list, &ps);
        }
        if (s == GV_OK) s = gv_reuse_plan_build(&list, &rp);
        if (s == GV_OK) {
            out->trained_edges = list.n;
            out->training_forwards = rp.n_parents;
            out->training_forwards_no_reuse = list.n;
            if (o->dense_completion != 0 && t->kind == GV_TOPOLOGY_CHAINS)
                out->completion_forwards =
                    dense_completions(t, trained_step, o->dense_completion) * tree.n_roots;
        }
    }
    gv_reuse_plan_free(&rp);
    gv_prune_work_free(&pw);
    free(list.edges);
    free(actions);
    gv_tree_free(&tree);
    return s;
}
