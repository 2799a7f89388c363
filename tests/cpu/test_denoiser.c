/* Tests of the UNet denoiser adapter and gv_generate (engine/train/denoiser.c) on a tiny UNet with
 * random weights: a sample's velocity does not depend on n or its position in the padded
 * micro-batch (bitwise), CFG with w = 1 is the plain forward (bitwise, half the NFE) and w = 3 is
 * v_null + 3 (v_cond − v_null) from separate forwards, and generation is deterministic per seed,
 * different across seeds, and independent of n (ODE and SDE). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "grove/denoiser.h"
#include "grove/kernels_cpu.h"
#include "test_util.h"

#define MB 4
#define NMAX 7
#define NULL_ID 6

static const gv_backend *be(void) { return grove_backend_cpu(); }

static uint64_t lcg_state = 0x2545F4914F6CDD1Dull;

typedef struct fix {
    gv_ctx *ctx;
    gv_params ps;
    gv_unet m;
    int64_t D;
    int L;
    int32_t ids[NMAX * 3];  /* (NMAX, L) host */
    float xh[NMAX * 64];    /* (NMAX, D) host */
} fix;

static void setup(fix *f, int use_fast) {
    memset(f, 0, sizeof *f);
    f->ctx = tu_make_ctx(2, use_fast);
    gv_unet_config cfg = tu_tiny_unet_config();
    gv_params_init(&f->ps, be());
    cr_assert_eq(gv_unet_declare(&f->m, &cfg, &f->ps, "unet"), GV_OK, "%s", gv_last_error());
    cr_assert_eq(gv_params_allocate(&f->ps, 0), GV_OK);
    cr_assert_eq(gv_params_initialize(&f->ps, 3), GV_OK);
    float *h = malloc((size_t)f->ps.total * sizeof(float));
    cr_assert(h);
    tu_get(h, f->ps.values, (size_t)f->ps.total * sizeof(float));
    for (int64_t i = 0; i < f->ps.total; ++i) h[i] += 0.2f * tu_rand_sym(&lcg_state);
    tu_put(f->ps.values, h, (size_t)f->ps.total * sizeof(float));
    free(h);
    f->D = 64;
    f->L = 3;
    for (int i = 0; i < NMAX; ++i) { /* distinct prompts: word i % 6, then word (i + 2) % 6 */
        f->ids[i * 3 + 0] = i % 6;
        f->ids[i * 3 + 1] = i % 2 ? (i + 2) % 6 : -1;
        f->ids[i * 3 + 2] = -1;
    }
    for (int i = 0; i < NMAX * 64; ++i) f->xh[i] = tu_rand_sym(&lcg_state);
}

static void teardown(fix *f) {
    gv_params_free(&f->ps);
    be()->ctx_destroy(f->ctx);
}

/* v (n, D) [host] = denoiser over samples first..first+n-1 at sigma. */
static int64_t run_denoiser(fix *f, gv_denoiser *d, int first, int n, float sigma, float *v) {
    float *x = tu_dev_floats(n * f->D), *vd = tu_dev_floats(n * f->D);
    tu_put(x, f->xh + first * f->D, (size_t)(n * f->D) * sizeof(float));
    cr_assert_eq(gv_denoiser_bind(d, n, f->ids + first * f->L), GV_OK);
    int64_t nfe0 = d->nfe;
    cr_assert_eq(gv_denoiser_call(d, f->ctx, x, sigma, vd), GV_OK, "%s", gv_last_error());
    tu_get(v, vd, (size_t)(n * f->D) * sizeof(float));
    be()->free(x);
    be()->free(vd);
    return d->nfe - nfe0;
}

