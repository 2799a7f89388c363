/* Tests of the sampler (samplers/schedule.c, samplers/sampler.c) and its ops on the CPU backend:
 * ALGORITHMS.md §1's σ grid, every §2 check number (through the gaussian_step_forward op on
 * 1-element tensors), noise level 0 == the ODE sampler bitwise, recomputed log-probs == sampling
 * log-probs bitwise, batch-split invariance of the noise, and the Gaussian-data check: sampled
 * moments against the exact discrete recursion, and the recursion against §2's listed values. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "samplers/sampler.h"
#include "grove/kernels_cpu.h"

static const gv_backend *be;
static gv_ctx *ctx;

static void setup(void) {
    be = grove_backend_cpu();
    gv_ctx_options o = {2, 0, 0};
    cr_assert_eq(be->ctx_create(&o, &ctx), GV_OK, "%s", gv_last_error());
}
static void teardown(void) { be->ctx_destroy(ctx); }

static float *dev_alloc(size_t n) {
    void *p = NULL;
    cr_assert_eq(be->alloc(n * sizeof(float), &p), GV_OK, "%s", gv_last_error());
    return p;
}
static float *dev_from(const float *h, size_t n) {
    float *p = dev_alloc(n);
    cr_assert_eq(be->copy_from_host(p, h, n * sizeof(float)), GV_OK);
    return p;
}
static void to_host(float *h, const float *d, size_t n) {
    cr_assert_eq(be->copy_to_host(h, d, n * sizeof(float)), GV_OK);
}

#define EXPECT_NEAR(got, want, what)                                                               \
    cr_expect(fabs((double)(got) - (want)) <= 1e-5, "%s: got %.7f, want %.6f", what,              \
              (double)(got), (double)(want))

/* ---- §1 grid --------------------------------------------------------------------------------- */

TestSuite(sampler, .init = setup, .fini = teardown);

Test(sampler, shifted_schedule_check_values) {
    const double want[11] = {1,    .964286, .923077, .875, .818182, .75,
                             .666667, .5625, .428571, .25, 0};
    float s[11];
    cr_assert_eq(gv_schedule_sigmas(10, 3.0, s), GV_OK);
    for (int i = 0; i <= 10; ++i) EXPECT_NEAR(s[i], want[i], "sigma_i");
    cr_expect_eq(s[0], 1.0f);
    cr_expect_eq(s[10], 0.0f);
    cr_expect_neq(gv_schedule_sigmas(0, 3.0, s), GV_OK);
    cr_expect_neq(gv_schedule_sigmas(10, 0.0, s), GV_OK);
}

/* ---- §2 check numbers through the op ---------------------------------------------------------- */

typedef struct step_result {
    double mu, std, x_next, logp;
    int is_sde;
} step_result;

/* One step i of an N-step grid (S = 3) on scalar x, v, eps, through gaussian_step_forward; mu is the
   op's x_next with eps = 0. An ODE step returns only is_sde = 0. */
static step_result scalar_step(gv_noise_spec spec, int N, int i, float x, float v, float eps) {
    float *sig = malloc(((size_t)N + 1) * sizeof(float));
    cr_assert_eq(gv_schedule_sigmas(N, 3.0, sig), GV_OK);
    gv_step_args a;
    step_result r = {0};
    cr_assert_eq(gv_step_coeffs(&spec, sig, N, i, &a, &r.is_sde), GV_OK, "%s", gv_last_error());
    free(sig);
    if (!r.is_sde) return r; /* the ODE fast path: no Gaussian to evaluate */
    a.N = 1;
    a.D = 1;
    const float zero = 0.0f;
    float *dx = dev_from(&x, 1), *dv = dev_from(&v, 1), *de = dev_from(&eps, 1);
    float *dz = dev_from(&zero, 1), *dxn = dev_alloc(1), *dl = dev_alloc(1);
    float h;
    cr_assert_eq(ctx->backend->ops->gaussian_step_forward(ctx, dxn, dl, dx, dv, de, &a), GV_OK,
                 "%s", gv_last_error());
    to_host(&h, dxn, 1), r.x_next = h;
    to_host(&h, dl, 1), r.logp = h;
    cr_assert_eq(ctx->backend->ops->gaussian_step_forward(ctx, dxn, NULL, dx, dv, dz, &a), GV_OK);
    to_host(&h, dxn, 1), r.mu = h;
    r.std = a.std;
    float *all[] = {dx, dv, de, dz, dxn, dl};
    for (int k = 0; k < 6; ++k) be->free(all[k]);
    return r;
}

