/* Harness specs: losses (mse, cross_entropy), the optimizer step (adamw_step), the gradient-norm
 * reduction (sumsq) and the Philox normal fill. None is per-sample (they reduce over the batch or
 * have none). Forward-only ops are checked against fp64 host computations; philox bitwise against
 * the host generator of grove/philox.h. */
#include <math.h>

#include "grove/philox.h"
#include "harness.h"

/* ---- mse: v = {n} ------------------------------------------------------------------------------ */
enum { SA, SB, SLOSS };
static const gv_h_tensor mse_tensors[] = {
    [SA] = {"a", GV_H_IN, GV_H_F32, GV_H_NORMAL, GV_H_DIFF},
    [SB] = {"b", GV_H_IN, GV_H_F32, GV_H_NORMAL, GV_H_DIFF},
    [SLOSS] = {"loss", GV_H_OUT, GV_H_F32, GV_H_NONE, 0},
};
static const gv_h_case mse_cases[] = {{"n1", {1}, {0}}, {"n7", {7}, {0}}, {"n130", {130}, {0}}};
static void mse_layout(const gv_h_case *c, gv_h_layout *L) {
    L->dims.ew.n = c->v[0];
    L->numel[SA] = L->numel[SB] = c->v[0];
    L->numel[SLOSS] = 1;
}
static gv_status mse_forward(gv_ctx *c, void *const *t, const gv_h_layout *L) {
    return c->backend->ops->mse_forward(c, t[SLOSS], t[SA], t[SB], &L->dims.ew);
}
static gv_status mse_backward(gv_ctx *c, float *const *g, void *const *t, const gv_h_layout *L) {
    return c->backend->ops->mse_backward(c, g[SA], g[SB], g[SLOSS], t[SA], t[SB], &L->dims.ew);
}
static void mse_reference(const gv_h_layout *L, const void *const *in, double *const *e) {
    const float *a = in[SA], *b = in[SB];
    double s = 0;
    for (int64_t i = 0; i < L->dims.ew.n; ++i) s += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    e[SLOSS][0] = s / (double)L->dims.ew.n;
}
static const gv_op_spec mse = {
    .name = "mse", .fwd_op = GV_OP_mse_forward, .bwd_op = GV_OP_mse_backward,
    .ntensors = GV_H_COUNT(mse_tensors), .tensors = mse_tensors, .ncases = GV_H_COUNT(mse_cases),
    .cases = mse_cases, .n_arg = -1, .layout = mse_layout, .run_forward = mse_forward,
    .run_backward = mse_backward, .reference = mse_reference,
};
GV_SPEC_FOR(mse_forward, mse);
GV_SPEC_FOR(mse_backward, mse);

/* ---- cross_entropy: v = {R, V, shifted}, p = {norm} ------------------------------------------- */
enum { XLOGITS, XTARGETS, XW, XLOSS, XLSE };
static const gv_h_tensor xent_tensors[] = {
    [XLOGITS] = {"logits", GV_H_IN, GV_H_F32, GV_H_NORMAL, GV_H_DIFF},
    [XTARGETS] = {"targets", GV_H_IN, GV_H_I32, GV_H_IDS, 0},
    [XW] = {"w", GV_H_IN, GV_H_F32, GV_H_WEIGHT, 0},
    [XLOSS] = {"loss", GV_H_OUT, GV_H_F32, GV_H_NONE, 0},
    [XLSE] = {"lse", GV_H_SAVED, GV_H_F32, GV_H_NONE, 0},
};
static const gv_h_case xent_cases[] = {
    {"R1 V5", {1, 5, 0}, {1.0}},
    {"R6 V3 norm 2.5", {6, 3, 0}, {2.5}},
    {"R3 V1", {3, 1, 0}, {1.0}},
    {"R4 V40 logits+60", {4, 40, 1}, {4.0}},
};
static void xent_layout(const gv_h_case *c, gv_h_layout *L) {
    L->dims.xent = (gv_xent_dims){.R = c->v[0], .V = c->v[1], .norm = (float)c->p[0]};
    L->numel[XLOGITS] = (int64_t)c->v[0] * c->v[1];
    L->numel[XTARGETS] = L->numel[XW] = L->numel[XLSE] = c->v[0];
    L->id_hi[XTARGETS] = c->v[1];
    L->numel[XLOSS] = 1;
    L->shift[XLOGITS] = c->v[2] ? 60.0f : 0.0f;
}
static gv_status xent_forward(gv_ctx *c, void *const *t, const gv_h_layout *L) {
    return c->backend->ops->cross_entropy_forward(c, t[XLOSS], t[XLSE], t[XLOGITS], t[XTARGETS],
                                                  t[XW], &L->dims.xent);
}
static gv_status xent_backward(gv_ctx *c, float *const *g, void *const *t, const gv_h_layout *L) {
    return c->backend->ops->cross_entropy_backward(c, g[XLOGITS], g[XLOSS], t[XLOGITS], t[XLSE],
                                                   t[XTARGETS], t[XW], &L->dims.xent);
}
/* loss = sum_r w_r (lse_r - logits[r, target_r]) / norm */
static void xent_reference(const gv_h_layout *L, const void *const *in, double *const *e) {
    const gv_xent_dims *d = &L->dims.xent;
    const float *x = in[XLOGITS], *w = in[XW];
    const int32_t *tg = in[XTARGETS];
    double loss = 0;
    for (int64_t r = 0; r < d->R; ++r) {
        const float *xr = x + r * d->V;
        double mx = xr[0], sum = 0;
        for (int j = 1; j < d->V; ++j) mx = fmax(mx, xr[j]);
        for (int j = 0; j < d->V; ++j) sum += exp(xr[j] - mx);
        e[XLSE][r] = mx + log(sum);
        loss += w[r] * (e[XLSE][r] - xr[tg[r]]);
    }
    e[XLOSS][0] = loss / d->norm;
}
static const gv_op_spec cross_entropy = {
    .name = "cross_entropy", .fwd_op = GV_OP_cross_entropy_forward,
    .bwd_op = GV_OP_cross_entropy_backward, .ntensors = GV_H_COUNT(xent_tensors),
    .tensors = xent_tensors, .ncases = GV_H_COUNT(xent_cases), .cases = xent_cases, .n_arg = -1,
    .layout = xent_layout, .run_forward = xent_forward, .run_backward = xent_backward,
    .reference = xent_reference,
};
GV_SPEC_FOR(cross_entropy_forward, cross_entropy);
GV_SPEC_FOR(cross_entropy_backward, cross_entropy);

