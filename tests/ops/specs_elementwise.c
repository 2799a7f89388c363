/* Harness specs: data movement (upsample, concat, add_channel) and the forward-only elementwise
 * ops (add, scale, axpby), including in-place calls (outputs may alias inputs).
 * Every forward has an fp64 reference; the backwards are checked by finite differences. */
#include "harness.h"

/* ---- upsample_nearest: v = {N, C, H, W, f} ---------------------------------------------------- */
enum { UX, UY };
static const gv_h_tensor unary_tensors[] = {
    [UX] = {"x", GV_H_IN, GV_H_F32, GV_H_NORMAL, GV_H_DIFF | GV_H_PER_SAMPLE},
    [UY] = {"y", GV_H_OUT, GV_H_F32, GV_H_NONE, GV_H_PER_SAMPLE},
};
static const gv_h_case upsample_cases[] = {
    {"N1 C2 3x4 f2", {1, 2, 3, 4, 2}, {0}},
    {"N2 C1 1x1 f3", {2, 1, 1, 1, 3}, {0}},
    {"N3 C3 2x5 f1", {3, 3, 2, 5, 1}, {0}},
};
static void upsample_layout(const gv_h_case *c, gv_h_layout *L) {
    const int *v = c->v;
    L->dims.upsample = (gv_upsample_dims){.N = v[0], .C = v[1], .H = v[2], .W = v[3], .f = v[4]};
    L->numel[UX] = (int64_t)v[0] * v[1] * v[2] * v[3];
    L->numel[UY] = L->numel[UX] * v[4] * v[4];
}
static gv_status upsample_forward(gv_ctx *c, void *const *t, const gv_h_layout *L) {
    return c->backend->ops->upsample_nearest_forward(c, t[UY], t[UX], &L->dims.upsample);
}
static gv_status upsample_backward(gv_ctx *c, float *const *g, void *const *t,
                                   const gv_h_layout *L) {
    (void)t;
    return c->backend->ops->upsample_nearest_backward(c, g[UX], g[UY], &L->dims.upsample);
}
static void upsample_reference(const gv_h_layout *L, const void *const *in, double *const *e) {
    const gv_upsample_dims *d = &L->dims.upsample;
    const float *x = in[UX];
    int64_t Ho = (int64_t)d->H * d->f, Wo = (int64_t)d->W * d->f;
    for (int64_t nc = 0; nc < (int64_t)d->N * d->C; ++nc)
        for (int64_t i = 0; i < Ho; ++i)
            for (int64_t j = 0; j < Wo; ++j)
                e[UY][(nc * Ho + i) * Wo + j] = x[(nc * d->H + i / d->f) * d->W + j / d->f];
}
static const gv_op_spec upsample = {
    .name = "upsample_nearest", .fwd_op = GV_OP_upsample_nearest_forward,
    .bwd_op = GV_OP_upsample_nearest_backward, .ntensors = GV_H_COUNT(unary_tensors),
    .tensors = unary_tensors, .ncases = GV_H_COUNT(upsample_cases), .cases = upsample_cases,
    .n_arg = 0, .layout = upsample_layout, .run_forward = upsample_forward,
    .run_backward = upsample_backward, .reference = upsample_reference,
};
GV_SPEC_FOR(upsample_nearest_forward, upsample);
GV_SPEC_FOR(upsample_nearest_backward, upsample);

