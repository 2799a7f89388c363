/* Tests of the optimizer (optim.h, kernels/cpu/optim_kernels.c): AdamW against hand-computed
 * values, the deterministic sum of squares, grad-norm clipping and its NaN guard, the EMA decay
 * and update, and the LR schedules. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grove/kernels_cpu.h"
#include "grove/optim.h"
#include "grove/params.h"
#include "grove/run_config.h"
#include "test_util.h"

/* the config's schedule kinds convert to optim.h's by value */

static gv_ctx *make_ctx(int threads) { return tu_make_ctx(threads, 0); }

static uint64_t lcg_state = 88172645463325252ull;

static void put(const gv_params *ps, float *dst, const float *src, int64_t n) {
    cr_assert_eq(ps->backend->copy_from_host(dst, src, (size_t)n * sizeof(float)), GV_OK);
}
static void get(const gv_params *ps, float *dst, const float *src, int64_t n) {
    cr_assert_eq(ps->backend->copy_to_host(dst, src, (size_t)n * sizeof(float)), GV_OK);
}

/* ---- AdamW ----------------------------------------------------------------------------------- */

Test(adamw, two_steps_match_hand_computed_values) {
    gv_ctx *ctx = make_ctx(2);
    gv_params ps;
    gv_params_init(&ps, grove_backend_cpu());
    gv_shape s3 = gv_shape_make(1, (int64_t[]){3});
    cr_assert_eq(gv_params_declare(&ps, "w", s3, GV_INIT_ZEROS, 0, 1, NULL), GV_OK); /* decays */
    cr_assert_eq(gv_params_declare(&ps, "b", s3, GV_INIT_ZEROS, 0, 0, NULL), GV_OK); /* does not */
    cr_assert_eq(gv_params_allocate(&ps, 0), GV_OK);
    const float p0[3] = {1.0f, -2.0f, 0.5f};
    const float grads[2][3] = {{0.1f, -0.3f, 2.0f}, {0.2f, 0.1f, -1.0f}};
    gv_param *w = gv_params_at(&ps, 0), *b = gv_params_at(&ps, 1);
    put(&ps, w->value, p0, 3);
    put(&ps, b->value, p0, 3);
    /* eps large enough that its placement (outside the sqrt) shows in the result */
    gv_adamw_config cfg = {.lr = 0.5f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-3f,
                           .weight_decay = 0.1f};
    /* By hand (double): p -= lr wd p; m = .9 m + .1 g; v = .999 v + .001 g²;
       p -= lr (m / (1-.9^t)) / (sqrt(v / (1-.999^t)) + eps), lr = 0.1.
       Step 1, w[0]: 1 - 0.01 = 0.99; m̂ = 0.1, sqrt(v̂) = 0.1; 0.99 - 0.1·0.1/0.101 = 0.8909901 */
    const double expect_w[2][3] = {{0.890990099, -1.880332226, 0.395049975},
                                   {0.786168503, -1.821685268, 0.364482608}};
    const double expect_b[2][3] = {{0.900990099, -1.900332226, 0.400049975},
                                   {0.805078404, -1.860488591, 0.373433108}};
    const double expect_m[2][3] = {{0.01, -0.03, 0.2}, {0.029, -0.017, 0.08}};
    const double expect_v[2][3] = {{1e-05, 9e-05, 0.004}, {4.999e-05, 9.991e-05, 0.004996}};
    for (int t = 1; t <= 2; ++t) {
        put(&ps, w->grad, grads[t - 1], 3);
        put(&ps, b->grad, grads[t - 1], 3);
        cr_assert_eq(gv_optim_step(ctx, &ps, &cfg, 0.1f, t), GV_OK, "%s", gv_last_error());
        float pw[3], pb[3], m[3], v[3];
        get(&ps, pw, w->value, 3);
        get(&ps, pb, b->value, 3);
        get(&ps, m, b->adam_m, 3);
        get(&ps, v, b->adam_v, 3);
        for (int i = 0; i < 3; ++i) {
            cr_assert(fabs(pw[i] - expect_w[t - 1][i]) < 1e-6, "step %d w[%d] = %.9f, expect %.9f",
                      t, i, (double)pw[i], expect_w[t - 1][i]);
            cr_assert(fabs(pb[i] - expect_b[t - 1][i]) < 1e-6, "step %d b[%d] = %.9f, expect %.9f",
                      t, i, (double)pb[i], expect_b[t - 1][i]);
            /* relative 1e-4: in float, 1 - 0.999f = 0.00100004673, not 0.001 */
            cr_assert(fabs(m[i] - expect_m[t - 1][i]) < 1e-4 * fabs(expect_m[t - 1][i]),
                      "step %d m[%d] = %.9g", t, i, (double)m[i]);
            cr_assert(fabs(v[i] - expect_v[t - 1][i]) < 1e-4 * fabs(expect_v[t - 1][i]),
                      "step %d v[%d] = %.9g", t, i, (double)v[i]);
        }
    }
    cr_assert_eq(gv_optim_step(ctx, &ps, &cfg, 0.1f, 0), GV_ERR_INVALID, "step 0 is rejected");
    gv_params_free(&ps);
    grove_backend_cpu()->ctx_destroy(ctx);
}

