/* Hand-computed values for the CPU reference kernels (norm, activation, softmax, attention,
 * embedding, resample, elementwise, loss).
 *
 * Each test feeds a tiny input whose answer was worked out by hand (or from a closed form in
 * double precision) and compares what the op table returns. Backward tests pre-fill gradients with
 * a non-zero value to see the += rule, and pass NULL for gradients that are not wanted.
 * Deliberately not here: finite-difference gradient checks over odd shapes, oneDNN and CUDA parity
 * (the table-driven harness in tests/ops/ does those). */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "grove/kernels_cpu.h"

static gv_ctx *ctx;
static const gv_ops *ops;

static void setup(void) {
    gv_status s =
        grove_backend_cpu()->ctx_create(&(gv_ctx_options){.threads = 2, .use_fast = 0}, &ctx);
    cr_assert_eq(s, GV_OK, "ctx_create: %s", gv_last_error());
    ops = ctx->backend->ops;
}
static void teardown(void) { grove_backend_cpu()->ctx_destroy(ctx); }

TestSuite(kernels_ref, .init = setup, .fini = teardown);

#define TOL 1e-6

/* got[i] ~ want[i] within tol * max(1, |want[i]|); names the op and the first bad index. */
static void expect_close(const char *what, const float *got, const double *want, int n,
                         double tol) {
    for (int i = 0; i < n; ++i) {
        double err = fabs((double)got[i] - want[i]);
        cr_expect(err <= tol * fmax(1.0, fabs(want[i])), "%s[%d] = %.9g, expected %.9g", what, i,
                  (double)got[i], want[i]);
    }
}

static void expect_ok(gv_status s, const char *what) {
    cr_assert_eq(s, GV_OK, "%s failed: %s", what, gv_last_error());
}

static void fill(float *x, int n, float v) {
    for (int i = 0; i < n; ++i) x[i] = v;
}

/* ---- groupnorm / layernorm ------------------------------------------------------------------- */

Test(kernels_ref, groupnorm_one_group_by_hand) {
    /* x (1,2,2): channel 0 = {1,2}, channel 1 = {3,4}; one group: mean 2.5, var 1.25. */
    const float x[4] = {1, 2, 3, 4}, gamma[2] = {1, 2}, beta[2] = {0, 1};
    float y[4], mean[1], rstd[1];
    gv_groupnorm_dims d = {.N = 1, .C = 2, .HW = 2, .G = 1, .eps = 0.0f};
    expect_ok(ops->groupnorm_forward(ctx, y, mean, rstd, x, gamma, beta, &d), "groupnorm");
    const double r = 1.0 / sqrt(1.25);
    const double want_y[4] = {-1.5 * r, -0.5 * r, 2 * 0.5 * r + 1, 2 * 1.5 * r + 1};
    const double want_mean[1] = {2.5}, want_rstd[1] = {r};
    expect_close("groupnorm y", y, want_y, 4, TOL);
    expect_close("groupnorm mean", mean, want_mean, 1, TOL);
    expect_close("groupnorm rstd", rstd, want_rstd, 1, TOL);
}

Test(kernels_ref, groupnorm_uneven_groups) {
    /* C = 3, G = 2: group 0 = channel {0}, group 1 = channels {1, 2} (floor(g*C/G) boundaries).
       x (1,3,2): ch0 {0,2} -> mean 1, var 1; ch1,ch2 {1,3,5,7} -> mean 4, var 5. */
    const float x[6] = {0, 2, 1, 3, 5, 7}, gamma[3] = {1, 1, 1}, beta[3] = {0, 0, 0};
    float y[6], mean[2], rstd[2];
    gv_groupnorm_dims d = {.N = 1, .C = 3, .HW = 2, .G = 2, .eps = 0.0f};
    expect_ok(ops->groupnorm_forward(ctx, y, mean, rstd, x, gamma, beta, &d), "groupnorm");
    const double r = 1.0 / sqrt(5.0);
    const double want_y[6] = {-1, 1, -3 * r, -r, r, 3 * r};
    const double want_mean[2] = {1, 4}, want_rstd[2] = {1, r};
    expect_close("groupnorm y", y, want_y, 6, TOL);
    expect_close("groupnorm mean", mean, want_mean, 2, TOL);
    expect_close("groupnorm rstd", rstd, want_rstd, 2, TOL);
}

