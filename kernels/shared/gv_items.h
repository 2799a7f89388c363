/* Per-item arithmetic of every own kernel of the CUDA backend, shared by host and device (GV_HD).
 *
 * An "item" is the unit one CUDA thread computes: one element, one row (a sample's group of a
 * norm, a softmax row, an attention query), one column of a batch reduction (dgamma, dtable), or
 * one chunk partial of a loss. Each function here computes item `i` of an op, reading and writing
 * through the op's own pointers, and mirrors the CPU reference kernel (kernels/cpu/, the
 * specification) loop for loop: the same fp64 accumulators, the same summation order, the same
 * float roundings. The CUDA module launches them (kernels/cuda/own_ops.cu through gv_own_ops.h);
 * tests/ops/test_hd_backend.c runs the same functions on the host as a backend of their own and
 * puts it through the op harness (finite differences, += sentinel, batch independence, parity
 * with the CPU reference on every harness shape), so the arithmetic is tested on every machine.
 *
 * Rules for an item: it writes only its own outputs (no two items write one address), so it needs
 * no atomics and its result never depends on the launch geometry; per-sample items read only their
 * own sample (DESIGN.md §3). Reductions over the batch (dgamma, dbias, dtable, losses) are items
 * that walk the samples in order.
 * Deliberately not here: launches, validation, memory (gv_own_ops.h); convolution and GEMM
 * (cuDNN / cuBLAS in kernels/cuda, the CPU reference elsewhere). */
#ifndef GROVE_GV_ITEMS_H
#define GROVE_GV_ITEMS_H

#include <math.h>
#include <stdint.h>

#include "grove/ops.h"
#include "gv_elementwise.h"
#include "gv_math.h"

#define GV_HD_GELU_K 0.7978845608028654f /* sqrt(2/pi) */
#define GV_HD_GELU_C 0.044715f
#define GV_HD_HALF_LOG_2PI 0.91893853320467274178 /* log(2 pi) / 2 */
#define GV_HD_LOSS_CHUNKS 64    /* kernels/cpu/loss.c GV_LOSS_CHUNKS: defines the sum order   */
#define GV_HD_SUMSQ_BLOCK 4096  /* kernels/cpu/optim_kernels.c GV_SUMSQ_BLOCK                 */

/* ---- activations (kernels/cpu/activation.c) -------------------------------------------------- */

/* tanh through fp64 rounded once: within an ulp of libm's tanhf, the same bits on both sides. */
GV_HD float gv_hd_tanhf(float u) { return (float)tanh((double)u); }

GV_HD float gv_hd_gelu(float x) {
    const float u = GV_HD_GELU_K * (x + GV_HD_GELU_C * x * x * x);
    return 0.5f * x * (1.0f + gv_hd_tanhf(u));
}

GV_HD float gv_hd_gelu_grad(float x) {
    const float u = GV_HD_GELU_K * (x + GV_HD_GELU_C * x * x * x);
    const float t = gv_hd_tanhf(u);
    const float du = GV_HD_GELU_K * (1.0f + 3.0f * GV_HD_GELU_C * x * x);
    return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * du;
}

GV_HD void gv_item_silu_forward(int64_t i, float *y, const float *x) { y[i] = gv_hd_silu(x[i]); }
GV_HD void gv_item_silu_backward(int64_t i, float *dx, const float *dy, const float *x) {
    dx[i] = gv_hd_silu_backward(dx[i], dy[i], x[i]);
}
GV_HD void gv_item_gelu_forward(int64_t i, float *y, const float *x) { y[i] = gv_hd_gelu(x[i]); }
GV_HD void gv_item_gelu_backward(int64_t i, float *dx, const float *dy, const float *x) {
    dx[i] += dy[i] * gv_hd_gelu_grad(x[i]);
}

/* ---- elementwise (kernels/cpu/elementwise.c) ------------------------------------------------- */

GV_HD void gv_item_add(int64_t i, float *y, const float *a, const float *b) {
    y[i] = gv_hd_add(a[i], b[i]);
}
GV_HD void gv_item_scale(int64_t i, float *y, const float *x, float alpha) {
    y[i] = gv_hd_scale(alpha, x[i]);
}
GV_HD void gv_item_axpby(int64_t i, float *y, const float *x, float alpha, float beta) {
    y[i] = gv_hd_axpby(alpha, x[i], beta, y[i]);
}

/* ---- softmax rows (kernels/cpu/softmax.c), item = row r ------------------------------------- */

GV_HD void gv_hd_row_max_sumexp(const float *x, int D, float *max_out, double *sum_out) {
    float m = x[0];
    for (int j = 1; j < D; ++j)
        if (x[j] > m) m = x[j];
    double sum = 0.0;
    for (int j = 0; j < D; ++j) sum += exp((double)x[j] - (double)m);
    *max_out = m;
    *sum_out = sum;
}

