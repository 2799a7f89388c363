/* The masked-diffusion transformer (see mdt.h): declaration, forward with saved activations,
 * backward. Linears come from models/layers; layer norm, attention, GELU, embeddings and adds are
 * op-table calls made here (skipped in an arena measure pass, like every layer).
 * Not here: losses, masking, sampling. */
#include "mdt.h"

#include <stdio.h>

gv_mdt_config gv_mdt_config_s(int vocab_size, int seq_len) {
    return (gv_mdt_config){.vocab_size = vocab_size, .seq_len = seq_len, .layers = 4,
                           .width = 128, .heads = 4, .mlp_mult = 4, .norm_eps = 1e-5f,
                           .zero_init_out = 1};
}

/* op call skipped in a measure pass */
#define OP(a, call)                                                                                \
    do {                                                                                           \
        if (!gv_layer_dry(a)) GV_TRY(call);                                                        \
    } while (0)

/* ---- layer norm over the width ---------------------------------------------------------------- */

static gv_status ln_declare(gv_layernorm_layer *l, gv_params *ps, const char *name, int D, float eps) {
    l->D = D;
    l->eps = eps;
    GV_TRY(gv_layer_declare(ps, name, "weight", 1, (int64_t[]){D}, GV_INIT_ONES, 1.0f, 0, &l->gamma));
    return gv_layer_declare(ps, name, "bias", 1, (int64_t[]){D}, GV_INIT_ZEROS, 0.0f, 0, &l->beta);
}

/* y, mean, rstd from the arena; rows R. */
static gv_status ln_forward(gv_ctx *ctx, gv_arena *a, const float *theta, const gv_layernorm_layer *l,
                            int64_t R, const float *x, float **y, float **mean, float **rstd) {
    GV_TRY(gv_arena_floats(a, (size_t)R * l->D, y));
    GV_TRY(gv_arena_floats(a, (size_t)R, mean));
    GV_TRY(gv_arena_floats(a, (size_t)R, rstd));
    gv_layernorm_dims d = {.N = R, .D = l->D, .eps = l->eps};
    OP(a, ctx->backend->ops->layernorm_forward(ctx, *y, *mean, *rstd, x, theta + l->gamma,
                                               theta + l->beta, &d));
    return GV_OK;
}

static gv_status ln_backward(gv_ctx *ctx, gv_arena *a, const float *theta, float *dtheta,
                             const gv_layernorm_layer *l, int64_t R, float *dx, const float *dy,
                             const float *x, const float *mean, const float *rstd) {
    gv_layernorm_dims d = {.N = R, .D = l->D, .eps = l->eps};
    OP(a, ctx->backend->ops->layernorm_backward(ctx, dx, gv_layer_grad(dtheta, l->gamma),
                                                gv_layer_grad(dtheta, l->beta), dy, x, mean, rstd,
                                                theta + l->gamma, &d));
    return GV_OK;
}

/* ---- declaration ------------------------------------------------------------------------------ */

