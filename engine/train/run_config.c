/* The task config schema (DESIGN.md §11): one gv_schema table per struct of run_config.h, and the
 * loader that layers the algorithm preset under the task file (ALGORITHMS.md §9). The tables are
 * the single source of keys, defaults, ranges and help; the binder (engine/core/config*.c) does
 * the rest. Schema defaults of preset-owned keys equal the flow_grpo preset. */
#include "grove/run_config.h"

#include "grove/algorithm_config.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define INF INFINITY
#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* Field builders: struct S, member k. */
#define F_INT(S, k, d_, lo_, hi_, fl_, h_)                                                         \
    {.key = #k, .type = GV_CFG_INT, .offset = offsetof(S, k), .def = d_, .min = lo_, .max = hi_,   \
     .flags = fl_, .help = h_}
#define F_I64(S, k, d_, lo_, hi_, h_)                                                              \
    {.key = #k, .type = GV_CFG_I64, .offset = offsetof(S, k), .def = d_, .min = lo_, .max = hi_,   \
     .help = h_}
#define F_FLOAT(S, k, d_, lo_, hi_, fl_, h_)                                                       \
    {.key = #k, .type = GV_CFG_FLOAT, .offset = offsetof(S, k), .def = d_, .min = lo_, .max = hi_, \
     .flags = fl_, .help = h_}
#define F_BOOL(S, k, d_, fl_, h_)                                                                  \
    {.key = #k, .type = GV_CFG_BOOL, .offset = offsetof(S, k), .def = d_, .flags = fl_,            \
     .help = h_}
#define F_STR(S, k, d_, fl_, h_)                                                                   \
    {.key = #k, .type = GV_CFG_STRING, .offset = offsetof(S, k), .def = d_, .flags = fl_,          \
     .help = h_}