static void expect_step(const char *what, step_result r, double mu, double std, double xn,
                        double logp) {
    cr_expect(r.is_sde, "%s: should be a stochastic step", what);
    EXPECT_NEAR(r.mu, mu, what);
    EXPECT_NEAR(r.std, std, what);
    EXPECT_NEAR(r.x_next, xn, what);
    EXPECT_NEAR(r.logp, logp, what);
}

static const float X = 0.5f, V = -0.25f, EPS = 0.3f;

Test(sampler, flow_grpo_check) {
    gv_noise_spec s = {GV_NOISE_FLOW_GRPO, 0.7, NULL, 0};
    expect_step("flow_grpo i=2", scalar_step(s, 10, 2, X, V, EPS), 0.438401, 0.531688, 0.597908,
                -0.332240);
    const double stds[9] = {.700, .738, .532, .441, .388, .350, .320, .290, .256};
    for (int i = 0; i < 9; ++i) {
        step_result r = scalar_step(s, 10, i, X, V, EPS);
        cr_expect(fabs(r.std - stds[i]) <= 5e-4, "flow_grpo std step %d: %.4f vs %.3f", i, r.std,
                  stds[i]);
    }
    step_result last = scalar_step(s, 10, 9, X, V, EPS);
    cr_expect(!last.is_sde, "the last step is ODE");
}

Test(sampler, constant_and_calibrated_check) {
    gv_noise_spec s = {GV_NOISE_CONSTANT, 0.3, NULL, 0};
    step_result c = scalar_step(s, 10, 2, X, V, EPS);
    expect_step("constant i=2", c, 0.510892, 0.065779, 0.530626, 1.757511);
    /* calibrated with ψ(i) = η everywhere is the constant schedule, bit for bit */
    const float psi[9] = {.3f, .3f, .3f, .3f, .3f, .3f, .3f, .3f, .3f};
    gv_noise_spec k = {GV_NOISE_CALIBRATED, 0.0, psi, 9};
    step_result r = scalar_step(k, 10, 2, X, V, EPS);
    cr_expect(r.mu == c.mu && r.x_next == c.x_next && r.logp == c.logp, "calibrated != constant");
    gv_noise_spec short_table = {GV_NOISE_CALIBRATED, 0.0, psi, 2};
    float sig[11];
    gv_step_args a;
    int sde;
    gv_schedule_sigmas(10, 3.0, sig);
    cr_expect_eq(gv_step_coeffs(&short_table, sig, 10, 2, &a, &sde), GV_ERR_INVALID);
}

Test(sampler, cps_check) {
    gv_noise_spec s = {GV_NOISE_CPS, 0.7, NULL, 0};
    expect_step("cps i=2", scalar_step(s, 10, 2, X, V, EPS), 0.282328, 0.779631, 0.516217,
                -0.054704);
}

Test(sampler, exact_checks) {
    gv_noise_spec s = {GV_NOISE_EXACT, 0.7, NULL, 0};
    step_result r = scalar_step(s, 10, 2, X, V, EPS);
    expect_step("exact N=10 i=2", r, 0.456201, 0.462970, 0.595092, -0.193845);
    EXPECT_NEAR(r.std * r.std, 0.214341, "exact N=10 i=2 variance");
    r = scalar_step(s, 10, 0, X, V, EPS);
    expect_step("exact N=10 i=0 (first step)", r, 0.386429, 0.700000, 0.596429, -0.607264);
    EXPECT_NEAR(r.std * r.std, 0.490000, "exact N=10 i=0 variance");
    r = scalar_step(s, 300, 1, X, V, EPS);
    expect_step("exact N=300 i=1 (capped)", r, 0.454717, 0.426790, 0.582754, -0.112475);
    EXPECT_NEAR(r.std * r.std, 0.182150, "exact N=300 i=1 variance");
}

/* ---- the sampler loop ------------------------------------------------------------------------ */

/* Gaussian data x0 ~ N(m, sd²) (ALGORITHMS.md §2): the optimal velocity
   v* = −m + k·(x − (1−σ)m) = k·x + b, k = c/vx, vx = (1−σ)²sd² + σ², c = σ − (1−σ)sd², computed
   with ops: v = k·x, then v = b·ones + v. */
