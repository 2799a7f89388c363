/* The own ops of a device backend, written once: argument checks, scratch, and one GV_EACH launch
 * per pass over the items of kernels/shared/gv_items.h.
 *
 * The includer defines two macros and then includes this header once:
 *   GV_OWN_OP(name)             the function name of op `name` (gv_cuda_silu_forward, ...)
 *   GV_EACH(c, n, FN, args...)  run FN(i, args...) for i in [0, n) on context c's stream, in any
 *                               order and in parallel (the items of a pass are independent), and
 *                               return a status on a launch failure
 * kernels/cuda/own_ops.cu instantiates it with a grid-stride kernel (the CUDA module's ops);
 * tests/ops/test_hd_backend.c with a plain host loop (a backend the op harness checks on every
 * machine). Passes of one op run in order on the one stream. Scratch (fp64 partials, attention
 * row dots) comes from the context's scratch arena, reserved at context creation: nothing is
 * allocated inside a step, and the mark is released before returning (later work on the same
 * stream runs after this op's passes).
 *
 * Differences from the CPU reference, deliberate: the CPU rejects ids / targets outside their
 * range by reading them on the host; a device backend cannot without a host round trip, so here
 * such an id counts as padding (never an out-of-bounds read). Shapes are checked as on the CPU.
 * Deliberately not here: convolution, linear and matmul (cuDNN / cuBLAS glue in kernels/cuda),
 * the Philox fill (kernels/cuda/philox_cuda.cu, same GV_HD arithmetic as the CPU fill). */
#ifndef GROVE_GV_OWN_OPS_H
#define GROVE_GV_OWN_OPS_H

#include "grove/arena.h"
#include "grove/backend.h"
#include "gv_items.h"
#include "gv_masked_items.h"

static gv_status gv_own_positive(const char *op, const char *what, int64_t v) {
    if (v <= 0) return GV_ERROR(GV_ERR_INVALID, "%s: %s = %lld must be positive", op, what,
                                (long long)v);
    return GV_OK;
}

/* `count` doubles of context scratch; release with gv_arena_reset_to(&c->scratch, mark). */
static gv_status gv_own_scratch(gv_ctx *c, const char *op, int64_t count, double **out) {
    void *p = NULL;
    GV_TRY(gv_arena_alloc(&c->scratch, (size_t)count * sizeof(double), &p));
    if (!p) return GV_ERROR(GV_ERR_INVALID, "%s: no scratch memory (context arena measuring)", op);
    *out = (double *)p;
    return GV_OK;
}

/* ---- activations and elementwise ------------------------------------------------------------- */

gv_status GV_OWN_OP(silu_forward)(gv_ctx *c, float *y, const float *x, const gv_ew_dims *d) {
    GV_TRY(gv_own_positive("silu_forward", "n", d->n));
    GV_EACH(c, d->n, gv_item_silu_forward, y, x);
    return GV_OK;
}
gv_status GV_OWN_OP(silu_backward)(gv_ctx *c, float *dx, const float *dy, const float *x,
                                   const gv_ew_dims *d) {
    GV_TRY(gv_own_positive("silu_backward", "n", d->n));
    if (dx) GV_EACH(c, d->n, gv_item_silu_backward, dx, dy, x);
    return GV_OK;
}
gv_status GV_OWN_OP(gelu_forward)(gv_ctx *c, float *y, const float *x, const gv_ew_dims *d) {
    GV_TRY(gv_own_positive("gelu_forward", "n", d->n));
    GV_EACH(c, d->n, gv_item_gelu_forward, y, x);
    return GV_OK;
}
gv_status GV_OWN_OP(gelu_backward)(gv_ctx *c, float *dx, const float *dy, const float *x,
                                   const gv_ew_dims *d) {
    GV_TRY(gv_own_positive("gelu_backward", "n", d->n));
    if (dx) GV_EACH(c, d->n, gv_item_gelu_backward, dx, dy, x);
    return GV_OK;
}
gv_status GV_OWN_OP(add)(gv_ctx *c, float *y, const float *a, const float *b, const gv_ew_dims *d) {
    GV_TRY(gv_own_positive("add", "n", d->n));
    GV_EACH(c, d->n, gv_item_add, y, a, b);
    return GV_OK;
}
gv_status GV_OWN_OP(scale)(gv_ctx *c, float *y, const float *x, float alpha, const gv_ew_dims *d) {
    GV_TRY(gv_own_positive("scale", "n", d->n));
    GV_EACH(c, d->n, gv_item_scale, y, x, alpha);
    return GV_OK;
}
gv_status GV_OWN_OP(axpby)(gv_ctx *c, float *y, const float *x, float alpha, float beta,
                           const gv_ew_dims *d) {
    GV_TRY(gv_own_positive("axpby", "n", d->n));
    GV_EACH(c, d->n, gv_item_axpby, y, x, alpha, beta);
    return GV_OK;
}

