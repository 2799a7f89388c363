/* The `grove train` loop and its run directory (grpo.h; DESIGN.md §1, §3 Checkpoints / Logging;
 * ALGORITHMS.md §3).
 *
 * runs/<name>/: config.yaml (canonical resolved dump; train.lr_schedule.total_steps fixed at
 * creation to iterations · inner_epochs · ceil(P·G / minibatch) optimizer steps when 0),
 * metrics.jsonl (one record per iteration and one per eval, each starting with "iteration";
 * timing fields last), last.h5 (atomic, every iteration), iter-<k>.h5 every checkpoint.every
 * (checkpoint.keep newest kept, 0 = all), best.h5 (pinned: the best first-eval-reward mean so
 * far, never rotated). A checkpoint holds /params, /optim/{m,v}, /ema, /state {iteration,
 * optimizer_step, ema_updates, data_epoch, data_position, seed, skips_in_a_row, best_eval},
 * /config and /meta (model description, threads, reference_model + reference_hash: the KL
 * reference is the base model FILE, reloaded and checked on resume, not stored).
 * Resume: an existing run directory continues from last.h5 (metrics after its iteration are
 * dropped); a config differing in anything but train.iterations and dist.* is refused, naming
 * the first differing key, unless force. Everything random is addressed by (seed, iteration, slot, node,
 * step) and the prompt cursor is state, so a resumed run is bit-identical to an uninterrupted one
 * (same machine and thread count). Stops: stop_after iterations, *stop_flag (SIGINT) at the next
 * iteration boundary, train.max_skips consecutive non-finite optimizer steps (an error; last.h5
 * keeps the last completed iteration). With dump.every > 0: rollouts-<k>.h5 (grpo.h) on iterations
 * k % dump.every == 0, after the rewards and before training, the dump.keep newest kept.
 * Under several ranks (grpo.h, data parallel): rank 0 alone writes config.yaml, metrics (with
 * comm_s, the iteration's seconds in collectives), checkpoints, evals and rollout dumps (every
 * rank takes part in the dump's gather), and shows progress;
 * every rank reads last.h5; the parameter hash is compared at start and after every
 * dist.check_every-th iteration; a stop request on any rank stops all at the same boundary. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grove/checkpoint.h"
#include "grove/dist.h"
#include "grove/grpo.h"
#include "grove/log.h"
#include "grove/optim.h"

typedef struct run_files {
    char dir[4096], config[4200], metrics[4200], last[4200], best[4200];
} run_files;

/* ---- config ----------------------------------------------------------------------------------- */

static gv_status prepare_run_config(const gv_run_config *cfg, const run_files *rf, int force,
                                    int64_t total_steps, gv_run_config *eff, int *existing) {
    *eff = *cfg; /* shallow: strings stay owned by cfg */
    *existing = gv_rundir_exists(rf->config);
    if (!*existing) {
        if (!eff->train.lr_schedule.total_steps) eff->train.lr_schedule.total_steps = (int)total_steps;
        return GV_OK;
    }
    char *text = NULL, *a = NULL, *b = NULL;
    GV_TRY(gv_rundir_slurp(rf->config, &text));
    gv_run_config stored;
    gv_status s = gv_run_config_load_resolved(text, rf->config, &stored);
    free(text);
    GV_TRY(s);
    if (!eff->train.lr_schedule.total_steps)
        eff->train.lr_schedule.total_steps = stored.train.lr_schedule.total_steps;
    const int keep_iterations = stored.train.iterations;
    stored.train.iterations = eff->train.iterations;
    stored.dist = eff->dist; /* timeouts and check cadence never change the result */
    s = gv_run_config_dump(&stored, NULL, &a);
    if (s == GV_OK) s = gv_run_config_dump(eff, NULL, &b);
    if (s == GV_OK) s = gv_rundir_refuse_changed_config(rf->dir, a, b, force);
    stored.train.iterations = keep_iterations;
    free(a);
    free(b);
    gv_run_config_free(&stored);
    return s;
}

/* ---- checkpoints ------------------------------------------------------------------------------ */