/* ---- concat: v = {N, Ca, Cb, HW} -------------------------------------------------------------- */
enum { BA, BB, BY };
static const gv_h_tensor binary_tensors[] = {
    [BA] = {"a", GV_H_IN, GV_H_F32, GV_H_NORMAL, GV_H_DIFF | GV_H_PER_SAMPLE},
    [BB] = {"b", GV_H_IN, GV_H_F32, GV_H_NORMAL, GV_H_DIFF | GV_H_PER_SAMPLE},
    [BY] = {"y", GV_H_OUT, GV_H_F32, GV_H_NONE, GV_H_PER_SAMPLE},
};
static const gv_h_case concat_cases[] = {
    {"N1 Ca2 Cb3 HW4", {1, 2, 3, 4}, {0}},
    {"N2 Ca1 Cb1 HW5", {2, 1, 1, 5}, {0}},
    {"N3 Ca4 Cb2 HW1", {3, 4, 2, 1}, {0}},
};
static void concat_layout(const gv_h_case *c, gv_h_layout *L) {
    const int *v = c->v;
    L->dims.concat = (gv_concat_dims){.N = v[0], .Ca = v[1], .Cb = v[2], .HW = v[3]};
    L->numel[BA] = (int64_t)v[0] * v[1] * v[3];
    L->numel[BB] = (int64_t)v[0] * v[2] * v[3];
    L->numel[BY] = L->numel[BA] + L->numel[BB];
}
static gv_status concat_forward(gv_ctx *c, void *const *t, const gv_h_layout *L) {
    return c->backend->ops->concat_forward(c, t[BY], t[BA], t[BB], &L->dims.concat);
}
static gv_status concat_backward(gv_ctx *c, float *const *g, void *const *t,
                                 const gv_h_layout *L) {
    (void)t;
    return c->backend->ops->concat_backward(c, g[BA], g[BB], g[BY], &L->dims.concat);
}
static void concat_reference(const gv_h_layout *L, const void *const *in, double *const *e) {
    const gv_concat_dims *d = &L->dims.concat;
    const float *a = in[BA], *b = in[BB];
    int64_t na = d->Ca * d->HW, nb = d->Cb * d->HW;
    for (int n = 0; n < d->N; ++n) {
        for (int64_t i = 0; i < na; ++i) e[BY][n * (na + nb) + i] = a[n * na + i];
        for (int64_t i = 0; i < nb; ++i) e[BY][n * (na + nb) + na + i] = b[n * nb + i];
    }
}
static const gv_op_spec concat = {
    .name = "concat", .fwd_op = GV_OP_concat_forward, .bwd_op = GV_OP_concat_backward,
    .ntensors = GV_H_COUNT(binary_tensors), .tensors = binary_tensors,
    .ncases = GV_H_COUNT(concat_cases), .cases = concat_cases, .n_arg = 0,
    .layout = concat_layout, .run_forward = concat_forward, .run_backward = concat_backward,
    .reference = concat_reference,
};
GV_SPEC_FOR(concat_forward, concat);
GV_SPEC_FOR(concat_backward, concat);

/* ---- add_channel: v = {N, C, HW}; a = x (N,C,HW), b = e (N,C) ---------------------------------- */
static const gv_h_case add_channel_cases[] = {
    {"N1 C3 HW4", {1, 3, 4}, {0}},
    {"N2 C5 HW1", {2, 5, 1}, {0}},
    {"N3 C2 HW7", {3, 2, 7}, {0}},
};
static void add_channel_layout(const gv_h_case *c, gv_h_layout *L) {
    L->dims.channel = (gv_channel_dims){.N = c->v[0], .C = c->v[1], .HW = c->v[2]};
    L->numel[BA] = L->numel[BY] = (int64_t)c->v[0] * c->v[1] * c->v[2];
    L->numel[BB] = (int64_t)c->v[0] * c->v[1];
}
static gv_status add_channel_forward(gv_ctx *c, void *const *t, const gv_h_layout *L) {
    return c->backend->ops->add_channel_forward(c, t[BY], t[BA], t[BB], &L->dims.channel);
}
static gv_status add_channel_backward(gv_ctx *c, float *const *g, void *const *t,
                                      const gv_h_layout *L) {
    (void)t;
    return c->backend->ops->add_channel_backward(c, g[BA], g[BB], g[BY], &L->dims.channel);
}
static void add_channel_reference(const gv_h_layout *L, const void *const *in, double *const *e) {
    const gv_channel_dims *d = &L->dims.channel;
    const float *x = in[BA], *ch = in[BB];
    for (int64_t i = 0; i < L->numel[BY]; ++i) e[BY][i] = (double)x[i] + ch[i / d->HW];
}
static const gv_op_spec add_channel = {
    .name = "add_channel", .fwd_op = GV_OP_add_channel_forward,
    .bwd_op = GV_OP_add_channel_backward, .ntensors = GV_H_COUNT(binary_tensors),
    .tensors = binary_tensors, .ncases = GV_H_COUNT(add_channel_cases),
    .cases = add_channel_cases, .n_arg = 0, .layout = add_channel_layout,
    .run_forward = add_channel_forward, .run_backward = add_channel_backward,
    .reference = add_channel_reference,
};
GV_SPEC_FOR(add_channel_forward, add_channel);
GV_SPEC_FOR(add_channel_backward, add_channel);

