/* Tests of the rollout topologies (samplers/topology.c; DESIGN.md §4; ALGORITHMS.md §4, §6) and
 * the plan counts (engine/train/rollout_plan.c): per-step frontier batches counted by hand,
 * branch-point ids (distinct, step-addressed, no overflow where the mixed-radix rule would
 * overflow), sibling noise through the RNG address, split-density scales, load rules, and the
 * plan numbers of ALGORITHMS.md §6 (N = 20, P = {0,3,6,9}, K = 2), and a small tree rollout driven
 * by the topology's per-step batches through the real CPU step ops (one forward per step over
 * the frontier, split children drawn with lambda std and scored under either density). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "grove/backend.h"
#include "grove/kernels_cpu.h"
#include "grove/rng.h"
#include "grove/rollout_plan.h"
#include "samplers/schedule.h"
#include "samplers/topology.h"

static gv_tree_action acts[4096]; /* build scratch */

#define ASSERT_OK(expr) cr_assert_eq((expr), GV_OK, "%s", gv_last_error())

static void build(const gv_topology *topo, gv_tree *t, int n_prompts) {
    int64_t nodes, rows, children;
    ASSERT_OK(gv_topology_sizes(topo, n_prompts, &nodes, &rows, &children));
    ASSERT_OK(gv_tree_init(t, (int32_t)nodes, 4));
    ASSERT_OK(gv_topology_build(topo, t, n_prompts, acts, 4096));
    cr_assert_eq(t->count, nodes, "sizes() promised %lld nodes, the build made %d",
                 (long long)nodes, t->count);
}

/* The noise of the edge into `node` at its step: element 0..3 of its RNG address. */
static void edge_noise(const gv_tree *t, int32_t node, float out[4]) {
    gv_rng_addr a;
    const int32_t step = t->nodes[t->nodes[node].parent].step;
    ASSERT_OK(gv_tree_rng_addr(t, node, 7, (uint32_t)step, GV_RNG_PURPOSE_STEP_NOISE, &a));
    uint32_t key[2], hi[3];
    gv_rng_key(1234, GV_RNG_STREAM_SAMPLER, key);
    ASSERT_OK(gv_rng_addr_pack(&a, hi));
    for (int e = 0; e < 4; ++e) out[e] = gv_rng_normal_at(key, hi, (uint64_t)e);
}

Test(topology, chains_keep_flow_grpo_ids_and_batches) {
    gv_topology topo;
    ASSERT_OK(gv_topology_chains(&topo, 10, 8, NULL));
    gv_tree t;
    int64_t nodes, rows, children;
    ASSERT_OK(gv_topology_sizes(&topo, 2, &nodes, &rows, &children));
    cr_expect_eq(nodes, 176); /* 16 roots + 10 x 16 */
    cr_expect_eq(rows, 16);
    cr_expect_eq(children, 16);
    ASSERT_OK(gv_tree_init(&t, 176, 4));
    ASSERT_OK(gv_tree_add_roots(&t, 2, 8));
    gv_tree_action act[16];
    for (int i = 0; i < 10; ++i) {
        gv_step_batch b;
        ASSERT_OK(gv_topology_expand(&topo, &t, i, act, 16, &b));
        cr_expect_eq(b.rows_begin, 16 * i);
        cr_expect_eq(b.n_rows, 16);
        cr_expect_eq(b.child_begin, 16 * (i + 1));
        cr_expect_eq(b.n_children, 16);
        cr_expect_eq(b.n_sde, i < 9 ? 16 : 0, "step %d", i); /* the last step is ODE */
    }
    /* the same pool the Flow-GRPO rollout builds with gv_tree_expand: ids are the root index */
    gv_tree ref;
    ASSERT_OK(gv_tree_init(&ref, 176, 4));
    ASSERT_OK(gv_tree_add_roots(&ref, 2, 8));
    for (int s = 0; s < 10; ++s) ASSERT_OK(gv_tree_expand(&ref, 1, s < 9));
    cr_expect_eq(memcmp(ref.nodes, t.nodes, sizeof *t.nodes * 176), 0);
    cr_expect(t.is_chain);
    cr_expect_eq(gv_topology_last_split(&topo), -1);
    gv_tree_free(&ref);
    gv_tree_free(&t);
}

