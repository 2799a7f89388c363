/* The flow-matching UNet (see unet.h for the architecture, the names and the preset): declaration,
 * forward with saved activations, backward, FLOP count. Levels are loops, so unet-s and the tiny
 * test configurations run the same code. Not here: sampling, CFG, losses. */
#include "unet.h"

#include <stdio.h>

gv_unet_config gv_unet_config_s(int vocab_size, int max_prompt_len) {
    return (gv_unet_config){
        .in_channels = 1,
        .height = 28,
        .width = 28,
        .levels = 2,
        .channels = {32, 64},
        .mid_blocks = 2,
        .emb_dim = 128,
        .time_dim = 64,
        .time_scale = 1000.0f,
        .groups = 8,
        .norm_eps = 1e-5f,
        .vocab_size = vocab_size,
        .max_prompt_len = max_prompt_len,
        .zero_init_out = 1,
    };
}

static gv_status check_config(const gv_unet_config *c) {
    if (c->in_channels <= 0 || c->height <= 0 || c->width <= 0)
        return GV_ERROR(GV_ERR_INVALID, "unet: bad image shape (%d, %d, %d)", c->in_channels,
                        c->height, c->width);
    if (c->levels < 1 || c->levels > GV_UNET_MAX_LEVELS)
        return GV_ERROR(GV_ERR_INVALID, "unet: levels = %d outside 1..%d", c->levels,
                        GV_UNET_MAX_LEVELS);
    if (c->mid_blocks < 0 || c->mid_blocks > GV_UNET_MAX_MID)
        return GV_ERROR(GV_ERR_INVALID, "unet: mid_blocks = %d outside 0..%d", c->mid_blocks,
                        GV_UNET_MAX_MID);
    const int f = 1 << c->levels;
    if (c->height % f || c->width % f)
        return GV_ERROR(GV_ERR_INVALID, "unet: %dx%d is not divisible by 2^levels = %d",
                        c->height, c->width, f);
    for (int l = 0; l < c->levels; ++l)
        if (c->channels[l] < c->groups)
            return GV_ERROR(GV_ERR_INVALID, "unet: channels[%d] = %d is below groups = %d", l,
                            c->channels[l], c->groups);
    if (c->emb_dim <= 0 || c->groups <= 0 || c->vocab_size <= 0 || c->max_prompt_len <= 0)
        return GV_ERROR(GV_ERR_INVALID,
                        "unet: emb_dim %d, groups %d, vocab_size %d, max_prompt_len %d must be > 0",
                        c->emb_dim, c->groups, c->vocab_size, c->max_prompt_len);
    return GV_OK;
}

/* Channels coming up into up level l: the mid output below the last level, else up level l+1. */
static int below_channels(const gv_unet_config *c, int l) {
    return l == c->levels - 1 ? c->channels[c->levels - 1] : c->channels[l + 1];
}

gv_status gv_unet_declare(gv_unet *m, const gv_unet_config *cfg, gv_params *ps,
                          const char *prefix) {
    GV_TRY(check_config(cfg));
    m->cfg = *cfg;
    const gv_unet_config *c = &m->cfg;
    const int first = ps->count, E = c->emb_dim, G = c->groups;
    const float eps = c->norm_eps;
    char name[GV_PARAM_NAME_MAX], leaf[64];
#define GV_NAME_(...)                                                                              \
    (snprintf(leaf, sizeof leaf, __VA_ARGS__), gv_layer_subname(name, prefix, leaf))
    GV_TRY(GV_NAME_("time"));
    GV_TRY(gv_time_embed_declare(&m->time, ps, name, c->time_dim, E, c->time_scale));
    GV_TRY(GV_NAME_("prompt"));
    GV_TRY(gv_embedding_bag_declare(&m->prompt, ps, name, c->vocab_size, c->max_prompt_len, E));
    GV_TRY(GV_NAME_("in.conv"));
    GV_TRY(gv_conv2d_declare(&m->conv_in, ps, name, c->in_channels, c->height, c->width,
                             c->channels[0], 3, 1, 1, 0));
    int ch = c->channels[0];
    for (int l = 0; l < c->levels; ++l) {
        const int H = c->height >> l, W = c->width >> l, out = c->channels[l];
        GV_TRY(GV_NAME_("down.%d.res", l));
        GV_TRY(gv_resblock_declare(&m->down_res[l], ps, name, ch, out, E, H, W, G, eps));
        GV_TRY(GV_NAME_("down.%d.downsample", l));
        GV_TRY(gv_conv2d_declare(&m->downsample[l], ps, name, out, H, W, out, 3, 2, 1, 0));
        ch = out;
    }
    const int Hm = c->height >> c->levels, Wm = c->width >> c->levels;
    for (int i = 0; i < c->mid_blocks; ++i) {
        GV_TRY(GV_NAME_("mid.%d.res", i));
        GV_TRY(gv_resblock_declare(&m->mid[i], ps, name, ch, ch, E, Hm, Wm, G, eps));
    }
    for (int l = c->levels - 1; l >= 0; --l) {
        const int H = c->height >> l, W = c->width >> l;
        GV_TRY(GV_NAME_("up.%d.res", l));
        GV_TRY(gv_resblock_declare(&m->up_res[l], ps, name, below_channels(c, l) + c->channels[l],
                                   c->channels[l], E, H, W, G, eps));
    }
    GV_TRY(GV_NAME_("out.norm"));
    GV_TRY(gv_groupnorm_declare(&m->out_norm, ps, name, c->channels[0],
                                (int64_t)c->height * c->width, G, eps, 1));
    GV_TRY(GV_NAME_("out.conv"));
    GV_TRY(gv_conv2d_declare(&m->conv_out, ps, name, c->channels[0], c->height, c->width,
                             c->in_channels, 3, 1, 1, c->zero_init_out));
#undef GV_NAME_
    m->n_params = 0;
    for (int i = first; i < ps->count; ++i) m->n_params += gv_params_at(ps, i)->numel;
    return GV_OK;
}

