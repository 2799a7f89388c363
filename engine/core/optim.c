/* Optimizer policy over the flat parameter buffers (see optim.h): AdamW per parameter, norm and
 * clip over the flat grad buffer, EMA over the flat value buffers, LR schedules on the host. */
#include "grove/optim.h"

#include <math.h>

static gv_status check_table(gv_ctx *c, const gv_params *ps, const char *what) {
    if (!c || !ps) return GV_ERROR(GV_ERR_INVALID, "%s: NULL context or parameter table", what);
    if (!ps->allocated)
        return GV_ERROR(GV_ERR_INVALID, "%s: parameter table is not allocated", what);
    if (c->backend != ps->backend)
        return GV_ERROR(GV_ERR_INVALID, "%s: context backend '%s' differs from the table's '%s'",
                        what, c->backend ? c->backend->name : "?",
                        ps->backend ? ps->backend->name : "?");
    return GV_OK;
}

/* ---- AdamW ----------------------------------------------------------------------------------- */

gv_status gv_optim_step(gv_ctx *c, gv_params *ps, const gv_adamw_config *cfg, float lr,
                        int64_t t) {
    GV_TRY(check_table(c, ps, "optimizer step"));
    if (t < 1) return GV_ERROR(GV_ERR_INVALID, "optimizer step: step %lld must be >= 1", (long long)t);
    if (!isfinite(lr) || lr < 0.0f)
        return GV_ERROR(GV_ERR_INVALID, "optimizer step: learning rate %g is not finite and >= 0",
                        (double)lr);
    if (!(cfg->beta1 >= 0.0f && cfg->beta1 < 1.0f) || !(cfg->beta2 >= 0.0f && cfg->beta2 < 1.0f))
        return GV_ERROR(GV_ERR_INVALID, "optimizer step: betas (%g, %g) must be in [0, 1)",
                        (double)cfg->beta1, (double)cfg->beta2);
    /* bias corrections 1 - β^t in double on the host (ALGORITHMS.md §3, AdamW) */
    gv_adamw_args a = {
        .lr = lr,
        .beta1 = cfg->beta1,
        .beta2 = cfg->beta2,
        .eps = cfg->eps,
        .bias_corr1 = (float)(1.0 - pow((double)cfg->beta1, (double)t)),
        .bias_corr2 = (float)(1.0 - pow((double)cfg->beta2, (double)t)),
    };
    const gv_ops *ops = c->backend->ops;
    for (int i = 0; i < ps->count; ++i) {
        gv_param *p = &ps->items[i];
        a.n = p->numel;
        a.weight_decay = p->decay ? cfg->weight_decay : 0.0f;
        gv_status s = ops->adamw_step(c, p->value, p->adam_m, p->adam_v, p->grad, &a);
        if (s != GV_OK) {
            gv_error_prefix("optimizer step on '%s'", p->name);
            return s;
        }
    }
    return GV_OK;
}

/* ---- gradient norm and clipping -------------------------------------------------------------- */

gv_status gv_grad_norm(gv_ctx *c, gv_params *ps, float *norm) {
    GV_TRY(check_table(c, ps, "gradient norm"));
    if (ps->total == 0) {
        *norm = 0.0f; /* an empty table */
        return GV_OK;
    }
    size_t mark = gv_arena_mark(&c->scratch);
    float *sum_dev = NULL; /* (1) backend memory */
    gv_status s = gv_arena_floats(&c->scratch, 1, &sum_dev);
    if (s == GV_OK && !sum_dev)
        s = GV_ERROR(GV_ERR_INTERNAL, "gradient norm: scratch arena is in a measure pass");
    float sum = 0.0f;
    if (s == GV_OK) {
        gv_ew_dims d = {.n = ps->total};
        s = c->backend->ops->sumsq(c, sum_dev, ps->grads, &d);
    }
    if (s == GV_OK) s = c->backend->copy_to_host(&sum, sum_dev, sizeof sum);
    gv_arena_reset_to(&c->scratch, mark);
    GV_TRY(s);
    *norm = sqrtf(sum);
    return GV_OK;
}