GV_HD void gv_item_softmax_forward(int64_t r, float *y, const float *x, gv_rows_dims d) {
    const float *xr = x + r * d.D;
    float *yr = y + r * d.D;
    float m;
    double sum;
    gv_hd_row_max_sumexp(xr, d.D, &m, &sum);
    for (int j = 0; j < d.D; ++j) yr[j] = (float)(exp((double)xr[j] - (double)m) / sum);
}

GV_HD void gv_item_softmax_backward(int64_t r, float *dx, const float *dy, const float *y,
                                    gv_rows_dims d) {
    const float *dyr = dy + r * d.D, *yr = y + r * d.D;
    float *dxr = dx + r * d.D;
    double dot = 0.0;
    for (int j = 0; j < d.D; ++j) dot += (double)dyr[j] * yr[j];
    for (int j = 0; j < d.D; ++j) dxr[j] += (float)(yr[j] * ((double)dyr[j] - dot));
}

GV_HD void gv_item_log_softmax_forward(int64_t r, float *y, const float *x, gv_rows_dims d) {
    const float *xr = x + r * d.D;
    float *yr = y + r * d.D;
    float m;
    double sum;
    gv_hd_row_max_sumexp(xr, d.D, &m, &sum);
    const double shift = (double)m + log(sum);
    for (int j = 0; j < d.D; ++j) yr[j] = (float)((double)xr[j] - shift);
}

GV_HD void gv_item_log_softmax_backward(int64_t r, float *dx, const float *dy, const float *y,
                                        gv_rows_dims d) {
    const float *dyr = dy + r * d.D, *yr = y + r * d.D;
    float *dxr = dx + r * d.D;
    double sum_dy = 0.0;
    for (int j = 0; j < d.D; ++j) sum_dy += dyr[j];
    for (int j = 0; j < d.D; ++j) dxr[j] += (float)((double)dyr[j] - exp((double)yr[j]) * sum_dy);
}

/* ---- group / layer norm (kernels/cpu/norm.c) -------------------------------------------------- */

/* x (N, C, HW) in G groups; layernorm (N, D) is N = rows, C = D, HW = 1, G = 1. */
typedef struct gv_hd_norm_shape {
    int64_t N;
    int C;
    int64_t HW;
    int G;
    float eps;
} gv_hd_norm_shape;

GV_HD int gv_hd_group_begin(int g, int C, int G) { return (int)((int64_t)g * C / G); }

/* item = (n, g): mean, rstd and the normalised outputs of one group of one sample. */
GV_HD void gv_item_norm_forward(int64_t ng, float *y, float *mean, float *rstd, const float *x,
                                const float *gamma, const float *beta, gv_hd_norm_shape s) {
    const int64_t n = ng / s.G;
    const int g = (int)(ng % s.G);
    const int c0 = gv_hd_group_begin(g, s.C, s.G), c1 = gv_hd_group_begin(g + 1, s.C, s.G);
    const int64_t base = (n * s.C + c0) * s.HW, M = (int64_t)(c1 - c0) * s.HW;
    const float *xg = x + base;
    double sum = 0.0;
    for (int64_t i = 0; i < M; ++i) sum += xg[i];
    const double mu = sum / (double)M;
    double ss = 0.0;
    for (int64_t i = 0; i < M; ++i) ss += ((double)xg[i] - mu) * ((double)xg[i] - mu);
    const float mu_f = (float)mu, rstd_f = (float)(1.0 / sqrt(ss / (double)M + s.eps));
    mean[ng] = mu_f;
    rstd[ng] = rstd_f;
    for (int ch = c0; ch < c1; ++ch) {
        const float *xc = x + (n * s.C + ch) * s.HW;
        float *yc = y + base + (int64_t)(ch - c0) * s.HW;
        for (int64_t i = 0; i < s.HW; ++i) {
            float xhat = (xc[i] - mu_f) * rstd_f;
            float scaled = xhat * gamma[ch];
            yc[i] = scaled + beta[ch];
        }
    }
}

