/* conv2d: the reference loop nests (the specification) and the dispatch to oneDNN.
 *
 *   y[n,k,p,q] = b[k] + sum_{c,r,s} w[k,c,r,s] * x[n,c, p*stride - pad + r, q*stride - pad + s]
 *
 * with taps outside the image reading zero. Forward and backward-data are parallel over (n, k) and
 * (n, c) planes, so no sample depends on another; backward-weights and the bias gradient are parallel
 * over output channels with the batch loop inside in order, so they do not depend on the thread
 * count. Backward ADDS into dx, dw, db (any may be NULL). Not here: groups, dilation, asymmetric
 * padding, and the oneDNN code itself (dnnl_glue.c). */
#include <stddef.h>

#include "cpu_backend.h"
#include "dnnl_glue.h"

static gv_status conv2d_check(const float *y_or_dy, const gv_conv2d_dims *d, const char *op) {
    gv_conv2d_dims want = *d;
    if (!y_or_dy || d->N <= 0 || d->C <= 0 || d->H <= 0 || d->W <= 0 || d->K <= 0 || d->R <= 0 ||
        d->S <= 0 || !gv_conv2d_dims_set(&want) || want.P != d->P || want.Q != d->Q)
        return GV_ERROR(GV_ERR_INVALID,
                        "%s: bad dims (N=%d C=%d H=%d W=%d K=%d R=%d S=%d stride=%d pad=%d P=%d "
                        "Q=%d) or NULL tensor",
                        op, d->N, d->C, d->H, d->W, d->K, d->R, d->S, d->stride, d->pad, d->P, d->Q);
    return GV_OK;
}

/* Output columns q in [*q0, *q1) whose input column q*stride - pad + s lies inside [0, W). */
static void valid_columns(const gv_conv2d_dims *d, int s, int *q0, int *q1) {
    int lo = d->pad - s; /* need q*stride >= lo */
    *q0 = lo > 0 ? (lo + d->stride - 1) / d->stride : 0;
    int hi = d->W - 1 + d->pad - s; /* need q*stride <= hi */
    *q1 = hi < 0 ? 0 : hi / d->stride + 1;
    if (*q1 > d->Q) *q1 = d->Q;
    if (*q0 > *q1) *q0 = *q1;
}

static void conv2d_forward_ref(gv_ctx *c, float *y, const float *x, const float *w, const float *b,
                               const gv_conv2d_dims *d) {
    const int C = d->C, H = d->H, W = d->W, K = d->K, R = d->R, S = d->S, P = d->P, Q = d->Q;
    const int st = d->stride, pad = d->pad;
#pragma omp parallel for collapse(2) num_threads(c->threads) schedule(static)
    for (int n = 0; n < d->N; n++) {
        for (int k = 0; k < K; k++) {
            float *yp = y + ((size_t)n * K + k) * P * Q; /* (P, Q) */
            for (int i = 0; i < P * Q; i++) yp[i] = b ? b[k] : 0.0f;
            for (int ch = 0; ch < C; ch++) {
                const float *xp = x + ((size_t)n * C + ch) * H * W; /* (H, W) */
                for (int r = 0; r < R; r++) {
                    for (int s = 0; s < S; s++) {
                        const float wv = w[(((size_t)k * C + ch) * R + r) * S + s];
                        int q0, q1;
                        valid_columns(d, s, &q0, &q1);
                        for (int p = 0; p < P; p++) {
                            int ih = p * st - pad + r;
                            if (ih < 0 || ih >= H) continue;
                            const ptrdiff_t row = (ptrdiff_t)ih * W - pad + s; /* + q*st */
                            float *yrow = yp + (size_t)p * Q;
#pragma omp simd /* independent elements: same result as the scalar loop */
                            for (int q = q0; q < q1; q++) yrow[q] += wv * xp[row + q * st];
                        }
                    }
                }
            }
        }
    }
}

/* dx[n,c,ih,iw] += sum_{k,r,s} w[k,c,r,s] * dy[n,k,p,q] over the (p,q) that read (ih,iw). */
static void conv2d_backward_data_ref(gv_ctx *c, float *dx, const float *dy, const float *w,
                                     const gv_conv2d_dims *d) {
    const int C = d->C, H = d->H, W = d->W, K = d->K, R = d->R, S = d->S, P = d->P, Q = d->Q;
    const int st = d->stride, pad = d->pad;
#pragma omp parallel for collapse(2) num_threads(c->threads) schedule(static)
    for (int n = 0; n < d->N; n++) {
        for (int ch = 0; ch < C; ch++) {
            float *dxp = dx + ((size_t)n * C + ch) * H * W; /* (H, W) */
            for (int k = 0; k < K; k++) {
                const float *dyp = dy + ((size_t)n * K + k) * P * Q; /* (P, Q) */
                for (int r = 0; r < R; r++) {
                    for (int s = 0; s < S; s++) {
                        const float wv = w[(((size_t)k * C + ch) * R + r) * S + s];
                        int q0, q1;
                        valid_columns(d, s, &q0, &q1);
                        for (int p = 0; p < P; p++) {
                            int ih = p * st - pad + r;
                            if (ih < 0 || ih >= H) continue;
                            const ptrdiff_t row = (ptrdiff_t)ih * W - pad + s; /* + q*st */
                            const float *dyrow = dyp + (size_t)p * Q;
#pragma omp simd /* independent elements: same result as the scalar loop */
                            for (int q = q0; q < q1; q++) dxp[row + q * st] += wv * dyrow[q];
                        }
                    }
                }
            }
        }
    }
}

