/* The image classifier (see classifier.h): declaration, forward with saved activations and
 * penultimate features, backward. Reuses the layers the UNet is built from. Not here: losses. */
#include "classifier.h"

#include <stdio.h>

gv_classifier_config gv_classifier_config_default(int width_mult) {
    return (gv_classifier_config){
        .in_channels = 1,
        .height = 28,
        .width = 28,
        .width_mult = width_mult,
        .features = 128,
        .classes = 10,
        .groups = width_mult < 8 ? width_mult : 8,
        .norm_eps = 1e-5f,
    };
}

gv_status gv_classifier_declare(gv_classifier *m, const gv_classifier_config *cfg,
                                gv_params *ps, const char *prefix) {
    const gv_classifier_config *c = cfg;
    if (c->in_channels <= 0 || c->height <= 0 || c->width <= 0 || c->height % 4 ||
        c->width % 4 || c->width_mult <= 0 || c->features <= 0 || c->classes <= 0 ||
        c->groups <= 0 || c->groups > c->width_mult)
        return GV_ERROR(GV_ERR_INVALID,
                        "classifier: bad config (image %dx%dx%d, w %d, F %d, classes %d, "
                        "groups %d)",
                        c->in_channels, c->height, c->width, c->width_mult, c->features,
                        c->classes, c->groups);
    m->cfg = *cfg;
    const int first = ps->count, w = c->width_mult;
    /* per stage: input channels, output channels, input resolution, stride */
    const int cin[3] = {c->in_channels, w, 2 * w}, cout[3] = {w, 2 * w, 2 * w};
    const int stride[3] = {1, 2, 2};
    int H = c->height, W = c->width;
    char name[GV_PARAM_NAME_MAX], leaf[32];
    for (int i = 0; i < 3; ++i) {
        snprintf(leaf, sizeof leaf, "conv%d", i);
        GV_TRY(gv_layer_subname(name, prefix, leaf));
        GV_TRY(gv_conv2d_declare(&m->conv[i], ps, name, cin[i], H, W, cout[i], 3, stride[i], 1, 0));
        H = m->conv[i].geom.P;
        W = m->conv[i].geom.Q;
        snprintf(leaf, sizeof leaf, "norm%d", i);
        GV_TRY(gv_layer_subname(name, prefix, leaf));
        GV_TRY(gv_groupnorm_declare(&m->norm[i], ps, name, cout[i], (int64_t)H * W, c->groups,
                                    c->norm_eps, 1));
    }
    GV_TRY(gv_layer_subname(name, prefix, "fc"));
    GV_TRY(gv_linear_declare(&m->fc, ps, name, cout[2] * H * W, c->features, 1, 0));
    GV_TRY(gv_layer_subname(name, prefix, "head"));
    GV_TRY(gv_linear_declare(&m->head, ps, name, c->features, c->classes, 1, 0));
    m->n_params = 0;
    for (int i = first; i < ps->count; ++i) m->n_params += gv_params_at(ps, i)->numel;
    return GV_OK;
}

gv_status gv_classifier_forward(const gv_classifier *m, gv_ctx *ctx, gv_arena *arena,
                                const float *theta, int N, const float *x, float *logits,
                                gv_classifier_saved *saved) {
    gv_classifier_saved *s = saved;
    if (N <= 0) return GV_ERROR(GV_ERR_INVALID, "classifier forward: N = %d must be positive", N);
    s->N = N;
    s->x = x;
    const float *h = x;
    for (int i = 0; i < 3; ++i) {
        GV_TRY(gv_conv2d_forward(ctx, arena, theta, &m->conv[i], N, h, &s->c[i]));
        GV_TRY(gv_groupnorm_forward(ctx, arena, theta, &m->norm[i], N, s->c[i], &s->norm[i]));
        h = s->norm[i].y;
    }
    GV_TRY(gv_linear_forward(ctx, arena, theta, &m->fc, N, h, &s->fc)); /* (N, 2w·H/4·W/4) flat */
    const int64_t nf = (int64_t)N * m->cfg.features;
    GV_TRY(gv_arena_floats(arena, (size_t)nf, &s->features));
    if (!gv_layer_dry(arena)) {
        gv_ew_dims e = {.n = nf};
        GV_TRY(ctx->backend->ops->silu_forward(ctx, s->features, s->fc, &e));
    }
    return gv_linear_forward_into(ctx, arena, theta, &m->head, N, s->features, logits);
}

gv_status gv_classifier_backward(const gv_classifier *m, gv_ctx *ctx, gv_arena *arena,
                                 const float *theta, float *dtheta,
                                 const gv_classifier_saved *saved, const float *dlogits,
                                 float *dx) {
    const gv_classifier_saved *s = saved;
    const int N = s->N;
    const int64_t nf = (int64_t)N * m->cfg.features;
    const size_t mark = gv_arena_mark(arena);
    float *d_feat = NULL, *d_fc = NULL; /* (N, F) each */
    float *d_act[3] = {0};              /* gradient at norm[i].y */
    float *d_conv[3] = {0};             /* gradient at conv[i] output */
    GV_TRY(gv_layer_zeros(ctx, arena, nf, &d_feat));
    GV_TRY(gv_layer_zeros(ctx, arena, nf, &d_fc));
    for (int i = 0; i < 3; ++i) {
        const int64_t n = (int64_t)N * gv_conv2d_out_numel(&m->conv[i]);
        GV_TRY(gv_layer_zeros(ctx, arena, n, &d_act[i]));
        GV_TRY(gv_layer_zeros(ctx, arena, n, &d_conv[i]));
    }
    GV_TRY(gv_linear_backward(ctx, arena, theta, dtheta, &m->head, N, d_feat, dlogits,
                              s->features));
    if (!gv_layer_dry(arena)) {
        gv_ew_dims e = {.n = nf};
        GV_TRY(ctx->backend->ops->silu_backward(ctx, d_fc, d_feat, s->fc, &e));
    }
    GV_TRY(gv_linear_backward(ctx, arena, theta, dtheta, &m->fc, N, d_act[2], d_fc,
                              s->norm[2].y));
    for (int i = 2; i >= 0; --i) {
        GV_TRY(gv_groupnorm_backward(ctx, arena, theta, dtheta, &m->norm[i], N, d_conv[i],
                                     d_act[i], &s->norm[i]));
        float *d_in = i > 0 ? d_act[i - 1] : dx;
        const float *in = i > 0 ? s->norm[i - 1].y : s->x;
        GV_TRY(gv_conv2d_backward(ctx, arena, theta, dtheta, &m->conv[i], N, d_in, d_conv[i], in));
    }
    gv_arena_reset_to(arena, mark);
    return GV_OK;
}
