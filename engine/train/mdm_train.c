/* The masked-diffusion GRPO loop (grove/mdm_train.h, ALGORITHMS.md §3 structure and §10 estimators):
 * rollouts with the masked sampler, the `rewards:` list (default: the built-in `sudoku` reward;
 * token batches, failed plugin batches masked: reward_outcome.h), advantages (advantage.h), stored views
 * and logp_old / reference log-probs right after the rollout, the clipped objective + k3 KL
 * (mdm_grpo.h over the grpo_objective ops), AdamW with clip and EMA (optim.h), the run directory,
 * checkpoints and resume (rundir.h), metrics (log.h) and the held-out solve rate (mdm.h).
 * Co-GRPO's wiring: the sampler hook, θ / φ phases, φ in last.h5, the exported schedule.
 * Data parallel over MPI ranks (grove/mdm_train.h, dist.h): shards of whole puzzle groups, gathered
 * rewards, per-shard gradients summed in shard order, rank 0 alone writing.
 * Not here: the job's setup (mdm_setup.c), the per-shard pieces and their gathers
 * (mdm_shards.c; both behind engine/train/mdm_job.h), the estimators' math (mdm_estimator.c), the
 * config schema (mdm_train_config.c), the schedule policy's math (mdm_schedule.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grove/advantage.h"
#include "grove/dist.h"
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
#include "mdm_job.h"

static const char *const device_names[] = {"cpu", "cuda"};

typedef struct loop_state {
    int64_t iteration, opt_step, ema_updates;
    gv_data_cursor cur;
} loop_state;

/* The knobs of every sampler call (rollouts, evals): Co-GRPO's schedule hook when on, and
   sampler.tau_r when fixed (check_supported refuses it with a learned tau_r); else the defaults. */
static gv_masked_knobs sampler_knobs(gv_mdm_job *j) {
    gv_masked_knobs k = {.step_fn = j->co ? gv_schedule_hook : NULL, .step_user = j->co ? &j->sched : NULL};
    if (j->cfg->sampler.tau_r >= 0.0) {
        k.fixed_mask = 1u << GV_KNOB_TAU_R;
        k.fixed[GV_KNOB_TAU_R] = (float)j->cfg->sampler.tau_r;
    }
    return k;
}

/* Co-GRPO: the phase of iteration it (0-based): 1 = φ, 0 = θ (φ first). */
static int phi_phase(const gv_mdm_job *j, int64_t it) {
    return j->co && (it / j->cfg->co_grpo.phase_len) % 2 == 0;
}

/* ---- checkpoints ------------------------------------------------------------------------------ */

/* /schedule: φ's values and Adam moments (flat, the table's padding included), its step count */
static gv_status put_schedule(gv_ckpt_writer *w, void *user) {
    gv_mdm_job *j = user;
    if (!j->co) return GV_OK;
    const gv_params *ps = &j->sched.phi;
    const gv_shape sh = {1, {ps->total}};
    GV_TRY(gv_ckpt_write_tensor(w, "schedule", "values", &sh, ps->values));
    GV_TRY(gv_ckpt_write_tensor(w, "schedule", "adam_m", &sh, ps->adam_m));
    GV_TRY(gv_ckpt_write_tensor(w, "schedule", "adam_v", &sh, ps->adam_v));
    return gv_ckpt_put_i64(w, GV_CKPT_STATE, "schedule_adam_step", j->sched.adam_t);
}

static gv_status get_schedule(gv_ckpt_reader *r, const char *path, void *user) {
    gv_mdm_job *j = user;
    (void)path;
    if (!j->co) return GV_OK;
    gv_params *ps = &j->sched.phi;
    const gv_shape sh = {1, {ps->total}};
    GV_TRY(gv_ckpt_read_tensor(r, "schedule", "values", &sh, ps->values));
    GV_TRY(gv_ckpt_read_tensor(r, "schedule", "adam_m", &sh, ps->adam_m));
    GV_TRY(gv_ckpt_read_tensor(r, "schedule", "adam_v", &sh, ps->adam_v));
    return gv_ckpt_get_i64(r, GV_CKPT_STATE, "schedule_adam_step", &j->sched.adam_t);
}

static gv_run_checkpoint checkpoint_of(gv_mdm_job *j, loop_state *st, gv_run_state_value values[3]) {
    values[0] = (gv_run_state_value){"iteration", &st->iteration, NULL};
    values[1] = (gv_run_state_value){"optimizer_step", &st->opt_step, NULL};
    values[2] = (gv_run_state_value){"ema_updates", &st->ema_updates, NULL};
    return (gv_run_checkpoint){.model = &j->model, .threads = j->ctx->threads, .seed = j->seed,
                               .cursor = &st->cur, .state = values, .n_state = 3,
                               .put_meta = put_schedule, .check = get_schedule, .user = j};
}

