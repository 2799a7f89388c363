/* The oneDNN fast paths against the reference kernels: conv2d, linear and matmul, forward and
 * backward, on odd shapes (N=1, C=3, 5x7 images, stride 2 with pad 1, 1x1 kernels, a 1x1 stride-2
 * conv that skips the last row and column); the += gradient rule with a sentinel pattern on both
 * paths; the primitive cache; thread-count independence of the reference reductions; a scratch
 * measure pass. Finite-difference checks of the reference itself live in the op harness
 * (tests/ops/), not here. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "grove/kernels_cpu.h"
#include "kernels/cpu/dnnl_glue.h"

#define REL_TOL 1e-4

static gv_ctx *make_ctx(int use_fast, int threads) {
    gv_ctx *c = NULL;
    gv_status s = grove_backend_cpu()->ctx_create(
        &(gv_ctx_options){.threads = threads, .use_fast = use_fast}, &c);
    cr_assert(s == GV_OK, "ctx_create(use_fast=%d): %s", use_fast, gv_last_error());
    return c;
}
static void free_ctx(gv_ctx *c) { grove_backend_cpu()->ctx_destroy(c); }
static const gv_ops *ops(void) { return grove_backend_cpu()->ops; }

static float *buf(size_t n) {
    float *p = calloc(n ? n : 1, sizeof *p);
    cr_assert(p != NULL);
    return p;
}
static float *random_buf(size_t n, uint32_t seed) {
    float *p = buf(n);
    uint64_t st = 0x9E3779B97F4A7C15ull * (seed + 1);
    for (size_t i = 0; i < n; i++) {
        st = st * 6364136223846793005ull + 1442695040888963407ull;
        p[i] = (float)((double)(st >> 40) / (double)(1u << 24) * 2.0 - 1.0);
    }
    return p;
}
/* A gradient buffer pre-filled with the sentinel pattern (or NULL when not wanted). */
static float sentinel(size_t i) { return 0.75f + 0.25f * (float)(i % 5); }
static float *sentinel_buf(size_t n, int wanted) {
    if (!wanted) return NULL;
    float *p = buf(n);
    for (size_t i = 0; i < n; i++) p[i] = sentinel(i);
    return p;
}

/* |got - want| / max(|want|, rms(want)) < REL_TOL everywhere; `plus_sentinel` compares against
   sentinel + want (the += rule). Reports max abs/rel error and the first bad index. */
static void expect_close(const char *what, const float *got, const float *want, size_t n,
                         int plus_sentinel) {
    double ss = 0.0;
    for (size_t i = 0; i < n; i++) {
        double w = want[i] + (plus_sentinel ? sentinel(i) : 0.0f);
        ss += w * w;
    }
    double rms = sqrt(ss / (double)(n ? n : 1)), max_abs = 0.0, max_rel = 0.0;
    size_t first_bad = n;
    for (size_t i = 0; i < n; i++) {
        double w = want[i] + (plus_sentinel ? sentinel(i) : 0.0f);
        double err = fabs((double)got[i] - w), den = fmax(fabs(w), rms > 0 ? rms : 1e-30);
        double rel = err / den;
        if (err > max_abs) max_abs = err;
        if (rel > max_rel) max_rel = rel;
        if (!(rel < REL_TOL) && first_bad == n) first_bad = i;
    }
    if (first_bad < n)
        cr_expect_fail("%s: max abs err %.3g, max rel err %.3g, first bad index %zu (got %.8g want %.8g)",
                what, max_abs, max_rel, first_bad, (double)got[first_bad],
                (double)want[first_bad] + (plus_sentinel ? sentinel(first_bad) : 0.0));
}

static void expect_ok(gv_status s, const char *what) {
    cr_assert(s == GV_OK, "%s: %s", what, gv_last_error());
}

/* ---- conv2d ---------------------------------------------------------------------------------- */