/* /meta reference_model + reference_hash: the KL reference is the base model file, not stored. */
/* /meta reference_model + reference_hash: the KL reference is the base model file, not stored.
   With calibrated noise, /state psi (float32, N-1; the gallery draws it), psi_rounds (rounds done)
   and psi_batch_samples (the calibration batch size, which the fixed point depends on). */
static gv_status put_reference(gv_ckpt_writer *w, void *user) {
    const gv_grpo_job *j = user;
    gv_status s = gv_ckpt_put_str(w, GV_CKPT_META, "reference_model", j->base.path);
    if (s == GV_OK) s = gv_ckpt_put_str(w, GV_CKPT_META, "reference_hash", j->base.hash);
    if (s == GV_OK && j->noise.psi) {
        s = gv_ckpt_put_f32s(w, GV_CKPT_STATE, "psi", j->cal.psi, j->cal.n_steps);
        if (s == GV_OK) s = gv_ckpt_put_i64(w, GV_CKPT_STATE, "psi_rounds", j->cal.round);
        if (s == GV_OK) s = gv_ckpt_put_i64(w, GV_CKPT_STATE, "psi_batch_samples", j->cal.batch_samples);
    }
    return s;
}

/* ψ of a calibrated run back from its checkpoint (it was frozen when the checkpoint was written). */
static gv_status load_psi(gv_ckpt_reader *r, const char *path, gv_grpo_job *j) {
    int64_t n = 0, rounds = 0, samples = 0;
    GV_TRY(gv_ckpt_get_len(r, GV_CKPT_STATE, "psi", &n));
    if (n != j->cal.n_steps)
        return GV_ERROR(GV_ERR_FORMAT, "%s: /state psi has %lld steps, the run %d", path,
                        (long long)n, j->cal.n_steps);
    GV_TRY(gv_ckpt_get_f32s(r, GV_CKPT_STATE, "psi", j->cal.psi, n));
    GV_TRY(gv_ckpt_get_i64(r, GV_CKPT_STATE, "psi_rounds", &rounds));
    GV_TRY(gv_ckpt_get_i64(r, GV_CKPT_STATE, "psi_batch_samples", &samples));
    j->cal.round = (int)rounds;
    j->cal.batch_samples = (int)samples;
    return GV_OK;
}

static gv_status check_reference(gv_ckpt_reader *r, const char *path, void *user) {
    gv_grpo_job *j = user;
    if (j->noise.psi) GV_TRY(load_psi(r, path, j));
    char *ref_hash = NULL;
    gv_status s = gv_ckpt_get_str(r, GV_CKPT_META, "reference_hash", &ref_hash);
    if (s == GV_OK && strcmp(ref_hash, j->base.hash) != 0)
        s = GV_ERROR(GV_ERR_FORMAT, "%s: the run's reference model hash %s differs from %s (%s): "
                     "the base model changed since the run started", path, ref_hash, j->base.hash,
                     j->base.path);
    free(ref_hash);
    return s;
}

/* The run checkpoint of this loop (rundir.h): its /state counters; `values` holds the table. */
static gv_run_checkpoint checkpoint_of(gv_grpo_job *j, gv_grpo_state *st,
                                       gv_run_state_value values[5]) {
    values[0] = (gv_run_state_value){"iteration", &st->iteration, NULL};
    values[1] = (gv_run_state_value){"optimizer_step", &st->opt_step, NULL};
    values[2] = (gv_run_state_value){"ema_updates", &st->ema_updates, NULL};
    values[3] = (gv_run_state_value){"skips_in_a_row", &st->skips_in_a_row, NULL};
    values[4] = (gv_run_state_value){"best_eval", NULL, &st->best_eval};
    return (gv_run_checkpoint){.model = &j->model, .threads = j->ctx->threads, .seed = j->seed,
                               .cursor = &j->cursor, .state = values, .n_state = 5,
                               .put_meta = put_reference, .check = check_reference, .user = j};
}

static gv_status save_checkpoint(gv_grpo_job *j, gv_grpo_state *st, const char *yaml,
                                 const char *path) {
    gv_run_state_value values[5];
    const gv_run_checkpoint c = checkpoint_of(j, st, values);
    return gv_rundir_save_checkpoint(&c, yaml, path);
}