gv_status gv_mdt_declare(gv_mdt *m, const gv_mdt_config *cfg, gv_params *ps, const char *prefix) {
    const gv_mdt_config *c = cfg;
    if (c->vocab_size < 2 || c->seq_len < 1 || c->layers < 1 || c->layers > GV_MDT_MAX_LAYERS ||
        c->width < 1 || c->heads < 1 || c->width % c->heads || c->mlp_mult < 1 || !(c->norm_eps > 0))
        return GV_ERROR(GV_ERR_INVALID, "mdt: bad config (V %d, T %d, layers %d (max %d), width %d, "
                        "heads %d, mlp_mult %d)", c->vocab_size, c->seq_len, c->layers,
                        GV_MDT_MAX_LAYERS, c->width, c->heads, c->mlp_mult);
    m->cfg = *cfg;
    const int first = ps->count, D = c->width, F = c->mlp_mult * c->width;
    char name[GV_PARAM_NAME_MAX], sub[GV_PARAM_NAME_MAX], leaf[32];
    GV_TRY(gv_layer_subname(name, prefix, "tok_emb"));
    GV_TRY(gv_layer_declare(ps, name, "weight", 2, (int64_t[]){c->vocab_size, D}, GV_INIT_NORMAL,
                            0.02f, 0, &m->tok_emb));
    GV_TRY(gv_layer_subname(name, prefix, "pos_emb"));
    GV_TRY(gv_layer_declare(ps, name, "weight", 2, (int64_t[]){c->seq_len, D}, GV_INIT_NORMAL,
                            0.02f, 0, &m->pos_emb));
    for (int l = 0; l < c->layers; ++l) {
        gv_mdt_block *b = &m->block[l];
        snprintf(leaf, sizeof leaf, "layer%d", l);
        GV_TRY(gv_layer_subname(name, prefix, leaf));
        GV_TRY(gv_layer_subname(sub, name, "ln1"));
        GV_TRY(ln_declare(&b->ln1, ps, sub, D, c->norm_eps));
        struct { gv_linear *lin; const char *leaf; int din, dout; } lins[] = {
            {&b->q, "q", D, D}, {&b->k, "k", D, D}, {&b->v, "v", D, D}, {&b->o, "o", D, D}};
        for (int i = 0; i < 4; ++i) {
            GV_TRY(gv_layer_subname(sub, name, lins[i].leaf));
            GV_TRY(gv_linear_declare(lins[i].lin, ps, sub, lins[i].din, lins[i].dout, 1, 0));
        }
        GV_TRY(gv_layer_subname(sub, name, "ln2"));
        GV_TRY(ln_declare(&b->ln2, ps, sub, D, c->norm_eps));
        GV_TRY(gv_layer_subname(sub, name, "fc1"));
        GV_TRY(gv_linear_declare(&b->fc1, ps, sub, D, F, 1, 0));
        GV_TRY(gv_layer_subname(sub, name, "fc2"));
        GV_TRY(gv_linear_declare(&b->fc2, ps, sub, F, D, 1, 0));
    }
    GV_TRY(gv_layer_subname(name, prefix, "ln_f"));
    GV_TRY(ln_declare(&m->ln_f, ps, name, D, c->norm_eps));
    GV_TRY(gv_layer_subname(name, prefix, "head"));
    GV_TRY(gv_linear_declare(&m->head, ps, name, D, c->vocab_size, 1, c->zero_init_out));
    m->n_params = 0;
    for (int i = first; i < ps->count; ++i) m->n_params += gv_params_at(ps, i)->numel;
    return GV_OK;
}

int64_t gv_mdt_flops(const gv_mdt *m) {
    const gv_mdt_config *c = &m->cfg;
    const int64_t T = c->seq_len, D = c->width, F = (int64_t)c->mlp_mult * D;
    const int64_t per_layer = T * (2 * 4 * D * D + 2 * 2 * D * F) + 2 * 2 * T * T * D;
    return c->layers * per_layer + T * 2 * D * c->vocab_size;
}

/* ---- forward ---------------------------------------------------------------------------------- */