/* ---- softmax rows ---------------------------------------------------------------------------- */

static gv_status gv_own_rows(const char *op, const gv_rows_dims *d) {
    GV_TRY(gv_own_positive(op, "R", d->R));
    return gv_own_positive(op, "D", d->D);
}
gv_status GV_OWN_OP(softmax_forward)(gv_ctx *c, float *y, const float *x, const gv_rows_dims *d) {
    GV_TRY(gv_own_rows("softmax_forward", d));
    GV_EACH(c, d->R, gv_item_softmax_forward, y, x, *d);
    return GV_OK;
}
gv_status GV_OWN_OP(softmax_backward)(gv_ctx *c, float *dx, const float *dy, const float *y,
                                      const gv_rows_dims *d) {
    GV_TRY(gv_own_rows("softmax_backward", d));
    if (dx) GV_EACH(c, d->R, gv_item_softmax_backward, dx, dy, y, *d);
    return GV_OK;
}
gv_status GV_OWN_OP(log_softmax_forward)(gv_ctx *c, float *y, const float *x,
                                         const gv_rows_dims *d) {
    GV_TRY(gv_own_rows("log_softmax_forward", d));
    GV_EACH(c, d->R, gv_item_log_softmax_forward, y, x, *d);
    return GV_OK;
}
gv_status GV_OWN_OP(log_softmax_backward)(gv_ctx *c, float *dx, const float *dy, const float *y,
                                          const gv_rows_dims *d) {
    GV_TRY(gv_own_rows("log_softmax_backward", d));
    if (dx) GV_EACH(c, d->R, gv_item_log_softmax_backward, dx, dy, y, *d);
    return GV_OK;
}

/* ---- norms ------------------------------------------------------------------------------------ */

static gv_status gv_own_norm_check(const char *op, const gv_hd_norm_shape *s) {
    GV_TRY(gv_own_positive(op, "N", s->N));
    GV_TRY(gv_own_positive(op, "C/D", s->C));
    GV_TRY(gv_own_positive(op, "HW", s->HW));
    if (s->G <= 0 || s->G > s->C)
        return GV_ERROR(GV_ERR_INVALID, "%s: G = %d must be in 1..C (C = %d)", op, s->G, s->C);
    if (!(s->eps >= 0.0f))
        return GV_ERROR(GV_ERR_INVALID, "%s: eps = %g must be >= 0", op, (double)s->eps);
    return GV_OK;
}
static gv_status gv_own_norm_forward(gv_ctx *c, const char *op, float *y, float *mean, float *rstd,
                                     const float *x, const float *gamma, const float *beta,
                                     gv_hd_norm_shape s) {
    GV_TRY(gv_own_norm_check(op, &s));
    GV_EACH(c, s.N * s.G, gv_item_norm_forward, y, mean, rstd, x, gamma, beta, s);
    return GV_OK;
}
static gv_status gv_own_norm_backward(gv_ctx *c, const char *op, float *dx, float *dgamma,
                                      float *dbeta, const float *dy, const float *x,
                                      const float *mean, const float *rstd, const float *gamma,
                                      gv_hd_norm_shape s) {
    GV_TRY(gv_own_norm_check(op, &s));
    if (dx) GV_EACH(c, s.N * s.G, gv_item_norm_backward_dx, dx, dy, x, mean, rstd, gamma, s);
    if (dgamma || dbeta)
        GV_EACH(c, s.C, gv_item_norm_backward_affine, dgamma, dbeta, dy, x, mean, rstd, s);
    return GV_OK;
}
static gv_hd_norm_shape gv_own_gn_shape(const gv_groupnorm_dims *d) {
    gv_hd_norm_shape s = {d->N, d->C, d->HW, d->G, d->eps};
    return s;
}
static gv_hd_norm_shape gv_own_ln_shape(const gv_layernorm_dims *d) {
    gv_hd_norm_shape s = {d->N, d->D, 1, 1, d->eps};
    return s;
}
gv_status GV_OWN_OP(groupnorm_forward)(gv_ctx *c, float *y, float *mean, float *rstd,
                                       const float *x, const float *gamma, const float *beta,
                                       const gv_groupnorm_dims *d) {
    return gv_own_norm_forward(c, "groupnorm_forward", y, mean, rstd, x, gamma, beta,
                               gv_own_gn_shape(d));
}
gv_status GV_OWN_OP(groupnorm_backward)(gv_ctx *c, float *dx, float *dgamma, float *dbeta,
                                        const float *dy, const float *x, const float *mean,
                                        const float *rstd, const float *gamma,
                                        const gv_groupnorm_dims *d) {
    return gv_own_norm_backward(c, "groupnorm_backward", dx, dgamma, dbeta, dy, x, mean, rstd,
                                gamma, gv_own_gn_shape(d));
}
gv_status GV_OWN_OP(layernorm_forward)(gv_ctx *c, float *y, float *mean, float *rstd,
                                       const float *x, const float *gamma, const float *beta,
                                       const gv_layernorm_dims *d) {
    return gv_own_norm_forward(c, "layernorm_forward", y, mean, rstd, x, gamma, beta,
                               gv_own_ln_shape(d));
}
gv_status GV_OWN_OP(layernorm_backward)(gv_ctx *c, float *dx, float *dgamma, float *dbeta,
                                        const float *dy, const float *x, const float *mean,
                                        const float *rstd, const float *gamma,
                                        const gv_layernorm_dims *d) {
    return gv_own_norm_backward(c, "layernorm_backward", dx, dgamma, dbeta, dy, x, mean, rstd,
                                gamma, gv_own_ln_shape(d));
}