static gv_status load_checkpoint(gv_grpo_job *j, gv_grpo_state *st, const char *path) {
    gv_run_state_value values[5];
    const gv_run_checkpoint c = checkpoint_of(j, st, values);
    return gv_rundir_load_checkpoint(&c, path);
}

/* ---- metrics ---------------------------------------------------------------------------------- */

/* "classifier", or "classifier_2" for the second reward of the same name (a plugin's name is
   the one its table gives). */
static void reward_key(const gv_reward *r, int k, char *out, size_t n) {
    int same = 0;
    for (int i = 0; i < k; ++i) same += strcmp(r[i].name, r[k].name) == 0;
    if (same) snprintf(out, n, "%s_%d", r[k].name, same + 1);
    else snprintf(out, n, "%s", r[k].name);
}

static gv_status log_iteration(gv_metrics *m, const gv_grpo_job *j, const gv_grpo_state *st,
                               const gv_grpo_rollout_stats *rs, const gv_grpo_train_stats *ts,
                               float lr, double iter_s, double comm_s, double wall) {
    const gv_run_config *cfg = j->cfg;
    const gv_advantage_result *a = &rs->adv;
    gv_metrics_begin(m);
    gv_metrics_i64(m, "iteration", st->iteration);
    gv_metrics_object(m, "reward");
    for (int k = 0; k < cfg->n_rewards; ++k) {
        char key[64];
        reward_key(j->rewards, k, key, sizeof key);
        gv_metrics_object(m, key);
        gv_metrics_f64(m, "raw_mean", rs->per_reward[k].raw_mean);
        gv_metrics_f64(m, "raw_std", rs->per_reward[k].raw_std);
        gv_metrics_f64(m, "norm_mean", rs->per_reward[k].norm_mean);
        gv_metrics_f64(m, "norm_std", rs->per_reward[k].norm_std);
        if (j->rewards[k].plugin) /* summed over the ranks (rollout.c) */
            gv_metrics_i64(m, "failed_batches", rs->failed_batches ? rs->failed_batches[k]
                                                                   : j->rewards[k].failed_batches);
        gv_metrics_end_object(m);
    }
    gv_metrics_end_object(m);
    gv_metrics_f64(m, "reward_mean", a->reward_mean);
    gv_metrics_f64(m, "reward_std", a->reward_std);
    gv_metrics_object(m, "advantage");
    gv_metrics_f64(m, "mean", a->adv_mean);
    gv_metrics_f64(m, "std", a->adv_std);
    gv_metrics_f64(m, "min", a->adv_min);
    gv_metrics_f64(m, "max", a->adv_max);
    gv_metrics_i64(m, "clipped", a->n_clipped);
    gv_metrics_end_object(m);
    gv_metrics_f64(m, "ratio_mean", ts->ratio_mean);
    gv_metrics_f64(m, "ratio_min", ts->ratio_min);
    gv_metrics_f64(m, "ratio_max", ts->ratio_max);
    gv_metrics_f64(m, "ratio_first_min", ts->ratio_first_min);
    gv_metrics_f64(m, "ratio_first_max", ts->ratio_first_max);
    gv_metrics_f64(m, "clip_frac_above", ts->clip_above);
    gv_metrics_f64(m, "clip_frac_below", ts->clip_below);
    gv_metrics_f64(m, "approx_kl", ts->approx_kl);
    gv_metrics_f64(m, "kl", ts->kl);
    gv_metrics_f64(m, "loss", ts->loss);
    gv_metrics_f64(m, "grad_norm", ts->grad_norm);
    gv_metrics_i64(m, "optimizer_step", st->opt_step);
    gv_metrics_i64(m, "skipped", ts->steps_skipped);
    gv_metrics_i64(m, "units", ts->units);
    if (j->step_plan.window_start >= 0) /* ALGORITHMS.md §7: this iteration's SDE window [l, l+w) */
        gv_metrics_i64(m, "window_start", j->step_plan.window_start);
    const double groups = a->n_groups > 0 ? a->n_groups : 1;
    gv_metrics_f64(m, "zero_std_group_fraction", a->n_groups_zero / groups);
    gv_metrics_f64(m, "small_group_fraction", a->n_groups_small / groups);
    const int scored = j->tree_mode ? j->n_leaves : j->S; /* samples scored: leaves of trees */
    gv_metrics_f64(m, "masked_fraction", (double)a->n_masked / scored);
    if (cfg->reward_transform == GV_REWARD_TRANSFORM_WIN_RATE) { /* ALGORITHMS.md §8 */
        gv_metrics_i64(m, "pairwise_judged", rs->pairwise_judged);
        gv_metrics_i64(m, "pairwise_imputed", rs->pairwise_imputed);
    }
    gv_metrics_i64(m, "nfe_rollout", rs->nfe);
    if (cfg->credit.kind == GV_CREDIT_KIND_DENSE) gv_metrics_i64(m, "nfe_completion", rs->nfe_completion);
    if (j->tree_mode || cfg->credit.kind != GV_CREDIT_KIND_TERMINAL) { /* the credit triples */
        gv_metrics_i64(m, "edges", j->credit_stats.n_edges);
        gv_metrics_i64(m, "edges_trained", j->credit.n);
    }
    gv_metrics_i64(m, "nfe_train", ts->nfe_train);
    gv_metrics_f32(m, "lr", lr);
    gv_metrics_f64(m, "samples_per_s", iter_s > 0 ? scored / iter_s : 0.0);
    if (gv_dist_size() > 1) gv_metrics_f64(m, "comm_s", comm_s); /* in collectives, waits included */
    gv_metrics_f64(m, "wall_s", wall);
    return gv_metrics_end(m);
}

