/* Reference GroupNorm and LayerNorm kernels (the specification; plain loop nests + OpenMP).
 *
 * Both ops are one normalisation: x (N, C, HW) split per sample into G channel groups (group g
 * holds channels floor(g*C/G) .. floor((g+1)*C/G)-1, ops.h), each group normalised with its biased
 * mean and variance, then scaled per channel:
 *     xhat = (x - mu) * rstd,  rstd = 1/sqrt(var + eps),  y = xhat * gamma[c] + beta[c]
 * LayerNorm of (N, D) is exactly GroupNorm with C = D, HW = 1, G = 1, so it calls the same code.
 * Statistics use fp64 accumulators and are stored as float; the normalisation and the backward use
 * the stored float values, so forward and backward agree on mu and rstd bit for bit.
 * Backward (standard GroupNorm/LayerNorm gradient, Wu & He 2018 / Ba et al. 2016), per group with
 * M = |group| * HW elements and g_i = dy_i * gamma[c(i)]:
 *     dx_i += rstd * (g_i - mean(g) - xhat_i * mean(g * xhat))
 *     dgamma[c] += sum_{n,hw} dy * xhat,  dbeta[c] += sum_{n,hw} dy
 * dx is parallel over (sample, group); dgamma/dbeta are parallel over channels with the samples
 * summed in order, so they do not depend on the thread count.
 * Deliberately not here: fused SiLU, affine-free variants (gamma and beta are required). */
#include <math.h>
#include <stddef.h>

#include "cpu_backend.h"

/* One normalisation problem: x (N, C, HW), G groups of channels. */
typedef struct norm_shape {
    int64_t N;
    int C;
    int64_t HW;
    int G;
    float eps;
} norm_shape;

static gv_status norm_check(const char *op, const norm_shape *s) {
    if (s->N <= 0)
        return GV_ERROR(GV_ERR_INVALID, "%s: N = %lld must be positive", op, (long long)s->N);
    if (s->C <= 0) return GV_ERROR(GV_ERR_INVALID, "%s: C/D = %d must be positive", op, s->C);
    if (s->HW <= 0)
        return GV_ERROR(GV_ERR_INVALID, "%s: HW = %lld must be positive", op, (long long)s->HW);
    if (s->G <= 0 || s->G > s->C)
        return GV_ERROR(GV_ERR_INVALID, "%s: G = %d must be in 1..C (C = %d)", op, s->G, s->C);
    if (!(s->eps >= 0.0f))
        return GV_ERROR(GV_ERR_INVALID, "%s: eps = %g must be >= 0", op, (double)s->eps);
    return GV_OK;
}

/* First channel of group g; group g is [group_begin(g), group_begin(g+1)). */
static inline int group_begin(int g, int C, int G) { return (int)((int64_t)g * C / G); }

static gv_status norm_forward(gv_ctx *c, float *y, float *mean, float *rstd, const float *x,
                              const float *gamma, const float *beta, const norm_shape *s) {
    const int64_t NG = s->N * s->G;
#pragma omp parallel for num_threads(c->threads) schedule(static)
    for (int64_t ng = 0; ng < NG; ++ng) {
        const int64_t n = ng / s->G;
        const int g = (int)(ng % s->G);
        const int c0 = group_begin(g, s->C, s->G), c1 = group_begin(g + 1, s->C, s->G);
        const int64_t base = (n * s->C + c0) * s->HW, M = (int64_t)(c1 - c0) * s->HW;
        const float *xg = x + base; /* (c1-c0, HW), contiguous */
        float *yg = y + base;
        double sum = 0.0;
        for (int64_t i = 0; i < M; ++i) sum += xg[i];
        const double mu = sum / (double)M;
        double ss = 0.0; /* two-pass biased variance */
        for (int64_t i = 0; i < M; ++i) ss += ((double)xg[i] - mu) * ((double)xg[i] - mu);
        const float mu_f = (float)mu, rstd_f = (float)(1.0 / sqrt(ss / (double)M + s->eps));
        mean[ng] = mu_f;
        rstd[ng] = rstd_f;
        for (int ch = c0; ch < c1; ++ch) {
            const float *xc = x + (n * s->C + ch) * s->HW;
            float *yc = yg + (int64_t)(ch - c0) * s->HW;
            for (int64_t i = 0; i < s->HW; ++i)
                yc[i] = (xc[i] - mu_f) * rstd_f * gamma[ch] + beta[ch];
        }
    }
    return GV_OK;
}