Test(kernels_ref, groupnorm_per_sample_statistics) {
    /* Two samples with different scales: each is normalised with its own statistics. */
    const float x[4] = {1, 3, 100, 300}, gamma[1] = {1}, beta[1] = {0};
    float y[4], mean[2], rstd[2];
    gv_groupnorm_dims d = {.N = 2, .C = 1, .HW = 2, .G = 1, .eps = 0.0f};
    expect_ok(ops->groupnorm_forward(ctx, y, mean, rstd, x, gamma, beta, &d), "groupnorm");
    const double want_y[4] = {-1, 1, -1, 1}, want_mean[2] = {2, 200}, want_rstd[2] = {1, 0.01};
    expect_close("groupnorm y", y, want_y, 4, TOL);
    expect_close("groupnorm mean", mean, want_mean, 2, TOL);
    expect_close("groupnorm rstd", rstd, want_rstd, 2, TOL);
}

Test(kernels_ref, groupnorm_backward_by_hand) {
    /* x = {0,1,2}: mean 1, var 2/3, rstd = s = sqrt(3/2), xhat = {-s, 0, s}. gamma 1, dy = {1,0,0}:
       g = dy, mean(g) = 1/3, mean(g*xhat) = -s/3, dx_i = s (g_i - 1/3 + xhat_i s/3)
       = s {1/6, -1/3, 1/6}; dgamma = sum dy*xhat = -s; dbeta = sum dy = 1. Second sample: dy = 0
       contributes nothing to dgamma/dbeta, and its dx stays at the pre-filled 0.5. */
    const float x[6] = {0, 1, 2, 5, 7, 9}, dy[6] = {1, 0, 0, 0, 0, 0}, gamma[1] = {1},
                beta[1] = {0};
    float y[6], mean[2], rstd[2], dx[6], dgamma[1] = {10}, dbeta[1] = {20};
    gv_groupnorm_dims d = {.N = 2, .C = 1, .HW = 3, .G = 1, .eps = 0.0f};
    expect_ok(ops->groupnorm_forward(ctx, y, mean, rstd, x, gamma, beta, &d), "forward");
    fill(dx, 6, 0.5f);
    expect_ok(ops->groupnorm_backward(ctx, dx, dgamma, dbeta, dy, x, mean, rstd, gamma, &d),
              "backward");
    const double s = sqrt(1.5);
    const double want_dx[6] = {0.5 + s / 6, 0.5 - s / 3, 0.5 + s / 6, 0.5, 0.5, 0.5};
    const double want_dgamma[1] = {10 - s}, want_dbeta[1] = {21};
    expect_close("groupnorm dx", dx, want_dx, 6, 1e-5);
    expect_close("groupnorm dgamma", dgamma, want_dgamma, 1, 1e-5);
    expect_close("groupnorm dbeta", dbeta, want_dbeta, 1, 1e-5);
    /* NULL gradients are skipped; dbeta alone still accumulates. */
    expect_ok(ops->groupnorm_backward(ctx, NULL, NULL, dbeta, dy, x, mean, rstd, gamma, &d),
              "backward (dbeta only)");
    const double want_dbeta2[1] = {22};
    expect_close("groupnorm dbeta", dbeta, want_dbeta2, 1, 1e-5);
}

Test(kernels_ref, layernorm_rows_by_hand) {
    /* rows {1,3} (mean 2, var 1) and {-2,2} (mean 0, var 4); eps 0. */
    const float x[4] = {1, 3, -2, 2}, gamma[2] = {2, 3}, beta[2] = {10, 20};
    float y[4], mean[2], rstd[2];
    gv_layernorm_dims d = {.N = 2, .D = 2, .eps = 0.0f};
    expect_ok(ops->layernorm_forward(ctx, y, mean, rstd, x, gamma, beta, &d), "layernorm");
    const double want_y[4] = {10 - 2, 20 + 3, 10 - 2, 20 + 3};
    const double want_mean[2] = {2, 0}, want_rstd[2] = {1, 0.5};
    expect_close("layernorm y", y, want_y, 4, TOL);
    expect_close("layernorm mean", mean, want_mean, 2, TOL);
    expect_close("layernorm rstd", rstd, want_rstd, 2, TOL);
    /* dbeta = column sums of dy; dgamma = column sums of dy * xhat (xhat = {-1,1} in both rows). */
    const float dy[4] = {1, 2, 3, 4};
    float dgamma[2] = {0, 0}, dbeta[2] = {1, 1};
    expect_ok(ops->layernorm_backward(ctx, NULL, dgamma, dbeta, dy, x, mean, rstd, gamma, &d),
              "layernorm backward");
    const double want_dgamma[2] = {-1 - 3, 2 + 4}, want_dbeta[2] = {1 + 4, 1 + 6};
    expect_close("layernorm dgamma", dgamma, want_dgamma, 2, TOL);
    expect_close("layernorm dbeta", dbeta, want_dbeta, 2, TOL);
}

