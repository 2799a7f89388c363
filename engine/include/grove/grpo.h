/* `grove train`: Flow-GRPO alignment of an image flow model (ALGORITHMS.md §3, §9; DESIGN.md §1,
 * §3, §4). The main job of grove:
 *
 *     gv_run_config cfg;  GV_TRY(gv_run_config_load(path, sets, nsets, NULL, &cfg, NULL));
 *     gv_grpo_result res;
 *     gv_grpo_options opt = {.progress = stderr, .result = &res};
 *     GV_TRY(gv_grpo_run(&cfg, &opt));          // runs/<name>/: config.yaml, metrics.jsonl, *.h5
 *
 * Per iteration k (engine/train/grpo_loop.c):
 *   1. rollout (rollout.c): prompts_per_iteration prompts from the epoch-shuffled cursor, group.size
 *      chains each in the node pool (samplers/tree.h), ONE batched denoiser forward per step over
 *      the whole frontier (fixed micro-batch, CFG rows in the same forward), SDE steps 0..N-2, the
 *      ODE step N-1; x_T at (k, slot, node id, LATENT), step noise at (k, slot, node id, step);
 *      stored per node: x_step (backend), logp_old (host); rewards on p = clamp((x_N + 1)/2);
 *      advantages (advantage.h).
 *   2. training (grpo_train.c): units (sample, trained step) of kept samples, roots shuffled into
 *      minibatches of train.minibatch roots, one AdamW step each (grad clip, non-finite guard,
 *      EMA), chunks of <= micro_batch units through the SAME fixed-shape forward as the rollout,
 *      so rho == 1 exactly before the first update (logged as ratio_first_min / max).
 *   3. run directory (grpo_loop.c, rundir.h): metrics record, last.h5 (atomic, every iteration),
 *      iter-<k>.h5 every checkpoint.every, best.h5 by the first eval reward, evals (ODE, EMA,
 *      fixed seeds) at 0, every eval.every and at the end; resume from last.h5 (a changed config
 *      other than train.iterations is refused unless force); stop_after; *stop_flag (SIGINT).
 *   4. with dump.every > 0, on iterations k % dump.every == 0 (between 1 and 2): rollouts-<k>.h5
 *      (gv_grpo_dump_rollouts below; the dump.keep newest kept, 0 = all).
 * The reference of the KL term is the base model file (its flat weights in a second buffer),
 * recorded in the checkpoint's /meta by path and hash and reloaded on resume.
 *
 * Rewards: built-ins and plugins (rewards.h) mix freely; reward_transform win_rate turns a
 * pairwise plugin into Pref-GRPO win rates (ALGORITHMS.md §8).
 * Trained-step selection (step_select.c): timestep_fraction, random_fraction (per sample) or an
 * SDE window (fixed / random / progressive; steps outside it are ODE), step weights uniform or
 * noise-aware.
 * Trees and branch points (topology.kind tree / branch_points; credit branch / tempflow): the
 * rollout walks the topology's per-step batches (one forward per step over the whole frontier),
 * scores the leaves, and credit.h + prune.h give the (edge, advantage, weight) triples the same
 * training pass consumes, with one forward per kept parent serving all its kept children.
 * DenseGRPO (dense.c): credit dense completes every trained step's x_i by ODE and trains the
 * step gains; sampler.noise.kind calibrated uses ψ(i) — ψ0 = the flow_grpo s(i), calibrated by
 * dense.calibrate as a phase before the first iteration and stored in the checkpoint (/state psi).
 * Data parallel (dist.h; `mpirun -np R grove train`): run.shards = S cuts each iteration's P prompt
 * slots into S contiguous SHARDS (shard s holds slots [P·s/S, P·(s+1)/S) with their whole groups,
 * chains, trunks and trees), independent of the rank count; rank r of R owns the shards
 * [S·r/R, S·(r+1)/R). Every rank keeps the whole pool's bookkeeping (node ids, hence the noise
 * addresses, never depend on the rank) but computes only its shards' nodes: per shard and step one
 * batched forward of that shard's frontier rows, then scores that shard's samples (one reward
 * batch per shard). The rewards and statuses (and, for trees, the children's logp_old that the
 * prob-weighted fusion reads) are gathered bitwise, so every rank computes the same advantages,
 * credit triples, pruning, root shuffle and metrics. Training: a minibatch is train.minibatch
 * roots of the epoch's shuffle of ALL roots (as with one shard); shard s computes, into zeroed
 * gradients, the minibatch's roots that it owns (in shuffled order, chunks of <= micro_batch
 * rows, each unit normalized by the minibatch's total units), and the minibatch gradient is the
 * sum of the S shard gradients in shard order, ((g_0 + g_1) + g_2) + ... (gv_dist_shard_sum),
 * identical on every rank; the chunk statistics are gathered per shard and combined in shard
 * order. So one process with run.shards = S and `mpirun -np R` (R <= S) give bitwise the same
 * parameters and metrics (CPU, same threads per process); run.shards = 1 is the plain path.
 * DenseGRPO under shards: each shard ODE-completes its own chains and scores the completions
 * (one reward batch per shard and completed step), gathered like the rollout's rewards
 * (gv_grpo_score_shards), so every rank holds every R_i, computes the same gains and credit and,
 * in the calibration phase (whose batch of dense.calibration_prompts slots is cut into the same
 * run.shards shards; with fewer slots than shards some are empty), counts the same signs over the
 * whole batch: the same ψ as one process with the same run.shards — and, while no reward batch
 * fails (a failed batch masks one shard's samples), as run.shards 1, since a sample's rollout and
 * completions do not depend on its call's other rows.
 * Rank 0 alone writes config.yaml, metrics, checkpoints, evals, rollout dumps (the other ranks'
 * chains gathered to it at dump iterations only) and progress; every rank reads last.h5 on
 * resume; the parameter hash is compared at start and every dist.check_every iterations.
 * Not implemented (refused at setup with a message): rollout dumps of trees. */
