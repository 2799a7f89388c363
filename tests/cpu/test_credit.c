/* Tests of credit assignment (engine/train/credit.c) and pruning / reuse (engine/train/prune.c)
 * on hand-built small trees with known rewards: every advantage below was computed by hand (or
 * with a few lines of Python from the formulas of ALGORITHMS.md §3–6), never by the code under
 * test. Also: noise-aware weights have mean 1 over the trained steps, DenseGRPO gains telescope to
 * R_N - R_0, masks, clamps, the §6 tie-breaking rules and the reuse plan. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "grove/credit.h"
#include "grove/prune.h"
#include "samplers/schedule.h"
#include "samplers/topology.h"

static gv_tree_action acts[4096]; /* build scratch */

#define ASSERT_OK(expr) cr_assert_eq((expr), GV_OK, "%s", gv_last_error())
#define EXPECT_NEAR(a, b, tol) \
    cr_expect(fabs((double)(a) - (double)(b)) <= (tol), "%s = %.9g, want %.9g", #a, (double)(a), \
              (double)(b))

typedef struct fixture {
    gv_tree t;
    gv_credit_work w;
    gv_credit_list list;
    gv_credit_stats st;
} fixture;

static void setup(fixture *f, const gv_topology *topo, int n_prompts) {
    int64_t nodes, rows, children;
    ASSERT_OK(gv_topology_sizes(topo, n_prompts, &nodes, &rows, &children));
    ASSERT_OK(gv_tree_init(&f->t, (int32_t)nodes, 1));
    ASSERT_OK(gv_topology_build(topo, &f->t, n_prompts, acts, 4096));
    ASSERT_OK(gv_credit_work_init(&f->w, (int32_t)nodes));
    f->list = (gv_credit_list){.edges = calloc((size_t)nodes, sizeof *f->list.edges),
                               .capacity = (int32_t)nodes};
}

static void teardown(fixture *f) {
    free(f->list.edges);
    gv_credit_work_free(&f->w);
    gv_tree_free(&f->t);
}

/* The emitted triple whose child is `child`, or NULL. */
static const gv_credit_edge *find(const fixture *f, int32_t child) {
    for (int32_t e = 0; e < f->list.n; ++e)
        if (f->list.edges[e].child == child) return &f->list.edges[e];
    return NULL;
}

static void expect_sorted(const fixture *f) {
    for (int32_t e = 1; e < f->list.n; ++e) {
        const gv_credit_edge *a = &f->list.edges[e - 1], *b = &f->list.edges[e];
        cr_expect(a->root < b->root || (a->root == b->root && (a->parent < b->parent ||
                                        (a->parent == b->parent && a->child < b->child))),
                  "edges %d, %d out of (root, parent, child) order", e - 1, e);
    }
}

/* Flow-GRPO: 1 prompt x 2 chains, N = 4 (SDE steps 0..2), trained steps {0, 2}; pool: roots 0, 1;
   the node of chain r at step s is 2 s + r. Noise-aware with std (.6, .4, .2): T = {0, 2},
   mean .4, w = 1.5 and .5. */