static const gv_conv2d_dims conv_cases[] = {
    /* N  C  H  W   K  R  S  stride pad */
    {2, 3, 5, 7, 4, 3, 3, 1, 1, 0, 0},   /* C=3, non-square                         */
    {1, 3, 5, 7, 5, 3, 3, 2, 1, 0, 0},   /* N=1, stride 2 pad 1 on odd sizes        */
    {3, 8, 6, 6, 16, 1, 1, 1, 0, 0, 0},  /* 1x1                                     */
    {1, 4, 6, 6, 3, 1, 1, 2, 0, 0, 0},   /* 1x1 stride 2: last row/column unused    */
    {2, 16, 9, 8, 8, 3, 3, 2, 1, 0, 0},  /* stride 2 down-sampling, odd/even        */
    {2, 1, 7, 5, 32, 3, 3, 1, 1, 0, 0},  /* C=1 (the UNet's first conv)             */
    {2, 32, 14, 14, 32, 3, 3, 1, 1, 0, 0}, /* unet-s sized                         */
    {2, 96, 7, 7, 32, 1, 1, 1, 0, 0, 0}, /* unet-s 1x1 skip                         */
};
#define N_CONV (sizeof conv_cases / sizeof conv_cases[0])

static gv_conv2d_dims conv_case(size_t i) {
    gv_conv2d_dims d = conv_cases[i];
    cr_assert(gv_conv2d_dims_set(&d), "case %zu has invalid geometry", i);
    return d;
}
#define CONV_FMT "conv case %zu (N=%d C=%d H=%d W=%d K=%d R=%d S=%d stride=%d pad=%d)"
#define CONV_ARGS(i, d) i, d.N, d.C, d.H, d.W, d.K, d.R, d.S, d.stride, d.pad

Test(dnnl, conv2d_forward_matches_reference) {
    gv_ctx *ref = make_ctx(0, 2), *fast = make_ctx(1, 2);
    for (size_t ci = 0; ci < N_CONV; ci++) {
        gv_conv2d_dims d = conv_case(ci);
        size_t nx = (size_t)d.N * d.C * d.H * d.W, nw = (size_t)d.K * d.C * d.R * d.S;
        size_t ny = (size_t)d.N * d.K * d.P * d.Q;
        float *x = random_buf(nx, 1), *w = random_buf(nw, 2), *b = random_buf(d.K, 3);
        float *y_ref = buf(ny), *y_fast = buf(ny);
        for (int with_bias = 0; with_bias < 2; with_bias++) {
            const float *bias = with_bias ? b : NULL;
            expect_ok(ops()->conv2d_forward(ref, y_ref, x, w, bias, &d), "reference forward");
            expect_ok(ops()->conv2d_forward(fast, y_fast, x, w, bias, &d), "oneDNN forward");
            char what[200];
            snprintf(what, sizeof what, CONV_FMT " forward%s", CONV_ARGS(ci, d),
                     with_bias ? " + bias" : "");
            expect_close(what, y_fast, y_ref, ny, 0);
        }
        free(x), free(w), free(b), free(y_ref), free(y_fast);
    }
    free_ctx(ref), free_ctx(fast);
}

/* Which gradients a backward call asks for: bit 0 dx, bit 1 dw, bit 2 db. */
static const int grad_masks[] = {7, 1, 2, 4, 6};

Test(dnnl, conv2d_backward_accumulates_and_matches_reference) {
    gv_ctx *ctxs[2] = {make_ctx(0, 2), make_ctx(1, 2)};
    const char *names[2] = {"reference", "oneDNN"};
    for (size_t ci = 0; ci < N_CONV; ci++) {
        gv_conv2d_dims d = conv_case(ci);
        size_t nx = (size_t)d.N * d.C * d.H * d.W, nw = (size_t)d.K * d.C * d.R * d.S;
        size_t ny = (size_t)d.N * d.K * d.P * d.Q;
        float *x = random_buf(nx, 4), *w = random_buf(nw, 5), *dy = random_buf(ny, 6);
        /* fresh gradients: the reference into zeroed buffers */
        float *dx0 = buf(nx), *dw0 = buf(nw), *db0 = buf(d.K);
        expect_ok(ops()->conv2d_backward(ctxs[0], dx0, dw0, db0, dy, x, w, &d), "fresh gradients");
        for (int p = 0; p < 2; p++) {
            for (size_t mi = 0; mi < sizeof grad_masks / sizeof grad_masks[0]; mi++) {
                int mask = grad_masks[mi];
                float *dx = sentinel_buf(nx, mask & 1), *dw = sentinel_buf(nw, mask & 2);
                float *db = sentinel_buf(d.K, mask & 4);
                expect_ok(ops()->conv2d_backward(ctxs[p], dx, dw, db, dy, x, w, &d), names[p]);
                char what[240];
#define CHECK_GRAD(g, g0, n)                                                                       \
    if (g) {                                                                                       \
        snprintf(what, sizeof what, "%s " CONV_FMT " " #g " (mask %d) == sentinel + fresh",        \
                 names[p], CONV_ARGS(ci, d), mask);                                                \
        expect_close(what, g, g0, n, 1);                                                           \
    }
                CHECK_GRAD(dx, dx0, nx)
                CHECK_GRAD(dw, dw0, nw)
                CHECK_GRAD(db, db0, (size_t)d.K)
                free(dx), free(dw), free(db);
            }
        }
        free(x), free(w), free(dy), free(dx0), free(dw0), free(db0);
    }
    free_ctx(ctxs[0]), free_ctx(ctxs[1]);
}

