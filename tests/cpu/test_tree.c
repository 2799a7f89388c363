/* Tests of the rollout node pool (samplers/tree.c; DESIGN.md §4): chain counts, edges, stable
 * frontier order, (sample, step) offsets, path-based node ids of split children, replay identity
 * and the RNG node-field limit. */
#include <criterion/criterion.h>
#include <string.h>

#include "samplers/tree.h"

/* Chains: G = 8 roots x P = 2 prompts, N = 10 steps. Counted: 16 roots + 10 x 16 = 176 nodes,
   160 edges (one per transition), a frontier of 16 final latents x_10. */
Test(tree, chains_counts_edges_and_order) {
    gv_tree t;
    cr_assert_eq(gv_tree_init(&t, 176, 784), GV_OK);
    cr_assert_eq(gv_tree_add_roots(&t, 2, 8), GV_OK);
    cr_expect_eq(t.count, 16);
    for (int s = 0; s < 10; ++s) cr_assert_eq(gv_tree_expand(&t, 1, s < 9), GV_OK, "%s", gv_last_error());
    cr_expect_eq(t.count, 176);
    int32_t begin, n, ne;
    gv_tree_frontier(&t, &begin, &n);
    cr_expect_eq(begin, 160);
    cr_expect_eq(n, 16);
    for (int j = 0; j < n; ++j) { /* prompt-major, then group */
        const gv_tree_node *f = &t.nodes[begin + j];
        cr_expect_eq(f->prompt, j / 8);
        cr_expect_eq(f->group, j % 8);
        cr_expect_eq(f->step, 10);
        cr_expect_eq(f->node_id, (uint32_t)(j % 8)); /* a chain keeps its root's id */
        cr_expect_eq(f->root, j);
    }
    gv_tree_edge edges[160];
    cr_assert_eq(gv_tree_edges(&t, edges, 160, &ne), GV_OK);
    cr_expect_eq(ne, 160);
    cr_expect_eq(gv_tree_edges(&t, edges, 159, &ne), GV_ERR_INVALID);
    for (int e = 0; e < 160; ++e) {
        cr_expect_eq(edges[e].step, e / 16);
        cr_expect_eq(edges[e].parent, edges[e].child - 16);
        cr_expect_eq(edges[e].sde, e / 16 < 9); /* the last step is the ODE step */
    }
    int64_t x, xn;
    cr_assert_eq(gv_tree_chain_offsets(&t, 11, 3, &x, &xn), GV_OK);
    const gv_tree_node *a = &t.nodes[3 * 16 + 11];
    cr_expect_eq(x, a->latent);
    cr_expect_eq(xn, (int64_t)(4 * 16 + 11) * 784);
    cr_expect_eq(a->root, 11);
    cr_expect_eq(a->step, 3);
    cr_expect_eq(t.nodes[4 * 16 + 11].parent, 3 * 16 + 11);
    cr_expect_eq(gv_tree_chain_offsets(&t, 16, 0, &x, &xn), GV_ERR_INVALID);
    cr_expect_eq(gv_tree_chain_offsets(&t, 0, 10, &x, &xn), GV_ERR_INVALID);
    cr_expect_eq(gv_tree_expand(&t, 1, 0), GV_ERR_OOM); /* capacity is exact */
    gv_rng_addr ra;
    cr_assert_eq(gv_tree_rng_addr(&t, 160 + 13, 4, 9, GV_RNG_PURPOSE_STEP_NOISE, &ra), GV_OK);
    cr_expect_eq(ra.slot, 1);
    cr_expect_eq(ra.node, 5);
    gv_tree_free(&t);
}

