/* CPU vs CUDA parity on a device: every op of GROVE_OP_LIST through the op harness, a 10-step SDE
 * trajectory from one seed, and the on-policy ratio == 1 invariant on CUDA.
 *
 * Skips (cr_skip_test, with the reason) without a module or a GPU, like test_cuda.c.
 * Per op (one Criterion test each, named after the op):
 *   harness   every check of tests/ops on the CUDA backend itself: finite differences, the +=
 *             sentinel, NULL gradients, the fp64 references, and batch independence (bitwise)
 *   parity    forward and backward of every harness case on the CPU reference context
 *             (use_fast 0) vs CUDA, all outputs and gradients, |a - b| <= rtol (max(|a|,|b|) + rms):
 *             rtol 1e-6 for own kernels (the same GV_HD items as the host; fp64 exp/log/sin on the
 *             device may differ from glibc by an ulp of a double), 1e-4 for cuDNN / cuBLAS ops
 *             (their own summation order over up to C*R*S terms, no TF32: see conv_cudnn.cu).
 * Trajectory: gv_sample_trajectory (flow_grpo noise 0.7, shift 3, 10 steps, 9 SDE) with a small
 * MLP denoiser written against the op table, same seed on both backends: x_N and every step's
 * log-prob within 1e-4 relative (the GEMMs' rounding compounds over the steps).
 * GRPO: one iteration of the default config (configs/align/mnist-flowgrpo.yaml, 2 prompts) on each
 * backend from the same seed: reward mean, advantage std, loss and gradient norm within 1e-3
 * relative (loss: + 1e-4 absolute, it is near 0; rewards are a classifier of images that differ
 * by float rounding), and the trainer's
 * first-minibatch ratio exactly 1 on CUDA.
 * Ratio: one SDE step sampled on CUDA, the log-prob recomputed from the stored sample (eps NULL
 * mode) in the same micro-batch shape: bitwise equal, and grpo_objective_forward's ratio is
 * exactly 1 for every unit (ALGORITHMS.md §3). */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "grove/backend.h"
#include "gpu_test_util.h"
#include "grove/kernels_cpu.h"
#include "grove/grpo.h"
#include "grove/paths.h"
#include "grove/rng.h"
#include "grove/rundir.h"
#include "grove/run_config.h"
#include "ops/harness.h"
#include "samplers/sampler.h"

static int library_op(int op) {
    return op == GV_OP_conv2d_forward || op == GV_OP_conv2d_backward ||
           op == GV_OP_linear_forward || op == GV_OP_linear_backward ||
           op == GV_OP_matmul_forward || op == GV_OP_matmul_backward;
}

