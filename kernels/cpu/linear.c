/* linear and matmul: the reference loop nests (the specification) and the dispatch to oneDNN.
 *
 *   linear  y[n,o]   = b[o] + sum_i x[n,i] * w[o,i]          x (N,Din), w (Dout,Din), y (N,Dout)
 *   matmul  y[b,m,j] = sum_k a[b,m,k] * bm[b,k,j]            a (B,M,K), bm (B,K,N), y (B,M,N)
 *
 * Forwards and input gradients are parallel over rows, so no row depends on another; the weight
 * and bias gradients of linear are parallel over output features with the row loop inside in
 * order, so they do not depend on the thread count. Backward ADDS into every gradient (any may be
 * NULL). The oneDNN path is the matmul primitive for all products (dnnl_glue.c); the bias gradient
 * of linear is always the reference reduction. Not here: transposed-operand flags in the op API. */
#include <stddef.h>

#include "cpu_backend.h"
#include "dnnl_glue.h"

static int use_dnnl(gv_ctx *c) {
    gv_cpu_impl *impl = gv_cpu_impl_of(c);
    return c->use_fast && impl && impl->dnnl;
}

/* ---- linear ---------------------------------------------------------------------------------- */

static gv_status linear_check(const gv_linear_dims *d, const char *op) {
    if (d->N <= 0 || d->Din <= 0 || d->Dout <= 0)
        return GV_ERROR(GV_ERR_INVALID, "%s: bad dims (N=%d Din=%d Dout=%d)", op, d->N, d->Din,
                        d->Dout);
    return GV_OK;
}

static void linear_forward_ref(gv_ctx *c, float *y, const float *x, const float *w, const float *b,
                               const gv_linear_dims *d) {
    const int Din = d->Din, Dout = d->Dout;
#pragma omp parallel for num_threads(c->threads) schedule(static)
    for (int n = 0; n < d->N; n++) {
        const float *xr = x + (size_t)n * Din; /* (Din)  */
        float *yr = y + (size_t)n * Dout;      /* (Dout) */
        for (int o = 0; o < Dout; o++) {
            const float *wr = w + (size_t)o * Din; /* (Din) */
            float acc = 0.0f;
            for (int i = 0; i < Din; i++) acc += xr[i] * wr[i];
            yr[o] = (b ? b[o] : 0.0f) + acc;
        }
    }
}

/* dx[n,i] += sum_o dy[n,o] w[o,i] */
static void linear_backward_input_ref(gv_ctx *c, float *dx, const float *dy, const float *w,
                                      const gv_linear_dims *d) {
    const int Din = d->Din, Dout = d->Dout;
#pragma omp parallel for num_threads(c->threads) schedule(static)
    for (int n = 0; n < d->N; n++) {
        float *dxr = dx + (size_t)n * Din;          /* (Din)  */
        const float *dyr = dy + (size_t)n * Dout;   /* (Dout) */
        for (int o = 0; o < Dout; o++) {
            const float g = dyr[o];
            const float *wr = w + (size_t)o * Din;
#pragma omp simd /* independent elements: same result as the scalar loop */
            for (int i = 0; i < Din; i++) dxr[i] += g * wr[i];
        }
    }
}

/* dw[o,i] += sum_n dy[n,o] x[n,i]; db[o] += sum_n dy[n,o]; one o per thread, n in order. */
static void linear_backward_params_ref(gv_ctx *c, float *dw, float *db, const float *dy,
                                       const float *x, const gv_linear_dims *d) {
    const int Din = d->Din, Dout = d->Dout;
#pragma omp parallel for num_threads(c->threads) schedule(static)
    for (int o = 0; o < Dout; o++) {
        float *dwr = dw ? dw + (size_t)o * Din : NULL; /* (Din) */
        float bias_acc = 0.0f;
        for (int n = 0; n < d->N; n++) {
            const float g = dy[(size_t)n * Dout + o];
            bias_acc += g;
            if (!dwr) continue;
            const float *xr = x + (size_t)n * Din;
#pragma omp simd /* independent elements: same result as the scalar loop */
            for (int i = 0; i < Din; i++) dwr[i] += g * xr[i];
        }
        if (db) db[o] += bias_acc;
    }
}

