/* The trajectory sampler (ALGORITHMS.md §1–2; STYLE.md 11: samplers never see the network).
 *
 * gv_sample_trajectory runs N steps of the shifted σ grid from x_T to x_N: at each step it asks a
 * denoise callback for the velocity, then takes the schedule's step — an SDE step (Philox noise,
 * gaussian_step_forward, per-sample log-prob) or the ODE fast path (euler_step; always the last
 * step, and every step at noise level 0). Device-agnostic (DESIGN.md §3): tensor memory is touched
 * only by ops; every buffer comes from the caller. Deliberately not here: trees, CFG batching and
 * trajectory storage for training (the rollout code around this loop), and the schedule math
 * (schedule.h). */
#ifndef GROVE_SAMPLERS_SAMPLER_H
#define GROVE_SAMPLERS_SAMPLER_H

#include <stdint.h>

#include "grove/backend.h"
#include "grove/rng.h"
#include "schedule.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The network, as the sampler sees it: v_out (n_samples, D) = velocity at (x (n_samples, D), σ).
   Both pointers are backend memory. */
typedef gv_status (*gv_denoise_fn)(void *user, gv_ctx *c, const float *x, float sigma,
                                   float *v_out);

/* Where step noise comes from: Philox key (seed, stream) and a base address whose `step` field the
   sampler sets to the step index. Element e = (sample_offset + sample)·D + d, so a sample's noise
   does not depend on how a batch is split (pass the index of x's first sample). */
typedef struct gv_sampler_rng {
    uint32_t seed, stream;  /* key (rng.h); stream normally GV_RNG_STREAM_SAMPLER        */
    gv_rng_addr addr;       /* purpose normally GV_RNG_PURPOSE_STEP_NOISE; step ignored  */
    uint64_t sample_offset; /* index of x's first sample within the address             */
} gv_sampler_rng;

/* Caller-owned backend buffers, each (n_samples, D). eps may be NULL when no step is an SDE step. */
typedef struct gv_sampler_scratch {
    float *v;
    float *eps;
} gv_sampler_scratch;

/* The largest number of steps (the RNG address's step field, rng.h). */
#define GV_SAMPLER_MAX_STEPS (1 << GV_RNG_STEP_BITS)

/* Samples n_samples trajectories of D elements each.
   x (n_samples, D) [backend]: in x_T, out x_N.
   logp_per_step (steps, n_samples) [backend] or NULL: row i = the per-sample mean log-prob of step
   i's transition (ALGORITHMS.md §2), 0 for ODE steps.
   GV_ERR_INVALID for a bad geometry, schedule or missing scratch; the callback's and ops' errors
   propagate. */
gv_status gv_sample_trajectory(gv_ctx *c, const gv_noise_spec *noise, int steps, double shift,
                               gv_denoise_fn denoise, void *user, int n_samples, int64_t D,
                               float *x, float *logp_per_step, const gv_sampler_rng *rng,
                               const gv_sampler_scratch *scratch);

#ifdef __cplusplus
}
#endif
#endif
