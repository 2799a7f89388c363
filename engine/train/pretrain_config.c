/* The `grove pretrain` config schema (pretrain.h): one gv_schema table per struct, bound by the
 * config binder (config.h) exactly like the task config (run_config.c). Model architecture is
 * config values (model.unet.*, model.width), not presets in code; the defaults are unet-s and the
 * 32-wide reward classifier. Not here: what the values mean at run time (pretrain.c). */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "grove/config_fields.h"
#include "grove/optim.h"
#include "grove/pretrain.h"


static const char *const device_names[] = {"cpu", "cuda", NULL};
static const char *const kind_names[] = {"unet", "classifier", "mdt", NULL}; /* gv_model_kind order */
static const char *const dataset_names[] = {"mnist", "fashion", "sudoku4", "sudoku9",
                                            NULL}; /* gv_dataset_kind order */
static const char *const lr_names[] = {"constant", "warmup_cosine", NULL}; /* gv_lr_kind order */
static const char *const sigma_names[] = {"uniform", "logit_normal", NULL};
static const char *const split_names[] = {"all", "first_half", "second_half", NULL};

static const gv_field run_fields[] = {
    F_STR(gv_pretrain_run_section, name, "pretrain", "run name"),
    F_PATH(gv_pretrain_run_section, dir, "run directory; empty = runs/<name> in the current directory"),
    F_I64(gv_pretrain_run_section, seed, "1", 0, 4294967295.0, "Philox key word (32 bits)"),
    F_INT(gv_pretrain_run_section, threads, "0", 0, 4096, "CPU threads; 0 = GROVE_THREADS or all cores"),
    F_ENUM(gv_pretrain_run_section, device, device_names, "cpu", "cpu | cuda"),
    F_INT(gv_pretrain_run_section, shards, "1", 1, 65536,
          "equal parts of each step's batch, summed in order; set it, not the rank count, for results"),
};
static const gv_schema run_schema = SCHEMA(run, gv_pretrain_run_section, run_fields, NULL);

static const gv_field unet_fields[] = {
    F_INT(gv_pretrain_unet_section, levels, "2", 1, GV_UNET_MAX_LEVELS, "resolution levels"),
    F_INT(gv_pretrain_unet_section, channels, "32", 1, 4096, "channels at level 0; doubled per level"),
    F_INT(gv_pretrain_unet_section, mid_blocks, "2", 0, GV_UNET_MAX_MID, "ResBlocks at the lowest level"),
    F_INT(gv_pretrain_unet_section, emb_dim, "128", 1, 65536, "time + prompt embedding width"),
    F_INT(gv_pretrain_unet_section, time_dim, "64", 2, 65536, "sinusoidal width (even)"),
    F_INT(gv_pretrain_unet_section, groups, "8", 1, 4096, "GroupNorm groups"),
    F_INT(gv_pretrain_unet_section, max_prompt_len, "8", 1, GV_PROMPT_MAX_WORDS, "word ids per prompt"),
};
static const char *check_unet(const void *obj) {
    const gv_pretrain_unet_section *u = obj;
    if (u->time_dim % 2) return "time_dim must be even";
    return NULL;
}
static const gv_schema unet_schema = SCHEMA(unet, gv_pretrain_unet_section, unet_fields, check_unet);

static const gv_field mdt_fields[] = {
    F_INT(gv_pretrain_mdt_section, layers, "4", 1, GV_MDT_MAX_LAYERS, "transformer blocks"),
    F_INT(gv_pretrain_mdt_section, width, "128", 1, 65536, "model width D"),
    F_INT(gv_pretrain_mdt_section, heads, "4", 1, 4096, "attention heads (divide width)"),
    F_INT(gv_pretrain_mdt_section, mlp_mult, "4", 1, 64, "MLP hidden = mlp_mult * width"),
};
static const char *check_mdt(const void *obj) {
    const gv_pretrain_mdt_section *m = obj;
    if (m->width % m->heads) return "heads must divide width";
    return NULL;
}
static const gv_schema mdt_schema = SCHEMA(mdt, gv_pretrain_mdt_section, mdt_fields, check_mdt);

static const gv_field model_fields[] = {
    F_ENUM(gv_pretrain_model_section, kind, kind_names, "unet", "unet | classifier | mdt"),
    F_INT(gv_pretrain_model_section, width, "32", 1, 4096, "classifier width (first conv channels)"),
    F_INT(gv_pretrain_model_section, features, "128", 1, 65536, "classifier penultimate features"),
    F_STRUCT(gv_pretrain_model_section, unet, unet_schema, "UNet architecture (default unet-s)"),
    F_STRUCT(gv_pretrain_model_section, mdt, mdt_schema, "masked-diffusion transformer (default mdt-s)"),
};
static const gv_schema model_schema = SCHEMA(model, gv_pretrain_model_section, model_fields, NULL);