/* dw[k,c,r,s] += sum_n sum_{p,q} dy[n,k,p,q] * x[n,c,ih,iw]; one (k,c) slice per thread, n in order. */
static void conv2d_backward_weights_ref(gv_ctx *c, float *dw, const float *dy, const float *x,
                                        const gv_conv2d_dims *d) {
    const int C = d->C, H = d->H, W = d->W, K = d->K, R = d->R, S = d->S, P = d->P, Q = d->Q;
    const int st = d->stride, pad = d->pad;
#pragma omp parallel for collapse(2) num_threads(c->threads) schedule(static)
    for (int k = 0; k < K; k++) {
        for (int ch = 0; ch < C; ch++) {
            for (int r = 0; r < R; r++) {
                for (int s = 0; s < S; s++) {
                    int q0, q1;
                    valid_columns(d, s, &q0, &q1);
                    float acc = 0.0f;
                    for (int n = 0; n < d->N; n++) {
                        const float *xp = x + ((size_t)n * C + ch) * H * W;  /* (H, W) */
                        const float *dyp = dy + ((size_t)n * K + k) * P * Q; /* (P, Q) */
                        for (int p = 0; p < P; p++) {
                            int ih = p * st - pad + r;
                            if (ih < 0 || ih >= H) continue;
                            const ptrdiff_t row = (ptrdiff_t)ih * W - pad + s; /* + q*st */
                            const float *dyrow = dyp + (size_t)p * Q;
                            for (int q = q0; q < q1; q++) acc += dyrow[q] * xp[row + q * st];
                        }
                    }
                    dw[(((size_t)k * C + ch) * R + r) * S + s] += acc;
                }
            }
        }
    }
}

/* db[k] += sum_n sum_{p,q} dy[n,k,p,q]; one k per thread, n in order. */
static void conv2d_backward_bias_ref(gv_ctx *c, float *db, const float *dy, const gv_conv2d_dims *d) {
    const int K = d->K;
    const size_t PQ = (size_t)d->P * d->Q;
#pragma omp parallel for num_threads(c->threads) schedule(static)
    for (int k = 0; k < K; k++) {
        float acc = 0.0f;
        for (int n = 0; n < d->N; n++) {
            const float *dyp = dy + ((size_t)n * K + k) * PQ;
            for (size_t i = 0; i < PQ; i++) acc += dyp[i];
        }
        db[k] += acc;
    }
}

static int use_dnnl(gv_ctx *c) {
    gv_cpu_impl *impl = gv_cpu_impl_of(c);
    return c->use_fast && impl && impl->dnnl;
}

gv_status gv_cpu_conv2d_forward(gv_ctx *c, float *y, const float *x, const float *w,
                                const float *b, const gv_conv2d_dims *d) {
    GV_TRY(conv2d_check(y, d, "conv2d_forward"));
    if (!x || !w) return GV_ERROR(GV_ERR_INVALID, "conv2d_forward: NULL input or weight");
    if (use_dnnl(c)) return gv_dnnl_conv2d_forward(c, y, x, w, b, d);
    conv2d_forward_ref(c, y, x, w, b, d);
    return GV_OK;
}

gv_status gv_cpu_conv2d_backward(gv_ctx *c, float *dx, float *dw, float *db, const float *dy,
                                 const float *x, const float *w, const gv_conv2d_dims *d) {
    GV_TRY(conv2d_check(dy, d, "conv2d_backward"));
    if ((dx && !w) || (dw && !x))
        return GV_ERROR(GV_ERR_INVALID, "conv2d_backward: NULL input or weight for a wanted gradient");
    if (use_dnnl(c)) {
        /* oneDNN computes db only alongside dw (backward-weights); alone it is a cheap reduction. */
        GV_TRY(gv_dnnl_conv2d_backward(c, dx, dw, dw ? db : NULL, dy, x, w, d));
        if (db && !dw) conv2d_backward_bias_ref(c, db, dy, d);
        return GV_OK;
    }
    if (dx) conv2d_backward_data_ref(c, dx, dy, w, d);
    if (dw) conv2d_backward_weights_ref(c, dw, dy, x, d);
    if (db) conv2d_backward_bias_ref(c, db, dy, d);
    return GV_OK;
}