/* ---- linear ---------------------------------------------------------------------------------- */

static const gv_linear_dims linear_cases[] = {{1, 3, 5}, {7, 13, 4}, {5, 1, 1}, {64, 128, 128}};
#define N_LINEAR (sizeof linear_cases / sizeof linear_cases[0])

Test(dnnl, linear_matches_reference_and_accumulates) {
    gv_ctx *ctxs[2] = {make_ctx(0, 2), make_ctx(1, 2)};
    const char *names[2] = {"reference", "oneDNN"};
    for (size_t ci = 0; ci < N_LINEAR; ci++) {
        gv_linear_dims d = linear_cases[ci];
        size_t nx = (size_t)d.N * d.Din, nw = (size_t)d.Dout * d.Din, ny = (size_t)d.N * d.Dout;
        float *x = random_buf(nx, 7), *w = random_buf(nw, 8), *b = random_buf(d.Dout, 9);
        float *dy = random_buf(ny, 10), *y_ref = buf(ny), *y_fast = buf(ny);
        char what[200];
        for (int with_bias = 0; with_bias < 2; with_bias++) {
            expect_ok(ops()->linear_forward(ctxs[0], y_ref, x, w, with_bias ? b : NULL, &d), "ref");
            expect_ok(ops()->linear_forward(ctxs[1], y_fast, x, w, with_bias ? b : NULL, &d), "fast");
            snprintf(what, sizeof what, "linear (N=%d Din=%d Dout=%d) forward%s", d.N, d.Din, d.Dout,
                     with_bias ? " + bias" : "");
            expect_close(what, y_fast, y_ref, ny, 0);
        }
        float *dx0 = buf(nx), *dw0 = buf(nw), *db0 = buf(d.Dout);
        expect_ok(ops()->linear_backward(ctxs[0], dx0, dw0, db0, dy, x, w, &d), "fresh gradients");
        for (int p = 0; p < 2; p++) {
            for (size_t mi = 0; mi < sizeof grad_masks / sizeof grad_masks[0]; mi++) {
                int mask = grad_masks[mi];
                float *dx = sentinel_buf(nx, mask & 1), *dw = sentinel_buf(nw, mask & 2);
                float *db = sentinel_buf(d.Dout, mask & 4);
                expect_ok(ops()->linear_backward(ctxs[p], dx, dw, db, dy, x, w, &d), names[p]);
#define CHECK_LINEAR(g, g0, n)                                                                     \
    if (g) {                                                                                       \
        snprintf(what, sizeof what, "%s linear (N=%d Din=%d Dout=%d) " #g " (mask %d)", names[p],  \
                 d.N, d.Din, d.Dout, mask);                                                        \
        expect_close(what, g, g0, n, 1);                                                           \
    }
                CHECK_LINEAR(dx, dx0, nx)
                CHECK_LINEAR(dw, dw0, nw)
                CHECK_LINEAR(db, db0, (size_t)d.Dout)
                free(dx), free(dw), free(db);
            }
        }
        free(x), free(w), free(b), free(dy), free(y_ref), free(y_fast);
        free(dx0), free(dw0), free(db0);
    }
    free_ctx(ctxs[0]), free_ctx(ctxs[1]);
}

/* ---- matmul ---------------------------------------------------------------------------------- */

static const gv_matmul_dims matmul_cases[] = {{1, 1, 1, 1}, {2, 3, 5, 7}, {3, 17, 9, 4}, {4, 32, 16, 32}};
#define N_MATMUL (sizeof matmul_cases / sizeof matmul_cases[0])