#ifndef GROVE_GRPO_H
#define GROVE_GRPO_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include "grove/advantage.h"
#include "grove/backend.h"
#include "grove/denoiser.h"
#include "grove/evaluate.h"
#include "grove/image_model.h"
#include "grove/log.h"
#include "grove/noise_calibration.h"
#include "grove/rewards.h"
#include "grove/reward_outcome.h"
#include "grove/run_config.h"
#include "grove/rundir.h"
#include "grove/credit.h"
#include "grove/prune.h"
#include "samplers/topology.h"
#include "samplers/tree.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the plan (--dry-run) -------------------------------------------------------------------- */

typedef struct gv_grpo_plan {
    int prompts, group_size, samples;   /* P, G, P·G                                            */
    int steps, sde_steps, trained_steps;/* N, SDE steps (N-1 or the window), floor(f·sde + 1e-9) */
    int window_kind, window_size;       /* sampler.window (gv_window_kind; size 0 = none)         */
    int64_t nodes, edges, sde_edges;    /* of one iteration's pool                               */
    int64_t trained_units;              /* samples · trained steps (upper bound: all kept)        */
    int minibatches;                    /* per inner epoch: ceil(P·G / train.minibatch)           */
    int micro_batch, rows;              /* mb and rows per forward (2·mb with CFG)               */
    int train_cfg;                      /* 1: training forwards use CFG rows                     */
    int kl_forwards;                    /* 1: a reference forward per training chunk (beta > 0) */
    int64_t nfe_rollout;                /* denoiser rows of real samples (CFG pair = 2)          */
    int64_t nfe_train;                  /* training forwards incl. reference, real rows          */
    int64_t forwards_rollout, forwards_train; /* fixed-shape forward calls, padding included     */
    /* the topology's plan (grove/rollout_plan.h; chains included): rows, not CFG-doubled */
    int topology;                       /* gv_topology_kind                                      */
    int64_t roots, leaves, trainable_edges, trained_edges; /* trained: after pruning          */
    int64_t rows_rollout, rows_train, rows_train_no_reuse, rows_completion;
    /* DenseGRPO's calibration phase (dense.calibrate; once, before iteration 1): rounds of
       calibration_samples chains, rows = rounds x (rollout + completions of every SDE step) */
    int calibration_rounds, calibration_samples;
    int64_t rows_calibration;
    int64_t param_count;
    int64_t param_bytes;                /* params, grads, Adam m, v, EMA, reference              */
    int64_t latent_bytes;               /* the pool's latents                                   */
    int64_t activation_bytes;           /* rollout arena + training arena (measure passes)       */
    char refused[512];                  /* --dry-run of a config `grove train` refuses to run:
                                           why (the plan counts stand, memory is not measured) */
} gv_grpo_plan;