typedef struct gauss_data {
    double m, sd;
    const float *ones; /* backend, n elements */
    int64_t n;
} gauss_data;

static void gauss_velocity_coeffs(const gauss_data *g, double sigma, double *k, double *b) {
    double vx = (1 - sigma) * (1 - sigma) * g->sd * g->sd + sigma * sigma;
    double c = sigma - (1 - sigma) * g->sd * g->sd;
    *k = c / vx;
    *b = -g->m - *k * (1 - sigma) * g->m;
}

static gv_status gauss_denoise(void *user, gv_ctx *c, const float *x, float sigma, float *v) {
    const gauss_data *g = user;
    double k, b;
    gauss_velocity_coeffs(g, sigma, &k, &b);
    gv_ew_dims d = {g->n};
    GV_TRY(c->backend->ops->scale(c, v, x, (float)k, &d));
    return c->backend->ops->axpby(c, v, g->ones, (float)b, 1.0f, &d);
}

typedef struct run {
    int n_samples;
    int64_t D;
    float *x;      /* backend (n_samples, D)  */
    float *logp;   /* backend (steps, n_samples) */
    float *ones, *v, *eps;
    gauss_data g;
} run;

static void run_open(run *r, int n_samples, int64_t D) {
    memset(r, 0, sizeof *r);
    r->n_samples = n_samples;
    r->D = D;
    size_t n = (size_t)n_samples * (size_t)D;
    float *h = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; ++i) h[i] = 1.0f;
    r->ones = dev_from(h, n);
    free(h);
    r->x = dev_alloc(n);
    r->v = dev_alloc(n);
    r->eps = dev_alloc(n);
    r->logp = dev_alloc((size_t)GV_SAMPLER_MAX_STEPS * (size_t)n_samples);
    r->g = (gauss_data){0.5, 0.5, r->ones, (int64_t)n};
}
static void run_close(run *r) {
    float *all[] = {r->ones, r->x, r->v, r->eps, r->logp};
    for (int k = 0; k < 5; ++k) be->free(all[k]);
}

/* x_T = N(0,1) for samples first..first+n_samples−1 (element (first + s)·D + d), then N steps of
   `spec` (shift 3); results stay in r->x and r->logp. */
static void run_sample(run *r, gv_noise_spec spec, int steps, uint64_t first) {
    gv_rng_addr latent = {.iteration = 7, .slot = 3, .purpose = GV_RNG_PURPOSE_LATENT};
    gv_philox_args pa;
    cr_assert_eq(gv_rng_args(1234, GV_RNG_STREAM_SAMPLER, &latent, first * (uint64_t)r->D,
                             (int64_t)r->n_samples * r->D, &pa), GV_OK);
    cr_assert_eq(ctx->backend->ops->philox_normal_fill(ctx, r->x, &pa), GV_OK);
    gv_sampler_rng rng = {1234, GV_RNG_STREAM_SAMPLER,
                          {.iteration = 7, .slot = 3, .purpose = GV_RNG_PURPOSE_STEP_NOISE}, first};
    gv_sampler_scratch sc = {r->v, r->eps};
    cr_assert_eq(gv_sample_trajectory(ctx, &spec, steps, 3.0, gauss_denoise, &r->g, r->n_samples,
                                      r->D, r->x, r->logp, &rng, &sc),
                 GV_OK, "%s", gv_last_error());
}

static float *host_copy(const float *d, size_t n) {
    float *h = malloc(n * sizeof(float));
    to_host(h, d, n);
    return h;
}