Test(tree, split_children_get_distinct_ids) {
    gv_tree t;
    cr_assert_eq(gv_tree_init(&t, 64, 4), GV_OK);
    cr_assert_eq(gv_tree_add_roots(&t, 1, 2), GV_OK);
    cr_assert_eq(gv_tree_expand(&t, 3, 1), GV_OK);
    cr_expect_eq(t.count, 8);
    /* root 0 -> ids 0, 2, 4; root 1 -> 1, 3, 5 (id + stride 2 * k) */
    const uint32_t want[6] = {0, 2, 4, 1, 3, 5};
    for (int j = 0; j < 6; ++j) {
        cr_expect_eq(t.nodes[2 + j].node_id, want[j]);
        cr_expect_eq(t.nodes[2 + j].child_index, j % 3);
    }
    cr_assert_eq(gv_tree_expand(&t, 1, 1), GV_OK); /* non-split step: ids kept */
    cr_assert_eq(gv_tree_expand(&t, 2, 1), GV_OK); /* another split: 12 leaves */
    int32_t begin, n;
    gv_tree_frontier(&t, &begin, &n);
    cr_expect_eq(n, 12);
    for (int i = 0; i < n; ++i)
        for (int j = i + 1; j < n; ++j)
            cr_expect_neq(t.nodes[begin + i].node_id, t.nodes[begin + j].node_id, "%d %d", i, j);
    int64_t x, xn;
    cr_expect_eq(gv_tree_chain_offsets(&t, 0, 0, &x, &xn), GV_ERR_INVALID); /* not a chain */
    gv_tree_free(&t);
}

static void build_branch(gv_tree *t) {
    /* BranchGRPO-like: 2 prompts x 1 tree, K = 2 at steps {0, 2, 3, 5}, N = 10; the TempFlow-like
       per-node variant at step 7: the first frontier node gets 3 children, the next none. */
    cr_assert_eq(gv_tree_init(t, 512, 16), GV_OK);
    cr_assert_eq(gv_tree_add_roots(t, 2, 1), GV_OK);
    for (int s = 0; s < 7; ++s) {
        int split = s == 0 || s == 2 || s == 3 || s == 5;
        cr_assert_eq(gv_tree_expand(t, split ? 2 : 1, 1), GV_OK);
    }
    int32_t begin, n;
    gv_tree_frontier(t, &begin, &n);
    int K[32];
    uint8_t sde[32];
    for (int j = 0; j < n; ++j) K[j] = j == 0 ? 3 : j == 1 ? 0 : 1, sde[j] = 1;
    cr_assert_eq(gv_tree_expand_each(t, K, sde), GV_OK);
}

Test(tree, replayed_tree_is_identical) {
    gv_tree a, b;
    build_branch(&a);
    build_branch(&b);
    cr_assert_eq(a.count, b.count);
    cr_expect_eq(a.count, 2 + 2 * (2 + 2 + 4 + 8 + 8 + 16 + 16) + (3 + 0 + 30));
    cr_expect_eq(memcmp(a.nodes, b.nodes, (size_t)a.count * sizeof *a.nodes), 0);
    /* The 16 leaves of one prompt's tree (before step 7) have distinct ids 0..15. */
    int32_t begin = 2 + 2 * (2 + 2 + 4 + 8 + 8 + 16), seen[16] = {0};
    for (int j = 0; j < 16; ++j) {
        uint32_t id = a.nodes[begin + j].node_id;
        cr_assert_lt(id, 16u);
        cr_expect_eq(a.nodes[begin + j].prompt, 0);
        seen[id]++;
    }
    for (int i = 0; i < 16; ++i) cr_expect_eq(seen[i], 1);
    gv_tree_free(&a);
    gv_tree_free(&b);
}

Test(tree, node_id_field_limit) {
    gv_tree t;
    cr_assert_eq(gv_tree_init(&t, 4096, 1), GV_OK);
    cr_assert_eq(gv_tree_add_roots(&t, 1, 4096), GV_OK);
    /* stride 4096 x 4097 children > 2^24: refused before any capacity question, tree unchanged */
    cr_expect_eq(gv_tree_expand(&t, 4097, 1), GV_ERR_INVALID);
    cr_expect_eq(t.count, 4096);
    cr_expect_eq(gv_tree_add_roots(&t, 1, 2), GV_ERR_INVALID); /* roots only on an empty tree */
    gv_tree_reset(&t);
    cr_expect_eq(gv_tree_add_roots(&t, 1, 8192), GV_ERR_OOM);
    gv_tree_free(&t);
}