static const gv_field data_fields[] = {
    F_ENUM(gv_pretrain_data_section, dataset, dataset_names, "mnist",
           "mnist | fashion | sudoku4 | sudoku9"),
    F_PATH(gv_pretrain_data_section, path, "dataset .h5; empty = data/<dataset>.h5 under the grove root"),
    F_PATH(gv_pretrain_data_section, prompts, "UNet: training prompts"),
    F_PATH(gv_pretrain_data_section, vocab, "UNet: prompt vocabulary"),
};
static const gv_schema data_schema = SCHEMA(data, gv_pretrain_data_section, data_fields, NULL);

static const gv_field lr_fields[] = {
    F_ENUM(gv_pretrain_lr_schedule_section, kind, lr_names, "warmup_cosine", "constant | warmup_cosine"),
    F_I64(gv_pretrain_lr_schedule_section, warmup_steps, "200", 0, 1e12, "linear warm-up steps"),
    F_I64(gv_pretrain_lr_schedule_section, total_steps, "0", 0, 1e12,
          "cosine horizon; 0 = train.steps, fixed when the run is created"),
    F_FLOAT(gv_pretrain_lr_schedule_section, min_lr, "0", 0, 1, "floor of the cosine"),
};
static const gv_schema lr_schema = SCHEMA(lr_schedule, gv_pretrain_lr_schedule_section, lr_fields, NULL);

static const gv_field ema_fields[] = {
    F_FLOAT(gv_pretrain_ema_section, decay, "0.999", 0, 1, "EMA decay cap"),
    F_INT(gv_pretrain_ema_section, every, "1", 1, 1e9, "EMA update every N steps"),
};
static const gv_schema ema_schema = SCHEMA(ema, gv_pretrain_ema_section, ema_fields, NULL);

static const gv_field train_fields[] = {
    F_I64(gv_pretrain_train_section, steps, "1000", 0, 1e12, "optimizer steps in total"),
    F_INT(gv_pretrain_train_section, batch, "64", 1, 65536, "images per step (the fixed micro-batch)"),
    F_FLOAT(gv_pretrain_train_section, lr, "1e-3", 0, 1, "AdamW peak learning rate"),
    F_STRUCT(gv_pretrain_train_section, lr_schedule, lr_schema, "learning-rate schedule"),
    F_FLOAT(gv_pretrain_train_section, weight_decay, "1e-4", 0, 10, "AdamW weight decay"),
    F_FLOAT(gv_pretrain_train_section, grad_clip, "1.0", 0, 1e6, "global grad-norm clip; 0 = off"),
    F_STRUCT(gv_pretrain_train_section, ema, ema_schema, "EMA of the weights"),
    F_ENUM(gv_pretrain_train_section, sigma_sampling, sigma_names, "uniform",
           "UNet: uniform(0,1) | logit_normal (sigmoid of N(0,1))"),
    F_FLOAT(gv_pretrain_train_section, prompt_dropout, "0.1", 0, 1, "UNet, mdt: P(null prompt), for CFG"),
    F_FLOAT(gv_pretrain_train_section, prompt_mask, "0.15", 0, 1,
            "mdt: a prompt position is masked with probability prompt_mask * t"),
    F_ENUM(gv_pretrain_train_section, split, split_names, "all",
           "all | first_half | second_half of the TRAIN split"),
};
static const char *check_train(const void *obj) {
    const gv_pretrain_train_section *t = obj;
    gv_lr_schedule s = {.kind = (gv_lr_kind)t->lr_schedule.kind, .lr = (float)t->lr,
                        .warmup_steps = t->lr_schedule.warmup_steps,
                        .total_steps = t->lr_schedule.total_steps ? t->lr_schedule.total_steps : t->steps,
                        .min_lr = (float)t->lr_schedule.min_lr};
    if (s.kind == GV_LR_SCHED_WARMUP_COSINE && s.total_steps <= s.warmup_steps)
        return "lr_schedule: total_steps (or train.steps) must exceed warmup_steps";
    if (gv_lr_schedule_check(&s) != GV_OK) return gv_last_error();
    return NULL;
}
static const gv_schema train_schema = SCHEMA(train, gv_pretrain_train_section, train_fields, check_train);

static const gv_field eval_fields[] = {
    F_INT(gv_pretrain_eval_section, every, "1000", 0, 1e9, "eval every N steps; 0 = only at the end"),
    F_INT(gv_pretrain_eval_section, samples, "8", 1, 1024, "UNet sample grid: images per class"),
    F_INT(gv_pretrain_eval_section, loss_images, "1000", 0, 1e9,
          "UNet: test images of the EMA flow loss; mdt: test puzzles of the masked loss"),
    F_INT(gv_pretrain_eval_section, puzzles, "256", 0, 1e9, "mdt: held-out puzzles of the solve rate"),
    F_INT(gv_pretrain_eval_section, blanks, "0", 0, 81, "mdt: their blanks; 0 = the middle test level"),
    F_INT(gv_pretrain_eval_section, steps, "0", 0, 255, "mdt: sampler steps; 0 = one per blank"),
};
static const gv_schema eval_schema = SCHEMA(eval, gv_pretrain_eval_section, eval_fields, NULL);