Test(kernels_ref, groupnorm_rejects_bad_dims) {
    float buf[4] = {0};
    gv_groupnorm_dims d = {.N = 0, .C = 2, .HW = 2, .G = 1, .eps = 1e-5f};
    cr_expect_eq(ops->groupnorm_forward(ctx, buf, buf, buf, buf, buf, buf, &d), GV_ERR_INVALID);
    cr_expect(strstr(gv_last_error(), "groupnorm_forward") && strstr(gv_last_error(), "N"),
              "message: %s", gv_last_error());
    d = (gv_groupnorm_dims){.N = 1, .C = 2, .HW = 2, .G = 3, .eps = 1e-5f};
    cr_expect_eq(ops->groupnorm_forward(ctx, buf, buf, buf, buf, buf, buf, &d), GV_ERR_INVALID);
}

/* ---- activations ----------------------------------------------------------------------------- */

static double silu_closed(double x) { return x / (1.0 + exp(-x)); }
static double silu_grad_closed(double x) {
    double s = 1.0 / (1.0 + exp(-x));
    return s + x * s * (1.0 - s);
}
static double gelu_closed(double x) {
    return 0.5 * x * (1.0 + tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
}
static double gelu_grad_closed(double x) {
    double u = sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x), t = tanh(u);
    return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * sqrt(2.0 / M_PI) * (1.0 + 0.134145 * x * x);
}

Test(kernels_ref, silu_and_gelu_closed_forms) {
    const float x[4] = {0.0f, 1.0f, -2.0f, 3.5f}, dy[4] = {1, 1, 2, -1};
    gv_ew_dims d = {.n = 4};
    float y[4], dx[4];
    double want[4], want_dx[4];
    /* silu(0) = 0, silu(1) = 1/(1+e^-1), silu'(0) = 1/2 */
    expect_ok(ops->silu_forward(ctx, y, x, &d), "silu");
    for (int i = 0; i < 4; ++i) want[i] = silu_closed(x[i]);
    want[0] = 0.0;
    want[1] = 1.0 / (1.0 + exp(-1.0));
    expect_close("silu", y, want, 4, TOL);
    fill(dx, 4, 1.0f);
    expect_ok(ops->silu_backward(ctx, dx, dy, x, &d), "silu backward");
    for (int i = 0; i < 4; ++i) want_dx[i] = 1.0 + dy[i] * silu_grad_closed(x[i]);
    want_dx[0] = 1.5;
    expect_close("silu dx", dx, want_dx, 4, TOL);
    /* gelu(0) = 0, gelu'(0) = 1/2 */
    expect_ok(ops->gelu_forward(ctx, y, x, &d), "gelu");
    for (int i = 0; i < 4; ++i) want[i] = gelu_closed(x[i]);
    want[0] = 0.0;
    expect_close("gelu", y, want, 4, TOL);
    fill(dx, 4, 1.0f);
    expect_ok(ops->gelu_backward(ctx, dx, dy, x, &d), "gelu backward");
    for (int i = 0; i < 4; ++i) want_dx[i] = 1.0 + dy[i] * gelu_grad_closed(x[i]);
    want_dx[0] = 1.5;
    expect_close("gelu dx", dx, want_dx, 4, TOL);
    /* Saturation: silu(-100) = 0 (not NaN), gelu(10) = 10. */
    const float big[2] = {-100.0f, 10.0f};
    gv_ew_dims d2 = {.n = 2};
    expect_ok(ops->silu_forward(ctx, y, big, &d2), "silu");
    expect_ok(ops->gelu_forward(ctx, y + 2, big, &d2), "gelu");
    const double want_sat[4] = {0.0, 10.0 / (1.0 + exp(-10.0)), 0.0, 10.0};
    expect_close("saturated activations", y, want_sat, 4, TOL);
}

/* ---- softmax --------------------------------------------------------------------------------- */