/* Count the plan of `cfg` for a model of D elements per image (no model needed); the memory
   fields are left 0 (gv_grpo_run with dry_run fills them from measure passes). */
gv_status gv_grpo_plan_count(const gv_run_config *cfg, gv_grpo_plan *out);

/* ---- running --------------------------------------------------------------------------------- */

typedef struct gv_grpo_result {
    int64_t iteration;     /* iterations done in total                      */
    int finished;          /* reached train.iterations                      */
    int resumed;
    int stopped;           /* stopped by stop_after or the stop flag        */
    double last_reward;    /* mean training reward of the last iteration    */
    double last_eval;      /* first eval reward at the last eval (NaN: none) */
    gv_grpo_plan plan;
    char run_dir[4096];
} gv_grpo_result;

typedef struct gv_grpo_options {
    int64_t stop_after;                   /* iterations this invocation; 0 = none           */
    int force;                            /* resume although the config changed             */
    int dry_run;                          /* fill result->plan (with memory) and return     */
    FILE *progress;                       /* progress bar stream; NULL = none               */
    const gv_backend *backend;            /* NULL: gv_backend_find by run.device (auto: cpu) */
    volatile sig_atomic_t *stop_flag;     /* != 0: stop at the next iteration boundary      */
    gv_grpo_result *result;               /* optional                                       */
} gv_grpo_options;

gv_status gv_grpo_run(const gv_run_config *cfg, const gv_grpo_options *opt);

/* ---- the job (shared by rollout.c, grpo_train.c, grpo_loop.c) --------------------------------- */

/* One fixed-shape UNet forward with per-row σ and the arena kept for a backward: the training
   side of the denoiser adapter (denoiser.h has the same row layout: rows [0, mb) conditional,
   [mb, 2 mb) null prompt when CFG). */
typedef struct gv_grpo_stage {
    int mb, rows, L;
    int64_t D;
    float *x, *v, *dv, *sigma;   /* backend (rows, D), (rows, D), (rows, D), (rows)       */
    int32_t *ids;                /* backend (rows, L)                                     */
    float *sigma_host;           /* (rows)                                                */
    int32_t *ids_host;           /* (rows, L)                                             */
    gv_arena arena;              /* forward + backward, sized by a measure pass           */
    gv_unet_saved saved;
} gv_grpo_stage;

/* step_select.c: the SDE steps of one iteration (ALGORITHMS.md §3 Trained steps, §7 windows). */
typedef struct gv_grpo_step_plan {
    int window_start;                           /* l of the SDE window; -1 = no window          */
    int n_sde;                                  /* SDE steps this iteration                     */
    uint8_t sde[GV_SAMPLER_MAX_STEPS];          /* 1: step i is an SDE step (else ODE)          */
    int32_t sde_list[GV_SAMPLER_MAX_STEPS];     /* the SDE steps, ascending                     */
} gv_grpo_step_plan;

/* One reward's outcome on one rollout batch (a shard's samples), kept per (shard, reward) so that
   the reward_failures streak is replayed in shard order on every rank (rollout.c): whether a run
   stops, and where, does not depend on the rank count (grove/reward_outcome.h). */
