/* Sampler schedules: the shifted σ grid and the per-step mean/std coefficients of every noise
 * schedule of ALGORITHMS.md §2, all as mu = cx·x + cv·v (see schedule.h).
 *
 * Derivations (Δ = σ' − σ < 0, x̂0 = x − σ·v, x̂1 = x + (1−σ)·v):
 *   flow_grpo / constant / calibrated: mu = x·(1 + s²Δ/(2σ)) + v·(1 + s²(1−σ)/(2σ))·Δ,
 *       std = s·sqrt(−Δ), s from the schedule.
 *   cps: mu = (1−σ')·x̂0 + c1·x̂1 with c1 = sqrt(σ'² − σ_n²) = σ'·cos(aπ/2), σ_n = σ'·sin(aπ/2)
 *       => cx = (1−σ') + c1, cv = −(1−σ')·σ + c1·(1−σ); std = σ_n; log-density kind cps.
 *   exact: mu = x + Δ·v − ½Σ·(x + (1−σ)·v)/σ => cx = 1 − Σ/(2σ), cv = Δ − Σ(1−σ)/(2σ),
 *       std = sqrt(Σ).
 * Deliberately not here: tensors, RNG and the step loop (sampler.c). */
#include "schedule.h"

#include <math.h>

gv_status gv_schedule_sigmas(int N, double shift, float *sigmas) {
    if (N < 1 || !(shift > 0.0))
        return GV_ERROR(GV_ERR_INVALID, "sampler schedule: steps = %d must be >= 1 and shift = %g "
                        "positive", N, shift);
    for (int i = 0; i <= N; ++i) {
        double u = 1.0 - (double)i / (double)N; /* ALGORITHMS.md §1, shifted schedule */
        sigmas[i] = (float)(shift * u / (1.0 + (shift - 1.0) * u));
    }
    return GV_OK;
}

gv_status gv_schedule_completion_sigmas(const float *sigmas, int N, int i, int n, float *out,
                                        int *n_steps) {
    if (N < 1 || i < 0 || i >= N || n == 0 || n < GV_DENSE_COMPLETION_ALL)
        return GV_ERROR(GV_ERR_INVALID, "dense completion: step %d of %d, completion_steps %d "
                        "(all = -1, or n >= 1)", i, N, n);
    if (n == GV_DENSE_COMPLETION_ALL) { /* ALGORITHMS.md §5: the remaining steps of the schedule */
        for (int j = i; j <= N; ++j) out[j - i] = sigmas[j];
        *n_steps = N - i;
        return GV_OK;
    }
    for (int j = 0; j <= n; ++j) /* §5: n Euler steps on σ_i·(1 − j/n) */
        out[j] = (float)((double)sigmas[i] * (1.0 - (double)j / (double)n));
    *n_steps = n;
    return GV_OK;
}

/* ALGORITHMS.md §2, flow_grpo: s = a·sqrt(σ / (1 − σ̃)), σ̃ = σ_1 when σ = 1, else σ. */
static double flow_grpo_s(double a, double sigma, double sigma1) {
    double tilde = sigma >= 1.0 ? sigma1 : sigma;
    return a * sqrt(sigma / (1.0 - tilde));
}

/* ALGORITHMS.md §2, exact: F(t) = −t − ln(1−t). */
static double exact_F(double t) { return -t - log1p(-t); }

/* ALGORITHMS.md §2, exact: Σ = a²·[F(min(σ,h)) − F(min(σ',h)) + C·(max(σ,h) − max(σ',h))]. */
static double exact_variance(double a, double sigma, double sigma_next) {
    const double h = 1.0 - GV_EXACT_DELTA, C = (1.0 - GV_EXACT_DELTA) / GV_EXACT_DELTA;
    double integral = exact_F(fmin(sigma, h)) - exact_F(fmin(sigma_next, h)) +
                      C * (fmax(sigma, h) - fmax(sigma_next, h));
    return a * a * integral;
}

/* The ODE fast path: x' = x + Δ·v. */
static void ode_coeffs(double delta, gv_step_args *out, int *is_sde) {
    out->cx = 1.0f;
    out->cv = (float)delta;
    out->std = 0.0f;
    out->delta = (float)delta;
    out->logp_kind = GV_LOGP_GAUSSIAN;
    *is_sde = 0;
}

/* The flow_grpo mean with scale s (flow_grpo, constant, calibrated). */
static void sde_mean_coeffs(double s, double sigma, double delta, double *cx, double *cv) {
    double s2 = s * s;
    *cx = 1.0 + s2 * delta / (2.0 * sigma);
    *cv = (1.0 + s2 * (1.0 - sigma) / (2.0 * sigma)) * delta;
}