/* ---- attention -------------------------------------------------------------------------------- */

static gv_status gv_own_attention_check(const char *op, const gv_attention_dims *d) {
    GV_TRY(gv_own_positive(op, "N", d->N));
    GV_TRY(gv_own_positive(op, "T", d->T));
    GV_TRY(gv_own_positive(op, "D", d->D));
    if (d->H <= 0 || d->D % d->H != 0)
        return GV_ERROR(GV_ERR_INVALID, "%s: H = %d must be positive and divide D = %d", op, d->H,
                        d->D);
    return GV_OK;
}
gv_status GV_OWN_OP(attention_forward)(gv_ctx *c, float *y, float *probs, const float *q,
                                       const float *k, const float *v, const uint8_t *key_mask,
                                       const gv_attention_dims *d) {
    GV_TRY(gv_own_attention_check("attention_forward", d));
    if (!probs) return GV_ERROR(GV_ERR_INVALID, "attention_forward: probs (N,H,T,T) is required");
    GV_EACH(c, (int64_t)d->N * d->H * d->T, gv_item_attention_forward, y, probs, q, k, v,
            key_mask, *d);
    return GV_OK;
}
/* The three passes of attention_backward (GV_EACH may return early: the caller resets scratch). */
static gv_status gv_own_attention_passes(gv_ctx *c, float *dq, float *dk, float *dv, double *rowdot,
                                         const float *dy, const float *q, const float *k,
                                         const float *v, const float *probs,
                                         const gv_attention_dims *d) {
    const int64_t rows = (int64_t)d->N * d->H * d->T;
    GV_EACH(c, rows, gv_item_attention_rowdot, rowdot, dy, v, probs, *d);
    if (dq) GV_EACH(c, rows, gv_item_attention_dq, dq, rowdot, dy, k, v, probs, *d);
    if (dk || dv) GV_EACH(c, rows, gv_item_attention_dkdv, dk, dv, rowdot, dy, q, v, probs, *d);
    return GV_OK;
}
gv_status GV_OWN_OP(attention_backward)(gv_ctx *c, float *dq, float *dk, float *dv,
                                        const float *dy, const float *q, const float *k,
                                        const float *v, const float *probs,
                                        const uint8_t *key_mask, const gv_attention_dims *d) {
    GV_TRY(gv_own_attention_check("attention_backward", d));
    (void)key_mask; /* masked keys have P == 0 in the saved probs */
    if (!dq && !dk && !dv) return GV_OK;
    const int64_t rows = (int64_t)d->N * d->H * d->T;
    const size_t mark = gv_arena_mark(&c->scratch);
    double *rowdot = NULL;
    GV_TRY(gv_own_scratch(c, "attention_backward", rows, &rowdot));
    gv_status s = gv_own_attention_passes(c, dq, dk, dv, rowdot, dy, q, k, v, probs, d);
    gv_arena_reset_to(&c->scratch, mark);
    return s;
}

