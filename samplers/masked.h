/* The masked-diffusion sampler (ALGORITHMS.md §10, Ref: LLaDA `generate`; STYLE.md 11: it never
 * sees the network, only a logits callback).
 *
 * Canvas: N sequences of T tokens. Positions holding mask_id at the start are the COMPLETION
 * positions; every other position is PROMPT (given, never masked). For Sudoku the blanks are the
 * completion, in place; for text the prompt comes first and the completion is left masked. A
 * sample's completion positions, in position order, are split into `blocks` contiguous blocks of
 * ceil(m / blocks) (the last may be shorter); blocks are decoded one after another, each with
 * s = steps / blocks steps (steps % blocks == 0 is required). At global step k (block step j):
 *   1. logits for every row (CFG: one call with 2N rows, the second N with every prompt position
 *      masked; l = l_null + w (l_cond - l_null); w == 1 for all rows of a step -> one N-row call);
 *   2. for every still-masked position of the current block: token ~ softmax(l / τ_s) by inverse
 *      CDF of a Philox uniform; confidence = log p_τs(token) + τ_r · Gumbel (from a second uniform);
 *   3. commit the c = max(1, floor(r·m' + 0.5)) most confident of the block's m' masked positions
 *      (all of them at the block's last step; c ≤ m'), ties to the lower position; the others stay
 *      masked.
 * Knobs are read per sample and step from a buffer (gv_masked_knobs); NULL arrays take the
 * hand-made defaults r = 1/(s − j), τ_s = 1, τ_r = 1 − j/s, w = 1 (gv_masked_default_knob).
 * Optionally a per-step hook (gv_masked_knobs.step_fn, Co-GRPO's schedule policy) overrides them:
 * at step k, after the step's logits and before any draw, it gets each sample's pooled features of
 * the current state (fraction of completion positions still masked, mean max-probability at τ = 1
 * over the block's masked positions) and the step's knob rows, pre-filled from the buffer/defaults,
 * and may overwrite r, τ_s, τ_r (not w: the CFG rows are decided before the logits). Without a hook
 * the sampler is unchanged bit for bit.
 *
 * Record (gv_masked_record, all optional): for every position the global step that committed it
 * (-1 for prompt positions) and the log-prob of its committed token under that step's temperature;
 * per (sample, step) the number committed, the fraction of completion positions still masked at the
 * step's start and the mean max-probability of those positions (Co-GRPO's pooled features). The
 * canvas at the start of step k is recoverable from (final tokens, commit_step): position p shows
 * its token iff commit_step[p] < k — so a trainer can recompute log π for any step later (logp_old
 * with new weights, estimators of §10) without storing N·steps canvases.
 *
 * Randomness: Philox key (seed, stream), address = rng->addr with step = k and slot = rng->slot0 + n
 * (so a sample's numbers do not depend on the batch split), elements 2p (token) and 2p+1 (Gumbel).
 * Where it runs: steps 2-3 (and the hook's features) are ops of the table (masked_select,
 * masked_features; kernels/cpu/masked_kernels.c is their specification). gv_masked_sample_on runs
 * them on a backend context with the canvas, logits and records in that backend's memory: per step
 * the host uploads the step's knobs (N x 4 floats, host-known) and, only when a hook is set, reads
 * the hook's 2N features back; tokens and records cross once at the start and once at the end
 * (DESIGN.md §3, device-agnostic rule). gv_masked_sample is the same loop on a private CPU context
 * over host scratch, for callers whose logits callback works in host memory.
 * Deliberately not here: the model, rewards, estimators and the schedule policy (Co-GRPO). */
#ifndef GROVE_SAMPLERS_MASKED_H
#define GROVE_SAMPLERS_MASKED_H

#include <stddef.h>
#include <stdint.h>

#include "grove/backend.h"
#include "grove/rng.h"
#include "grove/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* logits (rows, T, V) of tokens (rows, T): host memory for gv_masked_sample, the context's backend
   memory for gv_masked_sample_on. */
typedef gv_status (*gv_masked_logits_fn)(void *user, int rows, const int32_t *tokens, float *logits);

enum { GV_KNOB_R = 0, GV_KNOB_TAU_S, GV_KNOB_TAU_R, GV_KNOB_W, GV_KNOB_COUNT };
extern const char *const gv_knob_names[GV_KNOB_COUNT]; /* "r", "tau_s", "tau_r", "w" */

typedef struct gv_masked_config gv_masked_config;

