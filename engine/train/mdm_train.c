/* The masked-diffusion GRPO loop (grove/mdm_train.h, ALGORITHMS.md §3 structure and §10 estimators):
 * rollouts with the masked sampler, the `rewards:` list (default: the built-in `sudoku` reward;
 * token batches, failed plugin batches masked: reward_outcome.h), advantages (advantage.h), stored views
 * and logp_old / reference log-probs right after the rollout, the clipped objective + k3 KL
 * (mdm_grpo.h over the grpo_objective ops), AdamW with clip and EMA (optim.h), the run directory,
 * checkpoints and resume (rundir.h), metrics (log.h) and the held-out solve rate (mdm.h).
 * Co-GRPO's wiring: the sampler hook, θ / φ phases, φ in last.h5, the exported schedule.
 * Data parallel over MPI ranks (grove/mdm_train.h, dist.h): shards of whole puzzle groups, gathered
 * rewards, per-shard gradients summed in shard order, rank 0 alone writing.
 * Not here: the estimators' math (mdm_estimator.c), the config schema (mdm_train_config.c),
 * the schedule policy's math (mdm_schedule.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grove/advantage.h"
#include "grove/dist.h"
#include "grove/grpo.h"
#include "grove/reward.h"
#include "grove/reward_outcome.h"
#include "grove/log.h"
#include "grove/mdm.h"
#include "grove/mdm_grpo.h"
#include "grove/mdm_schedule.h"
#include "grove/mdm_train.h"
#include "grove/optim.h"
#include "grove/paths.h"
#include "grove/rng.h"
#include "grove/rundir.h"
#include "grove/sudoku.h"

static const char *const device_names[] = {"cpu", "cuda"};

typedef struct loop_state {
    int64_t iteration, opt_step, ema_updates;
    gv_data_cursor cur;
} loop_state;

/* Everything one run holds; host arrays sized at setup (nothing allocated inside an iteration). */
typedef struct job {
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
    int32_t *ids;                      /* (E, N, views, T) stored views          */
    float *coef, *t;                   /* (E, N, views, T), (E, N)               */
    int32_t *order;                    /* (E, N) minibatch order per epoch       */
    float *old, *refl;                 /* (E, N, T) ℓ̂_old and ℓ̂_ref, in order    */
    /* one minibatch, gathered */
    int32_t *mb_ids, *mb_tok;
    float *mb_coef, *mb_ell, *mb_w, *mb_adv, *mb_dell;
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
    int32_t *canvas, *solution;        /* (N, T) the starting canvas, the solution        */
    char *text;                        /* (2N, GV_SUDOKU_TEXT_BYTES) completions, puzzles */
    const char **texts, **puzzles;     /* (N) into text                                   */
} job;

/* Co-GRPO: the phase of iteration it (0-based): 1 = φ, 0 = θ (φ first). */
static int phi_phase(const job *j, int64_t it) {
    return j->co && (it / j->cfg->co_grpo.phase_len) % 2 == 0;
}

static gv_status host_alloc(size_t bytes, void **out) {
    *out = calloc(1, bytes ? bytes : 1);
    return *out ? GV_OK : GV_ERROR(GV_ERR_OOM, "mdm train: host allocation of %zu bytes failed", bytes);
}

/* ---- checkpoints ------------------------------------------------------------------------------ */

/* /schedule: φ's values and Adam moments (flat, the table's padding included), its step count */
static gv_status put_schedule(gv_ckpt_writer *w, void *user) {
    job *j = user;
    if (!j->co) return GV_OK;
    const gv_params *ps = &j->sched.phi;
    const gv_shape sh = {1, {ps->total}};
    GV_TRY(gv_ckpt_write_tensor(w, "schedule", "values", &sh, ps->values));
    GV_TRY(gv_ckpt_write_tensor(w, "schedule", "adam_m", &sh, ps->adam_m));
    GV_TRY(gv_ckpt_write_tensor(w, "schedule", "adam_v", &sh, ps->adam_v));
    return gv_ckpt_put_i64(w, GV_CKPT_STATE, "schedule_adam_step", j->sched.adam_t);
}

static gv_status get_schedule(gv_ckpt_reader *r, const char *path, void *user) {
    job *j = user;
    (void)path;
    if (!j->co) return GV_OK;
    gv_params *ps = &j->sched.phi;
    const gv_shape sh = {1, {ps->total}};
    GV_TRY(gv_ckpt_read_tensor(r, "schedule", "values", &sh, ps->values));
    GV_TRY(gv_ckpt_read_tensor(r, "schedule", "adam_m", &sh, ps->adam_m));
    GV_TRY(gv_ckpt_read_tensor(r, "schedule", "adam_v", &sh, ps->adam_v));
    return gv_ckpt_get_i64(r, GV_CKPT_STATE, "schedule_adam_step", &j->sched.adam_t);
}

static gv_run_checkpoint checkpoint_of(job *j, loop_state *st, gv_run_state_value values[3]) {
    values[0] = (gv_run_state_value){"iteration", &st->iteration, NULL};
    values[1] = (gv_run_state_value){"optimizer_step", &st->opt_step, NULL};
    values[2] = (gv_run_state_value){"ema_updates", &st->ema_updates, NULL};
    return (gv_run_checkpoint){.model = &j->model, .threads = j->ctx->threads, .seed = j->seed,
                               .cursor = &st->cur, .state = values, .n_state = 3,
                               .put_meta = put_schedule, .check = get_schedule, .user = j};
}

static gv_status save_checkpoint(job *j, loop_state *st, const char *yaml, const char *path) {
    gv_run_state_value v[3];
    const gv_run_checkpoint c = checkpoint_of(j, st, v);
    return gv_rundir_save_checkpoint(&c, yaml, path);
}

/* ---- one iteration ---------------------------------------------------------------------------- */

typedef struct iter_stats {
    double reward_mean, solved, ratio_mean, ratio_min, ratio_max, clip_above, clip_below, approx_kl,
        kl, loss, grad_norm, first_ratio_min, first_ratio_max;
    int minibatches, units;
    gv_advantage_result adv;
    double t_rollout, t_old, t_train, comm_s;
    int phase_phi;
    double phi_loss, phi_ratio, sigma;
    int64_t completion_tokens;
} iter_stats;

/* The rewards of this rank's shards, one token batch per shard (prompt = the starting canvas,
   reference = the solution, texts for plugins), a failed plugin batch masked; then every sample's
   scores, statuses and solved flags and every batch outcome gathered bitwise, and the
   reward_failures streak replayed in shard order on every rank (rank 0 notes masked batches). */
