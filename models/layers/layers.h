/* Model building blocks written once against the op table (DESIGN.md §3, §5; STYLE.md 1, 7, 16):
 * linear, conv2d, GroupNorm (+ optional SiLU), the UNet ResBlock, the prompt embedding bag and the
 * sinusoidal time-embedding MLP.
 *
 * Parameters. A layer holds no memory: `declare` adds its tensors to a gv_params table and records
 * their OFFSETS (in floats) into the table's flat buffers; offsets are fixed at declaration. Every
 * forward takes `theta`, the base of ANY flat buffer with that layout (params->values, params->ema,
 * a frozen reference copy), so EMA sampling and KL-reference forwards need no second model. Every
 * backward ADDS parameter gradients into `dtheta + offset` (params->grads; NULL = not wanted) and
 * input gradients into `dx` (NULL = not wanted), following the op table's += rule.
 *
 * Activations. Forward outputs and the activations backward needs are taken from a gv_arena; the
 * `*_saved` structs record where. Backward takes its temporaries from an arena too (zeroed through
 * backend->memset_zero, then accumulated with +=) and gives them back before returning. In a
 * measure pass (arena->measuring) allocations count but return NULL, and every op call is skipped:
 * gv_layer_dry() is the one place that decides. Inputs passed to a forward (x, ids, sigma) are
 * referenced, not copied: they must stay unchanged until the matching backward.
 *
 * Device-agnostic rule: tensors are touched only through ctx->backend->ops and the backend's
 * memset; a layer never dereferences tensor memory.
 *
 * Deliberately not here: self-attention blocks (unet-s has none), dropout, models themselves
 * (models/unet, models/classifier). */
#ifndef GROVE_MODELS_LAYERS_H
#define GROVE_MODELS_LAYERS_H

#include <stdint.h>

#include "grove/arena.h"
#include "grove/backend.h"
#include "grove/params.h"

