/* The masked-diffusion trainer's run state and the pieces of mdm_train.c kept in their own files
 * (a private header of engine/train, not API): the job (everything one run holds), its setup
 * (mdm_setup.c: dataset, models, buffers, the `rewards:` list, Co-GRPO's policy) and the data
 * parallel pieces (mdm_shards.c: scoring per shard with the gathers, minibatches ordered by shard,
 * per-shard gradients and statistics, the φ step over shards). grove/mdm_train.h describes the
 * behaviour. Deliberately not here: the loop, checkpoints, evals and metrics (mdm_train.c). */
#ifndef GROVE_ENGINE_TRAIN_MDM_JOB_H
#define GROVE_ENGINE_TRAIN_MDM_JOB_H

#include <stdint.h>

#include "grove/grpo.h"
#include "grove/log.h"
#include "grove/mdm.h"
#include "grove/mdm_grpo.h"
#include "grove/mdm_schedule.h"
#include "grove/mdm_train.h"
#include "grove/reward_outcome.h"

/* Bytes of one sample's metadata JSON ({"iteration": …, "seed": …, "slot": …, "member": …}). */
#define GV_MDM_META_LEN 96

/* Everything one run holds; host arrays sized at setup (nothing allocated inside an iteration). */
typedef struct gv_mdm_job {
    const gv_mdm_train_config *cfg;
    const gv_backend *be;
    gv_ctx *ctx;
    uint32_t seed;
    gv_dataset data;
    gv_image_model model, ref;
    int have_ref;
    gv_mdm_runner runner;
    gv_mdm_policy pol;
    int S, T, V, P, G, N, views, E, mb;
    int32_t mask_id;
    int64_t *train_rows, n_train_rows; /* train-split rows with blanks in range */
    int64_t *prompt_rows;              /* (P)                                    */
    int32_t *tokens, *group;           /* (N, T), (N)                            */
    uint8_t *completion, *valid;       /* (N, T), (N)                            */
    float *reward, *adv;               /* (N)                                    */
    float *cell_adv;                   /* credit cell: (N, T) per-token advantages, this rank's
                                          samples only; NULL under credit sequence */
    int32_t *ids;                      /* (E, N, views, T) stored views          */
    float *coef, *t;                   /* (E, N, views, T), (E, N)               */
    int32_t *order;                    /* (E, N) minibatch order per epoch       */
    int32_t *commit_step;              /* trajectory: (N, T) the rollout's record; NULL otherwise */
    /* order_logp: the rest of the record (gv_mdm_order), per sequence and gathered per minibatch */
    int32_t *drawn, *commit_rank;      /* (N, views, T), (N, T); NULL otherwise  */
    float *tau_r;                      /* (N, views)                             */
    int32_t *mb_drawn, *mb_rank, *mb_cs; /* (mb, views, T), (mb, T), (mb, T)     */
    float *mb_tau;                     /* (mb, views)                            */
    float *old, *refl;                 /* (E, N, T) ℓ̂_old and ℓ̂_ref, in order    */
    /* one minibatch, gathered */
    int32_t *mb_ids, *mb_tok;
    float *mb_coef, *mb_ell, *mb_w, *mb_adv, *mb_dell;
    float *mb_cell_adv;                /* credit cell: (mb, T); NULL otherwise   */
    uint8_t *mb_comp, *mb_valid;
    void *scratch;
    size_t scratch_bytes;
    int steps;
    int64_t *eval_rows, n_eval;
    uint8_t *eval_solved;  /* (n_eval) per-puzzle outcome of the last eval */
    float *eval_reward;    /* (n_eval)                                     */
    char run_dir[4096];
    int co;              /* Co-GRPO on                       */
    gv_schedule sched;   /* π_φ (co)                          */
    char schedule_csv[4200];
    /* data parallel (mdm_train.h): this rank's shards [shard_lo, shard_hi) of `shards` */
    int shards, shard_lo, shard_hi, lead;
    int *shard_first;      /* (shards + 1) first sample of each shard                       */
    int32_t *seq_shard;    /* (N) the shard of each sequence                                */
    float **shard_grads;   /* (shard_hi − shard_lo) θ gradient buffers (one shard: params.grads) */
    float **phi_grads;     /* the same for φ (Co-GRPO)                                      */
    void *shard_stats;     /* (shards) per-shard statistics of one optimizer step, gathered */
    /* rewards (mdm_train.h): R instances scored per shard on token batches */
    int R;
    gv_reward *rewards;
    gv_image_model *reward_models;
    double *weights;                   /* (R)                                             */
    float *scores, *scores_tmp;        /* (N, R), (N)                                     */
    uint8_t *status, *status_tmp;      /* (N, R), (N)                                     */
    uint8_t *solved;                   /* (N) the grid solved (the rollout_solved metric) */
    gv_reward_outcome *outcomes;       /* (shards, R) of the last rollout, gathered       */
    int64_t *failed_batches;           /* (R) masked plugin batches of all shards so far  */
    char *meta_text;                   /* (N, GV_MDM_META_LEN) per-sample JSON for plugins */
    const char **meta;                 /* (N) into meta_text                              */
    int32_t *canvas, *solution;        /* (N, T) the starting canvas, the solution        */
    char *text;                        /* (2N, GV_SUDOKU_TEXT_BYTES) completions, puzzles */
    const char **texts, **puzzles;     /* (N) into text                                   */
} gv_mdm_job;