/* TempFlow: N = 10, 2 trunks, K = 6 at B = {0, 2, 4, 6, 8}. Per trunk: roots 1; each step the
   trunk gets 1 child, plus 6 at a branch step; every branch continues with 1 child per step.
   Frontier at step i = 1 + 6 x (branch steps < i). Nodes per trunk: 1 + 10 + 6 x 5 branches x
   their remaining steps (10 - i) for i in B = 1 + 10 + 6 x (10 + 8 + 6 + 4 + 2) = 191. */
Test(topology, branch_points_counts_ids_and_noise) {
    const int B[5] = {0, 2, 4, 6, 8};
    gv_topology topo;
    ASSERT_OK(gv_topology_branch_points(&topo, 10, 2, 6, B, 5));
    gv_tree t;
    build(&topo, &t, 3);
    cr_expect_eq(t.count, 3 * 2 * 191);
    int32_t begin, n;
    gv_tree_frontier(&t, &begin, &n);
    cr_expect_eq(n, 3 * 2 * 31); /* leaves: trunk + 30 branches */
    int sde_edges = 0;
    for (int32_t c = 0; c < t.count; ++c) {
        const gv_tree_node *nd = &t.nodes[c];
        if (nd->parent < 0) continue;
        const gv_tree_node *p = &t.nodes[nd->parent];
        if (nd->sde) {
            sde_edges++;
            cr_expect(nd->branch && !p->branch, "an SDE edge leaves the trunk");
            cr_expect(p->step % 2 == 0 && p->step <= 8);
            /* tree.h: id = parent id + stride (k + K step), k = child_index 1..K */
            cr_expect_eq(nd->node_id, p->node_id + p->id_stride *
                                          (uint32_t)(nd->child_index + 6 * p->step));
        } else if (!nd->branch) {
            cr_expect_eq(nd->node_id, p->node_id, "the trunk keeps its id");
        }
    }
    cr_expect_eq(sde_edges, 3 * 2 * 5 * 6);
    /* every noise draw (SDE edge) of one prompt has a distinct (node id, step) address, and
       distinct node ids even across steps */
    for (int32_t a = 0; a < t.count; ++a)
        for (int32_t b = a + 1; b < t.count; ++b) {
            const gv_tree_node *x = &t.nodes[a], *y = &t.nodes[b];
            if (!x->sde || !y->sde || x->prompt != y->prompt) continue;
            cr_expect_neq(x->node_id, y->node_id, "nodes %d and %d", a, b);
        }
    /* siblings at one branch step draw different noise through the RNG address */
    int32_t first = -1;
    for (int32_t c = 0; c < t.count && first < 0; ++c)
        if (t.nodes[c].sde) first = c;
    float z0[4], z1[4];
    edge_noise(&t, first, z0);
    edge_noise(&t, first + 1, z1);
    cr_expect_eq(t.nodes[first].parent, t.nodes[first + 1].parent);
    cr_expect(z0[0] != z1[0] && z0[1] != z1[1], "siblings share noise");
    /* a branch never splits */
    gv_tree_action act = {.children = 2, .sde = 1, .split = 1};
    gv_tree one;
    ASSERT_OK(gv_tree_init(&one, 64, 1));
    ASSERT_OK(gv_tree_add_roots(&one, 1, 1));
    ASSERT_OK(gv_tree_expand_actions(&one, &(gv_tree_action){.children = 2, .sde = 1,
                                                             .branch = 1}));
    gv_tree_action acts[3] = {{.children = 1}, act, {.children = 1}};
    cr_expect_eq(gv_tree_expand_actions(&one, acts), GV_ERR_INVALID);
    cr_expect_eq(one.count, 4, "a refused expansion leaves the tree unchanged");
    gv_tree_free(&one);
    gv_tree_free(&t);
}