/* item = (n, g): dx of one group. */
GV_HD void gv_item_norm_backward_dx(int64_t ng, float *dx, const float *dy, const float *x,
                                    const float *mean, const float *rstd, const float *gamma,
                                    gv_hd_norm_shape s) {
    const int64_t n = ng / s.G;
    const int g = (int)(ng % s.G);
    const int c0 = gv_hd_group_begin(g, s.C, s.G), c1 = gv_hd_group_begin(g + 1, s.C, s.G);
    const int64_t M = (int64_t)(c1 - c0) * s.HW;
    const float mu = mean[ng], r = rstd[ng];
    double sum_g = 0.0, sum_gx = 0.0;
    for (int ch = c0; ch < c1; ++ch) {
        const int64_t off = (n * s.C + ch) * s.HW;
        for (int64_t i = 0; i < s.HW; ++i) {
            const double gi = (double)dy[off + i] * gamma[ch];
            const double xhat = (double)((x[off + i] - mu) * r);
            sum_g += gi;
            sum_gx += gi * xhat;
        }
    }
    const double mean_g = sum_g / (double)M, mean_gx = sum_gx / (double)M;
    for (int ch = c0; ch < c1; ++ch) {
        const int64_t off = (n * s.C + ch) * s.HW;
        for (int64_t i = 0; i < s.HW; ++i) {
            const double gi = (double)dy[off + i] * gamma[ch];
            const double xhat = (double)((x[off + i] - mu) * r);
            dx[off + i] += (float)((double)r * (gi - mean_g - xhat * mean_gx));
        }
    }
}

/* item = channel ch: dgamma, dbeta summed over the samples in order. */
GV_HD void gv_item_norm_backward_affine(int64_t chl, float *dgamma, float *dbeta, const float *dy,
                                        const float *x, const float *mean, const float *rstd,
                                        gv_hd_norm_shape s) {
    const int ch = (int)chl;
    int g = (int)((int64_t)ch * s.G / s.C);
    while (g > 0 && gv_hd_group_begin(g, s.C, s.G) > ch) --g;
    while (gv_hd_group_begin(g + 1, s.C, s.G) <= ch) ++g;
    double sum_dyx = 0.0, sum_dy = 0.0;
    for (int64_t n = 0; n < s.N; ++n) {
        const int64_t off = (n * s.C + ch) * s.HW;
        const float mu = mean[n * s.G + g], r = rstd[n * s.G + g];
        for (int64_t i = 0; i < s.HW; ++i) {
            sum_dyx += (double)dy[off + i] * (double)((x[off + i] - mu) * r);
            sum_dy += dy[off + i];
        }
    }
    if (dgamma) dgamma[ch] += (float)sum_dyx;
    if (dbeta) dbeta[ch] += (float)sum_dy;
}

/* ---- attention (kernels/cpu/attention.c) ------------------------------------------------------ */

GV_HD double gv_hd_head_dot(const float *a, const float *b, int Dh) {
    double s = 0.0;
    for (int e = 0; e < Dh; ++e) s += (double)a[e] * b[e];
    return s;
}

/* item = (n, h, i): one query row of one head: probs row i and y_i. */
GV_HD void gv_item_attention_forward(int64_t nhi, float *y, float *probs, const float *q,
                                     const float *k, const float *v, const uint8_t *key_mask,
                                     gv_attention_dims d) {
    const int T = d.T, D = d.D, H = d.H, Dh = D / H;
    const double scale = 1.0 / sqrt((double)Dh);
    const int64_t nh = nhi / T, n = nh / H;
    const int i = (int)(nhi % T), h = (int)(nh % H);
    const uint8_t *mask = key_mask ? key_mask + n * T : 0;
    const float *qi = q + (n * T + i) * D + (int64_t)h * Dh;
    float *yi = y + (n * T + i) * D + (int64_t)h * Dh;
    float *p = probs + (nh * T + i) * T;
    float smax = 0.0f;
    int any = 0;
    for (int j = 0; j < T; ++j) {
        if (mask && !mask[j]) continue;
        p[j] = (float)(gv_hd_head_dot(qi, k + (n * T + j) * D + (int64_t)h * Dh, Dh) * scale);
        if (!any || p[j] > smax) smax = p[j];
        any = 1;
    }
    double sum = 0.0;
    for (int j = 0; j < T; ++j)
        if (!mask || mask[j]) sum += exp((double)p[j] - (double)smax);
    for (int j = 0; j < T; ++j)
        p[j] = (mask && !mask[j]) ? 0.0f : (float)(exp((double)p[j] - (double)smax) / sum);
    for (int e = 0; e < Dh; ++e) {
        double acc = 0.0;
        for (int j = 0; j < T; ++j)
            if (p[j] != 0.0f) acc += (double)p[j] * v[(n * T + j) * D + h * Dh + e];
        yi[e] = any ? (float)acc : 0.0f;
    }
}

/* dS_ij * scale of the backward, as the CPU computes it (row_dot = sum_k P_ik dP_ik). */
GV_HD float gv_hd_attention_dS(const float *p, const float *dyi, const float *vj, double row_dot,
                               int j, int Dh, double scale) {
    const double dP = gv_hd_head_dot(dyi, vj, Dh);
    return (float)((double)p[j] * (dP - row_dot) * scale);
}