/* ---- embeddings ------------------------------------------------------------------------------- */

static gv_status gv_own_embedding_check(const char *op, const gv_embedding_dims *d, int bag) {
    GV_TRY(gv_own_positive(op, "N", d->N));
    GV_TRY(gv_own_positive(op, "L", d->L));
    if (!bag && d->L != 1) return GV_ERROR(GV_ERR_INVALID, "%s: L = %d must be 1", op, d->L);
    GV_TRY(gv_own_positive(op, "V", d->V));
    return gv_own_positive(op, "D", d->D);
}
gv_status GV_OWN_OP(embedding_forward)(gv_ctx *c, float *y, const int32_t *ids, const float *table,
                                       const gv_embedding_dims *d) {
    GV_TRY(gv_own_embedding_check("embedding_forward", d, 0));
    GV_EACH(c, (int64_t)d->N * d->D, gv_item_bag_forward, y, ids, table, *d);
    return GV_OK;
}
gv_status GV_OWN_OP(embedding_backward)(gv_ctx *c, float *dtable, const float *dy,
                                        const int32_t *ids, const gv_embedding_dims *d) {
    GV_TRY(gv_own_embedding_check("embedding_backward", d, 0));
    if (dtable) GV_EACH(c, d->D, gv_item_bag_backward, dtable, dy, ids, *d);
    return GV_OK;
}
gv_status GV_OWN_OP(embedding_bag_forward)(gv_ctx *c, float *y, const int32_t *ids,
                                           const float *table, const gv_embedding_dims *d) {
    GV_TRY(gv_own_embedding_check("embedding_bag_forward", d, 1));
    GV_EACH(c, (int64_t)d->N * d->D, gv_item_bag_forward, y, ids, table, *d);
    return GV_OK;
}
gv_status GV_OWN_OP(embedding_bag_backward)(gv_ctx *c, float *dtable, const float *dy,
                                            const int32_t *ids, const gv_embedding_dims *d) {
    GV_TRY(gv_own_embedding_check("embedding_bag_backward", d, 1));
    if (dtable) GV_EACH(c, d->D, gv_item_bag_backward, dtable, dy, ids, *d);
    return GV_OK;
}
gv_status GV_OWN_OP(time_embedding_forward)(gv_ctx *c, float *y, const float *t,
                                            const gv_time_embedding_dims *d) {
    GV_TRY(gv_own_positive("time_embedding_forward", "N", d->N));
    if (d->D <= 0 || d->D % 2 != 0)
        return GV_ERROR(GV_ERR_INVALID, "time_embedding_forward: D = %d must be positive and even",
                        d->D);
    GV_EACH(c, (int64_t)d->N * (d->D / 2), gv_item_time_embedding, y, t, *d);
    return GV_OK;
}

/* ---- layout ops ------------------------------------------------------------------------------- */

