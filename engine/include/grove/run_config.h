/* The task config of `grove train / eval / config` (DESIGN.md §11) as C structs, and its loader.
 *
 * The schema tables live in engine/train/run_config.c; this header is what the CLI and trainer
 * use. Algorithm keys (group.size, group.same_latent, sampler.noise, sampler.window, kl,
 * train.clip_range, train.adv_clip, train.global_std, train.timestep_fraction,
 * train.random_fraction, train.step_weight, train.std_eps) are owned by the preset named in
 * algorithm.preset (configs/algorithms/<preset>.yaml, ALGORITHMS.md §9): a task file changes them
 * only under algorithm.overrides, or with --set.
 *
 * Typical CLI use (`grove config FILE [--set k=v]...`):
 *     gv_run_config cfg;  gv_config_result res;  char *text;
 *     GV_TRY(gv_run_config_load(path, args->sets, args->nsets, NULL, &cfg, &res));
 *     GV_TRY(gv_run_config_dump(&cfg, &res, &text));      // values + "# origin" comments
 *     fputs(text, stdout);  free(text);
 *     gv_run_config_free(&cfg);  gv_config_result_free(&res);
 * Every path in the struct is absolute (resolved at load, not checked for existence). */
#ifndef GROVE_RUN_CONFIG_H
#define GROVE_RUN_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "grove/config.h"
#include "grove/dist_config.h"
#include "grove/optim.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum gv_device_kind { GV_DEVICE_AUTO, GV_DEVICE_CPU, GV_DEVICE_CUDA } gv_device_kind;

/* ALGORITHMS.md §2 noise schedules. */
typedef enum gv_noise_kind {
    GV_NOISE_FLOW_GRPO, GV_NOISE_CONSTANT, GV_NOISE_CALIBRATED, GV_NOISE_CPS, GV_NOISE_EXACT,
    GV_NOISE_ODE
} gv_noise_kind;

/* ALGORITHMS.md §3 KL kinds. */
typedef enum gv_kl_kind { GV_KL_NONE, GV_KL_FLOW_GRPO, GV_KL_GAUSSIAN, GV_KL_VELOCITY } gv_kl_kind;

/* ALGORITHMS.md §7 SDE windows: steps [l, l+w) SDE and trained, the others ODE. */
typedef enum gv_window_kind {
    GV_WINDOW_NONE, GV_WINDOW_FIXED, GV_WINDOW_RANDOM, GV_WINDOW_PROGRESSIVE
} gv_window_kind;

/* ALGORITHMS.md §4 step weighting: 1, or omega_i = std_i / mean over trained steps of std_j. */
typedef enum gv_step_weight_kind { GV_STEP_WEIGHT_UNIFORM, GV_STEP_WEIGHT_NOISE_AWARE } gv_step_weight_kind;


/* train.train_cfg: CFG rows in the training forward (ALGORITHMS.md §3); auto = guidance != 1. */
typedef enum gv_train_cfg_mode { GV_TRAIN_CFG_AUTO, GV_TRAIN_CFG_TRUE, GV_TRAIN_CFG_FALSE } gv_train_cfg_mode;

typedef enum gv_rewards_mode {
    GV_REWARDS_SUM_THEN_NORMALIZE, GV_REWARDS_NORMALIZE_THEN_SUM
} gv_rewards_mode;

typedef struct gv_run_section {
    char *name;
    char *dir;         /* path; "" = runs/<name> under the current directory (the trainer decides) */
    int64_t seed;
    int device;        /* gv_device_kind */
    int threads;       /* 0 = GROVE_THREADS or all cores */
    int micro_batch;
    int shards;        /* data parallel: parts of each iteration's prompt groups (grpo.h, dist.h) */
} gv_run_section;

typedef struct gv_model_section { char *checkpoint; } gv_model_section;

typedef struct gv_data_section {
    char *prompts;
    char *eval_prompts;
} gv_data_section;

typedef struct gv_noise_section {
    int kind;          /* gv_noise_kind */
    double level;      /* a (flow_grpo, cps, exact) or eta (constant) */
} gv_noise_section;

typedef struct gv_window_section {
    int kind;          /* gv_window_kind */
    int size;          /* w */
    int start;         /* fixed: l; progressive: l at iteration 0 */
    int every;         /* progressive: l += 1 every tau iterations */
} gv_window_section;

