/* Reference elementwise arithmetic over n floats: add, scale, axpby.
 *
 *   add:   y = a + b
 *   scale: y = alpha * x
 *   axpby: y = alpha * x + beta * y
 * Outputs may alias inputs (each element is read before it is written, index by index).
 * Deliberately not here: broadcasting (add_channel lives in resample.c), reductions (loss.c). */
#include "cpu_backend.h"

/* Below this many elements the loops run on one thread (the fork costs more than it saves). */
#define GV_EW_PARALLEL_MIN 16384

static gv_status check_n(const char *op, const gv_ew_dims *d) {
    if (d->n <= 0)
        return GV_ERROR(GV_ERR_INVALID, "%s: n = %lld must be positive", op, (long long)d->n);
    return GV_OK;
}

gv_status gv_cpu_add(gv_ctx *c, float *y, const float *a, const float *b, const gv_ew_dims *d) {
    GV_TRY(check_n("add", d));
#pragma omp parallel for num_threads(c->threads) if (d->n >= GV_EW_PARALLEL_MIN)
    for (int64_t i = 0; i < d->n; ++i) y[i] = a[i] + b[i];
    return GV_OK;
}

gv_status gv_cpu_scale(gv_ctx *c, float *y, const float *x, float alpha, const gv_ew_dims *d) {
    GV_TRY(check_n("scale", d));
#pragma omp parallel for num_threads(c->threads) if (d->n >= GV_EW_PARALLEL_MIN)
    for (int64_t i = 0; i < d->n; ++i) y[i] = alpha * x[i];
    return GV_OK;
}

gv_status gv_cpu_axpby(gv_ctx *c, float *y, const float *x, float alpha, float beta,
                       const gv_ew_dims *d) {
    GV_TRY(check_n("axpby", d));
#pragma omp parallel for num_threads(c->threads) if (d->n >= GV_EW_PARALLEL_MIN)
    for (int64_t i = 0; i < d->n; ++i) y[i] = alpha * x[i] + beta * y[i];
    return GV_OK;
}