/* item = (n, h, i): row_dot_i = sum_j P_ij (dy_i . v_j) into rowdot (N*H*T). */
GV_HD void gv_item_attention_rowdot(int64_t nhi, double *rowdot, const float *dy, const float *v,
                                    const float *probs, gv_attention_dims d) {
    const int T = d.T, D = d.D, H = d.H, Dh = D / H;
    const int64_t nh = nhi / T, n = nh / H, col = (int64_t)(nh % H) * Dh;
    const int i = (int)(nhi % T);
    const float *p = probs + (nh * T + i) * T;
    const float *dyi = dy + (n * T + i) * D + col;
    double row_dot = 0.0;
    for (int j = 0; j < T; ++j) {
        if (p[j] == 0.0f) continue;
        row_dot += (double)p[j] * gv_hd_head_dot(dyi, v + (n * T + j) * D + col, Dh);
    }
    rowdot[nhi] = row_dot;
}

/* item = (n, h, i): dq_i += sum_j dS_ij k_j / sqrt(Dh), j in order (the CPU's order). */
GV_HD void gv_item_attention_dq(int64_t nhi, float *dq, const double *rowdot, const float *dy,
                                const float *k, const float *v, const float *probs,
                                gv_attention_dims d) {
    const int T = d.T, D = d.D, H = d.H, Dh = D / H;
    const double scale = 1.0 / sqrt((double)Dh);
    const int64_t nh = nhi / T, n = nh / H, col = (int64_t)(nh % H) * Dh;
    const int i = (int)(nhi % T);
    const float *p = probs + (nh * T + i) * T;
    const float *dyi = dy + (n * T + i) * D + col;
    float *dqi = dq + (n * T + i) * D + col;
    for (int j = 0; j < T; ++j) {
        if (p[j] == 0.0f) continue;
        const float dS = gv_hd_attention_dS(p, dyi, v + (n * T + j) * D + col, rowdot[nhi], j,
                                            Dh, scale);
        const float *kj = k + (n * T + j) * D + col;
        for (int e = 0; e < Dh; ++e) dqi[e] += dS * kj[e];
    }
}

/* item = (n, h, j): dk_j += sum_i dS_ij q_i / sqrt(Dh) and dv_j += sum_i P_ij dy_i, i in order. */
GV_HD void gv_item_attention_dkdv(int64_t nhj, float *dk, float *dv, const double *rowdot,
                                  const float *dy, const float *q, const float *v,
                                  const float *probs, gv_attention_dims d) {
    const int T = d.T, D = d.D, H = d.H, Dh = D / H;
    const double scale = 1.0 / sqrt((double)Dh);
    const int64_t nh = nhj / T, n = nh / H, col = (int64_t)(nh % H) * Dh;
    const int j = (int)(nhj % T);
    float *dvj = dv ? dv + (n * T + j) * D + col : 0;
    float *dkj = dk ? dk + (n * T + j) * D + col : 0;
    const float *vj = v + (n * T + j) * D + col;
    for (int i = 0; i < T; ++i) {
        const float *p = probs + (nh * T + i) * T;
        if (p[j] == 0.0f) continue;
        const float *dyi = dy + (n * T + i) * D + col;
        if (dvj)
            for (int e = 0; e < Dh; ++e) dvj[e] += p[j] * dyi[e];
        if (dkj) {
            const float dS = gv_hd_attention_dS(p, dyi, vj, rowdot[nh * T + i], j, Dh, scale);
            const float *qi = q + (n * T + i) * D + col;
            for (int e = 0; e < Dh; ++e) dkj[e] += dS * qi[e];
        }
    }
}

/* ---- embeddings (kernels/cpu/embedding.c) ----------------------------------------------------- */

/* Ids outside [0, V) count as padding here: the CPU reference rejects them before computing, the
   device cannot read them without a host round trip, so an invalid id never reads out of bounds. */
GV_HD int gv_hd_id_ok(int32_t id, int V) { return id >= 0 && id < V; }

GV_HD int gv_hd_valid_count(const int32_t *row, int L, int V) {
    int count = 0;
    for (int l = 0; l < L; ++l) count += gv_hd_id_ok(row[l], V);
    return count;
}

/* item = (n, e): y[n, e] = mean of table[ids[n, l], e] over the valid ids. */
GV_HD void gv_item_bag_forward(int64_t ne, float *y, const int32_t *ids, const float *table,
                               gv_embedding_dims d) {
    const int64_t n = ne / d.D;
    const int e = (int)(ne % d.D);
    const int32_t *row = ids + n * d.L;
    const int count = gv_hd_valid_count(row, d.L, d.V);
    double sum = 0.0;
    for (int l = 0; l < d.L; ++l)
        if (gv_hd_id_ok(row[l], d.V)) sum += table[(int64_t)row[l] * d.D + e];
    y[ne] = count ? (float)(sum / count) : 0.0f;
}