typedef struct gv_sampler_section {
    int steps;
    double shift;
    double guidance;   /* 1 = no CFG */
    gv_noise_section noise;               /* preset-owned */
    gv_window_section window;             /* preset-owned */
} gv_sampler_section;

typedef struct gv_algorithm_section {
    char *preset;
    gv_cfg_map overrides;                 /* as written; already applied to the owned fields */
} gv_algorithm_section;

typedef struct gv_group_section {
    int prompts_per_iteration;
    int size;                             /* preset-owned */
    bool same_latent;                     /* preset-owned */
} gv_group_section;

typedef struct gv_kl_section {
    int kind;          /* gv_kl_kind */
    double beta;
} gv_kl_section;                          /* preset-owned */

typedef struct gv_lr_schedule_section {
    int kind;          /* gv_lr_kind (optim.h), by schema name order */
    int warmup_steps;
    int total_steps;   /* horizon of the schedule; 0 = train.iterations at run creation */
    double min_lr;
} gv_lr_schedule_section;

typedef struct gv_ema_section {
    double decay;
    int every;
} gv_ema_section;

typedef struct gv_train_section {
    int iterations;
    double lr;
    gv_lr_schedule_section lr_schedule;
    int minibatch;
    int inner_epochs;
    double grad_clip;  /* 0 = off */
    double weight_decay;
    double adam_beta1, adam_beta2;
    gv_ema_section ema;
    int max_skips;
    int train_cfg;     /* gv_train_cfg_mode */
    double clip_range;                    /* preset-owned */
    double adv_clip;                      /* preset-owned */
    bool global_std;                      /* preset-owned */
    double timestep_fraction;             /* preset-owned */
    double random_fraction;               /* preset-owned; > 0: random subset per sample */
    int step_weight;                      /* preset-owned; gv_step_weight_kind */
    double std_eps;                       /* preset-owned; advantage std epsilon */
} gv_train_section;

typedef struct gv_reward_spec {
    char *builtin;     /* registry name, or "" */
    char *plugin;      /* path to a .so, or "" (exactly one of builtin / plugin) */
    char *model;       /* optional model name or checkpoint for the reward */
    double weight;
    gv_cfg_map config; /* handed to the reward as flattened "key=value" lines */
    int score;         /* classifier only: gv_classifier_score (prob | log_prob) */
} gv_reward_spec;

typedef struct gv_reward_failures_section { int max_consecutive; } gv_reward_failures_section;
/* The schemas of one `rewards:` entry and of `reward_failures`, and the rewards_mode names, shared
   with the masked-diffusion trainer's config (mdm_train_config.c). */
extern const gv_schema gv_reward_spec_schema;
extern const gv_schema gv_reward_failures_schema;
extern const char *const gv_rewards_mode_names[];

/* reward_transform (preset-owned): none, or Pref-GRPO's win rate over each prompt's group from a
   pairwise judge (ALGORITHMS.md §8; rewards.h gv_reward_win_rate). */
typedef enum gv_reward_transform {
    GV_REWARD_TRANSFORM_NONE, GV_REWARD_TRANSFORM_WIN_RATE
} gv_reward_transform;
typedef struct gv_pairwise_section {
    bool hard;         /* threshold p_first at 0.5                         */
    bool both_orders;  /* judge (a, b) and (b, a) to cancel position bias  */
} gv_pairwise_section;
typedef struct gv_eval_section { int every, seeds; } gv_eval_section;
typedef struct gv_checkpoint_section { int every, keep; } gv_checkpoint_section;
typedef struct gv_dump_section { int every, keep; } gv_dump_section;

/* ---- trees, branch points and credit (ALGORITHMS.md §4–6, §9; preset-owned) ------------------
 * The enums' values follow the library's name tables (samplers/topology.h gv_topology_kind,
 * gv_split_density; grove/credit.h gv_credit_group, gv_fusion; grove/prune.h gv_prune_width,
 * gv_prune_depth), so a config value converts by value; engine/train/algorithm_config.c turns
 * these sections into the library's structs and checks the cross-field rules at load. */

/* credit.kind: which credit scheme of grove/credit.h turns the rollout into training triples. */
typedef enum gv_credit_kind {
    GV_CREDIT_KIND_TERMINAL, GV_CREDIT_KIND_TEMPFLOW, GV_CREDIT_KIND_DENSE, GV_CREDIT_KIND_BRANCH
} gv_credit_kind;