/* One shard's part of an optimizer step (gathered from every rank, combined in shard order). */
typedef struct gv_mdm_shard_part {
    double loss;                 /* Σ_u w_u (...) over the shard's units (the weights are the
                                    whole minibatch's, so the parts add up to the loss)       */
    float stats[GV_GRPO_STATS];  /* means over the shard's units (grpo_objective)             */
    int64_t units;
    double ratio_sum;            /* a φ step: Σ of the shard's unit ratios (its loss: Σ of the
                                    unit losses)                                              */
} gv_mdm_shard_part;

/* The commit order of the gathered minibatch rows from row a on (order_logp), else none: *o is
   filled and returned, or NULL. */
const gv_mdm_order *gv_mdm_mb_order(const gv_mdm_job *j, int a, gv_mdm_order *o);

/* calloc of at least one byte, an OOM error naming the size otherwise. */
gv_status gv_mdm_host_alloc(size_t bytes, void **out);

/* mdm_setup.c: everything of the job from its config (j->cfg, j->be, j->seed, j->lead set);
   gv_mdm_job_free releases what was made, also after a failed setup. */
gv_status gv_mdm_job_setup(gv_mdm_job *j);
void gv_mdm_job_free(gv_mdm_job *j);

/* mdm_shards.c (grove/mdm_train.h, data parallel). */
/* The rewards of this rank's shards (the rollout of `iteration`), gathered; the reward_failures
   streak in shard order; failed_batches counted from the gathered outcomes. */
gv_status gv_mdm_score_rollout(gv_mdm_job *j, uint32_t iteration);
/* The rows [*a, *c) of minibatch b of epoch e (n rows, ordered by shard) that shard sh holds. */
void gv_mdm_shard_rows(const gv_mdm_job *j, int e, int b, int n, int sh, int *a, int *c);
/* Order each minibatch of epoch e by shard, stably (a no-op with one shard). */
void gv_mdm_order_by_shard(gv_mdm_job *j, int e);
/* This rank's shards of minibatch b of epoch e (n rows gathered into the mb_* buffers, token
   weights in mb_w): forward, objective, backward per shard into its gradient buffer; the parts of
   every shard gathered into parts (shards). */
gv_status gv_mdm_minibatch_parts(gv_mdm_job *j, int e, int b, int n, gv_mdm_shard_part *parts);
/* The parts combined in shard order (one shard: its values exactly). */
gv_mdm_shard_part gv_mdm_combine_parts(const gv_mdm_job *j, const gv_mdm_shard_part *parts);
/* The iteration record's "reward": {"<name>": {"failed_batches": n}} per plugin reward (none
   without a plugin reward). */
void gv_mdm_log_failed_batches(gv_metrics *m, const gv_mdm_job *j);
/* One φ step over the shards (one shard: gv_schedule_update exactly). */
gv_status gv_mdm_phi_step(gv_mdm_job *j, double *loss, double *ratio);

#endif
