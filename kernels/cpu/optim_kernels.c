/* CPU optimizer kernels: decoupled AdamW step and the deterministic sum of squares.
 *
 * Reference loops (STYLE.md 2) with OpenMP. adamw_step is elementwise, so its result never depends
 * on the thread count; sumsq accumulates in fp64 within FIXED blocks of GV_SUMSQ_BLOCK elements and
 * adds the block partials in block order, so it is also thread-count independent (ops.h). The
 * policy around them (bias corrections, which parameters decay, clipping) is engine/core/optim.c. */
#include <math.h>
#include <stdint.h>

#include "cpu_backend.h"

#define GV_SUMSQ_BLOCK 4096       /* elements per fp64 partial (part of the result's definition) */
#define GV_SUMSQ_CHUNK_BLOCKS 512 /* partials computed in parallel, then added in order          */

/* Decoupled AdamW (Loshchilov & Hutter; ALGORITHMS.md §3), per element i < a->n:
 *   p -= lr·wd·p
 *   m  = β1·m + (1-β1)·g
 *   v  = β2·v + (1-β2)·g²
 *   p -= lr · (m / bc1) / (sqrt(v / bc2) + eps)      bc1 = 1-β1^t, bc2 = 1-β2^t (host)
 * p, m, v, g (n). Each product is its own rounding (no contraction). */
gv_status gv_cpu_adamw_step(gv_ctx *c, float *p, float *m, float *v, const float *g,
                            const gv_adamw_args *a) {
    if (a->n < 0) return GV_ERROR(GV_ERR_INVALID, "adamw_step: negative count %lld", (long long)a->n);
    if (!(a->bias_corr1 > 0.0f) || !(a->bias_corr2 > 0.0f))
        return GV_ERROR(GV_ERR_INVALID, "adamw_step: bias corrections must be > 0 (got %g, %g)",
                        (double)a->bias_corr1, (double)a->bias_corr2);
    const float lr = a->lr, b1 = a->beta1, b2 = a->beta2, eps = a->eps;
    const float lr_wd = lr * a->weight_decay;
    const float one_minus_b1 = 1.0f - b1, one_minus_b2 = 1.0f - b2;
    const float bc1 = a->bias_corr1, bc2 = a->bias_corr2;
    const int threads = c && c->threads > 0 ? c->threads : 1;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t i = 0; i < a->n; ++i) {
        float pi = p[i], gi = g[i];
        float decay = lr_wd * pi;
        pi = pi - decay;
        float m_old = b1 * m[i], m_new = one_minus_b1 * gi;
        float mi = m_old + m_new;
        float g2 = gi * gi;
        float v_old = b2 * v[i], v_new = one_minus_b2 * g2;
        float vi = v_old + v_new;
        float m_hat = mi / bc1;
        float v_hat = vi / bc2;
        float denom = sqrtf(v_hat);
        denom = denom + eps;
        float update = lr * m_hat;
        update = update / denom;
        p[i] = pi - update;
        m[i] = mi;
        v[i] = vi;
    }
    return GV_OK;
}

/* Sum of x[i]² over one block [lo, hi), in fp64, in index order. x (n). */
static double sumsq_block(const float *x, int64_t lo, int64_t hi) {
    double s = 0.0;
    for (int64_t i = lo; i < hi; ++i) {
        double xi = (double)x[i];
        double sq = xi * xi; /* exact: 24-bit x 24-bit fits 53 bits */
        s = s + sq;
    }
    return s;
}

/* out (1) = (float) Σ_b partial_b, partial_b = Σ_{i in block b} x[i]² (fp64, blocks of
   GV_SUMSQ_BLOCK, b in order). x (n). */
gv_status gv_cpu_sumsq(gv_ctx *c, float *out, const float *x, const gv_ew_dims *d) {
    if (d->n < 0) return GV_ERROR(GV_ERR_INVALID, "sumsq: negative count %lld", (long long)d->n);
    const int64_t n = d->n;
    const int64_t nblocks = (n + GV_SUMSQ_BLOCK - 1) / GV_SUMSQ_BLOCK;
    const int threads = c && c->threads > 0 ? c->threads : 1;
    double partial[GV_SUMSQ_CHUNK_BLOCKS];
    double total = 0.0;
    for (int64_t b0 = 0; b0 < nblocks; b0 += GV_SUMSQ_CHUNK_BLOCKS) {
        int64_t nb = nblocks - b0 < GV_SUMSQ_CHUNK_BLOCKS ? nblocks - b0 : GV_SUMSQ_CHUNK_BLOCKS;
#pragma omp parallel for num_threads(threads) schedule(static)
        for (int64_t j = 0; j < nb; ++j) {
            int64_t lo = (b0 + j) * GV_SUMSQ_BLOCK;
            int64_t hi = lo + GV_SUMSQ_BLOCK < n ? lo + GV_SUMSQ_BLOCK : n;
            partial[j] = sumsq_block(x, lo, hi);
        }
        for (int64_t j = 0; j < nb; ++j) total = total + partial[j];
    }
    out[0] = (float)total;
    return GV_OK;
}