typedef struct gv_topology_section {
    int kind;                /* gv_topology_kind: chains | branch_points | tree                  */
    int K;                   /* branch points: SDE branches per branch step; tree: children/split */
    int branch_every;        /* branch points: B = {0, e, 2e, ...} <= N-2 (branch_steps empty)   */
    double *branch_steps;    /* branch points: explicit B (integers <= N-2); overrides every    */
    int n_branch_steps;
} gv_topology_section;

typedef struct gv_prune_section {
    int width;               /* gv_prune_width: none | per_branch | global                       */
    double ratio;            /* width ratio r in (0, 1]                                          */
    int depth;               /* gv_prune_depth: none | fixed | sliding                           */
    double *depths;          /* child depths dropped (integers >= 1)                             */
    int n_depths;
    int interval, stop_depth;/* sliding                                                          */
} gv_prune_section;

typedef struct gv_branch_section {
    double *splits;          /* explicit split steps P (integers <= N-2); beat splits_frac       */
    int n_splits;
    double *splits_frac;     /* split steps floor(f N + 0.5)                                     */
    int n_splits_frac;
    double split_scale;      /* lambda                                                           */
    int split_density;       /* gv_split_density: scaled | reference                             */
    int fusion;              /* gv_fusion: mean | prob_weighted                                  */
    double fusion_alpha;
    gv_prune_section prune;
} gv_branch_section;

typedef struct gv_credit_section {
    int kind;                /* gv_credit_kind                                                   */
    int group;               /* gv_credit_group: root | prompt (tempflow.group, branch.normalize) */
} gv_credit_section;

typedef struct gv_dense_section {
    char *completion_steps;  /* "all" or n > 0 Euler steps (gv_run_config_dense_completion)      */
    bool calibrate;          /* run the psi calibration phase at the start of `grove train`     */
    int rounds;
    int calibration_prompts; /* prompts per calibration batch, capped at (0: =) prompts_per_iteration */
    double eps1, eps2;
} gv_dense_section;

typedef struct gv_run_config {
    gv_run_section run;
    gv_model_section model;
    gv_data_section data;
    gv_sampler_section sampler;
    gv_algorithm_section algorithm;
    gv_group_section group;
    gv_kl_section kl;
    gv_train_section train;
    int rewards_mode;  /* gv_rewards_mode */
    gv_reward_spec *rewards;
    int n_rewards;
    gv_reward_spec *eval_rewards;
    int n_eval_rewards;
    gv_reward_failures_section reward_failures;
    gv_eval_section eval;
    gv_checkpoint_section checkpoint;
    gv_dump_section dump;
    int reward_transform;          /* gv_reward_transform (preset-owned)  */
    gv_pairwise_section pairwise;  /* judgements of win_rate              */
    gv_topology_section topology;         /* preset-owned (ALGORITHMS.md §4, §6) */
    gv_branch_section branch;             /* preset-owned (§6)                   */
    gv_credit_section credit;             /* preset-owned (§3–6)                 */
    gv_dense_section dense;               /* preset-owned (§5)                   */
    gv_dist_section dist;                 /* data parallel across MPI ranks (dist.h) */
} gv_run_config;

/* The schema table of gv_run_config (config.h), for generic tools (help listings). */
extern const gv_schema gv_run_config_schema;

/* Load a task config: file + preset + algorithm.overrides + --set ("key.path=value" each).
 * `preset_dir` NULL: $GROVE_PRESET_DIR, else <config file dir>/../algorithms. `res` may be NULL
 * (it receives the preset used and every value's origin). On failure `out` is zeroed and
 * gv_last_error() has the one-line cause. */
gv_status gv_run_config_load(const char *path, const char *const *sets, int nsets,
                             const char *preset_dir, gv_run_config *out, gv_config_result *res);

/* Load a resolved dump (a checkpoint's /config, a run's config.yaml): no preset layering.
 * `label` names it in messages. */
gv_status gv_run_config_load_resolved(const char *text, const char *label, gv_run_config *out);

/* The resolved config as YAML; with `res`, each value gets a trailing "# <origin>" comment.
 * `*out` is malloc'd. Without `res` the text is canonical and reloads to an identical struct. */
gv_status gv_run_config_dump(const gv_run_config *cfg, const gv_config_result *res, char **out);

/* Hash of the canonical dump (resume refuses a changed config). */
gv_status gv_run_config_hash(const gv_run_config *cfg, uint64_t *hash);

void gv_run_config_free(gv_run_config *cfg);

#ifdef __cplusplus
}
#endif
#endif