/* ---- adamw_step: v = {n, step t}, p = {lr, weight_decay} -------------------------------------- */
enum { OP, OM, OV, OG };
static const gv_h_tensor adamw_tensors[] = {
    [OP] = {"p", GV_H_INOUT, GV_H_F32, GV_H_NORMAL, 0},
    [OM] = {"m", GV_H_INOUT, GV_H_F32, GV_H_NORMAL, 0},
    [OV] = {"v", GV_H_INOUT, GV_H_F32, GV_H_POSITIVE, 0},
    [OG] = {"g", GV_H_IN, GV_H_F32, GV_H_NORMAL, 0},
};
static const gv_h_case adamw_cases[] = {
    {"n1 t1", {1, 1}, {1e-3, 1e-2}},
    {"n37 t5 lr 0.1 no decay", {37, 5}, {0.1, 0.0}},
    {"n130 t1000", {130, 1000}, {3e-4, 1e-4}},
};
static void adamw_layout(const gv_h_case *c, gv_h_layout *L) {
    const double b1 = 0.9, b2 = 0.999;
    L->dims.adamw = (gv_adamw_args){.n = c->v[0], .lr = (float)c->p[0], .beta1 = (float)b1,
                                    .beta2 = (float)b2, .eps = 1e-8f,
                                    .weight_decay = (float)c->p[1],
                                    .bias_corr1 = (float)(1.0 - pow(b1, c->v[1])),
                                    .bias_corr2 = (float)(1.0 - pow(b2, c->v[1]))};
    for (int i = 0; i < 4; ++i) L->numel[i] = c->v[0];
}
static gv_status adamw_forward(gv_ctx *c, void *const *t, const gv_h_layout *L) {
    return c->backend->ops->adamw_step(c, t[OP], t[OM], t[OV], t[OG], &L->dims.adamw);
}
/* m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; p -= lr (m/bc1 / (sqrt(v/bc2) + eps) + wd p) */
static void adamw_reference(const gv_h_layout *L, const void *const *in, double *const *e) {
    const gv_adamw_args *a = &L->dims.adamw;
    const float *p = in[OP], *m = in[OM], *v = in[OV], *g = in[OG];
    for (int64_t i = 0; i < a->n; ++i) {
        double mi = (double)a->beta1 * m[i] + (1.0 - (double)a->beta1) * g[i];
        double vi = (double)a->beta2 * v[i] + (1.0 - (double)a->beta2) * g[i] * g[i];
        double upd = mi / a->bias_corr1 / (sqrt(vi / a->bias_corr2) + a->eps);
        e[OM][i] = mi;
        e[OV][i] = vi;
        e[OP][i] = p[i] - (double)a->lr * (upd + (double)a->weight_decay * p[i]);
    }
}
static const gv_op_spec adamw = {
    .name = "adamw_step", .fwd_op = GV_OP_adamw_step, .bwd_op = -1,
    .ntensors = GV_H_COUNT(adamw_tensors), .tensors = adamw_tensors,
    .ncases = GV_H_COUNT(adamw_cases), .cases = adamw_cases, .n_arg = -1,
    .layout = adamw_layout, .run_forward = adamw_forward, .reference = adamw_reference,
};
GV_SPEC_FOR(adamw_step, adamw);