Test(credit, terminal_chains) {
    gv_topology topo;
    ASSERT_OK(gv_topology_chains(&topo, 4, 2, NULL));
    fixture f;
    setup(&f, &topo, 1);
    const float adv[2] = {0.5f, -0.5f}, std[4] = {0.6f, 0.4f, 0.2f, 0.0f};
    const uint8_t train[4] = {1, 0, 1, 0};
    gv_credit_opts o = gv_credit_opts_terminal();
    o.N = 4;
    o.train_step = train;
    o.weighting = GV_CREDIT_WEIGHT_NOISE_AWARE;
    o.step_std = std;
    ASSERT_OK(gv_credit_terminal(&f.t, adv, NULL, &o, &f.w, &f.list, &f.st));
    cr_expect_eq(f.list.n, 4);
    const int32_t child[4] = {2, 6, 3, 7}; /* sorted by root, then parent */
    const float want_a[4] = {0.5f, 0.5f, -0.5f, -0.5f}, want_w[4] = {1.5f, 0.5f, 1.5f, 0.5f};
    for (int e = 0; e < 4; ++e) {
        cr_expect_eq(f.list.edges[e].child, child[e], "edge %d", e);
        cr_expect_eq(f.list.edges[e].advantage, want_a[e]);
        EXPECT_NEAR(f.list.edges[e].weight, want_w[e], 1e-6);
    }
    const uint8_t valid[2] = {1, 0};
    ASSERT_OK(gv_credit_terminal(&f.t, adv, valid, &o, &f.w, &f.list, &f.st));
    cr_expect_eq(f.list.n, 2);
    cr_expect_eq(f.st.n_masked, 1);
    teardown(&f);
}

/* TempFlow: N = 4, 1 trunk, K = 3, B = {0, 1}. Pool (hand-traced): trunk 0; step 0: trunk 1,
   branches 2, 3, 4; step 1: trunk 5, branches 6, 7, 8, continuations 9, 10, 11; step 2: 12..18;
   step 3: leaves 19 (trunk), 20, 21, 22 (branches 6, 7, 8), 23, 24, 25 (branches 2, 3, 4).
   Column of step 0: R = 1, 2, 3 -> mean 2, population std sqrt(2/3): A = ±1/(0.816497 + 1e-4)
   = ±1.2245949, 0. Column of step 1: R = 2, (masked), 6 -> mean 4, std 2: A = ±2/(2 + 1e-4)
   = ±0.99995. Weights: std (.9, .3, .2): T = {0, 1}, mean .6 -> 1.5, 0.5. */
Test(credit, tempflow_columns_and_weights) {
    const int B[2] = {0, 1};
    gv_topology topo;
    ASSERT_OK(gv_topology_branch_points(&topo, 4, 1, 3, B, 2));
    fixture f;
    setup(&f, &topo, 1);
    cr_assert_eq(f.t.count, 26);
    float R[26];
    uint8_t valid[26];
    for (int i = 0; i < 26; ++i) R[i] = 100.0f, valid[i] = 1; /* internal nodes are never read */
    R[23] = 1, R[24] = 2, R[25] = 3, R[20] = 2, R[21] = 7, R[22] = 6, valid[21] = 0;
    const float std[4] = {0.9f, 0.3f, 0.2f, 0.0f};
    gv_credit_opts o = gv_credit_opts_tempflow();
    o.N = 4;
    o.step_std = std;
    ASSERT_OK(gv_credit_tempflow(&f.t, R, valid, &o, &f.w, &f.list, &f.st));
    cr_expect_eq(f.list.n, 5);
    cr_expect_eq(f.st.n_masked, 1);
    cr_expect_eq(f.st.n_groups, 2);
    expect_sorted(&f);
    const int32_t child[5] = {2, 3, 4, 6, 8};
    const double want[5] = {-1.2245949, 0.0, 1.2245949, -0.99995, 0.99995};
    const double wt[5] = {1.5, 1.5, 1.5, 0.5, 0.5};
    double wsum = 0.0;
    for (int e = 0; e < 5; ++e) {
        const gv_credit_edge *ed = find(&f, child[e]);
        cr_assert_not_null(ed, "no triple for node %d", child[e]);
        EXPECT_NEAR(ed->advantage, want[e], 1e-5);
        EXPECT_NEAR(ed->weight, wt[e], 1e-6);
        cr_expect_eq(ed->parent, child[e] < 5 ? 0 : 1);
    }
    /* mean 1 over the trained steps (one weight per step) */
    wsum = find(&f, 2)->weight + find(&f, 6)->weight;
    EXPECT_NEAR(wsum / 2.0, 1.0, 1e-6);
    /* identical rewards: the column's advantages are all 0 and it is dropped; one valid branch
       is too small a column */
    R[23] = R[24] = R[25] = 4.0f;
    valid[22] = 0;
    ASSERT_OK(gv_credit_tempflow(&f.t, R, valid, &o, &f.w, &f.list, &f.st));
    cr_expect_eq(f.list.n, 0);
    cr_expect_eq(f.st.n_groups_zero, 1);
    cr_expect_eq(f.st.n_groups_small, 1);
    teardown(&f);
}