static gv_status score_rollout(job *j) {
    const int R = j->R, T = j->T;
    const int mine0 = j->shard_first[j->shard_lo], mine1 = j->shard_first[j->shard_hi];
    for (int n = mine0; n < mine1; ++n) {
        const int64_t row = j->train_rows[j->prompt_rows[n / j->G]];
        const uint8_t *puz = gv_sudoku_puzzle(&j->data.train, row), *sol = gv_sudoku_solution(&j->data.train, row);
        uint8_t filled[GV_SUDOKU_MAX_CELLS];
        gv_sudoku_grid_from_tokens(j->tokens + (int64_t)n * T, j->S, filled);
        j->solved[n] = gv_sudoku_score(puz, sol, filled, j->S) >= 1.5f;
        gv_sudoku_tokens_from_grid(sol, j->S, j->solution + (int64_t)n * T);
        gv_sudoku_text_from_tokens(j->tokens + (int64_t)n * T, j->S, (char *)j->texts[n]);
        gv_sudoku_text_from_tokens(j->canvas + (int64_t)n * T, j->S, (char *)j->puzzles[n]);
    }
    for (int sh = j->shard_lo; sh < j->shard_hi; ++sh) {
        const int n0 = j->shard_first[sh], n1 = j->shard_first[sh + 1];
        const gv_reward_images b = {.n = n1 - n0, .seq_len = T, .tokens = j->tokens + (int64_t)n0 * T,
                                    .prompt = j->canvas + (int64_t)n0 * T,
                                    .reference = j->solution + (int64_t)n0 * T, .mask_id = j->mask_id,
                                    .texts = j->texts + n0, .prompts = j->puzzles + n0,
                                    .groups = j->group + n0};
        for (int k = 0; k < R; ++k) {
            gv_reward_outcome *o = &j->outcomes[(int64_t)sh * R + k];
            o->outcome = 0;
            if (n1 == n0) continue;
            GV_TRY(gv_reward_score_outcome(&j->rewards[k], j->ctx, &b, NULL, j->scores_tmp,
                                           j->status_tmp, NULL, NULL, o));
            for (int i = 0; i < n1 - n0; ++i) {
                j->scores[(int64_t)(n0 + i) * R + k] = j->scores_tmp[i];
                j->status[(int64_t)(n0 + i) * R + k] = j->status_tmp[i];
            }
        }
    }
    GV_TRY(gv_dist_allgather("rewards", j->scores, (size_t)R * sizeof(float), j->N, mine0, mine1));
    GV_TRY(gv_dist_allgather("reward statuses", j->status, (size_t)R, j->N, mine0, mine1));
    GV_TRY(gv_dist_allgather("solved flags", j->solved, 1, j->N, mine0, mine1));
    GV_TRY(gv_dist_allgather("reward batch outcomes", j->outcomes, (size_t)R * sizeof *j->outcomes,
                             j->shards, j->shard_lo, j->shard_hi));
    for (int sh = 0; sh < j->shards; ++sh)
        for (int k = 0; k < R; ++k) {
            gv_status s = gv_reward_outcome_streak(&j->rewards[k], j->cfg->reward_failures.max_consecutive,
                                                   &j->outcomes[(int64_t)sh * R + k], !j->lead);
            if (s != GV_OK) {
                gv_dist_agree_error(); /* every rank raised it from the same gathered outcomes */
                return s;
            }
        }
    return GV_OK;
}

static gv_status rollout(job *j, loop_state *st, iter_stats *is) {
    const gv_mdm_train_config *cfg = j->cfg;
    GV_TRY(gv_data_cursor_next(&st->cur, j->seed, j->P, j->prompt_rows));
    int steps = cfg->sampler.steps;
    is->completion_tokens = 0;
    for (int n = 0; n < j->N; ++n) {
        const int64_t row = j->train_rows[j->prompt_rows[n / j->G]];
        const uint8_t *puz = gv_sudoku_puzzle(&j->data.train, row);
        gv_sudoku_tokens_from_grid(puz, j->S, j->tokens + (int64_t)n * j->T);
        j->group[n] = n / j->G;
        int m = 0;
        for (int p = 0; p < j->T; ++p) {
            j->completion[(int64_t)n * j->T + p] = puz[p] == 0;
            m += puz[p] == 0;
        }
        is->completion_tokens += m;
        if (!cfg->sampler.steps && m > steps) steps = m;
    }
    if (steps > j->steps) return GV_ERROR(GV_ERR_INVALID, "mdm train: %d steps > %d", steps, j->steps);
    memcpy(j->canvas, j->tokens, (size_t)j->N * j->T * sizeof(int32_t));
    gv_masked_config mc = {.N = j->N, .T = j->T, .V = j->V, .mask_id = j->mask_id, .steps = steps,
                           .blocks = 1, .seed = j->seed, .stream = GV_RNG_STREAM_SAMPLER,
                           .addr = {.iteration = (uint32_t)st->iteration,
                                    .purpose = GV_RNG_PURPOSE_MASK_UNIFORM}};
    j->runner.theta = j->model.params.values; /* rollouts use the raw weights (§3) */
    gv_masked_knobs joint = {.step_fn = gv_schedule_hook, .step_user = &j->sched};
    if (j->co) GV_TRY(gv_schedule_begin(&j->sched, j->N, st->iteration, 0));
    is->sigma = j->co ? j->sched.sigma : 0.0;
    /* one sampler call per shard of this rank, its samples at their slots (mdm_train.h) */
    for (int sh = j->shard_lo; sh < j->shard_hi; ++sh) {
        const int n0 = j->shard_first[sh], n1 = j->shard_first[sh + 1];
        mc.N = n1 - n0;
        mc.slot0 = (uint32_t)n0;
        GV_TRY(gv_masked_sample(&mc, j->co ? &joint : NULL, gv_mdm_logits, &j->runner,
                                j->tokens + (int64_t)n0 * j->T, NULL, j->scratch, j->scratch_bytes));
    }
    GV_TRY(score_rollout(j));
    /* the combined reward per sample (Σ_k w_k r_k; NaN where a weighted component failed) */
    double rsum = 0.0, solved = 0.0;
    int scored = 0;
    for (int n = 0; n < j->N; ++n) {
        double r = 0.0;
        int ok = 1;
        for (int k = 0; k < j->R; ++k) {
            const float v = j->scores[(int64_t)n * j->R + k];
            if (j->weights[k] == 0.0) continue;
            if (j->status[(int64_t)n * j->R + k] != GV_REWARD_ITEM_OK || !isfinite(v)) ok = 0;
            r += j->weights[k] * (double)v;
        }
        j->reward[n] = ok ? (float)r : NAN;
        if (ok) rsum += j->reward[n], scored++;
        solved += j->solved[n];
    }
    is->reward_mean = scored ? rsum / scored : NAN;
    is->solved = solved / j->N;
    static const int centre[] = {GV_ADV_CENTER_ZSCORE, GV_ADV_CENTER_MEAN, GV_ADV_CENTER_LEAVE_ONE_OUT};
    gv_advantage_opts ao = gv_advantage_opts_default();
    ao.global_std = 0;
    ao.adv_clip = cfg->algorithm.adv_clip;
    ao.center = centre[cfg->algorithm.advantage];
    ao.mode = cfg->rewards_mode;
    gv_advantage_input in = {.n_samples = j->N, .n_rewards = j->R, .rewards = j->scores,
                             .status = j->status, .weights = j->weights, .prompt = j->group};
    return gv_advantage_compute(&in, &ao, j->adv, j->valid, NULL, &is->adv);
}

/* Gather minibatch b of epoch e (sequences order[e][b·mb ...]) into the mb_* buffers. */
static int gather(job *j, int e, int b) {
    const int lo = b * j->mb, n = j->N - lo < j->mb ? j->N - lo : j->mb;
    const int T = j->T, VT = j->views * T;
    for (int i = 0; i < n; ++i) {
        const int s = j->order[(int64_t)e * j->N + lo + i];
        memcpy(j->mb_ids + (int64_t)i * VT, j->ids + ((int64_t)e * j->N + s) * VT, VT * sizeof(int32_t));
        memcpy(j->mb_coef + (int64_t)i * VT, j->coef + ((int64_t)e * j->N + s) * VT, VT * sizeof(float));
        memcpy(j->mb_tok + (int64_t)i * T, j->tokens + (int64_t)s * T, T * sizeof(int32_t));
        memcpy(j->mb_comp + (int64_t)i * T, j->completion + (int64_t)s * T, T);
        j->mb_adv[i] = j->adv[s];
        j->mb_valid[i] = j->valid[s];
    }
    return n;
}

/* The rows [*a, *c) of minibatch b of epoch e (n rows, ordered by shard) that shard sh holds. */
static void shard_rows(const job *j, int e, int b, int n, int sh, int *a, int *c) {
    const int32_t *ord = j->order + (int64_t)e * j->N + (int64_t)b * j->mb;
    int i = 0;
    while (i < n && j->seq_shard[ord[i]] < sh) ++i;
    *a = i;
    while (i < n && j->seq_shard[ord[i]] == sh) ++i;
    *c = i;
}

/* Order each minibatch of epoch e by shard, stably (a no-op with one shard): shard s's rows of a
   minibatch are then one contiguous block, in shuffled order, on every rank alike. */
