/* The trajectory sampler loop (see sampler.h): σ grid and per-step coefficients from schedule.c,
 * velocity from the denoise callback, the step itself from the op table. The host handles only
 * scalars (σ_i, cx, cv, std); tensors are touched by ops alone (DESIGN.md §3, device-agnostic). */
#include "sampler.h"

/* Fills eps (n_samples·D) with the step-i normals: element (sample_offset + sample)·D + d of the
   address with step = i (DESIGN.md §3, RNG). */
static gv_status fill_step_noise(gv_ctx *c, const gv_sampler_rng *rng, int i, int n_samples,
                                 int64_t D, float *eps) {
    gv_rng_addr addr = rng->addr;
    addr.step = (uint32_t)i;
    gv_philox_args pa;
    GV_TRY(gv_rng_args(rng->seed, rng->stream, &addr, rng->sample_offset * (uint64_t)D,
                       (int64_t)n_samples * D, &pa));
    return c->backend->ops->philox_normal_fill(c, eps, &pa);
}

gv_status gv_sample_trajectory(gv_ctx *c, const gv_noise_spec *noise, int steps, double shift,
                               gv_denoise_fn denoise, void *user, int n_samples, int64_t D,
                               float *x, float *logp_per_step, const gv_sampler_rng *rng,
                               const gv_sampler_scratch *scratch) {
    if (steps < 1 || steps > GV_SAMPLER_MAX_STEPS || n_samples < 1 || D < 1)
        return GV_ERROR(GV_ERR_INVALID, "sampler: steps = %d (1..%d), samples = %d, D = %lld "
                        "must be positive", steps, GV_SAMPLER_MAX_STEPS, n_samples, (long long)D);
    if (!denoise || !x || !scratch || !scratch->v)
        return GV_ERROR(GV_ERR_INVALID, "sampler: denoise callback, x and scratch->v are required");
    float sigmas[GV_SAMPLER_MAX_STEPS + 1];
    GV_TRY(gv_schedule_sigmas(steps, shift, sigmas));
    const gv_ops *ops = c->backend->ops;
    for (int i = 0; i < steps; ++i) {
        gv_step_args a;
        int is_sde = 0;
        GV_TRY(gv_step_coeffs(noise, sigmas, steps, i, &a, &is_sde));
        a.N = n_samples;
        a.D = D;
        float *logp = logp_per_step ? logp_per_step + (int64_t)i * n_samples : NULL;
        GV_TRY(denoise(user, c, x, sigmas[i], scratch->v));
        if (is_sde) {
            if (!scratch->eps || !rng)
                return GV_ERROR(GV_ERR_INVALID, "sampler: step %d is stochastic but scratch->eps "
                                "or the RNG is missing", i);
            GV_TRY(fill_step_noise(c, rng, i, n_samples, D, scratch->eps));
            /* ALGORITHMS.md §2: x' = mu + std·eps, log-prob of x' (x_next aliases x) */
            GV_TRY(ops->gaussian_step_forward(c, x, logp, x, scratch->v, scratch->eps, &a));
        } else {
            /* ALGORITHMS.md §2: the ODE fast path x' = x + Δ·v, no log-prob */
            GV_TRY(ops->euler_step(c, x, x, scratch->v, &a));
            if (logp) GV_TRY(c->backend->memset_zero(logp, (size_t)n_samples * sizeof(float)));
        }
    }
    return GV_OK;
}