/* TempFlow with tempflow.group: prompt: 2 trunks x K = 3 at B = {0} pooled into one column of 6:
   R = 1..6, mean 3.5, population std 1.707825: A = (R - 3.5)/(1.707825 + 1e-4). */
Test(credit, tempflow_prompt_pooling) {
    const int B[1] = {0};
    gv_topology topo;
    ASSERT_OK(gv_topology_branch_points(&topo, 3, 2, 3, B, 1));
    fixture f;
    setup(&f, &topo, 1);
    float R[64];
    for (int i = 0; i < 64; ++i) R[i] = NAN; /* non-finite: invalid wherever read */
    /* leaves (step 3) of branch k of trunk g: find them by walking from the branch heads */
    float next = 1.0f;
    int32_t heads[6], nh = 0;
    for (int32_t c = 0; c < f.t.count; ++c)
        if (f.t.nodes[c].sde) heads[nh++] = c;
    cr_assert_eq(nh, 6);
    /* the pool orders heads trunk 0's 3 branches, then trunk 1's */
    for (int h = 0; h < 6; ++h) {
        int32_t n = heads[h];
        for (int32_t c = n + 1; c < f.t.count; ++c)
            if (f.t.nodes[c].parent == n) n = c;
        cr_assert_eq(f.t.nodes[n].step, 3);
        R[n] = next;
        next += 1.0f;
    }
    const float std[3] = {0.5f, 0.5f, 0.0f};
    gv_credit_opts o = gv_credit_opts_tempflow();
    o.N = 3;
    o.step_std = std;
    o.group = GV_CREDIT_GROUP_PROMPT;
    ASSERT_OK(gv_credit_tempflow(&f.t, R, NULL, &o, &f.w, &f.list, &f.st));
    cr_expect_eq(f.list.n, 6);
    const double want[6] = {-1.4637644, -0.8782586, -0.2927529, 0.2927529, 0.8782586, 1.4637644};
    for (int h = 0; h < 6; ++h) {
        const gv_credit_edge *ed = find(&f, heads[h]);
        cr_assert_not_null(ed);
        EXPECT_NEAR(ed->advantage, want[h], 1e-5);
        EXPECT_NEAR(ed->weight, 1.0, 1e-6); /* a single trained step has weight 1 */
    }
    /* per trunk instead: each column is 1, 2, 3 or 4, 5, 6: ±1.2245949, 0 */
    o.group = GV_CREDIT_GROUP_ROOT;
    ASSERT_OK(gv_credit_tempflow(&f.t, R, NULL, &o, &f.w, &f.list, &f.st));
    EXPECT_NEAR(find(&f, heads[0])->advantage, -1.2245949, 1e-5);
    EXPECT_NEAR(find(&f, heads[5])->advantage, 1.2245949, 1e-5);
    teardown(&f);
}

/* DenseGRPO: 1 prompt x 3 chains, N = 3 (SDE steps 0, 1). R (chain x i = 0..3):
     chain 0: .1 .3 .2 .6   gains  .2 -.1  .4
     chain 1: .5 .5 .9 .9   gains   0  .4   0
     chain 2: .2  0 .1 .4   gains -.2  .1  .3
   step 0: gains .2, 0, -.2: A = ±.2/(.163299 + 1e-4) = ±1.2239953, 0;
   step 1: gains -.1, .4, .1: A = -1.1349976, 1.2971401, -0.1621425. Chain r's node at step s
   is 3 s + r. */
