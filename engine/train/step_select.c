/* Which sampler steps are SDE and which are trained, per iteration and per sample (grpo.h;
 * ALGORITHMS.md §3 "Trained steps", §4 "Noise-aware weight", §7 windows).
 *
 *   SDE steps   the schedule's stochastic steps (0..N−2 unless the noise level is 0), restricted
 *               to the window [l, l+w) when sampler.window.kind != none; every other step is the
 *               ODE fast path (no log-prob, never trained). l: fixed = window.start; random =
 *               uniform over 0..N−1−w from Philox (seed, TRAIN, iteration, step 1, STEP_CHOICE);
 *               progressive = (start + floor(k / every)) mod (N − w), i.e. l += 1 every τ
 *               iterations and back to 0 once l + w > N − 1. All three are functions of the
 *               iteration number, so a resumed run sees the same windows (nothing is stored).
 *   trained     T = floor(f·n_sde + 1e−9) of the SDE steps with f = train.random_fraction when
 *               > 0, else train.timestep_fraction: the first T in order (timestep_fraction), or a
 *               random T per sample (DanceGRPO) from a partial Fisher–Yates at (seed, TRAIN,
 *               iteration, slot, node = the chain's group index, step 0, STEP_CHOICE), ascending.
 *   weights     uniform 1, or noise-aware ω_i = std_i / mean_{j∈T} std_j over the sample's
 *               trained steps (mean 1 per sample, hence over all units).
 * Host arithmetic only. Deliberately not here: the sampler loop (rollout.c), the objective
 * (grpo_train.c), the config checks of the window (grpo_setup.c check_supported). */
#include <math.h>
#include <string.h>

#include "grove/credit.h"
#include "grove/grpo.h"
#include "grove/rng.h"

static int schedule_sde(const gv_noise_spec *noise, const float *sigmas, int N, int i) {
    gv_step_args a;
    int sde = 0;
    if (gv_step_coeffs(noise, sigmas, N, i, &a, &sde) != GV_OK) {
        gv_clear_error();
        return 0;
    }
    return sde;
}

gv_status gv_grpo_window_start(const gv_run_config *cfg, uint32_t seed, uint32_t iteration,
                               int *start) {
    const gv_window_section *w = &cfg->sampler.window;
    const int N = cfg->sampler.steps, positions = N - w->size; /* l in 0..N−1−w */
    *start = -1;
    if (w->kind == GV_WINDOW_NONE) return GV_OK;
    if (positions < 1 || w->start >= positions)
        return GV_ERROR(GV_ERR_CONFIG, "sampler.window: size %d from start %d does not fit the "
                        "%d stochastic steps 0..%d (needs start + size <= N - 1)", w->size,
                        w->start, N - 1, N - 2);
    switch (w->kind) {
    case GV_WINDOW_FIXED:
        *start = w->start;
        return GV_OK;
    case GV_WINDOW_PROGRESSIVE: /* ALGORITHMS.md §7: l += 1 every τ, wrapping to 0 */
        *start = (int)(((int64_t)w->start + iteration / (uint32_t)w->every) % positions);
        return GV_OK;
    case GV_WINDOW_RANDOM: { /* ALGORITHMS.md §7: a uniform l each iteration */
        uint32_t key[2], hi[3];
        gv_rng_key(seed, GV_RNG_STREAM_TRAIN, key);
        gv_rng_addr addr = {.iteration = iteration, .step = 1, .purpose = GV_RNG_PURPOSE_STEP_CHOICE};
        GV_TRY(gv_rng_addr_pack(&addr, hi));
        *start = (int)(gv_rng_u32_at(key, hi, 0) % (uint32_t)positions);
        return GV_OK;
    }
    default:
        return GV_ERROR(GV_ERR_CONFIG, "sampler.window.kind %d unknown", w->kind);
    }
}

int gv_grpo_sde_step_count(const gv_run_config *cfg) {
    const gv_noise_spec noise = {.kind = (gv_noise_kind)cfg->sampler.noise.kind,
                                 .level = cfg->sampler.noise.level};
    float sigmas[GV_SAMPLER_MAX_STEPS + 1];
    const int N = cfg->sampler.steps;
    if (N < 2 || N > GV_SAMPLER_MAX_STEPS || gv_schedule_sigmas(N, cfg->sampler.shift, sigmas) != GV_OK) {
        gv_clear_error();
        return 0;
    }
    int n = 0;
    if (noise.kind == GV_NOISE_CALIBRATED) /* ψ(i) > 0 always (clamped >= 0.05 ψ0 > 0) */
        n = noise.level > 0.0 ? N - 1 : 0;
    else
        for (int i = 0; i < N; ++i) n += schedule_sde(&noise, sigmas, N, i);
    if (cfg->sampler.window.kind != GV_WINDOW_NONE && n > 0)
        n = cfg->sampler.window.size < n ? cfg->sampler.window.size : n;
    return n;
}