/* ---- sumsq ----------------------------------------------------------------------------------- */

Test(sumsq, equals_double_sum_and_is_thread_count_independent) {
    /* not multiples of the 4096-element block; the large one crosses the 512-block chunk too */
    const int64_t sizes[] = {1, 4095, 3 * 4096 + 77, 512 * 4096 + 4097};
    for (size_t t = 0; t < sizeof sizes / sizeof sizes[0]; ++t) {
        int64_t n = sizes[t];
        float *x = malloc((size_t)n * sizeof(float));
        cr_assert(x);
        double ref = 0.0;
        for (int64_t i = 0; i < n; ++i) {
            x[i] = tu_rand_sym(&lcg_state) * (i % 7 == 0 ? 100.0f : 1.0f);
            ref += (double)x[i] * (double)x[i];
        }
        float out[2];
        for (int threads = 1; threads <= 2; ++threads) {
            gv_ctx *ctx = make_ctx(threads);
            gv_ew_dims d = {.n = n};
            cr_assert_eq(grove_backend_cpu()->ops->sumsq(ctx, &out[threads - 1], x, &d), GV_OK);
            grove_backend_cpu()->ctx_destroy(ctx);
        }
        cr_assert(memcmp(&out[0], &out[1], sizeof(float)) == 0, "n = %lld: threads 1 %a, 2 %a",
                  (long long)n, (double)out[0], (double)out[1]);
        cr_assert(fabs(out[0] - ref) <= 1e-7 * ref, "n = %lld: %.9g vs double %.9g", (long long)n,
                  (double)out[0], ref);
        free(x);
    }
}

/* ---- grad norm and clip ---------------------------------------------------------------------- */

typedef struct fixture {
    gv_ctx *ctx;
    gv_params ps;
} fixture;

/* Three parameters (odd sizes, so padding exists); grads random scaled to norm `norm`. */
static void fixture_make(fixture *f, double norm) {
    f->ctx = make_ctx(2);
    gv_params_init(&f->ps, grove_backend_cpu());
    const int64_t sizes[] = {1000, 7, 33333};
    char name[16];
    for (int i = 0; i < 3; ++i) {
        snprintf(name, sizeof name, "p%d", i);
        cr_assert_eq(gv_params_declare(&f->ps, name, gv_shape_make(1, &sizes[i]), GV_INIT_NORMAL,
                                       1.0f, 1, NULL), GV_OK);
    }
    cr_assert_eq(gv_params_allocate(&f->ps, 1), GV_OK);
    cr_assert_eq(gv_params_initialize(&f->ps, 5), GV_OK);
    double ss = 0.0;
    float *g[3];
    for (int i = 0; i < 3; ++i) {
        g[i] = malloc((size_t)sizes[i] * sizeof(float));
        for (int64_t j = 0; j < sizes[i]; ++j) {
            g[i][j] = tu_rand_sym(&lcg_state);
            ss += (double)g[i][j] * g[i][j];
        }
    }
    double k = norm / sqrt(ss);
    for (int i = 0; i < 3; ++i) {
        for (int64_t j = 0; j < sizes[i]; ++j) g[i][j] = (float)(g[i][j] * k);
        put(&f->ps, gv_params_at(&f->ps, i)->grad, g[i], sizes[i]);
        free(g[i]);
    }
}