Test(credit, dense_gains_advantages_and_masks) {
    gv_topology topo;
    ASSERT_OK(gv_topology_chains(&topo, 3, 3, NULL));
    fixture f;
    setup(&f, &topo, 1);
    const float R[12] = {.1f, .3f, .2f, .6f, .5f, .5f, .9f, .9f, .2f, 0.f, .1f, .4f};
    gv_credit_opts o = gv_credit_opts_dense();
    o.N = 3;
    ASSERT_OK(gv_credit_dense(&f.t, R, NULL, &o, &f.w, &f.list, &f.st));
    cr_expect_eq(f.list.n, 6);
    expect_sorted(&f);
    const int32_t child[6] = {3, 4, 5, 6, 7, 8};
    const double want[6] = {1.2239953, 0.0, -1.2239953, -1.1349976, 1.2971401, -0.1621425};
    for (int e = 0; e < 6; ++e) {
        const gv_credit_edge *ed = find(&f, child[e]);
        cr_assert_not_null(ed, "node %d", child[e]);
        EXPECT_NEAR(ed->advantage, want[e], 2e-5);
        cr_expect_eq(ed->step, e / 3);
        cr_expect_eq(ed->weight, 1.0f);
    }
    /* a masked R_1 of chain 1 masks its gains of steps 0 and 1: step 0 -> .2, -.2 (std .2:
       ±.2/(.2 + 1e-4) = ±0.9995002), step 1 -> -.1, .1 (std .1: ±0.9990010) */
    uint8_t ok[12];
    memset(ok, 1, sizeof ok);
    ok[4 + 1] = 0;
    ASSERT_OK(gv_credit_dense(&f.t, R, ok, &o, &f.w, &f.list, &f.st));
    cr_expect_eq(f.list.n, 4);
    cr_expect_eq(f.st.n_masked, 2);
    cr_expect_null(find(&f, 4));
    cr_expect_null(find(&f, 7));
    EXPECT_NEAR(find(&f, 3)->advantage, 0.9995002, 2e-5);
    EXPECT_NEAR(find(&f, 8)->advantage, 0.9990010, 2e-5);
    /* clamp: adv_clip 1 caps ±1.2239953, 1.2971401 and -1.1349976 */
    o.adv_clip = 1.0;
    ASSERT_OK(gv_credit_dense(&f.t, R, NULL, &o, &f.w, &f.list, &f.st));
    cr_expect_eq(f.st.n_clipped, 4);
    cr_expect_eq(find(&f, 3)->advantage, 1.0f);
    cr_expect_eq(find(&f, 5)->advantage, -1.0f);
    teardown(&f);
}

Test(credit, dense_gains_telescope) {
    enum { G = 5, N = 10 };
    float R[G * (N + 1)], gains[G * N];
    uint8_t gv[G * N];
    uint64_t s = 42;
    for (int i = 0; i < G * (N + 1); ++i) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        R[i] = (float)((double)(s >> 40) / (double)(1ull << 24));
    }
    gv_dense_gains(R, NULL, G, N, gains, gv);
    for (int g = 0; g < G; ++g) {
        double sum = 0.0;
        for (int i = 0; i < N; ++i) {
            cr_expect(gv[g * N + i]);
            sum += gains[g * N + i];
        }
        EXPECT_NEAR(sum, (double)R[g * (N + 1) + N] - R[g * (N + 1)], 1e-5);
    }
    uint8_t ok[G * (N + 1)];
    memset(ok, 1, sizeof ok);
    ok[3] = 0; /* chain 0's R_3 masks the gains of steps 2 and 3 */
    gv_dense_gains(R, ok, G, N, gains, gv);
    for (int i = 0; i < N; ++i) cr_expect_eq(gv[i], i != 2 && i != 3, "gain %d", i);
}