Test(dnnl, matmul_matches_reference_and_accumulates) {
    gv_ctx *ctxs[2] = {make_ctx(0, 2), make_ctx(1, 2)};
    const char *names[2] = {"reference", "oneDNN"};
    for (size_t ci = 0; ci < N_MATMUL; ci++) {
        gv_matmul_dims d = matmul_cases[ci];
        size_t na = (size_t)d.B * d.M * d.K, nb = (size_t)d.B * d.K * d.N;
        size_t ny = (size_t)d.B * d.M * d.N;
        float *a = random_buf(na, 11), *b = random_buf(nb, 12), *dy = random_buf(ny, 13);
        float *y_ref = buf(ny), *y_fast = buf(ny);
        char what[200];
        expect_ok(ops()->matmul_forward(ctxs[0], y_ref, a, b, &d), "ref");
        expect_ok(ops()->matmul_forward(ctxs[1], y_fast, a, b, &d), "fast");
        snprintf(what, sizeof what, "matmul (B=%d M=%d K=%d N=%d) forward", d.B, d.M, d.K, d.N);
        expect_close(what, y_fast, y_ref, ny, 0);
        float *da0 = buf(na), *db0 = buf(nb);
        expect_ok(ops()->matmul_backward(ctxs[0], da0, db0, dy, a, b, &d), "fresh gradients");
        for (int p = 0; p < 2; p++) {
            for (int mask = 1; mask < 4; mask++) {
                float *da = sentinel_buf(na, mask & 1), *db = sentinel_buf(nb, mask & 2);
                expect_ok(ops()->matmul_backward(ctxs[p], da, db, dy, a, b, &d), names[p]);
#define CHECK_MATMUL(g, g0, n)                                                                     \
    if (g) {                                                                                       \
        snprintf(what, sizeof what, "%s matmul (B=%d M=%d K=%d N=%d) " #g " (mask %d)", names[p],  \
                 d.B, d.M, d.K, d.N, mask);                                                        \
        expect_close(what, g, g0, n, 1);                                                           \
    }
                CHECK_MATMUL(da, da0, na)
                CHECK_MATMUL(db, db0, nb)
                free(da), free(db);
            }
        }
        free(a), free(b), free(dy), free(y_ref), free(y_fast), free(da0), free(db0);
    }
    free_ctx(ctxs[0]), free_ctx(ctxs[1]);
}

/* ---- cache, threads, measure, errors --------------------------------------------------------- */

Test(dnnl, primitive_cache_reuses_primitives) {
    gv_ctx *c = make_ctx(1, 2);
    gv_conv2d_dims a = conv_case(0), b = conv_case(1);
    size_t big = 4096; /* covers both cases' tensors */
    float *x = random_buf(big, 1), *w = random_buf(big, 2), *y = buf(big), *g = buf(big);
    float *gx = buf(big), *gw = buf(big), *gb = buf(big);
    gv_dnnl_cache_stats s;

    expect_ok(ops()->conv2d_forward(c, y, x, w, NULL, &a), "forward a");
    gv_dnnl_cache_stats_get(c, &s);
    cr_expect(s.created == 1 && s.reused == 0 && s.entries == 1, "after one forward: %ld/%ld/%d",
              s.created, s.reused, s.entries);
    expect_ok(ops()->conv2d_forward(c, y, x, w, NULL, &a), "forward a again");
    gv_dnnl_cache_stats_get(c, &s);
    cr_expect(s.created == 1 && s.reused == 1, "same shape again: created %ld reused %ld", s.created,
              s.reused);
    expect_ok(ops()->conv2d_forward(c, y, x, w, w, &a), "forward a with bias");
    expect_ok(ops()->conv2d_forward(c, y, x, w, NULL, &b), "forward b");
    gv_dnnl_cache_stats_get(c, &s);
    cr_expect(s.created == 3, "bias and a new shape are new primitives: created %ld", s.created);
    for (int i = 0; i < 3; i++)
        expect_ok(ops()->conv2d_backward(c, gx, gw, gb, g, x, w, &a), "backward a");
    gv_dnnl_cache_stats_get(c, &s);
    cr_expect(s.created == 5 && s.reused == 1 + 4, "3 backwards: created %ld reused %ld", s.created,
              s.reused);
    gv_linear_dims ld = {4, 8, 16};
    for (int i = 0; i < 3; i++) expect_ok(ops()->linear_forward(c, y, x, w, NULL, &ld), "linear");
    gv_dnnl_cache_stats_get(c, &s);
    cr_expect(s.created == 6 && s.reused == 5 + 2 && s.entries == 6,
              "3 linears: created %ld reused %ld entries %d", s.created, s.reused, s.entries);
    cr_expect(strlen(gv_dnnl_last_impl(c)) > 0, "implementation name recorded");
    free(x), free(w), free(y), free(g), free(gx), free(gw), free(gb);
    free_ctx(c);

    gv_ctx *r = make_ctx(0, 1);
    gv_dnnl_cache_stats_get(r, &s);
    cr_expect(s.created == 0 && s.entries == 0, "reference ctx has no cache");
    free_ctx(r);
}