/* item = column e: dtable[id, e] += dy[n, e] / count for every valid (n, l), rows in order. */
GV_HD void gv_item_bag_backward(int64_t e, float *dtable, const float *dy, const int32_t *ids,
                                gv_embedding_dims d) {
    for (int n = 0; n < d.N; ++n) {
        const int32_t *row = ids + (int64_t)n * d.L;
        const int count = gv_hd_valid_count(row, d.L, d.V);
        if (!count) continue;
        const float fcount = (float)count;
        const float g = dy[(int64_t)n * d.D + e] / fcount;
        for (int l = 0; l < d.L; ++l)
            if (gv_hd_id_ok(row[l], d.V)) dtable[(int64_t)row[l] * d.D + e] += g;
    }
}

/* item = (n, j), j < D/2: the sin and cos of one frequency. */
GV_HD void gv_item_time_embedding(int64_t nj, float *y, const float *t, gv_time_embedding_dims d) {
    const int half = d.D / 2;
    const int64_t n = nj / half;
    const int j = (int)(nj % half);
    const double a = (double)d.scale * t[n] * exp(-log(10000.0) * j / half);
    y[n * d.D + j] = (float)sin(a);
    y[n * d.D + half + j] = (float)cos(a);
}

/* ---- layout ops (kernels/cpu/resample.c) ------------------------------------------------------ */

/* item = output element of y (N, C, H*f, W*f). */
GV_HD void gv_item_upsample_forward(int64_t o, float *y, const float *x, gv_upsample_dims d) {
    const int Wo = d.W * d.f, Ho = d.H * d.f;
    const int64_t pl = o / ((int64_t)Ho * Wo), rem = o % ((int64_t)Ho * Wo);
    const int i = (int)(rem / Wo), j = (int)(rem % Wo);
    y[o] = x[pl * d.H * d.W + (int64_t)(i / d.f) * d.W + j / d.f];
}

/* item = input element of dx (N, C, H, W): the f x f block of dy, in the CPU's order. */
GV_HD void gv_item_upsample_backward(int64_t o, float *dx, const float *dy, gv_upsample_dims d) {
    const int f = d.f, Wo = d.W * f;
    const int64_t pl = o / ((int64_t)d.H * d.W), rem = o % ((int64_t)d.H * d.W);
    const int p = (int)(rem / d.W), q = (int)(rem % d.W);
    const float *dyp = dy + pl * d.H * f * Wo;
    float sum = 0.0f;
    for (int a = 0; a < f; ++a)
        for (int b = 0; b < f; ++b) sum += dyp[(int64_t)(p * f + a) * Wo + q * f + b];
    dx[o] += sum;
}

/* item = element of y (N, Ca+Cb, HW). */
GV_HD void gv_item_concat_forward(int64_t o, float *y, const float *a, const float *b,
                                  gv_concat_dims d) {
    const int64_t na = (int64_t)d.Ca * d.HW, nb = (int64_t)d.Cb * d.HW;
    const int64_t n = o / (na + nb), r = o % (na + nb);
    y[o] = r < na ? a[n * na + r] : b[n * nb + (r - na)];
}

GV_HD void gv_item_concat_backward(int64_t o, float *da, float *db, const float *dy,
                                   gv_concat_dims d) {
    const int64_t na = (int64_t)d.Ca * d.HW, nb = (int64_t)d.Cb * d.HW;
    const int64_t n = o / (na + nb), r = o % (na + nb);
    if (r < na) {
        if (da) da[n * na + r] += dy[o];
    } else if (db) {
        db[n * nb + (r - na)] += dy[o];
    }
}

GV_HD void gv_item_add_channel_forward(int64_t o, float *y, const float *x, const float *e,
                                       gv_channel_dims d) {
    y[o] = x[o] + e[o / d.HW];
}

/* item = element: dx += dy. */
GV_HD void gv_item_add_channel_dx(int64_t o, float *dx, const float *dy) { dx[o] += dy[o]; }

/* item = plane (n, c): de[n, c] += sum_s dy (fp64). */
GV_HD void gv_item_add_channel_de(int64_t pl, float *de, const float *dy, gv_channel_dims d) {
    double sum = 0.0;
    for (int64_t s = 0; s < d.HW; ++s) sum += dy[pl * d.HW + s];
    de[pl] += (float)sum;
}

/* ---- bias of linear / conv (the cuBLAS / cuDNN glue's own part) ------------------------------- */