#define GV_PARITY_TEST_(name, args)                                                                \
    Test(cuda_parity, name, .timeout = 120) {                                                      \
        const gv_backend *be = gpu_test_cuda_or_skip();                                            \
        gv_h_report rep;                                                                           \
        int failures = gv_harness_check_op_on(be, GV_OP_##name, stderr, &rep);                     \
        gv_ctx *ref = gpu_test_ctx(grove_backend_cpu(), 64 << 20);                                 \
        gv_ctx *dev = gpu_test_ctx(be, 64 << 20);                                                  \
        double worst = 0, rtol = library_op(GV_OP_##name) ? 1e-4 : 1e-6;                          \
        int pf = gv_harness_parity(ref, dev, GV_OP_##name, rtol, stderr, &worst);                  \
        fprintf(stderr, "cuda_parity %s: worst rel %.3g (rtol %.0e)\n", #name, worst, rtol);      \
        grove_backend_cpu()->ctx_destroy(ref);                                                     \
        be->ctx_destroy(dev);                                                                      \
        cr_assert_eq(failures, 0, "cuda op %s: %d failed harness checks", #name, failures);        \
        cr_assert_eq(pf, 0, "cuda op %s: %d parity failures vs the CPU reference", #name, pf);    \
    }
GROVE_OP_LIST(GV_PARITY_TEST_)
#undef GV_PARITY_TEST_

/* ---- a small denoiser on the op table: v = W2 silu(W1 x + b1) + b2 - sigma x ------------------- */

enum { NS = 8, DX = 48, HID = 64, STEPS = 10 };

typedef struct mlp {
    const gv_backend *be;
    float *w1, *b1, *w2, *b2, *h, *hs; /* (HID,DX) (HID) (DX,HID) (DX) (NS,HID) (NS,HID) */
} mlp;

static float *dev_upload(const gv_backend *be, const float *h, size_t n) {
    void *d = NULL;
    cr_assert_eq(be->alloc(n * sizeof(float), &d), GV_OK, "%s", gv_last_error());
    if (h) cr_assert_eq(be->copy_from_host(d, h, n * sizeof(float)), GV_OK, "%s", gv_last_error());
    return d;
}

static void mlp_open(mlp *m, const gv_backend *be) {
    float w[HID * DX + HID + DX * HID + DX];
    uint32_t s = 99;
    for (size_t i = 0; i < sizeof w / sizeof w[0]; ++i) {
        s = s * 1664525u + 1013904223u;
        w[i] = ((float)(s >> 8) * 0x1p-24f - 0.5f) * 0.4f;
    }
    m->be = be;
    m->w1 = dev_upload(be, w, HID * DX);
    m->b1 = dev_upload(be, w + HID * DX, HID);
    m->w2 = dev_upload(be, w + HID * DX + HID, DX * HID);
    m->b2 = dev_upload(be, w + 2 * HID * DX + HID, DX);
    m->h = dev_upload(be, NULL, NS * HID);
    m->hs = dev_upload(be, NULL, NS * HID);
}

static void mlp_close(mlp *m) {
    float *all[] = {m->w1, m->b1, m->w2, m->b2, m->h, m->hs};
    for (int i = 0; i < 6; ++i) m->be->free(all[i]);
}

static gv_status mlp_denoise(void *user, gv_ctx *c, const float *x, float sigma, float *v) {
    mlp *m = user;
    const gv_ops *o = c->backend->ops;
    gv_linear_dims l1 = {NS, DX, HID}, l2 = {NS, HID, DX};
    gv_ew_dims eh = {NS * HID}, ex = {NS * DX};
    GV_TRY(o->linear_forward(c, m->h, x, m->w1, m->b1, &l1));
    GV_TRY(o->silu_forward(c, m->hs, m->h, &eh));
    GV_TRY(o->linear_forward(c, v, m->hs, m->w2, m->b2, &l2));
    return o->axpby(c, v, x, -sigma, 1.0f, &ex);
}

/* Runs the trajectory on backend be; x_N (NS*DX) and logp (STEPS*NS) into host arrays. */
static void trajectory(const gv_backend *be, float *x_out, float *logp_out) {
    gv_ctx *c = gpu_test_ctx(be, 64 << 20);
    mlp m;
    mlp_open(&m, be);
    float *x = dev_upload(be, NULL, NS * DX), *v = dev_upload(be, NULL, NS * DX);
    float *eps = dev_upload(be, NULL, NS * DX), *logp = dev_upload(be, NULL, STEPS * NS);
    gv_rng_addr latent = {.iteration = 3, .slot = 1, .purpose = GV_RNG_PURPOSE_LATENT};
    gv_philox_args pa;
    cr_assert_eq(gv_rng_args(77, GV_RNG_STREAM_SAMPLER, &latent, 0, NS * DX, &pa), GV_OK);
    cr_assert_eq(be->ops->philox_normal_fill(c, x, &pa), GV_OK, "%s", gv_last_error());
    gv_sampler_rng rng = {77, GV_RNG_STREAM_SAMPLER,
                          {.iteration = 3, .slot = 1, .purpose = GV_RNG_PURPOSE_STEP_NOISE}, 0};
    gv_sampler_scratch sc = {v, eps};
    gv_noise_spec spec = {GV_NOISE_FLOW_GRPO, 0.7, NULL, 0};
    cr_assert_eq(gv_sample_trajectory(c, &spec, STEPS, 3.0, mlp_denoise, &m, NS, DX, x, logp, &rng,
                                      &sc), GV_OK, "%s trajectory: %s", be->name, gv_last_error());
    cr_assert_eq(be->synchronize(), GV_OK, "%s", gv_last_error());
    cr_assert_eq(be->copy_to_host(x_out, x, NS * DX * sizeof(float)), GV_OK);
    cr_assert_eq(be->copy_to_host(logp_out, logp, STEPS * NS * sizeof(float)), GV_OK);
    float *all[] = {x, v, eps, logp};
    for (int i = 0; i < 4; ++i) be->free(all[i]);
    mlp_close(&m);
    be->ctx_destroy(c);
}

static double rel_err(float a, float b) {
    return fabs((double)a - (double)b) / fmax(1e-3, fmax(fabs((double)a), fabs((double)b)));
}

Test(cuda_parity, sde_trajectory_10_steps_cpu_vs_cuda, .timeout = 120) {
    const gv_backend *be = gpu_test_cuda_or_skip();
    float xc[NS * DX], xg[NS * DX], lc[STEPS * NS], lg[STEPS * NS];
    trajectory(grove_backend_cpu(), xc, lc);
    trajectory(be, xg, lg);
    double wx = 0, wl = 0;
    for (int i = 0; i < NS * DX; ++i) wx = fmax(wx, rel_err(xc[i], xg[i]));
    for (int i = 0; i < STEPS * NS; ++i) wl = fmax(wl, rel_err(lc[i], lg[i]));
    cr_log_info("trajectory: x_N worst rel %.3g, log-prob worst rel %.3g", wx, wl);
    fprintf(stderr, "cuda_parity trajectory: x_N worst rel %.3g, logp worst rel %.3g\n", wx, wl);
    cr_assert_leq(wx, 1e-4, "x_N CPU vs CUDA: worst rel %g", wx);
    cr_assert_leq(wl, 1e-4, "log-probs CPU vs CUDA: worst rel %g", wl);
}

Test(cuda_parity, on_policy_ratio_is_exactly_one, .timeout = 60) {
    const gv_backend *be = gpu_test_cuda_or_skip();
    gv_ctx *c = gpu_test_ctx(be, 64 << 20);
    const gv_ops *o = be->ops;
    mlp m;
    mlp_open(&m, be);
    float *x = dev_upload(be, NULL, NS * DX), *v = dev_upload(be, NULL, NS * DX);
    float *eps = dev_upload(be, NULL, NS * DX), *xn = dev_upload(be, NULL, NS * DX);
    float *lp_old = dev_upload(be, NULL, NS), *lp = dev_upload(be, NULL, NS);
    float *adv = dev_upload(be, NULL, NS), *w = dev_upload(be, NULL, NS);
    float *loss = dev_upload(be, NULL, 1), *stats = dev_upload(be, NULL, GV_GRPO_STATS);
    float *ratio = dev_upload(be, NULL, NS);
    gv_rng_addr a = {.iteration = 5, .purpose = GV_RNG_PURPOSE_LATENT};
    gv_philox_args pa;
    cr_assert_eq(gv_rng_args(5, GV_RNG_STREAM_SAMPLER, &a, 0, NS * DX, &pa), GV_OK);
    cr_assert_eq(o->philox_normal_fill(c, x, &pa), GV_OK);
    a.purpose = GV_RNG_PURPOSE_STEP_NOISE;
    cr_assert_eq(gv_rng_args(5, GV_RNG_STREAM_SAMPLER, &a, 0, NS * DX, &pa), GV_OK);
    cr_assert_eq(o->philox_normal_fill(c, eps, &pa), GV_OK);
    gv_step_args st = {NS, DX, 0.9f, -0.08f, 0.3f, -0.1f, GV_LOGP_GAUSSIAN};
    /* rollout: velocity, sampled step */
    cr_assert_eq(mlp_denoise(&m, c, x, 0.6f, v), GV_OK, "%s", gv_last_error());
    cr_assert_eq(o->gaussian_step_forward(c, xn, lp_old, x, v, eps, &st), GV_OK, "%s",
                 gv_last_error());
    /* training: the same micro-batch recomputed, log-prob from the stored sample */
    cr_assert_eq(o->scale(c, v, v, 0.0f, &(gv_ew_dims){NS * DX}), GV_OK);
    cr_assert_eq(mlp_denoise(&m, c, x, 0.6f, v), GV_OK, "%s", gv_last_error());
    cr_assert_eq(o->gaussian_step_forward(c, xn, lp, x, v, NULL, &st), GV_OK, "%s",
                 gv_last_error());
    float hadv[NS], hw[NS];
    for (int i = 0; i < NS; ++i) hadv[i] = (float)(i - 3) * 0.5f, hw[i] = 1.0f;
    cr_assert_eq(be->copy_from_host(adv, hadv, sizeof hadv), GV_OK);
    cr_assert_eq(be->copy_from_host(w, hw, sizeof hw), GV_OK);
    gv_grpo_args ga = {NS, 0.2f, (float)NS, 0.0f};
    cr_assert_eq(o->grpo_objective_forward(c, loss, stats, ratio, lp, lp_old, adv, w, NULL, &ga),
                 GV_OK, "%s", gv_last_error());
    float h_old[NS], h_new[NS], h_ratio[NS], h_stats[GV_GRPO_STATS];
    cr_assert_eq(be->synchronize(), GV_OK, "%s", gv_last_error());
    cr_assert_eq(be->copy_to_host(h_old, lp_old, sizeof h_old), GV_OK);
    cr_assert_eq(be->copy_to_host(h_new, lp, sizeof h_new), GV_OK);
    cr_assert_eq(be->copy_to_host(h_ratio, ratio, sizeof h_ratio), GV_OK);
    cr_assert_eq(be->copy_to_host(h_stats, stats, sizeof h_stats), GV_OK);
    for (int i = 0; i < NS; ++i) {
        cr_assert_eq(memcmp(&h_old[i], &h_new[i], sizeof(float)), 0,
                     "sample %d: rollout log-prob %a, recomputed %a", i, h_old[i], h_new[i]);
        cr_assert_eq(h_ratio[i], 1.0f, "sample %d: ratio %a", i, h_ratio[i]);
    }
    cr_assert_eq(h_stats[GV_GRPO_STAT_RATIO_MIN], 1.0f);
    cr_assert_eq(h_stats[GV_GRPO_STAT_RATIO_MAX], 1.0f);
    float *all[] = {x, v, eps, xn, lp_old, lp, adv, w, loss, stats, ratio};
    for (int i = 0; i < 11; ++i) be->free(all[i]);
    mlp_close(&m);
    be->ctx_destroy(c);
}

/* One rollout + training iteration of the default config on be. */
static void grpo_iteration(const gv_backend *be, gv_grpo_rollout_stats *rs,
                           gv_grpo_train_stats *ts) {
    char path[4096];
    cr_assert_eq(gv_root_path("configs/align/mnist-flowgrpo.yaml", path, sizeof path), GV_OK);
    const char *sets[] = {"group.prompts_per_iteration=2"};
    gv_run_config cfg;
    cr_assert_eq(gv_run_config_load(path, sets, 1, NULL, &cfg, NULL), GV_OK, "%s",
                 gv_last_error());
    gv_grpo_job j;
    cr_assert_eq(gv_grpo_setup(&j, &cfg, be), GV_OK, "%s setup: %s", be->name, gv_last_error());
    int64_t slots[64];
    static gv_reward_moments per_reward[64];
    cr_assert_leq(j.P, 64);
    cr_assert_eq(gv_data_cursor_next(&j.cursor, j.seed, j.P, slots), GV_OK);
    gv_grpo_state st = {.best_eval = -1e300};
    *rs = (gv_grpo_rollout_stats){.per_reward = per_reward};
    cr_assert_eq(gv_grpo_rollout(&j, 0, slots, rs), GV_OK, "%s rollout: %s", be->name,
                 gv_last_error());
    cr_assert_eq(gv_grpo_train_iteration(&j, 0, &st, ts), GV_OK, "%s training: %s", be->name,
                 gv_last_error());
    gv_grpo_teardown(&j);
    gv_run_config_free(&cfg);
}

/* |cpu - gpu| <= rtol max(|cpu|, |gpu|) + atol */
static void expect_close(const char *what, double cpu, double gpu, double rtol, double atol) {
    double diff = fabs(cpu - gpu), bound = rtol * fmax(fabs(cpu), fabs(gpu)) + atol;
    fprintf(stderr, "cuda_parity grpo: %s cpu %.9g cuda %.9g |diff| %.3g (bound %.3g)\n", what,
            cpu, gpu, diff, bound);
    cr_expect_leq(diff, bound, "%s: cpu %.9g vs cuda %.9g (|diff| %.3g > %.3g)", what, cpu, gpu,
                  diff, bound);
}

Test(cuda_parity, grpo_iteration_cpu_vs_cuda, .timeout = 120) {
    const gv_backend *be = gpu_test_cuda_or_skip();
    gv_grpo_rollout_stats rc, rg;
    gv_grpo_train_stats tc, tg;
    grpo_iteration(grove_backend_cpu(), &rc, &tc);
    grpo_iteration(be, &rg, &tg);
    /* the on-policy loss is a sum of advantages of both signs (near 0): an absolute bound */
    expect_close("reward mean", rc.adv.reward_mean, rg.adv.reward_mean, 1e-3, 0.0);
    expect_close("advantage std", rc.adv.adv_std, rg.adv.adv_std, 1e-3, 0.0);
    expect_close("loss", tc.loss, tg.loss, 1e-3, 1e-4);
    expect_close("grad norm", tc.grad_norm, tg.grad_norm, 1e-3, 0.0);
    cr_expect_eq(tg.ratio_first_min, 1.0, "CUDA on-policy ratio min %.17g", tg.ratio_first_min);
    cr_expect_eq(tg.ratio_first_max, 1.0, "CUDA on-policy ratio max %.17g", tg.ratio_first_max);
}
