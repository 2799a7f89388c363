/* Reference kernels of the GRPO training loss (ALGORITHMS.md §3, Loss): the clipped policy
 * objective over per-unit log-probs and the per-unit KL to the frozen reference model.
 *
 *   grpo_objective: rho_u = exp(logp_u - logp_old_u) (computed in fp64, stored as float; every
 *                   later use, forward and backward, reads the stored float so both agree on
 *                   which branch is clipped),
 *                   L_u = max(-A_u rho_u, -A_u clip(rho_u, 1-eps, 1+eps)),
 *                   loss = (sum_u w_u L_u + beta sum_u kl_u) / norm.
 *                   The weight multiplies the policy term only, not the KL (ALGORITHMS.md §4).
 *   kl:             kl_u = mean_d (mu_theta - mu_ref)^2 / (2 var_u)   (flow_grpo, gaussian)
 *                   kl_u = mean_d (v_theta - v_ref)^2                 (velocity)
 * Reductions over units are one fp64 loop in unit order (deterministic, thread-count free); the
 * unit count is small (a minibatch), so they run on one thread. The KL's per-unit sums over D are
 * fp64 in element order, units in parallel. Deliberately not here: choosing units, advantages and
 * weights (engine/train), and the log-probs themselves (sampler_kernels.c). */
#include <math.h>

#include "cpu_backend.h"

#define GV_KL_PARALLEL_MIN 16384 /* elements below which the KL loops run on one thread */

static gv_status check_grpo(const char *op, const gv_grpo_args *a) {
    if (a->U <= 0) return GV_ERROR(GV_ERR_INVALID, "%s: U = %d must be positive", op, a->U);
    if (!(a->norm > 0.0f) || !isfinite(a->norm))
        return GV_ERROR(GV_ERR_INVALID, "%s: norm = %g must be positive", op, (double)a->norm);
    if (!(a->clip_eps >= 0.0f) || !isfinite(a->clip_eps))
        return GV_ERROR(GV_ERR_INVALID, "%s: clip_eps = %g must be >= 0", op, (double)a->clip_eps);
    if (!isfinite(a->beta))
        return GV_ERROR(GV_ERR_INVALID, "%s: beta = %g must be finite", op, (double)a->beta);
    return GV_OK;
}

/* ALGORITHMS.md §3: which side of the clip range rho is on (+1 above, -1 below, 0 inside). */
static inline int clip_side(float rho, double eps) {
    if ((double)rho > 1.0 + eps) return 1;
    if ((double)rho < 1.0 - eps) return -1;
    return 0;
}

/* The clipped branch is active (gradient 0, as PPO) when the clip binds in the max:
   A > 0 and rho > 1 + eps, or A < 0 and rho < 1 - eps. */
static inline int clip_active(float rho, float adv, double eps) {
    int side = clip_side(rho, eps);
    return (adv > 0.0f && side > 0) || (adv < 0.0f && side < 0);
}

gv_status gv_cpu_grpo_objective_forward(gv_ctx *c, float *loss, float *stats, float *ratio,
                                        const float *logp, const float *logp_old,
                                        const float *adv, const float *weight, const float *kl,
                                        const gv_grpo_args *a) {
    (void)c;
    GV_TRY(check_grpo("grpo_objective_forward", a));
    const double eps = (double)a->clip_eps;
    double policy = 0.0, kl_sum = 0.0, ratio_sum = 0.0, dlogp_sq = 0.0;
    double rmin = INFINITY, rmax = -INFINITY;
    int above = 0, below = 0;
    for (int u = 0; u < a->U; ++u) {
        double dl = (double)logp[u] - (double)logp_old[u];
        float rho = (float)exp(dl);
        ratio[u] = rho;
        double A = (double)adv[u], r = (double)rho;
        double clipped = r > 1.0 + eps ? 1.0 + eps : r < 1.0 - eps ? 1.0 - eps : r;
        double unclipped_term = -A * r, clipped_term = -A * clipped;
        double L = unclipped_term > clipped_term ? unclipped_term : clipped_term;
        policy += (double)weight[u] * L;
        if (kl) kl_sum += (double)kl[u];
        ratio_sum += r;
        dlogp_sq += dl * dl;
        if (r < rmin) rmin = r;
        if (r > rmax) rmax = r;
        int side = clip_side(rho, eps);
        above += side > 0;
        below += side < 0;
    }
    const double norm = (double)a->norm, U = (double)a->U;
    double total = policy / norm;
    if (kl) total += (double)a->beta * kl_sum / norm;
    loss[0] = (float)total;
    if (stats) {
        stats[GV_GRPO_STAT_RATIO_MEAN] = (float)(ratio_sum / U);
        stats[GV_GRPO_STAT_RATIO_MIN] = (float)rmin;
        stats[GV_GRPO_STAT_RATIO_MAX] = (float)rmax;
        stats[GV_GRPO_STAT_CLIP_ABOVE] = (float)((double)above / U);
        stats[GV_GRPO_STAT_CLIP_BELOW] = (float)((double)below / U);
        stats[GV_GRPO_STAT_APPROX_KL] = (float)(0.5 * dlogp_sq / U);
        stats[GV_GRPO_STAT_KL_MEAN] = (float)(kl_sum / U);
        stats[GV_GRPO_STAT_POLICY_LOSS] = (float)(policy / norm);
    }
    return GV_OK;
}