static void order_by_shard(job *j, int e) {
    if (j->shards == 1) return;
    int32_t *ord = j->order + (int64_t)e * j->N, *tmp = j->mb_ids; /* mb_ids: scratch, >= mb ints */
    for (int lo = 0; lo < j->N; lo += j->mb) {
        const int n = j->N - lo < j->mb ? j->N - lo : j->mb;
        int k = 0;
        for (int sh = 0; sh < j->shards; ++sh)
            for (int i = 0; i < n; ++i)
                if (j->seq_shard[ord[lo + i]] == sh) tmp[k++] = ord[lo + i];
        memcpy(ord + lo, tmp, (size_t)n * sizeof(int32_t));
    }
}

/* Views, minibatch orders, ℓ̂_old and ℓ̂_ref for every inner epoch, right after the rollout; the
   log-probs of this rank's shards only, one call per (minibatch, shard) as in training. */
static gv_status prepare_epochs(job *j, loop_state *st) {
    const gv_mdm_train_config *cfg = j->cfg;
    uint32_t key[2];
    gv_rng_key(j->seed, GV_RNG_STREAM_TRAIN, key);
    for (int e = 0; e < j->E; ++e) {
        gv_mdm_view_args va = {.N = j->N, .T = j->T, .mask_id = j->mask_id,
                               .estimator = cfg->algorithm.estimator,
                               .prompt_mask = (float)cfg->algorithm.prompt_mask,
                               .t_lo = (float)cfg->algorithm.t_lo, .t_hi = (float)cfg->algorithm.t_hi,
                               .seed = j->seed, .stream = GV_RNG_STREAM_TRAIN,
                               .iteration = (uint32_t)st->iteration, .draw = (uint32_t)e};
        GV_TRY(gv_mdm_views_draw(&va, j->tokens, j->completion, j->group,
                                 j->ids + (int64_t)e * j->N * j->views * j->T,
                                 j->coef + (int64_t)e * j->N * j->views * j->T, j->t + (int64_t)e * j->N));
        /* Fisher–Yates over Philox uniforms at (TRAIN, iteration, node = e, SHUFFLE) */
        int32_t *ord = j->order + (int64_t)e * j->N;
        uint32_t ctr[3];
        GV_TRY(gv_rng_addr_pack(&(gv_rng_addr){.iteration = (uint32_t)st->iteration, .node = (uint32_t)e,
                                               .purpose = GV_RNG_PURPOSE_SHUFFLE}, ctr));
        for (int i = 0; i < j->N; ++i) ord[i] = i;
        for (int i = j->N - 1; i > 0; --i) {
            const int k = (int)(gv_rng_uniform_at(key, ctr, (uint64_t)i) * (i + 1));
            const int32_t tmp = ord[i];
            ord[i] = ord[k < i ? k : i];
            ord[k < i ? k : i] = tmp;
        }
        order_by_shard(j, e);
        const int nb = (j->N + j->mb - 1) / j->mb;
        const int64_t T = j->T, VT = (int64_t)j->views * j->T;
        for (int b = 0; b < nb; ++b) {
            const int n = gather(j, e, b);
            for (int sh = j->shard_lo; sh < j->shard_hi; ++sh) {
                int a, c;
                shard_rows(j, e, b, n, sh, &a, &c);
                if (c == a) continue;
                float *old = j->old + ((int64_t)e * j->N + (int64_t)b * j->mb + a) * T;
                GV_TRY(gv_mdm_policy_logp(&j->pol, j->model.params.values, c - a, j->mb_ids + a * VT,
                                          j->mb_tok + a * T, j->mb_coef + a * VT, old));
                if (j->have_ref) {
                    float *ref = j->refl + ((int64_t)e * j->N + (int64_t)b * j->mb + a) * T;
                    GV_TRY(gv_mdm_policy_logp(&j->pol, j->ref.params.values, c - a, j->mb_ids + a * VT,
                                              j->mb_tok + a * T, j->mb_coef + a * VT, ref));
                }
            }
        }
    }
    return GV_OK;
}

/* One shard's part of an optimizer step (gathered from every rank, combined in shard order). */
typedef struct shard_part {
    double loss;                 /* Σ_u w_u (...) over the shard's units (the weights are the
                                    whole minibatch's, so the parts add up to the loss)       */
    float stats[GV_GRPO_STATS];  /* means over the shard's units (grpo_objective)             */
    int64_t units;
    double ratio_sum;            /* a φ step: Σ of the shard's unit ratios (its loss: Σ of the
                                    unit losses)                                              */
} shard_part;

/* This rank's shards of minibatch b of epoch e (n rows, gathered; token weights in mb_w): per
   shard the training forward, the objective and the backward into zeroed gradients, kept in the
   shard's buffer (one shard in all: params.grads itself). */
static gv_status minibatch_parts(job *j, int e, int b, int n, shard_part *parts) {
    const gv_mdm_train_config *cfg = j->cfg;
    gv_params *ps = &j->model.params;
    const gv_mdm_loss_args la = {.clip_eps = (float)cfg->algorithm.clip_range,
                                 .beta = (float)cfg->algorithm.beta};
    const int64_t T = j->T, VT = (int64_t)j->views * j->T, at = (int64_t)e * j->N + (int64_t)b * j->mb;
    for (int sh = j->shard_lo; sh < j->shard_hi; ++sh) {
        shard_part *pt = &parts[sh];
        memset(pt, 0, sizeof *pt);
        int a, c;
        shard_rows(j, e, b, n, sh, &a, &c);
        GV_TRY(gv_params_zero_grads(ps));
        if (c > a) {
            const float *old = j->old + (at + a) * T;
            const float *ref = j->have_ref ? j->refl + (at + a) * T : NULL;
            GV_TRY(gv_mdm_policy_logp(&j->pol, ps->values, c - a, j->mb_ids + a * VT, j->mb_tok + a * T,
                                      j->mb_coef + a * VT, j->mb_ell + a * T));
            float loss;
            int units = 0;
            GV_TRY(gv_mdm_grpo_loss(&j->pol, c - a, j->mb_ell + a * T, old, ref, j->mb_adv + a,
                                    j->mb_w + a * T, &la, j->mb_dell + a * T, &loss, pt->stats, &units));
            pt->loss = loss;
            pt->units = units;
            if (units) GV_TRY(gv_mdm_policy_backward(&j->pol, ps->values, ps->grads, j->mb_dell + a * T));
        }
        float *mine = j->shard_grads[sh - j->shard_lo];
        if (mine != ps->grads) GV_TRY(j->be->copy(mine, ps->grads, (size_t)ps->total * sizeof(float)));
    }
    return gv_dist_allgather("training statistics", parts, sizeof *parts, j->shards, j->shard_lo,
                             j->shard_hi);
}

/* The parts of every shard combined in shard order: one shard's values exactly as they are. */
static shard_part combine_parts(const job *j, const shard_part *parts) {
    shard_part t = parts[0];
    for (int sh = 1; sh < j->shards; ++sh) {
        const shard_part *p = &parts[sh];
        if (!p->units) continue;
        if (!t.units) {
            t = *p;
            continue;
        }
        const double u0 = (double)t.units, u1 = (double)p->units, u = u0 + u1;
        static const int mean_stats[] = {GV_GRPO_STAT_RATIO_MEAN, GV_GRPO_STAT_CLIP_ABOVE,
                                         GV_GRPO_STAT_CLIP_BELOW, GV_GRPO_STAT_APPROX_KL,
                                         GV_GRPO_STAT_KL_MEAN};
        for (size_t q = 0; q < sizeof mean_stats / sizeof mean_stats[0]; ++q) {
            const int k = mean_stats[q];
            t.stats[k] = (float)(((double)t.stats[k] * u0 + (double)p->stats[k] * u1) / u);
        }
        t.stats[GV_GRPO_STAT_RATIO_MIN] = fminf(t.stats[GV_GRPO_STAT_RATIO_MIN], p->stats[GV_GRPO_STAT_RATIO_MIN]);
        t.stats[GV_GRPO_STAT_RATIO_MAX] = fmaxf(t.stats[GV_GRPO_STAT_RATIO_MAX], p->stats[GV_GRPO_STAT_RATIO_MAX]);
        t.loss += p->loss;
        t.units += p->units;
    }
    return t;
}