gv_status gv_cpu_linear_forward(gv_ctx *c, float *y, const float *x, const float *w,
                                const float *b, const gv_linear_dims *d) {
    GV_TRY(linear_check(d, "linear_forward"));
    if (!y || !x || !w) return GV_ERROR(GV_ERR_INVALID, "linear_forward: NULL tensor");
    if (use_dnnl(c)) {
        gv_dnnl_matmul_args m = {.B = 1, .M = d->N, .K = d->Din, .N = d->Dout, .b_trans = 1};
        return gv_dnnl_matmul(c, y, x, w, b, &m);
    }
    linear_forward_ref(c, y, x, w, b, d);
    return GV_OK;
}

gv_status gv_cpu_linear_backward(gv_ctx *c, float *dx, float *dw, float *db, const float *dy,
                                 const float *x, const float *w, const gv_linear_dims *d) {
    GV_TRY(linear_check(d, "linear_backward"));
    if (!dy || (dx && !w) || (dw && !x))
        return GV_ERROR(GV_ERR_INVALID, "linear_backward: NULL tensor for a wanted gradient");
    if (use_dnnl(c)) {
        if (dx) { /* dx (N,Din) += dy (N,Dout) . w (Dout,Din) */
            gv_dnnl_matmul_args m = {.B = 1, .M = d->N, .K = d->Dout, .N = d->Din, .accumulate = 1};
            GV_TRY(gv_dnnl_matmul(c, dx, dy, w, NULL, &m));
        }
        if (dw) { /* dw (Dout,Din) += dy^T (Dout,N) . x (N,Din) */
            gv_dnnl_matmul_args m = {.B = 1, .M = d->Dout, .K = d->N, .N = d->Din, .a_trans = 1,
                                     .accumulate = 1};
            GV_TRY(gv_dnnl_matmul(c, dw, dy, x, NULL, &m));
        }
        if (db) linear_backward_params_ref(c, NULL, db, dy, x, d);
        return GV_OK;
    }
    if (dx) linear_backward_input_ref(c, dx, dy, w, d);
    if (dw || db) linear_backward_params_ref(c, dw, db, dy, x, d);
    return GV_OK;
}

/* ---- matmul ---------------------------------------------------------------------------------- */

static gv_status matmul_check(const gv_matmul_dims *d, const char *op) {
    if (d->B <= 0 || d->M <= 0 || d->K <= 0 || d->N <= 0)
        return GV_ERROR(GV_ERR_INVALID, "%s: bad dims (B=%d M=%d K=%d N=%d)", op, d->B, d->M, d->K,
                        d->N);
    return GV_OK;
}

static void matmul_forward_ref(gv_ctx *c, float *y, const float *a, const float *bm,
                               const gv_matmul_dims *d) {
    const int M = d->M, K = d->K, N = d->N;
#pragma omp parallel for collapse(2) num_threads(c->threads) schedule(static)
    for (int bi = 0; bi < d->B; bi++) {
        for (int m = 0; m < M; m++) {
            const float *ar = a + ((size_t)bi * M + m) * K; /* (K)    */
            const float *bb = bm + (size_t)bi * K * N;      /* (K, N) */
            float *yr = y + ((size_t)bi * M + m) * N;       /* (N)    */
            for (int j = 0; j < N; j++) yr[j] = 0.0f;
            for (int k = 0; k < K; k++) {
                const float av = ar[k];
                const float *br = bb + (size_t)k * N;
#pragma omp simd /* independent elements: same result as the scalar loop */
                for (int j = 0; j < N; j++) yr[j] += av * br[j];
            }
        }
    }
}

