/* The masked-diffusion GRPO loop (grove/mdm_train.h, ALGORITHMS.md §3 structure and §10 estimators):
 * rollouts with the masked sampler, the `sudoku` reward, advantages (advantage.h), stored views
 * and logp_old / reference log-probs right after the rollout, the clipped objective + k3 KL
 * (mdm_grpo.h over the grpo_objective ops), AdamW with clip and EMA (optim.h), the run directory,
 * checkpoints and resume (rundir.h), metrics (log.h) and the held-out solve rate (mdm.h).
 * Co-GRPO's wiring: the sampler hook, θ / φ phases, φ in last.h5, the exported schedule.
 * Not here: the estimators' math (mdm_estimator.c), the config schema (mdm_train_config.c),
 * the schedule policy's math (mdm_schedule.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grove/advantage.h"
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
    int32_t *commit_step, *pos0;       /* trajectory: (N, T) the rollout's record, (N) epoch-0 slot */
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
    double t_rollout, t_old, t_train;
    int phase_phi;
    double phi_loss, phi_ratio, sigma;
    int64_t completion_tokens;
} iter_stats;

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
    gv_masked_config mc = {.N = j->N, .T = j->T, .V = j->V, .mask_id = j->mask_id, .steps = steps,
                           .blocks = 1, .seed = j->seed, .stream = GV_RNG_STREAM_SAMPLER,
                           .addr = {.iteration = (uint32_t)st->iteration,
                                    .purpose = GV_RNG_PURPOSE_MASK_UNIFORM}};
    j->runner.theta = j->model.params.values; /* rollouts use the raw weights (§3) */
    gv_masked_knobs joint = {.step_fn = gv_schedule_hook, .step_user = &j->sched};
    if (j->co) GV_TRY(gv_schedule_begin(&j->sched, j->N, st->iteration, 0));
    is->sigma = j->co ? j->sched.sigma : 0.0;
    gv_masked_record rec = {.commit_step = j->commit_step}; /* trajectory's views come from it */
    GV_TRY(gv_masked_sample(&mc, j->co ? &joint : NULL, gv_mdm_logits, &j->runner, j->tokens,
                            j->commit_step ? &rec : NULL, j->scratch, j->scratch_bytes));
    double rsum = 0.0, solved = 0.0;
    for (int n = 0; n < j->N; ++n) {
        const int64_t row = j->train_rows[j->prompt_rows[n / j->G]];
        uint8_t filled[GV_SUDOKU_MAX_CELLS];
        gv_sudoku_grid_from_tokens(j->tokens + (int64_t)n * j->T, j->S, filled);
        j->reward[n] = gv_sudoku_score(gv_sudoku_puzzle(&j->data.train, row),
                                       gv_sudoku_solution(&j->data.train, row), filled, j->S);
        rsum += j->reward[n];
        solved += j->reward[n] >= 1.5f;
    }
    is->reward_mean = rsum / j->N;
    is->solved = solved / j->N;
    static const int centre[] = {GV_ADV_CENTER_ZSCORE, GV_ADV_CENTER_MEAN, GV_ADV_CENTER_LEAVE_ONE_OUT};
    gv_advantage_opts ao = gv_advantage_opts_default();
    ao.global_std = 0;
    ao.adv_clip = cfg->algorithm.adv_clip;
    ao.center = centre[cfg->algorithm.advantage];
    const double w1 = 1.0;
    gv_advantage_input in = {.n_samples = j->N, .n_rewards = 1, .rewards = j->reward, .weights = &w1,
                             .prompt = j->group};
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