static gv_status save_checkpoint(gv_mdm_job *j, loop_state *st, const char *yaml, const char *path) {
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

static gv_status rollout(gv_mdm_job *j, loop_state *st, iter_stats *is) {
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
    gv_masked_knobs joint = sampler_knobs(j);
    if (j->co) GV_TRY(gv_schedule_begin(&j->sched, j->N, st->iteration, 0));
    is->sigma = j->co ? j->sched.sigma : 0.0;
    /* one sampler call per shard of this rank, its samples at their slots (mdm_train.h) */
    for (int sh = j->shard_lo; sh < j->shard_hi; ++sh) {
        const int n0 = j->shard_first[sh], n1 = j->shard_first[sh + 1];
        mc.N = n1 - n0;
        mc.slot0 = (uint32_t)n0;
        /* trajectory's views come from the commit record (other estimators keep none) */
        gv_masked_record rec = {.commit_step = j->commit_step ? j->commit_step + (int64_t)n0 * j->T : NULL};
        if (j->drawn) { /* order_logp: sampler.steps is fixed, so steps == j->views */
            rec.drawn = j->drawn + (int64_t)n0 * j->views * j->T;
            rec.commit_rank = j->commit_rank + (int64_t)n0 * j->T;
            rec.tau_r = j->tau_r + (int64_t)n0 * j->views;
        }
        GV_TRY(gv_masked_sample(&mc, &joint, gv_mdm_logits, &j->runner,
                                j->tokens + (int64_t)n0 * j->T, j->commit_step ? &rec : NULL,
                                j->scratch, j->scratch_bytes));
    }
    GV_TRY(gv_mdm_score_rollout(j, (uint32_t)st->iteration));
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
    GV_TRY(gv_advantage_compute(&in, &ao, j->adv, j->valid, NULL, &is->adv));
    if (j->cell_adv) { /* groups lie within a shard: this rank's samples suffice */
        const int n0 = j->shard_first[j->shard_lo], n1 = j->shard_first[j->shard_hi];
        gv_mdm_cell_advantages(n1 - n0, j->T, j->G, j->tokens + (int64_t)n0 * j->T,
                               j->solution + (int64_t)n0 * j->T, j->completion + (int64_t)n0 * j->T,
                               j->valid + n0, j->cell_adv + (int64_t)n0 * j->T);
    }
    return GV_OK;
}

/* Gather minibatch b of epoch e (sequences order[e][b·mb ...]) into the mb_* buffers. */
static int gather(gv_mdm_job *j, int e, int b) {
    const int lo = b * j->mb, n = j->N - lo < j->mb ? j->N - lo : j->mb;
    const int T = j->T, VT = j->views * T;
    for (int i = 0; i < n; ++i) {
        const int s = j->order[(int64_t)e * j->N + lo + i];
        memcpy(j->mb_ids + (int64_t)i * VT, j->ids + ((int64_t)e * j->N + s) * VT, VT * sizeof(int32_t));
        memcpy(j->mb_coef + (int64_t)i * VT, j->coef + ((int64_t)e * j->N + s) * VT, VT * sizeof(float));
        memcpy(j->mb_tok + (int64_t)i * T, j->tokens + (int64_t)s * T, T * sizeof(int32_t));
        memcpy(j->mb_comp + (int64_t)i * T, j->completion + (int64_t)s * T, T);
        j->mb_adv[i] = j->adv[s];
        if (j->cell_adv)
            memcpy(j->mb_cell_adv + (int64_t)i * T, j->cell_adv + (int64_t)s * T, T * sizeof(float));
        j->mb_valid[i] = j->valid[s];
        if (j->drawn) {
            memcpy(j->mb_drawn + (int64_t)i * VT, j->drawn + (int64_t)s * VT, VT * sizeof(int32_t));
            memcpy(j->mb_rank + (int64_t)i * T, j->commit_rank + (int64_t)s * T, T * sizeof(int32_t));
            memcpy(j->mb_cs + (int64_t)i * T, j->commit_step + (int64_t)s * T, T * sizeof(int32_t));
            memcpy(j->mb_tau + (int64_t)i * j->views, j->tau_r + (int64_t)s * j->views,
                   (size_t)j->views * sizeof(float));
        }
    }
    return n;
}

const gv_mdm_order *gv_mdm_mb_order(const gv_mdm_job *j, int a, gv_mdm_order *o) {
    if (!j->drawn) return NULL;
    *o = (gv_mdm_order){.drawn = j->mb_drawn + (int64_t)a * j->views * j->T,
                        .commit_rank = j->mb_rank + (int64_t)a * j->T,
                        .commit_step = j->mb_cs + (int64_t)a * j->T,
                        .tau_r = j->mb_tau + (int64_t)a * j->views};
    return o;
}

/* Views, minibatch orders, ℓ̂_old and ℓ̂_ref for every inner epoch, right after the rollout; the
   log-probs of this rank's shards only, one call per (minibatch, shard) as in training. */
static gv_status prepare_epochs(gv_mdm_job *j, loop_state *st) {
    const gv_mdm_train_config *cfg = j->cfg;
    uint32_t key[2];
    gv_rng_key(j->seed, GV_RNG_STREAM_TRAIN, key);
    for (int e = 0; e < j->E; ++e) {
        gv_mdm_view_args va = {.N = j->N, .T = j->T, .mask_id = j->mask_id,
                               .estimator = cfg->algorithm.estimator,
                               .prompt_mask = (float)cfg->algorithm.prompt_mask,
                               .t_lo = (float)cfg->algorithm.t_lo, .t_hi = (float)cfg->algorithm.t_hi,
                               .seed = j->seed, .stream = GV_RNG_STREAM_TRAIN,
                               .iteration = (uint32_t)st->iteration, .draw = (uint32_t)e,
                               .steps = j->views, .commit_step = j->commit_step,
                               .order = cfg->algorithm.order_logp};
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
        gv_mdm_order_by_shard(j, e);
        const int nb = (j->N + j->mb - 1) / j->mb;
        const int64_t T = j->T, VT = (int64_t)j->views * j->T;
        for (int b = 0; b < nb; ++b) {
            const int n = gather(j, e, b);
            for (int sh = j->shard_lo; sh < j->shard_hi; ++sh) {
                int a, c;
                gv_mdm_shard_rows(j, e, b, n, sh, &a, &c);
                if (c == a) continue;
                float *old = j->old + ((int64_t)e * j->N + (int64_t)b * j->mb + a) * T;
                gv_mdm_order ob;
                const gv_mdm_order *mo = gv_mdm_mb_order(j, a, &ob);
                GV_TRY(gv_mdm_policy_logp(&j->pol, j->model.params.values, c - a, j->mb_ids + a * VT,
                                          j->mb_tok + a * T, j->mb_coef + a * VT, mo, old));
                if (j->have_ref) {
                    float *ref = j->refl + ((int64_t)e * j->N + (int64_t)b * j->mb + a) * T;
                    GV_TRY(gv_mdm_policy_logp(&j->pol, j->ref.params.values, c - a, j->mb_ids + a * VT,
                                              j->mb_tok + a * T, j->mb_coef + a * VT, mo, ref));
                }
            }
        }
    }
    return GV_OK;
}

static gv_status train_epochs(gv_mdm_job *j, loop_state *st, iter_stats *is) {
    const gv_mdm_train_config *cfg = j->cfg;
    gv_params *ps = &j->model.params;
    gv_adamw_config adam = GV_ADAMW_CONFIG_DEFAULT;
    adam.lr = (float)cfg->train.lr;
    adam.weight_decay = (float)cfg->train.weight_decay;
    const int nb = (j->N + j->mb - 1) / j->mb;
    gv_mdm_shard_part *parts = j->shard_stats;
    is->ratio_min = INFINITY;
    is->ratio_max = -INFINITY;
    for (int e = 0; e < j->E; ++e)
        for (int b = 0; b < nb; ++b) {
            const int n = gather(j, e, b);
            GV_TRY(gv_mdm_token_weights(cfg->algorithm.aggregation, n, j->T, j->mb_comp, j->mb_adv,
                                        j->mb_valid, j->mb_w));
            GV_TRY(gv_mdm_minibatch_parts(j, e, b, n, parts));
            const gv_mdm_shard_part t = gv_mdm_combine_parts(j, parts);
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

/* <run dir>/eval-<iteration>.csv: one line per held-out puzzle (test row, solved 0/1, reward). The
   eval's sampler draws are addressed by (seed, puzzle slot) only, so two evals of one run at
   different iterations see the same noise per puzzle: a paired before/after comparison
   (bench/mdm/paired_gain.py). */
static gv_status write_eval_csv(const gv_mdm_job *j, int64_t iteration) {
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

static gv_status evaluate(gv_mdm_job *j, int64_t iteration, gv_metrics *m, FILE *progress, double *rate) {
    if (!j->n_eval) return GV_OK;
    j->runner.theta = j->model.params.ema;
    gv_masked_knobs mean_schedule = sampler_knobs(j);
    gv_sudoku_eval_options o = {.steps = j->cfg->sampler.steps, .batch = j->cfg->eval.batch,
                                .seed = j->seed, .knobs = &mean_schedule,
                                .solved_each = j->eval_solved, .reward_each = j->eval_reward};
    if (j->co) GV_TRY(gv_schedule_begin(&j->sched, (int)j->n_eval, iteration, 1));
    gv_sudoku_eval_result r;
    GV_TRY(gv_sudoku_evaluate(&j->runner, &j->data.test, j->eval_rows, j->n_eval, &o, &r));
    GV_TRY(write_eval_csv(j, iteration));
    if (j->co) { /* the learned mean schedule at the held-out puzzles' mean features */
        FILE *f = fopen(j->schedule_csv, "w");
        if (!f) return GV_ERROR(GV_ERR_IO, "%s: cannot write", j->schedule_csv);
        gv_status s = gv_schedule_write_csv(&j->sched, &mean_schedule, f);
        if (fclose(f) && s == GV_OK) s = GV_ERROR(GV_ERR_IO, "%s: write failed", j->schedule_csv);
        GV_TRY(s);
        if (progress) {
            fprintf(progress, "mdm train: iteration %lld learned schedule (step: r tau_s tau_r):",
                    (long long)iteration);
            for (int k = 0; k < j->sched.cfg.steps; ++k) {
                float kn[GV_KNOB_COUNT], fr, cf;
                gv_schedule_rollout_mean_knobs(&j->sched, &mean_schedule, k, &fr, &cf, kn);
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

static void log_iteration(gv_metrics *m, const loop_state *st, const iter_stats *is, const gv_mdm_job *j) {
    gv_metrics_begin(m);
    gv_metrics_i64(m, "iteration", st->iteration);
    gv_metrics_f64(m, "reward_mean", is->reward_mean);
    gv_mdm_log_failed_batches(m, j); /* per plugin reward (mdm_shards.c) */
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
static gv_status check_params(gv_mdm_job *j, const char *when) {
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
static gv_status desync_for_test(gv_mdm_job *j) {
    float v;
    GV_TRY(j->be->copy_to_host(&v, j->model.params.values, sizeof v));
    v += 1e-3f;
    return j->be->copy_from_host(j->model.params.values, &v, sizeof v);
}

static gv_status run_loop(gv_mdm_job *j, loop_state *st, const gv_mdm_train_options *opt, const run_files *rf,
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
                GV_TRY(gv_mdm_phi_step(j, &loss, &ratio));
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

/* The dry run's counts (gv_mdm_train_plan) from a set-up job. */
static void plan_of(const gv_mdm_job *j, gv_mdm_train_plan *p) {
    const gv_mdm_train_config *cfg = j->cfg;
    const int64_t N = j->N, E = j->E, V = j->views, T = j->T;
    memset(p, 0, sizeof *p);
    p->puzzles = j->P, p->group = j->G, p->samples = j->N;
    p->steps = j->steps, p->views = j->views, p->T = j->T, p->vocab = j->V;
    p->inner_epochs = j->E, p->minibatch = j->mb;
    p->optimizer_steps = j->E * ((j->N + j->mb - 1) / j->mb);
    p->rollout_rows = N * j->steps;
    p->logp_old_rows = E * N * V;
    p->ref_rows = j->have_ref ? E * N * V : 0;
    p->train_rows = E * N * V;
    p->eval_rows = cfg->eval.puzzles > 0 ? (int64_t)cfg->eval.puzzles * j->steps : 0;
    p->train_puzzles = j->n_train_rows;
    for (int i = 0; i < j->model.params.count; ++i) p->params += j->model.params.items[i].numel;
    p->param_mib = 6.0 * (double)j->model.params.total * sizeof(float) / 1048576.0;
    p->views_mib = (double)(E * N * V * T) * (sizeof(int32_t) + sizeof(float)) / 1048576.0;
    if (j->drawn) /* order_logp: the order record, per sequence and per minibatch */
        p->views_mib += (double)((N + j->mb) * (V * T + T + V) + (int64_t)j->mb * T) * 4.0 / 1048576.0;
    p->co_grpo = j->co;
    p->shards = j->shards;
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
    gv_mdm_job j;
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
    if (opt->dry_run) {
        gv_status s = gv_mdm_job_setup(&j);
        if (s == GV_OK) plan_of(&j, &res->plan);
        gv_mdm_job_free(&j);
        return s;
    }
    const int existing = gv_rundir_exists(rf.config);
    if (existing) GV_TRY(check_existing(cfg, &rf, opt->force));
    gv_status s = gv_mdm_job_setup(&j);
    if (s == GV_OK) s = gv_rundir_mkdir_p(rf.dir); /* after setup: a refused config makes no run dir */
    loop_state st;
    memset(&st, 0, sizeof st);
    st.cur.lo = 0;
    st.cur.n = j.n_train_rows;
    char *yaml = NULL;
    gv_metrics m;
    memset(&m, 0, sizeof m);
    if (s == GV_OK) s = gv_mdm_host_alloc((size_t)(st.cur.n ? st.cur.n : 1) * sizeof(int64_t), (void **)&st.cur.perm);
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
    gv_mdm_job_free(&j);
    return s;
}
