/* The masked-diffusion `grove train` config schema (grove/mdm_train.h): one gv_schema table per
 * section, bound by the config binder (config.h) like pretrain_config.c; the defaults are
 * DiffuCoder's coupled-GRPO values (ε 0.5, β 0.01, μ 2, leave-one-out advantages). Also the peek
 * that tells `grove train` which trainer a config is for (the model kind of model.checkpoint).
 * Not here: what the values mean at run time (mdm_train.c). */
#include <libfyaml.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "grove/checkpoint.h"
#include "grove/config.h"
#include "grove/config_fields.h"
#include "grove/mdm_grpo.h"
#include "grove/mdm_train.h"


static const char *const device_names[] = {"cpu", "cuda", NULL};
static const char *const dataset_names[] = {"sudoku4", "sudoku9", NULL}; /* +2: gv_dataset_kind */
static const char *const adv_names[] = {"zscore", "group_mean", "leave_one_out", NULL};
static const char *const credit_names[] = {"sequence", "cell", NULL}; /* gv_mdm_credit_kind */

static const gv_field run_fields[] = {
    F_STR(gv_mdm_run_section, name, "sudoku-grpo", "run name"),
    F_PATH(gv_mdm_run_section, dir, "run directory; empty = runs/<name> in the current directory"),
    F_I64(gv_mdm_run_section, seed, "1", 0, 4294967295.0, "Philox key word (32 bits)"),
    F_INT(gv_mdm_run_section, threads, "0", 0, 4096, "CPU threads; 0 = GROVE_THREADS or all cores"),
    F_ENUM(gv_mdm_run_section, device, device_names, "cpu", "cpu | cuda"),
    F_INT(gv_mdm_run_section, shards, "1", 1, 65536,
          "data parallel: puzzle groups of an iteration cut into this many shards (mdm_train.h)"),
};
static const gv_schema run_schema = SCHEMA(run, gv_mdm_run_section, run_fields, NULL);

static const gv_field model_fields[] = {
    {.key = "checkpoint", .type = GV_CFG_PATH, .offset = offsetof(gv_mdm_model_section, checkpoint),
     .flags = GV_CFG_REQUIRED, .help = "the mdt to align (an export of `grove pretrain`)"},
};
static const gv_schema model_schema = SCHEMA(model, gv_mdm_model_section, model_fields, NULL);

static const gv_field data_fields[] = {
    F_ENUM(gv_mdm_data_section, dataset, dataset_names, "sudoku9", "sudoku4 | sudoku9"),
    F_PATH(gv_mdm_data_section, path, "dataset .h5; empty = data/<dataset>.h5 under the grove root"),
    F_INT(gv_mdm_data_section, blanks_min, "35", 1, 81, "training puzzles: fewest blanks"),
    F_INT(gv_mdm_data_section, blanks_max, "35", 1, 81, "training puzzles: most blanks"),
};
static const char *check_data(const void *obj) {
    const gv_mdm_data_section *d = obj;
    return d->blanks_min > d->blanks_max ? "blanks_min exceeds blanks_max" : NULL;
}
static const gv_schema data_schema = SCHEMA(data, gv_mdm_data_section, data_fields, check_data);

static const gv_field sampler_fields[] = {
    F_INT(gv_mdm_sampler_section, steps, "0", 0, 255, "masked-sampler steps; 0 = one per blank"),
    F_FLOAT(gv_mdm_sampler_section, tau_r, "-1", -1, 1e6, "Gumbel scale of the commit order at every "
            "step (0: by confidence alone; 1e3: a random order); -1 = the schedule 1 - j/s"),
};
static const char *check_sampler(const void *obj) {
    const gv_mdm_sampler_section *s = obj;
    return s->tau_r < 0.0 && s->tau_r != -1.0 ? "tau_r must be -1 (the schedule) or >= 0" : NULL;
}
static const gv_schema sampler_schema = SCHEMA(sampler, gv_mdm_sampler_section, sampler_fields, check_sampler);