/* Views, minibatch orders, ℓ̂_old and ℓ̂_ref for every inner epoch, right after the rollout. */
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
                               .iteration = (uint32_t)st->iteration, .draw = (uint32_t)e,
                               .steps = j->views, .commit_step = j->commit_step};
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
        if (e > 0 && j->commit_step) { /* trajectory: the same views every epoch, so epoch 0's ℓ̂ */
            for (int i = 0; i < j->N; ++i) {
                const int64_t to = ((int64_t)e * j->N + i) * j->T, from = (int64_t)j->pos0[ord[i]] * j->T;
                memcpy(j->old + to, j->old + from, j->T * sizeof(float));
                if (j->have_ref) memcpy(j->refl + to, j->refl + from, j->T * sizeof(float));
            }
            continue;
        }
        if (j->commit_step)
            for (int i = 0; i < j->N; ++i) j->pos0[ord[i]] = i;
        const int nb = (j->N + j->mb - 1) / j->mb;
        for (int b = 0; b < nb; ++b) {
            const int n = gather(j, e, b);
            float *old = j->old + ((int64_t)e * j->N + (int64_t)b * j->mb) * j->T;
            GV_TRY(gv_mdm_policy_logp(&j->pol, j->model.params.values, n, j->mb_ids, j->mb_tok,
                                      j->mb_coef, old));
            if (j->have_ref) {
                float *ref = j->refl + ((int64_t)e * j->N + (int64_t)b * j->mb) * j->T;
                GV_TRY(gv_mdm_policy_logp(&j->pol, j->ref.params.values, n, j->mb_ids, j->mb_tok,
                                          j->mb_coef, ref));
            }
        }
    }
    return GV_OK;
}

