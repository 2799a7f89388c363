/* The UNet ResBlock (DESIGN.md §5), composed from the elementary layers in basic.c:
 *
 *   a1 = SiLU(GN(x));  h = conv3x3(a1) + Linear(emb)[:, :, None, None]
 *   a2 = SiLU(GN(h));  y = conv3x3(a2) + skip(x),  skip = conv1x1 when Cin != Cout, else identity
 *
 * Backward follows the same graph in reverse; every gradient is accumulated with the ops' += rule,
 * so the two paths into dx (main branch and skip) need no special casing. Not here: attention, the
 * model that stacks the blocks (models/unet). */
#include "layers.h"

gv_status gv_resblock_declare(gv_resblock *l, gv_params *ps, const char *name, int Cin, int Cout,
                              int E, int H, int W, int G, float eps) {
    char n1[GV_PARAM_NAME_MAX], c1[GV_PARAM_NAME_MAX], em[GV_PARAM_NAME_MAX];
    char n2[GV_PARAM_NAME_MAX], c2[GV_PARAM_NAME_MAX], sk[GV_PARAM_NAME_MAX];
    GV_TRY(gv_layer_subname(n1, name, "norm1"));
    GV_TRY(gv_layer_subname(c1, name, "conv1"));
    GV_TRY(gv_layer_subname(em, name, "emb"));
    GV_TRY(gv_layer_subname(n2, name, "norm2"));
    GV_TRY(gv_layer_subname(c2, name, "conv2"));
    GV_TRY(gv_layer_subname(sk, name, "skip"));
    l->Cin = Cin;
    l->Cout = Cout;
    l->E = E;
    l->H = H;
    l->W = W;
    const int64_t HW = (int64_t)H * W;
    GV_TRY(gv_groupnorm_declare(&l->norm1, ps, n1, Cin, HW, G, eps, 1));
    GV_TRY(gv_conv2d_declare(&l->conv1, ps, c1, Cin, H, W, Cout, 3, 1, 1, 0));
    GV_TRY(gv_linear_declare(&l->emb, ps, em, E, Cout, 1, 0));
    GV_TRY(gv_groupnorm_declare(&l->norm2, ps, n2, Cout, HW, G, eps, 1));
    GV_TRY(gv_conv2d_declare(&l->conv2, ps, c2, Cout, H, W, Cout, 3, 1, 1, 0));
    l->has_skip = Cin != Cout;
    if (l->has_skip)
        GV_TRY(gv_conv2d_declare(&l->skip, ps, sk, Cin, H, W, Cout, 1, 1, 0, 0));
    return GV_OK;
}

gv_status gv_resblock_forward(gv_ctx *ctx, gv_arena *a, const float *theta, const gv_resblock *l,
                              int N, const float *x, const float *emb, gv_resblock_saved *s) {
    const int64_t HW = (int64_t)l->H * l->W, ny = (int64_t)N * l->Cout * HW;
    s->x = x;
    s->emb = emb;
    float *h_conv = NULL; /* (N, Cout, H, W) conv1 output                */
    float *e = NULL;      /* (N, Cout) embedding projection              */
    float *h = NULL;      /* (N, Cout, H, W) conv1 output + e: norm2's x */
    GV_TRY(gv_groupnorm_forward(ctx, a, theta, &l->norm1, N, x, &s->n1));
    GV_TRY(gv_conv2d_forward(ctx, a, theta, &l->conv1, N, s->n1.y, &h_conv));
    GV_TRY(gv_linear_forward(ctx, a, theta, &l->emb, N, emb, &e));
    GV_TRY(gv_arena_floats(a, (size_t)ny, &h));
    if (!gv_layer_dry(a)) {
        gv_channel_dims cd = {.N = N, .C = l->Cout, .HW = HW};
        GV_TRY(ctx->backend->ops->add_channel_forward(ctx, h, h_conv, e, &cd));
    }
    GV_TRY(gv_groupnorm_forward(ctx, a, theta, &l->norm2, N, h, &s->n2));
    GV_TRY(gv_conv2d_forward(ctx, a, theta, &l->conv2, N, s->n2.y, &s->y));
    const float *skip = x;
    if (l->has_skip) {
        float *sk = NULL; /* (N, Cout, H, W) */
        GV_TRY(gv_conv2d_forward(ctx, a, theta, &l->skip, N, x, &sk));
        skip = sk;
    }
    return gv_layer_add(ctx, a, s->y, s->y, skip, ny); /* y = conv2 + skip, in place */
}

gv_status gv_resblock_backward(gv_ctx *ctx, gv_arena *a, const float *theta, float *dtheta,
                               const gv_resblock *l, int N, float *dx, float *demb,
                               const float *dy, const gv_resblock_saved *s) {
    const int64_t HW = (int64_t)l->H * l->W;
    const size_t mark = gv_arena_mark(a);
    float *d_a2 = NULL; /* (N, Cout, H, W) at SiLU(GN(h))                          */
    float *d_h = NULL;  /* (N, Cout, H, W) at h = conv1 out + e (= d at conv1 out) */
    float *d_e = NULL;  /* (N, Cout)                                               */
    float *d_a1 = NULL; /* (N, Cin, H, W) at SiLU(GN(x))                            */
    GV_TRY(gv_layer_zeros(ctx, a, (int64_t)N * l->Cout * HW, &d_a2));
    GV_TRY(gv_layer_zeros(ctx, a, (int64_t)N * l->Cout * HW, &d_h));
    GV_TRY(gv_layer_zeros(ctx, a, (int64_t)N * l->Cout, &d_e));
    GV_TRY(gv_layer_zeros(ctx, a, (int64_t)N * l->Cin * HW, &d_a1));
    /* y = conv2(a2) + skip(x) */
    GV_TRY(gv_conv2d_backward(ctx, a, theta, dtheta, &l->conv2, N, d_a2, dy, s->n2.y));
    if (l->has_skip)
        GV_TRY(gv_conv2d_backward(ctx, a, theta, dtheta, &l->skip, N, dx, dy, s->x));
    else if (dx)
        GV_TRY(gv_layer_add(ctx, a, dx, dx, dy, (int64_t)N * l->Cin * HW));
    GV_TRY(gv_groupnorm_backward(ctx, a, theta, dtheta, &l->norm2, N, d_h, d_a2, &s->n2));
    /* h = conv1(a1) + e broadcast: d at conv1's output is d_h itself; d_e sums it over H, W */
    if (!gv_layer_dry(a)) {
        gv_channel_dims cd = {.N = N, .C = l->Cout, .HW = HW};
        GV_TRY(ctx->backend->ops->add_channel_backward(ctx, NULL, d_e, d_h, &cd));
    }
    GV_TRY(gv_linear_backward(ctx, a, theta, dtheta, &l->emb, N, demb, d_e, s->emb));
    GV_TRY(gv_conv2d_backward(ctx, a, theta, dtheta, &l->conv1, N, d_a1, d_h, s->n1.y));
    GV_TRY(gv_groupnorm_backward(ctx, a, theta, dtheta, &l->norm1, N, dx, d_a1, &s->n1));
    gv_arena_reset_to(a, mark);
    return GV_OK;
}

int64_t gv_resblock_flops(const gv_resblock *l) {
    int64_t f = gv_conv2d_flops(&l->conv1) + gv_conv2d_flops(&l->conv2) + gv_linear_flops(&l->emb);
    if (l->has_skip) f += gv_conv2d_flops(&l->skip);
    return f;
}
