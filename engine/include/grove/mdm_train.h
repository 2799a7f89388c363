/* `grove train` for masked-diffusion models (ALGORITHMS.md §10): GRPO on Sudoku with the diffu_grpo,
 * coupled and coupled_pair estimators (grove/mdm_grpo.h). `grove train CONFIG` comes here when the
 * checkpoint named by CONFIG's model.checkpoint is an mdt (gv_train_config_model_kind).
 *
 * Config (its own schema, engine/train/mdm_train_config.c; the binder of grove/config.h):
 *   run        name, dir, seed, threads, device, shards (data parallel, below)
 *   model      checkpoint (an mdt export, e.g. models/weights/sudoku-mdt-s.h5)
 *   data       dataset (sudoku4 | sudoku9), path, blanks_min/blanks_max (training puzzles of the
 *              train split with that many blanks)
 *   sampler    steps (0 = one commit per blank: the largest blank count of the iteration)
 *   algorithm  estimator, aggregation, advantage (zscore | group_mean | leave_one_out), credit
 *              (sequence | cell: gv_mdm_credit_kind below), order_logp (trajectory only, with a
 *              fixed sampler.steps: the policy log-prob includes the sampler's discarded draws and
 *              its Plackett–Luce choice of the commits, gv_mdm_order), clip_range,
 *              beta (k3 KL to the initial model; 0 = no reference forwards), prompt_mask, t_lo, t_hi,
 *              adv_clip
 *   group      size (samples per puzzle), prompts_per_iteration
 *   train      iterations, lr, weight_decay, grad_clip, minibatch (sequences per optimizer step),
 *              inner_epochs (μ), ema_decay (0: the EMA copy equals the weights)
 *   eval       every, puzzles, blanks (a test level), batch, at_start (eval before the first iteration)
 *   checkpoint every
 *   co_grpo    enabled, knobs, phase_len, sigma_decay_iterations, lr, hidden (Co-GRPO's schedule
 *              policy, grove/mdm_schedule.h; needs sampler.steps > 0)
 *   dist       timeout_s, eval_timeout_s, check_every (grove/dist.h)
 *   rewards, rewards_mode, reward_failures   as the image trainer's (run_config.h, grpo.h): a list of
 *              `{builtin: sudoku}` and token-batch plugins (`{plugin: x.so, weight, config}`, loaded
 *              for GROVE_SAMPLES_TOKENS; per-sample metadata {"iteration", "seed", "slot",
 *              "member"}), combined by gv_advantage_compute; a failed plugin batch is masked and
 *              counted (grove/reward_outcome.h; "reward": {"<name>": {"failed_batches": n}} in the
 *              iteration record). No `rewards:` key = the built-in `sudoku` reward alone, weight 1.
 * The three algorithm configs set their keys directly (no preset layer).
 *
 * One iteration (ALGORITHMS.md §3 structure, §10 estimators): P puzzles from an epoch-shuffled
 * cursor over the training puzzles, G samples each with the masked sampler at the current weights
 * (Philox (seed, SAMPLER) at (iteration, slot = sample)); the `sudoku` reward; advantages by
 * gv_advantage_compute with the algorithm's centring; for each inner epoch e a fresh stored view
 * draw (grove/mdm_grpo.h, node = e) and a shuffle of the sequences into minibatches (TRAIN,
 * SHUFFLE, node = e); logp_old (and the reference's ℓ̂) evaluated right after the rollout over the
 * SAME minibatches, so ρ == 1 exactly at the first step; then one AdamW step per minibatch.
 * Run directory as `grove pretrain`: config.yaml, metrics.jsonl, last.h5 (rundir.h), plus
 * eval-<iteration>.csv per eval (test row, solved, reward per puzzle: paired comparisons); resume is
 * bit-identical (everything random is addressed by (seed, iteration, ...), the cursor is state).
 * Co-GRPO (co_grpo.enabled): rollouts from the joint policy (the sampler's step hook asks π_φ for
 * every step's knobs); iterations alternate in phases of co_grpo.phase_len, φ first: a φ phase takes
 * train.inner_epochs full-batch φ steps on the per-step clipped objective (θ frozen, no estimator
 * passes), a θ phase trains θ exactly as above (φ frozen): the estimator's token objective, NOT §10's
 * per-step unit of the joint log-prob (in a φ phase ρ_θ == 1, so φ's per-step objective is the joint
 * one exactly; in a θ phase the per-step unit is left undone). Both use the same advantages. φ's weights,
 * Adam moments and step count are in last.h5 (/schedule); every eval samples with the mean schedule
 * and writes it to <run dir>/schedule.csv (and prints it).
 * Data parallel (dist.h; `mpirun -np R grove train`), the image trainer's scheme (grpo.h): run.shards
 * = S cuts the P puzzle slots into S contiguous shards of whole groups (shard s: slots
 * [P·s/S, P·(s+1)/S)); rank r of R owns shards [S·r/R, S·(r+1)/R). Per shard: one sampler call over
 * its samples (draws addressed by the sample's slot, never by rank; Co-GRPO's actions likewise),
 * its rewards; the rewards are gathered bitwise, so every rank computes the same advantages,
 * views, minibatch shuffle and metrics. A minibatch (train.minibatch sequences of the epoch's
 * shuffle of ALL sequences) is ordered by shard (stably); each shard runs logp_old and the
 * training forward / backward over its rows alone, into zeroed gradients, with token weights of
 * the whole minibatch; the shard gradients are summed in shard order (gv_dist_shard_sum) and the
 * per-shard statistics gathered and combined in shard order. A φ step likewise: φ's gradient per
 * shard over its samples (normalized by the units of all shards), summed in shard order. So one
 * process with run.shards = S and `mpirun -np R` (R <= S) give bitwise the same θ and φ (CPU, same
 * threads per process); run.shards = 1 is the plain single-process path. Rank 0 alone writes
 * config.yaml, metrics, last.h5, evals (eval-<k>.csv, schedule.csv) and progress; every rank reads
 * last.h5 on resume; the parameter hash (θ and φ) is compared at start and every dist.check_every
 * iterations; the other ranks wait out rank 0's evals under dist.eval_timeout_s.
 * Deliberately not here: the schedule policy's math (mdm_schedule.c), image models (grpo.h). */
