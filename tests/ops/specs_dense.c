/* Harness specs: the dense layers with oneDNN fast paths (conv2d, linear, matmul).
 * Shapes: N = 1, stride 2, non-square images and kernels, 1x1 kernels, no bias, a 1-wide matmul.
 * Forward correctness is checked by reference-vs-oneDNN parity and finite differences. */
#include "harness.h"

/* ---- conv2d: v = {N, C, H, W, K, R, S, stride, pad, has_bias} ------------------------------- */
enum { CX, CW, CB, CY };
static const gv_h_tensor conv_tensors[] = {
    [CX] = {"x", GV_H_IN, GV_H_F32, GV_H_NORMAL, GV_H_DIFF | GV_H_PER_SAMPLE},
    [CW] = {"w", GV_H_IN, GV_H_F32, GV_H_NORMAL, GV_H_DIFF},
    [CB] = {"b", GV_H_IN, GV_H_F32, GV_H_NORMAL, GV_H_DIFF},
    [CY] = {"y", GV_H_OUT, GV_H_F32, GV_H_NONE, GV_H_PER_SAMPLE},
};
static const gv_h_case conv_cases[] = {
    {"N1 C3 5x7 K4 3x3 s1 p1", {1, 3, 5, 7, 4, 3, 3, 1, 1, 1}, {0}},
    {"N2 C2 6x5 K3 3x3 s2 p1", {2, 2, 6, 5, 3, 3, 3, 2, 1, 1}, {0}},
    {"N3 C5 4x4 K2 1x1 s1 p0 no bias", {3, 5, 4, 4, 2, 1, 1, 1, 0, 0}, {0}},
    {"N2 C1 7x3 K5 3x2 s2 p0", {2, 1, 7, 3, 5, 3, 2, 2, 0, 1}, {0}},
    {"N1 C4 3x3 K3 5x5 s1 p2", {1, 4, 3, 3, 3, 5, 5, 1, 2, 1}, {0}},
};
static void conv_layout(const gv_h_case *c, gv_h_layout *L) {
    gv_conv2d_dims *d = &L->dims.conv2d;
    const int *v = c->v;
    *d = (gv_conv2d_dims){.N = v[0], .C = v[1], .H = v[2], .W = v[3], .K = v[4], .R = v[5],
                          .S = v[6], .stride = v[7], .pad = v[8]};
    gv_conv2d_dims_set(d);
    L->numel[CX] = (int64_t)d->N * d->C * d->H * d->W;
    L->numel[CW] = (int64_t)d->K * d->C * d->R * d->S;
    L->numel[CB] = v[9] ? d->K : 0;
    L->numel[CY] = (int64_t)d->N * d->K * d->P * d->Q;
}
static gv_status conv_forward(gv_ctx *c, void *const *t, const gv_h_layout *L) {
    return c->backend->ops->conv2d_forward(c, t[CY], t[CX], t[CW], t[CB], &L->dims.conv2d);
}
static gv_status conv_backward(gv_ctx *c, float *const *g, void *const *t, const gv_h_layout *L) {
    return c->backend->ops->conv2d_backward(c, g[CX], g[CW], g[CB], g[CY], t[CX], t[CW],
                                            &L->dims.conv2d);
}
static const gv_op_spec conv2d = {
    .name = "conv2d", .fwd_op = GV_OP_conv2d_forward, .bwd_op = GV_OP_conv2d_backward,
    .ntensors = GV_H_COUNT(conv_tensors), .tensors = conv_tensors,
    .ncases = GV_H_COUNT(conv_cases), .cases = conv_cases, .n_arg = 0,
    .layout = conv_layout, .run_forward = conv_forward, .run_backward = conv_backward,
};
GV_SPEC_FOR(conv2d_forward, conv2d);
GV_SPEC_FOR(conv2d_backward, conv2d);

