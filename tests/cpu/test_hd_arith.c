/* The GV_HD arithmetic of kernels/shared (and grove/philox.h), compiled on the host, against the
 * CPU reference kernels called through the CPU op table (ctx use_fast = 0).
 *
 * The CUDA kernels are launch loops around these same functions, compiled with --fmad=false
 * --ftz=false --prec-div=true, so what passes here is the arithmetic the GPU runs; only the launch
 * glue needs a GPU (tests/gpu/test_cuda.c). Tolerances, and why:
 *   add, scale, axpby      0 ulp (bitwise): the same one or two IEEE products and one sum, in the
 *                          same order, no contraction on either side.
 *   philox normals         0 ulp: the CPU fill runs the same GV_HD functions.
 *   gv_hd_expf             <= 1 ulp from exp computed in double and rounded to float.
 *   silu forward           <= 4 ulp: the reference calls libm's expf (correctly rounded in
 *                          practice), the shared code gv_hd_expf (<= 1 ulp, but the same bits on
 *                          host and device). For x << 0, silu = x / (1 + e) with e = exp(-x) huge:
 *                          the exp difference passes through whole and 1 + e and the division add
 *                          a rounding each. Measured over all floats in (-120, 120): max 4 ulp.
 *   silu backward          |shared - ref| <= 8 eps (|dx| + |dy| (1 + |x|)), eps = 2^-24: an ulp
 *                          bound is meaningless near silu'(x) = 0 (x = -1.2785), where
 *                          1 + x (1 - s) cancels and both sides keep only a few correct bits
 *                          (tens of thousands of ulp apart, both right to the bound above).
 * If the CPU reference ever calls gv_hd_silu / gv_hd_silu_grad, both become bitwise.
 * Inputs: a few thousand values — an even grid over [-20, 20], magnitudes 2^-30 .. 2^7 of both
 * signs, pseudo-random values, and the edges (0, -0, subnormals, exp overflow/underflow). */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "grove/backend.h"
#include "grove/kernels_cpu.h"
#include "grove/philox.h"
#include "gv_elementwise.h"
#include "gv_math.h"

#define N_IN 4096

/* x (N_IN): the inputs described in the header comment; deterministic. */
static void make_inputs(float *x, uint32_t seed) {
    static const float edges[] = {0.0f, -0.0f, 1e-45f, -1e-45f, FLT_MIN, -FLT_MIN, 1.0f, -1.0f,
                                  88.0f, -88.0f, 88.7f, -88.7f, 89.0f, -89.0f, 103.9f, -103.9f,
                                  104.5f, -104.5f, 200.0f, -200.0f, 1e30f, -1e30f};
    const int n_edges = (int)(sizeof edges / sizeof edges[0]);
    int i = 0;
    for (int k = 0; k < n_edges; ++k) x[i++] = edges[k];
    for (int k = 0; k < 2001; ++k) x[i++] = -20.0f + 0.02f * (float)k;
    for (int e = -30; e <= 7; ++e)
        for (int m = 0; m < 8; ++m) {
            float v = ldexpf(1.0f + 0.125f * (float)m, e);
            x[i++] = v;
            x[i++] = -v;
        }
    uint32_t s = seed;
    while (i < N_IN) { /* LCG: uniform-ish in [-30, 30] */
        s = s * 1664525u + 1013904223u;
        x[i++] = ((float)(s >> 8) * 0x1p-24f - 0.5f) * 60.0f;
    }
}

static gv_ctx *cpu_ctx(void) {
    gv_ctx_options opt = {.threads = 1, .use_fast = 0, .scratch_bytes = 1 << 20};
    gv_ctx *c = NULL;
    cr_assert_eq(grove_backend_cpu()->ctx_create(&opt, &c), GV_OK, "cpu ctx_create: %s",
                 gv_last_error());
    return c;
}

/* The reference op's status: a clear failure when the CPU kernel has not landed yet. */
static void require_ok(gv_status s, const char *op) {
    cr_assert_eq(s, GV_OK, "CPU reference %s failed (%s): %s", op, gv_status_name(s),
                 gv_last_error());
}

