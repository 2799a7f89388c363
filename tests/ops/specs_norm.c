/* Harness specs: group norm and layer norm (with their saved mean / rstd).
 * Shapes: C not divisible by G, G = 1, G = C, HW = 1, D = 1 (zero variance), N = 1. */
#include <math.h>

#include "harness.h"

enum { NX, NGAMMA, NBETA, NY, NMEAN, NRSTD };
static const gv_h_tensor norm_tensors[] = {
    [NX] = {"x", GV_H_IN, GV_H_F32, GV_H_NORMAL, GV_H_DIFF | GV_H_PER_SAMPLE},
    [NGAMMA] = {"gamma", GV_H_IN, GV_H_F32, GV_H_NORMAL, GV_H_DIFF},
    [NBETA] = {"beta", GV_H_IN, GV_H_F32, GV_H_NORMAL, GV_H_DIFF},
    [NY] = {"y", GV_H_OUT, GV_H_F32, GV_H_NONE, GV_H_PER_SAMPLE},
    [NMEAN] = {"mean", GV_H_SAVED, GV_H_F32, GV_H_NONE, GV_H_PER_SAMPLE},
    [NRSTD] = {"rstd", GV_H_SAVED, GV_H_F32, GV_H_NONE, GV_H_PER_SAMPLE},
};

/* ---- groupnorm: v = {N, C, HW, G}, p = {eps} ------------------------------------------------- */
static const gv_h_case groupnorm_cases[] = {
    {"N1 C4 HW6 G2", {1, 4, 6, 2}, {1e-5}},
    {"N2 C5 HW3 G3 (C % G != 0)", {2, 5, 3, 3}, {1e-5}},
    {"N3 C7 HW4 G7", {3, 7, 4, 7}, {1e-5}},
    {"N2 C3 HW5 G1", {2, 3, 5, 1}, {1e-3}},
    {"N2 C6 HW1 G4 (C % G != 0)", {2, 6, 1, 4}, {1e-5}},
};
static void groupnorm_layout(const gv_h_case *c, gv_h_layout *L) {
    gv_groupnorm_dims *d = &L->dims.groupnorm;
    *d = (gv_groupnorm_dims){.N = c->v[0], .C = c->v[1], .HW = c->v[2], .G = c->v[3],
                             .eps = (float)c->p[0]};
    L->numel[NX] = L->numel[NY] = (int64_t)d->N * d->C * d->HW;
    L->numel[NGAMMA] = L->numel[NBETA] = d->C;
    L->numel[NMEAN] = L->numel[NRSTD] = (int64_t)d->N * d->G;
}
static gv_status groupnorm_forward(gv_ctx *c, void *const *t, const gv_h_layout *L) {
    return c->backend->ops->groupnorm_forward(c, t[NY], t[NMEAN], t[NRSTD], t[NX], t[NGAMMA],
                                              t[NBETA], &L->dims.groupnorm);
}
static gv_status groupnorm_backward(gv_ctx *c, float *const *g, void *const *t,
                                    const gv_h_layout *L) {
    return c->backend->ops->groupnorm_backward(c, g[NX], g[NGAMMA], g[NBETA], g[NY], t[NX],
                                               t[NMEAN], t[NRSTD], t[NGAMMA], &L->dims.groupnorm);
}
/* Per (n, group): mean, 1/sqrt(var + eps) (biased variance), then y = xhat * gamma + beta. */
static void groupnorm_reference(const gv_h_layout *L, const void *const *in, double *const *e) {
    const gv_groupnorm_dims *d = &L->dims.groupnorm;
    const float *x = in[NX], *gamma = in[NGAMMA], *beta = in[NBETA];
    for (int n = 0; n < d->N; ++n)
        for (int g = 0; g < d->G; ++g) {
            int c0 = (int)((int64_t)g * d->C / d->G), c1 = (int)((int64_t)(g + 1) * d->C / d->G);
            const float *xg = x + ((int64_t)n * d->C + c0) * d->HW;
            int64_t m = (c1 - c0) * d->HW;
            double mean = 0, var = 0;
            for (int64_t i = 0; i < m; ++i) mean += xg[i];
            mean /= (double)m;
            for (int64_t i = 0; i < m; ++i) var += (xg[i] - mean) * (xg[i] - mean);
            double rstd = 1.0 / sqrt(var / (double)m + d->eps);
            e[NMEAN][n * d->G + g] = mean;
            e[NRSTD][n * d->G + g] = rstd;
            for (int64_t i = 0; i < m; ++i) {
                int ch = c0 + (int)(i / d->HW);
                e[NY][((int64_t)n * d->C + c0) * d->HW + i] =
                    (xg[i] - mean) * rstd * gamma[ch] + beta[ch];
            }
        }
}
static const gv_op_spec groupnorm = {
    .name = "groupnorm", .fwd_op = GV_OP_groupnorm_forward, .bwd_op = GV_OP_groupnorm_backward,
    .ntensors = GV_H_COUNT(norm_tensors), .tensors = norm_tensors,
    .ncases = GV_H_COUNT(groupnorm_cases), .cases = groupnorm_cases, .n_arg = 0,
    .layout = groupnorm_layout, .run_forward = groupnorm_forward,
    .run_backward = groupnorm_backward, .reference = groupnorm_reference, .fd_h = 5e-3,
    .ref_rtol = 1e-4,
};
GV_SPEC_FOR(groupnorm_forward, groupnorm);
GV_SPEC_FOR(groupnorm_backward, groupnorm);

