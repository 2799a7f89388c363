/* Evaluation of images and checkpoints with the gold judge (DESIGN.md §7): classifier accuracy,
 * gold probability and FCD (Fréchet distance of the judge's penultimate features, frechet.h).
 *
 * A gv_judge runs a classifier over images p ∈ [0, 1] (host or backend memory) in fixed
 * micro-batches (DESIGN.md §3: every forward has micro_batch rows, the tail padded with zeros and
 * ignored). The classifier sees x = 2p − 1, the same model-space convention as the flow model
 * (ALGORITHMS.md §1; the classifier is trained on gv_dataset_batch_to_model images). The conversion
 * is an op (axpby against a ones buffer), so backend images never visit the host; only the logits'
 * softmax and the features are copied back for the host statistics.
 *
 * gv_eval_checkpoint: load a UNet (EMA weights by default) and the gold classifier, sample n images
 * round robin over the eval prompts (sample i gets prompt i mod P, fixed seed, ODE sampler), and
 * score them against the model's dataset's TEST split.
 *
 * Deliberately not here: training-time rewards (rewards/), galleries, printing (engine/cli). */
#ifndef GROVE_EVALUATE_H
#define GROVE_EVALUATE_H

#include <stdint.h>

#include "grove/arena.h"
#include "grove/backend.h"
#include "grove/dataset.h"
#include "models/classifier/classifier.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gv_judge {
    const gv_classifier *m;
    const float *theta;
    const gv_backend *backend;
    int micro_batch;         /* rows of every forward                   */
    int64_t D;               /* C·H·W per image                         */
    int F, K;                /* features, classes                       */
    float *p_stage;          /* (mb, D) backend: the chunk's p          */
    float *x_stage;          /* (mb, D) backend: 2p − 1                 */
    float *ones;             /* (mb, D) backend: 1.0                    */
    float *logits, *probs;   /* (mb, K) backend                         */
    float *probs_host;       /* (mb, K)                                 */
    float *feat_host;        /* (mb, F)                                 */
    gv_arena arena;          /* activations, sized by a measure pass    */
    gv_classifier_saved saved;
} gv_judge;

/* m and theta must outlive the judge. */
gv_status gv_judge_create(gv_judge *j, gv_ctx *c, const gv_classifier *m, const float *theta,
                          int micro_batch);
void gv_judge_free(gv_judge *j);

/* Run the classifier over n images p (n, C, H, W) in [0, 1] (backend memory when on_device, else
   host). probs (n, K) [host] = softmax of the logits, features (n, F) [host] = penultimate
   features; either may be NULL. */
gv_status gv_judge_run(gv_judge *j, gv_ctx *c, const float *p, int on_device, int64_t n,
                       float *probs, float *features);

/* Features (n, F) [host, malloc'd into *features] of the first n images (n <= 0: all) of a
   dataset split, in split order. */
gv_status gv_judge_split_features(gv_judge *j, gv_ctx *c, const gv_dataset_split *split,
                                  int64_t n, float **features, int64_t *n_out);

typedef struct gv_eval_result {
    int64_t n;
    double classifier_accuracy; /* fraction with argmax(probs) == label                          */
    double gold_prob;           /* mean over samples of softmax(logits)[label]                   */
    double fcd;                 /* Fréchet distance of sample vs reference features              */
} gv_eval_result;

/* Score n >= 2 images p (as gv_judge_run) with labels (n) [host] against reference features
   ref (n_ref >= 2, F) [host]. */
gv_status gv_eval_images(gv_judge *j, gv_ctx *c, const float *p, int on_device, int64_t n,
                         const int32_t *labels, const float *ref, int64_t n_ref,
                         gv_eval_result *out);

typedef struct gv_eval_options {
    const char *checkpoint;   /* the UNet to evaluate                                         */
    const char *gold;         /* gold classifier; NULL: models/weights/<dataset>-classifier-gold.h5
                                 under gv_root_dir()                                           */
    const char *prompts;      /* eval prompt file: one prompt per line, '#' comments           */
    const char *dataset_path; /* NULL: the dataset kind's default path under gv_root_dir()    */
    int n;                    /* samples (>= 2), round robin over the prompts; <= 0: below     */
    int seeds_per_prompt;     /* when n <= 0: n = seeds_per_prompt · (number of prompts)        */
    int steps;
    double shift, guidance;
    uint32_t seed;            /* RNG stream GV_RNG_STREAM_EVAL                                 */
    int micro_batch;
    int use_ema;              /* 1 (default): the checkpoint's EMA weights when present        */
    int64_t max_reference;    /* test images for the reference features; <= 0: all            */
} gv_eval_options;

typedef struct gv_eval_record {
    char checkpoint[17];      /* the UNet's model hash                                         */
    int n, steps;
    double shift, guidance;
    uint32_t seed;
    gv_eval_result result;
    int64_t nfe;              /* denoiser rows evaluated (CFG pair = 2)                        */
    double seconds;           /* wall time of sampling + scoring (loading excluded)            */
} gv_eval_record;

/* Prompt lines of a prompt file (blank lines and '#' comments skipped); *lines malloc'd, free
   with gv_eval_prompts_free. "file: no prompts" when empty. */
gv_status gv_eval_prompts_read(const char *path, char ***lines, int *count);
void gv_eval_prompts_free(char **lines, int count);

gv_status gv_eval_checkpoint(gv_ctx *c, const gv_eval_options *o, gv_eval_record *out);

#ifdef __cplusplus
}
#endif
#endif