static gv_status gv_own_upsample_check(const char *op, const gv_upsample_dims *d) {
    GV_TRY(gv_own_positive(op, "N", d->N));
    GV_TRY(gv_own_positive(op, "C", d->C));
    GV_TRY(gv_own_positive(op, "H", d->H));
    GV_TRY(gv_own_positive(op, "W", d->W));
    return gv_own_positive(op, "f", d->f);
}
gv_status GV_OWN_OP(upsample_nearest_forward)(gv_ctx *c, float *y, const float *x,
                                              const gv_upsample_dims *d) {
    GV_TRY(gv_own_upsample_check("upsample_nearest_forward", d));
    GV_EACH(c, (int64_t)d->N * d->C * d->H * d->f * d->W * d->f, gv_item_upsample_forward, y, x,
            *d);
    return GV_OK;
}
gv_status GV_OWN_OP(upsample_nearest_backward)(gv_ctx *c, float *dx, const float *dy,
                                               const gv_upsample_dims *d) {
    GV_TRY(gv_own_upsample_check("upsample_nearest_backward", d));
    if (dx) GV_EACH(c, (int64_t)d->N * d->C * d->H * d->W, gv_item_upsample_backward, dx, dy, *d);
    return GV_OK;
}
static gv_status gv_own_concat_check(const char *op, const gv_concat_dims *d) {
    GV_TRY(gv_own_positive(op, "N", d->N));
    GV_TRY(gv_own_positive(op, "Ca", d->Ca));
    GV_TRY(gv_own_positive(op, "Cb", d->Cb));
    return gv_own_positive(op, "HW", d->HW);
}
gv_status GV_OWN_OP(concat_forward)(gv_ctx *c, float *y, const float *a, const float *b,
                                    const gv_concat_dims *d) {
    GV_TRY(gv_own_concat_check("concat_forward", d));
    GV_EACH(c, (int64_t)d->N * (d->Ca + d->Cb) * d->HW, gv_item_concat_forward, y, a, b, *d);
    return GV_OK;
}
gv_status GV_OWN_OP(concat_backward)(gv_ctx *c, float *da, float *db, const float *dy,
                                     const gv_concat_dims *d) {
    GV_TRY(gv_own_concat_check("concat_backward", d));
    if (da || db)
        GV_EACH(c, (int64_t)d->N * (d->Ca + d->Cb) * d->HW, gv_item_concat_backward, da, db, dy,
                *d);
    return GV_OK;
}
static gv_status gv_own_channel_check(const char *op, const gv_channel_dims *d) {
    GV_TRY(gv_own_positive(op, "N", d->N));
    GV_TRY(gv_own_positive(op, "C", d->C));
    return gv_own_positive(op, "HW", d->HW);
}
gv_status GV_OWN_OP(add_channel_forward)(gv_ctx *c, float *y, const float *x, const float *e,
                                         const gv_channel_dims *d) {
    GV_TRY(gv_own_channel_check("add_channel_forward", d));
    GV_EACH(c, (int64_t)d->N * d->C * d->HW, gv_item_add_channel_forward, y, x, e, *d);
    return GV_OK;
}
gv_status GV_OWN_OP(add_channel_backward)(gv_ctx *c, float *dx, float *de, const float *dy,
                                          const gv_channel_dims *d) {
    GV_TRY(gv_own_channel_check("add_channel_backward", d));
    if (dx) GV_EACH(c, (int64_t)d->N * d->C * d->HW, gv_item_add_channel_dx, dx, dy);
    if (de) GV_EACH(c, (int64_t)d->N * d->C, gv_item_add_channel_de, de, dy, *d);
    return GV_OK;
}

/* ---- losses ----------------------------------------------------------------------------------- */

static gv_status gv_own_mse_passes(gv_ctx *c, float *loss, double *partial, const float *a,
                                   const float *b, int64_t n) {
    GV_EACH(c, GV_HD_LOSS_CHUNKS, gv_item_mse_partial, partial, a, b, n);
    GV_EACH(c, 1, gv_item_sum_partials, loss, partial, (int64_t)GV_HD_LOSS_CHUNKS, (double)n);
    return GV_OK;
}
gv_status GV_OWN_OP(mse_forward)(gv_ctx *c, float *loss, const float *a, const float *b,
                                 const gv_ew_dims *d) {
    GV_TRY(gv_own_positive("mse_forward", "n", d->n));
    const size_t mark = gv_arena_mark(&c->scratch);
    double *partial = NULL;
    GV_TRY(gv_own_scratch(c, "mse_forward", GV_HD_LOSS_CHUNKS, &partial));
    gv_status s = gv_own_mse_passes(c, loss, partial, a, b, d->n);
    gv_arena_reset_to(&c->scratch, mark);
    return s;
}
gv_status GV_OWN_OP(mse_backward)(gv_ctx *c, float *da, float *db, const float *dloss,
                                  const float *a, const float *b, const gv_ew_dims *d) {
    GV_TRY(gv_own_positive("mse_backward", "n", d->n));
    if (da || db) GV_EACH(c, d->n, gv_item_mse_backward, da, db, dloss, a, b, d->n);
    return GV_OK;
}
static gv_status gv_own_xent_check(const char *op, const gv_xent_dims *d) {
    GV_TRY(gv_own_positive(op, "R", d->R));
    GV_TRY(gv_own_positive(op, "V", d->V));
    if (!(d->norm > 0.0f) || d->norm > 3.4028235e38f)
        return GV_ERROR(GV_ERR_INVALID, "%s: norm = %g must be positive and finite", op,
                        (double)d->norm);
    return GV_OK;
}
static gv_status gv_own_xent_passes(gv_ctx *c, float *loss, float *lse, double *buf,
                                    const float *logits, const int32_t *targets, const float *w,
                                    const gv_xent_dims *d) {
    double *rowloss = buf, *partial = buf + d->R; /* (R) then (GV_HD_LOSS_CHUNKS) */
    GV_EACH(c, d->R, gv_item_xent_row, rowloss, lse, logits, targets, w, *d);
    GV_EACH(c, GV_HD_LOSS_CHUNKS, gv_item_xent_partial, partial, rowloss, d->R, w);
    GV_EACH(c, 1, gv_item_sum_partials, loss, partial, (int64_t)GV_HD_LOSS_CHUNKS,
            (double)d->norm);
    return GV_OK;
}
gv_status GV_OWN_OP(cross_entropy_forward)(gv_ctx *c, float *loss, float *lse, const float *logits,
                                           const int32_t *targets, const float *w,
                                           const gv_xent_dims *d) {
    GV_TRY(gv_own_xent_check("cross_entropy_forward", d));
    const size_t mark = gv_arena_mark(&c->scratch);
    double *buf = NULL;
    GV_TRY(gv_own_scratch(c, "cross_entropy_forward", d->R + GV_HD_LOSS_CHUNKS, &buf));
    gv_status s = gv_own_xent_passes(c, loss, lse, buf, logits, targets, w, d);
    gv_arena_reset_to(&c->scratch, mark);
    return s;
}
gv_status GV_OWN_OP(cross_entropy_backward)(gv_ctx *c, float *dlogits, const float *dloss,
                                            const float *logits, const float *lse,
                                            const int32_t *targets, const float *w,
                                            const gv_xent_dims *d) {
    GV_TRY(gv_own_xent_check("cross_entropy_backward", d));
    if (dlogits)
        GV_EACH(c, d->R * d->V, gv_item_xent_backward, dlogits, dloss, logits, lse, targets, w,
                *d);
    return GV_OK;
}