Test(kernels_ref, softmax_of_zero_and_ln2) {
    /* softmax([0, ln 2]) = [1/3, 2/3]; a second row shifted by 1000 must give the same. */
    const float x[4] = {0.0f, (float)log(2.0), 1000.0f, 1000.0f + (float)log(2.0)};
    float y[4], ly[4];
    gv_rows_dims d = {.R = 2, .D = 2};
    expect_ok(ops->softmax_forward(ctx, y, x, &d), "softmax");
    const double want[4] = {1.0 / 3, 2.0 / 3, 1.0 / 3, 2.0 / 3};
    expect_close("softmax", y, want, 2, TOL);
    expect_close("softmax (shifted row)", y + 2, want + 2, 2, 1e-4); /* ln 2 rounded at 1000 */
    expect_ok(ops->log_softmax_forward(ctx, ly, x, &d), "log_softmax");
    const double want_log[2] = {log(1.0 / 3), log(2.0 / 3)};
    expect_close("log_softmax", ly, want_log, 2, TOL);
    /* backward with dy = [1, 0] on row 0:
       softmax:     dx = y (dy - y.dy) = [1/3 * 2/3, 2/3 * (-1/3)] = [2/9, -2/9]
       log_softmax: dx = dy - softmax * sum(dy) = [1 - 1/3, -2/3] */
    const float dy[2] = {1, 0};
    gv_rows_dims d1 = {.R = 1, .D = 2};
    float dx[2] = {1, 1};
    expect_ok(ops->softmax_backward(ctx, dx, dy, y, &d1), "softmax backward");
    const double want_dx[2] = {1 + 2.0 / 9, 1 - 2.0 / 9};
    expect_close("softmax dx", dx, want_dx, 2, TOL);
    fill(dx, 2, 1.0f);
    expect_ok(ops->log_softmax_backward(ctx, dx, dy, ly, &d1), "log_softmax backward");
    const double want_ldx[2] = {1 + 2.0 / 3, 1 - 2.0 / 3};
    expect_close("log_softmax dx", dx, want_ldx, 2, TOL);
}

/* ---- attention ------------------------------------------------------------------------------- */

Test(kernels_ref, attention_single_token_returns_v) {
    /* T = 1: the only key has probability 1 in every head, so y = v; backward: dv = dy and,
       since the softmax of one element is constant, dq = dk = 0. */
    const float q[4] = {1, 2, 3, 4}, k[4] = {-1, 0.5f, 2, 7}, v[4] = {9, 8, 7, 6};
    const float dy[4] = {1, 2, 3, 4};
    float y[4], probs[2], dq[4] = {0}, dk[4] = {0}, dv[4] = {1, 1, 1, 1};
    gv_attention_dims d = {.N = 1, .T = 1, .D = 4, .H = 2};
    expect_ok(ops->attention_forward(ctx, y, probs, q, k, v, NULL, &d), "attention");
    const double want_y[4] = {9, 8, 7, 6}, want_p[2] = {1, 1};
    expect_close("attention y", y, want_y, 4, TOL);
    expect_close("attention probs", probs, want_p, 2, TOL);
    expect_ok(ops->attention_backward(ctx, dq, dk, dv, dy, q, k, v, probs, NULL, &d), "backward");
    const double zero[4] = {0, 0, 0, 0}, want_dv[4] = {2, 3, 4, 5};
    expect_close("attention dq", dq, zero, 4, TOL);
    expect_close("attention dk", dk, zero, 4, TOL);
    expect_close("attention dv", dv, want_dv, 4, TOL);
}

