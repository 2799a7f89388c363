/* Harness specs: pointwise activations (silu, gelu) and row softmaxes (softmax, log_softmax).
 * Shapes: one element, D = 1, long rows; logits shifted by +60 to catch a missing max-subtraction.
 * Each has an fp64 reference of its forward; the backward is checked by finite differences. */
#include <math.h>

#include "harness.h"

enum { AX, AY };
static const gv_h_tensor act_tensors[] = {
    [AX] = {"x", GV_H_IN, GV_H_F32, GV_H_NORMAL, GV_H_DIFF | GV_H_PER_SAMPLE},
    [AY] = {"y", GV_H_OUT, GV_H_F32, GV_H_NONE, GV_H_PER_SAMPLE},
};

/* ---- pointwise: v = {N, elements per sample}, p = {input scale} ------------------------------ */
static const gv_h_case pointwise_cases[] = {
    {"N1 x1", {1, 1}, {0}},
    {"N3 x7", {3, 7}, {0}},
    {"N2 x129", {2, 129}, {0}},
};
static void pointwise_layout(const gv_h_case *c, gv_h_layout *L) {
    L->dims.ew.n = (int64_t)c->v[0] * c->v[1];
    L->numel[AX] = L->numel[AY] = L->dims.ew.n;
}
static gv_status silu_forward(gv_ctx *c, void *const *t, const gv_h_layout *L) {
    return c->backend->ops->silu_forward(c, t[AY], t[AX], &L->dims.ew);
}
static gv_status silu_backward(gv_ctx *c, float *const *g, void *const *t, const gv_h_layout *L) {
    return c->backend->ops->silu_backward(c, g[AX], g[AY], t[AX], &L->dims.ew);
}
static void silu_reference(const gv_h_layout *L, const void *const *in, double *const *e) {
    const float *x = in[AX];
    for (int64_t i = 0; i < L->dims.ew.n; ++i) e[AY][i] = x[i] / (1.0 + exp(-(double)x[i]));
}
static gv_status gelu_forward(gv_ctx *c, void *const *t, const gv_h_layout *L) {
    return c->backend->ops->gelu_forward(c, t[AY], t[AX], &L->dims.ew);
}
static gv_status gelu_backward(gv_ctx *c, float *const *g, void *const *t, const gv_h_layout *L) {
    return c->backend->ops->gelu_backward(c, g[AX], g[AY], t[AX], &L->dims.ew);
}
/* tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
static void gelu_reference(const gv_h_layout *L, const void *const *in, double *const *e) {
    const float *x = in[AX];
    for (int64_t i = 0; i < L->dims.ew.n; ++i) {
        double v = x[i];
        e[AY][i] = 0.5 * v * (1.0 + tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)));
    }
}
#define GV_POINTWISE_SPEC(op)                                                                      \
    static const gv_op_spec op = {                                                                 \
        .name = #op, .fwd_op = GV_OP_##op##_forward, .bwd_op = GV_OP_##op##_backward,              \
        .ntensors = GV_H_COUNT(act_tensors), .tensors = act_tensors,                               \
        .ncases = GV_H_COUNT(pointwise_cases), .cases = pointwise_cases, .n_arg = 0,               \
        .layout = pointwise_layout, .run_forward = op##_forward, .run_backward = op##_backward,   \
        .reference = op##_reference,                                                               \
    };                                                                                             \
    GV_SPEC_FOR(op##_forward, op);                                                                 \
    GV_SPEC_FOR(op##_backward, op)
GV_POINTWISE_SPEC(silu);
GV_POINTWISE_SPEC(gelu);

/* ---- row softmaxes: v = {N, rows per sample, D, shifted} -------------------------------------- */
static const gv_h_case rows_cases[] = {
    {"N1 R1 D5", {1, 1, 5, 0}, {0}},
    {"N2 R3 D7", {2, 3, 7, 0}, {0}},
    {"N3 R2 D1", {3, 2, 1, 0}, {0}},
    {"N2 R1 D40 logits+60", {2, 1, 40, 1}, {0}},
};
static void rows_layout(const gv_h_case *c, gv_h_layout *L) {
    L->dims.rows = (gv_rows_dims){.R = (int64_t)c->v[0] * c->v[1], .D = c->v[2]};
    L->numel[AX] = L->numel[AY] = L->dims.rows.R * c->v[2];
    L->shift[AX] = c->v[3] ? 60.0f : 0.0f;
}
static gv_status softmax_forward(gv_ctx *c, void *const *t, const gv_h_layout *L) {
    return c->backend->ops->softmax_forward(c, t[AY], t[AX], &L->dims.rows);
}
static gv_status softmax_backward(gv_ctx *c, float *const *g, void *const *t,
                                  const gv_h_layout *L) {
    return c->backend->ops->softmax_backward(c, g[AX], g[AY], t[AY], &L->dims.rows);
}
static gv_status log_softmax_forward(gv_ctx *c, void *const *t, const gv_h_layout *L) {
    return c->backend->ops->log_softmax_forward(c, t[AY], t[AX], &L->dims.rows);
}
static gv_status log_softmax_backward(gv_ctx *c, float *const *g, void *const *t,
                                      const gv_h_layout *L) {
    return c->backend->ops->log_softmax_backward(c, g[AX], g[AY], t[AY], &L->dims.rows);
}
/* Both references: lse = max + log sum exp(x - max) per row, in fp64. */
static void rows_reference(const gv_h_layout *L, const void *const *in, double *const *e,
                           int log_space) {
    const float *x = in[AX];
    int D = L->dims.rows.D;
    for (int64_t r = 0; r < L->dims.rows.R; ++r) {
        const float *xr = x + r * D;
        double mx = xr[0], sum = 0;
        for (int j = 1; j < D; ++j) mx = fmax(mx, xr[j]);
        for (int j = 0; j < D; ++j) sum += exp(xr[j] - mx);
        double lse = mx + log(sum);
        for (int j = 0; j < D; ++j)
            e[AY][r * D + j] = log_space ? xr[j] - lse : exp(xr[j] - lse);
    }
}
static void softmax_reference(const gv_h_layout *L, const void *const *in, double *const *e) {
    rows_reference(L, in, e, 0);
}
static void log_softmax_reference(const gv_h_layout *L, const void *const *in,
                                  double *const *e) {
    rows_reference(L, in, e, 1);
}
#define GV_ROWS_SPEC(op)                                                                           \
    static const gv_op_spec op = {                                                                 \
        .name = #op, .fwd_op = GV_OP_##op##_forward, .bwd_op = GV_OP_##op##_backward,              \
        .ntensors = GV_H_COUNT(act_tensors), .tensors = act_tensors,                               \
        .ncases = GV_H_COUNT(rows_cases), .cases = rows_cases, .n_arg = 0,                         \
        .layout = rows_layout, .run_forward = op##_forward, .run_backward = op##_backward,         \
        .reference = op##_reference,                                                               \
    };                                                                                             \
    GV_SPEC_FOR(op##_forward, op);                                                                 \
    GV_SPEC_FOR(op##_backward, op)
GV_ROWS_SPEC(softmax);
GV_ROWS_SPEC(log_softmax);