/* The reference weight/bias reductions run over N in order inside one thread: bitwise equal for 1
   and 2 threads. */
Test(dnnl, reference_reductions_do_not_depend_on_threads) {
    gv_ctx *c1 = make_ctx(0, 1), *c2 = make_ctx(0, 2);
    gv_conv2d_dims d = conv_case(4);
    size_t nx = (size_t)d.N * d.C * d.H * d.W, nw = (size_t)d.K * d.C * d.R * d.S;
    size_t ny = (size_t)d.N * d.K * d.P * d.Q;
    float *x = random_buf(nx, 1), *w = random_buf(nw, 2), *dy = random_buf(ny, 3);
    float *dw1 = buf(nw), *dw2 = buf(nw), *db1 = buf(d.K), *db2 = buf(d.K);
    expect_ok(ops()->conv2d_backward(c1, NULL, dw1, db1, dy, x, w, &d), "1 thread");
    expect_ok(ops()->conv2d_backward(c2, NULL, dw2, db2, dy, x, w, &d), "2 threads");
    cr_expect(memcmp(dw1, dw2, nw * sizeof(float)) == 0, "conv dw differs between 1 and 2 threads");
    cr_expect(memcmp(db1, db2, (size_t)d.K * sizeof(float)) == 0, "conv db differs");
    gv_linear_dims ld = {9, 5, 6};
    memset(dw1, 0, nw * sizeof(float)), memset(dw2, 0, nw * sizeof(float));
    expect_ok(ops()->linear_backward(c1, NULL, dw1, db1, dy, x, w, &ld), "1 thread");
    expect_ok(ops()->linear_backward(c2, NULL, dw2, db2, dy, x, w, &ld), "2 threads");
    cr_expect(memcmp(dw1, dw2, 30 * sizeof(float)) == 0, "linear dw differs between 1 and 2 threads");
    free(x), free(w), free(dy), free(dw1), free(dw2), free(db1), free(db2);
    free_ctx(c1), free_ctx(c2);
}

/* In a scratch measure pass the oneDNN backward only counts its scratch and computes nothing. */
Test(dnnl, scratch_measure_pass_counts_backward_outputs) {
    gv_ctx *c = make_ctx(1, 2);
    gv_conv2d_dims d = conv_case(0);
    size_t nx = (size_t)d.N * d.C * d.H * d.W, nw = (size_t)d.K * d.C * d.R * d.S;
    size_t ny = (size_t)d.N * d.K * d.P * d.Q;
    float *x = random_buf(nx, 1), *w = random_buf(nw, 2), *dy = random_buf(ny, 3);
    float *dx = buf(nx), *dw = buf(nw), *db = buf(d.K);
    gv_arena_measure_begin(&c->scratch);
    expect_ok(ops()->conv2d_backward(c, dx, dw, db, dy, x, w, &d), "measured backward");
    size_t peak = gv_arena_measure_end(&c->scratch);
    cr_expect(peak >= (nx + nw + (size_t)d.K) * sizeof(float), "peak %zu too small", peak);
    cr_expect(dx[0] == 0.0f && dw[0] == 0.0f && db[0] == 0.0f, "measure pass computed something");
    expect_ok(ops()->conv2d_backward(c, dx, dw, db, dy, x, w, &d), "backward after measuring");
    cr_expect(c->scratch.used == 0, "scratch released after the op (used %zu)", c->scratch.used);
    free(x), free(w), free(dy), free(dx), free(dw), free(db);
    free_ctx(c);
}

Test(dnnl, bad_dims_are_rejected_with_a_message) {
    gv_ctx *c = make_ctx(1, 2);
    gv_conv2d_dims d = conv_case(0);
    d.P += 1; /* inconsistent with the geometry */
    float v[64] = {0};
    gv_status s = ops()->conv2d_forward(c, v, v, v, NULL, &d);
    cr_expect(s == GV_ERR_INVALID, "status %d", (int)s);
    cr_expect(strstr(gv_last_error(), "conv2d_forward") != NULL, "message: %s", gv_last_error());
    gv_matmul_dims md = {1, 0, 2, 2};
    cr_expect(ops()->matmul_forward(c, v, v, v, &md) == GV_ERR_INVALID);
    free_ctx(c);
}