/* N = 20, branches at every stochastic step, K = 6, 4 trunks: the mixed-radix rule would need
   ids up to 4 x 7^19 (beyond 2^24); the step-addressed rule needs 4 x (6 x 19 + 1) = 460. */
Test(topology, branch_points_fit_the_node_field) {
    int B[19];
    for (int i = 0; i < 19; ++i) B[i] = i;
    gv_topology topo;
    ASSERT_OK(gv_topology_branch_points(&topo, 20, 4, 6, B, 19));
    gv_tree t;
    build(&topo, &t, 1);
    uint32_t max_id = 0;
    for (int32_t c = 0; c < t.count; ++c)
        if (t.nodes[c].node_id > max_id) max_id = t.nodes[c].node_id;
    cr_expect_lt(max_id, 460u);
    cr_expect_geq(max_id, 4u * 6u * 18u); /* the last branch step's ids reach past K x 18 x G */
    gv_tree_free(&t);
    /* a configuration beyond the field is a load error naming it */
    cr_expect_eq(gv_topology_branch_points(&topo, 20, 1 << 20, 6, B, 19), GV_ERR_INVALID);
    cr_expect(strstr(gv_last_error(), "RNG node field") != NULL, "%s", gv_last_error());
}

Test(topology, tree_siblings_scales_and_rules) {
    const int P[4] = {0, 3, 6, 9};
    gv_topology topo;
    ASSERT_OK(gv_topology_tree(&topo, 20, 1, 2, 4.0, GV_SPLIT_DENSITY_SCALED, P, 4, NULL));
    gv_tree t;
    build(&topo, &t, 2);
    int32_t begin, n;
    gv_tree_frontier(&t, &begin, &n);
    cr_expect_eq(n, 2 * 16);
    /* every pair of siblings at a split has distinct noise; the split children carry lambda */
    int splits = 0;
    for (int32_t c = 1; c < t.count; ++c) {
        const gv_tree_node *a = &t.nodes[c - 1], *b = &t.nodes[c];
        float na, la;
        gv_topology_edge_scales(&topo, b, &na, &la);
        if (b->split) {
            cr_expect_eq(na, 4.0f);
            cr_expect_eq(la, 4.0f); /* scaled density */
        } else if (b->sde) {
            cr_expect_eq(na, 1.0f);
        } else if (b->parent >= 0) {
            cr_expect_eq(na, 0.0f);
        }
        if (a->parent < 0 || a->parent != b->parent) continue;
        splits++;
        cr_expect(a->split && b->split);
        cr_expect_neq(a->node_id, b->node_id);
        float za[4], zb[4];
        edge_noise(&t, c - 1, za);
        edge_noise(&t, c, zb);
        cr_expect(za[0] != zb[0] && za[3] != zb[3], "siblings %d, %d share noise", c - 1, c);
    }
    cr_expect_eq(splits, 2 * (1 + 2 + 4 + 8)); /* one sibling pair per split node */
    /* a replayed tree is identical (same ids, hence the same noise) */
    gv_tree u;
    build(&topo, &u, 2);
    cr_expect_eq(memcmp(t.nodes, u.nodes, sizeof *t.nodes * (size_t)t.count), 0);
    gv_tree_free(&u);
    gv_tree_free(&t);
    /* reference density scores split children under std, not lambda std */
    ASSERT_OK(gv_topology_tree(&topo, 20, 1, 2, 4.0, GV_SPLIT_DENSITY_REFERENCE, P, 4, NULL));
    float na, la;
    gv_topology_edge_scales(&topo, &(gv_tree_node){.parent = 0, .sde = 1, .split = 1}, &na, &la);
    cr_expect_eq(na, 4.0f);
    cr_expect_eq(la, 1.0f);
    /* load rules: splits beyond N-2, duplicates, K < 2 */
    const int late[2] = {0, 19};
    cr_expect_eq(gv_topology_tree(&topo, 20, 1, 2, 4.0, 0, late, 2, NULL), GV_ERR_INVALID);
    cr_expect(strstr(gv_last_error(), "split step 19") != NULL, "%s", gv_last_error());
    const int dup[2] = {3, 3};
    cr_expect_eq(gv_topology_tree(&topo, 20, 1, 2, 4.0, 0, dup, 2, NULL), GV_ERR_INVALID);
    cr_expect_eq(gv_topology_tree(&topo, 20, 1, 1, 4.0, 0, P, 4, NULL), GV_ERR_INVALID);
    const int b18[1] = {18};
    cr_expect_eq(gv_topology_branch_points(&topo, 20, 2, 6, b18, 1), GV_OK); /* N-2 is allowed */
}