static gv_status train_epochs(job *j, loop_state *st, iter_stats *is) {
    const gv_mdm_train_config *cfg = j->cfg;
    gv_params *ps = &j->model.params;
    gv_adamw_config adam = GV_ADAMW_CONFIG_DEFAULT;
    adam.lr = (float)cfg->train.lr;
    adam.weight_decay = (float)cfg->train.weight_decay;
    const int nb = (j->N + j->mb - 1) / j->mb;
    shard_part *parts = j->shard_stats;
    is->ratio_min = INFINITY;
    is->ratio_max = -INFINITY;
    for (int e = 0; e < j->E; ++e)
        for (int b = 0; b < nb; ++b) {
            const int n = gather(j, e, b);
            GV_TRY(gv_mdm_token_weights(cfg->algorithm.aggregation, n, j->T, j->mb_comp, j->mb_adv,
                                        j->mb_valid, j->mb_w));
            GV_TRY(minibatch_parts(j, e, b, n, parts));
            const shard_part t = combine_parts(j, parts);
            if (!t.units) continue;
            const float loss = (float)t.loss;
            const float *stats = t.stats;
            if (!is->minibatches) {
                is->first_ratio_min = stats[GV_GRPO_STAT_RATIO_MIN];
                is->first_ratio_max = stats[GV_GRPO_STAT_RATIO_MAX];
            }
            is->minibatches++;
            is->units += (int)t.units;
            is->loss += loss;
            is->ratio_mean += stats[GV_GRPO_STAT_RATIO_MEAN];
            is->ratio_min = fmin(is->ratio_min, stats[GV_GRPO_STAT_RATIO_MIN]);
            is->ratio_max = fmax(is->ratio_max, stats[GV_GRPO_STAT_RATIO_MAX]);
            is->clip_above += stats[GV_GRPO_STAT_CLIP_ABOVE];
            is->clip_below += stats[GV_GRPO_STAT_CLIP_BELOW];
            is->approx_kl += stats[GV_GRPO_STAT_APPROX_KL];
            is->kl += stats[GV_GRPO_STAT_KL_MEAN];
            if (!isfinite(loss)) { /* from the gathered parts: every rank stops alike */
                GV_ERROR(GV_ERR_NUMERIC, "mdm train: non-finite loss at iteration %lld",
                         (long long)st->iteration);
                gv_dist_agree_error();
                return GV_ERR_NUMERIC;
            }
            const gv_shard_sum sum = {.be = j->be, .ctx = j->ctx, .n = ps->total, .shards = j->shards,
                                      .lo = j->shard_lo, .hi = j->shard_hi, .local = j->shard_grads,
                                      .out = ps->grads};
            GV_TRY(gv_dist_shard_sum(&sum, "gradient sum"));
            float norm = NAN;
            if (cfg->train.grad_clip > 0) GV_TRY(gv_grad_clip(j->ctx, ps, (float)cfg->train.grad_clip, &norm));
            else GV_TRY(gv_grad_norm(j->ctx, ps, &norm));
            is->grad_norm += norm;
            st->opt_step++;
            GV_TRY(gv_optim_step(j->ctx, ps, &adam, adam.lr, st->opt_step));
            GV_TRY(gv_ema_update(j->ctx, ps, gv_ema_decay_at(st->ema_updates++, (float)cfg->train.ema_decay)));
        }
    if (is->minibatches) {
        const double k = is->minibatches;
        is->loss /= k, is->ratio_mean /= k, is->clip_above /= k, is->clip_below /= k;
        is->approx_kl /= k, is->kl /= k, is->grad_norm /= k;
    }
    return GV_OK;
}

/* One φ step of a Co-GRPO φ phase (θ frozen): per shard of this rank the clipped objective over
   its samples, normalized by the acted units of ALL shards (their counts gathered), into zeroed
   gradients; summed in shard order; one AdamW step. One shard: gv_schedule_update exactly. */
static gv_status phi_step(job *j, double *loss, double *ratio) {
    gv_schedule *p = &j->sched;
    gv_params *phi = &p->phi;
    shard_part *parts = j->shard_stats;
    for (int sh = j->shard_lo; sh < j->shard_hi; ++sh) {
        memset(&parts[sh], 0, sizeof parts[sh]);
        parts[sh].units = gv_schedule_units(p, j->shard_first[sh], j->shard_first[sh + 1]);
    }
    GV_TRY(gv_dist_allgather("schedule units", parts, sizeof *parts, j->shards, j->shard_lo, j->shard_hi));
    int64_t units = 0;
    for (int sh = 0; sh < j->shards; ++sh) units += parts[sh].units;
    for (int sh = j->shard_lo; sh < j->shard_hi; ++sh) {
        GV_TRY(gv_schedule_loss_part(p, j->adv, j->shard_first[sh], j->shard_first[sh + 1], units,
                                     &parts[sh].loss, &parts[sh].ratio_sum));
        float *mine = j->phi_grads[sh - j->shard_lo];
        if (mine != phi->grads) memcpy(mine, phi->grads, (size_t)phi->total * sizeof(float));
    }
    GV_TRY(gv_dist_allgather("schedule statistics", parts, sizeof *parts, j->shards, j->shard_lo,
                             j->shard_hi));
    double L = parts[0].loss, rsum = parts[0].ratio_sum;
    for (int sh = 1; sh < j->shards; ++sh) {
        L += parts[sh].loss;
        rsum += parts[sh].ratio_sum;
    }
    *loss = units ? L / (double)units : 0.0;
    *ratio = units ? rsum / (double)units : 1.0;
    p->last_units = units;
    if (!units) return GV_OK;
    const gv_shard_sum sum = {.be = p->ctx->backend, .ctx = p->ctx, .n = phi->total,
                              .shards = j->shards, .lo = j->shard_lo, .hi = j->shard_hi,
                              .local = j->phi_grads, .out = phi->grads};
    GV_TRY(gv_dist_shard_sum(&sum, "schedule gradient sum"));
    return gv_schedule_step(p);
}

/* <run dir>/eval-<iteration>.csv: one line per held-out puzzle (test row, solved 0/1, reward). The
   eval's sampler draws are addressed by (seed, puzzle slot) only, so two evals of one run at
   different iterations see the same noise per puzzle: a paired before/after comparison
   (bench/mdm/paired_gain.py). */
static gv_status write_eval_csv(const job *j, int64_t iteration) {
    char path[4200];
    snprintf(path, sizeof path, "%s/eval-%lld.csv", j->run_dir, (long long)iteration);
    FILE *f = fopen(path, "w");
    if (!f) return GV_ERROR(GV_ERR_IO, "%s: cannot write", path);
    fprintf(f, "test_row,solved,reward\n");
    for (int64_t i = 0; i < j->n_eval; ++i)
        fprintf(f, "%lld,%d,%.6f\n", (long long)j->eval_rows[i], j->eval_solved[i],
                (double)j->eval_reward[i]);
    if (ferror(f) | fclose(f)) return GV_ERROR(GV_ERR_IO, "%s: write failed", path);
    return GV_OK;
}