/* ---- layernorm: v = {N, D}, p = {eps} --------------------------------------------------------- */
static const gv_h_case layernorm_cases[] = {
    {"N1 D5", {1, 5}, {1e-5}},
    {"N4 D8", {4, 8}, {1e-5}},
    {"N3 D1 (zero variance)", {3, 1}, {1e-5}},
    {"N2 D33", {2, 33}, {1e-3}},
};
static void layernorm_layout(const gv_h_case *c, gv_h_layout *L) {
    gv_layernorm_dims *d = &L->dims.layernorm;
    *d = (gv_layernorm_dims){.N = c->v[0], .D = c->v[1], .eps = (float)c->p[0]};
    L->numel[NX] = L->numel[NY] = d->N * d->D;
    L->numel[NGAMMA] = L->numel[NBETA] = d->D;
    L->numel[NMEAN] = L->numel[NRSTD] = d->N;
}
static gv_status layernorm_forward(gv_ctx *c, void *const *t, const gv_h_layout *L) {
    return c->backend->ops->layernorm_forward(c, t[NY], t[NMEAN], t[NRSTD], t[NX], t[NGAMMA],
                                              t[NBETA], &L->dims.layernorm);
}
static gv_status layernorm_backward(gv_ctx *c, float *const *g, void *const *t,
                                    const gv_h_layout *L) {
    return c->backend->ops->layernorm_backward(c, g[NX], g[NGAMMA], g[NBETA], g[NY], t[NX],
                                               t[NMEAN], t[NRSTD], t[NGAMMA], &L->dims.layernorm);
}
/* Layer norm is group norm with one group of D channels of size 1 per row. */
static void layernorm_reference(const gv_h_layout *L, const void *const *in, double *const *e) {
    const gv_layernorm_dims *d = &L->dims.layernorm;
    gv_h_layout as_group = *L;
    as_group.dims.groupnorm =
        (gv_groupnorm_dims){.N = (int)d->N, .C = d->D, .HW = 1, .G = 1, .eps = d->eps};
    groupnorm_reference(&as_group, in, e);
}
static const gv_op_spec layernorm = {
    .name = "layernorm", .fwd_op = GV_OP_layernorm_forward, .bwd_op = GV_OP_layernorm_backward,
    .ntensors = GV_H_COUNT(norm_tensors), .tensors = norm_tensors,
    .ncases = GV_H_COUNT(layernorm_cases), .cases = layernorm_cases, .n_arg = 0,
    .layout = layernorm_layout, .run_forward = layernorm_forward,
    .run_backward = layernorm_backward, .reference = layernorm_reference, .fd_h = 5e-3,
    .ref_rtol = 1e-4,
};
GV_SPEC_FOR(layernorm_forward, layernorm);
GV_SPEC_FOR(layernorm_backward, layernorm);