/* ---- add, scale, axpby: v = {N, elements per sample, in place}, p = {alpha, beta} ------------- */
/* Tensor 0 is the first operand, 1 the second (add: b; axpby: y, updated in place), 2 the output. */
enum { WX, WY, WOUT };
static const gv_h_tensor add_tensors[] = {
    [WX] = {"a", GV_H_IN, GV_H_F32, GV_H_NORMAL, GV_H_PER_SAMPLE},
    [WY] = {"b", GV_H_IN, GV_H_F32, GV_H_NORMAL, GV_H_PER_SAMPLE},
    [WOUT] = {"y", GV_H_OUT, GV_H_F32, GV_H_NONE, GV_H_PER_SAMPLE},
};
static const gv_h_tensor scale_tensors[] = {
    [WX] = {"x", GV_H_IN, GV_H_F32, GV_H_NORMAL, GV_H_PER_SAMPLE},
    [WY] = {"y", GV_H_OUT, GV_H_F32, GV_H_NONE, GV_H_PER_SAMPLE},
};
static const gv_h_tensor axpby_tensors[] = {
    [WX] = {"x", GV_H_IN, GV_H_F32, GV_H_NORMAL, GV_H_PER_SAMPLE},
    [WY] = {"y", GV_H_INOUT, GV_H_F32, GV_H_NORMAL, GV_H_PER_SAMPLE},
};
static const gv_h_case ew_cases[] = {
    {"N1 x1", {1, 1, 0}, {-1.5, 0.25}},
    {"N3 x37", {3, 37, 0}, {0.5, -2.0}},
    {"N2 x5 in place", {2, 5, 1}, {3.0, 0.75}},
};
static void ew_layout(const gv_h_case *c, gv_h_layout *L) {
    L->dims.ew.n = (int64_t)c->v[0] * c->v[1];
    for (int i = 0; i < 3; ++i) L->numel[i] = L->dims.ew.n;
    L->alpha = (float)c->p[0];
    L->beta = (float)c->p[1];
    L->variant = c->v[2];
}
static int in_place(const gv_h_layout *L) { return L->variant; }

static gv_status add_forward(gv_ctx *c, void *const *t, const gv_h_layout *L) {
    if (!in_place(L)) return c->backend->ops->add(c, t[WOUT], t[WX], t[WY], &L->dims.ew);
    GV_TRY(c->backend->copy(t[WOUT], t[WX], (size_t)L->dims.ew.n * sizeof(float)));
    return c->backend->ops->add(c, t[WOUT], t[WOUT], t[WY], &L->dims.ew);
}
static void add_reference(const gv_h_layout *L, const void *const *in, double *const *e) {
    const float *a = in[WX], *b = in[WY];
    for (int64_t i = 0; i < L->dims.ew.n; ++i) e[WOUT][i] = (double)a[i] + b[i];
}
static gv_status scale_forward(gv_ctx *c, void *const *t, const gv_h_layout *L) {
    if (!in_place(L)) return c->backend->ops->scale(c, t[WY], t[WX], L->alpha, &L->dims.ew);
    GV_TRY(c->backend->copy(t[WY], t[WX], (size_t)L->dims.ew.n * sizeof(float)));
    return c->backend->ops->scale(c, t[WY], t[WY], L->alpha, &L->dims.ew);
}
static void scale_reference(const gv_h_layout *L, const void *const *in, double *const *e) {
    const float *x = in[WX];
    for (int64_t i = 0; i < L->dims.ew.n; ++i) e[WY][i] = (double)L->alpha * x[i];
}
/* In place here means x aliases y: y = (alpha + beta) y. */
static gv_status axpby_forward(gv_ctx *c, void *const *t, const gv_h_layout *L) {
    return c->backend->ops->axpby(c, t[WY], in_place(L) ? t[WY] : t[WX], L->alpha, L->beta,
                                  &L->dims.ew);
}
static void axpby_reference(const gv_h_layout *L, const void *const *in, double *const *e) {
    const float *x = in_place(L) ? in[WY] : in[WX], *y = in[WY];
    for (int64_t i = 0; i < L->dims.ew.n; ++i)
        e[WY][i] = (double)L->alpha * x[i] + (double)L->beta * y[i];
}
#define GV_EW_SPEC(op)                                                                             \
    static const gv_op_spec op##_spec = {                                                          \
        .name = #op, .fwd_op = GV_OP_##op, .bwd_op = -1, .ntensors = GV_H_COUNT(op##_tensors),     \
        .tensors = op##_tensors, .ncases = GV_H_COUNT(ew_cases), .cases = ew_cases, .n_arg = 0,    \
        .layout = ew_layout, .run_forward = op##_forward, .reference = op##_reference,             \
    };                                                                                             \
    GV_SPEC_FOR(op, op##_spec)
GV_EW_SPEC(add);
GV_EW_SPEC(scale);
GV_EW_SPEC(axpby);