/* DenseGRPO completion grids (ALGORITHMS.md §5), N = 10, S = 3 (σ of §1's check):
   `all` from step 2: σ_2..σ_10 = .923077 .875 .818182 .75 .666667 .5625 .428571 .25 0 (8 steps);
   n = 2 from step 2: .923077, .461538, 0. */
Test(credit, dense_completion_grids) {
    float sigmas[11], out[11];
    int n;
    ASSERT_OK(gv_schedule_sigmas(10, 3.0, sigmas));
    ASSERT_OK(gv_schedule_completion_sigmas(sigmas, 10, 2, GV_DENSE_COMPLETION_ALL, out, &n));
    cr_expect_eq(n, 8);
    const double all[9] = {.923077, .875, .818182, .75, .666667, .5625, .428571, .25, 0};
    for (int j = 0; j < 9; ++j) EXPECT_NEAR(out[j], all[j], 1e-6);
    ASSERT_OK(gv_schedule_completion_sigmas(sigmas, 10, 2, 2, out, &n));
    cr_expect_eq(n, 2);
    EXPECT_NEAR(out[0], .923077, 1e-6);
    EXPECT_NEAR(out[1], .461538, 1e-6);
    cr_expect_eq(out[2], 0.0f);
    ASSERT_OK(gv_schedule_completion_sigmas(sigmas, 10, 9, GV_DENSE_COMPLETION_ALL, out, &n));
    cr_expect_eq(n, 1); /* x_9's completion is the rollout's own last step: R_9 = R_10 */
    cr_expect_eq(gv_schedule_completion_sigmas(sigmas, 10, 2, 0, out, &n), GV_ERR_INVALID);
    cr_expect_eq(gv_schedule_completion_sigmas(sigmas, 10, 10, 2, out, &n), GV_ERR_INVALID);
}

/* BranchGRPO: N = 3, 1 tree, K = 2, P = {0, 1}. Pool: root 0; depth 1: 1, 2; depth 2: 3, 4
   (under 1), 5, 6 (under 2); leaves 7..10 (ODE). Leaf rewards 1, 2, 3, 6.
   mean fusion: depth 1 values 1.5, 4.5 -> 2 nodes: A = ±0.7071068 (the known property);
   depth 2 values 1, 2, 3, 6: mean 3, unbiased sd sqrt(14/3) = 2.160247:
   A = -0.9258201, -0.4629100, 0 (skipped), 1.3887301. The leaf edges are ODE: untrained. */
Test(credit, branch_depthwise_mean_fusion) {
    const int P[2] = {0, 1};
    gv_topology topo;
    ASSERT_OK(gv_topology_tree(&topo, 3, 1, 2, 4.0, GV_SPLIT_DENSITY_SCALED, P, 2, NULL));
    fixture f;
    setup(&f, &topo, 1);
    cr_assert_eq(f.t.count, 11);
    float R[11] = {0};
    R[7] = 1, R[8] = 2, R[9] = 3, R[10] = 6;
    gv_credit_opts o = gv_credit_opts_branch();
    o.N = 3;
    ASSERT_OK(gv_credit_branch(&f.t, R, NULL, &o, &f.w, &f.list, &f.st));
    cr_expect_eq(f.list.n, 5);
    cr_expect_eq(f.st.n_zero, 1);
    expect_sorted(&f);
    const int32_t child[5] = {1, 2, 3, 4, 6};
    const double want[5] = {-0.7071068, 0.7071068, -0.9258201, -0.4629100, 1.3887301};
    for (int e = 0; e < 5; ++e) {
        cr_expect_eq(f.list.edges[e].child, child[e]);
        EXPECT_NEAR(f.list.edges[e].advantage, want[e], 1e-6);
    }
    /* a masked leaf (R of node 10): node 6 has no valid leaf -> no advantage; node 2's value is
       3; depth 1: 1.5, 3 -> ±0.7071068; depth 2: 1, 2, 3: mean 2, sd 1 -> -1, 0, 1 */
    const uint8_t valid[11] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0};
    ASSERT_OK(gv_credit_branch(&f.t, R, valid, &o, &f.w, &f.list, &f.st));
    cr_expect_eq(f.st.n_masked, 1);
    cr_expect_null(find(&f, 6));
    cr_expect_null(find(&f, 4)); /* A = 0 */
    EXPECT_NEAR(find(&f, 3)->advantage, -1.0, 1e-6);
    EXPECT_NEAR(find(&f, 5)->advantage, 1.0, 1e-6);
    EXPECT_NEAR(find(&f, 2)->advantage, 0.7071068, 1e-6);
    /* all leaves equal: sd < 1e-6 at every depth, nothing trains */
    const float same[11] = {0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2};
    ASSERT_OK(gv_credit_branch(&f.t, same, NULL, &o, &f.w, &f.list, &f.st));
    cr_expect_eq(f.list.n, 0);
    teardown(&f);
}

