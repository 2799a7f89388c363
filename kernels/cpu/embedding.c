/* Reference embedding lookups: embedding (one id per row), embedding_bag (mean of L ids), and the
 * sinusoidal time embedding.
 *
 *   bag:       y[n] = (1/|V_n|) sum_{l in V_n} table[ids[n,l]],  V_n = {l : ids[n,l] >= 0}
 *              |V_n| = 0 gives y[n] = 0 and no gradient; -1 is the padding id.
 *   embedding: the bag with L = 1, i.e. y[n] = table[ids[n]] (and -1 gives a zero row).
 *   backward:  dtable[ids[n,l]] += dy[n] / |V_n| for every valid (n, l).
 *   time:      y[n,j] = sin(a), y[n,D/2+j] = cos(a), a = scale*t[n]*exp(-ln(10000)*j/(D/2)),
 *              j < D/2 (Vaswani et al. 2017 §3.5 frequencies; DDPM/flow-matching time input),
 *              computed in fp64 and rounded once.
 * Ids outside [-1, V) are GV_ERR_INVALID naming the row and the id, found before anything is
 * written. The backward scatter is parallel over blocks of D columns with the rows visited in
 * order, so repeated ids accumulate in a fixed order whatever the thread count.
 * Deliberately not here: sum/max bags, per-id weights, sparse gradients. */
#include <math.h>

#include "cpu_backend.h"

/* Columns per parallel block of the backward scatter. */
#define GV_EMB_COL_BLOCK 32

static gv_status check_embedding(const char *op, const gv_embedding_dims *d, int bag) {
    if (d->N <= 0) return GV_ERROR(GV_ERR_INVALID, "%s: N = %d must be positive", op, d->N);
    if (d->L <= 0) return GV_ERROR(GV_ERR_INVALID, "%s: L = %d must be positive", op, d->L);
    if (!bag && d->L != 1) return GV_ERROR(GV_ERR_INVALID, "%s: L = %d must be 1", op, d->L);
    if (d->V <= 0) return GV_ERROR(GV_ERR_INVALID, "%s: V = %d must be positive", op, d->V);
    if (d->D <= 0) return GV_ERROR(GV_ERR_INVALID, "%s: D = %d must be positive", op, d->D);
    return GV_OK;
}

/* Every id in [-1, V); the first bad one is named by row and position. */
static gv_status check_ids(const char *op, const int32_t *ids, const gv_embedding_dims *d) {
    for (int64_t i = 0; i < (int64_t)d->N * d->L; ++i)
        if (ids[i] < -1 || ids[i] >= d->V)
            return GV_ERROR(GV_ERR_INVALID,
                            "%s: row %lld position %lld has id %d outside [-1, V = %d)", op,
                            (long long)(i / d->L), (long long)(i % d->L), ids[i], d->V);
    return GV_OK;
}

static int valid_count(const int32_t *ids_row, int L) {
    int count = 0;
    for (int l = 0; l < L; ++l) count += ids_row[l] >= 0;
    return count;
}

static gv_status bag_forward(gv_ctx *c, float *y, const int32_t *ids, const float *table,
                             const gv_embedding_dims *d) {
    const int L = d->L, D = d->D;
#pragma omp parallel for num_threads(c->threads) schedule(static)
    for (int n = 0; n < d->N; ++n) {
        const int32_t *row = ids + (int64_t)n * L;
        const int count = valid_count(row, L);
        float *yn = y + (int64_t)n * D;
        for (int e = 0; e < D; ++e) {
            double sum = 0.0;
            for (int l = 0; l < L; ++l)
                if (row[l] >= 0) sum += table[(int64_t)row[l] * D + e];
            yn[e] = count ? (float)(sum / count) : 0.0f;
        }
    }
    return GV_OK;
}

static gv_status bag_backward(gv_ctx *c, float *dtable, const float *dy, const int32_t *ids,
                              const gv_embedding_dims *d) {
    const int L = d->L, D = d->D;
    const int blocks = (D + GV_EMB_COL_BLOCK - 1) / GV_EMB_COL_BLOCK;
#pragma omp parallel for num_threads(c->threads) schedule(static)
    for (int b = 0; b < blocks; ++b) {
        const int e0 = b * GV_EMB_COL_BLOCK;
        const int e1 = e0 + GV_EMB_COL_BLOCK < D ? e0 + GV_EMB_COL_BLOCK : D;
        for (int n = 0; n < d->N; ++n) { /* rows in order: deterministic accumulation */
            const int32_t *row = ids + (int64_t)n * L;
            const int count = valid_count(row, L);
            if (!count) continue;
            const float fcount = (float)count;
            const float *dyn = dy + (int64_t)n * D;
            for (int l = 0; l < L; ++l) {
                if (row[l] < 0) continue;
                float *dt = dtable + (int64_t)row[l] * D;
                for (int e = e0; e < e1; ++e) dt[e] += dyn[e] / fcount;
            }
        }
    }
    return GV_OK;
}

gv_status gv_cpu_embedding_forward(gv_ctx *c, float *y, const int32_t *ids, const float *table,
                                   const gv_embedding_dims *d) {
    GV_TRY(check_embedding("embedding_forward", d, 0));
    GV_TRY(check_ids("embedding_forward", ids, d));
    return bag_forward(c, y, ids, table, d);
}

gv_status gv_cpu_embedding_backward(gv_ctx *c, float *dtable, const float *dy, const int32_t *ids,
                                    const gv_embedding_dims *d) {
    GV_TRY(check_embedding("embedding_backward", d, 0));
    if (!dtable) return GV_OK;
    GV_TRY(check_ids("embedding_backward", ids, d));
    return bag_backward(c, dtable, dy, ids, d);
}

gv_status gv_cpu_embedding_bag_forward(gv_ctx *c, float *y, const int32_t *ids,
                                       const float *table, const gv_embedding_dims *d) {
    GV_TRY(check_embedding("embedding_bag_forward", d, 1));
    GV_TRY(check_ids("embedding_bag_forward", ids, d));
    return bag_forward(c, y, ids, table, d);
}

gv_status gv_cpu_embedding_bag_backward(gv_ctx *c, float *dtable, const float *dy,
                                        const int32_t *ids, const gv_embedding_dims *d) {
    GV_TRY(check_embedding("embedding_bag_backward", d, 1));
    if (!dtable) return GV_OK;
    GV_TRY(check_ids("embedding_bag_backward", ids, d));
    return bag_backward(c, dtable, dy, ids, d);
}

gv_status gv_cpu_time_embedding_forward(gv_ctx *c, float *y, const float *t,
                                        const gv_time_embedding_dims *d) {
    if (d->N <= 0)
        return GV_ERROR(GV_ERR_INVALID, "time_embedding_forward: N = %d must be positive", d->N);
    if (d->D <= 0 || d->D % 2 != 0)
        return GV_ERROR(GV_ERR_INVALID, "time_embedding_forward: D = %d must be positive and even",
                        d->D);
    const int half = d->D / 2;
    const double log_base = log(10000.0);
#pragma omp parallel for num_threads(c->threads) schedule(static)
    for (int n = 0; n < d->N; ++n) {
        float *yn = y + (int64_t)n * d->D;
        for (int j = 0; j < half; ++j) {
            const double a = (double)d->scale * t[n] * exp(-log_base * j / half);
            yn[j] = (float)sin(a);
            yn[half + j] = (float)cos(a);
        }
    }
    return GV_OK;
}