/* Max ulp distance of got vs want over n; fails naming the first element above tol. */
static void compare(const char *what, const float *got, const float *want, const float *x, int n,
                    int64_t tol) {
    int64_t worst = 0;
    int worst_i = 0, bad = 0;
    for (int i = 0; i < n; ++i) {
        int64_t d = gv_hd_ulp_distance(got[i], want[i]);
        if (d > worst) {
            worst = d;
            worst_i = i;
        }
        if (d > tol && !bad) {
            bad = 1;
            cr_log_error("%s: first element over %lld ulp: i=%d x=%a shared=%a reference=%a "
                         "(%lld ulp)", what, (long long)tol, i, x ? x[i] : 0.0f, got[i], want[i],
                         (long long)d);
        }
    }
    cr_log_info("%s: max %lld ulp over %d elements (at i=%d)", what, (long long)worst, n, worst_i);
    cr_assert_leq(worst, tol, "%s: max %lld ulp > %lld at i=%d (x=%a shared=%a reference=%a)",
                  what, (long long)worst, (long long)tol, worst_i, x ? x[worst_i] : 0.0f,
                  got[worst_i], want[worst_i]);
}

/* silu_backward's bound (see the header comment); fails naming the first element over it. */
static void compare_silu_backward(const float *got, const float *want, const float *dx0,
                                  const float *dy, const float *x, int n) {
    for (int i = 0; i < n; ++i) {
        double bound = 8.0 * 0x1p-24 * (fabs(dx0[i]) + fabs(dy[i]) * (1.0 + fabs(x[i])));
        double diff = fabs((double)got[i] - (double)want[i]);
        cr_assert(diff <= bound || gv_hd_ulp_distance(got[i], want[i]) == 0,
                  "silu_backward: i=%d x=%a dy=%a dx0=%a shared=%a reference=%a: |diff| %g > %g",
                  i, x[i], dy[i], dx0[i], got[i], want[i], diff, bound);
    }
}

Test(hd_arith, expf_within_one_ulp_of_double_exp) {
    /* every 257th float bit pattern of [-104, 89) of both signs: ~8.7 million values */
    int64_t worst = 0;
    float worst_x = 0.0f;
    for (uint64_t u = 0; u <= 0xffffffffu; u += 257) {
        float x = gv_bits_to_float((uint32_t)u);
        if (!(x > -104.0f && x < 89.0f)) continue;
        int64_t d = gv_hd_ulp_distance(gv_hd_expf(x), (float)exp((double)x));
        if (d > worst) {
            worst = d;
            worst_x = x;
        }
    }
    cr_log_info("gv_hd_expf: max %lld ulp from double exp (at x=%a)", (long long)worst, worst_x);
    cr_assert_leq(worst, 1, "gv_hd_expf is %lld ulp from exp at x=%a", (long long)worst, worst_x);
    cr_assert(isnan(gv_hd_expf(NAN)));
    cr_assert_eq(gv_hd_expf(INFINITY), INFINITY);
    cr_assert_eq(gv_hd_expf(-INFINITY), 0.0f);
    cr_assert_eq(gv_hd_expf(0.0f), 1.0f);
    cr_assert_eq(gv_hd_expf(89.0f), INFINITY);
    cr_assert_eq(gv_hd_expf(-105.0f), 0.0f);
}

Test(hd_arith, ulp_distance) {
    cr_assert_eq(gv_hd_ulp_distance(0.0f, -0.0f), 0);
    cr_assert_eq(gv_hd_ulp_distance(1.0f, nextafterf(1.0f, 2.0f)), 1);
    cr_assert_eq(gv_hd_ulp_distance(-1e-45f, 1e-45f), 2);
    cr_assert_eq(gv_hd_ulp_distance(NAN, NAN), 0);
    cr_assert_eq(gv_hd_ulp_distance(NAN, 1.0f), INT64_MAX);
}