#define F_PATH(S, k, fl_, h_)                                                                      \
    {.key = #k, .type = GV_CFG_PATH, .offset = offsetof(S, k), .flags = fl_, .help = h_}
#define F_ENUM(S, k, nm_, d_, h_)                                                                  \
    {.key = #k, .type = GV_CFG_ENUM, .offset = offsetof(S, k), .names = nm_, .def = d_,            \
     .help = h_}
#define F_STRUCT(S, k, sb_, fl_, h_)                                                               \
    {.key = #k, .type = GV_CFG_STRUCT, .offset = offsetof(S, k), .sub = &sb_, .flags = fl_,        \
     .help = h_}
#define F_LIST(S, k, cnt_, sb_, fl_, h_)                                                           \
    {.key = #k, .type = GV_CFG_LIST, .offset = offsetof(S, k), .count_offset = offsetof(S, cnt_),  \
     .sub = &sb_, .flags = fl_, .help = h_}
#define F_NUMBERS(S, k, cnt_, d_, lo_, hi_, h_)                                                   \
    {.key = #k, .type = GV_CFG_NUMBERS, .offset = offsetof(S, k), .count_offset = offsetof(S, cnt_), \
     .def = d_, .min = lo_, .max = hi_, .help = h_}
#define F_MAP(S, k, h_) {.key = #k, .type = GV_CFG_MAP, .offset = offsetof(S, k), .help = h_}
#define SCHEMA(name, S, fields, check) {#S, sizeof(S), fields, COUNT(fields), check}

static const char *const device_names[] = {"auto", "cpu", "cuda", NULL};
static const char *const noise_names[] = {"flow_grpo", "constant", "calibrated", "cps",
                                          "exact",     "ode",      NULL};
static const char *const kl_names[] = {"none", "flow_grpo", "gaussian", "velocity", NULL};
static const char *const window_names[] = {"none", "fixed", "random", "progressive", NULL};
static const char *const step_weight_names[] = {"uniform", "noise_aware", NULL};
static const char *const lr_schedule_names[] = {"constant", "warmup_cosine", NULL};
static const char *const train_cfg_names[] = {"auto", "true", "false", NULL};
const char *const gv_rewards_mode_names[] = {"sum_then_normalize", "normalize_then_sum", NULL};

/* ---- run, model, data ------------------------------------------------------------------------ */

static const gv_field run_fields[] = {
    F_STR(gv_run_section, name, "run", 0, "run name (metrics, gallery titles)"),
    F_PATH(gv_run_section, dir, 0, "run directory; empty = runs/<name> in the current directory"),
    F_I64(gv_run_section, seed, "1", 0, 4294967295.0, "Philox key word of every random stream (32 bits)"),
    F_ENUM(gv_run_section, device, device_names, "auto", "auto | cpu | cuda"),
    F_INT(gv_run_section, threads, "0", 0, 4096, 0, "CPU threads; 0 = GROVE_THREADS or all cores"),
    F_INT(gv_run_section, micro_batch, "32", 1, 4096, 0,
          "fixed rows per denoiser call, rollouts and training alike"),
    F_INT(gv_run_section, shards, "1", 1, 65536, 0,
          "parts of each iteration's prompt groups, gradients summed in part order; set it, not "
          "the rank count, for results (mpirun -np R: at least R)"),
};
static const gv_schema run_schema = SCHEMA(run, gv_run_section, run_fields, NULL);

static const gv_field model_fields[] = {
    F_PATH(gv_model_section, checkpoint, GV_CFG_REQUIRED, "base model checkpoint (.h5)"),
};
static const gv_schema model_schema = SCHEMA(model, gv_model_section, model_fields, NULL);

static const gv_field data_fields[] = {
    F_PATH(gv_data_section, prompts, GV_CFG_REQUIRED, "training prompts, one per line"),
    F_PATH(gv_data_section, eval_prompts, 0, "held-out eval prompts; empty = no eval prompts"),
};
static const gv_schema data_schema = SCHEMA(data, gv_data_section, data_fields, NULL);

/* ---- sampler, algorithm, group, kl ----------------------------------------------------------- */

static const gv_field noise_fields[] = {
    F_ENUM(gv_noise_section, kind, noise_names, "flow_grpo",
           "flow_grpo | constant | calibrated | cps | exact | ode (ALGORITHMS.md §2)"),
    F_FLOAT(gv_noise_section, level, "0.7", 0, 10, 0, "noise level a (or eta for constant)"),
};
static const gv_schema noise_schema = SCHEMA(noise, gv_noise_section, noise_fields, NULL);

/* ALGORITHMS.md §7; where the window fits the schedule is checked at setup (grpo_setup.c). */
static const gv_field window_fields[] = {
    F_ENUM(gv_window_section, kind, window_names, "none",
           "none | fixed | random | progressive (ALGORITHMS.md §7)"),
    F_INT(gv_window_section, size, "4", 1, 254, 0, "window width w (SDE and trained steps)"),
    F_INT(gv_window_section, start, "0", 0, 253, 0, "fixed: first window step l; progressive: l at iteration 0"),
    F_INT(gv_window_section, every, "25", 1, 1e9, 0, "progressive: l += 1 every tau iterations"),
};
static const gv_schema window_schema = SCHEMA(window, gv_window_section, window_fields, NULL);

static const gv_field sampler_fields[] = {
    F_INT(gv_sampler_section, steps, "10", 2, 255, 0, "sampling steps N (the RNG address holds 8 bits of step)"),
    F_FLOAT(gv_sampler_section, shift, "3.0", 0.01, 100, 0, "schedule shift S"),
    F_FLOAT(gv_sampler_section, guidance, "1.0", 0, 100, 0, "CFG scale; 1 = no CFG"),
    F_STRUCT(gv_sampler_section, noise, noise_schema, GV_CFG_OWNED, "SDE noise (preset)"),
    F_STRUCT(gv_sampler_section, window, window_schema, GV_CFG_OWNED, "SDE window (preset)"),
};
static const gv_schema sampler_schema = SCHEMA(sampler, gv_sampler_section, sampler_fields, NULL);

static const gv_field algorithm_fields[] = {
    F_STR(gv_algorithm_section, preset, "flow_grpo", 0,
          "configs/algorithms/<preset>.yaml, or a path to a preset file"),
    F_MAP(gv_algorithm_section, overrides, "changes to preset-owned keys, e.g. {group: {size: 4}}"),
};
static const gv_schema algorithm_schema =
    SCHEMA(algorithm, gv_algorithm_section, algorithm_fields, NULL);

static const gv_field group_fields[] = {
    F_INT(gv_group_section, prompts_per_iteration, "8", 1, 65536, 0, "prompts per iteration"),
    F_INT(gv_group_section, size, "8", 1, 4096, GV_CFG_OWNED, "roots per prompt (preset)"),
    F_BOOL(gv_group_section, same_latent, "false", GV_CFG_OWNED,
           "share x_T within a group (preset)"),
};
static const gv_schema group_schema = SCHEMA(group, gv_group_section, group_fields, NULL);

static const gv_field kl_fields[] = {
    F_ENUM(gv_kl_section, kind, kl_names, "flow_grpo", "none | flow_grpo | gaussian | velocity"),
    F_FLOAT(gv_kl_section, beta, "0.04", 0, 1000, 0, "KL weight"),
};
static const gv_schema kl_schema = SCHEMA(kl, gv_kl_section, kl_fields, NULL);

/* ---- train ----------------------------------------------------------------------------------- */


static const gv_field lr_schedule_fields[] = {
    F_ENUM(gv_lr_schedule_section, kind, lr_schedule_names, "constant",
           "constant | warmup_cosine"),
    F_INT(gv_lr_schedule_section, warmup_steps, "0", 0, 1e9, 0, "linear warm-up optimizer steps"),
    F_INT(gv_lr_schedule_section, total_steps, "0", 0, 1e9, 0,
          "schedule horizon in optimizer steps; 0 = fixed from train.iterations at run creation"),
    F_FLOAT(gv_lr_schedule_section, min_lr, "0", 0, 1, 0, "floor of the cosine"),
};
static const gv_schema lr_schedule_schema =
    SCHEMA(lr_schedule, gv_lr_schedule_section, lr_schedule_fields, NULL);

static const gv_field ema_fields[] = {
    F_FLOAT(gv_ema_section, decay, "0.9", 0, 1, 0, "EMA decay cap: min((1+k)/(10+k), decay)"),
    F_INT(gv_ema_section, every, "8", 1, 1e9, 0, "EMA update every N optimizer steps"),
};
static const gv_schema ema_schema = SCHEMA(ema, gv_ema_section, ema_fields, NULL);

static const gv_field train_fields[] = {
    F_INT(gv_train_section, iterations, "100", 0, 1e9, 0, "GRPO iterations"),
    F_FLOAT(gv_train_section, lr, "3e-4", 0, 1, 0, "AdamW learning rate"),
    F_STRUCT(gv_train_section, lr_schedule, lr_schedule_schema, 0, "learning-rate schedule"),
    F_INT(gv_train_section, minibatch, "4", 1, 4096, 0, "roots per optimizer step"),
    F_INT(gv_train_section, inner_epochs, "1", 1, 1000, 0, "passes over each iteration's rollouts"),
    F_FLOAT(gv_train_section, grad_clip, "1.0", 0, 1e6, 0, "global grad-norm clip; 0 = off"),
    F_FLOAT(gv_train_section, weight_decay, "1e-4", 0, 10, 0, "AdamW weight decay"),
    F_FLOAT(gv_train_section, adam_beta1, "0.9", 0, 0.999999, 0, "AdamW beta1, < 1"),
    F_FLOAT(gv_train_section, adam_beta2, "0.999", 0, 0.999999, 0, "AdamW beta2, < 1"),
    F_STRUCT(gv_train_section, ema, ema_schema, 0, "EMA of the weights"),
    F_INT(gv_train_section, max_skips, "3", 0, 1000000, 0,
          "consecutive non-finite steps skipped before stopping"),
    F_ENUM(gv_train_section, train_cfg, train_cfg_names, "auto",
           "CFG rows in the training forward: auto (= sampler.guidance != 1) | true | false"),
    F_FLOAT(gv_train_section, clip_range, "1e-4", 0, 1, GV_CFG_OWNED, "PPO clip epsilon (preset)"),
    F_FLOAT(gv_train_section, adv_clip, "5", 0, 1e6, GV_CFG_OWNED, "advantage clamp (preset)"),
    F_BOOL(gv_train_section, global_std, "true", GV_CFG_OWNED,
           "advantage std over the whole batch, else per group (preset)"),
    F_FLOAT(gv_train_section, timestep_fraction, "1.0", 0, 1, GV_CFG_OWNED,
            "fraction of stochastic steps trained (preset)"),
    F_FLOAT(gv_train_section, random_fraction, "0", 0, 1, GV_CFG_OWNED,
            "> 0: train a random subset of this fraction of the SDE steps per sample (preset)"),
    {.key = "step_weight", .type = GV_CFG_ENUM, .offset = offsetof(gv_train_section, step_weight),
     .names = step_weight_names, .def = "uniform", .flags = GV_CFG_OWNED,
     .help = "uniform | noise_aware: omega_i = std_i / mean std over trained steps (preset)"},
    F_FLOAT(gv_train_section, std_eps, "1e-4", 0, 1, GV_CFG_OWNED,
            "advantage std epsilon: (r - mean) / (std + eps) (preset)"),
};
/* The optimizer's own check decides what a valid schedule is (one rule, optim.c); a horizon of 0
   is filled in at run creation, so it is checked here with the shortest horizon it can get. */
static const char *check_train(const void *obj) {
    const gv_train_section *t = obj;
    gv_lr_schedule s = {.kind = (gv_lr_kind)t->lr_schedule.kind,
                        .lr = (float)t->lr,
                        .warmup_steps = t->lr_schedule.warmup_steps,
                        .total_steps = t->lr_schedule.total_steps,
                        .min_lr = (float)t->lr_schedule.min_lr};
    if (s.total_steps == 0) s.total_steps = s.warmup_steps + 1;
    if (gv_lr_schedule_check(&s) != GV_OK) return gv_last_error();
    return NULL;
}

static const gv_schema train_schema = SCHEMA(train, gv_train_section, train_fields, check_train);

/* ---- rewards and the rest -------------------------------------------------------------------- */

static const char *check_reward(const void *obj) {
    const gv_reward_spec *r = obj;
    bool builtin = r->builtin && *r->builtin, plugin = r->plugin && *r->plugin;
    if (builtin == plugin) return "give exactly one of 'builtin' and 'plugin'";
    if (r->score != 0 && (!builtin || strcmp(r->builtin, "classifier") != 0))
        return "'score' applies to the classifier reward only";
    return NULL;
}

/* gv_classifier_score order (rewards.h) */
static const char *const reward_score_names[] = {"prob", "log_prob", "correct", NULL};

static const gv_field reward_fields[] = {
    F_STR(gv_reward_spec, builtin, NULL, 0, "built-in reward name"),
    F_PATH(gv_reward_spec, plugin, 0, "reward plugin shared object"),
    F_STR(gv_reward_spec, model, NULL, 0, "model the reward uses (name or checkpoint)"),
    F_FLOAT(gv_reward_spec, weight, "1.0", -1e6, 1e6, 0, "weight w_k in r = sum_k w_k r_k"),
    F_MAP(gv_reward_spec, config, "passed to the reward as key=value lines"),
    F_ENUM(gv_reward_spec, score, reward_score_names, "prob",
           "classifier: prob = p(prompt's class) | log_prob = max(log p, log 1e-4) | correct = "
           "1 if the prompt's class has the largest logit, else 0"),
};
const gv_schema gv_reward_spec_schema = SCHEMA(reward, gv_reward_spec, reward_fields, check_reward);

static const gv_field reward_failures_fields[] = {
    F_INT(gv_reward_failures_section, max_consecutive, "3", 0, 1000000, 0,
          "consecutive failed reward batches before stopping"),
};
const gv_schema gv_reward_failures_schema =
    SCHEMA(reward_failures, gv_reward_failures_section, reward_failures_fields, NULL);

static const char *const reward_transform_names[] = {"none", "win_rate", NULL};
static const gv_field pairwise_fields[] = {
    F_BOOL(gv_pairwise_section, hard, "false", 0, "win_rate: threshold each judgement at 0.5"),
    F_BOOL(gv_pairwise_section, both_orders, "false", 0,
           "win_rate: judge both orders and average (cancels position bias)"),
};
static const gv_schema pairwise_schema = SCHEMA(pairwise, gv_pairwise_section, pairwise_fields, NULL);

static const gv_field eval_fields[] = {
    F_INT(gv_eval_section, every, "10", 0, 1e9, 0, "eval every N iterations; 0 = off"),
    F_INT(gv_eval_section, seeds, "64", 1, 1000000, 0, "seeds per eval prompt"),
};
static const gv_schema eval_schema = SCHEMA(eval, gv_eval_section, eval_fields, NULL);

static const gv_field checkpoint_fields[] = {
    F_INT(gv_checkpoint_section, every, "10", 0, 1e9, 0, "iter-<k>.h5 every N iterations; 0 = off"),
    F_INT(gv_checkpoint_section, keep, "0", 0, 1e9, 0, "iter-<k>.h5 kept; 0 = all"),
};
static const gv_schema checkpoint_schema =
    SCHEMA(checkpoint, gv_checkpoint_section, checkpoint_fields, NULL);

static const gv_field dump_fields[] = {
    F_INT(gv_dump_section, every, "0", 0, 1e9, 0, "rollouts.h5 every N iterations; 0 = off"),
    F_INT(gv_dump_section, keep, "2", 0, 1e9, 0, "rollout dumps kept"),
};
static const gv_schema dump_schema = SCHEMA(dump, gv_dump_section, dump_fields, NULL);

/* ---- topology, branch, credit, dense (ALGORITHMS.md §4–6; preset-owned) -----------------------
   Name orders follow the library enums (run_config.h); cross-field rules (steps <= N-2, the
   scheme matching the topology, ...) are checked after binding (algorithm_config.c). */

static const char *const topology_kind_names[] = {"chains", "branch_points", "tree", NULL};
static const char *const split_density_names[] = {"scaled", "reference", NULL};
static const char *const fusion_names[] = {"mean", "prob_weighted", NULL};
static const char *const credit_kind_names[] = {"terminal", "tempflow", "dense", "branch", NULL};
static const char *const credit_group_names[] = {"root", "prompt", NULL};
static const char *const prune_width_names[] = {"none", "per_branch", "global", NULL};
static const char *const prune_depth_names[] = {"none", "fixed", "sliding", NULL};

static const gv_field topology_fields[] = {
    F_ENUM(gv_topology_section, kind, topology_kind_names, "chains",
           "chains | branch_points | tree (ALGORITHMS.md §4, §6)"),
    F_INT(gv_topology_section, K, "2", 1, 4096, 0,
          "branch_points: SDE branches per branch step; tree: children per split (>= 2)"),
    F_INT(gv_topology_section, branch_every, "1", 1, 254, 0,
          "branch_points: B = every e-th stochastic step from 0 (when branch_steps is empty)"),
    F_NUMBERS(gv_topology_section, branch_steps, n_branch_steps, NULL, 0, 253,
              "branch_points: explicit branch steps (<= N-2)"),
};
static const gv_schema topology_schema = SCHEMA(topology, gv_topology_section, topology_fields, NULL);

static const gv_field prune_fields[] = {
    F_ENUM(gv_prune_section, width, prune_width_names, "none", "none | per_branch | global (tail edges)"),
    F_FLOAT(gv_prune_section, ratio, "0.5", 1e-9, 1, 0, "width pruning ratio r in (0, 1]"),
    F_ENUM(gv_prune_section, depth, prune_depth_names, "none", "none | fixed | sliding"),
    F_NUMBERS(gv_prune_section, depths, n_depths, NULL, 1, 254, "child depths dropped (>= 1)"),
    F_INT(gv_prune_section, interval, "1", 1, 1e9, 0, "sliding: iterations per move"),
    F_INT(gv_prune_section, stop_depth, "1", 1, 254, 0, "sliding: shallowest depth reached"),
};
static const gv_schema prune_schema = SCHEMA(prune, gv_prune_section, prune_fields, NULL);

static const gv_field branch_fields[] = {
    F_NUMBERS(gv_branch_section, splits, n_splits, NULL, 0, 253,
              "tree: explicit split steps (<= N-2); beat splits_frac"),
    F_NUMBERS(gv_branch_section, splits_frac, n_splits_frac, NULL, 0, 1,
              "tree: split steps floor(f N + 0.5)"),
    F_FLOAT(gv_branch_section, split_scale, "4.0", 1e-6, 1e3, 0, "tree: split noise scale lambda"),
    F_ENUM(gv_branch_section, split_density, split_density_names, "scaled",
           "scaled: N(mu, (lambda std)^2) | reference: N(mu, std^2)"),
    F_ENUM(gv_branch_section, fusion, fusion_names, "mean", "mean | prob_weighted node rewards"),
    F_FLOAT(gv_branch_section, fusion_alpha, "1.0", -1e6, 1e6, 0, "prob_weighted alpha"),
    F_STRUCT(gv_branch_section, prune, prune_schema, 0, "pruning (training only)"),
};
static const gv_schema branch_schema = SCHEMA(branch, gv_branch_section, branch_fields, NULL);

static const gv_field credit_fields[] = {
    F_ENUM(gv_credit_section, kind, credit_kind_names, "terminal",
           "terminal | tempflow | dense | branch (grove/credit.h)"),
    F_ENUM(gv_credit_section, group, credit_group_names, "root",
           "root: one trunk column / one tree | prompt: pool the prompt's roots"),
};
static const gv_schema credit_schema = SCHEMA(credit, gv_credit_section, credit_fields, NULL);

static const gv_field dense_fields[] = {
    F_STR(gv_dense_section, completion_steps, "all", 0,
          "ODE completion of x_i: all (the remaining schedule) or n Euler steps"),
    F_BOOL(gv_dense_section, calibrate, "false", 0, "calibrate psi(i) at the start of grove train"),
    F_INT(gv_dense_section, rounds, "20", 1, 1e6, 0, "calibration rounds"),
    F_INT(gv_dense_section, calibration_prompts, "0", 0, 1e6, 0,
          "prompts per calibration batch (x group.size chains), at most (and 0 =) "
          "group.prompts_per_iteration"),
    F_FLOAT(gv_dense_section, eps1, "1.0", 0, 1e6, 0, "balanced when |pos - neg| <= eps1 sqrt(n)"),
    F_FLOAT(gv_dense_section, eps2, "0.05", 1e-9, 0.999, 0, "psi *= 1 +- eps2 per round"),
};
static const gv_schema dense_schema = SCHEMA(dense, gv_dense_section, dense_fields, NULL);

static const gv_field run_config_fields[] = {
    F_STRUCT(gv_run_config, run, run_schema, 0, "run identity and resources"),
    F_STRUCT(gv_run_config, model, model_schema, 0, "base model"),
    F_STRUCT(gv_run_config, data, data_schema, 0, "prompts"),
    F_STRUCT(gv_run_config, sampler, sampler_schema, 0, "sampling schedule"),
    F_STRUCT(gv_run_config, algorithm, algorithm_schema, 0, "algorithm preset"),
    F_STRUCT(gv_run_config, group, group_schema, 0, "grouping of rollouts"),
    F_STRUCT(gv_run_config, kl, kl_schema, GV_CFG_OWNED, "KL to the frozen base (preset)"),
    F_STRUCT(gv_run_config, train, train_schema, 0, "optimization"),
    F_ENUM(gv_run_config, rewards_mode, gv_rewards_mode_names, "sum_then_normalize",
           "sum_then_normalize | normalize_then_sum"),
    F_LIST(gv_run_config, rewards, n_rewards, gv_reward_spec_schema, GV_CFG_REQUIRED, "training rewards"),
    F_LIST(gv_run_config, eval_rewards, n_eval_rewards, gv_reward_spec_schema, 0, "eval-only rewards"),
    F_STRUCT(gv_run_config, reward_failures, gv_reward_failures_schema, 0, "reward failure policy"),
    F_STRUCT(gv_run_config, eval, eval_schema, 0, "held-out evaluation"),
    F_STRUCT(gv_run_config, checkpoint, checkpoint_schema, 0, "checkpoint cadence"),
    F_STRUCT(gv_run_config, dump, dump_schema, 0, "rollout dumps"),
    {.key = "reward_transform", .type = GV_CFG_ENUM,
     .offset = offsetof(gv_run_config, reward_transform), .names = reward_transform_names,
     .def = "none", .flags = GV_CFG_OWNED,
     .help = "none | win_rate: Pref-GRPO win rates from a pairwise judge (preset)"},
    F_STRUCT(gv_run_config, pairwise, pairwise_schema, 0, "pairwise judgements (win_rate)"),
    F_STRUCT(gv_run_config, topology, topology_schema, GV_CFG_OWNED, "rollout topology (preset)"),
    F_STRUCT(gv_run_config, branch, branch_schema, GV_CFG_OWNED, "trees: splits, fusion, pruning (preset)"),
    F_STRUCT(gv_run_config, credit, credit_schema, GV_CFG_OWNED, "credit assignment (preset)"),
    F_STRUCT(gv_run_config, dense, dense_schema, GV_CFG_OWNED, "DenseGRPO completions, calibration (preset)"),
    F_STRUCT(gv_run_config, dist, gv_dist_schema, 0, "data parallel across MPI ranks (dist.h)"),
};
const gv_schema gv_run_config_schema = SCHEMA(run_config, gv_run_config, run_config_fields, NULL);

/* ---- API ------------------------------------------------------------------------------------- */

gv_status gv_run_config_load(const char *path, const char *const *sets, int nsets,
                             const char *preset_dir, gv_run_config *out, gv_config_result *res) {
    /* First existing of: the argument, $GROVE_PRESET_DIR, <config dir>/../algorithms,
       ./configs/algorithms, and the configs/algorithms of the tree grove was built from. */
    char next_to_file[4096];
    const char *slash = path ? strrchr(path, '/') : NULL;
    if (slash) snprintf(next_to_file, sizeof next_to_file, "%.*s/../algorithms",
                        (int)(slash - path), path);
    else snprintf(next_to_file, sizeof next_to_file, "../algorithms");
    const char *candidates[] = {preset_dir, getenv("GROVE_PRESET_DIR"), next_to_file,
                                "configs/algorithms", GROVE_SOURCE_DIR "/configs/algorithms"};
    const char *chosen = NULL;
    for (int i = 0; i < COUNT(candidates) && !chosen; ++i) {
        struct stat sb;
        if (candidates[i] && *candidates[i] && stat(candidates[i], &sb) == 0 && S_ISDIR(sb.st_mode))
            chosen = candidates[i];
    }
    if (!chosen) chosen = preset_dir ? preset_dir : next_to_file; /* the error names it */
    gv_config_request req = {.schema = &gv_run_config_schema,
                             .path = path,
                             .sets = sets,
                             .nsets = nsets,
                             .preset_key = "algorithm.preset",
                             .overrides_key = "algorithm.overrides",
                             .preset_dir = chosen};
    gv_config_result local = {0}; /* origins for the messages of the algorithm rules */
    gv_config_result *r = res ? res : &local;
    GV_TRY(gv_config_load(&req, out, r));
    gv_status st = gv_run_config_check_algorithm(out, path, r); /* algorithm_config.c */
    if (st != GV_OK) {
        gv_run_config_free(out);
        gv_config_result_free(r);
    } else if (!res) {
        gv_config_result_free(&local);
    }
    return st;
}

gv_status gv_run_config_load_resolved(const char *text, const char *label, gv_run_config *out) {
    gv_config_request req = {.schema = &gv_run_config_schema,
                             .path = label ? label : "resolved config",
                             .text = text,
                             .resolved = true};
    return gv_config_load(&req, out, NULL);
}

gv_status gv_run_config_dump(const gv_run_config *cfg, const gv_config_result *res, char **out) {
    return gv_config_dump(&gv_run_config_schema, cfg, res, out);
}

gv_status gv_run_config_hash(const gv_run_config *cfg, uint64_t *hash) {
    return gv_config_hash(&gv_run_config_schema, cfg, hash);
}

void gv_run_config_free(gv_run_config *cfg) { gv_config_free(&gv_run_config_schema, cfg); }