/* ---- optimizer -------------------------------------------------------------------------------- */

gv_status GV_OWN_OP(adamw_step)(gv_ctx *c, float *p, float *m, float *v, const float *g,
                                const gv_adamw_args *a) {
    if (a->n < 0)
        return GV_ERROR(GV_ERR_INVALID, "adamw_step: negative count %lld", (long long)a->n);
    if (!(a->bias_corr1 > 0.0f) || !(a->bias_corr2 > 0.0f))
        return GV_ERROR(GV_ERR_INVALID, "adamw_step: bias corrections must be > 0 (got %g, %g)",
                        (double)a->bias_corr1, (double)a->bias_corr2);
    if (a->n) GV_EACH(c, a->n, gv_item_adamw, p, m, v, g, *a);
    return GV_OK;
}
static gv_status gv_own_sumsq_passes(gv_ctx *c, float *out, double *partial, const float *x,
                                     int64_t n, int64_t nblocks) {
    if (nblocks) GV_EACH(c, nblocks, gv_item_sumsq_block, partial, x, n);
    GV_EACH(c, 1, gv_item_sum_partials, out, partial, nblocks, 1.0);
    return GV_OK;
}
gv_status GV_OWN_OP(sumsq)(gv_ctx *c, float *out, const float *x, const gv_ew_dims *d) {
    if (d->n < 0) return GV_ERROR(GV_ERR_INVALID, "sumsq: negative count %lld", (long long)d->n);
    const int64_t nblocks = (d->n + GV_HD_SUMSQ_BLOCK - 1) / GV_HD_SUMSQ_BLOCK;
    const size_t mark = gv_arena_mark(&c->scratch);
    double *partial = NULL;
    GV_TRY(gv_own_scratch(c, "sumsq", nblocks ? nblocks : 1, &partial));
    gv_status s = gv_own_sumsq_passes(c, out, partial, x, d->n, nblocks);
    gv_arena_reset_to(&c->scratch, mark);
    return s;
}

/* ---- sampler ops ------------------------------------------------------------------------------ */

