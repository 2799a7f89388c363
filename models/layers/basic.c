/* The elementary layers: linear, conv2d and GroupNorm (+ SiLU), plus the declaration and
 * zeroed-scratch helpers every layer uses (see layers.h for the parameter and arena conventions).
 *
 * Each forward allocates its output from the arena and, unless the arena is measuring, runs the
 * op(s); each backward forwards the += rule of the ops, taking zeroed temporaries from the arena
 * and releasing them (gv_arena_reset_to) before it returns. Not here: composite blocks
 * (resblock.c) and embeddings (embeddings.c). */
#include <stdio.h>

#include "layers.h"

/* ---- helpers --------------------------------------------------------------------------------- */

gv_status gv_layer_zeros(gv_ctx *ctx, gv_arena *a, int64_t n, float **out) {
    GV_TRY(gv_arena_floats(a, (size_t)n, out));
    if (gv_layer_dry(a)) return GV_OK;
    return ctx->backend->memset_zero(*out, (size_t)n * sizeof(float));
}

gv_status gv_layer_subname(char *buf, const char *prefix, const char *leaf) {
    int len = snprintf(buf, GV_PARAM_NAME_MAX, "%s.%s", prefix, leaf);
    if (len < 0 || len >= GV_PARAM_NAME_MAX)
        return GV_ERROR(GV_ERR_INVALID, "parameter name '%s.%s' is longer than %d characters",
                        prefix, leaf, GV_PARAM_NAME_MAX - 1);
    return GV_OK;
}

gv_status gv_layer_declare(gv_params *ps, const char *prefix, const char *leaf, int rank,
                           const int64_t *dims, gv_init_kind init, float scale, int decay,
                           int64_t *offset) {
    char name[GV_PARAM_NAME_MAX];
    GV_TRY(gv_layer_subname(name, prefix, leaf));
    int index = -1;
    GV_TRY(gv_params_declare(ps, name, gv_shape_make(rank, dims), init, scale, decay, &index));
    *offset = gv_params_at(ps, index)->offset;
    return GV_OK;
}

gv_status gv_layer_add(gv_ctx *ctx, gv_arena *a, float *y, const float *x1, const float *x2,
                       int64_t n) {
    if (gv_layer_dry(a)) return GV_OK;
    gv_ew_dims d = {.n = n};
    return ctx->backend->ops->add(ctx, y, x1, x2, &d);
}

/* ---- linear ---------------------------------------------------------------------------------- */

gv_status gv_linear_declare(gv_linear *l, gv_params *ps, const char *name, int Din, int Dout,
                            int bias, int zero_init) {
    if (Din <= 0 || Dout <= 0)
        return GV_ERROR(GV_ERR_INVALID, "linear '%s': bad size %d -> %d", name, Din, Dout);
    l->Din = Din;
    l->Dout = Dout;
    l->b = GV_NO_PARAM;
    GV_TRY(gv_layer_declare(ps, name, "weight", 2, (int64_t[]){Dout, Din},
                            zero_init ? GV_INIT_ZEROS : GV_INIT_UNIFORM_FANIN, 1.0f, 1, &l->w));
    if (bias)
        GV_TRY(gv_layer_declare(ps, name, "bias", 1, (int64_t[]){Dout}, GV_INIT_ZEROS, 0.0f, 0,
                                &l->b));
    return GV_OK;
}

gv_status gv_linear_forward_into(gv_ctx *ctx, gv_arena *a, const float *theta,
                                 const gv_linear *l, int N, const float *x, float *y) {
    if (gv_layer_dry(a)) return GV_OK;
    gv_linear_dims d = {.N = N, .Din = l->Din, .Dout = l->Dout};
    return ctx->backend->ops->linear_forward(ctx, y, x, theta + l->w, gv_layer_param(theta, l->b),
                                             &d);
}