typedef gv_reward_outcome gv_grpo_batch_outcome;

typedef struct gv_grpo_job {
    const gv_run_config *cfg;
    const gv_backend *be;
    gv_ctx *ctx;
    uint32_t seed;
    gv_image_model model;        /* params with grads, Adam m/v and EMA                     */
    gv_image_model base;         /* the base model file: base.params.values = the reference */
    int P, G, S, N, T, mb, L;    /* prompts, group, samples, steps, trained steps, ...       */
    int64_t D;
    int train_cfg;               /* training forwards with CFG rows                         */
    float guidance;
    float sigmas[GV_SAMPLER_MAX_STEPS + 1];
    gv_noise_spec noise;
    /* prompts */
    char **train_text, **eval_text;
    int n_train, n_eval;
    int32_t *train_ids, *eval_ids;  /* (n, L)                                              */
    int *train_labels, *eval_labels;
    gv_data_cursor cursor;
    /* rollout */
    gv_denoiser den;             /* theta = model.params.values (raw weights)                */
    gv_tree tree;
    float *latents;              /* backend (S·(N+1), D): node i at i·D                     */
    float *v, *eps, *logp;       /* backend (S, D), (S, D), (S)                              */
    float *logp_host;            /* (S)                                                     */
    gv_grpo_step_plan step_plan; /* this iteration's SDE steps (set by gv_grpo_rollout)      */
    int32_t *trained;            /* (S, T) trained steps of each sample, ascending          */
    float *step_w;               /* (S, T) their step weights ω (ALGORITHMS.md §4)           */
    int32_t *sample_ids;         /* (S, L)                                                  */
    int32_t *sample_labels;      /* (S)                                                     */
    int32_t *sample_prompt;      /* (S) slot                                                */
    int64_t *sample_index;       /* (S) prompt index in data.prompts                        */
    const char **sample_text;    /* (S) prompt strings (borrowed from train_text), for plugins */
    /* rollouts.h5 dump (dump.every > 0; allocated at setup, written only on dump iterations) */
    int dump_now;                /* 1: the current rollout keeps every step's velocity      */
    float *dump_v;               /* backend (N·S, D): step i's velocities at i·S·D          */
    float *dump_mu;              /* backend (D): one μ = cx·x + cv·v at a time               */
    float *p_host;               /* (S, D)                                                  */
    /* trees and branch points (topology.kind != chains; DESIGN.md §4): the rollout expands the
       pool by the topology's per-step batches, rewards are scored at the leaves (x_N), and the
       credit scheme + pruning turn them into j->credit (rollout.c) */
    int tree_mode;               /* 1: topology.kind is branch_points or tree               */
    gv_topology topo;            /* this iteration's topology (tree: the step plan's SDE mask) */
    int32_t max_rows, max_children, n_leaves; /* widest step, widest expansion, leaves      */
    gv_tree_action *actions;     /* (max_rows) expansion scratch                            */
    int32_t *row_ids;            /* host (max_rows, L) the frontier rows' prompt ids         */
    int32_t *leaf_labels, *leaf_prompt; /* (n_leaves) the leaves' labels and prompt slots   */
    const char **leaf_text;      /* (n_leaves) the leaves' prompt strings, for plugins        */
    float *node_reward;          /* (capacity) weighted reward of each leaf, by pool index   */
    uint8_t *node_valid;         /* (capacity) 1: an unmasked leaf                           */
    gv_credit_work credit_work;
    gv_prune_work prune_work;
    gv_credit_stats credit_stats;
    gv_prune_stats prune_stats;
    /* the iteration's training triples (edge, advantage, weight), sorted by (root, parent,
       child), for chains too (grpo_train.c builds them from the trained steps) */
    gv_credit_list credit;
    int32_t *root_first;         /* (S + 1) edges of root r: [root_first[r], root_first[r+1]) */
    int unit_cap;                /* training units per chunk: micro_batch x children/parent  */
    gv_step_args *unit_args;     /* (unit_cap) host: each unit's step coefficients          */
    void *chunk_rows, *chunk_units; /* grpo_train.c's row (mb) and unit (unit_cap) staging  */
    float *u_kl_row, *u_dkl_row; /* backend (mb): a parent row's KL and its gradient        */
    /* DenseGRPO (dense.c): ψ(i) of the calibrated noise (noise.psi points at cal.psi), the
       completion rewards R (S, N+1) of the chains' x_i and their staging */
    gv_psi_calibration cal;
    int calibrating;             /* 1 during the calibration phase: rollouts without credit   */
    float *dense_R;              /* (S, N+1)                                                 */
    uint8_t *dense_Rv;           /* (S, N+1)                                                 */
    float *dense_x;              /* backend (S, D) a completion in flight                    */
    float *dense_scores;         /* (S, n_rewards)                                           */
    uint8_t *dense_status;       /* (S, n_rewards)                                           */
    /* rewards */
    gv_reward *rewards, *eval_rewards;
    gv_image_model *reward_models, *eval_reward_models; /* classifier models (kind != 0 used) */
    double *weights;             /* (n_rewards)                                             */
    float *scores;               /* (S, max(R, R_eval)) raw rewards                         */
    float *scores_tmp;           /* (max(S, n_eval_samples))                                */
    uint8_t *status, *status_tmp;
    float *advantage;            /* (S)                                                     */
    uint8_t *valid;              /* (S)                                                     */
    int64_t pairwise_judged, pairwise_imputed; /* win_rate judgements of the last gv_grpo_score */
    char *meta_text;             /* (max(S, n_eval_samples), GV_GRPO_META_LEN) per-sample JSON  */
    const char **meta;           /* (max(S, n_eval_samples)) pointers into meta_text            */
    /* training */
    gv_grpo_stage stage;
    float *u_dv, *u_v, *u_mu, *u_mu_ref, *u_dmu;  /* backend (mb, D)                     */
    float *u_logp, *u_logp_old, *u_adv, *u_weight, *u_kl, *u_var, *u_ratio;  /* (mb)       */
    float *u_dlogp, *u_dkl, *u_stats, *u_loss, *u_one;
    float *h_unit;               /* host (mb) staging                                       */
    int32_t *roots;              /* (S) shuffled root order                                 */
    /* eval */
    gv_judge judge;              /* the first eval reward's classifier (accuracy, gold prob) */
    int judge_ok;
    int n_eval_samples;
    float *eval_x;               /* backend (n_eval_samples, D)                             */
    float *eval_p;               /* host (n_eval_samples, D)                                */
    int32_t *eval_sample_ids;    /* (n_eval_samples, L)                                     */
    int32_t *eval_sample_labels; /* (n_eval_samples)                                        */
    const char **eval_sample_text; /* (n_eval_samples) prompt strings, for plugins           */
    int32_t *eval_sample_group;  /* (n_eval_samples) eval prompt index = the group            */
    float *eval_probs;           /* host (n_eval_samples, K)                                */
    gv_denoiser eval_den;        /* theta = model.params.ema                                */
    /* data parallel (see the top of this file): this rank's shards [shard_lo, shard_hi) */
    int shards, shard_lo, shard_hi;
    int32_t *root_shard;         /* (S) the shard of each root (its prompt slot's)            */
    float **shard_grads;         /* (shard_hi − shard_lo) backend gradient buffers; with one
                                    shard in all, params.grads itself                       */
    void *shard_acc;             /* grpo_train.c's per-shard minibatch statistics (shards)    */
    float *logp_pack;            /* host (pool capacity): trees' logp_old exchange             */
    gv_grpo_batch_outcome *batch_outcomes; /* host (shards, n_rewards), gathered every rollout  */
} gv_grpo_job;