static gv_status log_eval(gv_metrics *m, const gv_grpo_job *j, int64_t iteration,
                          const gv_grpo_eval_result *e, double wall) {
    const gv_run_config *cfg = j->cfg;
    gv_metrics_begin(m);
    gv_metrics_i64(m, "iteration", iteration);
    gv_metrics_object(m, "eval");
    gv_metrics_str(m, "weights", "ema");
    gv_metrics_i64(m, "n", e->n);
    for (int k = 0; k < cfg->n_eval_rewards && k < GV_GRPO_MAX_EVAL_REWARDS; ++k) {
        char key[64];
        reward_key(j->eval_rewards, k, key, sizeof key);
        gv_metrics_f64(m, key, e->mean[k]);
        char std_key[80];
        snprintf(std_key, sizeof std_key, "%s_std", key);
        gv_metrics_f64(m, std_key, e->std[k]);
        if (e->masked[k]) { /* FAILED / non-finite eval samples, left out of mean and std */
            snprintf(std_key, sizeof std_key, "%s_masked", key);
            gv_metrics_i64(m, std_key, e->masked[k]);
        }
    }
    if (!isnan(e->accuracy)) gv_metrics_f64(m, "accuracy", e->accuracy);
    if (!isnan(e->gold_prob)) gv_metrics_f64(m, "gold_prob", e->gold_prob);
    gv_metrics_i64(m, "nfe", e->nfe);
    gv_metrics_end_object(m);
    gv_metrics_f64(m, "wall_s", wall);
    return gv_metrics_end(m);
}

/* ---- data parallel ---------------------------------------------------------------------------- */

/* The parameter hash compared across ranks (`when` for the message: "at start", "after iteration 7"). */
static gv_status check_params(gv_grpo_job *j, const char *when) {
    if (gv_dist_size() == 1) return GV_OK;
    uint64_t h = 0;
    GV_TRY(gv_params_hash(&j->model.params, &h));
    return gv_dist_check_hash(when, h);
}

/* GROVE_DIST_FAULT=desync:RANK:ITERATION (tests): this rank's first parameter moves by 1e-3. */
static gv_status desync_for_test(gv_grpo_job *j) {
    float v;
    GV_TRY(j->be->copy_to_host(&v, j->model.params.values, sizeof v));
    v += 1e-3f;
    return j->be->copy_from_host(j->model.params.values, &v, sizeof v);
}

/* ---- the loop --------------------------------------------------------------------------------- */

static gv_status eval_and_pin(gv_grpo_job *j, gv_grpo_state *st, gv_metrics *m, const run_files *rf,
                              const char *yaml, double t0, gv_grpo_result *res) {
    gv_grpo_eval_result e;
    GV_TRY(gv_grpo_eval(j, &e));
    GV_TRY(log_eval(m, j, st->iteration, &e, gv_rundir_now() - t0));
    res->last_eval = e.mean[0];
    if (isfinite(e.mean[0]) && e.mean[0] > st->best_eval) { /* DESIGN.md §1: pinned best.h5 */
        st->best_eval = e.mean[0];
        GV_TRY(save_checkpoint(j, st, yaml, rf->best));
    }
    return GV_OK;
}