static void fixture_free(fixture *f) {
    gv_params_free(&f->ps);
    grove_backend_cpu()->ctx_destroy(f->ctx);
}

Test(grad_clip, scales_large_norms_to_exactly_max_norm) {
    fixture f;
    fixture_make(&f, 7.5);
    float before = 0, after = 0;
    cr_assert_eq(gv_grad_norm(f.ctx, &f.ps, &before), GV_OK);
    cr_assert(fabs(before - 7.5) < 7.5e-6, "norm %.9g", (double)before);
    float reported = 0;
    cr_assert_eq(gv_grad_clip(f.ctx, &f.ps, 1.0f, &reported), GV_OK);
    cr_assert(reported == before);
    cr_assert_eq(gv_grad_norm(f.ctx, &f.ps, &after), GV_OK);
    cr_assert(fabs(after - 1.0) < 1e-6, "norm after clip %.9g", (double)after);
    fixture_free(&f);
}

Test(grad_clip, leaves_small_norms_untouched) {
    fixture f;
    fixture_make(&f, 0.5);
    float *g0 = malloc((size_t)f.ps.total * sizeof(float)), *g1 = malloc((size_t)f.ps.total * sizeof(float));
    get(&f.ps, g0, f.ps.grads, f.ps.total);
    float norm = 0;
    cr_assert_eq(gv_grad_clip(f.ctx, &f.ps, 1.0f, &norm), GV_OK);
    cr_assert(fabs(norm - 0.5) < 1e-6);
    get(&f.ps, g1, f.ps.grads, f.ps.total);
    cr_assert(memcmp(g0, g1, (size_t)f.ps.total * sizeof(float)) == 0);
    free(g0);
    free(g1);
    fixture_free(&f);
}

Test(grad_clip, non_finite_norm_is_numeric_error_and_changes_nothing) {
    const float bad[] = {NAN, INFINITY};
    for (int k = 0; k < 2; ++k) {
        fixture f;
        fixture_make(&f, 3.0);
        gv_param *p = gv_params_at(&f.ps, 2);
        put(&f.ps, p->grad + 123, &bad[k], 1);
        int64_t n = f.ps.total;
        float *g0 = malloc((size_t)n * 4), *g1 = malloc((size_t)n * 4);
        float *v0 = malloc((size_t)n * 4), *v1 = malloc((size_t)n * 4);
        get(&f.ps, g0, f.ps.grads, n);
        get(&f.ps, v0, f.ps.values, n);
        float norm = 0;
        cr_assert_eq(gv_grad_clip(f.ctx, &f.ps, 1.0f, &norm), GV_ERR_NUMERIC);
        cr_assert(!isfinite(norm));
        cr_assert(strstr(gv_last_error(), k == 0 ? "NaN" : "infinite"), "%s", gv_last_error());
        get(&f.ps, g1, f.ps.grads, n);
        get(&f.ps, v1, f.ps.values, n);
        cr_assert(memcmp(g0, g1, (size_t)n * 4) == 0, "gradients changed");
        cr_assert(memcmp(v0, v1, (size_t)n * 4) == 0, "parameters changed");
        free(g0);
        free(g1);
        free(v0);
        free(v1);
        fixture_free(&f);
    }
}