static gv_status train_epochs(job *j, loop_state *st, iter_stats *is) {
    const gv_mdm_train_config *cfg = j->cfg;
    gv_params *ps = &j->model.params;
    gv_adamw_config adam = GV_ADAMW_CONFIG_DEFAULT;
    adam.lr = (float)cfg->train.lr;
    adam.weight_decay = (float)cfg->train.weight_decay;
    gv_mdm_loss_args la = {.clip_eps = (float)cfg->algorithm.clip_range, .beta = (float)cfg->algorithm.beta};
    const int nb = (j->N + j->mb - 1) / j->mb;
    is->ratio_min = INFINITY;
    is->ratio_max = -INFINITY;
    for (int e = 0; e < j->E; ++e)
        for (int b = 0; b < nb; ++b) {
            const int n = gather(j, e, b);
            const float *old = j->old + ((int64_t)e * j->N + (int64_t)b * j->mb) * j->T;
            const float *ref = j->have_ref ? j->refl + ((int64_t)e * j->N + (int64_t)b * j->mb) * j->T : NULL;
            GV_TRY(gv_mdm_token_weights(cfg->algorithm.aggregation, n, j->T, j->mb_comp, j->mb_adv,
                                        j->mb_valid, j->mb_w));
            GV_TRY(gv_params_zero_grads(ps));
            GV_TRY(gv_mdm_policy_logp(&j->pol, ps->values, n, j->mb_ids, j->mb_tok, j->mb_coef, j->mb_ell));
            float loss, stats[GV_GRPO_STATS];
            int units = 0;
            GV_TRY(gv_mdm_grpo_loss(&j->pol, n, j->mb_ell, old, ref, j->mb_adv, j->mb_w, &la, j->mb_dell,
                                    &loss, stats, &units));
            if (!units) continue;
            if (!is->minibatches) {
                is->first_ratio_min = stats[GV_GRPO_STAT_RATIO_MIN];
                is->first_ratio_max = stats[GV_GRPO_STAT_RATIO_MAX];
            }
            is->minibatches++;
            is->units += units;
            is->loss += loss;
            is->ratio_mean += stats[GV_GRPO_STAT_RATIO_MEAN];
            is->ratio_min = fmin(is->ratio_min, stats[GV_GRPO_STAT_RATIO_MIN]);
            is->ratio_max = fmax(is->ratio_max, stats[GV_GRPO_STAT_RATIO_MAX]);
            is->clip_above += stats[GV_GRPO_STAT_CLIP_ABOVE];
            is->clip_below += stats[GV_GRPO_STAT_CLIP_BELOW];
            is->approx_kl += stats[GV_GRPO_STAT_APPROX_KL];
            is->kl += stats[GV_GRPO_STAT_KL_MEAN];
            if (!isfinite(loss)) return GV_ERROR(GV_ERR_NUMERIC, "mdm train: non-finite loss at iteration "
                                                 "%lld", (long long)st->iteration);
            GV_TRY(gv_mdm_policy_backward(&j->pol, ps->values, ps->grads, j->mb_dell));
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
    if (j->co) {
        gv_metrics_str(m, "phase", is->phase_phi ? "phi" : "theta");
        gv_metrics_f64(m, "sigma", is->sigma);
        gv_metrics_f64(m, "phi_loss", is->phi_loss);
        gv_metrics_f64(m, "phi_ratio", is->phi_ratio);
        gv_metrics_i64(m, "phi_step", j->sched.adam_t);
    }
}

/* ---- setup ------------------------------------------------------------------------------------ */

static gv_status setup(job *j) {
    const gv_mdm_train_config *cfg = j->cfg;
    const gv_dataset_kind dk = cfg->data.dataset == 0 ? GV_DATASET_SUDOKU4 : GV_DATASET_SUDOKU9;
    char data_path[4096];
    if (*cfg->data.path) snprintf(data_path, sizeof data_path, "%s", cfg->data.path);
    else GV_TRY(gv_root_path(gv_dataset_kind_get(dk)->default_path, data_path, sizeof data_path));
    GV_TRY(gv_dataset_ensure(dk, data_path, NULL, NULL));
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
    j->E = cfg->train.inner_epochs;
    j->mb = cfg->train.minibatch < j->N ? cfg->train.minibatch : j->N;
    j->steps = cfg->sampler.steps ? cfg->sampler.steps : cfg->data.blanks_max;
    /* trajectory: one view per sampler step (with sampler.steps 0, blanks_max of them; an
       iteration's puzzles with fewer blanks leave the last views without tokens) */
    j->views = gv_mdm_estimator_views(cfg->algorithm.estimator, j->steps);
    if (cfg->algorithm.estimator == GV_MDM_EST_TRAJECTORY && cfg->co_grpo.enabled)
        return GV_ERROR(GV_ERR_CONFIG, "algorithm.estimator trajectory with co_grpo.enabled: the "
                        "trajectory views score at τ_s = 1, Co-GRPO's sampler does not");
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
    if (cfg->algorithm.estimator == GV_MDM_EST_TRAJECTORY) { /* NULL otherwise: no record kept */
        GV_TRY(host_alloc(N * T * sizeof(int32_t), (void **)&j->commit_step));
        GV_TRY(host_alloc(N * sizeof(int32_t), (void **)&j->pos0));
    }
    gv_masked_config sc = {.N = j->N > cfg->eval.batch ? j->N : cfg->eval.batch, .T = j->T, .V = j->V};
    j->scratch_bytes = gv_masked_scratch_bytes(&sc, 0);
    GV_TRY(host_alloc(j->scratch_bytes, &j->scratch));
    const int rows = j->N > cfg->eval.batch ? j->N : cfg->eval.batch;
    GV_TRY(gv_mdm_runner_init(&j->runner, &j->model, j->ctx, rows < 64 ? rows : 64));
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
    }
    return gv_mdm_policy_init(&j->pol, &j->model, j->ctx, j->mb, j->views, j->mask_id);
}

static void job_free(job *j) {
    void *h[] = {j->train_rows, j->prompt_rows, j->tokens, j->group, j->completion, j->valid,
                 j->reward, j->adv, j->ids, j->coef, j->t, j->order, j->old, j->refl, j->mb_ids,
                 j->mb_tok, j->mb_coef, j->mb_ell, j->mb_w, j->mb_adv, j->mb_dell, j->mb_comp,
                 j->mb_valid, j->commit_step, j->pos0, j->scratch, j->eval_rows, j->eval_solved, j->eval_reward};
    for (size_t i = 0; i < sizeof h / sizeof h[0]; ++i) free(h[i]);
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
    s = gv_mdm_train_config_dump(&stored, &a);
    if (s == GV_OK) s = gv_mdm_train_config_dump(cfg, &b);
    if (s == GV_OK) s = gv_rundir_refuse_changed_config(rf->dir, a, b, force);
    free(a);
    free(b);
    gv_mdm_train_config_free(&stored);
    return s;
}