static const gv_field algorithm_fields[] = {
    F_ENUM(gv_mdm_algorithm_section, estimator, gv_mdm_estimator_names, "coupled",
           "diffu_grpo | coupled | coupled_pair | single_mask | trajectory (ALGORITHMS.md §10)"),
    F_ENUM(gv_mdm_algorithm_section, aggregation, gv_mdm_aggregation_names, "sequence",
           "sequence | token | balanced"),
    F_ENUM(gv_mdm_algorithm_section, advantage, adv_names, "leave_one_out",
           "zscore | group_mean (d1) | leave_one_out (DiffuCoder)"),
    F_ENUM(gv_mdm_algorithm_section, credit, credit_names, "sequence",
           "sequence: every token gets the sample's advantage | cell: each token its own cell's "
           "correctness minus the group's mean there (grove/mdm_train.h)"),
    {.key = "order_logp", .type = GV_CFG_BOOL, .offset = offsetof(gv_mdm_algorithm_section, order_logp),
     .def = "false", .help = "trajectory: the log-prob includes the commit order (every draw of a "
     "step and the confidence-ordered choice of its commits; grove/mdm_grpo.h gv_mdm_order)"},
    F_FLOAT(gv_mdm_algorithm_section, clip_range, "0.5", 0, 10, "ε of the clipped ratio"),
    F_FLOAT(gv_mdm_algorithm_section, beta, "0.01", 0, 100, "k3 KL coefficient; 0 = no reference"),
    F_FLOAT(gv_mdm_algorithm_section, prompt_mask, "0.15", 0, 1, "diffu_grpo: prompt masking rate"),
    F_FLOAT(gv_mdm_algorithm_section, t_lo, "0.2", 1e-3, 0.999, "coupled: t ~ U(t_lo, t_hi)"),
    F_FLOAT(gv_mdm_algorithm_section, t_hi, "0.8", 1e-3, 0.999, "coupled: t ~ U(t_lo, t_hi)"),
    F_FLOAT(gv_mdm_algorithm_section, adv_clip, "5", 0, 1e6, "advantage clamp; 0 = none"),
};
static const char *check_algorithm(const void *obj) {
    const gv_mdm_algorithm_section *a = obj;
    return a->t_lo > a->t_hi ? "t_lo exceeds t_hi" : NULL;
}
static const gv_schema algorithm_schema =
    SCHEMA(algorithm, gv_mdm_algorithm_section, algorithm_fields, check_algorithm);

static const gv_field group_fields[] = {
    F_INT(gv_mdm_group_section, size, "8", 2, 4096, "samples per puzzle"),
    F_INT(gv_mdm_group_section, prompts_per_iteration, "8", 1, 65536, "puzzles per iteration"),
};
static const gv_schema group_schema = SCHEMA(group, gv_mdm_group_section, group_fields, NULL);

static const gv_field train_fields[] = {
    F_I64(gv_mdm_train_section, iterations, "20", 0, 4294967295.0, "iterations in total"),
    F_FLOAT(gv_mdm_train_section, lr, "1e-5", 0, 1, "AdamW learning rate (constant)"),
    F_FLOAT(gv_mdm_train_section, weight_decay, "0", 0, 10, "AdamW weight decay"),
    F_FLOAT(gv_mdm_train_section, grad_clip, "1.0", 0, 1e6, "global grad-norm clip; 0 = off"),
    F_FLOAT(gv_mdm_train_section, ema_decay, "0", 0, 1, "EMA decay cap (0: EMA = the weights)"),
    F_INT(gv_mdm_train_section, minibatch, "16", 1, 65536, "sequences per optimizer step"),
    F_INT(gv_mdm_train_section, inner_epochs, "2", 1, 64, "μ: passes over a rollout, fresh masks each"),
};
static const gv_schema train_schema = SCHEMA(train, gv_mdm_train_section, train_fields, NULL);

static const gv_field eval_fields[] = {
    F_INT(gv_mdm_eval_section, every, "0", 0, 1e9, "eval every N iterations (0: start and end only)"),
    F_INT(gv_mdm_eval_section, puzzles, "512", 0, 65536, "held-out puzzles; 0 = no eval"),
    F_INT(gv_mdm_eval_section, blanks, "35", 1, 81, "the test level (blanks)"),
    F_INT(gv_mdm_eval_section, batch, "64", 1, 4096, "puzzles per sampler call"),
    {.key = "at_start", .type = GV_CFG_BOOL, .offset = offsetof(gv_mdm_eval_section, at_start),
     .def = "true", .help = "eval the initial weights before the first iteration of a new run"},
};
static const gv_schema eval_schema = SCHEMA(eval, gv_mdm_eval_section, eval_fields, NULL);