Test(topology, splits_from_fractions) {
    const double f[4] = {0, .15, .3, .45};
    int s[4];
    ASSERT_OK(gv_topology_splits_from_frac(20, f, 4, s));
    cr_expect(s[0] == 0 && s[1] == 3 && s[2] == 6 && s[3] == 9, "%d %d %d %d", s[0], s[1], s[2],
              s[3]);
    ASSERT_OK(gv_topology_splits_from_frac(10, f, 4, s));
    cr_expect(s[0] == 0 && s[1] == 2 && s[2] == 3 && s[3] == 5, "%d %d %d %d", s[0], s[1], s[2],
              s[3]);
    const double bad = 1.5;
    cr_expect_eq(gv_topology_splits_from_frac(10, &bad, 1, s), GV_ERR_INVALID);
}

/* ALGORITHMS.md §6 plan numbers, counted by the real topology, pruning and reuse code. Hand
   count: nodes at depth d = 2^(#splits < d): depths 1-3: 2, 4-6: 4, 7-9: 8, 10-20: 16.
   Transitions = sum over depths 1..20 = 6 + 12 + 24 + 176 = 218; rollout forwards = sum over
   depths 0..19 = 1 + 6 + 12 + 24 + 160 = 203; trainable = 218 - 16 final ODE edges = 202;
   training forwards = distinct parents (depths 0..18) = 187. */
Test(topology, plan_numbers_of_branch_grpo) {
    const int P[4] = {0, 3, 6, 9};
    gv_topology topo;
    ASSERT_OK(gv_topology_tree(&topo, 20, 1, 2, 4.0, GV_SPLIT_DENSITY_SCALED, P, 4, NULL));
    gv_rollout_plan p;
    ASSERT_OK(gv_rollout_plan_compute(&topo, &(gv_plan_opts){.n_prompts = 1}, &p));
    cr_expect_eq(p.leaves, 16);
    cr_expect_eq(p.rollout_forwards, 203);
    cr_expect_eq(p.transitions, 218);
    cr_expect_eq(p.transitions * 1000 / p.leaves, 13625); /* 13.625 per leaf */
    cr_expect_eq(p.trainable_edges, 202);
    cr_expect_eq(p.trained_edges, 202);
    cr_expect_eq(p.training_forwards, 187);
    cr_expect_eq(p.training_forwards_no_reuse, 202);
    /* per_branch at 0.5: tail chains of 9 trainable edges keep 4: 58 + 64 = 122, 107 forwards */
    gv_prune_spec pb = {.width = GV_PRUNE_WIDTH_PER_BRANCH, .width_ratio = 0.5};
    ASSERT_OK(gv_rollout_plan_compute(&topo, &(gv_plan_opts){.n_prompts = 1, .prune = &pb}, &p));
    cr_expect_eq(p.trained_edges, 122);
    cr_expect_eq(p.trained_edges * 1000 / p.leaves, 7625); /* 7.625 per leaf */
    cr_expect_eq(p.training_forwards, 107);
    /* global at 0.5: 144 tail edges, 72 kept: 58 + 72 = 130 (43 + 72 = 115 forwards) */
    gv_prune_spec gl = {.width = GV_PRUNE_WIDTH_GLOBAL, .width_ratio = 0.5};
    ASSERT_OK(gv_rollout_plan_compute(&topo, &(gv_plan_opts){.n_prompts = 1, .prune = &gl}, &p));
    cr_expect_eq(p.trained_edges, 130);
    cr_expect_eq(p.training_forwards, 115);
}