static gv_status run_loop(job *j, loop_state *st, const gv_mdm_train_options *opt, const run_files *rf,
                          const char *yaml, gv_metrics *m, gv_mdm_train_result *res) {
    const gv_mdm_train_config *cfg = j->cfg;
    int64_t done_now = 0, saved_at = st->iteration;
    double rate = NAN;
    if (st->iteration == 0 && !res->resumed && cfg->eval.at_start) {
        GV_TRY(evaluate(j, 0, m, opt->progress, &rate));
        res->first_solve_rate = rate;
    }
    while (st->iteration < cfg->train.iterations && !(opt->stop_after && done_now >= opt->stop_after) &&
           !(opt->stop_flag && *opt->stop_flag)) {
        iter_stats is;
        memset(&is, 0, sizeof is);
        double t0 = gv_rundir_now();
        GV_TRY(rollout(j, st, &is));
        double t1 = gv_rundir_now(), t2 = t1;
        is.phase_phi = phi_phase(j, st->iteration);
        if (is.phase_phi) { /* φ phase: θ frozen, inner_epochs full-batch φ steps on the same advantages */
            for (int e = 0; e < j->E; ++e) {
                double loss = 0.0, ratio = 1.0;
                GV_TRY(gv_schedule_update(&j->sched, j->adv, &loss, &ratio));
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
        st->iteration++;
        done_now++;
        log_iteration(m, st, &is, j);
        GV_TRY(gv_metrics_end(m));
        res->last_reward = is.reward_mean;
        if (opt->progress && is.phase_phi)
            fprintf(opt->progress, "mdm train: iteration %lld/%lld reward %.4f solved %.3f phi phase: "
                    "sigma %.3f phi loss %.4f (%.1f s)\n", (long long)st->iteration,
                    (long long)cfg->train.iterations, is.reward_mean, is.solved, is.sigma, is.phi_loss,
                    t3 - t0);
        else if (opt->progress)
            fprintf(opt->progress, "mdm train: iteration %lld/%lld reward %.4f solved %.3f ratio "
                    "[%.4f, %.4f] loss %.4f kl %.2e (%.1f s)\n", (long long)st->iteration,
                    (long long)cfg->train.iterations, is.reward_mean, is.solved, is.ratio_min,
                    is.ratio_max, is.loss, is.kl, t3 - t0);
        if (cfg->eval.every && st->iteration % cfg->eval.every == 0 && st->iteration < cfg->train.iterations) {
            GV_TRY(evaluate(j, st->iteration, m, opt->progress, &rate));
            if (isnan(res->first_solve_rate)) res->first_solve_rate = rate;
            res->last_solve_rate = rate;
        }
        if (st->iteration % cfg->checkpoint.every == 0) {
            GV_TRY(save_checkpoint(j, st, yaml, rf->last));
            saved_at = st->iteration;
        }
    }
    if (saved_at != st->iteration || !gv_rundir_exists(rf->last)) GV_TRY(save_checkpoint(j, st, yaml, rf->last));
    res->iteration = st->iteration;
    if (st->iteration < cfg->train.iterations) return GV_OK;
    if (done_now) {
        GV_TRY(evaluate(j, st->iteration, m, opt->progress, &rate));
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
            s = gv_rundir_load_checkpoint(&c, rf.last);
            if (s == GV_OK) s = gv_rundir_metrics_truncate(rf.metrics, "iteration", st.iteration);
            res->resumed = 1;
        } else {
            s = gv_data_cursor_shuffle(&st.cur, j.seed);
        }
    }
    if (s == GV_OK) s = gv_mdm_train_config_dump(cfg, &yaml);
    if (s == GV_OK) s = gv_rundir_write_atomic(rf.config, yaml);
    if (s == GV_OK) s = gv_metrics_open(&m, rf.metrics, res->resumed);
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
