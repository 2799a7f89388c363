/* Preference galleries (DESIGN.md §8): a fixed prompt set × fixed seeds × models, every image of a
 * (prompt, seed) rendered from the SAME initial noise with the ODE sampler, so the columns differ
 * only by the model; every image scored with the run's training and eval rewards; a web page.
 *
 *     gv_gallery_config cfg;
 *     GV_TRY(gv_gallery_config_load("configs/gallery/mnist.yaml", sets, nsets, &cfg, NULL));
 *     gv_gallery_result res;
 *     GV_TRY(gv_gallery_run(&cfg, ctx, &(gv_gallery_options){.command = "grove gallery ..."}, &res));
 *     // res.index: <out>/index.html
 *
 * Models are named against the run directory: `base` (the run's model.checkpoint), `middle` (the
 * iter-<k>.h5 closest to half the run's iterations), `best` (best.h5), `last` (last.h5),
 * `iter-<k>`, or given by path. The first model is the reference of the win rates (the base by
 * default).
 *
 * Noise: the x_T of seed s is Philox at key (s, GV_RNG_STREAM_EVAL), iteration 0, slot 0, purpose
 * LATENT — drawn once per seed on the host and handed to every model (gv_generate with
 * latents_given) — so image (prompt, seed s) of a model is exactly image 0 of
 * `grove sample --ckpt <model> --prompt <prompt> --seed s -n 1` with the same steps, shift and
 * guidance, and every prompt of one seed starts from the same noise.
 *
 * Written to `out` (default <run>/gallery):
 *   index.html      self-contained page: inline CSS, JS, SVG and images (data: URIs); no network
 *   images/         p<prompt>-s<seed>-m<model>.png, one per image, with text chunks (prompt,
 *                   seed, steps, sampler, cfg, shift, model, checkpoint hash, iteration, weights,
 *                   noise address, every score, the `grove sample` command that reproduces it)
 *   scores.csv      one row per image: prompt, seed, model, checkpoint, file, every reward
 *   win_rates.csv   one row per (prompt, model, reward): mean, gain and win rate vs the first model,
 *                   diversity
 *   manifest.json   resolved gallery config, run config, checkpoints and hashes, grove version and
 *                   commit, the command, timing
 * Deliberately not here: the page's interactive parts (gallery/assets/page.js: sorting, enlarging,
 * labelling, the preferences.jsonl export), which this file only embeds. */
#ifndef GROVE_GALLERY_H
#define GROVE_GALLERY_H

#include <stdint.h>
#include <stdio.h>

#include "grove/backend.h"
#include "grove/config.h"
#include "grove/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum gv_gallery_weights { GV_GALLERY_WEIGHTS_EMA, GV_GALLERY_WEIGHTS_RAW } gv_gallery_weights;

typedef struct gv_gallery_model_spec {
    char *name;   /* base | middle | best | last | iter-<k> (or "" with path)     */
    char *path;   /* a checkpoint file (or "" with name)                          */
    char *label;  /* column heading; "" = the name, or the file's base name        */
} gv_gallery_model_spec;

typedef struct gv_gallery_sampler_section {
    int steps;        /* 0 = the run's sampler.steps                              */
    double shift;     /* 0 = the run's sampler.shift                              */
    double guidance;  /* < 0 = the run's sampler.guidance                         */
} gv_gallery_sampler_section;

typedef struct gv_gallery_config {
    char *title;                    /* page title; "" = "<run name> gallery"      */
    char *run;                      /* run directory (path)                       */
    char *out;                      /* output directory; "" = <run>/gallery       */
    gv_gallery_model_spec *models;
    int n_models;
    char *prompts;                  /* prompt file; "" = the run's data.eval_prompts */
    int prompt_count;               /* the first N prompts; 0 = all               */
    int seeds;                      /* seeds per prompt: first_seed ... + seeds-1 */
    int64_t first_seed;
    gv_gallery_sampler_section sampler;
    int weights;                    /* gv_gallery_weights                         */
    char *gold;                     /* classifier for the diversity features; ""
                                       = models/weights/<dataset>-classifier-gold.h5 */
    int device;                     /* gv_device_kind (run_config.h)              */
    int threads;                    /* 0 = GROVE_THREADS or all cores             */
    int micro_batch;
} gv_gallery_config;

extern const gv_schema gv_gallery_config_schema;

/* Load a gallery config (file + --set edits; `path` NULL: defaults + sets only, as `--run DIR`
   does with --set run=DIR). Errors name file, line and key. */
gv_status gv_gallery_config_load(const char *path, const char *const *sets, int nsets,
                                 gv_gallery_config *out, gv_config_result *res);
gv_status gv_gallery_config_dump(const gv_gallery_config *cfg, const gv_config_result *res,
                                 char **out);
void gv_gallery_config_free(gv_gallery_config *cfg);

typedef struct gv_gallery_options {
    const char *command;  /* the command line, recorded in the manifest                */
    FILE *progress;       /* progress lines; NULL = quiet                               */
} gv_gallery_options;

typedef struct gv_gallery_result {
    char out_dir[4096];
    char index[4096];     /* <out>/index.html                                          */
    int prompts, seeds, models, images, rewards;
    double seconds;       /* wall time of the whole gallery                             */
} gv_gallery_result;

/* Render, score and write the gallery of `cfg` on ctx. */
gv_status gv_gallery_run(const gv_gallery_config *cfg, gv_ctx *ctx, const gv_gallery_options *o,
                         gv_gallery_result *out);

/* ---- human labels ---------------------------------------------------------------------------- */

/* One pair of models in a preferences file: judgements where both appeared. `first` is the model
   with the smaller label in byte order; win_rate = (wins + ties / 2) / n for `first`; [lo, hi] is
   the 95% Wilson interval of that rate. */
typedef struct gv_gallery_pair_summary {
    char first[64], second[64];             /* model labels                       */
    char first_ckpt[17], second_ckpt[17];   /* checkpoint hashes                  */
    int n, wins, ties, losses;              /* from `first`'s side                 */
    double win_rate, lo, hi;
} gv_gallery_pair_summary;

typedef struct gv_gallery_summary {
    int judgements, skipped_lines;          /* skipped: blank lines                */
    int n_pairs;
    gv_gallery_pair_summary *pairs;         /* sorted by (first, second)           */
} gv_gallery_summary;

/* Read a preferences.jsonl the page exported: one JSON object per line with "prompt", "seed",
   "a" and "b" ({"model": label, "checkpoint": hash}) and "choice" ("a", "b" or "tie"). A bad line
   is GV_ERR_FORMAT "file:line: cause". */
gv_status gv_gallery_summarize(const char *path, gv_gallery_summary *out);
void gv_gallery_summary_free(gv_gallery_summary *s);
/* The summary as a table (what `grove gallery --summarize` prints). */
void gv_gallery_summary_print(const gv_gallery_summary *s, const char *path, FILE *out);

#ifdef __cplusplus
}
#endif
#endif