/* The other presets' plans, counted by hand. */
Test(topology, plan_numbers_of_chains_tempflow_dense_and_mix) {
    gv_topology topo;
    gv_rollout_plan p;
    /* Flow-GRPO: 8 prompts x 8 chains, N = 10: 80 forwards and 72 trainable edges per chain */
    ASSERT_OK(gv_topology_chains(&topo, 10, 8, NULL));
    ASSERT_OK(gv_rollout_plan_compute(&topo, &(gv_plan_opts){.n_prompts = 8}, &p));
    cr_expect_eq(p.roots, 64);
    cr_expect_eq(p.rollout_forwards, 640);
    cr_expect_eq(p.trainable_edges, 576);
    cr_expect_eq(p.training_forwards, 576); /* no sharing in chains */
    /* DenseGRPO, completion all: R_0..R_8 need 10 + 9 + ... + 2 = 54 forwards per chain */
    ASSERT_OK(gv_rollout_plan_compute(
        &topo, &(gv_plan_opts){.n_prompts = 1, .dense_completion = GV_DENSE_COMPLETION_ALL}, &p));
    cr_expect_eq(p.completion_forwards, 8 * 54);
    /* completion_steps 2: R_0..R_9 (R_9 used by the gain of step 8) at 2 forwards each */
    ASSERT_OK(gv_rollout_plan_compute(&topo, &(gv_plan_opts){.n_prompts = 1,
                                                             .dense_completion = 2}, &p));
    cr_expect_eq(p.completion_forwards, 8 * 20);
    /* TempFlow, every stochastic step a branch step, K = 6: 270 completion forwards per trunk
       (ALGORITHMS.md §4) plus the trunk's own 10 */
    int B[9];
    for (int i = 0; i < 9; ++i) B[i] = i;
    ASSERT_OK(gv_topology_branch_points(&topo, 10, 1, 6, B, 9));
    ASSERT_OK(gv_rollout_plan_compute(&topo, &(gv_plan_opts){.n_prompts = 1}, &p));
    cr_expect_eq(p.rollout_forwards, 280);
    cr_expect_eq(p.trainable_edges, 54);
    cr_expect_eq(p.training_forwards, 9); /* one trunk forward per branch step serves 6 */
    /* BranchGRPO-Mix: window [0, 4) plus splits {0,3,6,9}: SDE steps 0,1,2,3,6,9 carry
       2 + 2 + 2 + 4 + 8 + 16 = 34 edges; the rollout is unchanged (203) */
    const int P[4] = {0, 3, 6, 9};
    uint8_t window[20] = {1, 1, 1, 1};
    ASSERT_OK(gv_topology_tree(&topo, 20, 1, 2, 4.0, GV_SPLIT_DENSITY_SCALED, P, 4, window));
    ASSERT_OK(gv_rollout_plan_compute(&topo, &(gv_plan_opts){.n_prompts = 1}, &p));
    cr_expect_eq(p.rollout_forwards, 203);
    cr_expect_eq(p.trainable_edges, 34);
    cr_expect_eq(p.training_forwards, 1 + 2 + 2 + 2 + 4 + 8); /* parents at steps 0,1,2,3,6,9 */
}

/* ---- a tree rollout through the real step ops ------------------------------------------------ */

typedef struct toy_rollout {
    gv_tree t;
    float *x;      /* (capacity, D) latents, pool order (CPU backend memory is host memory) */
    float *v;      /* (max_rows, D) the step's forward output                              */
    float *eps;    /* (D)                                                                   */
    int forwards;  /* denoiser calls                                                       */
    int rows[8];   /* rows of each call                                                    */
} toy_rollout;

enum { TOY_D = 8 };

/* N = 4, 2 trees per prompt, K = 2 at P = {0, 1}, lambda = 2, constant eta = .3, toy velocity
   v = -0.5 x: ONE "forward" per step over the frontier rows, then one step op per child (parent
   row gathered; split children drawn with lambda std; logp under the topology's density). */
