/* Reference layout ops of the UNet: nearest upsampling, channel concat, per-channel broadcast add.
 *
 *   upsample_nearest: y[n,c,i,j] = x[n,c,floor(i/f),floor(j/f)],  y (N,C,H*f,W*f)
 *                     backward: dx[n,c,p,q] += sum of dy over its f x f block
 *   concat:           y (N,Ca+Cb,HW) = [a (N,Ca,HW) ; b (N,Cb,HW)] along channels
 *                     backward: da += dy[:, :Ca], db += dy[:, Ca:]
 *   add_channel:      y[n,c,s] = x[n,c,s] + e[n,c]      (y may alias x)
 *                     backward: dx += dy,  de[n,c] += sum_s dy[n,c,s]  (fp64 sum)
 * All are parallel over (n, c) planes or samples, each owning its outputs, so results do not
 * depend on the thread count. Backwards add into their gradients; NULL gradients are skipped.
 * Deliberately not here: bilinear or fractional resampling, strided downsampling (conv2d's job). */
#include <string.h>

#include "cpu_backend.h"

static gv_status require_positive(const char *op, const char *field, int64_t v) {
    if (v <= 0)
        return GV_ERROR(GV_ERR_INVALID, "%s: %s = %lld must be positive", op, field, (long long)v);
    return GV_OK;
}

/* ---- nearest upsampling ---------------------------------------------------------------------- */

static gv_status check_upsample(const char *op, const gv_upsample_dims *d) {
    GV_TRY(require_positive(op, "N", d->N));
    GV_TRY(require_positive(op, "C", d->C));
    GV_TRY(require_positive(op, "H", d->H));
    GV_TRY(require_positive(op, "W", d->W));
    return require_positive(op, "f", d->f);
}

gv_status gv_cpu_upsample_nearest_forward(gv_ctx *c, float *y, const float *x,
                                          const gv_upsample_dims *d) {
    GV_TRY(check_upsample("upsample_nearest_forward", d));
    const int f = d->f, H = d->H, W = d->W, Ho = H * f, Wo = W * f;
    const int64_t planes = (int64_t)d->N * d->C;
#pragma omp parallel for num_threads(c->threads) schedule(static)
    for (int64_t pl = 0; pl < planes; ++pl) {
        const float *xp = x + pl * H * W;
        float *yp = y + pl * Ho * Wo;
        for (int i = 0; i < Ho; ++i)
            for (int j = 0; j < Wo; ++j) yp[(int64_t)i * Wo + j] = xp[(int64_t)(i / f) * W + j / f];
    }
    return GV_OK;
}

gv_status gv_cpu_upsample_nearest_backward(gv_ctx *c, float *dx, const float *dy,
                                           const gv_upsample_dims *d) {
    GV_TRY(check_upsample("upsample_nearest_backward", d));
    if (!dx) return GV_OK;
    const int f = d->f, H = d->H, W = d->W, Wo = W * f;
    const int64_t planes = (int64_t)d->N * d->C;
#pragma omp parallel for num_threads(c->threads) schedule(static)
    for (int64_t pl = 0; pl < planes; ++pl) {
        const float *dyp = dy + pl * H * f * Wo;
        float *dxp = dx + pl * H * W;
        for (int p = 0; p < H; ++p)
            for (int q = 0; q < W; ++q) {
                float sum = 0.0f; /* f*f terms in a fixed order */
                for (int a = 0; a < f; ++a)
                    for (int b = 0; b < f; ++b) sum += dyp[(int64_t)(p * f + a) * Wo + q * f + b];
                dxp[(int64_t)p * W + q] += sum;
            }
    }
    return GV_OK;
}

/* ---- channel concat -------------------------------------------------------------------------- */

static gv_status check_concat(const char *op, const gv_concat_dims *d) {
    GV_TRY(require_positive(op, "N", d->N));
    GV_TRY(require_positive(op, "Ca", d->Ca));
    GV_TRY(require_positive(op, "Cb", d->Cb));
    return require_positive(op, "HW", d->HW);
}

gv_status gv_cpu_concat_forward(gv_ctx *c, float *y, const float *a, const float *b,
                                const gv_concat_dims *d) {
    GV_TRY(check_concat("concat_forward", d));
    const int64_t na = (int64_t)d->Ca * d->HW, nb = (int64_t)d->Cb * d->HW;
#pragma omp parallel for num_threads(c->threads) schedule(static)
    for (int n = 0; n < d->N; ++n) {
        float *yn = y + (int64_t)n * (na + nb);
        memcpy(yn, a + (int64_t)n * na, (size_t)na * sizeof(float));
        memcpy(yn + na, b + (int64_t)n * nb, (size_t)nb * sizeof(float));
    }
    return GV_OK;
}

gv_status gv_cpu_concat_backward(gv_ctx *c, float *da, float *db, const float *dy,
                                 const gv_concat_dims *d) {
    GV_TRY(check_concat("concat_backward", d));
    const int64_t na = (int64_t)d->Ca * d->HW, nb = (int64_t)d->Cb * d->HW;
#pragma omp parallel for num_threads(c->threads) schedule(static)
    for (int n = 0; n < d->N; ++n) {
        const float *dyn = dy + (int64_t)n * (na + nb);
        if (da)
            for (int64_t i = 0; i < na; ++i) da[n * na + i] += dyn[i];
        if (db)
            for (int64_t i = 0; i < nb; ++i) db[n * nb + i] += dyn[na + i];
    }
    return GV_OK;
}

/* ---- per-channel broadcast add --------------------------------------------------------------- */

static gv_status check_channel(const char *op, const gv_channel_dims *d) {
    GV_TRY(require_positive(op, "N", d->N));
    GV_TRY(require_positive(op, "C", d->C));
    return require_positive(op, "HW", d->HW);
}

gv_status gv_cpu_add_channel_forward(gv_ctx *c, float *y, const float *x, const float *e,
                                     const gv_channel_dims *d) {
    GV_TRY(check_channel("add_channel_forward", d));
    const int64_t planes = (int64_t)d->N * d->C, HW = d->HW;
#pragma omp parallel for num_threads(c->threads) schedule(static)
    for (int64_t pl = 0; pl < planes; ++pl) {
        const float ev = e[pl];
        for (int64_t s = 0; s < HW; ++s) y[pl * HW + s] = x[pl * HW + s] + ev;
    }
    return GV_OK;
}

gv_status gv_cpu_add_channel_backward(gv_ctx *c, float *dx, float *de, const float *dy,
                                      const gv_channel_dims *d) {
    GV_TRY(check_channel("add_channel_backward", d));
    const int64_t planes = (int64_t)d->N * d->C, HW = d->HW;
#pragma omp parallel for num_threads(c->threads) schedule(static)
    for (int64_t pl = 0; pl < planes; ++pl) {
        const float *dyp = dy + pl * HW;
        if (dx)
            for (int64_t s = 0; s < HW; ++s) dx[pl * HW + s] += dyp[s];
        if (de) {
            double sum = 0.0;
            for (int64_t s = 0; s < HW; ++s) sum += dyp[s];
            de[pl] += (float)sum;
        }
    }
    return GV_OK;
}
