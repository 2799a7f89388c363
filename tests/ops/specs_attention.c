/* Harness spec: the multi-head self-attention core (with saved probs and an optional key mask).
 * Shapes: T = 1, head width 1 (H = D), a mask with a fully masked sample (zero output), no mask.
 * The forward has an fp64 reference; the backward is checked by finite differences. */
#include <math.h>
#include <stdlib.h>

#include "harness.h"

enum { TQ, TK, TV, TMASK, TY, TPROBS };
static const gv_h_tensor attention_tensors[] = {
    [TQ] = {"q", GV_H_IN, GV_H_F32, GV_H_NORMAL, GV_H_DIFF | GV_H_PER_SAMPLE},
    [TK] = {"k", GV_H_IN, GV_H_F32, GV_H_NORMAL, GV_H_DIFF | GV_H_PER_SAMPLE},
    [TV] = {"v", GV_H_IN, GV_H_F32, GV_H_NORMAL, GV_H_DIFF | GV_H_PER_SAMPLE},
    [TMASK] = {"key_mask", GV_H_IN, GV_H_U8, GV_H_MASK, GV_H_PER_SAMPLE},
    [TY] = {"y", GV_H_OUT, GV_H_F32, GV_H_NONE, GV_H_PER_SAMPLE},
    [TPROBS] = {"probs", GV_H_SAVED, GV_H_F32, GV_H_NONE, GV_H_PER_SAMPLE},
};

/* v = {N, T, D, H, masked} */
static const gv_h_case attention_cases[] = {
    {"N1 T1 D4 H1", {1, 1, 4, 1, 0}, {0}},
    {"N2 T3 D6 H2 masked", {2, 3, 6, 2, 1}, {0}},
    {"N3 T5 D4 H4 masked", {3, 5, 4, 4, 1}, {0}},
    {"N2 T4 D8 H2", {2, 4, 8, 2, 0}, {0}},
};
static void attention_layout(const gv_h_case *c, gv_h_layout *L) {
    gv_attention_dims *d = &L->dims.attention;
    *d = (gv_attention_dims){.N = c->v[0], .T = c->v[1], .D = c->v[2], .H = c->v[3]};
    L->numel[TQ] = L->numel[TK] = L->numel[TV] = L->numel[TY] = (int64_t)d->N * d->T * d->D;
    L->numel[TMASK] = c->v[4] ? (int64_t)d->N * d->T : 0;
    L->numel[TPROBS] = (int64_t)d->N * d->H * d->T * d->T;
}
static gv_status attention_forward(gv_ctx *c, void *const *t, const gv_h_layout *L) {
    return c->backend->ops->attention_forward(c, t[TY], t[TPROBS], t[TQ], t[TK], t[TV], t[TMASK],
                                              &L->dims.attention);
}
static gv_status attention_backward(gv_ctx *c, float *const *g, void *const *t,
                                    const gv_h_layout *L) {
    return c->backend->ops->attention_backward(c, g[TQ], g[TK], g[TV], g[TY], t[TQ], t[TK], t[TV],
                                               t[TPROBS], t[TMASK], &L->dims.attention);
}

/* Per (n, h, query i): p_j = softmax_j(q_i . k_j / sqrt(dh)) over unmasked keys j, y_i = sum p_j v_j.
   Masked keys get probability 0; a query with no key gets y = 0 and probs 0. */
static void attention_reference(const gv_h_layout *L, const void *const *in, double *const *e) {
    const gv_attention_dims *d = &L->dims.attention;
    const float *q = in[TQ], *k = in[TK], *v = in[TV];
    const uint8_t *mask = in[TMASK];
    int T = d->T, D = d->D, dh = D / d->H;
    double *s = calloc((size_t)T, sizeof(double));
    for (int n = 0; n < d->N; ++n)
        for (int h = 0; h < d->H; ++h)
            for (int i = 0; i < T; ++i) {
                const float *qi = q + ((int64_t)n * T + i) * D + h * dh;
                double mx = -INFINITY, sum = 0;
                for (int j = 0; j < T; ++j) {
                    const float *kj = k + ((int64_t)n * T + j) * D + h * dh;
                    double dot = 0;
                    for (int c = 0; c < dh; ++c) dot += (double)qi[c] * kj[c];
                    s[j] = (mask && !mask[n * T + j]) ? -INFINITY : dot / sqrt((double)dh);
                    mx = fmax(mx, s[j]);
                }
                for (int j = 0; j < T; ++j) sum += isinf(s[j]) ? 0.0 : exp(s[j] - mx);
                double *p = e[TPROBS] + (((int64_t)n * d->H + h) * T + i) * T;
                double *yi = e[TY] + ((int64_t)n * T + i) * D + h * dh;
                for (int j = 0; j < T; ++j) p[j] = isinf(s[j]) ? 0.0 : exp(s[j] - mx) / sum;
                for (int c = 0; c < dh; ++c) {
                    yi[c] = 0;
                    for (int j = 0; j < T; ++j) yi[c] += p[j] * v[((int64_t)n * T + j) * D + h * dh + c];
                }
            }
    free(s);
}
static const gv_op_spec attention = {
    .name = "attention", .fwd_op = GV_OP_attention_forward, .bwd_op = GV_OP_attention_backward,
    .ntensors = GV_H_COUNT(attention_tensors), .tensors = attention_tensors,
    .ncases = GV_H_COUNT(attention_cases), .cases = attention_cases, .n_arg = 0,
    .layout = attention_layout, .run_forward = attention_forward,
    .run_backward = attention_backward, .reference = attention_reference,
};
GV_SPEC_FOR(attention_forward, attention);
GV_SPEC_FOR(attention_backward, attention);