/* v (N, D) [host] = one plain gv_unet_forward of samples 0..N-1 with ids (N, L) [host]. */
static void plain_forward(fix *f, int N, const int32_t *ids, float sigma, float *v) {
    gv_arena a;
    gv_arena_init(&a, be(), "test");
    gv_unet_saved saved;
    float *x = tu_dev_floats(N * f->D), *vd = tu_dev_floats(N * f->D), *s = tu_dev_floats(N);
    int32_t *idd = (int32_t *)tu_dev_floats(N * f->L);
    float sh[16];
    for (int i = 0; i < N; ++i) sh[i] = sigma;
    tu_put(s, sh, (size_t)N * sizeof(float));
    tu_put(idd, ids, (size_t)(N * f->L) * sizeof(int32_t));
    tu_put(x, f->xh, (size_t)(N * f->D) * sizeof(float));
    gv_arena_measure_begin(&a);
    cr_assert_eq(gv_unet_forward(&f->m, f->ctx, &a, f->ps.values, N, x, s, idd, vd, &saved), GV_OK);
    cr_assert_eq(gv_arena_reserve(&a, gv_arena_measure_end(&a)), GV_OK);
    cr_assert_eq(gv_unet_forward(&f->m, f->ctx, &a, f->ps.values, N, x, s, idd, vd, &saved), GV_OK,
                 "%s", gv_last_error());
    tu_get(v, vd, (size_t)(N * f->D) * sizeof(float));
    float *bufs[] = {x, vd, s, (float *)idd};
    for (int i = 0; i < 4; ++i) be()->free(bufs[i]);
    gv_arena_release(&a);
}

Test(denoiser, padding_and_position_invariance) {
    fix f;
    setup(&f, 1);
    gv_denoiser d;
    cr_assert_eq(gv_denoiser_create(&d, f.ctx, &f.m, f.ps.values,
                                    &(gv_denoiser_options){MB, 1.0f, NULL_ID}), GV_OK,
                 "%s", gv_last_error());
    cr_assert_eq(d.rows, MB);
    float v7[NMAX * 64], v3[3 * 64], v1[64];
    cr_assert_eq(run_denoiser(&f, &d, 0, 7, 0.6f, v7), 7);
    cr_assert_eq(run_denoiser(&f, &d, 0, 3, 0.6f, v3), 3);
    cr_assert_eq(memcmp(v3, v7, sizeof v3), 0, "samples 0..2 differ between n = 3 and n = 7");
    for (int i = 0; i < NMAX; ++i) { /* alone at row 0 of a padded batch vs at row i % 4 */
        run_denoiser(&f, &d, i, 1, 0.6f, v1);
        cr_assert_eq(memcmp(v1, v7 + i * 64, sizeof v1), 0, "sample %d differs when alone", i);
    }
    /* not trivially constant: different prompts give different velocities */
    cr_assert_neq(memcmp(v7, v7 + 64, sizeof v1), 0);
    gv_denoiser_free(&d);
    teardown(&f);
}

Test(denoiser, cfg_one_is_plain_forward_and_three_combines) {
    fix f;
    setup(&f, 0);
    gv_denoiser d1, d3;
    cr_assert_eq(gv_denoiser_create(&d1, f.ctx, &f.m, f.ps.values,
                                    &(gv_denoiser_options){MB, 1.0f, NULL_ID}), GV_OK);
    cr_assert_eq(gv_denoiser_create(&d3, f.ctx, &f.m, f.ps.values,
                                    &(gv_denoiser_options){MB, 3.0f, NULL_ID}), GV_OK);
    cr_assert_eq(d3.rows, 2 * MB);
    float v1[MB * 64], v3[MB * 64], vc[MB * 64], vn[MB * 64];
    int64_t nfe1 = run_denoiser(&f, &d1, 0, MB, 0.4f, v1);
    int64_t nfe3 = run_denoiser(&f, &d3, 0, MB, 0.4f, v3);
    cr_assert_eq(nfe1, MB);
    cr_assert_eq(nfe3, 2 * nfe1, "a CFG pair counts 2: %lld vs %lld", (long long)nfe3,
                 (long long)nfe1);
    plain_forward(&f, MB, f.ids, 0.4f, vc);
    cr_assert_eq(memcmp(v1, vc, sizeof v1), 0, "w = 1 is not the plain forward");
    int32_t null_ids[MB * 3];
    for (int i = 0; i < MB; ++i) {
        null_ids[i * 3] = NULL_ID;
        null_ids[i * 3 + 1] = null_ids[i * 3 + 2] = -1;
    }
    plain_forward(&f, MB, null_ids, 0.4f, vn);
    double worst = 0.0, spread = 0.0;
    for (int i = 0; i < MB * 64; ++i) {
        double want = (double)vn[i] + 3.0 * ((double)vc[i] - (double)vn[i]);
        worst = fmax(worst, fabs((double)v3[i] - want));
        spread = fmax(spread, fabs((double)vc[i] - (double)vn[i]));
    }
    cr_assert_lt(worst, 1e-6, "CFG w = 3 off by %g", worst);
    cr_assert_gt(spread, 1e-3, "conditional and null velocities coincide: the test is vacuous");
    gv_denoiser_free(&d1);
    gv_denoiser_free(&d3);
    teardown(&f);
}