/* da[b,m,k] += sum_j dy[b,m,j] bm[b,k,j] */
static void matmul_backward_a_ref(gv_ctx *c, float *da, const float *dy, const float *bm,
                                  const gv_matmul_dims *d) {
    const int M = d->M, K = d->K, N = d->N;
#pragma omp parallel for collapse(2) num_threads(c->threads) schedule(static)
    for (int bi = 0; bi < d->B; bi++) {
        for (int m = 0; m < M; m++) {
            const float *dyr = dy + ((size_t)bi * M + m) * N; /* (N) */
            float *dar = da + ((size_t)bi * M + m) * K;       /* (K) */
            for (int k = 0; k < K; k++) {
                const float *br = bm + ((size_t)bi * K + k) * N;
                float acc = 0.0f;
                for (int j = 0; j < N; j++) acc += dyr[j] * br[j];
                dar[k] += acc;
            }
        }
    }
}

/* db[b,k,j] += sum_m a[b,m,k] dy[b,m,j]; one (b,k) row per thread, m in order. */
static void matmul_backward_b_ref(gv_ctx *c, float *db, const float *dy, const float *a,
                                  const gv_matmul_dims *d) {
    const int M = d->M, K = d->K, N = d->N;
#pragma omp parallel for collapse(2) num_threads(c->threads) schedule(static)
    for (int bi = 0; bi < d->B; bi++) {
        for (int k = 0; k < K; k++) {
            float *dbr = db + ((size_t)bi * K + k) * N; /* (N) */
            for (int m = 0; m < M; m++) {
                const float av = a[((size_t)bi * M + m) * K + k];
                const float *dyr = dy + ((size_t)bi * M + m) * N;
#pragma omp simd /* independent elements: same result as the scalar loop */
                for (int j = 0; j < N; j++) dbr[j] += av * dyr[j];
            }
        }
    }
}

gv_status gv_cpu_matmul_forward(gv_ctx *c, float *y, const float *a, const float *b,
                                const gv_matmul_dims *d) {
    GV_TRY(matmul_check(d, "matmul_forward"));
    if (!y || !a || !b) return GV_ERROR(GV_ERR_INVALID, "matmul_forward: NULL tensor");
    if (use_dnnl(c)) {
        gv_dnnl_matmul_args m = {.B = d->B, .M = d->M, .K = d->K, .N = d->N};
        return gv_dnnl_matmul(c, y, a, b, NULL, &m);
    }
    matmul_forward_ref(c, y, a, b, d);
    return GV_OK;
}

gv_status gv_cpu_matmul_backward(gv_ctx *c, float *da, float *db, const float *dy, const float *a,
                                 const float *b, const gv_matmul_dims *d) {
    GV_TRY(matmul_check(d, "matmul_backward"));
    if (!dy || (da && !b) || (db && !a))
        return GV_ERROR(GV_ERR_INVALID, "matmul_backward: NULL tensor for a wanted gradient");
    if (use_dnnl(c)) {
        if (da) { /* da (B,M,K) += dy (B,M,N) . b^T, b stored (B,K,N) */
            gv_dnnl_matmul_args m = {.B = d->B, .M = d->M, .K = d->N, .N = d->K, .b_trans = 1,
                                     .accumulate = 1};
            GV_TRY(gv_dnnl_matmul(c, da, dy, b, NULL, &m));
        }
        if (db) { /* db (B,K,N) += a^T . dy (B,M,N), a stored (B,M,K) */
            gv_dnnl_matmul_args m = {.B = d->B, .M = d->K, .K = d->M, .N = d->N, .a_trans = 1,
                                     .accumulate = 1};
            GV_TRY(gv_dnnl_matmul(c, db, a, dy, NULL, &m));
        }
        return GV_OK;
    }
    if (da) matmul_backward_a_ref(c, da, dy, b, d);
    if (db) matmul_backward_b_ref(c, db, dy, a, d);
    return GV_OK;
}