static gv_status evaluate(job *j, int64_t iteration, gv_metrics *m, FILE *progress, double *rate) {
    if (!j->n_eval) return GV_OK;
    j->runner.theta = j->model.params.ema;
    gv_masked_knobs mean_schedule = {.step_fn = gv_schedule_hook, .step_user = &j->sched};
    gv_sudoku_eval_options o = {.steps = j->cfg->sampler.steps, .batch = j->cfg->eval.batch,
                                .seed = j->seed, .knobs = j->co ? &mean_schedule : NULL,
                                .solved_each = j->eval_solved, .reward_each = j->eval_reward};
    if (j->co) GV_TRY(gv_schedule_begin(&j->sched, (int)j->n_eval, iteration, 1));
    gv_sudoku_eval_result r;
    GV_TRY(gv_sudoku_evaluate(&j->runner, &j->data.test, j->eval_rows, j->n_eval, &o, &r));
    GV_TRY(write_eval_csv(j, iteration));
    if (j->co) { /* the learned mean schedule at the held-out puzzles' mean features */
        FILE *f = fopen(j->schedule_csv, "w");
        if (!f) return GV_ERROR(GV_ERR_IO, "%s: cannot write", j->schedule_csv);
        gv_status s = gv_schedule_write_csv(&j->sched, f);
        if (fclose(f) && s == GV_OK) s = GV_ERROR(GV_ERR_IO, "%s: write failed", j->schedule_csv);
        GV_TRY(s);
        if (progress) {
            fprintf(progress, "mdm train: iteration %lld learned schedule (step: r tau_s tau_r):",
                    (long long)iteration);
            for (int k = 0; k < j->sched.cfg.steps; ++k) {
                float kn[GV_KNOB_COUNT], fr = 0.0f, cf = 0.0f;
                for (int n = 0; n < j->sched.N; ++n) {
                    fr += j->sched.feat[((int64_t)n * j->sched.cfg.steps + k) * 2] / (float)j->sched.N;
                    cf += j->sched.feat[((int64_t)n * j->sched.cfg.steps + k) * 2 + 1] / (float)j->sched.N;
                }
                gv_schedule_mean_knobs(&j->sched, k, fr, cf, kn);
                fprintf(progress, " %d: %.3f %.3f %.3f;", k, (double)kn[GV_KNOB_R],
                        (double)kn[GV_KNOB_TAU_S], (double)kn[GV_KNOB_TAU_R]);
            }
            fprintf(progress, " (%s)\n", j->schedule_csv);
        }
    }
    j->runner.theta = j->model.params.values;
    gv_metrics_begin(m);
    gv_metrics_i64(m, "iteration", iteration);
    gv_metrics_object(m, "eval");
    gv_metrics_str(m, "weights", "ema");
    gv_metrics_i64(m, "puzzles", r.n);
    gv_metrics_i64(m, "blanks", j->cfg->eval.blanks);
    gv_metrics_f64(m, "solve_rate", r.solve_rate);
    gv_metrics_f64(m, "ci_lo", r.ci_lo);
    gv_metrics_f64(m, "ci_hi", r.ci_hi);
    gv_metrics_f64(m, "mean_reward", r.mean_reward);
    gv_metrics_f64(m, "cell_accuracy", r.cell_accuracy);
    gv_metrics_f64(m, "seconds", r.seconds);
    gv_metrics_end_object(m);
    GV_TRY(gv_metrics_end(m));
    if (progress)
        fprintf(progress, "mdm train: iteration %lld eval: solved %lld/%lld = %.1f %% [%.1f, %.1f], "
                "cell accuracy %.3f\n", (long long)iteration, (long long)r.solved, (long long)r.n,
                100 * r.solve_rate, 100 * r.ci_lo, 100 * r.ci_hi, r.cell_accuracy);
    *rate = r.solve_rate;
    return GV_OK;
}

static void log_iteration(gv_metrics *m, const loop_state *st, const iter_stats *is, const job *j) {
    gv_metrics_begin(m);
    gv_metrics_i64(m, "iteration", st->iteration);
    gv_metrics_f64(m, "reward_mean", is->reward_mean);
    gv_metrics_f64(m, "rollout_solved", is->solved);
    gv_metrics_f64(m, "adv_mean", is->adv.adv_mean);
    gv_metrics_f64(m, "adv_std", is->adv.adv_std);
    gv_metrics_i64(m, "groups_zero", is->adv.n_groups_zero);
    gv_metrics_f64(m, "ratio_mean", is->ratio_mean);
    gv_metrics_f64(m, "ratio_min", is->ratio_min);
    gv_metrics_f64(m, "ratio_max", is->ratio_max);
    gv_metrics_f64(m, "first_ratio_min", is->first_ratio_min);
    gv_metrics_f64(m, "first_ratio_max", is->first_ratio_max);
    gv_metrics_f64(m, "clip_above", is->clip_above);
    gv_metrics_f64(m, "clip_below", is->clip_below);
    gv_metrics_f64(m, "approx_kl", is->approx_kl);
    gv_metrics_f64(m, "kl", is->kl);
    gv_metrics_f64(m, "loss", is->loss);
    gv_metrics_f64(m, "grad_norm", is->grad_norm);
    gv_metrics_i64(m, "optimizer_step", st->opt_step);
    gv_metrics_i64(m, "units", is->units);
    gv_metrics_f64(m, "rollout_tokens_per_s", is->t_rollout > 0 ? is->completion_tokens / is->t_rollout : 0);
    gv_metrics_f64(m, "train_tokens_per_s",
                   is->t_train > 0 ? (double)is->completion_tokens * j->E / is->t_train : 0);
    gv_metrics_f64(m, "rollout_s", is->t_rollout);
    gv_metrics_f64(m, "logp_old_s", is->t_old);
    gv_metrics_f64(m, "train_s", is->t_train);
    if (gv_dist_size() > 1) gv_metrics_f64(m, "comm_s", is->comm_s); /* in collectives, waits included */
    if (j->co) {
        gv_metrics_str(m, "phase", is->phase_phi ? "phi" : "theta");
        gv_metrics_f64(m, "sigma", is->sigma);
        gv_metrics_f64(m, "phi_loss", is->phi_loss);
        gv_metrics_f64(m, "phi_ratio", is->phi_ratio);
        gv_metrics_i64(m, "phi_step", j->sched.adam_t);
    }
}

/* ---- setup ------------------------------------------------------------------------------------ */

/* The `rewards:` list (mdm_train.h): built-in `sudoku` and token-batch plugins, created as the
   image trainer creates its list (gv_grpo_rewards_create_kind); none = [{builtin: sudoku}]. */
static gv_status setup_rewards(job *j) {
    const gv_mdm_train_config *cfg = j->cfg;
    const gv_reward_spec fallback = {.builtin = "sudoku", .plugin = "", .model = "", .weight = 1.0};
    const gv_reward_spec *specs = cfg->n_rewards ? cfg->rewards : &fallback;
    j->R = cfg->n_rewards ? cfg->n_rewards : 1;
    for (int k = 0; k < j->R; ++k) {
        gv_builtin_reward_id id;
        if (!specs[k].builtin || !*specs[k].builtin) continue;
        GV_TRY(gv_builtin_reward_find(specs[k].builtin, &id));
        if (id != GV_REWARD_SUDOKU)
            return GV_ERROR(GV_ERR_CONFIG, "rewards[%d]: builtin '%s' scores images; the masked-diffusion "
                            "trainer scores token batches (builtin sudoku, or a plugin of kind tokens)",
                            k, specs[k].builtin);
    }
    GV_TRY(gv_grpo_rewards_create_kind(j->ctx, j->model.dataset, j->N, specs, j->R, "rewards",
                                       GROVE_SAMPLES_TOKENS, &j->rewards, &j->reward_models));
    for (int k = 0; k < j->R; ++k)
        if (!gv_reward_can_score(&j->rewards[k]))
            return GV_ERROR(GV_ERR_CONFIG, "rewards[%d]: plugin '%s' is a pairwise judge without score "
                            "(the masked-diffusion trainer has no win-rate transform)", k,
                            j->rewards[k].name);
    const size_t N = (size_t)j->N, R = (size_t)j->R, T = (size_t)j->T, tb = GV_SUDOKU_TEXT_BYTES(j->S);
    void **bufs[] = {(void **)&j->weights, (void **)&j->scores, (void **)&j->scores_tmp,
                     (void **)&j->status, (void **)&j->status_tmp, (void **)&j->solved,
                     (void **)&j->outcomes, (void **)&j->canvas, (void **)&j->solution,
                     (void **)&j->text, (void **)&j->texts, (void **)&j->puzzles};
    const size_t sizes[] = {R * sizeof(double), N * R * sizeof(float), N * sizeof(float), N * R, N, N,
                            (size_t)j->shards * R * sizeof(gv_reward_outcome), N * T * sizeof(int32_t),
                            N * T * sizeof(int32_t), 2 * N * tb, N * sizeof(char *), N * sizeof(char *)};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; ++i) GV_TRY(host_alloc(sizes[i], bufs[i]));
    for (int k = 0; k < j->R; ++k) j->weights[k] = specs[k].weight;
    for (size_t n = 0; n < N; ++n) {
        j->texts[n] = j->text + n * tb;
        j->puzzles[n] = j->text + (N + n) * tb;
    }
    return GV_OK;
}