static gv_status gv_own_step_check(const char *op, const gv_step_args *a, int needs_std) {
    if (a->N <= 0 || a->D <= 0)
        return GV_ERROR(GV_ERR_INVALID, "%s: N = %d, D = %lld must be positive", op, a->N,
                        (long long)a->D);
    if (a->logp_kind != GV_LOGP_GAUSSIAN && a->logp_kind != GV_LOGP_CPS)
        return GV_ERROR(GV_ERR_INVALID, "%s: unknown logp_kind %d", op, a->logp_kind);
    if (needs_std && !(a->std > 0.0f) && a->logp_kind == GV_LOGP_GAUSSIAN)
        return GV_ERROR(GV_ERR_INVALID, "%s: std = %g must be positive for a Gaussian log-density",
                        op, (double)a->std);
    return GV_OK;
}
gv_status GV_OWN_OP(gaussian_step_forward)(gv_ctx *c, float *x_next, float *logp, const float *x,
                                           const float *v, const float *eps,
                                           const gv_step_args *a) {
    GV_TRY(gv_own_step_check("gaussian_step_forward", a, logp != NULL));
    GV_EACH(c, a->N, gv_item_gaussian_step, x_next, logp, x, v, eps, *a);
    return GV_OK;
}
gv_status GV_OWN_OP(gaussian_step_backward)(gv_ctx *c, float *dv, const float *dlogp,
                                            const float *x, const float *v, const float *x_next,
                                            const gv_step_args *a) {
    GV_TRY(gv_own_step_check("gaussian_step_backward", a, 1));
    if (dv) GV_EACH(c, (int64_t)a->N * a->D, gv_item_gaussian_step_backward, dv, dlogp, x, v,
                    x_next, *a);
    return GV_OK;
}
gv_status GV_OWN_OP(euler_step)(gv_ctx *c, float *x_next, const float *x, const float *v,
                                const gv_step_args *a) {
    if (a->N <= 0 || a->D <= 0)
        return GV_ERROR(GV_ERR_INVALID, "euler_step: N = %d, D = %lld must be positive", a->N,
                        (long long)a->D);
    GV_EACH(c, (int64_t)a->N * a->D, gv_item_euler, x_next, x, v, a->delta);
    return GV_OK;
}
gv_status GV_OWN_OP(cfg_combine)(gv_ctx *c, float *v, const float *v_cond, const float *v_null,
                                 float w, const gv_ew_dims *d) {
    GV_TRY(gv_own_positive("cfg_combine", "n", d->n));
    GV_EACH(c, d->n, gv_item_cfg, v, v_cond, v_null, w);
    return GV_OK;
}
gv_status GV_OWN_OP(cfg_combine_backward)(gv_ctx *c, float *dv_cond, float *dv_null,
                                          const float *dv, float w, const gv_ew_dims *d) {
    GV_TRY(gv_own_positive("cfg_combine_backward", "n", d->n));
    if (dv_cond || dv_null) GV_EACH(c, d->n, gv_item_cfg_backward, dv_cond, dv_null, dv, w);
    return GV_OK;
}

/* ---- GRPO objective and KL -------------------------------------------------------------------- */

static gv_status gv_own_grpo_check(const char *op, const gv_grpo_args *a) {
    const float big = 3.4028235e38f;
    GV_TRY(gv_own_positive(op, "U", a->U));
    if (!(a->norm > 0.0f) || a->norm > big)
        return GV_ERROR(GV_ERR_INVALID, "%s: norm = %g must be positive", op, (double)a->norm);
    if (!(a->clip_eps >= 0.0f) || a->clip_eps > big)
        return GV_ERROR(GV_ERR_INVALID, "%s: clip_eps = %g must be >= 0", op, (double)a->clip_eps);
    if (!(a->beta >= -big && a->beta <= big))
        return GV_ERROR(GV_ERR_INVALID, "%s: beta = %g must be finite", op, (double)a->beta);
    return GV_OK;
}
gv_status GV_OWN_OP(grpo_objective_forward)(gv_ctx *c, float *loss, float *stats, float *ratio,
                                            const float *logp, const float *logp_old,
                                            const float *adv, const float *weight,
                                            const float *kl, const gv_grpo_args *a) {
    GV_TRY(gv_own_grpo_check("grpo_objective_forward", a));
    GV_EACH(c, 1, gv_item_grpo_forward, loss, stats, ratio, logp, logp_old, adv, weight, kl, *a);
    return GV_OK;
}
gv_status GV_OWN_OP(grpo_objective_backward)(gv_ctx *c, float *dlogp, float *dkl,
                                             const float *dloss, const float *ratio,
                                             const float *adv, const float *weight,
                                             const gv_grpo_args *a) {
    GV_TRY(gv_own_grpo_check("grpo_objective_backward", a));
    if (dlogp || dkl)
        GV_EACH(c, a->U, gv_item_grpo_backward, dlogp, dkl, dloss, ratio, adv, weight, *a);
    return GV_OK;
}
static gv_status gv_own_kl_check(const char *op, const float *var, const gv_kl_args *a) {
    if (a->U <= 0 || a->D <= 0)
        return GV_ERROR(GV_ERR_INVALID, "%s: U = %d, D = %lld must be positive", op, a->U,
                        (long long)a->D);
    if (a->kind != GV_KL_OP_SCALED && a->kind != GV_KL_OP_VELOCITY)
        return GV_ERROR(GV_ERR_INVALID, "%s: unknown kind %d", op, a->kind);
    if (a->kind == GV_KL_OP_SCALED && !var && !(a->var > 0.0f))
        return GV_ERROR(GV_ERR_INVALID, "%s: var = %g must be positive (no per-unit var given)",
                        op, (double)a->var);
    return GV_OK;
}
gv_status GV_OWN_OP(kl_forward)(gv_ctx *c, float *kl, const float *mu_theta, const float *mu_ref,
                                const float *var, const gv_kl_args *a) {
    GV_TRY(gv_own_kl_check("kl_forward", var, a));
    GV_EACH(c, a->U, gv_item_kl_forward, kl, mu_theta, mu_ref, var, *a);
    return GV_OK;
}
gv_status GV_OWN_OP(kl_backward)(gv_ctx *c, float *dmu_theta, const float *dkl,
                                 const float *mu_theta, const float *mu_ref, const float *var,
                                 const gv_kl_args *a) {
    GV_TRY(gv_own_kl_check("kl_backward", var, a));
    if (dmu_theta)
        GV_EACH(c, (int64_t)a->U * a->D, gv_item_kl_backward, dmu_theta, dkl, mu_theta, mu_ref,
                var, *a);
    return GV_OK;
}

