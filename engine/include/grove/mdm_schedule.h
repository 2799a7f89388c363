/* Co-GRPO's schedule policy π_φ (ALGORITHMS.md §10, Ref: Co-GRPO; AdaNAT's parameterization):
 * a Gaussian over the task's learned sampler knobs (Sudoku: r, τ_s, τ_r), plugged into the masked
 * sampler through its per-step hook (samplers/masked.h gv_masked_step_fn).
 *
 * At global step k (block step j of s) for sample n: features x = (sinusoidal embedding of j/s,
 * 4 frequencies -> 8 values; fraction of completion still masked; mean max-probability), mean
 * μ_φ(x) = W2 tanh(W1 x + b1) + b2 (K outputs; W2, b2 zero-initialized, so the initial mean action
 * is exactly 0), action a_q ~ N(μ_q, σ²), knob_q = squash(a_q + bias_q(j)) with bias_q(j) = the
 * inverse squash of the hand-made default (sigmoid for r, capped to [1e-3, 1 - 1e-3]; softplus for
 * τ_s, τ_r, w). So a zero action gives the defaults exactly. A knob has no action where it has no
 * effect: r and τ_r at a block's last step (everything is committed there); τ_s acts at every step.
 * log π_φ(a_k) = Σ_q Gaussian log-density over the step's actions (0 when the step has none).
 * σ decays linearly from 0.6 to 0.1 over the decay iterations (gv_schedule_sigma).
 *
 * The policy records, per (sample, step) of one rollout, the features, the actions and log π_old,
 * so the φ phase can recompute log π_φ with new weights: gv_schedule_update takes one AdamW step
 * (grove/optim.h over φ's gv_params table on the CPU backend) on the clipped objective of §3 with the
 * step as the unit (mean over acted units of −min(ρA, clip(ρ, 1±ε)A)), the advantage of the unit's
 * sample. Randomness: Philox (seed, SAMPLER) at (iteration, slot, step), purpose SCHEDULE, element
 * = knob index — independent of the batch split.
 * Deliberately not here: the trainer's alternation of θ / φ phases and the model term of the joint
 * log-prob (engine/train/mdm_train.c), checkpoint files (φ's table is exposed for the trainer). */
#ifndef GROVE_MDM_SCHEDULE_H
#define GROVE_MDM_SCHEDULE_H

#include <stdint.h>
#include <stdio.h>

#include "grove/backend.h"
#include "grove/params.h"
#include "grove/rng.h"
#include "grove/status.h"
#include "samplers/masked.h"

#ifdef __cplusplus
extern "C" {
#endif

#define GV_SCHEDULE_EMBED 8
#define GV_SCHEDULE_IN (GV_SCHEDULE_EMBED + 2)

typedef struct gv_schedule_config {
    int learned[GV_KNOB_COUNT]; /* 1: knob learned (Sudoku: r, tau_s, tau_r)            */
    int steps, blocks;          /* the sampler's geometry (steps % blocks == 0)         */
    int hidden;                 /* MLP width (16)                                       */
    uint32_t seed;              /* W1 init and the actions                              */
    float lr, weight_decay, clip_range;
    int64_t sigma_decay_iterations;
} gv_schedule_config;

typedef struct gv_schedule {
    gv_schedule_config cfg;
    int K, knob_of[GV_KNOB_COUNT]; /* learned knobs, in knob order                */
    gv_params phi;                 /* "w1" (H, IN), "b1" (H), "w2" (K, H), "b2" (K) */
    gv_ctx *ctx;                   /* the CPU backend's context for AdamW          */
    int64_t adam_t;                /* optimizer steps taken                        */
    /* the current rollout (gv_schedule_begin): */
    int N;
    int mean_only;                 /* 1: actions = μ (evaluation), nothing recorded as random */
    float sigma;
    uint32_t iteration;
    float *feat;     /* (N, steps, 2)  */
    float *act;      /* (N, steps, K)  */
    uint8_t *acted;  /* (N, steps, K)  1 where the knob had an action */
    double *logp_old; /* (N, steps), double so ρ == 1 exactly before an update */
    int cap;
    int64_t last_units; /* acted units of the last gv_schedule_loss */
} gv_schedule;

/* σ at `iteration` (0-based): 0.6 + (0.1 - 0.6)·min(1, iteration / decay); decay <= 0: 0.1. */
float gv_schedule_sigma(int64_t iteration, int64_t decay);

/* Knob q's squash and its inverse (ALGORITHMS.md §10); double so squash(inv(x)) == x in float. */
double gv_schedule_squash(int knob, double x);
double gv_schedule_unsquash(int knob, double y);

gv_status gv_schedule_create(const gv_schedule_config *cfg, gv_schedule *out);
void gv_schedule_free(gv_schedule *p);

/* Prepare to record a rollout of N samples at `iteration` (σ from the decay; mean_only: actions =
   μ, for evaluation and the exported schedule). */
gv_status gv_schedule_begin(gv_schedule *p, int N, int64_t iteration, int mean_only);

/* The sampler hook (user = the gv_schedule). */
gv_status gv_schedule_hook(void *user, const gv_masked_config *c, int step, int j, int s,
                           const float *masked_frac, const float *mean_conf, float *knobs);

/* The mean knobs (GV_KNOB_COUNT) at global step k with features (frac, conf). Unlearned knobs
   are what the sampler uses for them: held's fixed value where its fixed_mask has the knob's bit
   (sampler.tau_r), else the default (held may be NULL). */
void gv_schedule_mean_knobs(gv_schedule *p, const gv_masked_knobs *held, int k, float frac,
                            float conf, float *knobs);
/* The same at the last rollout's mean features of step k (*frac, *conf receive them). */
void gv_schedule_rollout_mean_knobs(gv_schedule *p, const gv_masked_knobs *held, int k,
                                    float *frac, float *conf, float *knobs);

/* log π_φ of the recorded actions of (sample n, step k) under the current φ and σ. */
double gv_schedule_logp(gv_schedule *p, int n, int k);

/* The clipped objective over the recorded rollout at the current φ and its gradient in φ's grads
   (mean over acted units), without a step. */
gv_status gv_schedule_loss(gv_schedule *p, const float *adv, double *loss, double *mean_ratio);

/* Data parallel pieces of gv_schedule_loss (grove/mdm_train.h): the acted units of samples
   [n0, n1); the objective's part over samples [n0, n1) with its gradient divided by `norm` (the
   acted units of the whole rollout) in φ's grads (overwritten; zero when norm or the part has no
   unit), *loss_sum and *ratio_sum its unnormalized sums. gv_schedule_loss is the part [0, N)
   normalized by its own units. */
int64_t gv_schedule_units(const gv_schedule *p, int n0, int n1);
gv_status gv_schedule_loss_part(gv_schedule *p, const float *adv, int n0, int n1, int64_t norm,
                                double *loss_sum, double *ratio_sum);
/* One AdamW step of φ from the gradient in φ's grads (adam_t advances). */
gv_status gv_schedule_step(gv_schedule *p);
/* One AdamW step of φ on the clipped objective over the recorded rollout; adv (N) per sample.
   *loss, *mean_ratio (over acted units) may be NULL. */
gv_status gv_schedule_update(gv_schedule *p, const float *adv, double *loss, double *mean_ratio);

/* The learned mean schedule, one row per global step at the rollout's mean features:
   "step,block_step,masked_frac,mean_conf,<knob>..." (all four knobs; unlearned ones as held). */
gv_status gv_schedule_write_csv(gv_schedule *p, const gv_masked_knobs *held, FILE *f);

#ifdef __cplusplus
}
#endif
#endif