/* item = element of y (rows, K, inner): y += b[k] (linear: inner = 1; conv: inner = P*Q). */
GV_HD void gv_item_bias_add(int64_t o, float *y, const float *b, int K, int64_t inner) {
    y[o] += b[(o / inner) % K];
}

/* item = k: db[k] += sum over rows and inner of dy (fp64, rows in order). */
GV_HD void gv_item_bias_grad(int64_t k, float *db, const float *dy, int64_t rows, int K,
                             int64_t inner) {
    double s = 0.0;
    for (int64_t r = 0; r < rows; ++r) {
        const float *p = dy + (r * K + k) * inner;
        for (int64_t i = 0; i < inner; ++i) s += p[i];
    }
    db[k] += (float)s;
}

/* ---- losses (kernels/cpu/loss.c) -------------------------------------------------------------- */

GV_HD int64_t gv_hd_chunk_begin(int64_t total, int k) {
    return total / GV_HD_LOSS_CHUNKS * k + total % GV_HD_LOSS_CHUNKS * k / GV_HD_LOSS_CHUNKS;
}

/* item = chunk k: partial[k] = sum over the chunk of (a - b)^2 in fp64. */
GV_HD void gv_item_mse_partial(int64_t k, double *partial, const float *a, const float *b,
                               int64_t n) {
    double s = 0.0;
    for (int64_t i = gv_hd_chunk_begin(n, (int)k); i < gv_hd_chunk_begin(n, (int)k + 1); ++i) {
        const double diff = (double)a[i] - (double)b[i];
        s += diff * diff;
    }
    partial[k] = s;
}

/* item 0: out[0] = (float)(sum of the partials in order / div). */
GV_HD void gv_item_sum_partials(int64_t item, float *out, const double *partial, int64_t count,
                                double div) {
    (void)item;
    double sum = 0.0;
    for (int64_t k = 0; k < count; ++k) sum = sum + partial[k];
    out[0] = (float)(sum / div);
}

GV_HD void gv_item_mse_backward(int64_t i, float *da, float *db, const float *dloss,
                                const float *a, const float *b, int64_t n) {
    const double coef = 2.0 * (double)dloss[0] / (double)n;
    const float g = (float)(coef * ((double)a[i] - (double)b[i]));
    if (da) da[i] += g;
    if (db) db[i] -= g;
}

/* item = row r: lse[r] and w_r (lse_r - logit of the target) into rowloss[r] (0 when w_r = 0 or
   the target is out of range; the CPU reference rejects such a target, see gv_hd_id_ok). */
GV_HD void gv_item_xent_row(int64_t r, double *rowloss, float *lse, const float *logits,
                            const int32_t *targets, const float *w, gv_xent_dims d) {
    const float *row = logits + r * d.V;
    float m = row[0];
    for (int v = 1; v < d.V; ++v)
        if (row[v] > m) m = row[v];
    double sum = 0.0;
    for (int v = 0; v < d.V; ++v) sum += exp((double)row[v] - (double)m);
    const double lse_r = (double)m + log(sum);
    lse[r] = (float)lse_r;
    rowloss[r] = (w[r] != 0.0f && gv_hd_id_ok(targets[r], d.V))
                     ? (double)w[r] * (lse_r - (double)row[targets[r]])
                     : 0.0;
}

/* item = chunk k: the rows' losses summed in the CPU's chunk order (rows with w = 0 add nothing:
   the CPU skips them, adding 0.0 to a finite sum is exact). */
GV_HD void gv_item_xent_partial(int64_t k, double *partial, const double *rowloss, int64_t R,
                                const float *w) {
    double s = 0.0;
    for (int64_t r = gv_hd_chunk_begin(R, (int)k); r < gv_hd_chunk_begin(R, (int)k + 1); ++r)
        if (w[r] != 0.0f) s += rowloss[r];
    partial[k] = s;
}

/* item = element (r, v). */
GV_HD void gv_item_xent_backward(int64_t o, float *dlogits, const float *dloss,
                                 const float *logits, const float *lse, const int32_t *targets,
                                 const float *w, gv_xent_dims d) {
    const int64_t r = o / d.V;
    const int v = (int)(o % d.V);
    if (w[r] == 0.0f || !gv_hd_id_ok(targets[r], d.V)) return;
    const double gr = (double)dloss[0] / (double)d.norm * (double)w[r];
    const double p = exp((double)logits[o] - (double)lse[r]);
    dlogits[o] += (float)(gr * (p - (v == targets[r] ? 1.0 : 0.0)));
}

/* ---- optimizer (kernels/cpu/optim_kernels.c) -------------------------------------------------- */