/* prob_weighted fusion (alpha = 1): node 1's children have logp -1, -2: softmax (0.731059,
   0.268941) -> R(1) = 1.268941; node 2's have equal logp: R(2) = 4.5. Depth 1 is still two
   nodes (±0.7071068); pooling 2 trees of one prompt (branch.normalize: prompt) with rewards
   1, 2, 3, 6 and 1, 2, 3, 6 + 10 gives depth 1 values 1.5, 4.5, 11.5, 14.5 (mean fusion):
   mean 8, unbiased sd 6.027714: A(1.5) = -1.0783525. */
Test(credit, branch_prob_weighted_and_prompt_pooling) {
    const int P[2] = {0, 1};
    gv_topology topo;
    ASSERT_OK(gv_topology_tree(&topo, 3, 1, 2, 4.0, GV_SPLIT_DENSITY_SCALED, P, 2, NULL));
    fixture f;
    setup(&f, &topo, 1);
    float R[11] = {0};
    R[7] = 1, R[8] = 2, R[9] = 3, R[10] = 6;
    f.t.nodes[3].logp_old = -1.0f, f.t.nodes[4].logp_old = -2.0f;
    f.t.nodes[5].logp_old = 0.5f, f.t.nodes[6].logp_old = 0.5f;
    gv_credit_opts o = gv_credit_opts_branch();
    o.N = 3;
    o.fusion = GV_FUSION_PROB_WEIGHTED;
    ASSERT_OK(gv_credit_branch(&f.t, R, NULL, &o, &f.w, &f.list, &f.st));
    EXPECT_NEAR(f.w.value[1], 1.2689414, 1e-6);
    EXPECT_NEAR(f.w.value[2], 4.5, 1e-9);
    EXPECT_NEAR(find(&f, 1)->advantage, -0.7071068, 1e-6);
    teardown(&f);

    ASSERT_OK(gv_topology_tree(&topo, 3, 2, 2, 4.0, GV_SPLIT_DENSITY_SCALED, P, 2, NULL));
    setup(&f, &topo, 1);
    cr_assert_eq(f.t.count, 22);
    float R2[22] = {0};
    /* leaves are the last 8 nodes: tree 0's four, then tree 1's four */
    const float leaves[8] = {1, 2, 3, 6, 11, 12, 13, 16};
    for (int i = 0; i < 8; ++i) R2[14 + i] = leaves[i];
    for (int i = 0; i < 8; ++i) cr_assert_eq(f.t.nodes[14 + i].root, i / 4);
    o = gv_credit_opts_branch();
    o.N = 3;
    o.group = GV_CREDIT_GROUP_PROMPT;
    ASSERT_OK(gv_credit_branch(&f.t, R2, NULL, &o, &f.w, &f.list, &f.st));
    /* depth-1 nodes: 2, 3 (tree 0), 4, 5 (tree 1) */
    EXPECT_NEAR(find(&f, 2)->advantage, -1.0783525, 1e-6);
    EXPECT_NEAR(find(&f, 5)->advantage, 1.0783525, 1e-6);
    teardown(&f);
}