int gv_grpo_trained_step_count(const gv_run_config *cfg) {
    const double f = cfg->train.random_fraction > 0.0 ? cfg->train.random_fraction
                                                      : cfg->train.timestep_fraction;
    /* ALGORITHMS.md §3 Trained steps: floor(f·(N−1) + 1e−9), over the window's steps with one */
    return (int)floor(f * gv_grpo_sde_step_count(cfg) + 1e-9);
}

gv_status gv_grpo_step_plan_make(const gv_run_config *cfg, const gv_noise_spec *noise,
                                 const float *sigmas, uint32_t seed, uint32_t iteration,
                                 gv_grpo_step_plan *out) {
    memset(out, 0, sizeof *out);
    const int N = cfg->sampler.steps;
    GV_TRY(gv_grpo_window_start(cfg, seed, iteration, &out->window_start));
    const int l = out->window_start, w = cfg->sampler.window.size;
    for (int i = 0; i < N; ++i) {
        int sde = schedule_sde(noise, sigmas, N, i);
        if (l >= 0 && (i < l || i >= l + w)) sde = 0; /* ALGORITHMS.md §7: ODE outside the window */
        out->sde[i] = (uint8_t)sde;
        if (sde) out->sde_list[out->n_sde++] = i;
    }
    return GV_OK;
}

gv_status gv_grpo_step_coeffs(const gv_grpo_job *j, int i, gv_step_args *a, int *is_sde) {
    if (j->step_plan.sde[i]) return gv_step_coeffs(&j->noise, j->sigmas, j->N, i, a, is_sde);
    const gv_noise_spec ode = {.kind = GV_NOISE_ODE};
    return gv_step_coeffs(&ode, j->sigmas, j->N, i, a, is_sde);
}

gv_status gv_grpo_trained_steps(const gv_run_config *cfg, const gv_grpo_step_plan *plan,
                                uint32_t seed, uint32_t iteration, int slot, int member, int T,
                                int32_t *steps) {
    if (T > plan->n_sde || T < 0)
        return GV_ERROR(GV_ERR_INTERNAL, "trained steps: %d of %d SDE steps", T, plan->n_sde);
    int32_t pool[GV_SAMPLER_MAX_STEPS];
    memcpy(pool, plan->sde_list, (size_t)plan->n_sde * sizeof(int32_t));
    if (cfg->train.random_fraction > 0.0) { /* DanceGRPO: a random subset per sample */
        uint32_t key[2], hi[3];
        gv_rng_key(seed, GV_RNG_STREAM_TRAIN, key);
        gv_rng_addr addr = {.iteration = iteration, .slot = (uint32_t)slot, .node = (uint32_t)member,
                            .purpose = GV_RNG_PURPOSE_STEP_CHOICE};
        GV_TRY(gv_rng_addr_pack(&addr, hi));
        const int n = plan->n_sde;
        for (int k = 0; k < T; ++k) { /* partial Fisher–Yates: pool[0..T) is the choice */
            const int r = k + (int)(gv_rng_u32_at(key, hi, (uint64_t)k) % (uint32_t)(n - k));
            const int32_t t = pool[k];
            pool[k] = pool[r];
            pool[r] = t;
        }
        for (int a = 1; a < T; ++a) /* ascending (insertion sort, T <= 255) */
            for (int b = a; b > 0 && pool[b - 1] > pool[b]; --b) {
                const int32_t t = pool[b];
                pool[b] = pool[b - 1];
                pool[b - 1] = t;
            }
    }
    memcpy(steps, pool, (size_t)T * sizeof(int32_t));
    return GV_OK;
}

gv_status gv_grpo_step_weights(const gv_grpo_job *j, const int32_t *steps, int T, float *w) {
    if (j->cfg->train.step_weight != GV_STEP_WEIGHT_NOISE_AWARE) {
        for (int k = 0; k < T; ++k) w[k] = 1.0f;
        return GV_OK;
    }
    /* ALGORITHMS.md §4: ω_i = std_i / mean_{j∈T} std_j — the one rule of credit.h, over the
       sample's (distinct, ascending) trained steps */
    float std[GV_SAMPLER_MAX_STEPS] = {0}, all[GV_SAMPLER_MAX_STEPS];
    uint8_t use[GV_SAMPLER_MAX_STEPS] = {0};
    for (int k = 0; k < T; ++k) {
        gv_step_args a;
        int sde = 0;
        GV_TRY(gv_grpo_step_coeffs(j, steps[k], &a, &sde));
        std[steps[k]] = a.std;
        use[steps[k]] = 1;
    }
    GV_TRY(gv_credit_noise_aware_weights(std, use, j->N, all));
    for (int k = 0; k < T; ++k) w[k] = all[steps[k]];
    return GV_OK;
}
