/* Tests of the GRPO loss ops on the CPU backend (kernels/cpu/grpo_kernels.c; ALGORITHMS.md §3):
 * hand-computed values of the clipped objective with units on both sides of the clip range and
 * inside it (the harness's finite differences stay away from the boundaries, tests/ops/specs_grpo.c),
 * the KL term folded into the loss, rho == 1 on-policy, and the three KL kinds. */
#include <criterion/criterion.h>
#include <math.h>

#include "grove/kernels_cpu.h"
#include "grove/ops.h"

static const gv_backend *be;
static gv_ctx *ctx;

static void setup(void) {
    be = grove_backend_cpu();
    gv_ctx_options o = {1, 0, 0};
    cr_assert_eq(be->ctx_create(&o, &ctx), GV_OK, "%s", gv_last_error());
}
static void teardown(void) { be->ctx_destroy(ctx); }

static float *dev(const float *h, size_t n) {
    void *p = NULL;
    cr_assert_eq(be->alloc(n * sizeof(float), &p), GV_OK);
    if (h) cr_assert_eq(be->copy_from_host(p, h, n * sizeof(float)), GV_OK);
    else cr_assert_eq(be->memset_zero(p, n * sizeof(float)), GV_OK);
    return p;
}
static void host(float *h, const float *d, size_t n) {
    cr_assert_eq(be->copy_to_host(h, d, n * sizeof(float)), GV_OK);
}

#define NEAR(got, want) \
    cr_expect(fabs((double)(got) - (want)) <= 2e-6, "got %.8f, want %.8f", (double)(got), (double)(want))

TestSuite(grpo_loss, .init = setup, .fini = teardown);

/* eps 0.2, norm 5. Units: rho 1.5 A+1 (clipped above: L -1.2, grad 0); rho 1.5 A-1 (unclipped:
   L 1.5); rho 0.5 A+2 w.5 (unclipped: L -1.0); rho 0.5 A-1 (clipped below: L 0.8, grad 0);
   rho 1.1 A+1 (inside: L -1.1). sum w L = -1.2 + 1.5 - 0.5 + 0.8 - 1.1 = -0.5 -> loss -0.1. */
Test(grpo_loss, clipped_objective_by_hand) {
    const float logp[5] = {(float)log(1.5), (float)log(1.5), (float)log(0.5), (float)log(0.5),
                           (float)log(1.1)};
    const float old[5] = {0, 0, 0, 0, 0}, adv[5] = {1, -1, 2, -1, 1}, w[5] = {1, 1, 0.5f, 1, 1};
    const float klh[5] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f};
    float *d_logp = dev(logp, 5), *d_old = dev(old, 5), *d_adv = dev(adv, 5), *d_w = dev(w, 5);
    float *d_kl = dev(klh, 5), *d_loss = dev(NULL, 1), *d_stats = dev(NULL, GV_GRPO_STATS);
    float *d_ratio = dev(NULL, 5), *d_dlogp = dev(NULL, 5), *d_dkl = dev(NULL, 5);
    const float one = 1.0f;
    float *d_dloss = dev(&one, 1);
    gv_grpo_args a = {.U = 5, .clip_eps = 0.2f, .norm = 5.0f, .beta = 0.04f};
    const gv_ops *ops = be->ops;

    cr_assert_eq(ops->grpo_objective_forward(ctx, d_loss, d_stats, d_ratio, d_logp, d_old, d_adv,
                                             d_w, NULL, &a), GV_OK, "%s", gv_last_error());
    float loss, st[GV_GRPO_STATS], ratio[5], g[5];
    host(&loss, d_loss, 1);
    host(st, d_stats, GV_GRPO_STATS);
    host(ratio, d_ratio, 5);
    NEAR(loss, -0.1);
    NEAR(ratio[0], 1.5);
    NEAR(st[GV_GRPO_STAT_RATIO_MEAN], 1.02);
    NEAR(st[GV_GRPO_STAT_RATIO_MIN], 0.5);
    NEAR(st[GV_GRPO_STAT_RATIO_MAX], 1.5);
    NEAR(st[GV_GRPO_STAT_CLIP_ABOVE], 0.4);
    NEAR(st[GV_GRPO_STAT_CLIP_BELOW], 0.4);
    NEAR(st[GV_GRPO_STAT_APPROX_KL], 0.1298793966);
    NEAR(st[GV_GRPO_STAT_KL_MEAN], 0.0);
    NEAR(st[GV_GRPO_STAT_POLICY_LOSS], -0.1);

    cr_assert_eq(ops->grpo_objective_backward(ctx, d_dlogp, NULL, d_dloss, d_ratio, d_adv, d_w, &a),
                 GV_OK);
    host(g, d_dlogp, 5);
    const double want[5] = {0.0, 0.3, -0.1, 0.0, -0.22};
    for (int u = 0; u < 5; ++u) NEAR(g[u], want[u]);

    /* With the KL folded in: loss += beta * sum kl / norm = 0.04 * 1.5 / 5; dkl = beta / norm. */
    cr_assert_eq(ops->grpo_objective_forward(ctx, d_loss, d_stats, d_ratio, d_logp, d_old, d_adv,
                                             d_w, d_kl, &a), GV_OK);
    host(&loss, d_loss, 1);
    host(st, d_stats, GV_GRPO_STATS);
    NEAR(loss, -0.088);
    NEAR(st[GV_GRPO_STAT_KL_MEAN], 0.3);
    NEAR(st[GV_GRPO_STAT_POLICY_LOSS], -0.1);
    cr_assert_eq(ops->grpo_objective_backward(ctx, NULL, d_dkl, d_dloss, d_ratio, d_adv, d_w, &a),
                 GV_OK);
    host(g, d_dkl, 5);
    for (int u = 0; u < 5; ++u) NEAR(g[u], 0.008);

    a.norm = 0.0f;
    cr_expect_eq(ops->grpo_objective_forward(ctx, d_loss, d_stats, d_ratio, d_logp, d_old, d_adv,
                                             d_w, NULL, &a), GV_ERR_INVALID);
}