/* x (n, D) [host] of gv_generate. */
static int64_t generate(fix *f, gv_denoiser *d, int n, uint32_t seed, const gv_noise_spec *noise,
                        float *xh, float *ph) {
    float *x = tu_dev_floats(n * f->D);
    gv_generate_options o = gv_generate_defaults();
    o.steps = 4;
    o.seed = seed;
    if (noise) o.noise = *noise;
    int64_t nfe = 0;
    cr_assert_eq(gv_generate(d, f->ctx, n, f->ids, &o, x, ph, &nfe), GV_OK, "%s", gv_last_error());
    tu_get(xh, x, (size_t)(n * f->D) * sizeof(float));
    be()->free(x);
    return nfe;
}

Test(denoiser, generate_deterministic_per_seed_and_independent_of_n) {
    fix f;
    setup(&f, 1);
    gv_denoiser d;
    cr_assert_eq(gv_denoiser_create(&d, f.ctx, &f.m, f.ps.values,
                                    &(gv_denoiser_options){MB, 2.0f, NULL_ID}), GV_OK);
    static float a[NMAX * 64], b[NMAX * 64], c[NMAX * 64], p[NMAX * 64], s3[3 * 64];
    cr_assert_eq(generate(&f, &d, 5, 11, NULL, a, p), 5 * 4 * 2);
    generate(&f, &d, 5, 11, NULL, b, NULL);
    cr_assert_eq(memcmp(a, b, 5 * 64 * sizeof(float)), 0, "same seed, different samples");
    for (int i = 0; i < 5 * 64; ++i) {
        float want = fminf(fmaxf((a[i] + 1.0f) * 0.5f, 0.0f), 1.0f);
        cr_assert_eq(p[i], want, "p[%d] = %g, want clamp((x+1)/2) = %g", i, p[i], want);
    }
    generate(&f, &d, 5, 12, NULL, c, NULL);
    int differ = 0;
    for (int i = 0; i < 5 * 64; ++i) differ += a[i] != c[i];
    cr_assert_gt(differ, 5 * 64 / 2, "another seed changed only %d of %d values", differ, 5 * 64);
    generate(&f, &d, 3, 11, NULL, s3, NULL);
    cr_assert_eq(memcmp(a, s3, sizeof s3), 0, "ODE samples depend on n");
    /* SDE steps: step noise addressed by sample index, so also independent of n */
    gv_noise_spec sde = {.kind = GV_NOISE_FLOW_GRPO, .level = 0.7};
    generate(&f, &d, 7, 11, &sde, b, NULL);
    generate(&f, &d, 3, 11, &sde, s3, NULL);
    cr_assert_eq(memcmp(b, s3, sizeof s3), 0, "SDE samples depend on n");
    cr_assert_neq(memcmp(a, b, 3 * 64 * sizeof(float)), 0, "SDE equals ODE: no step noise");
    gv_denoiser_free(&d);
    teardown(&f);
}