static const gv_field checkpoint_fields[] = {
    F_INT(gv_mdm_checkpoint_section, every, "10", 1, 1e9, "last.h5 every N iterations"),
};
static const gv_schema checkpoint_schema =
    SCHEMA(checkpoint, gv_mdm_checkpoint_section, checkpoint_fields, NULL);

static const gv_field co_grpo_fields[] = {
    {.key = "enabled", .type = GV_CFG_BOOL, .offset = offsetof(gv_mdm_co_grpo_section, enabled),
     .def = "false", .help = "Co-GRPO: learn the sampler schedule jointly (ALGORITHMS.md §10)"},
    F_STR(gv_mdm_co_grpo_section, knobs, "r,tau_s,tau_r", "learned knobs, comma-separated: r, tau_s, tau_r"),
    F_INT(gv_mdm_co_grpo_section, phase_len, "5", 1, 1e9, "iterations per θ / φ phase (φ first)"),
    F_I64(gv_mdm_co_grpo_section, sigma_decay_iterations, "100", 0, 4294967295.0,
          "σ decays linearly 0.6 -> 0.1 over these iterations"),
    F_FLOAT(gv_mdm_co_grpo_section, lr, "1e-3", 0, 1, "AdamW learning rate of φ"),
    F_INT(gv_mdm_co_grpo_section, hidden, "16", 1, 256, "width of π_φ's MLP"),
};
static const gv_schema co_grpo_schema = SCHEMA(co_grpo, gv_mdm_co_grpo_section, co_grpo_fields, NULL);

static const gv_field top_fields[] = {
    F_STRUCT(gv_mdm_train_config, run, run_schema, "run name, directory, seed, device"),
    F_STRUCT(gv_mdm_train_config, model, model_schema, "the model to align"),
    F_STRUCT(gv_mdm_train_config, data, data_schema, "Sudoku puzzles"),
    F_STRUCT(gv_mdm_train_config, sampler, sampler_schema, "masked sampler"),
    F_STRUCT(gv_mdm_train_config, algorithm, algorithm_schema, "estimator, objective, KL"),
    F_STRUCT(gv_mdm_train_config, group, group_schema, "group sampling"),
    F_STRUCT(gv_mdm_train_config, train, train_schema, "optimization"),
    F_STRUCT(gv_mdm_train_config, eval, eval_schema, "held-out solve rate"),
    F_STRUCT(gv_mdm_train_config, checkpoint, checkpoint_schema, "last.h5 cadence"),
    F_STRUCT(gv_mdm_train_config, co_grpo, co_grpo_schema, "Co-GRPO schedule policy"),
    F_STRUCT(gv_mdm_train_config, dist, gv_dist_schema, "data parallel across MPI ranks (dist.h)"),
    F_ENUM(gv_mdm_train_config, rewards_mode, gv_rewards_mode_names, "sum_then_normalize",
           "sum_then_normalize | normalize_then_sum (several rewards)"),
    F_LIST(gv_mdm_train_config, rewards, n_rewards, gv_reward_spec_schema,
           "training rewards: builtin sudoku and token-batch plugins; none = [{builtin: sudoku}]"),
    F_STRUCT(gv_mdm_train_config, reward_failures, gv_reward_failures_schema, "reward failure policy"),
};
/* run.shards vs group.prompts_per_iteration and the other refusals of a loaded config are checked at
   setup (mdm_setup.c check_supported), where every rank raises them alike and rank 0 prints. */
static const gv_schema mdm_train_schema = SCHEMA(mdm_train, gv_mdm_train_config, top_fields, NULL);

gv_status gv_mdm_train_config_load(const char *path, const char *const *sets, int nsets,
                                   gv_mdm_train_config *out) {
    return gv_mdm_train_config_load_origins(path, sets, nsets, out, NULL);
}

gv_status gv_mdm_train_config_load_origins(const char *path, const char *const *sets, int nsets,
                                           gv_mdm_train_config *out, gv_config_result *res) {
    gv_config_request req = {.schema = &mdm_train_schema, .path = path, .sets = sets, .nsets = nsets};
    return gv_config_load(&req, out, res);
}

gv_status gv_mdm_train_config_load_resolved(const char *text, const char *label,
                                            gv_mdm_train_config *out) {
    gv_config_request req = {.schema = &mdm_train_schema, .path = label ? label : "resolved config",
                             .text = text, .resolved = true};
    return gv_config_load(&req, out, NULL);
}