/* The roots [*lo, *hi) of shard `shard` (its prompt slots' G roots each). */
void gv_grpo_shard_roots(const gv_grpo_job *j, int shard, int *lo, int *hi);
/* j->P = P prompt slots per rollout (j->S = P·G; P at most the configured
   group.prompts_per_iteration, which sized every buffer) and j->root_shard of that batch: the
   iteration's P at setup, DenseGRPO's calibration batch while it runs (dense.c). With fewer slots
   than shards some shards are empty. */
void gv_grpo_set_batch(gv_grpo_job *j, int P);
/* 1 when `root` belongs to one of this rank's shards. */
static inline int gv_grpo_root_is_local(const gv_grpo_job *j, int32_t root) {
    return j->root_shard[root] >= j->shard_lo && j->root_shard[root] < j->shard_hi;
}

/* Per-iteration training statistics (host). */
typedef struct gv_grpo_train_stats {
    double ratio_mean, ratio_min, ratio_max, clip_above, clip_below, approx_kl, kl;
    double ratio_first_min, ratio_first_max;  /* first minibatch of the first inner epoch   */
    double loss, grad_norm;                   /* mean over optimizer steps / last norm       */
    int64_t units, steps_taken, steps_skipped, nfe_train;
    int stop_skips;                           /* 1: train.max_skips consecutive skips hit    */
} gv_grpo_train_stats;