GV_HD void gv_item_adamw(int64_t i, float *p, float *m, float *v, const float *g,
                         gv_adamw_args a) {
    const float lr_wd = a.lr * a.weight_decay;
    const float one_minus_b1 = 1.0f - a.beta1, one_minus_b2 = 1.0f - a.beta2;
    float pi = p[i], gi = g[i];
    float decay = lr_wd * pi;
    pi = pi - decay;
    float m_old = a.beta1 * m[i], m_new = one_minus_b1 * gi;
    float mi = m_old + m_new;
    float g2 = gi * gi;
    float v_old = a.beta2 * v[i], v_new = one_minus_b2 * g2;
    float vi = v_old + v_new;
    float m_hat = mi / a.bias_corr1;
    float v_hat = vi / a.bias_corr2;
    float denom = (float)sqrt((double)v_hat); /* correctly rounded, as sqrtf */
    denom = denom + a.eps;
    float update = a.lr * m_hat;
    update = update / denom;
    p[i] = pi - update;
    m[i] = mi;
    v[i] = vi;
}

/* item = block b: partial[b] = sum of x^2 over elements [b*4096, (b+1)*4096) in fp64, in order. */
GV_HD void gv_item_sumsq_block(int64_t b, double *partial, const float *x, int64_t n) {
    const int64_t lo = b * GV_HD_SUMSQ_BLOCK;
    const int64_t hi = lo + GV_HD_SUMSQ_BLOCK < n ? lo + GV_HD_SUMSQ_BLOCK : n;
    double s = 0.0;
    for (int64_t i = lo; i < hi; ++i) {
        double xi = (double)x[i];
        double sq = xi * xi;
        s = s + sq;
    }
    partial[b] = s;
}

/* ---- sampler ops (kernels/cpu/sampler_kernels.c) ---------------------------------------------- */

GV_HD float gv_hd_step_mean(const gv_step_args *a, float x, float v) {
    float px = a->cx * x;
    float pv = a->cv * v;
    return px + pv;
}

GV_HD float gv_hd_logp_from_sumsq(const gv_step_args *a, double sumsq) {
    double mean_sq = sumsq / (double)a->D;
    if (a->logp_kind == GV_LOGP_CPS) return (float)(-mean_sq);
    double sd = (double)a->std;
    return (float)(-mean_sq / (2.0 * sd * sd) - log(sd) - GV_HD_HALF_LOG_2PI);
}

/* item = sample n: the step and its log-density, elements in order. */
GV_HD void gv_item_gaussian_step(int64_t n, float *x_next, float *logp, const float *x,
                                 const float *v, const float *eps, gv_step_args a) {
    double sumsq = 0.0;
    for (int64_t dd = 0; dd < a.D; ++dd) {
        int64_t i = n * a.D + dd;
        float mu = gv_hd_step_mean(&a, x[i], v[i]);
        if (eps) {
            float noise = a.std * eps[i];
            x_next[i] = mu + noise;
        }
        float r = x_next[i] - mu;
        sumsq += (double)r * (double)r;
    }
    if (logp) logp[n] = gv_hd_logp_from_sumsq(&a, sumsq);
}

/* item = element i. */
GV_HD void gv_item_gaussian_step_backward(int64_t i, float *dv, const float *dlogp, const float *x,
                                          const float *v, const float *x_next, gv_step_args a) {
    const double per_residual = a.logp_kind == GV_LOGP_CPS
                                    ? 2.0 / (double)a.D
                                    : 1.0 / ((double)a.D * (double)a.std * (double)a.std);
    const float g = (float)((double)dlogp[i / a.D] * per_residual * (double)a.cv);
    float r = x_next[i] - gv_hd_step_mean(&a, x[i], v[i]);
    float gr = g * r;
    dv[i] += gr;
}

GV_HD void gv_item_euler(int64_t i, float *x_next, const float *x, const float *v, float delta) {
    float step = delta * v[i];
    x_next[i] = x[i] + step;
}

GV_HD void gv_item_cfg(int64_t i, float *v, const float *v_cond, const float *v_null, float w) {
    float diff = v_cond[i] - v_null[i];
    float guided = w * diff;
    v[i] = v_null[i] + guided;
}

GV_HD void gv_item_cfg_backward(int64_t i, float *dv_cond, float *dv_null, const float *dv,
                                float w) {
    float w_null = 1.0f - w;
    if (dv_cond) dv_cond[i] += w * dv[i];
    if (dv_null) dv_null[i] += w_null * dv[i];
}

/* ---- GRPO objective and KL (kernels/cpu/grpo_kernels.c) --------------------------------------- */

GV_HD int gv_hd_clip_side(float rho, double eps) {
    if ((double)rho > 1.0 + eps) return 1;
    if ((double)rho < 1.0 - eps) return -1;
    return 0;
}

