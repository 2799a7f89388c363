/* The masked-diffusion transformer (DESIGN.md §5, ALGORITHMS.md §10): a bidirectional pre-LN
 * transformer over token ids with a [MASK] id, LLaDA-style (no time input), logits over the
 * vocabulary at every position. Written once against the op table (models/layers for linear).
 *
 *   h = tok_emb[ids] + pos_emb[t]                                      (N, T, D)
 *   per layer l:  a = LN1(h);  h += Wo · attention(Wq a, Wk a, Wv a)   (H heads, no mask)
 *                 m = LN2(h);  h += W2 · gelu(W1 m)                    (hidden mlp_mult · D)
 *   logits = head(LN_f(h))                                             (N, T, V)
 *
 * Names (prefix e.g. "mdt"): <p>.tok_emb.weight (V, D), <p>.pos_emb.weight (T, D),
 * <p>.layer<l>.{ln1,ln2} (.weight/.bias), <p>.layer<l>.{q,k,v,o,fc1,fc2} (.weight/.bias),
 * <p>.ln_f, <p>.head. Init: embeddings N(0, 0.02²), linears uniform_fanin(1) with zero biases, LN 1/0,
 * the head zero when zero_init_out (so pretraining starts from uniform logits).
 * The positional embedding is added per sample with the add op (no id buffer on the device).
 * Preset mdt-s: 4 layers, width 128, 4 heads, MLP 4x.
 * Not here: the masked-diffusion loss (engine/train/pretrain_mdt.c), sampling (samplers/masked). */
#ifndef GROVE_MODELS_MDT_H
#define GROVE_MODELS_MDT_H

#include "models/layers/layers.h"

#ifdef __cplusplus
extern "C" {
#endif

#define GV_MDT_MAX_LAYERS 16

typedef struct gv_mdt_config {
    int vocab_size;    /* V, including the [MASK] id          */
    int seq_len;       /* T                                   */
    int layers;        /* <= GV_MDT_MAX_LAYERS                */
    int width;         /* D                                   */
    int heads;         /* H, divides D                        */
    int mlp_mult;      /* MLP hidden = mlp_mult * D           */
    float norm_eps;
    int zero_init_out; /* 1: the head starts at zero          */
} gv_mdt_config;

/* mdt-s (DESIGN.md §5) for a vocabulary and sequence length. */
gv_mdt_config gv_mdt_config_s(int vocab_size, int seq_len);

typedef struct gv_layernorm_layer {
    int D;
    float eps;
    int64_t gamma, beta; /* (D) ones / zeros, not decayed */
} gv_layernorm_layer;

typedef struct gv_mdt_block {
    gv_layernorm_layer ln1, ln2;
    gv_linear q, k, v, o, fc1, fc2;
} gv_mdt_block;

typedef struct gv_mdt {
    gv_mdt_config cfg;
    int64_t tok_emb, pos_emb; /* (V, D), (T, D) */
    gv_mdt_block block[GV_MDT_MAX_LAYERS];
    gv_layernorm_layer ln_f;
    gv_linear head;
    int64_t n_params;
} gv_mdt;

typedef struct gv_mdt_block_saved {
    float *h_in;                 /* (N, T, D) residual stream into the block          */
    float *a, *a_mean, *a_rstd;  /* LN1 output (N, T, D), stats (N*T)                 */
    float *q, *k, *v, *probs;    /* (N, T, D) x3, (N, H, T, T)                        */
    float *att;                  /* (N, T, D) attention output before Wo             */
    float *h_mid;                /* (N, T, D) after the attention residual            */
    float *m, *m_mean, *m_rstd;  /* LN2 output, stats                                 */
    float *f1, *g;               /* (N, T, mlp) fc1 output, gelu(f1)                  */
} gv_mdt_block_saved;

typedef struct gv_mdt_saved {
    int N;
    const int32_t *ids;          /* (N, T) the caller's tokens, kept until backward */
    gv_mdt_block_saved blk[GV_MDT_MAX_LAYERS];
    float *h_out;                /* (N, T, D) residual stream after the last block */
    float *f, *f_mean, *f_rstd;  /* final LN output, stats                         */
} gv_mdt_saved;

gv_status gv_mdt_declare(gv_mdt *m, const gv_mdt_config *cfg, gv_params *ps, const char *prefix);
/* logits (N, T, V) [caller's buffer] of ids (N, T) in [0, V) [backend memory]. */
gv_status gv_mdt_forward(const gv_mdt *m, gv_ctx *ctx, gv_arena *arena, const float *theta, int N,
                         const int32_t *ids, float *logits, gv_mdt_saved *saved);
/* dtheta += d loss / d theta given dlogits (N, T, V). */
gv_status gv_mdt_backward(const gv_mdt *m, gv_ctx *ctx, gv_arena *arena, const float *theta,
                          float *dtheta, const gv_mdt_saved *saved, const float *dlogits);
/* Forward FLOPs per sequence (linears, attention scores and mixing). */
int64_t gv_mdt_flops(const gv_mdt *m);

#ifdef __cplusplus
}
#endif
#endif