/* ---- EMA ------------------------------------------------------------------------------------- */

Test(ema, decay_warmup_formula) {
    /* min((1 + k) / (10 + k), decay) */
    cr_assert(fabsf(gv_ema_decay_at(0, 0.999f) - 0.1f) < 1e-7f);
    cr_assert(fabsf(gv_ema_decay_at(10, 0.999f) - 0.55f) < 1e-7f);
    cr_assert(fabsf(gv_ema_decay_at(90, 0.999f) - 0.91f) < 1e-7f);
    cr_assert(fabsf(gv_ema_decay_at(990, 0.999f) - 0.991f) < 1e-7f);
    cr_assert(gv_ema_decay_at(100000, 0.999f) == 0.999f);
    cr_assert(gv_ema_decay_at(80, 0.9f) == 0.9f); /* 81/90 = 0.9 exactly: the cap */
    cr_assert(fabsf(gv_ema_decay_at(79, 0.9f) - 80.0f / 89.0f) < 1e-7f);
}

Test(ema, update_blends_values) {
    fixture f;
    fixture_make(&f, 1.0);
    int64_t n = f.ps.total;
    float *old_ema = malloc((size_t)n * 4), *val = malloc((size_t)n * 4), *ema = malloc((size_t)n * 4);
    get(&f.ps, old_ema, f.ps.ema, n);
    for (int64_t i = 0; i < n; ++i) val[i] = old_ema[i] + 1.0f; /* new values */
    put(&f.ps, f.ps.values, val, n);
    cr_assert_eq(gv_ema_update(f.ctx, &f.ps, 0.75f), GV_OK, "%s", gv_last_error());
    get(&f.ps, ema, f.ps.ema, n);
    for (int64_t i = 0; i < n; ++i) {
        double expect = 0.75 * old_ema[i] + 0.25 * val[i];
        cr_assert(fabs(ema[i] - expect) < 1e-6 * (1.0 + fabs(expect)), "ema[%lld]", (long long)i);
    }
    free(old_ema);
    free(val);
    free(ema);
    fixture_free(&f);
}

/* ---- LR schedules ---------------------------------------------------------------------------- */

Test(lr, constant_and_warmup_cosine_values) {
    gv_lr_schedule c = {.kind = GV_LR_SCHED_CONSTANT, .lr = 3e-4f};
    cr_assert_eq(gv_lr_schedule_check(&c), GV_OK);
    cr_assert(gv_lr_at(&c, 1) == 3e-4f && gv_lr_at(&c, 100000) == 3e-4f);

    gv_lr_schedule s = {.kind = GV_LR_SCHED_WARMUP_COSINE, .lr = 1.0f, .warmup_steps = 10,
                        .total_steps = 110, .min_lr = 0.1f};
    cr_assert_eq(gv_lr_schedule_check(&s), GV_OK);
    const struct {
        int64_t t;
        double lr;
    } expect[] = {
        {0, 0.0},    {1, 0.1},   {5, 0.5},  {10, 1.0}, /* linear warmup from 0 */
        {35, 0.1 + 0.9 * 0.5 * (1.0 + cos(M_PI * 0.25))}, /* a quarter into the cosine */
        {60, 0.55},  {85, 0.1 + 0.9 * 0.5 * (1.0 + cos(M_PI * 0.75))},
        {110, 0.1},  {1000, 0.1}, /* min_lr at total_steps, constant after */
    };
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; ++i) {
        float got = gv_lr_at(&s, expect[i].t);
        cr_assert(fabs(got - expect[i].lr) < 1e-6, "t = %lld: %.9g, expect %.9g",
                  (long long)expect[i].t, (double)got, expect[i].lr);
    }
    s.total_steps = 10;
    cr_assert_eq(gv_lr_schedule_check(&s), GV_ERR_INVALID);
    cr_assert(strstr(gv_last_error(), "total_steps"), "%s", gv_last_error());
}