Test(sampler, noise_level_zero_is_the_ode_sampler_bitwise) {
    enum { NS = 2, D = 33, STEPS = 10 };
    run r;
    run_open(&r, NS, D);
    run_sample(&r, (gv_noise_spec){GV_NOISE_ODE, 0.0, NULL, 0}, STEPS, 0);
    float *ode = host_copy(r.x, NS * D), *ode_logp = host_copy(r.logp, STEPS * NS);
    for (int i = 0; i < STEPS * NS; ++i) cr_expect_eq(ode_logp[i], 0.0f, "ODE log-prob not 0");
    const float zero_psi[9] = {0};
    const gv_noise_spec zero[] = {{GV_NOISE_FLOW_GRPO, 0.0, NULL, 0},
                                  {GV_NOISE_CONSTANT, 0.0, NULL, 0},
                                  {GV_NOISE_CALIBRATED, 0.0, zero_psi, 9},
                                  {GV_NOISE_CPS, 0.0, NULL, 0},
                                  {GV_NOISE_EXACT, 0.0, NULL, 0}};
    for (int k = 0; k < 5; ++k) {
        run_sample(&r, zero[k], STEPS, 0);
        float *got = host_copy(r.x, NS * D);
        cr_expect(memcmp(got, ode, sizeof(float) * NS * D) == 0, "noise kind %d level 0 != ODE",
                  (int)zero[k].kind);
        free(got);
    }
    /* and the ODE sampler is x' = x + Δ·v, step by step */
    run_sample(&r, (gv_noise_spec){GV_NOISE_FLOW_GRPO, 0.7, NULL, 0}, STEPS, 0);
    float *sde = host_copy(r.x, NS * D);
    cr_expect(memcmp(sde, ode, sizeof(float) * NS * D) != 0, "noise 0.7 should differ from ODE");
    free(sde);
    free(ode);
    free(ode_logp);
    run_close(&r);
}

Test(sampler, recomputed_logp_is_bitwise_the_sampling_logp) {
    enum { NS = 3, D = 1001 };
    const gv_noise_spec kinds[] = {{GV_NOISE_FLOW_GRPO, 0.7, NULL, 0},
                                   {GV_NOISE_CPS, 0.7, NULL, 0},
                                   {GV_NOISE_EXACT, 0.7, NULL, 0}};
    float sig[11];
    gv_schedule_sigmas(10, 3.0, sig);
    float *h = malloc(3 * NS * D * sizeof(float));
    uint64_t seed = 99;
    for (int i = 0; i < 3 * NS * D; ++i) { /* x, v, eps */
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        h[i] = (float)((double)(seed >> 11) / 9007199254740992.0 * 4.0 - 2.0);
    }
    float *x = dev_from(h, NS * D), *v = dev_from(h + NS * D, NS * D);
    float *eps = dev_from(h + 2 * NS * D, NS * D), *xn = dev_alloc(NS * D);
    float *lp_sample = dev_alloc(NS), *lp_re = dev_alloc(NS), *xa = dev_alloc(NS * D);
    for (int k = 0; k < 3; ++k)
        for (int i = 0; i < 9; ++i) {
            gv_step_args a;
            int sde;
            cr_assert_eq(gv_step_coeffs(&kinds[k], sig, 10, i, &a, &sde), GV_OK);
            cr_assert(sde);
            a.N = NS;
            a.D = D;
            const gv_ops *ops = ctx->backend->ops;
            cr_assert_eq(ops->gaussian_step_forward(ctx, xn, lp_sample, x, v, eps, &a), GV_OK);
            cr_assert_eq(ops->gaussian_step_forward(ctx, xn, lp_re, x, v, NULL, &a), GV_OK);
            /* in place (x_next aliases x) samples the same x_next */
            cr_assert_eq(be->copy(xa, x, NS * D * sizeof(float)), GV_OK);
            cr_assert_eq(ops->gaussian_step_forward(ctx, xa, NULL, xa, v, eps, &a), GV_OK);
            float ls[NS], lr[NS], *s1 = host_copy(xn, NS * D), *s2 = host_copy(xa, NS * D);
            to_host(ls, lp_sample, NS);
            to_host(lr, lp_re, NS);
            cr_expect(memcmp(ls, lr, sizeof ls) == 0, "kind %d step %d: recomputed logp %.9g vs "
                      "sampled %.9g", (int)kinds[k].kind, i, lr[0], ls[0]);
            cr_expect(memcmp(s1, s2, NS * D * sizeof(float)) == 0, "in-place sample differs");
            cr_expect(isfinite(ls[0]) && ls[0] != 0.0f);
            free(s1);
            free(s2);
        }
    float *all[] = {x, v, eps, xn, lp_sample, lp_re, xa};
    for (int k = 0; k < 7; ++k) be->free(all[k]);
    free(h);
}