/* On-policy: logp == logp_old gives rho == 1 exactly and loss = -sum w A / norm. */
Test(grpo_loss, on_policy_ratio_is_one) {
    const float logp[3] = {-0.33224f, 1.757511f, -0.054704f}, adv[3] = {0.5f, -1.5f, 2.0f};
    const float w[3] = {1, 1, 1};
    float *d_logp = dev(logp, 3), *d_adv = dev(adv, 3), *d_w = dev(w, 3);
    float *d_loss = dev(NULL, 1), *d_ratio = dev(NULL, 3);
    gv_grpo_args a = {.U = 3, .clip_eps = 1e-4f, .norm = 3.0f};
    cr_assert_eq(be->ops->grpo_objective_forward(ctx, d_loss, NULL, d_ratio, d_logp, d_logp, d_adv,
                                                 d_w, NULL, &a), GV_OK);
    float ratio[3], loss;
    host(ratio, d_ratio, 3);
    host(&loss, d_loss, 1);
    for (int u = 0; u < 3; ++u) cr_expect_eq(ratio[u], 1.0f);
    NEAR(loss, -(0.5 - 1.5 + 2.0) / 3.0);
}

/* mu_theta = [1, 2], mu_ref = 0: mean_d diff^2 = 2.5. */
Test(grpo_loss, kl_kinds_by_hand) {
    const float th[2] = {1, 2}, ref[2] = {0, 0}, var = 0.5f, one = 1.0f;
    float *d_th = dev(th, 2), *d_ref = dev(ref, 2), *d_var = dev(&var, 1), *d_kl = dev(NULL, 1);
    float *d_dkl = dev(&one, 1), *d_g = dev(NULL, 2);
    float kl, g[2];
    gv_kl_args a = {.U = 1, .D = 2, .kind = GV_KL_OP_SCALED, .var = 0.0f};
    cr_assert_eq(be->ops->kl_forward(ctx, d_kl, d_th, d_ref, d_var, &a), GV_OK, "%s", gv_last_error());
    host(&kl, d_kl, 1);
    NEAR(kl, 2.5); /* flow_grpo: 2.5 / (2 * 0.5) */
    cr_assert_eq(be->ops->kl_backward(ctx, d_g, d_dkl, d_th, d_ref, d_var, &a), GV_OK);
    host(g, d_g, 2);
    NEAR(g[0], 1.0); /* diff / (D var) */
    NEAR(g[1], 2.0);
    a.var = 2.0f; /* gaussian, host scalar variance */
    cr_assert_eq(be->ops->kl_forward(ctx, d_kl, d_th, d_ref, NULL, &a), GV_OK);
    host(&kl, d_kl, 1);
    NEAR(kl, 0.625);
    a.kind = GV_KL_OP_VELOCITY;
    cr_assert_eq(be->ops->kl_forward(ctx, d_kl, d_th, d_ref, NULL, &a), GV_OK);
    host(&kl, d_kl, 1);
    NEAR(kl, 2.5);
    a.kind = GV_KL_OP_SCALED;
    a.var = 0.0f;
    cr_expect_eq(be->ops->kl_forward(ctx, d_kl, d_th, d_ref, NULL, &a), GV_ERR_INVALID);
}