gv_status gv_linear_forward(gv_ctx *ctx, gv_arena *a, const float *theta, const gv_linear *l,
                            int N, const float *x, float **y) {
    GV_TRY(gv_arena_floats(a, (size_t)N * l->Dout, y));
    return gv_linear_forward_into(ctx, a, theta, l, N, x, *y);
}

gv_status gv_linear_backward(gv_ctx *ctx, gv_arena *a, const float *theta, float *dtheta,
                             const gv_linear *l, int N, float *dx, const float *dy,
                             const float *x) {
    if (gv_layer_dry(a)) return GV_OK;
    gv_linear_dims d = {.N = N, .Din = l->Din, .Dout = l->Dout};
    return ctx->backend->ops->linear_backward(ctx, dx, gv_layer_grad(dtheta, l->w),
                                              gv_layer_grad(dtheta, l->b), dy, x, theta + l->w,
                                              &d);
}

int64_t gv_linear_flops(const gv_linear *l) { return 2 * (int64_t)l->Din * l->Dout; }

/* ---- conv2d ---------------------------------------------------------------------------------- */

gv_status gv_conv2d_declare(gv_conv2d *l, gv_params *ps, const char *name, int C, int H, int W,
                            int K, int R, int stride, int pad, int zero_init) {
    l->geom = (gv_conv2d_dims){.N = 1, .C = C, .H = H, .W = W, .K = K, .R = R, .S = R,
                               .stride = stride, .pad = pad};
    if (C <= 0 || H <= 0 || W <= 0 || K <= 0 || R <= 0 || !gv_conv2d_dims_set(&l->geom))
        return GV_ERROR(GV_ERR_INVALID,
                        "conv2d '%s': bad geometry C=%d H=%d W=%d K=%d R=%d stride=%d pad=%d", name,
                        C, H, W, K, R, stride, pad);
    l->geom.N = 0;
    GV_TRY(gv_layer_declare(ps, name, "weight", 4, (int64_t[]){K, C, R, R},
                            zero_init ? GV_INIT_ZEROS : GV_INIT_UNIFORM_FANIN, 1.0f, 1, &l->w));
    GV_TRY(gv_layer_declare(ps, name, "bias", 1, (int64_t[]){K}, GV_INIT_ZEROS, 0.0f, 0, &l->b));
    return GV_OK;
}

gv_status gv_conv2d_forward_into(gv_ctx *ctx, gv_arena *a, const float *theta,
                                 const gv_conv2d *l, int N, const float *x, float *y) {
    if (gv_layer_dry(a)) return GV_OK;
    gv_conv2d_dims d = l->geom;
    d.N = N;
    return ctx->backend->ops->conv2d_forward(ctx, y, x, theta + l->w, theta + l->b, &d);
}

gv_status gv_conv2d_forward(gv_ctx *ctx, gv_arena *a, const float *theta, const gv_conv2d *l,
                            int N, const float *x, float **y) {
    GV_TRY(gv_arena_floats(a, (size_t)N * (size_t)gv_conv2d_out_numel(l), y));
    return gv_conv2d_forward_into(ctx, a, theta, l, N, x, *y);
}

gv_status gv_conv2d_backward(gv_ctx *ctx, gv_arena *a, const float *theta, float *dtheta,
                             const gv_conv2d *l, int N, float *dx, const float *dy,
                             const float *x) {
    if (gv_layer_dry(a)) return GV_OK;
    gv_conv2d_dims d = l->geom;
    d.N = N;
    return ctx->backend->ops->conv2d_backward(ctx, dx, gv_layer_grad(dtheta, l->w),
                                              gv_layer_grad(dtheta, l->b), dy, x, theta + l->w,
                                              &d);
}

int64_t gv_conv2d_flops(const gv_conv2d *l) {
    const gv_conv2d_dims *g = &l->geom;
    return 2 * (int64_t)g->K * g->C * g->R * g->S * g->P * g->Q;
}

