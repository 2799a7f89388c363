/* The image flow-matching UNet (DESIGN.md §5), written once against models/layers.
 *
 *   emb  = TimeMLP(sigma) + PromptBag(ids)                                     (N, E)
 *   h    = conv3x3(x)                       (in -> ch[0])                        @ H
 *   down level l = 0..levels-1:  skip_l = Res(c -> ch[l], emb);  h = conv3x3 s2(skip_l)   @ H/2^l
 *   mid: mid_blocks x Res(ch[last] -> ch[last])                                 @ H/2^levels
 *   up level l = levels-1..0:    h = Res(concat(up2(h), skip_l) -> ch[l], emb)  @ H/2^l
 *   v    = conv3x3(SiLU(GN(h)))             (ch[0] -> in)
 *
 * gv_unet_config_s() is the reference preset unet-s (1x28x28, channels 32/64, two mid blocks,
 * emb 128, time 64, GroupNorm 8): 497,185 + 128·V parameters, 183.27 MFLOP per image forward
 * (gv_unet_flops; convolutions and linears, a multiply-add = 2 FLOP).
 *
 * Parameter names (checkpoint keys, prefix "unet"):
 *   unet.time.lin{1,2}.{weight,bias}      time MLP          unet.prompt.weight    (V, E) bag
 *   unet.in.conv.{weight,bias}            first conv
 *   unet.down.<l>.res.<block>             level-l ResBlock  unet.down.<l>.downsample.{weight,bias}
 *   unet.mid.<i>.res.<block>              unet.up.<l>.res.<block>
 *   unet.out.norm.{weight,bias}           unet.out.conv.{weight,bias}
 *   <block> = norm1 | conv1 | emb | norm2 | conv2 | skip (1x1, only when channels change),
 *             each .weight / .bias
 * Init: convolution and linear weights uniform_fanin(1), biases zero, norms gamma 1 / beta 0, the
 * prompt table uniform_fanin(1); the output conv starts at zero when cfg.zero_init_out (unet-s:
 * yes, so a fresh model predicts v = 0).
 *
 * Prompts: ids (N, L) int32 over the vocabulary, -1 pads; the null prompt is the vocabulary's
 * reserved <null> word, i.e. ids [null_id, -1, ...] (DESIGN.md §5). The vocabulary itself lives
 * in the checkpoint, not here. Not here either: CFG (the sampler combines rows), the loss. */
#ifndef GROVE_MODELS_UNET_H
#define GROVE_MODELS_UNET_H

#include "models/layers/layers.h"

#ifdef __cplusplus
extern "C" {
#endif

#define GV_UNET_MAX_LEVELS 4
#define GV_UNET_MAX_MID 4

typedef struct gv_unet_config {
    int in_channels, height, width;       /* image (C, H, W); H, W divisible by 2^levels  */
    int levels;                           /* resolution levels, 1..GV_UNET_MAX_LEVELS     */
    int channels[GV_UNET_MAX_LEVELS];     /* ch[l] per level                              */
    int mid_blocks;                       /* 0..GV_UNET_MAX_MID                           */
    int emb_dim;                          /* E: time MLP and prompt bag width             */
    int time_dim;                         /* Dt: sinusoidal width, even                   */
    float time_scale;                     /* sinusoidal(time_scale * sigma): 1000         */
    int groups;                           /* GroupNorm groups                             */
    float norm_eps;                       /* 1e-5                                         */
    int vocab_size;                       /* V, the <null> word included                  */
    int max_prompt_len;                   /* L, ids per prompt row (-1 padded)            */
    int zero_init_out;                    /* 1: output conv starts at zero                */
} gv_unet_config;

/* The unet-s preset for a vocabulary of V words (<null> included) and prompts of up to L ids. */
gv_unet_config gv_unet_config_s(int vocab_size, int max_prompt_len);

typedef struct gv_unet {
    gv_unet_config cfg;
    gv_time_embed time;
    gv_embedding_bag prompt;
    gv_conv2d conv_in;
    gv_resblock down_res[GV_UNET_MAX_LEVELS];
    gv_conv2d downsample[GV_UNET_MAX_LEVELS];
    gv_resblock mid[GV_UNET_MAX_MID];
    gv_resblock up_res[GV_UNET_MAX_LEVELS];
    gv_groupnorm out_norm; /* + SiLU */
    gv_conv2d conv_out;
    int64_t n_params; /* elements declared by this model (padding excluded) */
} gv_unet;

/* Activations of one forward, in the arena, for the matching backward. */
typedef struct gv_unet_saved {
    int N;
    const float *x;       /* (N, in, H, W) caller's input, kept until backward */
    const int32_t *ids;   /* (N, L)                                            */
    gv_time_embed_saved time;
    float *prompt;        /* (N, E) bag output                                 */
    float *emb;           /* (N, E) time + prompt                              */
    float *h0;            /* (N, ch[0], H, W)                                  */
    gv_resblock_saved down_res[GV_UNET_MAX_LEVELS]; /* .y = skip_l (N, ch[l], H_l, W_l) */
    float *down_out[GV_UNET_MAX_LEVELS];            /* (N, ch[l], H_l/2, W_l/2)         */
    gv_resblock_saved mid[GV_UNET_MAX_MID];
    float *up_in[GV_UNET_MAX_LEVELS];               /* (N, c_below, H_l, W_l) upsampled  */
    float *cat[GV_UNET_MAX_LEVELS];                 /* (N, c_below + ch[l], H_l, W_l)    */
    gv_resblock_saved up_res[GV_UNET_MAX_LEVELS];
    gv_groupnorm_saved out_norm;
} gv_unet_saved;

/* Declares every parameter under `prefix` ("unet"); checks the config. */
gv_status gv_unet_declare(gv_unet *m, const gv_unet_config *cfg, gv_params *ps,
                          const char *prefix);

/* v (N, in, H, W) [caller's buffer] = model(x (N, in, H, W), sigma (N), prompt_ids (N, L));
 * all backend memory; activations from `arena` recorded in `saved`. theta: any flat parameter
 * buffer of the table the model was declared in. In a measure pass nothing runs. */
gv_status gv_unet_forward(const gv_unet *m, gv_ctx *ctx, gv_arena *arena, const float *theta,
                          int N, const float *x, const float *sigma, const int32_t *prompt_ids,
                          float *v, gv_unet_saved *saved);

/* dtheta += d<dv, v>/dtheta (NULL: not wanted), dx (N, in, H, W) += (NULL: not wanted);
 * dv (N, in, H, W). The forward's activations must still be in `arena`; the backward's own
 * temporaries come from it too and are released before returning (its peak is what a measure
 * pass of forward + backward reports). */
gv_status gv_unet_backward(const gv_unet *m, gv_ctx *ctx, gv_arena *arena, const float *theta,
                           float *dtheta, const gv_unet_saved *saved, const float *dv,
                           float *dx);

/* Forward FLOPs per image (convs and linears; multiply-add = 2). */
int64_t gv_unet_flops(const gv_unet *m);

#ifdef __cplusplus
}
#endif
#endif