/* Optimizer state that checkpoints carry. */
typedef struct gv_grpo_state {
    int64_t iteration, opt_step, ema_updates, skips_in_a_row;
    double best_eval;        /* the first eval reward's best mean (-inf: none yet)          */
} gv_grpo_state;

/* grpo_setup.c: build everything a run needs (model, reference, prompts, rewards, buffers,
   arenas); teardown frees what setup built (also after a failed setup). */
gv_status gv_grpo_setup(gv_grpo_job *j, const gv_run_config *cfg, const gv_backend *be);
void gv_grpo_teardown(gv_grpo_job *j);
/* The memory fields of the plan from the built job (arena measure passes). */
void gv_grpo_plan_memory(const gv_grpo_job *j, gv_grpo_plan *p);

#define GV_GRPO_MAX_EVAL_REWARDS 8
#define GV_GRPO_META_LEN 160 /* one sample's metadata JSON for plugins (grove_reward_batch) */
typedef struct gv_grpo_eval_result {
    int n;
    int64_t nfe;
    double mean[GV_GRPO_MAX_EVAL_REWARDS];   /* per eval reward, over unmasked samples       */
    double std[GV_GRPO_MAX_EVAL_REWARDS];    /* sample std (n - 1) of the same values        */
    int masked[GV_GRPO_MAX_EVAL_REWARDS];
    double accuracy, gold_prob;              /* first eval reward a classifier; else NaN     */
} gv_grpo_eval_result;
/* ODE, EMA weights, fixed seeds (see grpo_setup.c). Needs n_eval_samples > 0. */
gv_status gv_grpo_eval(gv_grpo_job *j, gv_grpo_eval_result *out);

/* rollout.c: x_T, the N steps over the pool, rewards and advantages of iteration `iteration`
   for the prompt slots' prompt indices `prompt_of_slot` (P). */
typedef struct gv_grpo_rollout_stats {
    gv_advantage_result adv;
    gv_reward_moments *per_reward;  /* (n_rewards), caller buffer                            */
    int64_t nfe;
    int64_t pairwise_judged, pairwise_imputed; /* win_rate judgements, failed ones imputed 0.5 */
    int64_t nfe_completion;         /* DenseGRPO's ODE completions (rows, CFG pair = 2)      */
    int64_t *failed_batches;        /* (n_rewards), caller buffer or NULL: each reward's failed
                                       plugin batches so far, summed over the ranks          */
} gv_grpo_rollout_stats;

/* dense.c (ALGORITHMS.md §5): after a chain rollout, the ODE completions of the trained steps'
   x_i and x_{i+1}, their rewards R_i, and the step-gain triples into j->credit (nfe += the
   completions' rows). */
gv_status gv_grpo_dense_credit(gv_grpo_job *j, int64_t *nfe);
/* The ψ(i) calibration phase: the remaining rounds of j->cal, each logged to `m` (may be NULL). */
gv_status gv_grpo_calibrate(gv_grpo_job *j, gv_metrics *m);