#ifdef __cplusplus
extern "C" {
#endif

#define GV_NO_PARAM ((int64_t)-1)

/* 1 in a measure pass: allocate, but run no op (the one place that decides). */
static inline int gv_layer_dry(const gv_arena *a) { return a->measuring; }
/* Parameter view in a flat buffer; NULL when the layer has no such parameter. */
static inline const float *gv_layer_param(const float *theta, int64_t offset) {
    return offset == GV_NO_PARAM ? NULL : theta + offset;
}
/* Gradient view; NULL when gradients are not wanted or the parameter does not exist. */
static inline float *gv_layer_grad(float *dtheta, int64_t offset) {
    return (dtheta && offset != GV_NO_PARAM) ? dtheta + offset : NULL;
}

/* out (n) from `a`, zeroed on the backend (not in a measure pass). */
gv_status gv_layer_zeros(gv_ctx *ctx, gv_arena *a, int64_t n, float **out);
/* Declare "<prefix>.<leaf>" with `rank` dims; *offset receives its flat-buffer offset. */
gv_status gv_layer_declare(gv_params *ps, const char *prefix, const char *leaf, int rank,
                           const int64_t *dims, gv_init_kind init, float scale, int decay,
                           int64_t *offset);
/* buf (GV_PARAM_NAME_MAX) = "<prefix>.<leaf>"; GV_ERR_INVALID when too long. */
gv_status gv_layer_subname(char *buf, const char *prefix, const char *leaf);
/* y (n) = x1 + x2 through the add op (skipped in a measure pass); y may alias an input. */
gv_status gv_layer_add(gv_ctx *ctx, gv_arena *a, float *y, const float *x1, const float *x2,
                       int64_t n);

/* ---- linear: y (N, Dout) = x (N, Din) . w^T + b --------------------------------------------- */
typedef struct gv_linear {
    int Din, Dout;
    int64_t w; /* (Dout, Din), uniform_fanin(1) or zeros, decayed */
    int64_t b; /* (Dout) zeros, or GV_NO_PARAM                    */
} gv_linear;

/* Names "<name>.weight", "<name>.bias". zero_init: weight starts at zero (output layers). */
gv_status gv_linear_declare(gv_linear *l, gv_params *ps, const char *name, int Din, int Dout,
                            int bias, int zero_init);
/* *y (N, Dout) from `a`. */
gv_status gv_linear_forward(gv_ctx *ctx, gv_arena *a, const float *theta, const gv_linear *l,
                            int N, const float *x, float **y);
/* Same, writing into a caller-provided y (N, Dout) (a model's output). */
gv_status gv_linear_forward_into(gv_ctx *ctx, gv_arena *a, const float *theta,
                                 const gv_linear *l, int N, const float *x, float *y);
/* dx (N, Din) +=, dtheta +=; x (N, Din) the forward input; dy (N, Dout). */
gv_status gv_linear_backward(gv_ctx *ctx, gv_arena *a, const float *theta, float *dtheta,
                             const gv_linear *l, int N, float *dx, const float *dy,
                             const float *x);
int64_t gv_linear_flops(const gv_linear *l); /* per row, multiply-add = 2 */

/* ---- conv2d: y (N, K, P, Q) = conv(x (N, C, H, W)) + b, square kernel, declared geometry ---- */
typedef struct gv_conv2d {
    gv_conv2d_dims geom; /* input geometry with N = 0; P, Q filled */
    int64_t w;           /* (K, C, R, R), uniform_fanin(1) or zeros, decayed */
    int64_t b;           /* (K) zeros */
} gv_conv2d;

gv_status gv_conv2d_declare(gv_conv2d *l, gv_params *ps, const char *name, int C, int H, int W,
                            int K, int R, int stride, int pad, int zero_init);
/* *y (N, K, P, Q) from `a`. */
gv_status gv_conv2d_forward(gv_ctx *ctx, gv_arena *a, const float *theta, const gv_conv2d *l,
                            int N, const float *x, float **y);
/* Same, writing into a caller-provided y (N, K, P, Q) (a model's output). */
gv_status gv_conv2d_forward_into(gv_ctx *ctx, gv_arena *a, const float *theta,
                                 const gv_conv2d *l, int N, const float *x, float *y);
/* dx (N, C, H, W) +=, dtheta +=; dy (N, K, P, Q); x the forward input. */
gv_status gv_conv2d_backward(gv_ctx *ctx, gv_arena *a, const float *theta, float *dtheta,
                             const gv_conv2d *l, int N, float *dx, const float *dy,
                             const float *x);
int64_t gv_conv2d_flops(const gv_conv2d *l); /* per sample */
static inline int64_t gv_conv2d_out_numel(const gv_conv2d *l) { /* per sample: K * P * Q */
    return (int64_t)l->geom.K * l->geom.P * l->geom.Q;
}

/* ---- GroupNorm (+ SiLU): y (N, C, HW) = [silu](GN_G(x) * gamma + beta) --------------------- */
typedef struct gv_groupnorm {
    int C, G;
    int64_t HW;
    float eps;
    int silu;      /* 1: SiLU after the norm (two ops, not fused) */
    int64_t gamma; /* (C) ones, not decayed  */
    int64_t beta;  /* (C) zeros, not decayed */
} gv_groupnorm;

typedef struct gv_groupnorm_saved {
    const float *x; /* (N, C, HW) input                             */
    float *mean;    /* (N, G)                                       */
    float *rstd;    /* (N, G)                                       */
    float *yn;      /* (N, C, HW) norm output before SiLU (silu only) */
    float *y;       /* (N, C, HW) the layer output                  */
} gv_groupnorm_saved;

/* Names "<name>.weight" (gamma), "<name>.bias" (beta). */
gv_status gv_groupnorm_declare(gv_groupnorm *l, gv_params *ps, const char *name, int C,
                               int64_t HW, int G, float eps, int silu);
/* s->y (N, C, HW) from `a`. */
gv_status gv_groupnorm_forward(gv_ctx *ctx, gv_arena *a, const float *theta,
                               const gv_groupnorm *l, int N, const float *x,
                               gv_groupnorm_saved *s);
/* dx (N, C, HW) +=, dtheta +=; dy (N, C, HW). */
gv_status gv_groupnorm_backward(gv_ctx *ctx, gv_arena *a, const float *theta, float *dtheta,
                                const gv_groupnorm *l, int N, float *dx, const float *dy,
                                const gv_groupnorm_saved *s);

/* ---- ResBlock (DESIGN.md §5) -------------------------------------------------------------------
 *   h = conv3x3(SiLU(GN(x)))  (Cin -> Cout);  h += Linear(emb) broadcast over H, W
 *   y = conv3x3(SiLU(GN(h))) (Cout -> Cout) + skip(x),  skip = 1x1 conv when Cin != Cout else x */
typedef struct gv_resblock {
    int Cin, Cout, E, H, W;
    gv_groupnorm norm1; /* GN(G, Cin) + SiLU        "<name>.norm1" */
    gv_conv2d conv1;    /* 3x3 Cin -> Cout          "<name>.conv1" */
    gv_linear emb;      /* E -> Cout                "<name>.emb"   */
    gv_groupnorm norm2; /* GN(G, Cout) + SiLU       "<name>.norm2" */
    gv_conv2d conv2;    /* 3x3 Cout -> Cout         "<name>.conv2" */
    int has_skip;
    gv_conv2d skip;     /* 1x1 Cin -> Cout          "<name>.skip"  */
} gv_resblock;

typedef struct gv_resblock_saved {
    const float *x;   /* (N, Cin, H, W)  */
    const float *emb; /* (N, E)          */
    gv_groupnorm_saved n1, n2;
    float *y;         /* (N, Cout, H, W) */
} gv_resblock_saved;

gv_status gv_resblock_declare(gv_resblock *l, gv_params *ps, const char *name, int Cin, int Cout,
                              int E, int H, int W, int G, float eps);
/* s->y (N, Cout, H, W) from `a`; x (N, Cin, H, W), emb (N, E). */
gv_status gv_resblock_forward(gv_ctx *ctx, gv_arena *a, const float *theta, const gv_resblock *l,
                              int N, const float *x, const float *emb, gv_resblock_saved *s);
/* dx (N, Cin, H, W) +=, demb (N, E) +=, dtheta +=; dy (N, Cout, H, W). */
gv_status gv_resblock_backward(gv_ctx *ctx, gv_arena *a, const float *theta, float *dtheta,
                               const gv_resblock *l, int N, float *dx, float *demb,
                               const float *dy, const gv_resblock_saved *s);
int64_t gv_resblock_flops(const gv_resblock *l); /* per sample */

/* ---- prompt embedding bag: y (N, D) = mean of table rows of the valid ids of ids (N, L) -------
 * -1 pads. The null prompt is a vocabulary word of its own (a learned row): its id sequence is
 * [null_id, -1, ...]; an all-padding row gives a zero embedding. */
typedef struct gv_embedding_bag {
    int V, L, D;
    int64_t table; /* (V, D) uniform_fanin(1), i.e. U(-1/sqrt(D), 1/sqrt(D)), not decayed */
} gv_embedding_bag;

/* Name "<name>.weight". */
gv_status gv_embedding_bag_declare(gv_embedding_bag *l, gv_params *ps, const char *name, int V,
                                   int L, int D);
gv_status gv_embedding_bag_forward(gv_ctx *ctx, gv_arena *a, const float *theta,
                                   const gv_embedding_bag *l, int N, const int32_t *ids,
                                   float **y);
gv_status gv_embedding_bag_backward(gv_ctx *ctx, gv_arena *a, float *dtheta,
                                    const gv_embedding_bag *l, int N, const float *dy,
                                    const int32_t *ids);

/* ---- time embedding: y (N, D) = Linear(SiLU(Linear(sinusoidal(scale * sigma, Dt)))) ---------- */
typedef struct gv_time_embed {
    int Dt, D;
    float scale;     /* 1000: sigma in [0, 1] -> DDPM-like timestep range */
    gv_linear lin1;  /* Dt -> D "<name>.lin1" */
    gv_linear lin2;  /* D -> D  "<name>.lin2" */
} gv_time_embed;

typedef struct gv_time_embed_saved {
    float *s; /* (N, Dt) sinusoidal features   */
    float *h; /* (N, D)  lin1 output           */
    float *a; /* (N, D)  SiLU(h)               */
    float *y; /* (N, D)  lin2 output (result)  */
} gv_time_embed_saved;

gv_status gv_time_embed_declare(gv_time_embed *l, gv_params *ps, const char *name, int Dt, int D,
                                float scale);
/* sigma (N) on the backend; s->y (N, D). */
gv_status gv_time_embed_forward(gv_ctx *ctx, gv_arena *a, const float *theta,
                                const gv_time_embed *l, int N, const float *sigma,
                                gv_time_embed_saved *s);
/* Parameter gradients only (sigma is not differentiated); dy (N, D). */
gv_status gv_time_embed_backward(gv_ctx *ctx, gv_arena *a, const float *theta, float *dtheta,
                                 const gv_time_embed *l, int N, const float *dy,
                                 const gv_time_embed_saved *s);
int64_t gv_time_embed_flops(const gv_time_embed *l); /* per sample (the two linears) */

#ifdef __cplusplus
}
#endif
#endif