#ifndef GROVE_MDM_TRAIN_H
#define GROVE_MDM_TRAIN_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "grove/backend.h"
#include "grove/dist_config.h"
#include "grove/image_model.h"
#include "grove/run_config.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gv_mdm_run_section { char *name, *dir; int64_t seed; int threads, device, shards; } gv_mdm_run_section;
typedef struct gv_mdm_model_section { char *checkpoint; } gv_mdm_model_section;
typedef struct gv_mdm_data_section { int dataset; char *path; int blanks_min, blanks_max; } gv_mdm_data_section;
typedef struct gv_mdm_sampler_section {
    int steps;
    double tau_r; /* < 0: the hand-made schedule 1 - j/s; else this Gumbel scale at every step */
} gv_mdm_sampler_section;
typedef struct gv_mdm_algorithm_section {
    int estimator, aggregation, advantage, credit;
    bool order_logp; /* trajectory: score the commit order too (grove/mdm_grpo.h gv_mdm_order) */
    double clip_range, beta, prompt_mask, t_lo, t_hi, adv_clip;
} gv_mdm_algorithm_section;
typedef struct gv_mdm_group_section { int size, prompts_per_iteration; } gv_mdm_group_section;
typedef struct gv_mdm_train_section {
    int64_t iterations;
    double lr, weight_decay, grad_clip, ema_decay;
    int minibatch, inner_epochs;
} gv_mdm_train_section;
typedef struct gv_mdm_eval_section { int every, puzzles, blanks, batch; bool at_start; } gv_mdm_eval_section;
typedef struct gv_mdm_checkpoint_section { int every; } gv_mdm_checkpoint_section;
typedef struct gv_mdm_co_grpo_section {
    bool enabled;
    char *knobs; /* comma-separated learned knobs: r, tau_s, tau_r */
    int phase_len, hidden;
    int64_t sigma_decay_iterations;
    double lr;
} gv_mdm_co_grpo_section;

typedef struct gv_mdm_train_config {
    gv_mdm_run_section run;
    gv_mdm_model_section model;
    gv_mdm_data_section data;
    gv_mdm_sampler_section sampler;
    gv_mdm_algorithm_section algorithm;
    gv_mdm_group_section group;
    gv_mdm_train_section train;
    gv_mdm_eval_section eval;
    gv_mdm_checkpoint_section checkpoint;
    gv_mdm_co_grpo_section co_grpo;
    gv_dist_section dist;
    int rewards_mode;         /* gv_rewards_mode (run_config.h)                      */
    gv_reward_spec *rewards;  /* none: the built-in `sudoku` reward, weight 1         */
    int n_rewards;
    gv_reward_failures_section reward_failures;
} gv_mdm_train_config;

