/* The image classifier (DESIGN.md §5): a small CNN built from models/layers, used by the
 * `classifier` reward, by a "gold" judge of another width, and by the FID-like metric (Fréchet
 * distance of its penultimate features).
 *
 *   a0 = SiLU(GN(conv3x3(x)))            (in -> w)      @ H x W
 *   a1 = SiLU(GN(conv3x3 s2(a0)))        (w -> 2w)      @ H/2
 *   a2 = SiLU(GN(conv3x3 s2(a1)))        (2w -> 2w)     @ H/4
 *   f  = SiLU(Linear(flatten(a2)))       (2w·H/4·W/4 -> F)  penultimate features (N, F)
 *   logits = Linear(f)                   (F -> classes)
 *
 * There is no pooling op: the flattened 7x7 map goes through a Linear. Names (prefix e.g.
 * "classifier"): <prefix>.conv{0,1,2}, <prefix>.norm{0,1,2}, <prefix>.fc, <prefix>.head, each
 * .weight / .bias. Init as models/layers (uniform_fanin(1) weights, zero biases, GN 1 / 0).
 * Not here: the loss (the trainer calls cross_entropy on the logits), rewards, the FID math. */
#ifndef GROVE_MODELS_CLASSIFIER_H
#define GROVE_MODELS_CLASSIFIER_H

#include "models/layers/layers.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gv_classifier_config {
    int in_channels, height, width; /* image; H, W divisible by 4           */
    int width_mult;                 /* w: channels of the first conv        */
    int features;                   /* F: penultimate width                 */
    int classes;                    /* logits per image                     */
    int groups;                     /* GroupNorm groups (<= w)              */
    float norm_eps;
} gv_classifier_config;

/* 1x28x28, w as given (e.g. 32 for the reward classifier, 16 for a judge), F 128, 10 classes,
   GroupNorm 8 (fewer when w < 8). */
gv_classifier_config gv_classifier_config_default(int width_mult);

typedef struct gv_classifier {
    gv_classifier_config cfg;
    gv_conv2d conv[3];
    gv_groupnorm norm[3]; /* + SiLU */
    gv_linear fc, head;
    int64_t n_params;
} gv_classifier;

typedef struct gv_classifier_saved {
    int N;
    const float *x;             /* (N, in, H, W) caller's input, kept until backward */
    float *c[3];                /* conv outputs = norm inputs                        */
    gv_groupnorm_saved norm[3]; /* .y = a0, a1, a2                                   */
    float *fc;                  /* (N, F) fc output before SiLU                      */
    float *features;            /* (N, F) penultimate features SiLU(fc)              */
} gv_classifier_saved;

gv_status gv_classifier_declare(gv_classifier *m, const gv_classifier_config *cfg,
                                gv_params *ps, const char *prefix);
/* logits (N, classes) [caller's buffer] = classifier(x (N, in, H, W)); saved->features (N, F)
 * holds the penultimate features (arena memory). */
gv_status gv_classifier_forward(const gv_classifier *m, gv_ctx *ctx, gv_arena *arena,
                                const float *theta, int N, const float *x, float *logits,
                                gv_classifier_saved *saved);
/* dtheta += (NULL: not wanted), dx (N, in, H, W) += (NULL: not wanted); dlogits (N, classes). */
gv_status gv_classifier_backward(const gv_classifier *m, gv_ctx *ctx, gv_arena *arena,
                                 const float *theta, float *dtheta,
                                 const gv_classifier_saved *saved, const float *dlogits,
                                 float *dx);

#ifdef __cplusplus
}
#endif
#endif