static gv_status save_iteration(gv_grpo_job *j, gv_grpo_state *st, const run_files *rf,
                                const char *yaml) {
    GV_TRY(save_checkpoint(j, st, yaml, rf->last));
    const int every = j->cfg->checkpoint.every, keep = j->cfg->checkpoint.keep;
    if (!every || st->iteration % every) return GV_OK;
    char path[4300];
    snprintf(path, sizeof path, "%s/iter-%lld.h5", rf->dir, (long long)st->iteration);
    GV_TRY(save_checkpoint(j, st, yaml, path));
    if (keep > 0 && st->iteration > (int64_t)keep * every) {
        snprintf(path, sizeof path, "%s/iter-%lld.h5", rf->dir,
                 (long long)(st->iteration - (int64_t)keep * every));
        remove(path); /* rotation; best.h5 is never touched */
    }
    return GV_OK;
}

/* rollouts-<k>.h5 after the rewards and advantages, before training (grpo.h); the dump.keep
   newest kept (0 = all). */
static gv_status dump_rollouts(gv_grpo_job *j, uint32_t k, const run_files *rf, const char *yaml) {
    const int every = j->cfg->dump.every, keep = j->cfg->dump.keep;
    char path[4300];
    snprintf(path, sizeof path, "%s/rollouts-%u.h5", rf->dir, (unsigned)k);
    GV_TRY(gv_grpo_dump_rollouts(j, k, yaml, path)); /* every rank: gathered to rank 0 */
    if (gv_dist_rank() == 0 && keep > 0 && (int64_t)k >= (int64_t)keep * every) {
        snprintf(path, sizeof path, "%s/rollouts-%lld.h5", rf->dir,
                 (long long)((int64_t)k - (int64_t)keep * every));
        remove(path); /* rotation */
    }
    if (gv_dist_size() == 1) return GV_OK;
    /* rank 0 wrote alone: the others wait it out under the write deadline, as after an eval */
    gv_dist_set_deadline(j->cfg->dist.eval_timeout_s, "dist.eval_timeout_s");
    gv_status s = gv_dist_barrier("after rank 0's rollouts dump");
    gv_dist_set_timeout(j->cfg->dist.timeout_s);
    return s;
}