Test(kernels_ref, attention_two_keys_and_masks) {
    /* D = 2, H = 1, scale 1/sqrt(2). q0 = [1,0], k0 = [1,0], k1 = [0,1]: scores [1/sqrt2, 0].
       Sample 0: no masked key in mask row [1,1]; sample 1: key 1 masked -> probs [1,0], y = v0;
       sample 2: all keys masked -> probs 0 and y 0. */
    float q[12], k[12], v[12], y[12], probs[12];
    const float qs[4] = {1, 0, 0, 1}, ks[4] = {1, 0, 0, 1}, vs[4] = {2, 4, 6, 8};
    for (int n = 0; n < 3; ++n) {
        memcpy(q + 4 * n, qs, sizeof qs);
        memcpy(k + 4 * n, ks, sizeof ks);
        memcpy(v + 4 * n, vs, sizeof vs);
    }
    const uint8_t mask[6] = {1, 1, 1, 0, 0, 0};
    gv_attention_dims d = {.N = 3, .T = 2, .D = 2, .H = 1};
    fill(y, 12, 99.0f);
    expect_ok(ops->attention_forward(ctx, y, probs, q, k, v, mask, &d), "attention");
    const double a = 1.0 / sqrt(2.0), p0 = exp(a) / (exp(a) + 1.0);
    /* query 0 favours key 0 (p0), query 1 = [0,1] favours key 1 by the same margin. */
    const double want_p[12] = {p0, 1 - p0, 1 - p0, p0, 1, 0, 1, 0, 0, 0, 0, 0};
    const double want_y[12] = {p0 * 2 + (1 - p0) * 6, p0 * 4 + (1 - p0) * 8,
                               (1 - p0) * 2 + p0 * 6, (1 - p0) * 4 + p0 * 8,
                               2, 4, 2, 4,
                               0, 0, 0, 0};
    expect_close("attention probs", probs, want_p, 12, TOL);
    expect_close("attention y", y, want_y, 12, TOL);
    /* Masked keys get no gradient: dk, dv of key 1 in sample 1, and everything in sample 2. */
    float dy[12], dq[12] = {0}, dk[12] = {0}, dv[12] = {0};
    fill(dy, 12, 1.0f);
    expect_ok(ops->attention_backward(ctx, dq, dk, dv, dy, q, k, v, probs, mask, &d), "backward");
    for (int i = 6; i < 12; ++i) {
        cr_expect_eq(dk[i], 0.0f, "dk[%d] = %g for a masked key", i, (double)dk[i]);
        cr_expect_eq(dv[i], 0.0f, "dv[%d] = %g for a masked key", i, (double)dv[i]);
    }
    for (int i = 8; i < 12; ++i) cr_expect_eq(dq[i], 0.0f, "dq[%d] of an all-masked sample", i);
}

Test(kernels_ref, attention_backward_by_hand) {
    /* D = 1, H = 1 (scale 1), T = 2, q = 0 so P = 1/2 everywhere. v = [1,3], k = [2,5], dy = [1,0].
       dP_0j = dy_0 v_j = [1,3], dS_0 = P (dP - P.dP) = 0.5 [-1, 1]; row 1: dy = 0, dS = 0.
       dq_0 = dS_0 . k = 1.5 (= Cov_P(k, v)); dq_1 = 0; dk = dS^T q = 0; dv_j = sum_i P_ij dy_i
       = [0.5, 0.5]. */
    const float q[2] = {0, 0}, k[2] = {2, 5}, v[2] = {1, 3}, dy[2] = {1, 0};
    float y[2], probs[4], dq[2] = {0}, dk[2] = {0}, dv[2] = {0};
    gv_attention_dims d = {.N = 1, .T = 2, .D = 1, .H = 1};
    expect_ok(ops->attention_forward(ctx, y, probs, q, k, v, NULL, &d), "attention");
    const double want_y[2] = {2, 2};
    expect_close("attention y", y, want_y, 2, TOL);
    expect_ok(ops->attention_backward(ctx, dq, dk, dv, dy, q, k, v, probs, NULL, &d), "backward");
    const double want_dq[2] = {1.5, 0}, want_dk[2] = {0, 0}, want_dv[2] = {0.5, 0.5};
    expect_close("attention dq", dq, want_dq, 2, TOL);
    expect_close("attention dk", dk, want_dk, 2, TOL);
    expect_close("attention dv", dv, want_dv, 2, TOL);
}

/* ---- embeddings ------------------------------------------------------------------------------ */

Test(kernels_ref, embedding_bag_mean_and_padding) {
    const float table[6] = {1, 2, 3, 4, 5, 6}; /* (V=3, D=2) */
    const int32_t ids[6] = {0, 2, 1, -1, -1, -1};
    gv_embedding_dims d = {.N = 3, .L = 2, .V = 3, .D = 2};
    float y[6];
    expect_ok(ops->embedding_bag_forward(ctx, y, ids, table, &d), "embedding_bag");
    const double want_y[6] = {3, 4, 3, 4, 0, 0}; /* mean(rows 0,2); row 1; nothing valid */
    expect_close("embedding_bag y", y, want_y, 6, TOL);
    const float dy[6] = {1, 1, 2, 2, 7, 7};
    float dtable[6];
    fill(dtable, 6, 1.0f);
    expect_ok(ops->embedding_bag_backward(ctx, dtable, dy, ids, &d), "embedding_bag backward");
    const double want_dt[6] = {1.5, 1.5, 3, 3, 1.5, 1.5};
    expect_close("embedding_bag dtable", dtable, want_dt, 6, TOL);
}

