/* `grove pretrain`: train a base image model — the rectified-flow UNet or a classifier — from a
 * dataset, into a run directory, and export its EMA weights as a small model file (image_model.h).
 *
 * Also the masked-diffusion transformer on Sudoku (pretrain_mdt.c, ALGORITHMS.md §10).
 * One loop (engine/train/pretrain.c) owns what every kind shares: run directory and resume
 * (DESIGN.md §1), the epoch-shuffled data cursor, AdamW + clip + LR schedule + EMA (optim.h),
 * non-finite skips, checkpoints, metrics and progress. A kind (pretrain_unet.c,
 * pretrain_classifier.c) supplies only its buffers, its loss-and-gradient step and its eval,
 * through gv_pretrain_kind below.
 *
 * Config (engine/train/pretrain_config.c; `grove config`-style dump in every checkpoint):
 *   run {name, dir, seed, threads, device}   model {kind, width, features, unet {...}}
 *   data {dataset, path, prompts, vocab}      train {steps, batch, lr, lr_schedule {...},
 *   weight_decay, grad_clip, ema {decay, every}, sigma_sampling, prompt_dropout, split}
 *   eval {every, samples, loss_images}        checkpoint {every}   export
 *   run.shards + dist {timeout_s, check_every}: data parallel (dist.h) — each step's batch is cut
 *   into run.shards equal shards, computed one at a time (by one process or spread over MPI ranks)
 *   and their gradients summed in shard order, so `mpirun -np R` equals one process bit for bit.
 * Deliberately not here: sampling grids (the sampler adapter; see gv_pretrain_sample_hook). */
#ifndef GROVE_PRETRAIN_H
#define GROVE_PRETRAIN_H

#include <stdint.h>
#include <stdio.h>

#include "grove/backend.h"
#include "grove/config.h"
#include "grove/dataset.h"
#include "grove/dist.h"
#include "grove/image_model.h"
#include "grove/log.h"
#include "grove/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- config ---------------------------------------------------------------------------------- */

typedef enum gv_sigma_sampling { GV_SIGMA_UNIFORM = 0, GV_SIGMA_LOGIT_NORMAL } gv_sigma_sampling;
typedef enum gv_train_split { GV_SPLIT_ALL = 0, GV_SPLIT_FIRST_HALF, GV_SPLIT_SECOND_HALF } gv_train_split;

typedef struct gv_pretrain_run_section {
    char *name;
    char *dir;        /* "" = runs/<name> under the current directory */
    int64_t seed;     /* 32 bits: Philox key word                     */
    int threads;      /* 0 = GROVE_THREADS or all cores               */
    int device;       /* index into "cpu", "cuda"                     */
    int shards;       /* fixed partition of each step's batch (dist.h) */
} gv_pretrain_run_section;

typedef struct gv_pretrain_unet_section {
    int levels;         /* resolution levels                              */
    int channels;       /* ch[l] = channels * 2^l                          */
    int mid_blocks;
    int emb_dim, time_dim, groups;
    int max_prompt_len; /* L, word ids per prompt row                     */
} gv_pretrain_unet_section;

typedef struct gv_pretrain_mdt_section {
    int layers, width, heads, mlp_mult; /* default mdt-s: 4, 128, 4, 4       */
} gv_pretrain_mdt_section;

typedef struct gv_pretrain_model_section {
    int kind;           /* gv_model_kind                                   */
    int width;          /* classifier width_mult                           */
    int features;       /* classifier penultimate width                    */
    gv_pretrain_unet_section unet;
    gv_pretrain_mdt_section mdt;
} gv_pretrain_model_section;

typedef struct gv_pretrain_data_section {
    int dataset;        /* gv_dataset_kind                                 */
    char *path;         /* "" = the kind's default under the grove root    */
    char *prompts;      /* UNet: training prompt file                      */
    char *vocab;        /* UNet: vocabulary file                           */
} gv_pretrain_data_section;

typedef struct gv_pretrain_lr_schedule_section {
    int kind;           /* gv_lr_kind                                      */
    int64_t warmup_steps;
    int64_t total_steps; /* 0 = train.steps, fixed when the run is created */
    double min_lr;
} gv_pretrain_lr_schedule_section;

typedef struct gv_pretrain_ema_section {
    double decay;       /* cap of min((1+k)/(10+k), decay)                 */
    int every;          /* steps between EMA updates                       */
} gv_pretrain_ema_section;