static gv_status norm_backward(gv_ctx *c, float *dx, float *dgamma, float *dbeta, const float *dy,
                               const float *x, const float *mean, const float *rstd,
                               const float *gamma, const norm_shape *s) {
    if (dx) {
        const int64_t NG = s->N * s->G;
#pragma omp parallel for num_threads(c->threads) schedule(static)
        for (int64_t ng = 0; ng < NG; ++ng) {
            const int64_t n = ng / s->G;
            const int g = (int)(ng % s->G);
            const int c0 = group_begin(g, s->C, s->G), c1 = group_begin(g + 1, s->C, s->G);
            const int64_t M = (int64_t)(c1 - c0) * s->HW;
            const float mu = mean[ng], r = rstd[ng];
            double sum_g = 0.0, sum_gx = 0.0; /* sum(g), sum(g * xhat) over the group */
            for (int ch = c0; ch < c1; ++ch) {
                const int64_t off = (n * s->C + ch) * s->HW;
                for (int64_t i = 0; i < s->HW; ++i) {
                    const double gi = (double)dy[off + i] * gamma[ch];
                    const double xhat = (double)((x[off + i] - mu) * r);
                    sum_g += gi;
                    sum_gx += gi * xhat;
                }
            }
            const double mean_g = sum_g / (double)M, mean_gx = sum_gx / (double)M;
            for (int ch = c0; ch < c1; ++ch) {
                const int64_t off = (n * s->C + ch) * s->HW;
                for (int64_t i = 0; i < s->HW; ++i) {
                    const double gi = (double)dy[off + i] * gamma[ch];
                    const double xhat = (double)((x[off + i] - mu) * r);
                    dx[off + i] += (float)((double)r * (gi - mean_g - xhat * mean_gx));
                }
            }
        }
    }
    if (dgamma || dbeta) {
#pragma omp parallel for num_threads(c->threads) schedule(static)
        for (int ch = 0; ch < s->C; ++ch) {
            int g = (int)((int64_t)ch * s->G / s->C); /* a first guess; fix up below */
            while (g > 0 && group_begin(g, s->C, s->G) > ch) --g;
            while (group_begin(g + 1, s->C, s->G) <= ch) ++g;
            double sum_dyx = 0.0, sum_dy = 0.0;
            for (int64_t n = 0; n < s->N; ++n) { /* samples in order: thread-count independent */
                const int64_t off = (n * s->C + ch) * s->HW;
                const float mu = mean[n * s->G + g], r = rstd[n * s->G + g];
                for (int64_t i = 0; i < s->HW; ++i) {
                    sum_dyx += (double)dy[off + i] * (double)((x[off + i] - mu) * r);
                    sum_dy += dy[off + i];
                }
            }
            if (dgamma) dgamma[ch] += (float)sum_dyx;
            if (dbeta) dbeta[ch] += (float)sum_dy;
        }
    }
    return GV_OK;
}

/* ---- the ops --------------------------------------------------------------------------------- */

static norm_shape groupnorm_shape(const gv_groupnorm_dims *d) {
    return (norm_shape){.N = d->N, .C = d->C, .HW = d->HW, .G = d->G, .eps = d->eps};
}
static norm_shape layernorm_shape(const gv_layernorm_dims *d) {
    return (norm_shape){.N = d->N, .C = d->D, .HW = 1, .G = 1, .eps = d->eps};
}

gv_status gv_cpu_groupnorm_forward(gv_ctx *c, float *y, float *mean, float *rstd, const float *x,
                                   const float *gamma, const float *beta,
                                   const gv_groupnorm_dims *d) {
    const norm_shape s = groupnorm_shape(d);
    GV_TRY(norm_check("groupnorm_forward", &s));
    return norm_forward(c, y, mean, rstd, x, gamma, beta, &s);
}

gv_status gv_cpu_groupnorm_backward(gv_ctx *c, float *dx, float *dgamma, float *dbeta,
                                    const float *dy, const float *x, const float *mean,
                                    const float *rstd, const float *gamma,
                                    const gv_groupnorm_dims *d) {
    const norm_shape s = groupnorm_shape(d);
    GV_TRY(norm_check("groupnorm_backward", &s));
    return norm_backward(c, dx, dgamma, dbeta, dy, x, mean, rstd, gamma, &s);
}

gv_status gv_cpu_layernorm_forward(gv_ctx *c, float *y, float *mean, float *rstd, const float *x,
                                   const float *gamma, const float *beta,
                                   const gv_layernorm_dims *d) {
    const norm_shape s = layernorm_shape(d);
    GV_TRY(norm_check("layernorm_forward", &s));
    return norm_forward(c, y, mean, rstd, x, gamma, beta, &s);
}

gv_status gv_cpu_layernorm_backward(gv_ctx *c, float *dx, float *dgamma, float *dbeta,
                                    const float *dy, const float *x, const float *mean,
                                    const float *rstd, const float *gamma,
                                    const gv_layernorm_dims *d) {
    const norm_shape s = layernorm_shape(d);
    GV_TRY(norm_check("layernorm_backward", &s));
    return norm_backward(c, dx, dgamma, dbeta, dy, x, mean, rstd, gamma, &s);
}