Test(kernels_ref, embedding_lookup_and_bad_ids) {
    const float table[6] = {1, 2, 3, 4, 5, 6};
    const int32_t ids[3] = {2, 0, 2};
    gv_embedding_dims d = {.N = 3, .L = 1, .V = 3, .D = 2};
    float y[6];
    expect_ok(ops->embedding_forward(ctx, y, ids, table, &d), "embedding");
    const double want_y[6] = {5, 6, 1, 2, 5, 6};
    expect_close("embedding y", y, want_y, 6, TOL);
    /* a repeated id accumulates both rows' gradients */
    const float dy[6] = {1, 2, 3, 4, 5, 6};
    float dtable[6] = {0};
    expect_ok(ops->embedding_backward(ctx, dtable, dy, ids, &d), "embedding backward");
    const double want_dt[6] = {3, 4, 0, 0, 6, 8};
    expect_close("embedding dtable", dtable, want_dt, 6, TOL);
    /* out of range: an error naming the row and the id, and nothing written */
    const int32_t bad[3] = {0, 3, 1};
    fill(y, 6, -7.0f);
    cr_expect_eq(ops->embedding_forward(ctx, y, bad, table, &d), GV_ERR_INVALID);
    cr_expect(strstr(gv_last_error(), "row 1") && strstr(gv_last_error(), "id 3"), "message: %s",
              gv_last_error());
    const double untouched[6] = {-7, -7, -7, -7, -7, -7};
    expect_close("embedding y after a bad id", y, untouched, 6, 0);
    const int32_t bad_bag[4] = {0, -1, 1, -2};
    gv_embedding_dims db = {.N = 2, .L = 2, .V = 3, .D = 2};
    cr_expect_eq(ops->embedding_bag_forward(ctx, y, bad_bag, table, &db), GV_ERR_INVALID);
    cr_expect_eq(ops->embedding_bag_backward(ctx, dtable, dy, bad_bag, &db), GV_ERR_INVALID);
    expect_close("embedding dtable after a bad id", dtable, want_dt, 6, 0);
    gv_embedding_dims two = {.N = 3, .L = 2, .V = 3, .D = 2};
    cr_expect_eq(ops->embedding_forward(ctx, y, ids, table, &two), GV_ERR_INVALID, "L must be 1");
}

Test(kernels_ref, time_embedding_values) {
    /* t = 0: sin 0 = 0 in the first half, cos 0 = 1 in the second. t = 1, scale 1, D = 4:
       frequencies exp(-ln(1e4) * j / 2) = {1, 0.01}. */
    const float t[2] = {0.0f, 1.0f};
    float y[8];
    gv_time_embedding_dims d = {.N = 2, .D = 4, .scale = 1.0f};
    expect_ok(ops->time_embedding_forward(ctx, y, t, &d), "time_embedding");
    const double want[8] = {0, 0, 1, 1, sin(1.0), sin(0.01), cos(1.0), cos(0.01)};
    expect_close("time_embedding", y, want, 8, TOL);
    gv_time_embedding_dims odd = {.N = 2, .D = 5, .scale = 1.0f};
    cr_expect_eq(ops->time_embedding_forward(ctx, y, t, &odd), GV_ERR_INVALID);
}

/* ---- layout ops ------------------------------------------------------------------------------ */

Test(kernels_ref, upsample_nearest_layout) {
    const float x[4] = {1, 2, 3, 4}; /* (1,1,2,2) */
    float y[16];
    gv_upsample_dims d = {.N = 1, .C = 1, .H = 2, .W = 2, .f = 2};
    expect_ok(ops->upsample_nearest_forward(ctx, y, x, &d), "upsample");
    const double want[16] = {1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4};
    expect_close("upsample y", y, want, 16, 0);
    float dy[16], dx[4] = {1, 1, 1, 1};
    for (int i = 0; i < 16; ++i) dy[i] = (float)i;
    expect_ok(ops->upsample_nearest_backward(ctx, dx, dy, &d), "upsample backward");
    /* each input sums its 2x2 block: {0,1,4,5}, {2,3,6,7}, {8,9,12,13}, {10,11,14,15} */
    const double want_dx[4] = {1 + 10, 1 + 18, 1 + 42, 1 + 50};
    expect_close("upsample dx", dx, want_dx, 4, 0);
}

