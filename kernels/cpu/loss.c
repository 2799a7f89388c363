/* Reference losses: mean squared error and weighted cross-entropy over rows of logits.
 *
 *   mse:  loss = (1/n) sum_i (a_i - b_i)^2
 *         da_i += dloss * 2 (a_i - b_i) / n,   db_i -= the same
 *   xent: lse_r = logsumexp_v logits[r,v] = m_r + log sum_v exp(logits[r,v] - m_r)
 *         loss  = sum_r w_r (lse_r - logits[r, t_r]) / norm          (rows with w_r = 0 skipped)
 *         dlogits[r,v] += dloss * w_r / norm * (exp(logits[r,v] - lse_r) - [v == t_r])
 * dloss is one float in backend memory, i.e. host memory here. Sums are fp64 and deterministic:
 * the index range is cut into GV_LOSS_CHUNKS fixed contiguous chunks (independent of the thread
 * count), each chunk summed in order, and the chunk sums added in order.
 * Targets of weighted rows must be in [0, V) (GV_ERR_INVALID naming the row otherwise); the target
 * of a row with w_r = 0 is never read.
 * Deliberately not here: label smoothing, ignore_index conventions other than w_r = 0. */
#include <math.h>

#include "cpu_backend.h"

/* Fixed number of reduction chunks: the summation order depends on this alone. */
#define GV_LOSS_CHUNKS 64

/* Chunk k of [0, total): [chunk_begin(k), chunk_begin(k+1)). */
static inline int64_t chunk_begin(int64_t total, int k) {
    return total / GV_LOSS_CHUNKS * k + total % GV_LOSS_CHUNKS * k / GV_LOSS_CHUNKS;
}

/* ---- mean squared error ---------------------------------------------------------------------- */

static gv_status check_n(const char *op, const gv_ew_dims *d) {
    if (d->n <= 0)
        return GV_ERROR(GV_ERR_INVALID, "%s: n = %lld must be positive", op, (long long)d->n);
    return GV_OK;
}

gv_status gv_cpu_mse_forward(gv_ctx *c, float *loss, const float *a, const float *b,
                             const gv_ew_dims *d) {
    GV_TRY(check_n("mse_forward", d));
    double partial[GV_LOSS_CHUNKS];
#pragma omp parallel for num_threads(c->threads) schedule(static)
    for (int k = 0; k < GV_LOSS_CHUNKS; ++k) {
        double s = 0.0;
        for (int64_t i = chunk_begin(d->n, k); i < chunk_begin(d->n, k + 1); ++i) {
            const double diff = (double)a[i] - (double)b[i];
            s += diff * diff;
        }
        partial[k] = s;
    }
    double sum = 0.0;
    for (int k = 0; k < GV_LOSS_CHUNKS; ++k) sum += partial[k];
    loss[0] = (float)(sum / (double)d->n);
    return GV_OK;
}

gv_status gv_cpu_mse_backward(gv_ctx *c, float *da, float *db, const float *dloss, const float *a,
                              const float *b, const gv_ew_dims *d) {
    GV_TRY(check_n("mse_backward", d));
    if (!da && !db) return GV_OK;
    const double coef = 2.0 * (double)dloss[0] / (double)d->n;
#pragma omp parallel for num_threads(c->threads) schedule(static)
    for (int64_t i = 0; i < d->n; ++i) {
        const float g = (float)(coef * ((double)a[i] - (double)b[i]));
        if (da) da[i] += g;
        if (db) db[i] -= g;
    }
    return GV_OK;
}

/* ---- cross-entropy --------------------------------------------------------------------------- */

static gv_status check_xent(const char *op, const int32_t *targets, const float *w,
                            const gv_xent_dims *d) {
    if (d->R <= 0)
        return GV_ERROR(GV_ERR_INVALID, "%s: R = %lld must be positive", op, (long long)d->R);
    if (d->V <= 0) return GV_ERROR(GV_ERR_INVALID, "%s: V = %d must be positive", op, d->V);
    if (!(d->norm > 0.0f) || isinf(d->norm))
        return GV_ERROR(GV_ERR_INVALID, "%s: norm = %g must be positive and finite", op,
                        (double)d->norm);
    for (int64_t r = 0; r < d->R; ++r)
        if (w[r] != 0.0f && (targets[r] < 0 || targets[r] >= d->V))
            return GV_ERROR(GV_ERR_INVALID,
                            "%s: row %lld has weight %g and target %d outside [0, V = %d)", op,
                            (long long)r, (double)w[r], targets[r], d->V);
    return GV_OK;
}

gv_status gv_cpu_cross_entropy_forward(gv_ctx *c, float *loss, float *lse, const float *logits,
                                       const int32_t *targets, const float *w,
                                       const gv_xent_dims *d) {
    GV_TRY(check_xent("cross_entropy_forward", targets, w, d));
    const int V = d->V;
    double partial[GV_LOSS_CHUNKS];
#pragma omp parallel for num_threads(c->threads) schedule(static)
    for (int k = 0; k < GV_LOSS_CHUNKS; ++k) {
        double s = 0.0;
        for (int64_t r = chunk_begin(d->R, k); r < chunk_begin(d->R, k + 1); ++r) {
            const float *row = logits + r * V;
            float m = row[0];
            for (int v = 1; v < V; ++v)
                if (row[v] > m) m = row[v];
            double sum = 0.0;
            for (int v = 0; v < V; ++v) sum += exp((double)row[v] - (double)m);
            const double lse_r = (double)m + log(sum);
            lse[r] = (float)lse_r;
            if (w[r] != 0.0f) s += (double)w[r] * (lse_r - (double)row[targets[r]]);
        }
        partial[k] = s;
    }
    double sum = 0.0;
    for (int k = 0; k < GV_LOSS_CHUNKS; ++k) sum += partial[k];
    loss[0] = (float)(sum / (double)d->norm);
    return GV_OK;
}

gv_status gv_cpu_cross_entropy_backward(gv_ctx *c, float *dlogits, const float *dloss,
                                        const float *logits, const float *lse,
                                        const int32_t *targets, const float *w,
                                        const gv_xent_dims *d) {
    GV_TRY(check_xent("cross_entropy_backward", targets, w, d));
    if (!dlogits) return GV_OK;
    const int V = d->V;
    const double g0 = (double)dloss[0] / (double)d->norm;
#pragma omp parallel for num_threads(c->threads) schedule(static)
    for (int64_t r = 0; r < d->R; ++r) {
        if (w[r] == 0.0f) continue;
        const double gr = g0 * (double)w[r];
        const float *row = logits + r * V;
        float *drow = dlogits + r * V;
        for (int v = 0; v < V; ++v) {
            const double p = exp((double)row[v] - (double)lse[r]);
            drow[v] += (float)(gr * (p - (v == targets[r] ? 1.0 : 0.0)));
        }
    }
    return GV_OK;
}