gv_status gv_unet_forward(const gv_unet *m, gv_ctx *ctx, gv_arena *arena, const float *theta,
                          int N, const float *x, const float *sigma, const int32_t *prompt_ids,
                          float *v, gv_unet_saved *saved) {
    const gv_unet_config *c = &m->cfg;
    const gv_ops *ops = ctx->backend->ops;
    gv_unet_saved *s = saved;
    if (N <= 0) return GV_ERROR(GV_ERR_INVALID, "unet forward: N = %d must be positive", N);
    s->N = N;
    s->x = x;
    s->ids = prompt_ids;
    /* conditioning: emb (N, E) = time MLP + prompt bag */
    GV_TRY(gv_time_embed_forward(ctx, arena, theta, &m->time, N, sigma, &s->time));
    GV_TRY(gv_embedding_bag_forward(ctx, arena, theta, &m->prompt, N, prompt_ids, &s->prompt));
    GV_TRY(gv_arena_floats(arena, (size_t)N * c->emb_dim, &s->emb));
    GV_TRY(gv_layer_add(ctx, arena, s->emb, s->time.y, s->prompt, (int64_t)N * c->emb_dim));
    const float *emb = s->emb;
    /* down path */
    GV_TRY(gv_conv2d_forward(ctx, arena, theta, &m->conv_in, N, x, &s->h0));
    const float *h = s->h0;
    for (int l = 0; l < c->levels; ++l) {
        GV_TRY(gv_resblock_forward(ctx, arena, theta, &m->down_res[l], N, h, emb, &s->down_res[l]));
        GV_TRY(gv_conv2d_forward(ctx, arena, theta, &m->downsample[l], N, s->down_res[l].y,
                                 &s->down_out[l]));
        h = s->down_out[l];
    }
    for (int i = 0; i < c->mid_blocks; ++i) {
        GV_TRY(gv_resblock_forward(ctx, arena, theta, &m->mid[i], N, h, emb, &s->mid[i]));
        h = s->mid[i].y;
    }
    /* up path: nearest x2, concat the level's skip, ResBlock */
    for (int l = c->levels - 1; l >= 0; --l) {
        const int H = c->height >> l, W = c->width >> l, cb = below_channels(c, l);
        const int64_t HW = (int64_t)H * W;
        GV_TRY(gv_arena_floats(arena, (size_t)N * cb * HW, &s->up_in[l]));
        GV_TRY(gv_arena_floats(arena, (size_t)N * (cb + c->channels[l]) * HW, &s->cat[l]));
        if (!gv_layer_dry(arena)) {
            gv_upsample_dims ud = {.N = N, .C = cb, .H = H / 2, .W = W / 2, .f = 2};
            GV_TRY(ops->upsample_nearest_forward(ctx, s->up_in[l], h, &ud));
            gv_concat_dims cd = {.N = N, .Ca = cb, .Cb = c->channels[l], .HW = HW};
            GV_TRY(ops->concat_forward(ctx, s->cat[l], s->up_in[l], s->down_res[l].y, &cd));
        }
        GV_TRY(gv_resblock_forward(ctx, arena, theta, &m->up_res[l], N, s->cat[l], emb,
                                   &s->up_res[l]));
        h = s->up_res[l].y;
    }
    GV_TRY(gv_groupnorm_forward(ctx, arena, theta, &m->out_norm, N, h, &s->out_norm));
    return gv_conv2d_forward_into(ctx, arena, theta, &m->conv_out, N, s->out_norm.y, v);
}