/* item 0: the whole objective, units in order (U is a minibatch: small). */
GV_HD void gv_item_grpo_forward(int64_t item, float *loss, float *stats, float *ratio,
                                const float *logp, const float *logp_old, const float *adv,
                                const float *weight, const float *kl, gv_grpo_args a) {
    (void)item;
    const double eps = (double)a.clip_eps;
    double policy = 0.0, kl_sum = 0.0, ratio_sum = 0.0, dlogp_sq = 0.0;
    double rmin = HUGE_VAL, rmax = -HUGE_VAL;
    int above = 0, below = 0;
    for (int u = 0; u < a.U; ++u) {
        double dl = (double)logp[u] - (double)logp_old[u];
        float rho = (float)exp(dl);
        ratio[u] = rho;
        double A = (double)adv[u], r = (double)rho;
        double clipped = r > 1.0 + eps ? 1.0 + eps : r < 1.0 - eps ? 1.0 - eps : r;
        double unclipped_term = -A * r, clipped_term = -A * clipped;
        double L = unclipped_term > clipped_term ? unclipped_term : clipped_term;
        policy += (double)weight[u] * L;
        if (kl) kl_sum += (double)kl[u];
        ratio_sum += r;
        dlogp_sq += dl * dl;
        if (r < rmin) rmin = r;
        if (r > rmax) rmax = r;
        int side = gv_hd_clip_side(rho, eps);
        above += side > 0;
        below += side < 0;
    }
    const double norm = (double)a.norm, U = (double)a.U;
    double total = policy / norm;
    if (kl) total += (double)a.beta * kl_sum / norm;
    loss[0] = (float)total;
    if (stats) {
        stats[GV_GRPO_STAT_RATIO_MEAN] = (float)(ratio_sum / U);
        stats[GV_GRPO_STAT_RATIO_MIN] = (float)rmin;
        stats[GV_GRPO_STAT_RATIO_MAX] = (float)rmax;
        stats[GV_GRPO_STAT_CLIP_ABOVE] = (float)((double)above / U);
        stats[GV_GRPO_STAT_CLIP_BELOW] = (float)((double)below / U);
        stats[GV_GRPO_STAT_APPROX_KL] = (float)(0.5 * dlogp_sq / U);
        stats[GV_GRPO_STAT_KL_MEAN] = (float)(kl_sum / U);
        stats[GV_GRPO_STAT_POLICY_LOSS] = (float)(policy / norm);
    }
}

/* item = unit u. */
GV_HD void gv_item_grpo_backward(int64_t u, float *dlogp, float *dkl, const float *dloss,
                                 const float *ratio, const float *adv, const float *weight,
                                 gv_grpo_args a) {
    const double eps = (double)a.clip_eps, g = (double)dloss[0] / (double)a.norm;
    const int side = gv_hd_clip_side(ratio[u], eps);
    const int active = (adv[u] > 0.0f && side > 0) || (adv[u] < 0.0f && side < 0);
    if (dlogp && !active) dlogp[u] += (float)(g * (double)weight[u] * (-(double)adv[u] *
                                                                      (double)ratio[u]));
    if (dkl) dkl[u] += (float)(g * (double)a.beta);
}

GV_HD double gv_hd_unit_var(const float *var, const gv_kl_args *a, int64_t u) {
    return var ? (double)var[u] : (double)a->var;
}

/* item = unit u. */
GV_HD void gv_item_kl_forward(int64_t u, float *kl, const float *mu_theta, const float *mu_ref,
                              const float *var, gv_kl_args a) {
    double sumsq = 0.0;
    for (int64_t dd = 0; dd < a.D; ++dd) {
        int64_t i = u * a.D + dd;
        double diff = (double)mu_theta[i] - (double)mu_ref[i];
        sumsq += diff * diff;
    }
    double mean_sq = sumsq / (double)a.D;
    kl[u] = (float)(a.kind == GV_KL_OP_VELOCITY ? mean_sq
                                                : mean_sq / (2.0 * gv_hd_unit_var(var, &a, u)));
}

/* item = element i of (U, D). */
GV_HD void gv_item_kl_backward(int64_t i, float *dmu_theta, const float *dkl,
                               const float *mu_theta, const float *mu_ref, const float *var,
                               gv_kl_args a) {
    const int64_t u = i / a.D;
    const double coeff = a.kind == GV_KL_OP_VELOCITY
                             ? 2.0 / (double)a.D
                             : 1.0 / ((double)a.D * gv_hd_unit_var(var, &a, u));
    double g = (double)dkl[u] * coeff;
    double diff = (double)mu_theta[i] - (double)mu_ref[i];
    dmu_theta[i] += (float)(g * diff);
}

#endif