/* ---- linear: v = {N, Din, Dout, has_bias} ----------------------------------------------------- */
enum { LX, LW, LB, LY };
static const gv_h_tensor linear_tensors[] = {
    [LX] = {"x", GV_H_IN, GV_H_F32, GV_H_NORMAL, GV_H_DIFF | GV_H_PER_SAMPLE},
    [LW] = {"w", GV_H_IN, GV_H_F32, GV_H_NORMAL, GV_H_DIFF},
    [LB] = {"b", GV_H_IN, GV_H_F32, GV_H_NORMAL, GV_H_DIFF},
    [LY] = {"y", GV_H_OUT, GV_H_F32, GV_H_NONE, GV_H_PER_SAMPLE},
};
static const gv_h_case linear_cases[] = {
    {"N1 5->3", {1, 5, 3, 1}, {0}},
    {"N4 7->6", {4, 7, 6, 1}, {0}},
    {"N3 1->2 no bias", {3, 1, 2, 0}, {0}},
    {"N2 33->9", {2, 33, 9, 1}, {0}},
};
static void linear_layout(const gv_h_case *c, gv_h_layout *L) {
    gv_linear_dims *d = &L->dims.linear;
    *d = (gv_linear_dims){.N = c->v[0], .Din = c->v[1], .Dout = c->v[2]};
    L->numel[LX] = (int64_t)d->N * d->Din;
    L->numel[LW] = (int64_t)d->Dout * d->Din;
    L->numel[LB] = c->v[3] ? d->Dout : 0;
    L->numel[LY] = (int64_t)d->N * d->Dout;
}
static gv_status linear_forward(gv_ctx *c, void *const *t, const gv_h_layout *L) {
    return c->backend->ops->linear_forward(c, t[LY], t[LX], t[LW], t[LB], &L->dims.linear);
}
static gv_status linear_backward(gv_ctx *c, float *const *g, void *const *t,
                                 const gv_h_layout *L) {
    return c->backend->ops->linear_backward(c, g[LX], g[LW], g[LB], g[LY], t[LX], t[LW],
                                            &L->dims.linear);
}
static const gv_op_spec linear = {
    .name = "linear", .fwd_op = GV_OP_linear_forward, .bwd_op = GV_OP_linear_backward,
    .ntensors = GV_H_COUNT(linear_tensors), .tensors = linear_tensors,
    .ncases = GV_H_COUNT(linear_cases), .cases = linear_cases, .n_arg = 0,
    .layout = linear_layout, .run_forward = linear_forward, .run_backward = linear_backward,
};
GV_SPEC_FOR(linear_forward, linear);
GV_SPEC_FOR(linear_backward, linear);

/* ---- matmul: v = {B, M, K, N}; B is the per-sample batch -------------------------------------- */
enum { MA, MB, MY };
static const gv_h_tensor matmul_tensors[] = {
    [MA] = {"a", GV_H_IN, GV_H_F32, GV_H_NORMAL, GV_H_DIFF | GV_H_PER_SAMPLE},
    [MB] = {"b", GV_H_IN, GV_H_F32, GV_H_NORMAL, GV_H_DIFF | GV_H_PER_SAMPLE},
    [MY] = {"y", GV_H_OUT, GV_H_F32, GV_H_NONE, GV_H_PER_SAMPLE},
};
static const gv_h_case matmul_cases[] = {
    {"B1 3x4 . 4x5", {1, 3, 4, 5}, {0}},
    {"B2 1x7 . 7x3", {2, 1, 7, 3}, {0}},
    {"B3 5x2 . 2x1", {3, 5, 2, 1}, {0}},
    {"B2 6x6 . 6x6", {2, 6, 6, 6}, {0}},
};
static void matmul_layout(const gv_h_case *c, gv_h_layout *L) {
    gv_matmul_dims *d = &L->dims.matmul;
    *d = (gv_matmul_dims){.B = c->v[0], .M = c->v[1], .K = c->v[2], .N = c->v[3]};
    L->numel[MA] = (int64_t)d->B * d->M * d->K;
    L->numel[MB] = (int64_t)d->B * d->K * d->N;
    L->numel[MY] = (int64_t)d->B * d->M * d->N;
}
static gv_status matmul_forward(gv_ctx *c, void *const *t, const gv_h_layout *L) {
    return c->backend->ops->matmul_forward(c, t[MY], t[MA], t[MB], &L->dims.matmul);
}
static gv_status matmul_backward(gv_ctx *c, float *const *g, void *const *t,
                                 const gv_h_layout *L) {
    return c->backend->ops->matmul_backward(c, g[MA], g[MB], g[MY], t[MA], t[MB],
                                            &L->dims.matmul);
}
static const gv_op_spec matmul = {
    .name = "matmul", .fwd_op = GV_OP_matmul_forward, .bwd_op = GV_OP_matmul_backward,
    .ntensors = GV_H_COUNT(matmul_tensors), .tensors = matmul_tensors,
    .ncases = GV_H_COUNT(matmul_cases), .cases = matmul_cases, .n_arg = 0,
    .layout = matmul_layout, .run_forward = matmul_forward, .run_backward = matmul_backward,
};
GV_SPEC_FOR(matmul_forward, matmul);
GV_SPEC_FOR(matmul_backward, matmul);