static gv_status setup(job *j) {
    const gv_mdm_train_config *cfg = j->cfg;
    const gv_dataset_kind dk = cfg->data.dataset == 0 ? GV_DATASET_SUDOKU4 : GV_DATASET_SUDOKU9;
    char data_path[4096];
    if (*cfg->data.path) snprintf(data_path, sizeof data_path, "%s", cfg->data.path);
    else GV_TRY(gv_root_path(gv_dataset_kind_get(dk)->default_path, data_path, sizeof data_path));
    /* data parallel: every rank needs a shard (refused alike on every rank: rank 0 prints) */
    j->shards = cfg->run.shards;
    gv_dist_shard_range(j->shards, gv_dist_rank(), gv_dist_size(), &j->shard_lo, &j->shard_hi);
    if (j->shards < gv_dist_size()) {
        GV_ERROR(GV_ERR_CONFIG, "run.shards = %d but %d ranks run: every rank needs a shard "
                 "(set run.shards to at least the rank count)", j->shards, gv_dist_size());
        gv_dist_agree_error();
        return GV_ERR_CONFIG;
    }
    /* rank 0 makes a missing dataset, the others read it after */
    if (j->lead) GV_TRY(gv_dataset_ensure(dk, data_path, NULL, NULL));
    GV_TRY(gv_dist_barrier("dataset"));
    if (!j->lead) GV_TRY(gv_dataset_ensure(dk, data_path, NULL, NULL));
    GV_TRY(gv_dataset_load_as(data_path, dk, &j->data));
    j->S = j->data.h;
    j->T = j->S * j->S;
    j->V = GV_SUDOKU_VOCAB(j->S);
    j->mask_id = GV_SUDOKU_MASK(j->S);
    GV_TRY(j->be->ctx_create(&(gv_ctx_options){.threads = gv_resolve_threads(cfg->run.threads),
                                               .use_fast = 1}, &j->ctx));
    /* the policy: the checkpoint's weights in a model with an EMA copy; the frozen reference */
    GV_TRY(gv_image_model_load(cfg->model.checkpoint, j->be, 1, &j->ref));
    if (j->ref.kind != GV_MODEL_MDT)
        return GV_ERROR(GV_ERR_CONFIG, "%s: a %s, not an mdt", cfg->model.checkpoint,
                        gv_model_kind_name(j->ref.kind));
    const gv_mdt_config *mc = &j->ref.mdt.cfg;
    if (mc->seq_len != j->T || mc->vocab_size != j->V)
        return GV_ERROR(GV_ERR_CONFIG, "%s: the mdt (T %d, V %d) does not fit %s (T %d, V %d)",
                        cfg->model.checkpoint, mc->seq_len, mc->vocab_size, data_path, j->T, j->V);
    GV_TRY(gv_image_model_create(&j->model, GV_MODEL_MDT, mc, j->be, 1));
    snprintf(j->model.dataset, sizeof j->model.dataset, "%s", j->ref.dataset);
    const size_t pb = (size_t)j->model.params.total * sizeof(float);
    GV_TRY(j->be->copy(j->model.params.values, j->ref.params.values, pb));
    GV_TRY(j->be->copy(j->model.params.ema, j->ref.params.values, pb));
    j->have_ref = cfg->algorithm.beta > 0;
    /* sizes */
    j->P = cfg->group.prompts_per_iteration;
    j->G = cfg->group.size;
    j->N = j->P * j->G;
    j->views = gv_mdm_estimator_views(cfg->algorithm.estimator);
    j->E = cfg->train.inner_epochs;
    j->mb = cfg->train.minibatch < j->N ? cfg->train.minibatch : j->N;
    j->steps = cfg->sampler.steps ? cfg->sampler.steps : cfg->data.blanks_max;
    if (j->N > 65536) return GV_ERROR(GV_ERR_CONFIG, "group.size x prompts_per_iteration > 65536");
    /* training puzzles with blanks in [blanks_min, blanks_max] */
    GV_TRY(host_alloc((size_t)j->data.train.n * sizeof(int64_t), (void **)&j->train_rows));
    for (int64_t r = 0; r < j->data.train.n; ++r) {
        const int b = gv_sudoku_blanks(gv_sudoku_puzzle(&j->data.train, r), j->S);
        if (b >= cfg->data.blanks_min && b <= cfg->data.blanks_max) j->train_rows[j->n_train_rows++] = r;
    }
    if (j->n_train_rows < j->P)
        return GV_ERROR(GV_ERR_CONFIG, "%s: %lld training puzzles with %d..%d blanks, fewer than "
                        "group.prompts_per_iteration %d", data_path, (long long)j->n_train_rows,
                        cfg->data.blanks_min, cfg->data.blanks_max, j->P);
    /* eval rows */
    if (cfg->eval.puzzles > 0) {
        int64_t first, count;
        GV_TRY(gv_sudoku_test_level(&j->data, cfg->eval.blanks, &first, &count));
        j->n_eval = cfg->eval.puzzles < count ? cfg->eval.puzzles : count;
        GV_TRY(host_alloc((size_t)j->n_eval * sizeof(int64_t), (void **)&j->eval_rows));
        for (int64_t i = 0; i < j->n_eval; ++i) j->eval_rows[i] = first + i;
        GV_TRY(host_alloc((size_t)j->n_eval, (void **)&j->eval_solved));
        GV_TRY(host_alloc((size_t)j->n_eval * sizeof(float), (void **)&j->eval_reward));
    }
    /* buffers */
    const size_t N = j->N, T = j->T, VT = (size_t)j->views * T, E = j->E, mb = j->mb;
    void **bufs[] = {(void **)&j->prompt_rows, (void **)&j->tokens, (void **)&j->group,
                     (void **)&j->completion, (void **)&j->valid, (void **)&j->reward,
                     (void **)&j->adv, (void **)&j->ids, (void **)&j->coef, (void **)&j->t,
                     (void **)&j->order, (void **)&j->old, (void **)&j->refl, (void **)&j->mb_ids,
                     (void **)&j->mb_tok, (void **)&j->mb_coef, (void **)&j->mb_ell, (void **)&j->mb_w,
                     (void **)&j->mb_adv, (void **)&j->mb_dell, (void **)&j->mb_comp,
                     (void **)&j->mb_valid};
    const size_t sizes[] = {j->P * sizeof(int64_t), N * T * 4, N * 4, N * T, N, N * 4, N * 4,
                            E * N * VT * 4, E * N * VT * 4, E * N * 4, E * N * 4, E * N * T * 4,
                            E * N * T * 4, mb * VT * 4, mb * T * 4, mb * VT * 4, mb * T * 4,
                            mb * T * 4, mb * 4, mb * T * 4, mb * T, mb};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; ++i) GV_TRY(host_alloc(sizes[i], bufs[i]));
    gv_masked_config sc = {.N = j->N > cfg->eval.batch ? j->N : cfg->eval.batch, .T = j->T, .V = j->V};
    j->scratch_bytes = gv_masked_scratch_bytes(&sc, 0);
    GV_TRY(host_alloc(j->scratch_bytes, &j->scratch));
    const int rows = j->N > cfg->eval.batch ? j->N : cfg->eval.batch;
    GV_TRY(gv_mdm_runner_init(&j->runner, &j->model, j->ctx, rows < 64 ? rows : 64));
    /* shards (mdm_train.h): shard s holds the puzzle slots [P·s/S, P·(s+1)/S), their G samples each */
    GV_TRY(host_alloc((size_t)(j->shards + 1) * sizeof(int), (void **)&j->shard_first));
    GV_TRY(host_alloc((size_t)j->N * sizeof(int32_t), (void **)&j->seq_shard));
    GV_TRY(host_alloc((size_t)j->shards * sizeof(shard_part), &j->shard_stats));
    for (int sh = 0; sh < j->shards; ++sh) {
        int a, b;
        gv_dist_shard_range(j->P, sh, j->shards, &a, &b);
        j->shard_first[sh] = a * j->G;
        j->shard_first[sh + 1] = b * j->G;
        for (int n = a * j->G; n < b * j->G; ++n) j->seq_shard[n] = sh;
    }
    const int nloc = j->shard_hi - j->shard_lo;
    GV_TRY(host_alloc((size_t)nloc * sizeof(float *), (void **)&j->shard_grads));
    for (int k = 0; k < nloc; ++k) {
        if (j->shards == 1) j->shard_grads[k] = j->model.params.grads;
        else {
            GV_TRY(j->be->alloc((size_t)j->model.params.total * sizeof(float), (void **)&j->shard_grads[k]));
            GV_TRY(j->be->memset_zero(j->shard_grads[k], (size_t)j->model.params.total * sizeof(float)));
        }
    }
    GV_TRY(setup_rewards(j));
    j->co = cfg->co_grpo.enabled;
    if (j->co) {
        if (!cfg->sampler.steps)
            return GV_ERROR(GV_ERR_CONFIG, "co_grpo.enabled needs a fixed sampler.steps (> 0): the "
                            "schedule policy is made for a step count");
        gv_schedule_config sc2 = {.steps = cfg->sampler.steps, .blocks = 1, .hidden = cfg->co_grpo.hidden,
                                  .seed = j->seed, .lr = (float)cfg->co_grpo.lr, .weight_decay = 0.0f,
                                  .clip_range = (float)cfg->algorithm.clip_range,
                                  .sigma_decay_iterations = cfg->co_grpo.sigma_decay_iterations};
        for (const char *p = cfg->co_grpo.knobs; *p;) {
            const size_t len = strcspn(p, ",");
            int found = -1;
            for (int q = 0; q < GV_KNOB_COUNT; ++q)
                if (strlen(gv_knob_names[q]) == len && !strncmp(p, gv_knob_names[q], len)) found = q;
            if (found < 0 || found == GV_KNOB_W)
                return GV_ERROR(GV_ERR_CONFIG, "co_grpo.knobs: '%.*s' is not a learnable knob (r, tau_s, "
                                "tau_r)", (int)len, p);
            sc2.learned[found] = 1;
            p += len + (p[len] == ',');
        }
        GV_TRY(gv_schedule_create(&sc2, &j->sched));
        GV_TRY(host_alloc((size_t)nloc * sizeof(float *), (void **)&j->phi_grads));
        for (int k = 0; k < nloc; ++k) {
            if (j->shards == 1) j->phi_grads[k] = j->sched.phi.grads;
            else GV_TRY(host_alloc((size_t)j->sched.phi.total * sizeof(float), (void **)&j->phi_grads[k]));
        }
    }
    return gv_mdm_policy_init(&j->pol, &j->model, j->ctx, j->mb, j->views, j->mask_id);
}