gv_status gv_grad_clip(gv_ctx *c, gv_params *ps, float max_norm, float *norm_before) {
    if (!(max_norm > 0.0f) || !isfinite(max_norm))
        return GV_ERROR(GV_ERR_INVALID, "gradient clip: max_norm %g must be finite and > 0",
                        (double)max_norm);
    float norm = 0.0f;
    GV_TRY(gv_grad_norm(c, ps, &norm));
    if (norm_before) *norm_before = norm;
    if (!isfinite(norm))
        return GV_ERROR(GV_ERR_NUMERIC, "gradient norm is %s: gradients left unchanged",
                        isnan(norm) ? "NaN" : "infinite");
    if (norm > max_norm) {
        float factor = max_norm / norm; /* ALGORITHMS.md §3, grad-norm clip */
        gv_ew_dims d = {.n = ps->total};
        GV_TRY(c->backend->ops->scale(c, ps->grads, ps->grads, factor, &d));
    }
    return GV_OK;
}

/* ---- EMA ------------------------------------------------------------------------------------- */

float gv_ema_decay_at(int64_t k, float decay) {
    /* ALGORITHMS.md §3: min((1 + k) / (10 + k), decay) */
    double warm = (1.0 + (double)k) / (10.0 + (double)k);
    return warm < (double)decay ? (float)warm : decay;
}

gv_status gv_ema_update(gv_ctx *c, gv_params *ps, float decay) {
    GV_TRY(check_table(c, ps, "EMA update"));
    if (!ps->ema)
        return GV_ERROR(GV_ERR_INVALID, "EMA update: the parameter table has no EMA copy");
    if (!(decay >= 0.0f && decay <= 1.0f))
        return GV_ERROR(GV_ERR_INVALID, "EMA update: decay %g must be in [0, 1]", (double)decay);
    if (ps->total == 0) return GV_OK;
    /* ema = decay·ema + (1 - decay)·value: axpby y = alpha·x + beta·y */
    gv_ew_dims d = {.n = ps->total};
    return c->backend->ops->axpby(c, ps->ema, ps->values, 1.0f - decay, decay, &d);
}

/* ---- learning-rate schedules ----------------------------------------------------------------- */

gv_status gv_lr_schedule_check(const gv_lr_schedule *s) {
    if (!isfinite(s->lr) || s->lr < 0.0f)
        return GV_ERROR(GV_ERR_INVALID, "lr schedule: lr %g must be finite and >= 0", (double)s->lr);
    if (s->kind == GV_LR_SCHED_CONSTANT) return GV_OK;
    if (s->kind != GV_LR_SCHED_WARMUP_COSINE)
        return GV_ERROR(GV_ERR_INVALID, "lr schedule: unknown kind %d", (int)s->kind);
    if (s->warmup_steps < 0)
        return GV_ERROR(GV_ERR_INVALID, "lr schedule: warmup_steps %lld must be >= 0",
                        (long long)s->warmup_steps);
    if (s->total_steps <= s->warmup_steps)
        return GV_ERROR(GV_ERR_INVALID, "lr schedule: total_steps %lld must exceed warmup_steps %lld",
                        (long long)s->total_steps, (long long)s->warmup_steps);
    if (!isfinite(s->min_lr) || s->min_lr < 0.0f || s->min_lr > s->lr)
        return GV_ERROR(GV_ERR_INVALID, "lr schedule: min_lr %g must be in [0, lr = %g]",
                        (double)s->min_lr, (double)s->lr);
    return GV_OK;
}

float gv_lr_at(const gv_lr_schedule *s, int64_t t) {
    if (s->kind != GV_LR_SCHED_WARMUP_COSINE) return s->lr;
    const double lr = s->lr, min_lr = s->min_lr;
    const int64_t W = s->warmup_steps, T = s->total_steps;
    if (t <= W) return t <= 0 ? 0.0f : (float)(lr * (double)t / (double)W); /* linear warmup */
    if (t >= T) return s->min_lr;
    /* cosine from lr at W to min_lr at T */
    const double pi = 3.14159265358979323846;
    double progress = (double)(t - W) / (double)(T - W);
    return (float)(min_lr + (lr - min_lr) * 0.5 * (1.0 + cos(pi * progress)));
}