/* ---- masked-diffusion sampler (gv_masked_items.h) --------------------------------------------- */

static gv_status gv_own_masked_check(const char *op, const gv_masked_args *a) {
    if (a->N < 1 || a->T < 1 || a->V < 2 || a->mask_id < 0 || a->mask_id >= a->V || a->blocks < 1 ||
        a->block < 0 || a->block >= a->blocks || a->step < 0)
        return GV_ERROR(GV_ERR_INVALID, "%s: bad geometry N=%d T=%d V=%d mask_id=%d blocks=%d "
                        "block=%d step=%d", op, a->N, a->T, a->V, (int)a->mask_id, a->blocks,
                        a->block, a->step);
    if (a->stats_stride < GV_MASKED_STATS)
        return GV_ERROR(GV_ERR_INVALID, "%s: stats_stride %d < %d", op, a->stats_stride,
                        (int)GV_MASKED_STATS);
    return GV_OK;
}
static gv_status gv_own_masked_passes(gv_ctx *c, int32_t *tokens, int32_t *commit, float *logp,
                                      float *stats, int32_t *null_tokens, const float *logits,
                                      const float *logits_null, const float *knobs, int32_t *tok,
                                      int32_t *cand, double *dr, const gv_masked_args *a) {
    const int64_t NT = (int64_t)a->N * a->T;
    GV_EACH(c, NT, gv_item_masked_draw, tok, dr, tokens, commit, logits, logits_null, knobs, *a);
    GV_EACH(c, a->N, gv_item_masked_commit, cand, tokens, commit, logp, stats, null_tokens, tok, dr,
            knobs, *a);
    return GV_OK;
}
gv_status GV_OWN_OP(masked_select)(gv_ctx *c, int32_t *tokens, int32_t *commit, float *logp,
                                   float *stats, int32_t *null_tokens, const float *logits,
                                   const float *logits_null, const float *knobs,
                                   const gv_masked_args *a) {
    GV_TRY(gv_own_masked_check("masked_select", a));
    const int64_t NT = (int64_t)a->N * a->T;
    const size_t mark = gv_arena_mark(&c->scratch);
    double *dr = NULL, *ints = NULL; /* (N,T,GV_HD_MASKED_DRAW) doubles; tok, cand (N,T) int32 */
    GV_TRY(gv_own_scratch(c, "masked_select", NT * GV_HD_MASKED_DRAW, &dr));
    gv_status s = gv_own_scratch(c, "masked_select", NT, &ints); /* 2 int32 per double */
    if (s == GV_OK)
        s = gv_own_masked_passes(c, tokens, commit, logp, stats, null_tokens, logits, logits_null,
                                 knobs, (int32_t *)ints, (int32_t *)ints + NT, dr, a);
    gv_arena_reset_to(&c->scratch, mark);
    return s;
}
gv_status GV_OWN_OP(masked_features)(gv_ctx *c, float *feat, const int32_t *tokens,
                                     const int32_t *commit, const float *logits,
                                     const gv_masked_args *a) {
    GV_TRY(gv_own_masked_check("masked_features", a));
    GV_EACH(c, a->N, gv_item_masked_features, feat, tokens, commit, logits, *a);
    return GV_OK;
}

#endif