static gv_status run_loop(gv_grpo_job *j, gv_grpo_state *st, const gv_grpo_options *opt,
                          const run_files *rf, const char *yaml, gv_metrics *m, int resumed,
                          gv_grpo_result *res) {
    const gv_run_config *cfg = j->cfg;
    const gv_lr_schedule sched = {.kind = (gv_lr_kind)cfg->train.lr_schedule.kind,
                                  .lr = (float)cfg->train.lr,
                                  .warmup_steps = cfg->train.lr_schedule.warmup_steps,
                                  .total_steps = cfg->train.lr_schedule.total_steps,
                                  .min_lr = (float)cfg->train.lr_schedule.min_lr};
    GV_TRY(gv_lr_schedule_check(&sched));
    const int lead = gv_dist_rank() == 0; /* rank 0 alone evaluates and writes (grpo.h) */
    const int do_eval = j->n_eval_samples > 0 && lead;
    const double t0 = gv_rundir_now();
    if (do_eval && !resumed && st->iteration == 0) GV_TRY(eval_and_pin(j, st, m, rf, yaml, t0, res));
    gv_reward_moments per_reward[64];
    int64_t failed_batches[64];
    if (cfg->n_rewards > 64) return GV_ERROR(GV_ERR_CONFIG, "rewards: at most 64");
    int64_t *prompt_of_slot = malloc((size_t)j->P * sizeof(int64_t));
    if (!prompt_of_slot) return GV_ERROR(GV_ERR_OOM, "train: prompt slots");
    gv_progress bar;
    const int progress = opt->progress && lead;
    if (progress)
        gv_progress_begin(&bar, "train", cfg->train.iterations,
                          &(gv_progress_options){.out = opt->progress, .unit = "iter"});
    int64_t done_now = 0;
    gv_status s = GV_OK;
    while (st->iteration < cfg->train.iterations) {
        int stop = (opt->stop_after && done_now >= opt->stop_after) || (opt->stop_flag && *opt->stop_flag);
        if (gv_dist_size() > 1 && (s = gv_dist_agree_stop(&cfg->dist, stop, &stop)) != GV_OK) break;
        if (stop) {
            res->stopped = 1;
            break;
        }
        const double ts0 = gv_rundir_now(), comm0 = gv_dist_comm_seconds();
        const uint32_t k = (uint32_t)st->iteration;
        if (gv_dist_test_fault(st->iteration) && (s = desync_for_test(j)) != GV_OK) break;
        s = gv_data_cursor_next(&j->cursor, j->seed, j->P, prompt_of_slot);
        gv_grpo_rollout_stats rs = {.per_reward = per_reward, .failed_batches = failed_batches};
        gv_grpo_train_stats ts;
        j->dump_now = cfg->dump.every > 0 && k % (uint32_t)cfg->dump.every == 0;
        if (s == GV_OK) s = gv_grpo_rollout(j, k, prompt_of_slot, &rs);
        if (s == GV_OK && j->dump_now) s = dump_rollouts(j, k, rf, yaml);
        j->dump_now = 0;
        if (s == GV_OK) s = gv_grpo_train_iteration(j, k, st, &ts);
        if (s != GV_OK) break;
        st->iteration++;
        done_now++;
        if (cfg->dist.check_every && st->iteration % cfg->dist.check_every == 0) {
            char when[48];
            snprintf(when, sizeof when, "after iteration %lld", (long long)st->iteration);
            if ((s = check_params(j, when)) != GV_OK) break;
        }
        const double now = gv_rundir_now();
        s = log_iteration(m, j, st, &rs, &ts, gv_lr_at(&sched, st->opt_step > 0 ? st->opt_step : 1),
                          now - ts0, gv_dist_comm_seconds() - comm0, now - t0);
        if (s == GV_OK && ts.stop_skips) { /* from the gathered statistics: alike on every rank */
            s = GV_ERROR(GV_ERR_NUMERIC, "non-finite loss or gradient in %d consecutive optimizer "
                         "steps (iteration %lld); stopped, %s left at the last completed iteration",
                         cfg->train.max_skips, (long long)st->iteration, rf->last);
            gv_dist_agree_error();
        }
        if (s != GV_OK) break;
        res->last_reward = rs.adv.reward_mean;
        if (progress)
            gv_progress_update(&bar, st->iteration, "reward %.4f ratio0 %.6g", rs.adv.reward_mean,
                               ts.ratio_first_max);
        if (do_eval && ((cfg->eval.every && st->iteration % cfg->eval.every == 0) ||
                        st->iteration == cfg->train.iterations))
            s = eval_and_pin(j, st, m, rf, yaml, t0, res);
        if (s == GV_OK && lead) s = save_iteration(j, st, rf, yaml);
        if (s != GV_OK) break;
    }
    if (progress) gv_progress_finish(&bar);
    free(prompt_of_slot);
    GV_TRY(s);
    res->iteration = st->iteration;
    res->finished = st->iteration >= cfg->train.iterations;
    if (lead && res->finished && !res->stopped && !gv_rundir_exists(rf->last))
        GV_TRY(save_checkpoint(j, st, yaml, rf->last)); /* train.iterations reached on entry */
    return GV_OK;
}

