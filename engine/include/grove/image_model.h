/* Image models as files: a UNet (flow model), a classifier, or the masked-diffusion transformer over
 * Sudoku tokens (kind mdt, which shares this one model-file mechanism), with everything needed to
 * rebuild it from its checkpoint alone (kind, architecture, vocabulary, dataset), so `grove
 * sample`, `grove eval`, `grove sudoku`, rewards and `grove train` open any model by path.
 *
 * Checkpoint layout (checkpoint.h, DESIGN.md §3): /params (the weights to use; an exported model
 * holds its EMA weights here), optionally /ema and /optim (full training checkpoints), and /meta
 * attributes:
 *   model_kind     "unet" | "classifier" | "mdt"
 *   model_config   the architecture as "key=value" lines (gv_unet_config / gv_classifier_config /
 *                  gv_mdt_config fields), so a loader needs no preset table
 *   dataset        "mnist" | "fashion" | "sudoku4" | "sudoku9" (the mdt's task: tokens per grid)
 *   vocab          the prompt vocabulary file's text ("word label" lines; UNet only); the <null>
 *                  prompt word is the last id, GV_NULL_WORD
 *   model_hash     written by gv_params_save
 * Deliberately not here: training (engine/train/pretrain.c) and sampling (denoiser.h). */
#ifndef GROVE_IMAGE_MODEL_H
#define GROVE_IMAGE_MODEL_H

#include "grove/backend.h"
#include "grove/checkpoint.h"
#include "grove/dataset.h"
#include "grove/params.h"
#include "models/classifier/classifier.h"
#include "models/mdt/mdt.h"
#include "models/unet/unet.h"

#ifdef __cplusplus
extern "C" {
#endif

#define GV_NULL_WORD "<null>"

typedef enum gv_model_kind {
    GV_MODEL_UNET = 0,
    GV_MODEL_CLASSIFIER,
    GV_MODEL_MDT, /* masked-diffusion transformer over tokens (models/mdt); dataset sudoku4/9 */
    GV_MODEL_KIND_COUNT
} gv_model_kind;

typedef struct gv_image_model {
    gv_model_kind kind;
    gv_params params;            /* backend memory; params.values = the weights in use        */
    gv_unet unet;                /* kind == GV_MODEL_UNET                                      */
    gv_classifier classifier;    /* kind == GV_MODEL_CLASSIFIER                                */
    gv_mdt mdt;                  /* kind == GV_MODEL_MDT                                       */
    gv_vocab vocab;              /* UNet: words -> labels (dataset.h); empty for a classifier  */
    char *vocab_text;            /* UNet: the vocabulary file's text (malloc'd), else NULL      */
    int null_id;                 /* UNet: the <null> prompt's word id (== vocab.n)             */
    char dataset[16];            /* "mnist" | "fashion"                                        */
    char hash[17];               /* /meta model_hash, hex                                      */
    char path[4096];             /* the file it came from ("" when built in memory)            */
} gv_image_model;

/* Open a model checkpoint on `backend`. use_ema: take /ema when the file has it (a training
 * checkpoint), else /params; an exported model has only /params. Errors name the file and what is
 * wrong (missing /meta model_kind, unknown kind, bad model_config line, shape mismatch). */
gv_status gv_image_model_load(const char *path, const gv_backend *backend, int use_ema,
                              gv_image_model *m);
void gv_image_model_free(gv_image_model *m);

/* "unet" / "classifier" / "mdt". */
const char *gv_model_kind_name(gv_model_kind k);

/* Declare a fresh model of `kind` from its config (gv_unet_config*, gv_classifier_config* or
   gv_mdt_config*) and
   allocate its parameters on `backend` (plus an EMA copy when with_ema); values are zero until
   gv_params_initialize or a load. The caller sets m->dataset and, for a UNet, the vocabulary. */
gv_status gv_image_model_create(gv_image_model *m, gv_model_kind kind, const void *config,
                                const gv_backend *backend, int with_ema);
/* UNet: parse a vocabulary file's text ("word label" lines) into m->vocab, keep the text, and set
   null_id = words; the UNet's vocab_size must be words + 1. `label` names the source in errors.
   No-op for a classifier. */
gv_status gv_image_model_set_vocab(gv_image_model *m, const char *vocab_text, const char *label);
/* The /meta attributes that describe the model (model_kind, model_config, dataset, vocab). */
gv_status gv_image_model_put_meta(gv_ckpt_writer *w, const gv_image_model *m);
/* Write an exported model atomically: /params = `weights` (a flat buffer of m->params' layout in
   backend memory, e.g. params.ema), no /optim or /ema, /meta (above + model_hash of `weights`,
   param_count), /config = config_yaml (may be NULL). */
gv_status gv_image_model_save_export(const gv_image_model *m, const float *weights,
                                     const char *config_yaml, const char *path);

/* The flat parameter buffer to pass as `theta` to the model's forward. */
static inline const float *gv_image_model_theta(const gv_image_model *m) { return m->params.values; }

/* Prompt text ("a handwritten seven") -> word ids (L, -1 padded) over the model's vocabulary, and
 * the class label it names. Unknown word -> GV_ERR_INVALID naming the word. */
gv_status gv_image_model_encode_prompt(const gv_image_model *m, const char *prompt, int32_t *ids,
                                       int *label);

#ifdef __cplusplus
}
#endif
#endif