gv_status gv_unet_backward(const gv_unet *m, gv_ctx *ctx, gv_arena *arena, const float *theta,
                           float *dtheta, const gv_unet_saved *saved, const float *dv,
                           float *dx) {
    const gv_unet_config *c = &m->cfg;
    const gv_ops *ops = ctx->backend->ops;
    const gv_unet_saved *s = saved;
    const int N = s->N, C0 = c->channels[0];
    const int64_t HW0 = (int64_t)c->height * c->width;
    const size_t mark = gv_arena_mark(arena);
    float *demb = NULL;  /* (N, E)                   */
    float *d_act = NULL; /* (N, C0, H, W) at SiLU(GN) */
    float *d_h = NULL;   /* gradient at the current activation h */
    float *d_skip[GV_UNET_MAX_LEVELS] = {0}; /* (N, ch[l], H_l, W_l) */
    GV_TRY(gv_layer_zeros(ctx, arena, (int64_t)N * c->emb_dim, &demb));
    GV_TRY(gv_layer_zeros(ctx, arena, (int64_t)N * C0 * HW0, &d_act));
    GV_TRY(gv_layer_zeros(ctx, arena, (int64_t)N * C0 * HW0, &d_h));
    for (int l = 0; l < c->levels; ++l)
        GV_TRY(gv_layer_zeros(ctx, arena,
                              (int64_t)N * c->channels[l] * (c->height >> l) * (c->width >> l),
                              &d_skip[l]));
    /* output head */
    GV_TRY(gv_conv2d_backward(ctx, arena, theta, dtheta, &m->conv_out, N, d_act, dv,
                              s->out_norm.y));
    GV_TRY(gv_groupnorm_backward(ctx, arena, theta, dtheta, &m->out_norm, N, d_h, d_act,
                                 &s->out_norm));
    /* up path, top level first */
    for (int l = 0; l < c->levels; ++l) {
        const int H = c->height >> l, W = c->width >> l, cb = below_channels(c, l);
        const int64_t HW = (int64_t)H * W;
        float *d_cat = NULL, *d_up = NULL, *d_below = NULL;
        GV_TRY(gv_layer_zeros(ctx, arena, (int64_t)N * (cb + c->channels[l]) * HW, &d_cat));
        GV_TRY(gv_layer_zeros(ctx, arena, (int64_t)N * cb * HW, &d_up));
        GV_TRY(gv_layer_zeros(ctx, arena, (int64_t)N * cb * HW / 4, &d_below));
        GV_TRY(gv_resblock_backward(ctx, arena, theta, dtheta, &m->up_res[l], N, d_cat, demb, d_h,
                                    &s->up_res[l]));
        if (!gv_layer_dry(arena)) {
            gv_concat_dims cd = {.N = N, .Ca = cb, .Cb = c->channels[l], .HW = HW};
            GV_TRY(ops->concat_backward(ctx, d_up, d_skip[l], d_cat, &cd));
            gv_upsample_dims ud = {.N = N, .C = cb, .H = H / 2, .W = W / 2, .f = 2};
            GV_TRY(ops->upsample_nearest_backward(ctx, d_below, d_up, &ud));
        }
        d_h = d_below;
    }
    /* mid blocks, last first */
    const int64_t mid_numel = (int64_t)N * c->channels[c->levels - 1] *
                              (c->height >> c->levels) * (c->width >> c->levels);
    for (int i = c->mid_blocks - 1; i >= 0; --i) {
        float *d_in = NULL;
        GV_TRY(gv_layer_zeros(ctx, arena, mid_numel, &d_in));
        GV_TRY(gv_resblock_backward(ctx, arena, theta, dtheta, &m->mid[i], N, d_in, demb, d_h,
                                    &s->mid[i]));
        d_h = d_in;
    }
    /* down path, deepest level first; d_h is the gradient at down_out[l] */
    for (int l = c->levels - 1; l >= 0; --l) {
        const gv_resblock *rb = &m->down_res[l];
        float *d_in = NULL; /* (N, Cin, H_l, W_l) */
        GV_TRY(gv_conv2d_backward(ctx, arena, theta, dtheta, &m->downsample[l], N, d_skip[l], d_h,
                                  s->down_res[l].y));
        GV_TRY(gv_layer_zeros(ctx, arena, (int64_t)N * rb->Cin * rb->H * rb->W, &d_in));
        GV_TRY(gv_resblock_backward(ctx, arena, theta, dtheta, rb, N, d_in, demb, d_skip[l],
                                    &s->down_res[l]));
        d_h = d_in;
    }
    GV_TRY(gv_conv2d_backward(ctx, arena, theta, dtheta, &m->conv_in, N, dx, d_h, s->x));
    /* conditioning: emb = time + prompt, so both receive demb */
    GV_TRY(gv_time_embed_backward(ctx, arena, theta, dtheta, &m->time, N, demb, &s->time));
    GV_TRY(gv_embedding_bag_backward(ctx, arena, dtheta, &m->prompt, N, demb, s->ids));
    gv_arena_reset_to(arena, mark);
    return GV_OK;
}

int64_t gv_unet_flops(const gv_unet *m) {
    const gv_unet_config *c = &m->cfg;
    int64_t f = gv_time_embed_flops(&m->time) + gv_conv2d_flops(&m->conv_in) +
                gv_conv2d_flops(&m->conv_out);
    for (int l = 0; l < c->levels; ++l)
        f += gv_resblock_flops(&m->down_res[l]) + gv_conv2d_flops(&m->downsample[l]) +
             gv_resblock_flops(&m->up_res[l]);
    for (int i = 0; i < c->mid_blocks; ++i) f += gv_resblock_flops(&m->mid[i]);
    return f;
}
