/* Harness specs: lookups (embedding, embedding_bag) and the sinusoidal time embedding.
 * Shapes: N > V (repeated ids: the backward must accumulate), D = 1, bags with -1 padding and an
 * all-padding row, scale 1000 time arguments. Ids and times are not differentiated. */
#include <math.h>

#include "harness.h"

enum { EIDS, ETABLE, EY };
static const gv_h_tensor embedding_tensors[] = {
    [EIDS] = {"ids", GV_H_IN, GV_H_I32, GV_H_IDS, GV_H_PER_SAMPLE},
    [ETABLE] = {"table", GV_H_IN, GV_H_F32, GV_H_NORMAL, GV_H_DIFF},
    [EY] = {"y", GV_H_OUT, GV_H_F32, GV_H_NONE, GV_H_PER_SAMPLE},
};
static const gv_h_tensor bag_tensors[] = {
    [EIDS] = {"ids", GV_H_IN, GV_H_I32, GV_H_IDS_PAD, GV_H_PER_SAMPLE},
    [ETABLE] = {"table", GV_H_IN, GV_H_F32, GV_H_NORMAL, GV_H_DIFF},
    [EY] = {"y", GV_H_OUT, GV_H_F32, GV_H_NONE, GV_H_PER_SAMPLE},
};

/* v = {N, L, V, D}; L is 1 for embedding */
static const gv_h_case embedding_cases[] = {
    {"N1 V5 D3", {1, 1, 5, 3}, {0}},
    {"N9 V3 D7 (repeats)", {9, 1, 3, 7}, {0}},
    {"N3 V10 D1", {3, 1, 10, 1}, {0}},
};
static const gv_h_case bag_cases[] = {
    {"N1 L1 V4 D3", {1, 1, 4, 3}, {0}},
    {"N3 L4 V5 D6", {3, 4, 5, 6}, {0}},
    {"N6 L3 V2 D2", {6, 3, 2, 2}, {0}},
    {"N4 L2 V7 D1", {4, 2, 7, 1}, {0}},
};
static void embedding_layout(const gv_h_case *c, gv_h_layout *L) {
    gv_embedding_dims *d = &L->dims.embedding;
    *d = (gv_embedding_dims){.N = c->v[0], .L = c->v[1], .V = c->v[2], .D = c->v[3]};
    L->numel[EIDS] = (int64_t)d->N * d->L;
    L->id_hi[EIDS] = d->V;
    L->numel[ETABLE] = (int64_t)d->V * d->D;
    L->numel[EY] = (int64_t)d->N * d->D;
}
static gv_status embedding_forward(gv_ctx *c, void *const *t, const gv_h_layout *L) {
    return c->backend->ops->embedding_forward(c, t[EY], t[EIDS], t[ETABLE], &L->dims.embedding);
}
static gv_status embedding_backward(gv_ctx *c, float *const *g, void *const *t,
                                    const gv_h_layout *L) {
    return c->backend->ops->embedding_backward(c, g[ETABLE], g[EY], t[EIDS], &L->dims.embedding);
}
static gv_status embedding_bag_forward(gv_ctx *c, void *const *t, const gv_h_layout *L) {
    return c->backend->ops->embedding_bag_forward(c, t[EY], t[EIDS], t[ETABLE],
                                                  &L->dims.embedding);
}
static gv_status embedding_bag_backward(gv_ctx *c, float *const *g, void *const *t,
                                        const gv_h_layout *L) {
    return c->backend->ops->embedding_bag_backward(c, g[ETABLE], g[EY], t[EIDS],
                                                   &L->dims.embedding);
}
/* y[n] = mean of table[id] over the valid ids (>= 0) of row n; zero when there is none. L = 1 is
   the plain embedding (ids there are always valid). */
