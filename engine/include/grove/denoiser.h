/* The UNet denoiser behind the sampler's callback, and whole-batch generation (DESIGN.md §3, §5;
 * ALGORITHMS.md §1; STYLE.md 11: the sampler sees only gv_denoise_fn, this file holds the network).
 *
 * A gv_denoiser owns the fixed-shape staging of one UNet forward: EVERY forward it runs has the same
 * row count R = micro_batch (guidance w == 1) or 2·micro_batch (w != 1: rows [0, mb) conditional,
 * rows [mb, 2·mb) the null prompt [null_id, -1, ...], one batched forward, then cfg_combine:
 * v = v_null + w·(v_cond − v_null)). A callback over n samples walks them in chunks of micro_batch;
 * the tail chunk is padded with zero latents (and null-prompt ids) whose outputs are ignored, so a
 * sample's velocity never depends on n or its neighbours. σ is broadcast per row through a device
 * buffer filled from the host. The activation arena is sized by a measure pass at creation; nothing
 * is allocated per call.
 *
 * gv_generate draws x_T from Philox (stream `stream`, purpose GV_RNG_PURPOSE_LATENT, slot = sample
 * index, element = position in the image: sample i's x_T depends on (seed, stream, iteration, i)
 * only), runs gv_sample_trajectory (step noise at purpose GV_RNG_PURPOSE_STEP_NOISE, element
 * i·D + d, also split-independent), and returns the final x and p = clamp((x + 1)/2, 0, 1).
 *
 * Device-agnostic: tensors are touched by ops and explicit backend copies only. Deliberately not
 * here: rollout trees and log-prob storage for training (engine/train), checkpoint loading
 * (image_model.h), scoring (evaluate.h). */
#ifndef GROVE_DENOISER_H
#define GROVE_DENOISER_H

#include <stdint.h>

#include "grove/arena.h"
#include "grove/backend.h"
#include "models/unet/unet.h"
#include "samplers/sampler.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gv_denoiser_options {
    int micro_batch; /* samples per forward (>= 1); the forward has 2x rows with CFG     */
    float guidance;  /* CFG scale w; 1 = no CFG (one forward, no null rows)               */
    int null_id;     /* the <null> word id (image_model.h: m->null_id)                    */
} gv_denoiser_options;

typedef struct gv_denoiser {
    const gv_unet *unet;
    const float *theta;       /* flat parameter buffer (params.values, params.ema, ...) */
    const gv_backend *backend;
    gv_denoiser_options opt;
    int rows;                 /* R: rows of every forward (mb or 2 mb)                  */
    int L;                    /* ids per prompt row                                     */
    int64_t D;                /* elements per sample, C·H·W                             */
    /* bound batch (gv_denoiser_bind) */
    int n;                    /* samples the callback is called with                    */
    const int32_t *prompt_ids;/* host (n, L), -1 padded; referenced, not copied         */
    /* staging, backend memory */
    float *x_stage;           /* (R, D)                                                 */
    float *v_stage;           /* (R, D)                                                 */
    float *sigma_stage;       /* (R)                                                    */
    int32_t *ids_stage;       /* (R, L)                                                 */
    /* host staging */
    float *sigma_host;        /* (R)                                                    */
    int32_t *ids_host;        /* (R, L)                                                 */
    gv_arena arena;           /* activations of one forward, sized by a measure pass    */
    gv_unet_saved saved;
    int64_t nfe;              /* denoiser rows evaluated for real samples (CFG pair = 2)  */
    /* gv_generate's sampler scratch (backend memory), grow-only: a periodic eval allocates once */
    float *gen_v, *gen_eps;   /* (n, D) each                                              */
    size_t gen_bytes;
} gv_denoiser;

/* Build the staging for `unet` with parameters `theta` (both must outlive the denoiser) on
   ctx->backend, sizing the arena with a measure pass of one R-row forward. */
gv_status gv_denoiser_create(gv_denoiser *d, gv_ctx *c, const gv_unet *unet, const float *theta,
                             const gv_denoiser_options *opt);
void gv_denoiser_free(gv_denoiser *d);

/* The next callbacks are over n samples with prompt_ids (n, L) [host, kept by reference]. */
gv_status gv_denoiser_bind(gv_denoiser *d, int n, const int32_t *prompt_ids);

/* gv_denoise_fn over the bound samples: v_out (n, D) = velocity at (x (n, D), sigma), with CFG when
   guidance != 1. `user` is the gv_denoiser. Adds to d->nfe. */
gv_status gv_denoiser_call(void *user, gv_ctx *c, const float *x, float sigma, float *v_out);

typedef struct gv_generate_options {
    int steps;            /* N >= 1                                                     */
    double shift;         /* S > 0 (ALGORITHMS.md §1)                                  */
    gv_noise_spec noise;  /* {GV_NOISE_ODE} for the deterministic Euler sampler         */
    uint32_t seed;
    uint32_t stream;      /* GV_RNG_STREAM_EVAL for eval / sample, SAMPLER in rollouts  */
    uint32_t iteration;   /* the RNG address's iteration field                          */
    int latents_given;    /* 1: x already holds x_T (the caller drew it, e.g. the gallery:
                             one x_T per seed for every model); 0: drawn as above         */
} gv_generate_options;

/* The defaults: ODE, 20 steps, shift 3, seed 0, stream GV_RNG_STREAM_EVAL, iteration 0, x_T drawn. */
gv_generate_options gv_generate_defaults(void);

/* n samples (n <= 2^16, the RNG slot field) for prompt_ids (n, L) [host]:
     x      (n, D) [backend]: the final sample x_N (required);
     p_host (n, D) [host] or NULL: clamp((x + 1)/2, 0, 1);
     nfe    or NULL: denoiser rows evaluated by this call (CFG pair = 2, padding excluded).
   With o->latents_given, x holds x_T on entry and no latent is drawn.
   Scratch (v, and eps for SDE schedules) is allocated for the call and freed before returning. */
gv_status gv_generate(gv_denoiser *d, gv_ctx *c, int n, const int32_t *prompt_ids,
                      const gv_generate_options *o, float *x, float *p_host, int64_t *nfe);

#ifdef __cplusplus
}
#endif
#endif