/* The per-step hook: at global step `step` (block step j of s), for the c->N samples of this call
   (samples c->slot0 .. c->slot0 + N - 1 of the caller's batch), masked_frac (N) and mean_conf (N) are
   the pooled features of the current state; knobs (N, GV_KNOB_COUNT) holds the step's knobs from
   the buffer/defaults and may be overwritten (except GV_KNOB_W). */
typedef gv_status (*gv_masked_step_fn)(void *user, const gv_masked_config *c, int step, int j, int s,
                                       const float *masked_frac, const float *mean_conf, float *knobs);

/* Per-sample, per-step schedule knobs, each (N, steps) host floats or NULL, else one constant for
   every sample and step where bit q of fixed_mask is set (fixed[q]), else the default; and the
   optional per-step hook (NULL = the buffer alone). */
typedef struct gv_masked_knobs {
    const float *v[GV_KNOB_COUNT];
    uint32_t fixed_mask;
    float fixed[GV_KNOB_COUNT];
    gv_masked_step_fn step_fn;
    void *step_user;
} gv_masked_knobs;

/* The hand-made default of knob `knob` at block step j of s (ALGORITHMS.md §10). */
float gv_masked_default_knob(int knob, int j, int s);

struct gv_masked_config {
    int N, T, V;
    int32_t mask_id;  /* in [0, V)                                    */
    int steps;        /* total steps, <= GV_MASKED_MAX_STEPS           */
    int blocks;       /* >= 1; steps % blocks == 0                     */
    uint32_t seed, stream;
    gv_rng_addr addr; /* base address; step and slot set per draw       */
    uint32_t slot0;   /* slot of row 0                                  */
};

#define GV_MASKED_MAX_STEPS (1 << GV_RNG_STEP_BITS)

/* Optional outputs, host memory; any pointer may be NULL. */
typedef struct gv_masked_record {
    int32_t *commit_step;  /* (N, T) global step that committed the position; -1 prompt */
    float *logp;           /* (N, T) log p_τs(token) at its commit step; 0 prompt       */
    int32_t *commits;      /* (N, steps) positions committed at the step                 */
    float *masked_frac;    /* (N, steps) completion fraction masked at the step's start  */
    float *mean_conf;      /* (N, steps) mean max-probability over the block's masked   */
    /* The commit order's randomness, for a policy log-prob that includes it (grove/mdm_grpo.h,
       gv_mdm_order). The step's draw is redone on the host by the op's own per-item code: equal
       bit for bit to the CPU op's; on a GPU backend a near-tie in exp/log may resolve otherwise
       (then a recorded draw or place can differ from the device's). */
    int32_t *drawn;        /* (N, steps, T) the token drawn at step k at every position of the
                              step's block still masked (committed or not), -1 elsewhere     */
    int32_t *commit_rank;  /* (N, T) a committed position's place in its step's order by
                              perturbed confidence (0 = first); -1 prompt                   */
    float *tau_r;          /* (N, steps) the Gumbel scale τ_r each step used                 */
} gv_masked_record;

/* Bytes of host scratch gv_masked_sample needs (with_cfg = 1: room for CFG's doubled batch). */
size_t gv_masked_scratch_bytes(const gv_masked_config *c, int with_cfg);

/* Decode `tokens` (N, T) [host] in place. The [MASK] id is never sampled (its logit is dropped).
   GV_ERR_INVALID naming the problem for a bad geometry, a knob out of range (r outside (0, 1],
   τ_s <= 0, τ_r < 0, w < 0) or too little scratch. logits_fn works in host memory. */
gv_status gv_masked_sample(const gv_masked_config *c, const gv_masked_knobs *knobs,
                           gv_masked_logits_fn logits_fn, void *user, int32_t *tokens,
                           gv_masked_record *rec, void *scratch, size_t scratch_bytes);

/* Bytes of backend memory (dev) and of host scratch gv_masked_sample_on needs. */
size_t gv_masked_device_bytes(const gv_masked_config *c, int with_cfg);
size_t gv_masked_host_bytes(const gv_masked_config *c, int with_cfg);

/* The same sampler on backend context ctx (bit-identical results to gv_masked_sample on the CPU
   backend): logits_fn reads tokens and writes logits in ctx's backend memory, dev (dev_bytes) is
   backend memory for the canvas, logits and records (reserved once by the caller: nothing is
   allocated here), scratch host memory. tokens and rec stay host memory. */
gv_status gv_masked_sample_on(gv_ctx *ctx, const gv_masked_config *c, const gv_masked_knobs *knobs,
                              gv_masked_logits_fn logits_fn, void *user, int32_t *tokens,
                              gv_masked_record *rec, void *dev, size_t dev_bytes, void *scratch,
                              size_t scratch_bytes);

#ifdef __cplusplus
}
#endif
#endif