gv_status gv_mdm_train_config_dump(const gv_mdm_train_config *c, char **out) {
    return gv_mdm_train_config_dump_origins(c, NULL, out);
}

gv_status gv_mdm_train_config_dump_origins(const gv_mdm_train_config *c,
                                           const gv_config_result *res, char **out) {
    return gv_config_dump(&mdm_train_schema, c, res, out);
}

void gv_mdm_train_config_free(gv_mdm_train_config *c) { gv_config_free(&mdm_train_schema, c); }

/* ---- which trainer ------------------------------------------------------------------------- */

/* The checkpoint path a config names in model.checkpoint (the last --set of it wins; else the
   file's, relative to the config file as the binder resolves paths). */
static gv_status named_checkpoint(const char *path, const char *const *sets, int nsets, char *ckpt,
                                  size_t cap) {
    int from_set = 0;
    for (int i = 0; i < nsets; ++i)
        if (strncmp(sets[i], "model.checkpoint=", 17) == 0)
            snprintf(ckpt, cap, "%s", sets[i] + 17), from_set = 1;
    if (from_set) return GV_OK;
    /* silent diagnostics: a missing or broken file is reported once, by the binder that reads it
       next (gv_cnode_parse), not also by libfyaml on stderr */
    struct fy_diag_cfg dcfg;
    fy_diag_cfg_default(&dcfg);
    dcfg.fp = NULL;
    dcfg.output_fn = NULL;
    struct fy_diag *diag = fy_diag_create(&dcfg);
    if (!diag) return GV_ERROR(GV_ERR_OOM, "%s: cannot create the YAML diagnostics", path);
    const struct fy_parse_cfg quiet = {.flags = FYPCF_QUIET, .diag = diag};
    struct fy_document *fyd = fy_document_build_from_file(&quiet, path);
    int named = 0;
    if (fyd) {
        struct fy_node *n = fy_node_by_path(fy_document_root(fyd), "/model/checkpoint", FY_NT,
                                            FYNWF_DONT_FOLLOW);
        const char *v = n ? fy_node_get_scalar0(n) : NULL;
        if (v && v[0] == '/') snprintf(ckpt, cap, "%s", v);
        else if (v) {
            const char *slash = strrchr(path, '/');
            snprintf(ckpt, cap, "%.*s%s", slash ? (int)(slash - path + 1) : 0, path, v);
        }
        named = v != NULL;
        fy_document_destroy(fyd);
    }
    fy_diag_destroy(diag);
    if (!fyd) return GV_ERROR(GV_ERR_IO, "%s: not readable as YAML", path);
    return named ? GV_OK : GV_ERROR(GV_ERR_CONFIG, "%s: no model.checkpoint", path);
}

static gv_status checkpoint_kind(const char *ckpt, gv_model_kind *kind) {
    gv_ckpt_reader *r = NULL;
    GV_TRY(gv_ckpt_open(ckpt, &r));
    char *k = NULL;
    gv_status s = gv_ckpt_get_str(r, GV_CKPT_META, "model_kind", &k);
    gv_ckpt_close(r);
    GV_TRY(s);
    *kind = strcmp(k, "mdt") == 0 ? GV_MODEL_MDT : strcmp(k, "classifier") == 0 ? GV_MODEL_CLASSIFIER
                                                                               : GV_MODEL_UNET;
    free(k);
    return GV_OK;
}

gv_status gv_train_config_model_kind(const char *path, const char *const *sets, int nsets,
                                     gv_model_kind *kind) {
    char ckpt[4096];
    GV_TRY(named_checkpoint(path, sets, nsets, ckpt, sizeof ckpt));
    return checkpoint_kind(ckpt, kind);
}

gv_status gv_train_config_is_mdm(const char *path, const char *const *sets, int nsets, int *mdm) {
    *mdm = 0;
    char ckpt[4096];
    if (named_checkpoint(path, sets, nsets, ckpt, sizeof ckpt) != GV_OK) {
        gv_clear_error(); /* the image binder reports a file it cannot bind */
        return GV_OK;
    }
    gv_model_kind k;
    GV_TRY(checkpoint_kind(ckpt, &k));
    *mdm = k == GV_MODEL_MDT;
    return GV_OK;
}