Test(credit, noise_aware_weights_mean_one) {
    const float std[6] = {0.7f, 0.738f, 0.532f, 0.441f, 0.388f, 0.0f};
    const uint8_t use[6] = {1, 0, 1, 1, 1, 0};
    float w[6];
    ASSERT_OK(gv_credit_noise_aware_weights(std, use, 6, w));
    double sum = 0.0;
    for (int i = 0; i < 6; ++i) sum += use[i] ? w[i] : 0.0;
    EXPECT_NEAR(sum / 4.0, 1.0, 1e-6);
    EXPECT_NEAR(w[0], 0.7 / ((0.7 + 0.532 + 0.441 + 0.388) / 4.0), 1e-6);
    cr_expect_eq(w[1], 0.0f);
    const uint8_t bad[6] = {0, 0, 0, 0, 0, 1}; /* std 0 on a used step */
    cr_expect_eq(gv_credit_noise_aware_weights(std, bad, 6, w), GV_ERR_INVALID);
}

/* Pruning on a hand-built list. Tree N = 6, K = 2, P = {0}: root 0; depth 1: 1, 2; then chains
   1 -> 3 -> 5 -> 7 -> 9 -> 11 (leaf A = 11) and 2 -> 4 -> 6 -> 8 -> 10 -> 12 (leaf B = 12).
   Tail edges (parent step > 0): steps 1..4 into 3, 5, 7, 9 (A) and 4, 6, 8, 10 (B). */