/* ---- GroupNorm (+ SiLU) ---------------------------------------------------------------------- */

gv_status gv_groupnorm_declare(gv_groupnorm *l, gv_params *ps, const char *name, int C,
                               int64_t HW, int G, float eps, int silu) {
    if (C <= 0 || HW <= 0 || G <= 0 || G > C)
        return GV_ERROR(GV_ERR_INVALID, "groupnorm '%s': bad C=%d HW=%lld G=%d", name, C,
                        (long long)HW, G);
    l->C = C;
    l->HW = HW;
    l->G = G;
    l->eps = eps;
    l->silu = silu ? 1 : 0;
    GV_TRY(gv_layer_declare(ps, name, "weight", 1, (int64_t[]){C}, GV_INIT_ONES, 1.0f, 0,
                            &l->gamma));
    GV_TRY(gv_layer_declare(ps, name, "bias", 1, (int64_t[]){C}, GV_INIT_ZEROS, 0.0f, 0,
                            &l->beta));
    return GV_OK;
}

static gv_groupnorm_dims groupnorm_dims(const gv_groupnorm *l, int N) {
    return (gv_groupnorm_dims){.N = N, .C = l->C, .HW = l->HW, .G = l->G, .eps = l->eps};
}

gv_status gv_groupnorm_forward(gv_ctx *ctx, gv_arena *a, const float *theta,
                               const gv_groupnorm *l, int N, const float *x,
                               gv_groupnorm_saved *s) {
    const int64_t n = (int64_t)N * l->C * l->HW;
    s->x = x;
    s->yn = NULL;
    GV_TRY(gv_arena_floats(a, (size_t)N * l->G, &s->mean));
    GV_TRY(gv_arena_floats(a, (size_t)N * l->G, &s->rstd));
    GV_TRY(gv_arena_floats(a, (size_t)n, &s->y));
    if (l->silu) GV_TRY(gv_arena_floats(a, (size_t)n, &s->yn));
    if (gv_layer_dry(a)) return GV_OK;
    const gv_ops *ops = ctx->backend->ops;
    gv_groupnorm_dims d = groupnorm_dims(l, N);
    float *norm_out = l->silu ? s->yn : s->y;
    GV_TRY(ops->groupnorm_forward(ctx, norm_out, s->mean, s->rstd, x, theta + l->gamma,
                                  theta + l->beta, &d));
    if (!l->silu) return GV_OK;
    gv_ew_dims e = {.n = n};
    return ops->silu_forward(ctx, s->y, s->yn, &e);
}

gv_status gv_groupnorm_backward(gv_ctx *ctx, gv_arena *a, const float *theta, float *dtheta,
                                const gv_groupnorm *l, int N, float *dx, const float *dy,
                                const gv_groupnorm_saved *s) {
    const int64_t n = (int64_t)N * l->C * l->HW;
    const gv_ops *ops = ctx->backend->ops;
    const size_t mark = gv_arena_mark(a);
    const float *d_norm = dy; /* gradient at the norm's output */
    if (l->silu) {
        float *d_yn = NULL; /* (N, C, HW) */
        GV_TRY(gv_layer_zeros(ctx, a, n, &d_yn));
        if (!gv_layer_dry(a)) {
            gv_ew_dims e = {.n = n};
            GV_TRY(ops->silu_backward(ctx, d_yn, dy, s->yn, &e));
        }
        d_norm = d_yn;
    }
    gv_status st = GV_OK;
    if (!gv_layer_dry(a)) {
        gv_groupnorm_dims d = groupnorm_dims(l, N);
        st = ops->groupnorm_backward(ctx, dx, gv_layer_grad(dtheta, l->gamma),
                                     gv_layer_grad(dtheta, l->beta), d_norm, s->x, s->mean,
                                     s->rstd, theta + l->gamma, &d);
    }
    gv_arena_reset_to(a, mark);
    return st;
}