static gv_status check_spec(const gv_noise_spec *spec, int N, int i) {
    if ((unsigned)spec->kind > (unsigned)GV_NOISE_ODE)
        return GV_ERROR(GV_ERR_INVALID, "sampler noise kind %d unknown", (int)spec->kind);
    if (N < 1 || i < 0 || i >= N)
        return GV_ERROR(GV_ERR_INVALID, "sampler step %d out of range [0, %d)", i, N);
    if (!(spec->level >= 0.0) || !isfinite(spec->level))
        return GV_ERROR(GV_ERR_INVALID, "sampler noise level %g must be finite and >= 0",
                        spec->level);
    if (spec->kind == GV_NOISE_CPS && spec->level > 1.0)
        return GV_ERROR(GV_ERR_INVALID, "sampler noise cps: level a = %g must be <= 1 "
                        "(sigma_n = sigma' sin(a pi/2))", spec->level);
    if (spec->kind == GV_NOISE_CALIBRATED && i < N - 1) {
        if (!spec->psi || i >= spec->n_psi)
            return GV_ERROR(GV_ERR_INVALID, "sampler noise calibrated: no psi(%d) (table of %d)",
                            i, spec->psi ? spec->n_psi : 0);
        if (!(spec->psi[i] >= 0.0f) || !isfinite(spec->psi[i]))
            return GV_ERROR(GV_ERR_INVALID, "sampler noise calibrated: psi(%d) = %g must be "
                            "finite and >= 0", i, (double)spec->psi[i]);
    }
    return GV_OK;
}

gv_status gv_step_coeffs(const gv_noise_spec *spec, const float *sigmas, int N, int i,
                         gv_step_args *out, int *is_sde) {
    GV_TRY(check_spec(spec, N, i));
    double sigma = sigmas[i], sigma_next = sigmas[i + 1], delta = sigma_next - sigma;
    if (!(delta < 0.0) || !(sigma > 0.0) || sigma > 1.0)
        return GV_ERROR(GV_ERR_INVALID, "sampler step %d: sigma %g -> %g is not a decreasing "
                        "step in (0, 1]", i, sigma, sigma_next);
    /* ALGORITHMS.md §1: the last step is always ODE (psi has no entry for it); §2: noise level 0
       is the ODE fast path. */
    double level = i == N - 1                        ? 0.0
                   : spec->kind == GV_NOISE_CALIBRATED ? (double)spec->psi[i]
                                                       : spec->level;
    if (i == N - 1 || spec->kind == GV_NOISE_ODE || level == 0.0) {
        ode_coeffs(delta, out, is_sde);
        return GV_OK;
    }
    double cx, cv, std;
    int kind = GV_LOGP_GAUSSIAN;
    switch (spec->kind) {
    case GV_NOISE_FLOW_GRPO: /* ALGORITHMS.md §2, flow_grpo */
    case GV_NOISE_CONSTANT:  /* §2, constant: s = η */
    case GV_NOISE_CALIBRATED: { /* §2, calibrated: s = ψ(i) */
        double s = spec->kind == GV_NOISE_FLOW_GRPO ? flow_grpo_s(level, sigma, sigmas[1]) : level;
        sde_mean_coeffs(s, sigma, delta, &cx, &cv);
        std = s * sqrt(-delta);
        break;
    }
    case GV_NOISE_CPS: { /* ALGORITHMS.md §2, cps */
        const double half_pi = 1.57079632679489661923;
        double sigma_n = sigma_next * sin(level * half_pi);
        double c1 = sigma_next * cos(level * half_pi); /* sqrt(σ'² − σ_n²) */
        cx = (1.0 - sigma_next) + c1;
        cv = -(1.0 - sigma_next) * sigma + c1 * (1.0 - sigma);
        std = sigma_n;
        kind = GV_LOGP_CPS;
        break;
    }
    case GV_NOISE_EXACT: { /* ALGORITHMS.md §2, exact (first step: the flow_grpo variance) */
        double var;
        if (sigma >= 1.0) {
            double s = flow_grpo_s(level, sigma, sigmas[1]);
            var = s * s * -delta;
        } else {
            var = exact_variance(level, sigma, sigma_next);
        }
        cx = 1.0 - var / (2.0 * sigma);
        cv = delta - var * (1.0 - sigma) / (2.0 * sigma);
        std = sqrt(var);
        break;
    }
    default:
        return GV_ERROR(GV_ERR_INTERNAL, "sampler noise kind %d has no coefficients",
                        (int)spec->kind);
    }
    if (!(std > 0.0) || !isfinite(std) || !isfinite(cx) || !isfinite(cv))
        return GV_ERROR(GV_ERR_NUMERIC, "sampler step %d: std = %g, cx = %g, cv = %g", i, std,
                        cx, cv);
    out->cx = (float)cx;
    out->cv = (float)cv;
    out->std = (float)std;
    out->delta = (float)delta;
    out->logp_kind = kind;
    *is_sde = 1;
    return GV_OK;
}