static gv_status setup_and_run(gv_grpo_job *j, const gv_run_config *eff, const gv_grpo_options *opt,
                               const run_files *rf, int existing, gv_grpo_result *res) {
    gv_grpo_state st = {.best_eval = -INFINITY};
    gv_status s = GV_OK;
    const int lead = gv_dist_rank() == 0;
    if (existing && gv_rundir_exists(rf->last)) { /* every rank reads last.h5 */
        s = load_checkpoint(j, &st, rf->last);
        if (s == GV_OK && lead) s = gv_rundir_metrics_truncate(rf->metrics, "iteration", st.iteration);
        res->resumed = 1;
    } else {
        s = gv_data_cursor_shuffle(&j->cursor, j->seed);
    }
    /* every rank has read the run's files; the hash check doubles as the barrier before rank 0
       writes anything */
    if (s == GV_OK) s = check_params(j, "at start");
    GV_TRY(s);
    char *yaml = NULL;
    gv_metrics m;
    memset(&m, 0, sizeof m);
    s = gv_run_config_dump(eff, NULL, &yaml);
    if (s == GV_OK && lead) s = gv_rundir_write_atomic(rf->config, yaml);
    if (s == GV_OK) s = gv_metrics_open(&m, lead ? rf->metrics : "/dev/null", lead ? res->resumed : 1);
    if (s == GV_OK && gv_psi_calibration_pending(&j->cal) && st.iteration == 0)
        s = gv_grpo_calibrate(j, &m); /* ALGORITHMS.md §5: a phase before the first iteration */
    if (s == GV_OK) {
        s = run_loop(j, &st, opt, rf, yaml, &m, res->resumed, res);
        gv_status c = gv_metrics_close(&m);
        if (s == GV_OK) s = c;
    }
    free(yaml);
    return s;
}

static const gv_backend *default_backend(const gv_run_config *cfg) {
    const gv_backend *be = NULL;
    if (cfg->run.device != GV_DEVICE_CPU && gv_backend_find("cuda", &be) == GV_OK) return be;
    gv_clear_error();
    return gv_backend_find("cpu", &be) == GV_OK ? be : NULL;
}

gv_status gv_grpo_run(const gv_run_config *cfg, const gv_grpo_options *opt) {
    gv_grpo_result local;
    gv_grpo_result *res = opt->result ? opt->result : &local;
    memset(res, 0, sizeof *res);
    res->last_eval = res->last_reward = NAN;
    GV_TRY(gv_grpo_plan_count(cfg, &res->plan));
    run_files rf;
    if (*cfg->run.dir) snprintf(rf.dir, sizeof rf.dir, "%s", cfg->run.dir);
    else snprintf(rf.dir, sizeof rf.dir, "runs/%s", cfg->run.name);
    snprintf(rf.config, sizeof rf.config, "%s/config.yaml", rf.dir);
    snprintf(rf.metrics, sizeof rf.metrics, "%s/metrics.jsonl", rf.dir);
    snprintf(rf.last, sizeof rf.last, "%s/last.h5", rf.dir);
    snprintf(rf.best, sizeof rf.best, "%s/best.h5", rf.dir);
    snprintf(res->run_dir, sizeof res->run_dir, "%s", rf.dir);
    const gv_backend *be = opt->backend ? opt->backend : default_backend(cfg);
    if (!be) return GV_ERROR(GV_ERR_UNSUPPORTED, "train: no backend registered");
    gv_grpo_job j;
    gv_status s;
    if (opt->dry_run) { /* DESIGN.md: --dry-run prints the plan before anything runs */
        s = gv_grpo_setup(&j, cfg, be);
        if (s == GV_OK) gv_grpo_plan_memory(&j, &res->plan);
        gv_grpo_teardown(&j);
        if (s == GV_ERR_UNSUPPORTED) { /* the plan of a part not run yet still prints */
            snprintf(res->plan.refused, sizeof res->plan.refused, "%s", gv_last_error());
            gv_clear_error();
            s = GV_OK;
        }
        return s;
    }
    GV_TRY(gv_rundir_mkdir_p(rf.dir));
    gv_run_config eff;
    int existing = 0;
    const int64_t total = (int64_t)cfg->train.iterations * cfg->train.inner_epochs * res->plan.minibatches;
    GV_TRY(prepare_run_config(cfg, &rf, opt->force, total > 0 ? total : 1, &eff, &existing));
    gv_dist_set_timeout(cfg->dist.timeout_s);
    GV_TRY(gv_dist_use_backend(be)); /* CUDA under several ranks: the NCCL transport (dist.h) */
    s = gv_grpo_setup(&j, &eff, be);
    if (s == GV_OK) s = setup_and_run(&j, &eff, opt, &rf, existing, res);
    gv_grpo_teardown(&j);
    return s;
}

void gv_grpo_reward_key(const gv_reward *rewards, int k, char *out, size_t n) {
    reward_key(rewards, k, out, n);
}