Test(hd_arith, silu_forward_matches_reference) {
    static float x[N_IN], ref[N_IN], got[N_IN];
    make_inputs(x, 1);
    gv_ctx *c = cpu_ctx();
    gv_ew_dims d = {N_IN};
    require_ok(grove_backend_cpu()->ops->silu_forward(c, ref, x, &d), "silu_forward");
    for (int i = 0; i < N_IN; ++i) got[i] = gv_hd_silu(x[i]);
    compare("silu_forward", got, ref, x, N_IN, 4);
    grove_backend_cpu()->ctx_destroy(c);
}

Test(hd_arith, silu_backward_matches_reference) {
    static float x[N_IN], dy[N_IN], dx0[N_IN], ref[N_IN], got[N_IN];
    make_inputs(x, 2);
    make_inputs(dy, 3);
    for (int i = 0; i < N_IN; ++i) {
        dy[i] = dy[i] / 30.0f; /* upstream gradients of moderate size */
        dx0[i] = ref[i] = 0.25f * (float)(i % 7) - 0.75f; /* nonzero: checks the += rule */
    }
    /* and a dense run through the cancellation near silu'(x) = 0 */
    for (int i = 0; i < 512; ++i) x[N_IN - 512 + i] = -1.2786f + 0.0000005f * (float)i;
    gv_ctx *c = cpu_ctx();
    gv_ew_dims d = {N_IN};
    require_ok(grove_backend_cpu()->ops->silu_backward(c, ref, dy, x, &d), "silu_backward");
    for (int i = 0; i < N_IN; ++i) got[i] = gv_hd_silu_backward(dx0[i], dy[i], x[i]);
    compare_silu_backward(got, ref, dx0, dy, x, N_IN);
    grove_backend_cpu()->ctx_destroy(c);
}

Test(hd_arith, add_scale_axpby_bitwise) {
    static float a[N_IN], b[N_IN], ref[N_IN], got[N_IN];
    make_inputs(a, 4);
    make_inputs(b, 5);
    gv_ctx *c = cpu_ctx();
    const gv_ops *ops = grove_backend_cpu()->ops;
    gv_ew_dims d = {N_IN};
    const float alpha = 0.7f, beta = -1.3f;

    require_ok(ops->add(c, ref, a, b, &d), "add");
    for (int i = 0; i < N_IN; ++i) got[i] = gv_hd_add(a[i], b[i]);
    compare("add", got, ref, a, N_IN, 0);

    require_ok(ops->scale(c, ref, a, alpha, &d), "scale");
    for (int i = 0; i < N_IN; ++i) got[i] = gv_hd_scale(alpha, a[i]);
    compare("scale", got, ref, a, N_IN, 0);

    memcpy(ref, b, sizeof ref);
    require_ok(ops->axpby(c, ref, a, alpha, beta, &d), "axpby");
    for (int i = 0; i < N_IN; ++i) got[i] = gv_hd_axpby(alpha, a[i], beta, b[i]);
    compare("axpby", got, ref, a, N_IN, 0);
    grove_backend_cpu()->ctx_destroy(c);
}

Test(hd_arith, philox_normals_bitwise) {
    /* an offset that is not a multiple of 4 and a length that ends mid-block */
    static float ref[4099];
    gv_philox_args a = {.n = 4099, .key = {7u, 2u}, .ctr_hi = {0x01000005u, 0x00030001u, 11u},
                        .offset = 3};
    gv_ctx *c = cpu_ctx();
    require_ok(grove_backend_cpu()->ops->philox_normal_fill(c, ref, &a), "philox_normal_fill");
    for (int64_t i = 0; i < a.n; ++i) {
        float z = gv_philox_normal_at(a.key, a.ctr_hi, a.offset + (uint64_t)i);
        cr_assert_eq(gv_float_to_bits(z), gv_float_to_bits(ref[i]),
                     "philox normal %lld: shared %a, reference %a", (long long)i, z, ref[i]);
    }
    grove_backend_cpu()->ctx_destroy(c);
}