gv_status gv_grpo_rollout(gv_grpo_job *j, uint32_t iteration, const int64_t *prompt_of_slot,
                          gv_grpo_rollout_stats *out);
/* rollouts.h5 (DESIGN.md §1) of the rollout just done (j->dump_now was set for it), atomically
   through the checkpoint writer (checkpoint.h), K = steps 0..K-1 up to the last SDE step (with an
   SDE window the ODE steps before it are stored with std 0, logp_old 0 and sde 0):
     /steps/x, /steps/x_next, /steps/v, /steps/mu   float32 (S, K, D): x_i, x_{i+1}, the rollout's
                                                    velocity, μ = cx·x_i + cv·v (the trainer's ops)
     /steps/logp_old                                float32 (S, K)
     /steps/sigma, sigma_next, std, cx, cv, sde     float32 (K): σ_i, σ_{i+1}, the step's std and
                                                    mean coefficients (the same for every sample),
                                                    1 for an SDE step
     /state  attributes iteration, samples, prompts, group_size, steps (N), stored_steps (K),
             elements (D), n_rewards, logp_kind (GV_LOGP_*); int64 arrays (S) prompt (index in
             data.prompts), slot (prompt slot = advantage group), member (index in the group),
             valid (1 = trained), reward_status (S·n_rewards, GV_REWARD_ITEM_*); float32 arrays
             advantage (S), rewards (S·n_rewards: raw scores, row-major), weights (n_rewards)
     /config the resolved config (`yaml` may be NULL: none); /meta "content" = "rollouts".
   The host staging is allocated for the call and freed. Under several ranks every rank calls it:
   the other ranks' chains (latents, velocities, logp_old) are gathered into rank 0's pool
   (gv_dist_gather_to_rank0), and rank 0 alone writes `path` — the same file as one process
   with the same run.shards. */
gv_status gv_grpo_dump_rollouts(gv_grpo_job *j, uint32_t iteration, const char *yaml,
                                const char *path);

/* rollout.c: score the n samples of the pool nodes [begin, begin + n) (sorted by root: a level
   of the chains, the leaves of trees), whose images are the backend buffer x (n, D) in node order
   (the pool's latents, or DenseGRPO's completions of those nodes), one reward batch per local
   shard (gv_grpo_score's masking and reward_failures, the streak replayed over the batches in
   shard order on every rank), then every sample's scores and statuses (n, n_rewards) gathered
   bitwise to every rank. labels, prompts and groups are indexed by sample, metadata is j->meta.
   `out` (NULL: not wanted) gets the win-rate judgements and failed batches summed over the
   ranks. Every rank calls it. */
gv_status gv_grpo_score_shards(gv_grpo_job *j, int32_t begin, int32_t n, const float *x,
                               const int32_t *labels, const char *const *prompts,
                               const int32_t *groups, float *scores, uint8_t *status,
                               gv_grpo_rollout_stats *out);
/* Score n host images (n, D) with labels, prompt strings and group ids (n each) with reward
   instances r (count) into scores (n, count) and status (n, count). With reward_transform
   win_rate a pairwise plugin's column is its win rate within each group (rewards.h; judged and
   imputed judgements in j->pairwise_*). A plugin batch that fails (score returns an error) is
   masked (status FAILED), reported on stderr and counted in r->failed_batches;
   reward_failures.max_consecutive such failures in a row of one reward stop the run with
   GV_ERR_PLUGIN (max_consecutive 0 behaves as 1). metadata (n JSON objects, may be NULL) goes to
   plugins: rollouts {"iteration", "seed", "slot", "member", "prompt_index", "checkpoint": hash of
   the raw weights that sampled}, evals {"eval": true, "seed", "prompt_index", "seed_index",
   "weights": "ema"}. */
