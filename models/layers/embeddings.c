/* Conditioning embeddings (DESIGN.md §5): the prompt embedding bag (mean of learned word rows,
 * -1 pads, the null prompt is a word of its own) and the time embedding
 * sinusoidal(scale * sigma, Dt) -> Linear(Dt, D) -> SiLU -> Linear(D, D).
 * Not here: vocabulary handling (the caller maps words to ids), how the two are combined (the
 * model adds them). */
#include "layers.h"

/* ---- prompt embedding bag -------------------------------------------------------------------- */

gv_status gv_embedding_bag_declare(gv_embedding_bag *l, gv_params *ps, const char *name, int V,
                                   int L, int D) {
    if (V <= 0 || L <= 0 || D <= 0)
        return GV_ERROR(GV_ERR_INVALID, "embedding bag '%s': bad V=%d L=%d D=%d", name, V, L, D);
    l->V = V;
    l->L = L;
    l->D = D;
    return gv_layer_declare(ps, name, "weight", 2, (int64_t[]){V, D}, GV_INIT_UNIFORM_FANIN, 1.0f,
                            0, &l->table);
}

gv_status gv_embedding_bag_forward(gv_ctx *ctx, gv_arena *a, const float *theta,
                                   const gv_embedding_bag *l, int N, const int32_t *ids,
                                   float **y) {
    GV_TRY(gv_arena_floats(a, (size_t)N * l->D, y));
    if (gv_layer_dry(a)) return GV_OK;
    gv_embedding_dims d = {.N = N, .L = l->L, .V = l->V, .D = l->D};
    return ctx->backend->ops->embedding_bag_forward(ctx, *y, ids, theta + l->table, &d);
}

gv_status gv_embedding_bag_backward(gv_ctx *ctx, gv_arena *a, float *dtheta,
                                    const gv_embedding_bag *l, int N, const float *dy,
                                    const int32_t *ids) {
    if (gv_layer_dry(a) || !dtheta) return GV_OK;
    gv_embedding_dims d = {.N = N, .L = l->L, .V = l->V, .D = l->D};
    return ctx->backend->ops->embedding_bag_backward(ctx, dtheta + l->table, dy, ids, &d);
}

/* ---- time embedding -------------------------------------------------------------------------- */

gv_status gv_time_embed_declare(gv_time_embed *l, gv_params *ps, const char *name, int Dt, int D,
                                float scale) {
    if (Dt <= 0 || Dt % 2 != 0)
        return GV_ERROR(GV_ERR_INVALID, "time embedding '%s': width %d must be even and > 0",
                        name, Dt);
    char lin1[GV_PARAM_NAME_MAX], lin2[GV_PARAM_NAME_MAX];
    GV_TRY(gv_layer_subname(lin1, name, "lin1"));
    GV_TRY(gv_layer_subname(lin2, name, "lin2"));
    l->Dt = Dt;
    l->D = D;
    l->scale = scale;
    GV_TRY(gv_linear_declare(&l->lin1, ps, lin1, Dt, D, 1, 0));
    GV_TRY(gv_linear_declare(&l->lin2, ps, lin2, D, D, 1, 0));
    return GV_OK;
}

gv_status gv_time_embed_forward(gv_ctx *ctx, gv_arena *a, const float *theta,
                                const gv_time_embed *l, int N, const float *sigma,
                                gv_time_embed_saved *s) {
    const gv_ops *ops = ctx->backend->ops;
    GV_TRY(gv_arena_floats(a, (size_t)N * l->Dt, &s->s));
    if (!gv_layer_dry(a)) {
        gv_time_embedding_dims td = {.N = N, .D = l->Dt, .scale = l->scale};
        GV_TRY(ops->time_embedding_forward(ctx, s->s, sigma, &td));
    }
    GV_TRY(gv_linear_forward(ctx, a, theta, &l->lin1, N, s->s, &s->h));
    GV_TRY(gv_arena_floats(a, (size_t)N * l->D, &s->a));
    if (!gv_layer_dry(a)) {
        gv_ew_dims e = {.n = (int64_t)N * l->D};
        GV_TRY(ops->silu_forward(ctx, s->a, s->h, &e));
    }
    return gv_linear_forward(ctx, a, theta, &l->lin2, N, s->a, &s->y);
}

gv_status gv_time_embed_backward(gv_ctx *ctx, gv_arena *a, const float *theta, float *dtheta,
                                 const gv_time_embed *l, int N, const float *dy,
                                 const gv_time_embed_saved *s) {
    if (!dtheta) return GV_OK; /* nothing upstream of sigma is differentiated */
    const size_t mark = gv_arena_mark(a);
    const int64_t n = (int64_t)N * l->D;
    float *d_a = NULL, *d_h = NULL; /* (N, D) each */
    GV_TRY(gv_layer_zeros(ctx, a, n, &d_a));
    GV_TRY(gv_layer_zeros(ctx, a, n, &d_h));
    GV_TRY(gv_linear_backward(ctx, a, theta, dtheta, &l->lin2, N, d_a, dy, s->a));
    if (!gv_layer_dry(a)) {
        gv_ew_dims e = {.n = n};
        GV_TRY(ctx->backend->ops->silu_backward(ctx, d_h, d_a, s->h, &e));
    }
    GV_TRY(gv_linear_backward(ctx, a, theta, dtheta, &l->lin1, N, NULL, d_h, s->s));
    gv_arena_reset_to(a, mark);
    return GV_OK;
}

int64_t gv_time_embed_flops(const gv_time_embed *l) {
    return gv_linear_flops(&l->lin1) + gv_linear_flops(&l->lin2);
}