typedef struct gv_pretrain_checkpoint_section {
    int every;          /* last.h5 every N steps (and at the end / stop)   */
} gv_pretrain_checkpoint_section;

typedef struct gv_pretrain_train_section {
    int64_t steps;
    int batch;          /* the fixed micro-batch: images per step          */
    double lr;
    gv_pretrain_lr_schedule_section lr_schedule;
    double weight_decay, grad_clip; /* grad_clip 0 = off                   */
    gv_pretrain_ema_section ema;
    int sigma_sampling; /* gv_sigma_sampling                               */
    double prompt_dropout; /* UNet / mdt: P(null prompt), for CFG           */
    double prompt_mask;    /* mdt: P(prompt position masked) = prompt_mask * t (ALGORITHMS §10) */
    int split;          /* gv_train_split: which half of the TRAIN split   */
} gv_pretrain_train_section;

typedef struct gv_pretrain_eval_section {
    int every;          /* steps; 0 = only at the end                      */
    int samples;        /* UNet grid: images per class (sampler hook)      */
    int loss_images;    /* UNet: test images of the EMA flow loss; mdt: test puzzles of the loss */
    int puzzles;        /* mdt: held-out puzzles of the solve rate         */
    int blanks;         /* mdt: their difficulty; 0 = the middle test level */
    int steps;          /* mdt: sampler steps; 0 = one per blank            */
} gv_pretrain_eval_section;

typedef struct gv_pretrain_config {
    gv_pretrain_run_section run;
    gv_pretrain_model_section model;
    gv_pretrain_data_section data;
    gv_pretrain_train_section train;
    gv_pretrain_eval_section eval;
    gv_pretrain_checkpoint_section checkpoint;
    gv_dist_section dist;
    char *export_path;  /* key "export": the final model file; "" = none   */
} gv_pretrain_config;

extern const gv_schema gv_pretrain_config_schema;

gv_status gv_pretrain_config_load(const char *path, const char *const *sets, int nsets,
                                  gv_pretrain_config *out, gv_config_result *res);
/* A resolved dump (a run's config.yaml, a checkpoint's /config). */
gv_status gv_pretrain_config_load_resolved(const char *text, const char *label,
                                           gv_pretrain_config *out);
/* Canonical dump (res NULL) or annotated with origins. *out malloc'd. */
gv_status gv_pretrain_config_dump(const gv_pretrain_config *cfg, const gv_config_result *res,
                                  char **out);
void gv_pretrain_config_free(gv_pretrain_config *cfg);

/* The model architecture the config describes (vocab_size: UNet words + <null>). */
gv_unet_config gv_pretrain_unet_config(const gv_pretrain_config *cfg, int vocab_size);
gv_classifier_config gv_pretrain_classifier_config(const gv_pretrain_config *cfg);
gv_mdt_config gv_pretrain_mdt_config(const gv_pretrain_config *cfg, int vocab_size, int seq_len);

/* ---- running --------------------------------------------------------------------------------- */

typedef struct gv_pretrain_result {
    int64_t step;          /* steps done in total                                  */
    int finished;          /* 1: reached train.steps (and exported)                */
    float last_loss;
    float eval_accuracy;   /* classifier: EMA test accuracy; mdt: solve rate; at the last eval; NaN else */
    float eval_loss;       /* UNet: EMA test flow loss at the last eval; NaN else  */
    int resumed;           /* 1: continued from last.h5                            */
    char run_dir[4096];
    char export_path[4096];
} gv_pretrain_result;

typedef struct gv_pretrain_options {
    int64_t stop_after;          /* steps this invocation; 0 = none                    */
    int force;                   /* resume although the config changed                 */
    FILE *progress;              /* progress bar stream; NULL = none                   */
    const gv_backend *backend;   /* NULL: gv_backend_find(run.device)                  */
    gv_pretrain_result *result;  /* optional                                           */
} gv_pretrain_options;

gv_status gv_pretrain_run(const gv_pretrain_config *cfg, const gv_pretrain_options *opt);

/* ---- the per-kind step (engine/train/pretrain_{unet,classifier}.c) ---------------------------- */