gv_status gv_cpu_grpo_objective_backward(gv_ctx *c, float *dlogp, float *dkl, const float *dloss,
                                         const float *ratio, const float *adv,
                                         const float *weight, const gv_grpo_args *a) {
    (void)c;
    GV_TRY(check_grpo("grpo_objective_backward", a));
    const double eps = (double)a->clip_eps, g = (double)dloss[0] / (double)a->norm;
    for (int u = 0; u < a->U; ++u) {
        if (dlogp && !clip_active(ratio[u], adv[u], eps)) {
            /* d(-A rho)/d logp = -A rho, since d rho / d logp = rho. */
            double d = g * (double)weight[u] * (-(double)adv[u] * (double)ratio[u]);
            dlogp[u] += (float)d;
        }
        if (dkl) dkl[u] += (float)(g * (double)a->beta);
    }
    return GV_OK;
}

static gv_status check_kl(const char *op, const float *var, const gv_kl_args *a) {
    if (a->U <= 0 || a->D <= 0)
        return GV_ERROR(GV_ERR_INVALID, "%s: U = %d, D = %lld must be positive", op, a->U,
                        (long long)a->D);
    if (a->kind != GV_KL_OP_SCALED && a->kind != GV_KL_OP_VELOCITY)
        return GV_ERROR(GV_ERR_INVALID, "%s: unknown kind %d", op, a->kind);
    if (a->kind == GV_KL_OP_SCALED && !var && !(a->var > 0.0f))
        return GV_ERROR(GV_ERR_INVALID, "%s: var = %g must be positive (no per-unit var given)",
                        op, (double)a->var);
    return GV_OK;
}

static inline double unit_var(const float *var, const gv_kl_args *a, int u) {
    return var ? (double)var[u] : (double)a->var;
}

/* d kl_u / d (mu_theta - mu_ref) per element, divided by the difference: 1/(D var) or 2/D. */
static inline double kl_coeff(const float *var, const gv_kl_args *a, int u) {
    if (a->kind == GV_KL_OP_VELOCITY) return 2.0 / (double)a->D;
    return 1.0 / ((double)a->D * unit_var(var, a, u));
}

gv_status gv_cpu_kl_forward(gv_ctx *c, float *kl, const float *mu_theta, const float *mu_ref,
                            const float *var, const gv_kl_args *a) {
    GV_TRY(check_kl("kl_forward", var, a));
    const int64_t D = a->D;
#pragma omp parallel for num_threads(c->threads) if ((int64_t)a->U * D >= GV_KL_PARALLEL_MIN)
    for (int u = 0; u < a->U; ++u) {
        double sumsq = 0.0;
        for (int64_t d = 0; d < D; ++d) {
            int64_t i = (int64_t)u * D + d;
            double diff = (double)mu_theta[i] - (double)mu_ref[i];
            sumsq += diff * diff;
        }
        double mean_sq = sumsq / (double)D;
        /* ALGORITHMS.md §3, KL: flow_grpo / gaussian divide by 2 var; velocity does not. */
        kl[u] = (float)(a->kind == GV_KL_OP_VELOCITY ? mean_sq
                                                     : mean_sq / (2.0 * unit_var(var, a, u)));
    }
    return GV_OK;
}

gv_status gv_cpu_kl_backward(gv_ctx *c, float *dmu_theta, const float *dkl, const float *mu_theta,
                             const float *mu_ref, const float *var, const gv_kl_args *a) {
    GV_TRY(check_kl("kl_backward", var, a));
    if (!dmu_theta) return GV_OK;
    const int64_t D = a->D;
#pragma omp parallel for num_threads(c->threads) if ((int64_t)a->U * D >= GV_KL_PARALLEL_MIN)
    for (int u = 0; u < a->U; ++u) {
        double g = (double)dkl[u] * kl_coeff(var, a, u);
        for (int64_t d = 0; d < D; ++d) {
            int64_t i = (int64_t)u * D + d;
            double diff = (double)mu_theta[i] - (double)mu_ref[i];
            dmu_theta[i] += (float)(g * diff);
        }
    }
    return GV_OK;
}
