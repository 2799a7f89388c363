/* Reference row softmax and log-softmax over the last dimension of x (R, D).
 *
 *   softmax:      y_j = exp(x_j - m) / sum_k exp(x_k - m),  m = max_k x_k
 *   log_softmax:  y_j = x_j - m - log(sum_k exp(x_k - m))
 * Backward from the saved output y (ops.h), adding into dx:
 *   softmax:      dx_j += y_j (dy_j - sum_k dy_k y_k)
 *   log_softmax:  dx_j += dy_j - exp(y_j) sum_k dy_k
 * Row sums use fp64 accumulators. Rows are independent and run in parallel.
 * Deliberately not here: masking (attention.c handles masked keys), temperature. */
#include <math.h>

#include "cpu_backend.h"

static gv_status check_rows(const char *op, const gv_rows_dims *d) {
    if (d->R <= 0)
        return GV_ERROR(GV_ERR_INVALID, "%s: R = %lld must be positive", op, (long long)d->R);
    if (d->D <= 0) return GV_ERROR(GV_ERR_INVALID, "%s: D = %d must be positive", op, d->D);
    return GV_OK;
}

/* Row maximum and sum_k exp(x_k - max) in fp64: the shared first half of both forwards. */
static void row_max_sumexp(const float *x, int D, float *max_out, double *sum_out) {
    float m = x[0];
    for (int j = 1; j < D; ++j)
        if (x[j] > m) m = x[j];
    double sum = 0.0;
    for (int j = 0; j < D; ++j) sum += exp((double)x[j] - (double)m);
    *max_out = m;
    *sum_out = sum;
}

gv_status gv_cpu_softmax_forward(gv_ctx *c, float *y, const float *x, const gv_rows_dims *d) {
    GV_TRY(check_rows("softmax_forward", d));
    const int D = d->D;
#pragma omp parallel for num_threads(c->threads) schedule(static)
    for (int64_t r = 0; r < d->R; ++r) {
        const float *xr = x + r * D;
        float *yr = y + r * D;
        float m;
        double sum;
        row_max_sumexp(xr, D, &m, &sum);
        for (int j = 0; j < D; ++j) yr[j] = (float)(exp((double)xr[j] - (double)m) / sum);
    }
    return GV_OK;
}

gv_status gv_cpu_softmax_backward(gv_ctx *c, float *dx, const float *dy, const float *y,
                                  const gv_rows_dims *d) {
    GV_TRY(check_rows("softmax_backward", d));
    if (!dx) return GV_OK;
    const int D = d->D;
#pragma omp parallel for num_threads(c->threads) schedule(static)
    for (int64_t r = 0; r < d->R; ++r) {
        const float *dyr = dy + r * D, *yr = y + r * D;
        float *dxr = dx + r * D;
        double dot = 0.0;
        for (int j = 0; j < D; ++j) dot += (double)dyr[j] * yr[j];
        for (int j = 0; j < D; ++j) dxr[j] += (float)(yr[j] * ((double)dyr[j] - dot));
    }
    return GV_OK;
}

gv_status gv_cpu_log_softmax_forward(gv_ctx *c, float *y, const float *x, const gv_rows_dims *d) {
    GV_TRY(check_rows("log_softmax_forward", d));
    const int D = d->D;
#pragma omp parallel for num_threads(c->threads) schedule(static)
    for (int64_t r = 0; r < d->R; ++r) {
        const float *xr = x + r * D;
        float *yr = y + r * D;
        float m;
        double sum;
        row_max_sumexp(xr, D, &m, &sum);
        const double shift = (double)m + log(sum);
        for (int j = 0; j < D; ++j) yr[j] = (float)((double)xr[j] - shift);
    }
    return GV_OK;
}

gv_status gv_cpu_log_softmax_backward(gv_ctx *c, float *dx, const float *dy, const float *y,
                                      const gv_rows_dims *d) {
    GV_TRY(check_rows("log_softmax_backward", d));
    if (!dx) return GV_OK;
    const int D = d->D;
#pragma omp parallel for num_threads(c->threads) schedule(static)
    for (int64_t r = 0; r < d->R; ++r) {
        const float *dyr = dy + r * D, *yr = y + r * D;
        float *dxr = dx + r * D;
        double sum_dy = 0.0;
        for (int j = 0; j < D; ++j) sum_dy += dyr[j];
        for (int j = 0; j < D; ++j) dxr[j] += (float)((double)dyr[j] - exp((double)yr[j]) * sum_dy);
    }
    return GV_OK;
}