typedef enum { GV_MDM_ADV_ZSCORE = 0, GV_MDM_ADV_GROUP_MEAN, GV_MDM_ADV_LEAVE_ONE_OUT } gv_mdm_adv_kind;
/* algorithm.credit: what a token's advantage is in θ's objective. SEQUENCE: every completion token
   gets its sample's A (d1, DiffuCoder). CELL: token p of sample n gets c_np − mean over its group of
   c_·p, c = 1 when the cell holds the solution's digit (the per-cell term of the `sudoku` reward;
   gv_mdm_cell_advantages): cells the group agrees on train nothing. The samples the advantage step
   drops (a failed reward, a group of equal rewards) get none either; Co-GRPO's φ keeps the sample's
   A; a `rewards:` list other than {builtin: sudoku} and aggregation balanced are refused. */
typedef enum { GV_MDM_CREDIT_SEQUENCE = 0, GV_MDM_CREDIT_CELL } gv_mdm_credit_kind;

gv_status gv_mdm_train_config_load(const char *path, const char *const *sets, int nsets,
                                   gv_mdm_train_config *out);
gv_status gv_mdm_train_config_load_resolved(const char *text, const char *label,
                                            gv_mdm_train_config *out);
gv_status gv_mdm_train_config_dump(const gv_mdm_train_config *c, char **out);
/* The same load, with the origin of every value in *res (free with gv_config_result_free), and
   the dump with each value's origin as a comment: what `grove config` prints for an mdt model. */
gv_status gv_mdm_train_config_load_origins(const char *path, const char *const *sets, int nsets,
                                           gv_mdm_train_config *out, gv_config_result *res);
gv_status gv_mdm_train_config_dump_origins(const gv_mdm_train_config *c,
                                           const gv_config_result *res, char **out);
void gv_mdm_train_config_free(gv_mdm_train_config *c);

/* The kind of the model a `grove train` config names in model.checkpoint (after --set edits of
   model.checkpoint), without binding the rest of the file. */
gv_status gv_train_config_model_kind(const char *path, const char *const *sets, int nsets,
                                     gv_model_kind *kind);
/* Which trainer binds a `grove train` / `grove config` config: *mdm = 1 when its model.checkpoint
   is an mdt. A file that is not YAML or names no checkpoint is left to the image binder, which
   reports it (*mdm = 0, GV_OK); a named checkpoint that cannot be read is this call's error. */
gv_status gv_train_config_is_mdm(const char *path, const char *const *sets, int nsets, int *mdm);

/* `grove train --dry-run` of a masked-diffusion config: what one iteration costs, from the loaded
   model and data (nothing is written). Forwards are counted in sequences (rows of T tokens). */
typedef struct gv_mdm_train_plan {
    int puzzles, group, samples;      /* P, G, N = P·G per iteration                        */
    int steps, views, T, vocab;       /* sampler steps; estimator views per sequence         */
    int inner_epochs, minibatch, optimizer_steps; /* AdamW steps per iteration              */
    int64_t rollout_rows;             /* N·steps                                             */
    int64_t logp_old_rows, ref_rows;  /* E·N·views each (ref: 0 without the KL)              */
    int64_t train_rows;               /* E·N·views, forward and backward                     */
    int64_t eval_rows;                /* per eval: eval.puzzles·steps (0: no eval)           */
    int64_t train_puzzles;            /* training puzzles within [blanks_min, blanks_max]    */
    int64_t params;                   /* θ's parameter count (padding excluded)              */
    double param_mib, views_mib;      /* θ's buffers (values, grads, Adam m, v, EMA, ref);
                                         stored views and coefficients (E·N·views·T), with
                                         order_logp the order record too                     */
    int co_grpo, shards;
} gv_mdm_train_plan;

typedef struct gv_mdm_train_result {
    char run_dir[4096];
    gv_mdm_train_plan plan;            /* filled by a dry run                             */
    int64_t iteration;
    int resumed, finished;
    double first_solve_rate, last_solve_rate; /* evals of this call (NAN when none)       */
    double last_reward;                      /* mean rollout reward of the last iteration */
} gv_mdm_train_result;

typedef struct gv_mdm_train_options {
    const gv_backend *backend; /* NULL: run.device          */
    int force;                 /* resume under a changed config */
    int64_t stop_after;        /* iterations in this call; 0 = all */
    int dry_run;               /* set up, fill result->plan, write nothing, run nothing */
    FILE *progress;            /* per-iteration line, or NULL */
    volatile sig_atomic_t *stop_flag;
    gv_mdm_train_result *result;
} gv_mdm_train_options;

gv_status gv_mdm_train_run(const gv_mdm_train_config *cfg, const gv_mdm_train_options *opt);

#ifdef __cplusplus
}
#endif
#endif