gv_status gv_mdt_forward(const gv_mdt *m, gv_ctx *ctx, gv_arena *arena, const float *theta, int N,
                         const int32_t *ids, float *logits, gv_mdt_saved *saved) {
    const gv_mdt_config *c = &m->cfg;
    if (N <= 0) return GV_ERROR(GV_ERR_INVALID, "mdt forward: N = %d must be positive", N);
    const gv_ops *ops = ctx->backend->ops;
    const int T = c->seq_len, D = c->width, H = c->heads, F = c->mlp_mult * D;
    const int64_t R = (int64_t)N * T, RD = R * D;
    gv_mdt_saved *s = saved;
    s->N = N;
    s->ids = ids;
    float *h = NULL;
    GV_TRY(gv_arena_floats(arena, (size_t)RD, &h));
    gv_embedding_dims ed = {.N = (int)R, .L = 1, .V = c->vocab_size, .D = D};
    OP(arena, ops->embedding_forward(ctx, h, ids, theta + m->tok_emb, &ed));
    gv_ew_dims td = {.n = (int64_t)T * D};
    for (int n = 0; n < N; ++n)
        OP(arena, ops->add(ctx, h + (int64_t)n * T * D, h + (int64_t)n * T * D, theta + m->pos_emb, &td));
    gv_ew_dims rd = {.n = RD}, fd = {.n = R * F};
    gv_attention_dims ad = {.N = N, .T = T, .D = D, .H = H};
    for (int l = 0; l < c->layers; ++l) {
        const gv_mdt_block *b = &m->block[l];
        gv_mdt_block_saved *bs = &s->blk[l];
        bs->h_in = h;
        GV_TRY(ln_forward(ctx, arena, theta, &b->ln1, R, h, &bs->a, &bs->a_mean, &bs->a_rstd));
        GV_TRY(gv_linear_forward(ctx, arena, theta, &b->q, (int)R, bs->a, &bs->q));
        GV_TRY(gv_linear_forward(ctx, arena, theta, &b->k, (int)R, bs->a, &bs->k));
        GV_TRY(gv_linear_forward(ctx, arena, theta, &b->v, (int)R, bs->a, &bs->v));
        GV_TRY(gv_arena_floats(arena, (size_t)N * H * T * T, &bs->probs));
        GV_TRY(gv_arena_floats(arena, (size_t)RD, &bs->att));
        OP(arena, ops->attention_forward(ctx, bs->att, bs->probs, bs->q, bs->k, bs->v, NULL, &ad));
        GV_TRY(gv_linear_forward(ctx, arena, theta, &b->o, (int)R, bs->att, &bs->h_mid));
        OP(arena, ops->add(ctx, bs->h_mid, bs->h_mid, h, &rd)); /* residual */
        GV_TRY(ln_forward(ctx, arena, theta, &b->ln2, R, bs->h_mid, &bs->m, &bs->m_mean, &bs->m_rstd));
        GV_TRY(gv_linear_forward(ctx, arena, theta, &b->fc1, (int)R, bs->m, &bs->f1));
        GV_TRY(gv_arena_floats(arena, (size_t)(R * F), &bs->g));
        OP(arena, ops->gelu_forward(ctx, bs->g, bs->f1, &fd));
        float *next = NULL;
        GV_TRY(gv_linear_forward(ctx, arena, theta, &b->fc2, (int)R, bs->g, &next));
        OP(arena, ops->add(ctx, next, next, bs->h_mid, &rd)); /* residual */
        h = next;
    }
    s->h_out = h;
    GV_TRY(ln_forward(ctx, arena, theta, &m->ln_f, R, h, &s->f, &s->f_mean, &s->f_rstd));
    return gv_linear_forward_into(ctx, arena, theta, &m->head, (int)R, s->f, logits);
}

/* ---- backward --------------------------------------------------------------------------------- */