static void job_free(job *j) {
    void *h[] = {j->train_rows, j->prompt_rows, j->tokens, j->group, j->completion, j->valid,
                 j->reward, j->adv, j->ids, j->coef, j->t, j->order, j->old, j->refl, j->mb_ids,
                 j->mb_tok, j->mb_coef, j->mb_ell, j->mb_w, j->mb_adv, j->mb_dell, j->mb_comp,
                 j->mb_valid, j->scratch, j->eval_rows, j->eval_solved, j->eval_reward};
    for (size_t i = 0; i < sizeof h / sizeof h[0]; ++i) free(h[i]);
    for (int k = 0; j->shards > 1 && k < j->shard_hi - j->shard_lo; ++k) {
        if (j->shard_grads && j->shard_grads[k]) j->be->free(j->shard_grads[k]);
        if (j->phi_grads) free(j->phi_grads[k]);
    }
    free(j->shard_grads);
    free(j->phi_grads);
    free(j->shard_first);
    free(j->seq_shard);
    free(j->shard_stats);
    void *rh[] = {j->weights, j->scores, j->scores_tmp, j->status, j->status_tmp, j->solved, j->outcomes,
                  j->canvas, j->solution, j->text, (void *)j->texts, (void *)j->puzzles};
    for (size_t i = 0; i < sizeof rh / sizeof rh[0]; ++i) free(rh[i]);
    if (j->rewards) gv_grpo_rewards_free(j->rewards, j->reward_models, j->R);
    gv_mdm_policy_free(&j->pol);
    if (j->co) gv_schedule_free(&j->sched);
    gv_mdm_runner_free(&j->runner);
    gv_image_model_free(&j->model);
    gv_image_model_free(&j->ref);
    gv_dataset_free(&j->data);
    if (j->ctx) j->be->ctx_destroy(j->ctx);
}

/* ---- the run ---------------------------------------------------------------------------------- */

typedef struct run_files {
    char dir[4096], config[4200], metrics[4200], last[4200];
} run_files;

/* Refuse to resume under a changed config (anything but train.iterations), unless force. */
static gv_status check_existing(const gv_mdm_train_config *cfg, const run_files *rf, int force) {
    char *text = NULL, *a = NULL, *b = NULL;
    GV_TRY(gv_rundir_slurp(rf->config, &text));
    gv_mdm_train_config stored;
    gv_status s = gv_mdm_train_config_load_resolved(text, rf->config, &stored);
    free(text);
    GV_TRY(s);
    stored.train.iterations = cfg->train.iterations;
    stored.dist = cfg->dist; /* timeouts and check cadence never change the result */
    s = gv_mdm_train_config_dump(&stored, &a);
    if (s == GV_OK) s = gv_mdm_train_config_dump(cfg, &b);
    if (s == GV_OK) s = gv_rundir_refuse_changed_config(rf->dir, a, b, force);
    free(a);
    free(b);
    gv_mdm_train_config_free(&stored);
    return s;
}

/* The parameter hashes (θ, and φ under Co-GRPO) compared across ranks; `when` for the message. */
static gv_status check_params(job *j, const char *when) {
    if (gv_dist_size() == 1) return GV_OK;
    char what[96];
    uint64_t h = 0;
    GV_TRY(gv_params_hash(&j->model.params, &h));
    snprintf(what, sizeof what, "(model) %s", when);
    GV_TRY(gv_dist_check_hash(what, h));
    if (!j->co) return GV_OK;
    GV_TRY(gv_params_hash(&j->sched.phi, &h));
    snprintf(what, sizeof what, "(schedule policy) %s", when);
    return gv_dist_check_hash(what, h);
}

/* GROVE_DIST_FAULT=desync:RANK:ITERATION (tests): this rank's first θ parameter moves by 1e-3. */
static gv_status desync_for_test(job *j) {
    float v;
    GV_TRY(j->be->copy_to_host(&v, j->model.params.values, sizeof v));
    v += 1e-3f;
    return j->be->copy_from_host(j->model.params.values, &v, sizeof v);
}