Test(kernels_ref, concat_layout_and_split) {
    /* N = 2, Ca = 1, Cb = 2, HW = 2: y[n] = [a[n] (2 values), b[n] (4 values)]. */
    const float a[4] = {1, 2, 3, 4}, b[8] = {10, 11, 12, 13, 20, 21, 22, 23};
    float y[12];
    gv_concat_dims d = {.N = 2, .Ca = 1, .Cb = 2, .HW = 2};
    expect_ok(ops->concat_forward(ctx, y, a, b, &d), "concat");
    const double want[12] = {1, 2, 10, 11, 12, 13, 3, 4, 20, 21, 22, 23};
    expect_close("concat y", y, want, 12, 0);
    float dy[12], da[4] = {0}, db[8];
    for (int i = 0; i < 12; ++i) dy[i] = (float)i;
    fill(db, 8, 100.0f);
    expect_ok(ops->concat_backward(ctx, da, db, dy, &d), "concat backward");
    const double want_da[4] = {0, 1, 6, 7}, want_db[8] = {102, 103, 104, 105, 108, 109, 110, 111};
    expect_close("concat da", da, want_da, 4, 0);
    expect_close("concat db", db, want_db, 8, 0);
    expect_ok(ops->concat_backward(ctx, NULL, db, dy, &d), "concat backward (db only)");
}

Test(kernels_ref, add_channel_broadcast) {
    /* N = 1, C = 2, HW = 3, in place (y aliases x). */
    float x[6] = {1, 2, 3, 4, 5, 6};
    const float e[2] = {10, 20};
    gv_channel_dims d = {.N = 1, .C = 2, .HW = 3};
    expect_ok(ops->add_channel_forward(ctx, x, x, e, &d), "add_channel");
    const double want[6] = {11, 12, 13, 24, 25, 26};
    expect_close("add_channel y", x, want, 6, 0);
    const float dy[6] = {1, 2, 3, 4, 5, 6};
    float dx[6] = {0}, de[2] = {1, 1};
    expect_ok(ops->add_channel_backward(ctx, dx, de, dy, &d), "add_channel backward");
    const double want_dx[6] = {1, 2, 3, 4, 5, 6}, want_de[2] = {7, 16};
    expect_close("add_channel dx", dx, want_dx, 6, 0);
    expect_close("add_channel de", de, want_de, 2, 0);
}

/* ---- elementwise ----------------------------------------------------------------------------- */

Test(kernels_ref, elementwise_with_aliasing) {
    float y[3] = {1, 2, 3};
    const float b[3] = {10, 20, 30};
    gv_ew_dims d = {.n = 3};
    expect_ok(ops->add(ctx, y, y, b, &d), "add"); /* y = y + b */
    const double want_add[3] = {11, 22, 33};
    expect_close("add", y, want_add, 3, 0);
    expect_ok(ops->scale(ctx, y, y, 0.5f, &d), "scale");
    const double want_scale[3] = {5.5, 11, 16.5};
    expect_close("scale", y, want_scale, 3, 0);
    expect_ok(ops->axpby(ctx, y, b, 2.0f, -1.0f, &d), "axpby"); /* y = 2b - y */
    const double want_axpby[3] = {14.5, 29, 43.5};
    expect_close("axpby", y, want_axpby, 3, 0);
    gv_ew_dims bad = {.n = 0};
    cr_expect_eq(ops->add(ctx, y, y, b, &bad), GV_ERR_INVALID);
}

/* ---- losses ---------------------------------------------------------------------------------- */

Test(kernels_ref, mse_by_hand) {
    const float a[2] = {1, 2}, b[2] = {0, 0};
    float loss[1];
    gv_ew_dims d = {.n = 2};
    expect_ok(ops->mse_forward(ctx, loss, a, b, &d), "mse");
    const double want[1] = {2.5}; /* (1 + 4) / 2 */
    expect_close("mse", loss, want, 1, TOL);
    /* dloss = 3: da += 3 * 2 (a - b) / 2 = {3, 6}; db -= the same. */
    const float dloss[1] = {3};
    float da[2] = {1, 1}, db[2] = {0, 0};
    expect_ok(ops->mse_backward(ctx, da, db, dloss, a, b, &d), "mse backward");
    const double want_da[2] = {4, 7}, want_db[2] = {-3, -6};
    expect_close("mse da", da, want_da, 2, TOL);
    expect_close("mse db", db, want_db, 2, TOL);
    expect_ok(ops->mse_backward(ctx, NULL, db, dloss, a, b, &d), "mse backward (db only)");
    const double want_db2[2] = {-6, -12};
    expect_close("mse db", db, want_db2, 2, TOL);
}