gv_status gv_mdt_backward(const gv_mdt *m, gv_ctx *ctx, gv_arena *arena, const float *theta,
                          float *dtheta, const gv_mdt_saved *saved, const float *dlogits) {
    const gv_mdt_config *c = &m->cfg;
    const gv_mdt_saved *s = saved;
    const gv_ops *ops = ctx->backend->ops;
    const int N = s->N, T = c->seq_len, D = c->width, H = c->heads, F = c->mlp_mult * D;
    const int64_t R = (int64_t)N * T, RD = R * D;
    const size_t outer = gv_arena_mark(arena);
    float *dh = NULL, *df = NULL; /* (R, D): gradient at the residual stream, at ln_f's output */
    GV_TRY(gv_layer_zeros(ctx, arena, RD, &dh));
    GV_TRY(gv_layer_zeros(ctx, arena, RD, &df));
    GV_TRY(gv_linear_backward(ctx, arena, theta, dtheta, &m->head, (int)R, df, dlogits, s->f));
    GV_TRY(ln_backward(ctx, arena, theta, dtheta, &m->ln_f, R, dh, df, s->h_out, s->f_mean, s->f_rstd));
    gv_ew_dims fd = {.n = R * F};
    gv_attention_dims ad = {.N = N, .T = T, .D = D, .H = H};
    for (int l = c->layers - 1; l >= 0; --l) {
        const gv_mdt_block *b = &m->block[l];
        const gv_mdt_block_saved *bs = &s->blk[l];
        const size_t mark = gv_arena_mark(arena);
        float *dg, *df1, *dm, *datt, *dq, *dk, *dv, *da;
        GV_TRY(gv_layer_zeros(ctx, arena, R * F, &dg));
        GV_TRY(gv_layer_zeros(ctx, arena, R * F, &df1));
        GV_TRY(gv_layer_zeros(ctx, arena, RD, &dm));
        GV_TRY(gv_layer_zeros(ctx, arena, RD, &datt));
        GV_TRY(gv_layer_zeros(ctx, arena, RD, &dq));
        GV_TRY(gv_layer_zeros(ctx, arena, RD, &dk));
        GV_TRY(gv_layer_zeros(ctx, arena, RD, &dv));
        GV_TRY(gv_layer_zeros(ctx, arena, RD, &da));
        /* MLP branch: h_out = h_mid + fc2(gelu(fc1(LN2(h_mid)))); dh flows on to h_mid as is */
        GV_TRY(gv_linear_backward(ctx, arena, theta, dtheta, &b->fc2, (int)R, dg, dh, bs->g));
        OP(arena, ops->gelu_backward(ctx, df1, dg, bs->f1, &fd));
        GV_TRY(gv_linear_backward(ctx, arena, theta, dtheta, &b->fc1, (int)R, dm, df1, bs->m));
        GV_TRY(ln_backward(ctx, arena, theta, dtheta, &b->ln2, R, dh, dm, bs->h_mid, bs->m_mean,
                           bs->m_rstd));
        /* attention branch: h_mid = h_in + o(attention(q, k, v of LN1(h_in))) */
        GV_TRY(gv_linear_backward(ctx, arena, theta, dtheta, &b->o, (int)R, datt, dh, bs->att));
        OP(arena, ops->attention_backward(ctx, dq, dk, dv, datt, bs->q, bs->k, bs->v, bs->probs,
                                          NULL, &ad));
        GV_TRY(gv_linear_backward(ctx, arena, theta, dtheta, &b->q, (int)R, da, dq, bs->a));
        GV_TRY(gv_linear_backward(ctx, arena, theta, dtheta, &b->k, (int)R, da, dk, bs->a));
        GV_TRY(gv_linear_backward(ctx, arena, theta, dtheta, &b->v, (int)R, da, dv, bs->a));
        GV_TRY(ln_backward(ctx, arena, theta, dtheta, &b->ln1, R, dh, da, bs->h_in, bs->a_mean,
                           bs->a_rstd));
        gv_arena_reset_to(arena, mark);
    }
    if (dtheta) {
        gv_embedding_dims ed = {.N = (int)R, .L = 1, .V = c->vocab_size, .D = D};
        OP(arena, ops->embedding_backward(ctx, dtheta + m->tok_emb, dh, s->ids, &ed));
        gv_ew_dims td = {.n = (int64_t)T * D};
        for (int n = 0; n < N; ++n)
            OP(arena, ops->add(ctx, dtheta + m->pos_emb, dtheta + m->pos_emb, dh + (int64_t)n * T * D, &td));
    }
    gv_arena_reset_to(arena, outer);
    return GV_OK;
}