gv_status gv_grpo_score(gv_grpo_job *j, gv_reward *r, int count, int n, const float *p_host,
                        const int32_t *labels, const char *const *prompts, const int32_t *groups,
                        const char *const *metadata, float *scores, uint8_t *status);

/* Reward instances of `specs` (count) on ctx, as training and evaluation build them (also used by
   the gallery): a classifier reward's `model:` is "" / "reward", "gold" or a checkpoint path,
   resolved for `dataset`; classifier models go to *models (count; kind != 0 where loaded).
   `what` names the list in errors ("rewards", "eval_rewards"). Free with gv_grpo_rewards_free,
   also after a failure. */
gv_status gv_grpo_rewards_create(gv_ctx *ctx, const char *dataset, int micro_batch,
                                 const gv_reward_spec *specs, int count, const char *what,
                                 gv_reward **out, gv_image_model **models);
/* The same for samples of `kind` (GROVE_SAMPLES_IMAGE / _TOKENS): plugins are loaded for it (the
   masked-diffusion trainer's token batches). */
gv_status gv_grpo_rewards_create_kind(gv_ctx *ctx, const char *dataset, int micro_batch,
                                      const gv_reward_spec *specs, int count, const char *what,
                                      uint32_t kind, gv_reward **out, gv_image_model **models);
void gv_grpo_rewards_free(gv_reward *r, gv_image_model *models, int count);
/* The key reward instance k of `rewards` has in metrics.jsonl ("classifier", "classifier_2", ...). */
void gv_grpo_reward_key(const gv_reward *rewards, int k, char *out, size_t n);

/* step_select.c (see there for the rules). The window's first step l of `iteration` (-1: none;
   GV_ERR_CONFIG when the window does not fit the stochastic steps). */
gv_status gv_grpo_window_start(const gv_run_config *cfg, uint32_t seed, uint32_t iteration,
                               int *start);
/* SDE steps per iteration (window size, or the schedule's stochastic steps) and trained steps
   per sample T = floor(f·SDE steps + 1e−9), without a model. */
int gv_grpo_sde_step_count(const gv_run_config *cfg);
int gv_grpo_trained_step_count(const gv_run_config *cfg);
gv_status gv_grpo_step_plan_make(const gv_run_config *cfg, const gv_noise_spec *noise,
                                 const float *sigmas, uint32_t seed, uint32_t iteration,
                                 gv_grpo_step_plan *out);
/* Step i's coefficients under j->step_plan: the schedule's inside the SDE steps, else ODE. */
gv_status gv_grpo_step_coeffs(const gv_grpo_job *j, int i, gv_step_args *a, int *is_sde);
/* rollout.c: step i's SDE coefficients whatever the window (split children of a Mix tree are SDE
   outside it), std multiplied by std_scale (the split density's lambda, or 1). */
gv_status gv_grpo_sde_coeffs(const gv_grpo_job *j, int i, float std_scale, gv_step_args *a);
/* steps (T) = the trained steps of chain (slot, member): the first T SDE steps, or a random T
   (train.random_fraction > 0), ascending. */
gv_status gv_grpo_trained_steps(const gv_run_config *cfg, const gv_grpo_step_plan *plan,
                                uint32_t seed, uint32_t iteration, int slot, int member, int T,
                                int32_t *steps);
/* w (T) = the step weights of `steps` (train.step_weight; noise_aware: mean 1). */
gv_status gv_grpo_step_weights(const gv_grpo_job *j, const int32_t *steps, int T, float *w);

/* grpo_train.c */
gv_status gv_grpo_stage_create(gv_grpo_stage *st, gv_ctx *c, const gv_unet *unet, int mb, int cfg);
void gv_grpo_stage_free(gv_grpo_stage *st, const gv_backend *be);
gv_status gv_grpo_train_alloc(gv_grpo_job *j);
gv_status gv_grpo_train_iteration(gv_grpo_job *j, uint32_t iteration, gv_grpo_state *st,
                                  gv_grpo_train_stats *out);

#ifdef __cplusplus
}
#endif
#endif