Test(sampler, noise_does_not_depend_on_batch_split) {
    enum { NS = 4, D = 21, STEPS = 10 };
    run whole, tail;
    run_open(&whole, NS, D);
    run_open(&tail, 2, D);
    gv_noise_spec s = {GV_NOISE_FLOW_GRPO, 0.7, NULL, 0};
    run_sample(&whole, s, STEPS, 0);
    run_sample(&tail, s, STEPS, 2); /* samples 2, 3 alone */
    float *a = host_copy(whole.x, NS * D), *b = host_copy(tail.x, 2 * D);
    float *la = host_copy(whole.logp, STEPS * NS), *lb = host_copy(tail.logp, STEPS * 2);
    cr_expect(memcmp(a + 2 * D, b, 2 * D * sizeof(float)) == 0, "x_N depends on the batch split");
    for (int i = 0; i < STEPS; ++i)
        cr_expect(memcmp(la + i * NS + 2, lb + i * 2, 2 * sizeof(float)) == 0,
                  "step %d logp depends on the batch split", i);
    free(a), free(b), free(la), free(lb);
    run_close(&whole);
    run_close(&tail);
}

/* Exact moments after the discrete steps (ALGORITHMS.md §2, Gaussian-data check): with v* = k·x + b
   each step is x' = A·x + B + std·ε, A = cx + cv·k, B = cv·b; from x_T ~ N(0, 1). */
static void gauss_recursion(const gv_noise_spec *spec, int N, const gauss_data *g, double *mean,
                            double *sd) {
    float sig[GV_SAMPLER_MAX_STEPS + 1];
    cr_assert_eq(gv_schedule_sigmas(N, 3.0, sig), GV_OK);
    double m = 0.0, var = 1.0;
    for (int i = 0; i < N; ++i) {
        gv_step_args a;
        int sde;
        cr_assert_eq(gv_step_coeffs(spec, sig, N, i, &a, &sde), GV_OK);
        double k, b;
        gauss_velocity_coeffs(g, sig[i], &k, &b);
        double A = (double)a.cx + (double)a.cv * k, B = (double)a.cv * b;
        m = A * m + B;
        var = A * A * var + (sde ? (double)a.std * a.std : 0.0);
    }
    *mean = m;
    *sd = sqrt(var);
}

Test(sampler, gaussian_data_moments, .timeout = 60) {
    enum { NS = 4, D = 75000, STEPS = 10 }; /* 300k elements */
    const struct {
        gv_noise_spec spec;
        double sd;
    } cases[] = {
        {{GV_NOISE_ODE, 0.0, NULL, 0}, 0.369692},
        {{GV_NOISE_FLOW_GRPO, 0.7, NULL, 0}, 0.418755},
        {{GV_NOISE_CONSTANT, 0.3, NULL, 0}, 0.377415},
        {{GV_NOISE_EXACT, 0.7, NULL, 0}, 0.409620},
        {{GV_NOISE_CPS, 0.7, NULL, 0}, 0.327566},
    };
    run r;
    run_open(&r, NS, D);
    for (int k = 0; k < 5; ++k) {
        double rm, rsd;
        gauss_recursion(&cases[k].spec, STEPS, &r.g, &rm, &rsd);
        EXPECT_NEAR(rm, 0.5, "recursion end mean");
        cr_expect(fabs(rsd - cases[k].sd) <= 1e-5, "kind %d: recursion end std %.7f vs listed %.6f",
                  (int)cases[k].spec.kind, rsd, cases[k].sd);
        run_sample(&r, cases[k].spec, STEPS, 0);
        float *h = host_copy(r.x, (size_t)NS * D);
        double s1 = 0, s2 = 0, n = (double)NS * D;
        for (int64_t i = 0; i < (int64_t)NS * D; ++i) s1 += h[i];
        double mean = s1 / n;
        for (int64_t i = 0; i < (int64_t)NS * D; ++i) s2 += (h[i] - mean) * (h[i] - mean);
        double sd = sqrt(s2 / (n - 1));
        free(h);
        double se_mean = rsd / sqrt(n), se_sd = rsd / sqrt(2.0 * n);
        cr_expect(fabs(mean - rm) <= 4 * se_mean, "kind %d: sample mean %.6f vs recursion %.6f "
                  "(4 SE = %.2e)", (int)cases[k].spec.kind, mean, rm, 4 * se_mean);
        cr_expect(fabs(sd - rsd) <= 4 * se_sd, "kind %d: sample std %.6f vs recursion %.6f "
                  "(4 SE = %.2e)", (int)cases[k].spec.kind, sd, rsd, 4 * se_sd);
    }
    run_close(&r);
}