static void toy_run(const gv_topology *topo, toy_rollout *r) {
    gv_ctx *ctx = NULL;
    ASSERT_OK(grove_backend_cpu()->ctx_create(&(gv_ctx_options){.threads = 1}, &ctx));
    const gv_ops *ops = ctx->backend->ops;
    int64_t nodes, rows, children;
    ASSERT_OK(gv_topology_sizes(topo, 1, &nodes, &rows, &children));
    ASSERT_OK(gv_tree_init(&r->t, (int32_t)nodes, TOY_D));
    r->x = calloc((size_t)(nodes * TOY_D), sizeof(float));
    r->v = calloc((size_t)(rows * TOY_D), sizeof(float));
    r->eps = calloc(TOY_D, sizeof(float));
    r->forwards = 0;
    ASSERT_OK(gv_tree_add_roots(&r->t, 1, topo->group_size));
    for (int32_t s = 0; s < r->t.n_roots; ++s) {
        gv_rng_addr a;
        gv_philox_args pa;
        ASSERT_OK(gv_tree_rng_addr(&r->t, s, 3, 0, GV_RNG_PURPOSE_LATENT, &a));
        ASSERT_OK(gv_rng_args(99, GV_RNG_STREAM_SAMPLER, &a, 0, TOY_D, &pa));
        ASSERT_OK(ops->philox_normal_fill(ctx, r->x + r->t.nodes[s].latent, &pa));
    }
    float sigmas[5];
    ASSERT_OK(gv_schedule_sigmas(topo->N, 3.0, sigmas));
    const gv_noise_spec spec = {.kind = GV_NOISE_CONSTANT, .level = 0.3};
    for (int i = 0; i < topo->N; ++i) {
        gv_step_batch b;
        ASSERT_OK(gv_topology_expand(topo, &r->t, i, acts, 4096, &b));
        const float *xr = r->x + r->t.nodes[b.rows_begin].latent; /* contiguous frontier rows */
        for (int64_t e = 0; e < (int64_t)b.n_rows * TOY_D; ++e) r->v[e] = -0.5f * xr[e];
        r->rows[r->forwards++] = b.n_rows;
        gv_step_args a;
        int is_sde;
        ASSERT_OK(gv_step_coeffs(&spec, sigmas, topo->N, i, &a, &is_sde));
        a.N = 1;
        a.D = TOY_D;
        for (int32_t c = b.child_begin; c < b.child_begin + b.n_children; ++c) {
            gv_tree_node *nd = &r->t.nodes[c];
            const int32_t row = nd->parent - b.rows_begin;
            const float *x = r->x + r->t.nodes[nd->parent].latent, *v = r->v + row * TOY_D;
            float *xn = r->x + nd->latent;
            if (!nd->sde) {
                ASSERT_OK(ops->euler_step(ctx, xn, x, v, &a));
                continue;
            }
            gv_rng_addr ad;
            gv_philox_args pa;
            ASSERT_OK(gv_tree_rng_addr(&r->t, c, 3, (uint32_t)i, GV_RNG_PURPOSE_STEP_NOISE, &ad));
            ASSERT_OK(gv_rng_args(99, GV_RNG_STREAM_SAMPLER, &ad, 0, TOY_D, &pa));
            ASSERT_OK(ops->philox_normal_fill(ctx, r->eps, &pa));
            float noise, logp_scale;
            gv_topology_edge_scales(topo, nd, &noise, &logp_scale);
            /* drawn mu + noise std eps, scored under N(mu, (logp_scale std)^2) */
            gv_step_args s = a;
            s.std = a.std * logp_scale;
            for (int e = 0; e < TOY_D; ++e) r->eps[e] *= noise / logp_scale;
            ASSERT_OK(ops->gaussian_step_forward(ctx, xn, &nd->logp_old, x, v, r->eps, &s));
        }
    }
    grove_backend_cpu()->ctx_destroy(ctx);
}

static void toy_free(toy_rollout *r) {
    free(r->x);
    free(r->v);
    free(r->eps);
    gv_tree_free(&r->t);
}

