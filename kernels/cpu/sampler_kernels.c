/* Reference sampler kernels: one Gaussian (SDE) step with its log-density, its backward with
 * respect to the velocity, the Euler (ODE) step and the CFG combine (ALGORITHMS.md §1–2).
 *
 *   gaussian_step: mu = cx*x + cv*v (every §2 Gaussian schedule; the host derives cx, cv, std per
 *                  schedule in samplers/schedule.c), x' = mu + std*eps when sampling,
 *                  logp_n = mean_d lp(x'_nd - mu_nd) with
 *                    GV_LOGP_GAUSSIAN: lp(r) = -r^2/(2 std^2) - log std - log(2 pi)/2
 *                    GV_LOGP_CPS:      lp(r) = -r^2
 *   euler_step:    x' = x + delta*v
 *   cfg_combine:   v = v_null + w*(v_cond - v_null)
 * mu is computed by one function (step_mean) in both the sampling and the recompute mode, and the
 * residual is always taken from the stored float x', so a recomputed logp equals the rollout's
 * bitwise (on-policy ratio exactly 1, ALGORITHMS.md §3). The sum over D is fp64 in element order
 * per sample: batch-invariant and independent of the thread count. Per-sample ops: nothing is
 * reduced across N. Deliberately not here: the schedules themselves (samplers/schedule.c). */
#include <math.h>

#include "cpu_backend.h"

#define GV_SAMPLER_PARALLEL_MIN 16384 /* elements below which the loops run on one thread */
#define GV_HALF_LOG_2PI 0.91893853320467274178 /* log(2 pi) / 2 */

static gv_status check_step(const char *op, const gv_step_args *a, int needs_std) {
    if (a->N <= 0 || a->D <= 0)
        return GV_ERROR(GV_ERR_INVALID, "%s: N = %d, D = %lld must be positive", op, a->N,
                        (long long)a->D);
    if (a->logp_kind != GV_LOGP_GAUSSIAN && a->logp_kind != GV_LOGP_CPS)
        return GV_ERROR(GV_ERR_INVALID, "%s: unknown logp_kind %d", op, a->logp_kind);
    if (needs_std && !(a->std > 0.0f) && a->logp_kind == GV_LOGP_GAUSSIAN)
        return GV_ERROR(GV_ERR_INVALID, "%s: std = %g must be positive for a Gaussian log-density",
                        op, (double)a->std);
    return GV_OK;
}

/* ALGORITHMS.md §2: the mean of every Gaussian schedule, mu = cx*x + cv*v (no FMA). */
static inline float step_mean(const gv_step_args *a, float x, float v) {
    float px = a->cx * x;
    float pv = a->cv * v;
    return px + pv;
}

/* logp_n from the fp64 sum of squared residuals over D (ALGORITHMS.md §2, log-probability). */
static float logp_from_sumsq(const gv_step_args *a, double sumsq) {
    double mean_sq = sumsq / (double)a->D;
    if (a->logp_kind == GV_LOGP_CPS) return (float)(-mean_sq);
    double sd = (double)a->std;
    return (float)(-mean_sq / (2.0 * sd * sd) - log(sd) - GV_HALF_LOG_2PI);
}

gv_status gv_cpu_gaussian_step_forward(gv_ctx *c, float *x_next, float *logp, const float *x,
                                       const float *v, const float *eps,
                                       const gv_step_args *a) {
    GV_TRY(check_step("gaussian_step_forward", a, logp != NULL));
    const int64_t D = a->D;
#pragma omp parallel for num_threads(c->threads) if ((int64_t)a->N * D >= GV_SAMPLER_PARALLEL_MIN)
    for (int n = 0; n < a->N; ++n) {
        double sumsq = 0.0;
        for (int64_t d = 0; d < D; ++d) {
            int64_t i = (int64_t)n * D + d;
            float mu = step_mean(a, x[i], v[i]);
            if (eps) {
                float noise = a->std * eps[i];
                x_next[i] = mu + noise; /* may alias x: x[i] was read above */
            }
            float r = x_next[i] - mu;
            sumsq += (double)r * (double)r;
        }
        if (logp) logp[n] = logp_from_sumsq(a, sumsq);
    }
    return GV_OK;
}

gv_status gv_cpu_gaussian_step_backward(gv_ctx *c, float *dv, const float *dlogp, const float *x,
                                        const float *v, const float *x_next,
                                        const gv_step_args *a) {
    GV_TRY(check_step("gaussian_step_backward", a, 1));
    if (!dv) return GV_OK;
    const int64_t D = a->D;
    /* d logp_n / d mu_nd = (x' - mu) / (D std^2) [Gaussian] or 2 (x' - mu) / D [cps];
       d mu / d v = cv. */
    double per_residual = a->logp_kind == GV_LOGP_CPS
                              ? 2.0 / (double)D
                              : 1.0 / ((double)D * (double)a->std * (double)a->std);
#pragma omp parallel for num_threads(c->threads) if ((int64_t)a->N * D >= GV_SAMPLER_PARALLEL_MIN)
    for (int n = 0; n < a->N; ++n) {
        float g = (float)((double)dlogp[n] * per_residual * (double)a->cv);
        for (int64_t d = 0; d < D; ++d) {
            int64_t i = (int64_t)n * D + d;
            float r = x_next[i] - step_mean(a, x[i], v[i]);
            float gr = g * r;
            dv[i] += gr;
        }
    }
    return GV_OK;
}

gv_status gv_cpu_euler_step(gv_ctx *c, float *x_next, const float *x, const float *v,
                            const gv_step_args *a) {
    if (a->N <= 0 || a->D <= 0)
        return GV_ERROR(GV_ERR_INVALID, "euler_step: N = %d, D = %lld must be positive", a->N,
                        (long long)a->D);
    const int64_t n = (int64_t)a->N * a->D;
#pragma omp parallel for num_threads(c->threads) if (n >= GV_SAMPLER_PARALLEL_MIN)
    for (int64_t i = 0; i < n; ++i) {
        float step = a->delta * v[i]; /* ALGORITHMS.md §2, ODE (Euler) */
        x_next[i] = x[i] + step;
    }
    return GV_OK;
}

gv_status gv_cpu_cfg_combine(gv_ctx *c, float *v, const float *v_cond, const float *v_null,
                             float w, const gv_ew_dims *d) {
    if (d->n <= 0)
        return GV_ERROR(GV_ERR_INVALID, "cfg_combine: n = %lld must be positive", (long long)d->n);
#pragma omp parallel for num_threads(c->threads) if (d->n >= GV_SAMPLER_PARALLEL_MIN)
    for (int64_t i = 0; i < d->n; ++i) {
        float diff = v_cond[i] - v_null[i]; /* ALGORITHMS.md §1, CFG */
        float guided = w * diff;
        v[i] = v_null[i] + guided;
    }
    return GV_OK;
}

gv_status gv_cpu_cfg_combine_backward(gv_ctx *c, float *dv_cond, float *dv_null, const float *dv,
                                      float w, const gv_ew_dims *d) {
    if (d->n <= 0)
        return GV_ERROR(GV_ERR_INVALID, "cfg_combine_backward: n = %lld must be positive",
                        (long long)d->n);
    float w_null = 1.0f - w;
#pragma omp parallel for num_threads(c->threads) if (d->n >= GV_SAMPLER_PARALLEL_MIN)
    for (int64_t i = 0; i < d->n; ++i) {
        if (dv_cond) dv_cond[i] += w * dv[i];
        if (dv_null) dv_null[i] += w_null * dv[i];
    }
    return GV_OK;
}