Test(credit, pruning_rules_and_reuse) {
    const int P[1] = {0};
    gv_topology topo;
    ASSERT_OK(gv_topology_tree(&topo, 6, 1, 2, 4.0, GV_SPLIT_DENSITY_SCALED, P, 1, NULL));
    fixture f;
    setup(&f, &topo, 1);
    cr_assert_eq(f.t.count, 13);
    /* advantages: split edges .5, -.5; chain A .1 .9 .9 .3; chain B all -1 */
    const int32_t child[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    const float adv[10] = {.5f, -.5f, .1f, -1, .9f, -1, .9f, -1, .3f, -1};
    gv_prune_work pw;
    ASSERT_OK(gv_prune_work_init(&pw, 13));
    gv_reuse_plan rp;
    ASSERT_OK(gv_reuse_plan_init(&rp, 13));
#define FILL()                                                                                     \
    do {                                                                                           \
        f.list.n = 10;                                                                             \
        for (int e = 0; e < 10; ++e)                                                               \
            f.list.edges[e] = (gv_credit_edge){.child = child[e],                                  \
                                               .parent = f.t.nodes[child[e]].parent, .root = 0,    \
                                               .step = f.t.nodes[child[e]].step - 1,               \
                                               .advantage = adv[e], .weight = 1};                  \
    } while (0)
    gv_prune_stats ps;
    /* per_branch 0.5: each chain keeps 2 of 4: A the two .9 (steps 2, 3), B the earliest (1, 2) */
    FILL();
    gv_prune_spec pb = {.width = GV_PRUNE_WIDTH_PER_BRANCH, .width_ratio = 0.5};
    ASSERT_OK(gv_prune_apply(&pb, &f.t, 0, 0, &pw, &f.list, &ps));
    const int32_t keep_pb[6] = {1, 2, 4, 5, 6, 7};
    cr_assert_eq(f.list.n, 6);
    for (int e = 0; e < 6; ++e) cr_expect_eq(f.list.edges[e].child, keep_pb[e], "edge %d", e);
    cr_expect_eq(ps.n_tail, 8);
    cr_expect_eq(ps.n_tail_kept, 4);
    /* reuse: parents 0 (two children), 2, 3, 4, 5 -> 5 forwards for 6 edges */
    ASSERT_OK(gv_reuse_plan_build(&f.list, &rp));
    cr_expect_eq(rp.n_parents, 5);
    cr_expect_eq(rp.parent[0], 0);
    cr_expect_eq(rp.first[1], 2);
    /* global 0.75 over 8 tail edges: k = 6: the 3 highest (.9 s2, .9 s3, .3 s4 of A) and the 3
       lowest (B's -1s, ties by (leaf, step): steps 1, 2, 3) */
    FILL();
    gv_prune_spec gl = {.width = GV_PRUNE_WIDTH_GLOBAL, .width_ratio = 0.75};
    ASSERT_OK(gv_prune_apply(&gl, &f.t, 0, 0, &pw, &f.list, &ps));
    const int32_t keep_gl[8] = {1, 2, 4, 5, 6, 7, 8, 9};
    cr_assert_eq(f.list.n, 8);
    for (int e = 0; e < 8; ++e) cr_expect_eq(f.list.edges[e].child, keep_gl[e], "edge %d", e);
    /* global 0.1: k = max(2, 0) = 2: the highest (.9, step 2 of A: node 5) and the lowest (B's
       step 1: node 4) */
    FILL();
    gl.width_ratio = 0.1;
    ASSERT_OK(gv_prune_apply(&gl, &f.t, 0, 0, &pw, &f.list, &ps));
    const int32_t keep_k2[4] = {1, 2, 4, 5};
    cr_assert_eq(f.list.n, 4);
    for (int e = 0; e < 4; ++e) cr_expect_eq(f.list.edges[e].child, keep_k2[e], "edge %d", e);
    /* depth fixed {2, 3}: drops the edges into depth 2 and 3 (nodes 3, 4, 5, 6) */
    FILL();
    gv_prune_spec dp = {.depth = GV_PRUNE_DEPTH_FIXED, .depths = {2, 3}, .n_depths = 2};
    ASSERT_OK(gv_prune_apply(&dp, &f.t, 0, 0, &pw, &f.list, &ps));
    cr_expect_eq(f.list.n, 6);
    cr_expect_eq(ps.n_depth_dropped, 4);
    cr_expect_null(find(&f, 3));
    cr_expect_null(find(&f, 6));
    /* reuse refuses an unsorted list */
    FILL();
    gv_credit_edge tmp = f.list.edges[0];
    f.list.edges[0] = f.list.edges[5];
    f.list.edges[5] = tmp;
    cr_expect_eq(gv_reuse_plan_build(&f.list, &rp), GV_ERR_INVALID);
#undef FILL
    gv_reuse_plan_free(&rp);
    gv_prune_work_free(&pw);
    teardown(&f);
}

/* Sliding depth pruning: D = {5, 6}, one depth shallower every 10 iterations, stopping when the
   shallowest depth reaches 3. */
Test(credit, sliding_depth_mask) {
    gv_prune_spec s = {.depth = GV_PRUNE_DEPTH_SLIDING, .depths = {5, 6}, .n_depths = 2,
                       .interval = 10, .stop_depth = 3};
    uint8_t m[10];
    const int it[5] = {0, 9, 10, 20, 95};
    const int lo[5] = {5, 5, 4, 3, 3};
    for (int k = 0; k < 5; ++k) {
        ASSERT_OK(gv_prune_depth_mask(&s, it[k], m, 9));
        for (int d = 0; d <= 9; ++d)
            cr_expect_eq(m[d], d == lo[k] || d == lo[k] + 1, "iteration %d depth %d", it[k], d);
    }
    s.interval = 0;
    cr_expect_eq(gv_prune_depth_mask(&s, 0, m, 9), GV_ERR_INVALID);
    gv_prune_spec w = {.width = GV_PRUNE_WIDTH_GLOBAL, .width_ratio = 1.5};
    cr_expect_eq(gv_prune_validate(&w), GV_ERR_INVALID);
}