static gv_status run_loop(job *j, loop_state *st, const gv_mdm_train_options *opt, const run_files *rf,
                          const char *yaml, gv_metrics *m, gv_mdm_train_result *res) {
    const gv_mdm_train_config *cfg = j->cfg;
    int64_t done_now = 0, saved_at = st->iteration;
    double rate = NAN;
    FILE *progress = j->lead ? opt->progress : NULL;
    if (j->lead && st->iteration == 0 && !res->resumed && cfg->eval.at_start) {
        GV_TRY(evaluate(j, 0, m, progress, &rate));
        res->first_solve_rate = rate;
    }
    while (st->iteration < cfg->train.iterations) {
        int stop = (opt->stop_after && done_now >= opt->stop_after) || (opt->stop_flag && *opt->stop_flag);
        if (gv_dist_size() > 1) GV_TRY(gv_dist_agree_stop(&cfg->dist, stop, &stop));
        if (stop) break;
        if (gv_dist_test_fault(st->iteration)) GV_TRY(desync_for_test(j));
        iter_stats is;
        memset(&is, 0, sizeof is);
        const double t0 = gv_rundir_now(), comm0 = gv_dist_comm_seconds();
        GV_TRY(rollout(j, st, &is));
        double t1 = gv_rundir_now(), t2 = t1;
        is.phase_phi = phi_phase(j, st->iteration);
        if (is.phase_phi) { /* φ phase: θ frozen, inner_epochs full-batch φ steps on the same advantages */
            for (int e = 0; e < j->E; ++e) {
                double loss = 0.0, ratio = 1.0;
                GV_TRY(phi_step(j, &loss, &ratio));
                if (e == 0) is.phi_loss = loss, is.phi_ratio = ratio;
            }
            is.first_ratio_min = is.first_ratio_max = is.phi_ratio;
        } else {
            GV_TRY(prepare_epochs(j, st));
            t2 = gv_rundir_now();
            GV_TRY(train_epochs(j, st, &is));
        }
        double t3 = gv_rundir_now();
        is.t_rollout = t1 - t0, is.t_old = t2 - t1, is.t_train = t3 - t2;
        is.comm_s = gv_dist_comm_seconds() - comm0;
        st->iteration++;
        done_now++;
        if (cfg->dist.check_every && st->iteration % cfg->dist.check_every == 0) {
            char when[48];
            snprintf(when, sizeof when, "after iteration %lld", (long long)st->iteration);
            GV_TRY(check_params(j, when));
        }
        log_iteration(m, st, &is, j);
        GV_TRY(gv_metrics_end(m));
        res->last_reward = is.reward_mean;
        if (progress && is.phase_phi)
            fprintf(progress, "mdm train: iteration %lld/%lld reward %.4f solved %.3f phi phase: "
                    "sigma %.3f phi loss %.4f (%.1f s)\n", (long long)st->iteration,
                    (long long)cfg->train.iterations, is.reward_mean, is.solved, is.sigma, is.phi_loss,
                    t3 - t0);
        else if (progress)
            fprintf(progress, "mdm train: iteration %lld/%lld reward %.4f solved %.3f ratio "
                    "[%.4f, %.4f] loss %.4f kl %.2e (%.1f s)\n", (long long)st->iteration,
                    (long long)cfg->train.iterations, is.reward_mean, is.solved, is.ratio_min,
                    is.ratio_max, is.loss, is.kl, t3 - t0);
        /* rank 0 alone evaluates and writes (mdm_train.h); the others wait at the next boundary */
        if (j->lead && cfg->eval.every && st->iteration % cfg->eval.every == 0 &&
            st->iteration < cfg->train.iterations) {
            GV_TRY(evaluate(j, st->iteration, m, progress, &rate));
            if (isnan(res->first_solve_rate)) res->first_solve_rate = rate;
            res->last_solve_rate = rate;
        }
        if (st->iteration % cfg->checkpoint.every == 0) {
            if (j->lead) GV_TRY(save_checkpoint(j, st, yaml, rf->last));
            saved_at = st->iteration;
        }
    }
    if (j->lead && (saved_at != st->iteration || !gv_rundir_exists(rf->last)))
        GV_TRY(save_checkpoint(j, st, yaml, rf->last));
    res->iteration = st->iteration;
    if (st->iteration < cfg->train.iterations) return GV_OK;
    if (done_now && j->lead) {
        GV_TRY(evaluate(j, st->iteration, m, progress, &rate));
        res->last_solve_rate = rate;
    }
    res->finished = 1;
    return GV_OK;
}

gv_status gv_mdm_train_run(const gv_mdm_train_config *cfg, const gv_mdm_train_options *opt) {
    gv_mdm_train_result local;
    gv_mdm_train_result *res = opt->result ? opt->result : &local;
    memset(res, 0, sizeof *res);
    res->first_solve_rate = res->last_solve_rate = res->last_reward = NAN;
    run_files rf;
    if (*cfg->run.dir) snprintf(rf.dir, sizeof rf.dir, "%s", cfg->run.dir);
    else snprintf(rf.dir, sizeof rf.dir, "runs/%s", cfg->run.name);
    snprintf(rf.config, sizeof rf.config, "%s/config.yaml", rf.dir);
    snprintf(rf.metrics, sizeof rf.metrics, "%s/metrics.jsonl", rf.dir);
    snprintf(rf.last, sizeof rf.last, "%s/last.h5", rf.dir);
    snprintf(res->run_dir, sizeof res->run_dir, "%s", rf.dir);
    job j;
    memset(&j, 0, sizeof j);
    snprintf(j.schedule_csv, sizeof j.schedule_csv, "%s/schedule.csv", rf.dir);
    snprintf(j.run_dir, sizeof j.run_dir, "%s", rf.dir);
    j.cfg = cfg;
    j.seed = (uint32_t)cfg->run.seed;
    j.be = opt->backend;
    if (!j.be) GV_TRY(gv_backend_find(device_names[cfg->run.device], &j.be));
    j.lead = gv_dist_rank() == 0;
    gv_dist_set_timeout(cfg->dist.timeout_s);
    GV_TRY(gv_dist_use_backend(j.be)); /* CUDA under several ranks: the NCCL transport (dist.h) */
    GV_TRY(gv_rundir_mkdir_p(rf.dir));
    const int existing = gv_rundir_exists(rf.config);
    if (existing) GV_TRY(check_existing(cfg, &rf, opt->force));
    gv_status s = setup(&j);
    loop_state st;
    memset(&st, 0, sizeof st);
    st.cur.lo = 0;
    st.cur.n = j.n_train_rows;
    char *yaml = NULL;
    gv_metrics m;
    memset(&m, 0, sizeof m);
    if (s == GV_OK) s = host_alloc((size_t)(st.cur.n ? st.cur.n : 1) * sizeof(int64_t), (void **)&st.cur.perm);
    if (s == GV_OK) {
        if (existing && gv_rundir_exists(rf.last)) {
            gv_run_state_value v[3];
            const gv_run_checkpoint c = checkpoint_of(&j, &st, v);
            s = gv_rundir_load_checkpoint(&c, rf.last); /* every rank reads last.h5 */
            if (s == GV_OK && j.lead) s = gv_rundir_metrics_truncate(rf.metrics, "iteration", st.iteration);
            res->resumed = 1;
        } else {
            s = gv_data_cursor_shuffle(&st.cur, j.seed);
        }
    }
    /* every rank has read the run's files; the hash check doubles as the barrier before rank 0
       writes anything */
    if (s == GV_OK) s = check_params(&j, "at start");
    if (s == GV_OK) s = gv_mdm_train_config_dump(cfg, &yaml);
    if (s == GV_OK && j.lead) s = gv_rundir_write_atomic(rf.config, yaml);
    if (s == GV_OK) s = gv_metrics_open(&m, j.lead ? rf.metrics : "/dev/null", j.lead ? res->resumed : 1);
    if (s == GV_OK) {
        s = run_loop(&j, &st, opt, &rf, yaml, &m, res);
        gv_status c = gv_metrics_close(&m);
        if (s == GV_OK) s = c;
    }
    free(yaml);
    free(st.cur.perm);
    job_free(&j);
    return s;
}