Test(kernels_ref, cross_entropy_two_classes) {
    /* Row 0: logits [0, ln 2], target 1, weight 2: CE = -ln(2/3), lse = ln 3.
       Row 1: weight 0 and target -1: contributes nothing and is not an error. norm = 2. */
    const float logits[4] = {0.0f, (float)log(2.0), 5.0f, -5.0f};
    const int32_t targets[2] = {1, -1};
    const float w[2] = {2.0f, 0.0f};
    gv_xent_dims d = {.R = 2, .V = 2, .norm = 2.0f};
    float loss[1], lse[2];
    expect_ok(ops->cross_entropy_forward(ctx, loss, lse, logits, targets, w, &d), "xent");
    const double want_loss[1] = {-log(2.0 / 3)};
    const double want_lse[2] = {log(3.0), 5.0 + log(1.0 + exp(-10.0))};
    expect_close("xent loss", loss, want_loss, 1, TOL);
    expect_close("xent lse", lse, want_lse, 2, TOL);
    /* dloss = 1: dlogits row 0 += w/norm (softmax - onehot) = [1/3, 2/3 - 1]; row 1 untouched. */
    const float dloss[1] = {1};
    float dlogits[4] = {1, 1, 1, 1};
    expect_ok(ops->cross_entropy_backward(ctx, dlogits, dloss, logits, lse, targets, w, &d),
              "xent backward");
    const double want_dl[4] = {1 + 1.0 / 3, 1 - 1.0 / 3, 1, 1};
    expect_close("xent dlogits", dlogits, want_dl, 4, TOL);
    /* A weighted row with an out-of-range target is an error naming the row. */
    const int32_t bad[2] = {2, -1};
    cr_expect_eq(ops->cross_entropy_forward(ctx, loss, lse, logits, bad, w, &d), GV_ERR_INVALID);
    cr_expect(strstr(gv_last_error(), "row 0") != NULL, "message: %s", gv_last_error());
}

/* ---- thread-count independence of the reductions --------------------------------------------- */

Test(kernels_ref, reductions_do_not_depend_on_threads) {
    gv_ctx *one = NULL;
    const gv_ctx_options single = {.threads = 1, .use_fast = 0};
    expect_ok(grove_backend_cpu()->ctx_create(&single, &one), "ctx_create");
    enum { N = 3, C = 16, HW = 37, R = 301, V = 7 };
    static float x[N * C * HW], dy[N * C * HW], y[N * C * HW], gamma[C], beta[C], mean[N * 4],
        rstd[N * 4], logits[R * V], w[R], lse[R];
    static int32_t targets[R];
    for (int i = 0; i < N * C * HW; ++i) {
        x[i] = (float)sin(0.37 * i);
        dy[i] = (float)cos(0.11 * i);
    }
    for (int i = 0; i < C; ++i) {
        gamma[i] = 1.0f + 0.1f * (float)i;
        beta[i] = 0.0f;
    }
    for (int i = 0; i < R * V; ++i) logits[i] = (float)sin(1.3 * i);
    for (int r = 0; r < R; ++r) {
        targets[r] = r % V;
        w[r] = (float)(r % 3);
    }
    gv_groupnorm_dims d = {.N = N, .C = C, .HW = HW, .G = 4, .eps = 1e-5f};
    gv_xent_dims xd = {.R = R, .V = V, .norm = 100.0f};
    gv_ew_dims ed = {.n = N * C * HW};
    float dg[2][C], db[2][C], loss[2][2];
    gv_ctx *ctxs[2] = {ctx, one};
    for (int t = 0; t < 2; ++t) {
        memset(dg[t], 0, sizeof dg[t]);
        memset(db[t], 0, sizeof db[t]);
        expect_ok(ops->groupnorm_forward(ctxs[t], y, mean, rstd, x, gamma, beta, &d), "gn");
        expect_ok(ops->groupnorm_backward(ctxs[t], NULL, dg[t], db[t], dy, x, mean, rstd, gamma,
                                          &d),
                  "gn backward");
        expect_ok(ops->cross_entropy_forward(ctxs[t], &loss[t][0], lse, logits, targets, w, &xd),
                  "xent");
        expect_ok(ops->mse_forward(ctxs[t], &loss[t][1], x, dy, &ed), "mse");
    }
    cr_expect(memcmp(dg[0], dg[1], sizeof dg[0]) == 0, "dgamma differs between 2 and 1 threads");
    cr_expect(memcmp(db[0], db[1], sizeof db[0]) == 0, "dbeta differs between 2 and 1 threads");
    cr_expect(memcmp(loss[0], loss[1], sizeof loss[0]) == 0, "losses differ between thread counts");
    grove_backend_cpu()->ctx_destroy(one);
}