static const gv_field checkpoint_fields[] = {
    F_INT(gv_pretrain_checkpoint_section, every, "500", 1, 1e9, "last.h5 every N steps"),
};
static const gv_schema checkpoint_schema =
    SCHEMA(checkpoint, gv_pretrain_checkpoint_section, checkpoint_fields, NULL);

static const gv_field pretrain_fields[] = {
    F_STRUCT(gv_pretrain_config, run, run_schema, "run identity and resources"),
    F_STRUCT(gv_pretrain_config, model, model_schema, "what to train"),
    F_STRUCT(gv_pretrain_config, data, data_schema, "dataset and prompts"),
    F_STRUCT(gv_pretrain_config, train, train_schema, "optimization"),
    F_STRUCT(gv_pretrain_config, eval, eval_schema, "evaluation"),
    F_STRUCT(gv_pretrain_config, checkpoint, checkpoint_schema, "checkpoint cadence"),
    F_STRUCT(gv_pretrain_config, dist, gv_dist_schema, "data parallel across MPI ranks (dist.h)"),
    {.key = "export", .type = GV_CFG_PATH, .offset = offsetof(gv_pretrain_config, export_path),
     .help = "the exported EMA model (.h5); empty = none"},
};
static const char *check_pretrain(const void *obj) {
    const gv_pretrain_config *c = obj;
    if (c->model.kind == GV_MODEL_UNET && (!*c->data.prompts || !*c->data.vocab))
        return "model.kind unet needs data.prompts and data.vocab";
    const int sudoku = c->data.dataset == GV_DATASET_SUDOKU4 || c->data.dataset == GV_DATASET_SUDOKU9;
    if ((c->model.kind == GV_MODEL_MDT) != sudoku)
        return "model.kind mdt goes with data.dataset sudoku4 | sudoku9, and only with them";
    if (c->train.batch % c->run.shards)
        return "run.shards must divide train.batch (every shard has the same micro-batch)";
    return NULL;
}
const gv_schema gv_pretrain_config_schema =
    SCHEMA(pretrain_config, gv_pretrain_config, pretrain_fields, check_pretrain);

/* ---- API ------------------------------------------------------------------------------------- */

gv_status gv_pretrain_config_load(const char *path, const char *const *sets, int nsets,
                                  gv_pretrain_config *out, gv_config_result *res) {
    gv_config_request req = {.schema = &gv_pretrain_config_schema, .path = path, .sets = sets,
                             .nsets = nsets};
    return gv_config_load(&req, out, res);
}

gv_status gv_pretrain_config_load_resolved(const char *text, const char *label,
                                           gv_pretrain_config *out) {
    gv_config_request req = {.schema = &gv_pretrain_config_schema,
                             .path = label ? label : "resolved config", .text = text,
                             .resolved = true};
    return gv_config_load(&req, out, NULL);
}

gv_status gv_pretrain_config_dump(const gv_pretrain_config *cfg, const gv_config_result *res,
                                  char **out) {
    return gv_config_dump(&gv_pretrain_config_schema, cfg, res, out);
}

void gv_pretrain_config_free(gv_pretrain_config *cfg) {
    gv_config_free(&gv_pretrain_config_schema, cfg);
}

gv_unet_config gv_pretrain_unet_config(const gv_pretrain_config *cfg, int vocab_size) {
    const gv_pretrain_unet_section *u = &cfg->model.unet;
    gv_unet_config c = gv_unet_config_s(vocab_size, u->max_prompt_len);
    c.levels = u->levels;
    for (int l = 0; l < GV_UNET_MAX_LEVELS; ++l) c.channels[l] = l < u->levels ? u->channels << l : 0;
    c.mid_blocks = u->mid_blocks;
    c.emb_dim = u->emb_dim;
    c.time_dim = u->time_dim;
    c.groups = u->groups;
    return c;
}

gv_classifier_config gv_pretrain_classifier_config(const gv_pretrain_config *cfg) {
    gv_classifier_config c = gv_classifier_config_default(cfg->model.width);
    c.features = cfg->model.features;
    return c;
}

gv_mdt_config gv_pretrain_mdt_config(const gv_pretrain_config *cfg, int vocab_size, int seq_len) {
    gv_mdt_config c = gv_mdt_config_s(vocab_size, seq_len);
    c.layers = cfg->model.mdt.layers;
    c.width = cfg->model.mdt.width;
    c.heads = cfg->model.mdt.heads;
    c.mlp_mult = cfg->model.mdt.mlp_mult;
    return c;
}
