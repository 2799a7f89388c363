/* Optimizer policy over the flat parameter buffers: AdamW, grad-norm clip, EMA, LR schedules
 * (ALGORITHMS.md §3, optimizer structure; DESIGN.md §3, parameters).
 *
 * Each function is one op call per parameter or one op call over a whole flat buffer (ops.h
 * adamw_step, sumsq, scale, axpby); scalars such as bias corrections are computed on the host and
 * passed by value, and the host reads back only the one float a norm needs (device-agnostic rule).
 * Deliberately not here: when to step, clip or update the EMA (the trainer decides), and gradient
 * all-reduce. Step counts are 1-based: t is the optimizer step being taken, t >= 1. */
#ifndef GROVE_OPTIM_H
#define GROVE_OPTIM_H

#include <stdint.h>

#include "grove/backend.h"
#include "grove/params.h"
#include "grove/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- AdamW ----------------------------------------------------------------------------------- */

typedef struct gv_adamw_config {
    float lr;           /* base learning rate (a schedule's peak), 3e-4 for small models */
    float beta1;        /* 0.9   */
    float beta2;        /* 0.999 */
    float eps;          /* 1e-8  */
    float weight_decay; /* 1e-4; decoupled, only on parameters declared with decay = 1 */
} gv_adamw_config;

#define GV_ADAMW_CONFIG_DEFAULT ((gv_adamw_config){3e-4f, 0.9f, 0.999f, 1e-8f, 1e-4f})

/* One AdamW step t (>= 1) at learning rate `lr` (already scheduled; cfg->lr is not used here)
   over every parameter: adamw_step with bias corrections 1-β1^t, 1-β2^t computed on the host in
   double, weight decay cfg->weight_decay where param->decay, else 0. */
gv_status gv_optim_step(gv_ctx *c, gv_params *ps, const gv_adamw_config *cfg, float lr,
                        int64_t t);

/* ---- gradient norm and clipping -------------------------------------------------------------- */

/* *norm = sqrt(sumsq(grads)) over the whole flat grad buffer (padding is zero). The sum is the
   deterministic sumsq op written to one float of c->scratch and copied to the host. */
gv_status gv_grad_norm(gv_ctx *c, gv_params *ps, float *norm);

/* *norm_before = the gradient norm. When it is > max_norm, every gradient is scaled by
   max_norm / norm (one scale op over the flat buffer). A non-finite norm is GV_ERR_NUMERIC and
   nothing is changed (*norm_before still receives it, for logging). max_norm must be > 0. */
gv_status gv_grad_clip(gv_ctx *c, gv_params *ps, float max_norm, float *norm_before);

/* ---- EMA ------------------------------------------------------------------------------------- */

/* min((1 + k) / (10 + k), decay): the warmed-up EMA decay after k EMA updates (ALGORITHMS.md §3). */
float gv_ema_decay_at(int64_t k, float decay);

/* ema = decay·ema + (1 - decay)·value over the flat buffers (one axpby). GV_ERR_INVALID when the
   table was allocated without an EMA copy. */
gv_status gv_ema_update(gv_ctx *c, gv_params *ps, float decay);

/* ---- learning-rate schedules ----------------------------------------------------------------- */

/* The config's train.lr_schedule.kind stores these values (run_config.c names them in this order). */
typedef enum gv_lr_kind {
    GV_LR_SCHED_CONSTANT = 0,
    GV_LR_SCHED_WARMUP_COSINE = 1 /* linear warmup from 0, cosine to min_lr at total_steps, flat after */
} gv_lr_kind;

typedef struct gv_lr_schedule {
    gv_lr_kind kind;
    float lr;              /* peak / constant learning rate                     */
    int64_t warmup_steps;  /* >= 0; steps 1..warmup_steps ramp lr·t/warmup_steps */
    int64_t total_steps;   /* > warmup_steps; lr reaches min_lr here            */
    float min_lr;          /* >= 0                                              */
} gv_lr_schedule;

/* GV_ERR_INVALID naming the field when the schedule is inconsistent. */
gv_status gv_lr_schedule_check(const gv_lr_schedule *s);

/* Learning rate for optimizer step t (1-based):
     constant:       lr
     warmup_cosine:  t <= W:      lr · t / W                                     (W = warmup_steps)
                     W < t < T:   min_lr + (lr - min_lr) · ½ (1 + cos(π (t - W) / (T - W)))
                     t >= T:      min_lr                                          (T = total_steps)
   Computed in double on the host. t <= 0 gives 0 for warmup_cosine (the warmup's origin). */
float gv_lr_at(const gv_lr_schedule *s, int64_t t);

#ifdef __cplusplus
}
#endif
#endif