/* The host-side check of one split child's draw and log-density (ALGORITHMS.md §2, §6). */
static void check_split_child(const gv_topology *topo, const toy_rollout *r, int32_t c,
                              double density_std_factor) {
    const gv_tree_node *nd = &r->t.nodes[c];
    const int i = r->t.nodes[nd->parent].step;
    float sigmas[5];
    ASSERT_OK(gv_schedule_sigmas(topo->N, 3.0, sigmas));
    gv_step_args a;
    int is_sde;
    ASSERT_OK(gv_step_coeffs(&(gv_noise_spec){.kind = GV_NOISE_CONSTANT, .level = 0.3}, sigmas,
                             topo->N, i, &a, &is_sde));
    gv_rng_addr ad;
    uint32_t key[2], hi[3];
    ASSERT_OK(gv_tree_rng_addr(&r->t, c, 3, (uint32_t)i, GV_RNG_PURPOSE_STEP_NOISE, &ad));
    ASSERT_OK(gv_rng_addr_pack(&ad, hi));
    gv_rng_key(99, GV_RNG_STREAM_SAMPLER, key);
    const float *x = r->x + r->t.nodes[nd->parent].latent, *xn = r->x + nd->latent;
    const double sd = a.std * density_std_factor;
    double logp = 0.0;
    for (int e = 0; e < TOY_D; ++e) {
        const double v = -0.5 * x[e], mu = a.cx * x[e] + a.cv * v;
        const double z = gv_rng_normal_at(key, hi, (uint64_t)e);
        cr_expect(fabs(xn[e] - (mu + topo->split_scale * a.std * z)) < 1e-5,
                  "node %d element %d: x' = %g, want mu + lambda std eps = %g", c, e, xn[e],
                  mu + topo->split_scale * a.std * z);
        logp += -(xn[e] - mu) * (xn[e] - mu) / (2 * sd * sd) - log(sd) - 0.5 * log(2 * M_PI);
    }
    logp /= TOY_D;
    cr_expect(fabs(nd->logp_old - logp) < 1e-4 * fmax(1.0, fabs(logp)), "node %d: logp %g, want %g",
              c, (double)nd->logp_old, logp);
}

Test(topology, tree_rollout_through_step_ops) {
    const int P[2] = {0, 1};
    gv_topology topo;
    ASSERT_OK(gv_topology_tree(&topo, 4, 2, 2, 2.0, GV_SPLIT_DENSITY_SCALED, P, 2, NULL));
    toy_rollout a, b;
    toy_run(&topo, &a);
    toy_run(&topo, &b);
    /* one forward per step, over the whole frontier: 2 roots, 4, 8, 8 rows */
    cr_expect_eq(a.forwards, 4);
    const int want_rows[4] = {2, 4, 8, 8};
    for (int i = 0; i < 4; ++i) cr_expect_eq(a.rows[i], want_rows[i], "step %d", i);
    /* a replay is bitwise identical */
    cr_expect_eq(memcmp(a.x, b.x, sizeof(float) * (size_t)a.t.count * TOY_D), 0);
    /* siblings differ; split children follow mu + lambda std eps with the scaled density */
    int checked = 0;
    for (int32_t c = 1; c < a.t.count; ++c) {
        const gv_tree_node *p = &a.t.nodes[c - 1], *q = &a.t.nodes[c];
        if (q->split) check_split_child(&topo, &a, c, 2.0), checked++;
        if (p->parent >= 0 && p->parent == q->parent)
            cr_expect(memcmp(a.x + p->latent, a.x + q->latent, sizeof(float) * TOY_D) != 0,
                      "siblings %d, %d have equal latents", c - 1, c);
    }
    cr_expect_eq(checked, 2 * (2 + 4));
    toy_free(&a);
    toy_free(&b);
    /* reference density: same draws, scored under N(mu, std^2) */
    ASSERT_OK(gv_topology_tree(&topo, 4, 2, 2, 2.0, GV_SPLIT_DENSITY_REFERENCE, P, 2, NULL));
    toy_run(&topo, &a);
    for (int32_t c = 1; c < a.t.count; ++c)
        if (a.t.nodes[c].split) check_split_child(&topo, &a, c, 1.0);
    toy_free(&a);
}