static void bag_reference(const gv_h_layout *L, const void *const *in, double *const *e) {
    const gv_embedding_dims *d = &L->dims.embedding;
    const int32_t *ids = in[EIDS];
    const float *table = in[ETABLE];
    for (int n = 0; n < d->N; ++n) {
        int valid = 0;
        for (int j = 0; j < d->D; ++j) e[EY][(int64_t)n * d->D + j] = 0;
        for (int l = 0; l < d->L; ++l) {
            int32_t id = ids[n * d->L + l];
            if (id < 0) continue;
            ++valid;
            for (int j = 0; j < d->D; ++j) e[EY][(int64_t)n * d->D + j] += table[(int64_t)id * d->D + j];
        }
        for (int j = 0; j < d->D && valid; ++j) e[EY][(int64_t)n * d->D + j] /= valid;
    }
}
static const gv_op_spec embedding = {
    .name = "embedding", .fwd_op = GV_OP_embedding_forward, .bwd_op = GV_OP_embedding_backward,
    .ntensors = GV_H_COUNT(embedding_tensors), .tensors = embedding_tensors,
    .ncases = GV_H_COUNT(embedding_cases), .cases = embedding_cases, .n_arg = 0,
    .layout = embedding_layout, .run_forward = embedding_forward,
    .run_backward = embedding_backward, .reference = bag_reference,
};
GV_SPEC_FOR(embedding_forward, embedding);
GV_SPEC_FOR(embedding_backward, embedding);
static const gv_op_spec embedding_bag = {
    .name = "embedding_bag", .fwd_op = GV_OP_embedding_bag_forward,
    .bwd_op = GV_OP_embedding_bag_backward, .ntensors = GV_H_COUNT(bag_tensors),
    .tensors = bag_tensors, .ncases = GV_H_COUNT(bag_cases), .cases = bag_cases, .n_arg = 0,
    .layout = embedding_layout, .run_forward = embedding_bag_forward,
    .run_backward = embedding_bag_backward, .reference = bag_reference,
};
GV_SPEC_FOR(embedding_bag_forward, embedding_bag);
GV_SPEC_FOR(embedding_bag_backward, embedding_bag);

/* ---- time embedding: v = {N, D}, p = {scale}; forward only -------------------------------------- */
enum { ET, ETY };
static const gv_h_tensor time_tensors[] = {
    [ET] = {"t", GV_H_IN, GV_H_F32, GV_H_POSITIVE, GV_H_PER_SAMPLE},
    [ETY] = {"y", GV_H_OUT, GV_H_F32, GV_H_NONE, GV_H_PER_SAMPLE},
};
static const gv_h_case time_cases[] = {
    {"N1 D2", {1, 2}, {1.0}},
    {"N3 D8", {3, 8}, {1.0}},
    {"N2 D34 scale 1000", {2, 34}, {1000.0}},
};
static void time_layout(const gv_h_case *c, gv_h_layout *L) {
    L->dims.time_embedding =
        (gv_time_embedding_dims){.N = c->v[0], .D = c->v[1], .scale = (float)c->p[0]};
    L->numel[ET] = c->v[0];
    L->numel[ETY] = (int64_t)c->v[0] * c->v[1];
}
static gv_status time_forward(gv_ctx *c, void *const *t, const gv_h_layout *L) {
    return c->backend->ops->time_embedding_forward(c, t[ETY], t[ET], &L->dims.time_embedding);
}
/* y[n,j] = sin(a), y[n,D/2+j] = cos(a), a = scale * t[n] * exp(-ln(10000) j / (D/2)) */
static void time_reference(const gv_h_layout *L, const void *const *in, double *const *e) {
    const gv_time_embedding_dims *d = &L->dims.time_embedding;
    const float *t = in[ET];
    int half = d->D / 2;
    for (int n = 0; n < d->N; ++n)
        for (int j = 0; j < half; ++j) {
            double a = (double)d->scale * t[n] * exp(-log(10000.0) * j / half);
            e[ETY][(int64_t)n * d->D + j] = sin(a);
            e[ETY][(int64_t)n * d->D + half + j] = cos(a);
        }
}
/* Arguments reach ~1500 rad at scale 1000: the float argument's rounding (~1e-4) bounds rtol. */
static const gv_op_spec time_embedding = {
    .name = "time_embedding", .fwd_op = GV_OP_time_embedding_forward, .bwd_op = -1,
    .ntensors = GV_H_COUNT(time_tensors), .tensors = time_tensors,
    .ncases = GV_H_COUNT(time_cases), .cases = time_cases, .n_arg = 0, .layout = time_layout,
    .run_forward = time_forward, .reference = time_reference, .ref_rtol = 1e-3,
};
GV_SPEC_FOR(time_embedding_forward, time_embedding);