/* Everything one run holds; the loop owns it, a kind's functions fill and use their part. */
typedef struct gv_pretrain_job {
    const gv_pretrain_config *cfg;
    const gv_backend *be;
    gv_ctx *ctx;
    gv_image_model model;        /* params allocated with an EMA copy                       */
    gv_arena arena;              /* activations, sized by the kind's measure pass           */
    gv_dataset data;
    gv_prompts prompts;          /* UNet only                                               */
    char *vocab_text;            /* UNet only: the vocabulary file's text                   */
    int64_t *class_prompts;      /* UNet: (classes, max_per_class) prompt indices           */
    int class_prompts_max;
    int *class_prompt_count;     /* (classes)                                               */
    int B;                       /* micro-batch: the images of one shard (train.batch / run.shards) */
    int64_t slot0;               /* batch slot of the current shard's first image (RNG address) */
    int64_t D;                   /* C*H*W                                                   */
    uint32_t seed;
    /* device buffers */
    float *x, *target, *out, *dout;   /* (B, D) or logits (B, classes)                      */
    float *sigma;                     /* (B)                                                */
    int32_t *ids;                     /* (B, L) UNet prompt ids; classifier: (B) labels     */
    float *w;                         /* (B) ones: cross-entropy row weights                */
    float *scalars;                   /* (2): loss, the constant 1 (dloss)                  */
    float *lse;                       /* (B) cross-entropy logsumexp                        */
    /* host buffers */
    float *hx, *htarget, *hsigma, *hout;
    int32_t *hids;
    int64_t *hrows;                   /* (B) eval row indices                               */
    gv_unet_saved unet_saved;
    gv_classifier_saved cls_saved;
    /* mdt only (pretrain_mdt.c): ids = masked input tokens (B, T), w = CE row weights (B*T) */
    int32_t *targets;                 /* (B, T) device: the solution tokens               */
    int32_t *htargets;                /* (B, T) host                                      */
    float *hw;                        /* (B, T) host row weights                          */
    gv_mdt_saved mdt_saved;
    struct gv_mdm_runner *mdm_runner; /* the eval's sampler callback (grove/mdm.h)         */
} gv_pretrain_job;

typedef struct gv_pretrain_eval {
    float accuracy;  /* classifier; NaN for the UNet */
    float loss;      /* mean test loss               */
    int64_t images;
} gv_pretrain_eval;

typedef struct gv_pretrain_kind {
    const char *name;
    /* Buffers, prompt tables and the arena measure pass (model declared and allocated). */
    gv_status (*setup)(gv_pretrain_job *j);
    /* One micro-batch at `step` of train-split rows `rows` (B) — the shard whose first image has
       batch slot j->slot0 (its random numbers are addressed by slot0 + i): prepare the host batch,
       copy it, forward, loss to *loss (host). When the loss is finite, grads += its gradient
       times the constant in scalars[1] (1 / run.shards). */
    gv_status (*loss_and_grad)(gv_pretrain_job *j, int64_t step, const int64_t *rows,
                               float *loss);
    /* Test-split evaluation with weights `theta` (the EMA). */
    gv_status (*eval)(gv_pretrain_job *j, const float *theta, gv_pretrain_eval *out);
} gv_pretrain_kind;

extern const gv_pretrain_kind gv_pretrain_unet_kind;
extern const gv_pretrain_kind gv_pretrain_classifier_kind;
extern const gv_pretrain_kind gv_pretrain_mdt_kind;

/* Shared by the kinds (pretrain.c): zeroed backend memory / host memory of `bytes`, freed by
   gv_pretrain_job_free_buffers with every buffer field of the job (NULL-safe). */
gv_status gv_pretrain_dev_alloc(gv_pretrain_job *j, size_t bytes, void **out);
gv_status gv_pretrain_host_alloc(size_t bytes, void **out);
void gv_pretrain_job_free_buffers(gv_pretrain_job *j);
/* Size the arena from a measure pass of `pass` (the kind's forward + backward at N = B). */
gv_status gv_pretrain_measure_arena(gv_pretrain_job *j, gv_status (*pass)(gv_pretrain_job *j));

/* The UNet's sample grid at each eval (pretrain_unet.c): <run_dir>/samples-<step>.png. */
gv_status gv_pretrain_unet_sample_grid(const gv_pretrain_job *j, int64_t step, const char *run_dir);

#ifdef __cplusplus
}
#endif
#endif