/* ---- sumsq: v = {n, shifted} -------------------------------------------------------------------- */
enum { QX, QOUT };
static const gv_h_tensor sumsq_tensors[] = {
    [QX] = {"x", GV_H_IN, GV_H_F32, GV_H_NORMAL, 0},
    [QOUT] = {"out", GV_H_OUT, GV_H_F32, GV_H_NONE, 0},
};
static const gv_h_case sumsq_cases[] = {
    {"n1", {1, 0}, {0}}, {"n1000", {1000, 0}, {0}}, {"n40961 x+3", {40961, 1}, {0}}};
static void sumsq_layout(const gv_h_case *c, gv_h_layout *L) {
    L->dims.ew.n = c->v[0];
    L->numel[QX] = c->v[0];
    L->numel[QOUT] = 1;
    L->shift[QX] = c->v[1] ? 3.0f : 0.0f;
}
static gv_status sumsq_forward(gv_ctx *c, void *const *t, const gv_h_layout *L) {
    return c->backend->ops->sumsq(c, t[QOUT], t[QX], &L->dims.ew);
}
static void sumsq_reference(const gv_h_layout *L, const void *const *in, double *const *e) {
    const float *x = in[QX];
    double s = 0;
    for (int64_t i = 0; i < L->dims.ew.n; ++i) s += (double)x[i] * x[i];
    e[QOUT][0] = s;
}
/* fp64 accumulation: only the final rounding to float remains. */
static const gv_op_spec sumsq = {
    .name = "sumsq", .fwd_op = GV_OP_sumsq, .bwd_op = -1, .ntensors = GV_H_COUNT(sumsq_tensors),
    .tensors = sumsq_tensors, .ncases = GV_H_COUNT(sumsq_cases), .cases = sumsq_cases,
    .n_arg = -1, .layout = sumsq_layout, .run_forward = sumsq_forward,
    .reference = sumsq_reference, .ref_rtol = 2e-7,
};
GV_SPEC_FOR(sumsq, sumsq);

/* ---- philox_normal_fill: v = {n, offset, key0, key1, ctr1, ctr2, ctr3} ------------------------- */
enum { POUT };
static const gv_h_tensor philox_tensors[] = {
    [POUT] = {"out", GV_H_OUT, GV_H_F32, GV_H_NONE, 0},
};
static const gv_h_case philox_cases[] = {
    {"n1 offset 0", {1, 0, 1, 0, 0, 0, 0}, {0}},
    {"n37 offset 3", {37, 3, 12345, 7, 1, 2, 3}, {0}},
    {"n1001 offset 4093", {1001, 4093, -1, 99, 5, 0, 77}, {0}},
};
static void philox_layout(const gv_h_case *c, gv_h_layout *L) {
    const int *v = c->v;
    L->dims.philox = (gv_philox_args){.n = v[0], .key = {(uint32_t)v[2], (uint32_t)v[3]},
                                      .ctr_hi = {(uint32_t)v[4], (uint32_t)v[5], (uint32_t)v[6]},
                                      .offset = (uint64_t)v[1]};
    L->numel[POUT] = v[0];
}
static gv_status philox_forward(gv_ctx *c, void *const *t, const gv_h_layout *L) {
    return c->backend->ops->philox_normal_fill(c, t[POUT], &L->dims.philox);
}
static void philox_reference(const gv_h_layout *L, const void *const *in, double *const *e) {
    (void)in;
    const gv_philox_args *a = &L->dims.philox;
    for (int64_t i = 0; i < a->n; ++i)
        e[POUT][i] = gv_philox_normal_at(a->key, a->ctr_hi, a->offset + (uint64_t)i);
}
/* Bitwise: any difference from the host generator fails (rtol 1e-12 on exactly representable
   values; a pass still requires finite, non-NaN output). */
static const gv_op_spec philox = {
    .name = "philox_normal_fill", .fwd_op = GV_OP_philox_normal_fill, .bwd_op = -1,
    .ntensors = GV_H_COUNT(philox_tensors), .tensors = philox_tensors,
    .ncases = GV_H_COUNT(philox_cases), .cases = philox_cases, .n_arg = -1,
    .layout = philox_layout, .run_forward = philox_forward, .reference = philox_reference,
    .ref_rtol = 1e-12,
};
GV_SPEC_FOR(philox_normal_fill, philox);
