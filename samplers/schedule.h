/* Host-side sampler schedules (ALGORITHMS.md §1–2): the shifted σ grid and, behind one interface,
 * the per-step coefficients of every noise schedule (ode, flow_grpo, constant, calibrated, cps,
 * exact).
 *
 * Every stochastic schedule of §2 has a mean linear in x and v, mu = cx·x + cv·v, a noise std and a
 * log-density kind; gv_step_coeffs turns (schedule, σ grid, step) into those scalars (a
 * gv_step_args for the gaussian_step_forward / euler_step ops). The arithmetic is double, rounded to
 * float once. Pure math on host scalars: no tensors, no backend, no RNG (samplers/sampler.c runs
 * the steps). */
#ifndef GROVE_SAMPLERS_SCHEDULE_H
#define GROVE_SAMPLERS_SCHEDULE_H

#include "grove/ops.h"
#include "grove/run_config.h" /* gv_noise_kind */
#include "grove/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Capped integrand of the `exact` schedule (ALGORITHMS.md §2): δ and C = (1−δ)/δ. */
#define GV_EXACT_DELTA 3e-3

typedef struct gv_noise_spec {
    gv_noise_kind kind;
    double level;     /* a (flow_grpo, cps, exact) or η (constant); 0 = the ODE fast path.
                         Unused by ode and calibrated.                                       */
    const float *psi; /* calibrated: ψ(i) for steps i < n_psi (host memory); else NULL        */
    int n_psi;
} gv_noise_spec;

/* sigmas (N+1) [host] = ALGORITHMS.md §1's shifted schedule: u_i = 1 − i/N,
   σ_i = S·u_i / (1 + (S−1)·u_i); σ_0 = 1, σ_N = 0. GV_ERR_INVALID when N < 1 or S <= 0. */
gv_status gv_schedule_sigmas(int N, double shift, float *sigmas);

/* DenseGRPO's ODE completion of x_i (ALGORITHMS.md §5, dense.completion_steps): the σ grid from
   σ_i down to 0 into out (room for N + 1, or n + 1): n = GV_DENSE_COMPLETION_ALL gives the
   remaining schedule σ_i..σ_N (N − i Euler steps; for i = N − 1 that is the rollout's own last
   step, so R_{N−1} = R_N); n > 0 gives σ_i·(1 − j/n), j = 0..n. *n_steps = the Euler steps.
   GV_ERR_INVALID for i outside 0..N−1 or n = 0 / < -1. */
#define GV_DENSE_COMPLETION_ALL (-1)
gv_status gv_schedule_completion_sigmas(const float *sigmas, int N, int i, int n, float *out,
                                        int *n_steps);

/* Coefficients of step i (σ_i -> σ_{i+1}) of an N-step grid `sigmas` (N+1) under `spec`:
   fills out->cx, cv, std, delta, logp_kind (N and D are left for the caller) and *is_sde.
   The last step N−1 and noise level 0 are the ODE fast path: is_sde = 0, cx = 1, cv = delta,
   std = 0 (run euler_step). GV_ERR_INVALID names a bad step, level, grid or ψ table. */
gv_status gv_step_coeffs(const gv_noise_spec *spec, const float *sigmas, int N, int i,
                         gv_step_args *out, int *is_sde);

#ifdef __cplusplus
}
#endif
#endif
