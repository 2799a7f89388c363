/* The pretraining loop shared by every model kind (pretrain.h): run directory and resume
 * (DESIGN.md §1), the epoch-shuffled data cursor, AdamW with grad clip, LR schedule and EMA
 * (ALGORITHMS.md §3, optim.h), non-finite skips, checkpoints, metrics, progress and the final
 * export. A kind (pretrain_unet.c, pretrain_classifier.c) only fills its buffers and computes one
 * micro-batch's loss and gradient, and its eval.
 *
 * Run directory: config.yaml (canonical resolved dump, lr_schedule.total_steps fixed at creation),
 * metrics.jsonl (one record per step and per eval), last.h5 (atomic, every checkpoint.every steps
 * and at the end or a stop). Resuming refuses a config that differs in anything but train.steps,
 * naming the first differing key, unless `force`. Resume is bit-identical: every random number is
 * addressed by (seed, step, row), the data cursor (epoch, position) is checkpoint state, and the
 * optimizer, EMA and their counters come back from last.h5.
 *
 * Data parallel (dist.h): the step's batch is cut into run.shards shards of train.batch / shards
 * images; this rank computes its shards one at a time (each into zeroed gradients, scaled by
 * 1/shards), the shard gradients are summed in shard order across ranks, and every rank then takes
 * the same clipped AdamW step. Rank 0 alone writes config.yaml, metrics, checkpoints, grids and
 * the export and runs the evals; every rank reads last.h5 on resume. The parameter hash is
 * compared across ranks at start and every dist.check_every steps. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "grove/checkpoint.h"
#include "grove/dist.h"
#include "grove/mdm.h"
#include "grove/optim.h"
#include "grove/paths.h"
#include "grove/pretrain.h"
#include "grove/rng.h"
#include "grove/rundir.h"

#define MAX_SKIPS 3 /* consecutive non-finite steps before the run stops */
static const char *const device_names[] = {"cpu", "cuda"};

/* ---- buffers shared with the kinds ------------------------------------------------------------ */

gv_status gv_pretrain_dev_alloc(gv_pretrain_job *j, size_t bytes, void **out) {
    GV_TRY(j->be->alloc(bytes, out));
    return j->be->memset_zero(*out, bytes);
}

gv_status gv_pretrain_host_alloc(size_t bytes, void **out) {
    *out = calloc(1, bytes ? bytes : 1);
    return *out ? GV_OK : GV_ERROR(GV_ERR_OOM, "pretrain: host allocation of %zu bytes failed", bytes);
}

void gv_pretrain_job_free_buffers(gv_pretrain_job *j) {
    void *dev[] = {j->x, j->target, j->out, j->dout, j->sigma, j->ids, j->w, j->scalars, j->lse,
                   j->targets};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; ++i)
        if (dev[i]) j->be->free(dev[i]);
    void *host[] = {j->hx, j->htarget, j->hsigma, j->hout, j->hids, j->hrows, j->class_prompts,
                    j->class_prompt_count, j->vocab_text, j->htargets, j->hw};
    for (size_t i = 0; i < sizeof host / sizeof host[0]; ++i) free(host[i]);
    if (j->mdm_runner) gv_mdm_runner_free(j->mdm_runner);
    free(j->mdm_runner);
    j->mdm_runner = NULL;
}

gv_status gv_pretrain_measure_arena(gv_pretrain_job *j, gv_status (*pass)(gv_pretrain_job *j)) {
    gv_arena_measure_begin(&j->arena);
    gv_status s = pass(j);
    size_t peak = gv_arena_measure_end(&j->arena);
    GV_TRY(s);
    return gv_arena_reserve(&j->arena, peak);
}

/* ---- checkpoints ------------------------------------------------------------------------------ */

typedef struct loop_state {
    int64_t step, opt_step, ema_updates, skips;
    gv_data_cursor cur;
} loop_state;

/* The run checkpoint of this loop (rundir.h): its /state counters; `values` holds the table. */
static gv_run_checkpoint checkpoint_of(gv_pretrain_job *j, loop_state *st,
                                       gv_run_state_value values[4]) {
    values[0] = (gv_run_state_value){"step", &st->step, NULL};
    values[1] = (gv_run_state_value){"optimizer_step", &st->opt_step, NULL};
    values[2] = (gv_run_state_value){"ema_updates", &st->ema_updates, NULL};
    values[3] = (gv_run_state_value){"skips_in_a_row", &st->skips, NULL};
    return (gv_run_checkpoint){.model = &j->model, .threads = j->ctx->threads, .seed = j->seed,
                               .cursor = &st->cur, .state = values, .n_state = 4};
}

static gv_status save_checkpoint(gv_pretrain_job *j, loop_state *st, const char *yaml,
                                 const char *path) {
    gv_run_state_value values[4];
    const gv_run_checkpoint c = checkpoint_of(j, st, values);
    return gv_rundir_save_checkpoint(&c, yaml, path);
}

static gv_status load_checkpoint(gv_pretrain_job *j, loop_state *st, const char *path) {
    gv_run_state_value values[4];
    const gv_run_checkpoint c = checkpoint_of(j, st, values);
    return gv_rundir_load_checkpoint(&c, path);
}

/* ---- data parallel ---------------------------------------------------------------------------- */

/* The parameter hash compared across ranks (`when` for the message: "at start", "after step 7"). */
static gv_status check_params(gv_pretrain_job *j, const char *when) {
    if (gv_dist_size() == 1) return GV_OK;
    uint64_t h = 0;
    GV_TRY(gv_params_hash(&j->model.params, &h));
    return gv_dist_check_hash(when, h);
}

/* GROVE_DIST_FAULT=desync:RANK:STEP (tests): this rank's first parameter moves by 1e-3. */
static gv_status desync_for_test(gv_pretrain_job *j) {
    float v;
    GV_TRY(j->be->copy_to_host(&v, j->model.params.values, sizeof v));
    v += 1e-3f;
    return j->be->copy_from_host(j->model.params.values, &v, sizeof v);
}

/* This rank's shards of the step (rows: the whole batch, shard s at rows + s·B): each into zeroed
   gradients, kept in local[s − lo]; then the ordered sum into the gradients on every rank. The
   per-shard losses are gathered; *loss is their mean in shard order (NaN if any is not finite). */
static gv_status step_gradients(gv_pretrain_job *j, const gv_pretrain_kind *kind, int64_t step,
                                const int64_t *rows, int lo, int hi, float *const *local,
                                double *losses, float *loss) {
    gv_params *ps = &j->model.params;
    const int S = j->cfg->run.shards;
    for (int sh = lo; sh < hi; ++sh) {
        float l = NAN;
        GV_TRY(gv_params_zero_grads(ps));
        j->slot0 = (int64_t)sh * j->B;
        GV_TRY(kind->loss_and_grad(j, step, rows + (int64_t)sh * j->B, &l));
        losses[sh] = l;
        if (local[sh - lo] != ps->grads)
            GV_TRY(j->be->copy(local[sh - lo], ps->grads, (size_t)ps->total * sizeof(float)));
    }
    GV_TRY(gv_dist_gather_f64("shard losses", losses, S, lo, hi));
    double sum = 0.0;
    for (int sh = 0; sh < S; ++sh) sum += losses[sh];
    *loss = (float)(sum / S);
    if (!isfinite(*loss)) return GV_OK; /* every rank skips the step alike */
    const gv_shard_sum a = {.be = j->be, .ctx = j->ctx, .n = ps->total, .shards = S, .lo = lo,
                            .hi = hi, .local = local, .out = ps->grads};
    return gv_dist_shard_sum(&a, "gradient sum");
}

/* ---- metrics ---------------------------------------------------------------------------------- */

static gv_status log_eval(gv_metrics *m, int64_t step, const gv_pretrain_eval *e, int final,
                          double wall) {
    gv_metrics_begin(m);
    gv_metrics_i64(m, "step", step);
    gv_metrics_object(m, "eval");
    gv_metrics_str(m, "weights", "ema");
    gv_metrics_i64(m, "images", e->images);
    gv_metrics_f32(m, "loss", e->loss);
    if (!isnan(e->accuracy)) gv_metrics_f32(m, "accuracy", e->accuracy);
    gv_metrics_end_object(m);
    if (final) gv_metrics_bool(m, "final", 1);
    gv_metrics_f64(m, "wall_s", wall);
    return gv_metrics_end(m);
}

/* ---- the loop --------------------------------------------------------------------------------- */

typedef struct run_files {
    char dir[4096], config[4200], metrics[4200], last[4200];
} run_files;

/* The config this run uses: lr_schedule.total_steps fixed from the run's creation (or from
   train.steps for a new run); compared against config.yaml with train.steps set equal. */
static gv_status prepare_run_config(const gv_pretrain_config *cfg, const run_files *rf, int force,
                                    gv_pretrain_config *eff, int *existing) {
    *eff = *cfg; /* shallow: strings stay owned by cfg */
    *existing = gv_rundir_exists(rf->config);
    if (!*existing) {
        if (!eff->train.lr_schedule.total_steps) eff->train.lr_schedule.total_steps = cfg->train.steps;
        return GV_OK;
    }
    char *text = NULL, *a = NULL, *b = NULL;
    GV_TRY(gv_rundir_slurp(rf->config, &text));
    gv_pretrain_config stored;
    gv_status s = gv_pretrain_config_load_resolved(text, rf->config, &stored);
    free(text);
    GV_TRY(s);
    if (!eff->train.lr_schedule.total_steps)
        eff->train.lr_schedule.total_steps = stored.train.lr_schedule.total_steps;
    stored.train.steps = eff->train.steps;
    stored.dist = eff->dist; /* timeouts and check cadence never change the result */
    s = gv_pretrain_config_dump(&stored, NULL, &a);
    if (s == GV_OK) s = gv_pretrain_config_dump(eff, NULL, &b);
    if (s == GV_OK) s = gv_rundir_refuse_changed_config(rf->dir, a, b, force);
    free(a);
    free(b);
    gv_pretrain_config_free(&stored);
    return s;
}

static gv_status run_loop(gv_pretrain_job *j, const gv_pretrain_kind *kind, loop_state *st,
                          const gv_pretrain_options *opt, const run_files *rf, const char *yaml,
                          gv_metrics *m, gv_pretrain_result *res) {
    const gv_pretrain_config *cfg = j->cfg;
    gv_params *ps = &j->model.params;
    const gv_lr_schedule sched = {.kind = (gv_lr_kind)cfg->train.lr_schedule.kind,
                                  .lr = (float)cfg->train.lr,
                                  .warmup_steps = cfg->train.lr_schedule.warmup_steps,
                                  .total_steps = cfg->train.lr_schedule.total_steps,
                                  .min_lr = (float)cfg->train.lr_schedule.min_lr};
    GV_TRY(gv_lr_schedule_check(&sched));
    gv_adamw_config adam = GV_ADAMW_CONFIG_DEFAULT;
    adam.lr = sched.lr;
    adam.weight_decay = (float)cfg->train.weight_decay;
    const int lead = gv_dist_rank() == 0, S = cfg->run.shards;
    int lo = 0, hi = 0;
    GV_TRY(gv_dist_own_shards(S, &lo, &hi));
    /* one gradient buffer per local shard; with a single shard in all, the gradients themselves */
    const int nloc = hi - lo;
    float **local = NULL;
    int64_t *rows = NULL;
    double *losses = NULL;
    gv_status s = gv_pretrain_host_alloc((size_t)nloc * sizeof *local, (void **)&local);
    for (int k = 0; k < nloc && s == GV_OK; ++k) local[k] = S == 1 ? ps->grads : NULL;
    for (int k = 0; k < nloc && S > 1 && s == GV_OK; ++k)
        s = gv_pretrain_dev_alloc(j, (size_t)ps->total * sizeof(float), (void **)&local[k]);
    if (s == GV_OK)
        s = gv_pretrain_host_alloc((size_t)cfg->train.batch * sizeof(int64_t), (void **)&rows);
    if (s == GV_OK) s = gv_pretrain_host_alloc((size_t)S * sizeof(double), (void **)&losses);
    gv_progress bar;
    if (opt->progress && lead)
        gv_progress_begin(&bar, "pretrain", cfg->train.steps,
                          &(gv_progress_options){.out = opt->progress, .unit = "step"});
    const double t0 = gv_rundir_now();
    int64_t done_now = 0, saved_at = st->step;
    float loss = NAN;
    while (s == GV_OK && st->step < cfg->train.steps && !(opt->stop_after && done_now >= opt->stop_after)) {
        const double ts = gv_rundir_now();
        const double comm0 = gv_dist_comm_seconds();
        if (gv_dist_test_fault(st->step)) s = desync_for_test(j);
        if (s == GV_OK) s = gv_data_cursor_next(&st->cur, j->seed, cfg->train.batch, rows);
        if (s == GV_OK) s = step_gradients(j, kind, st->step, rows, lo, hi, local, losses, &loss);
        if (s != GV_OK) break;
        float norm = NAN, lr = NAN;
        int finite = isfinite(loss);
        if (finite && cfg->train.grad_clip > 0) {
            s = gv_grad_clip(j->ctx, ps, (float)cfg->train.grad_clip, &norm);
            if (s == GV_ERR_NUMERIC) finite = 0, s = GV_OK, gv_clear_error();
        } else if (finite) {
            s = gv_grad_norm(j->ctx, ps, &norm);
            finite = isfinite(norm);
        }
        if (s != GV_OK) break;
        if (finite) { /* ALGORITHMS.md §3: AdamW at the scheduled lr, then the EMA */
            st->opt_step++;
            st->skips = 0;
            lr = gv_lr_at(&sched, st->opt_step);
            s = gv_optim_step(j->ctx, ps, &adam, lr, st->opt_step);
            if (s == GV_OK && st->opt_step % cfg->train.ema.every == 0)
                s = gv_ema_update(j->ctx, ps, gv_ema_decay_at(st->ema_updates++, (float)cfg->train.ema.decay));
        } else {
            st->skips++;
        }
        st->step++;
        done_now++;
        if (s == GV_OK && cfg->dist.check_every && st->step % cfg->dist.check_every == 0) {
            char when[48];
            snprintf(when, sizeof when, "after step %lld", (long long)st->step);
            s = check_params(j, when);
        }
        const double te = gv_rundir_now();
        gv_metrics_begin(m);
        gv_metrics_i64(m, "step", st->step);
        gv_metrics_f32(m, "loss", loss);
        gv_metrics_f32(m, "lr", lr);
        gv_metrics_f32(m, "grad_norm", norm);
        gv_metrics_i64(m, "optimizer_step", st->opt_step);
        gv_metrics_i64(m, "epoch", st->cur.epoch);
        if (!finite) gv_metrics_bool(m, "skipped", 1);
        gv_metrics_f64(m, "samples_per_s", te > ts ? cfg->train.batch / (te - ts) : 0.0);
        if (gv_dist_size() > 1) gv_metrics_f64(m, "comm_s", gv_dist_comm_seconds() - comm0);
        gv_metrics_f64(m, "wall_s", te - t0);
        if (s == GV_OK) s = gv_metrics_end(m);
        if (s == GV_OK && st->skips >= MAX_SKIPS) { /* the same summed gradients on every rank */
            s = GV_ERROR(GV_ERR_NUMERIC, "non-finite loss or gradient in %d consecutive steps (last "
                         "at step %lld); stopped, %s left as it was", MAX_SKIPS,
                         (long long)st->step, rf->last);
            gv_dist_agree_error();
        }
        if (s != GV_OK) break;
        if (opt->progress && lead) gv_progress_update(&bar, st->step, "loss %.4f", (double)loss);
        if (lead && cfg->eval.every && st->step % cfg->eval.every == 0 && st->step < cfg->train.steps) {
            gv_pretrain_eval e;
            s = kind->eval(j, ps->ema, &e);
            if (s == GV_OK) s = log_eval(m, st->step, &e, 0, gv_rundir_now() - t0);
            if (s == GV_OK && kind == &gv_pretrain_unet_kind)
                s = gv_pretrain_unet_sample_grid(j, st->step, rf->dir);
        }
        if (s == GV_OK && lead && st->step % cfg->checkpoint.every == 0) {
            s = save_checkpoint(j, st, yaml, rf->last);
            saved_at = st->step;
        }
        /* the other ranks wait out rank 0's eval and checkpoint here, under the generous
           dist.eval_timeout_s rather than dist.timeout_s (a long eval is no dead rank) */
        if (s == GV_OK && gv_dist_size() > 1 &&
            ((cfg->eval.every && st->step % cfg->eval.every == 0) ||
             st->step % cfg->checkpoint.every == 0)) {
            gv_dist_set_deadline(cfg->dist.eval_timeout_s, "dist.eval_timeout_s");
            s = gv_dist_barrier("after rank 0's eval and checkpoint");
            gv_dist_set_timeout(cfg->dist.timeout_s);
        }
    }
    free(rows);
    free(losses);
    for (int k = 0; local && k < nloc; ++k)
        if (local[k] && local[k] != ps->grads) j->be->free(local[k]);
    free(local);
    if (opt->progress && lead) gv_progress_finish(&bar);
    GV_TRY(s);
    if (lead && (saved_at != st->step || !gv_rundir_exists(rf->last)))
        GV_TRY(save_checkpoint(j, st, yaml, rf->last));
    res->step = st->step;
    res->last_loss = loss;
    if (st->step < cfg->train.steps) return GV_OK; /* stopped: --stop-after */
    if (!lead) { /* rank 0 evaluates and exports */
        res->finished = 1;
        return GV_OK;
    }
    gv_pretrain_eval e;
    GV_TRY(kind->eval(j, ps->ema, &e));
    GV_TRY(log_eval(m, st->step, &e, 1, gv_rundir_now() - t0));
    res->eval_accuracy = e.accuracy;
    res->eval_loss = e.loss;
    if (*cfg->export_path) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", cfg->export_path);
        char *slash = strrchr(dir, '/');
        if (slash && slash != dir) *slash = 0, s = gv_rundir_mkdir_p(dir);
        GV_TRY(s);
        GV_TRY(gv_image_model_save_export(&j->model, ps->ema, yaml, cfg->export_path));
    }
    res->finished = 1;
    return GV_OK;
}

static gv_status setup_and_run(gv_pretrain_job *j, const gv_pretrain_options *opt,
                               const run_files *rf, int existing, gv_pretrain_result *res) {
    const gv_pretrain_config *cfg = j->cfg;
    static const gv_pretrain_kind *const kinds[GV_MODEL_KIND_COUNT] = {
        [GV_MODEL_UNET] = &gv_pretrain_unet_kind, [GV_MODEL_CLASSIFIER] = &gv_pretrain_classifier_kind,
        [GV_MODEL_MDT] = &gv_pretrain_mdt_kind};
    const gv_pretrain_kind *kind = kinds[cfg->model.kind];
    /* data */
    const gv_dataset_kind dk = (gv_dataset_kind)cfg->data.dataset;
    char data_path[4096];
    if (*cfg->data.path) snprintf(data_path, sizeof data_path, "%s", cfg->data.path);
    else GV_TRY(gv_root_path(gv_dataset_kind_get(dk)->default_path, data_path, sizeof data_path));
    GV_TRY(gv_dataset_ensure(dk, data_path, NULL, NULL));
    GV_TRY(gv_dataset_load_as(data_path, dk, &j->data));
    j->D = (int64_t)j->data.c * j->data.h * j->data.w;
    /* model, buffers, arena */
    GV_TRY(j->be->ctx_create(&(gv_ctx_options){.threads = gv_resolve_threads(cfg->run.threads),
                                               .use_fast = 1}, &j->ctx));
    gv_arena_init(&j->arena, j->be, "pretrain activations");
    GV_TRY(gv_pretrain_dev_alloc(j, 2 * sizeof(float), (void **)&j->scalars));
    const float dloss = 1.0f / (float)cfg->run.shards; /* the batch mean = mean of shard means */
    GV_TRY(j->be->copy_from_host(j->scalars + 1, &dloss, sizeof dloss));
    GV_TRY(gv_pretrain_host_alloc((size_t)j->B * sizeof(int64_t), (void **)&j->hrows));
    GV_TRY(kind->setup(j));
    snprintf(j->model.dataset, sizeof j->model.dataset, "%s", gv_dataset_kind_get(dk)->name);
    GV_TRY(gv_params_initialize(&j->model.params, j->seed));
    /* the data selection and the cursor */
    loop_state st = {0};
    const int64_t nt = j->data.train.n, half = nt / 2;
    st.cur.lo = cfg->train.split == GV_SPLIT_SECOND_HALF ? half : 0;
    st.cur.n = cfg->train.split == GV_SPLIT_ALL ? nt : cfg->train.split == GV_SPLIT_FIRST_HALF ? half : nt - half;
    if (st.cur.n < 1) return GV_ERROR(GV_ERR_CONFIG, "%s: no training images in the split", data_path);
    GV_TRY(gv_pretrain_host_alloc((size_t)st.cur.n * sizeof(int64_t), (void **)&st.cur.perm));
    gv_status s = GV_OK;
    const int lead = gv_dist_rank() == 0;
    char *yaml = NULL;
    gv_metrics m;
    memset(&m, 0, sizeof m);
    if (gv_rundir_exists(rf->last) && existing) {
        s = load_checkpoint(j, &st, rf->last);
        if (s == GV_OK && lead) s = gv_rundir_metrics_truncate(rf->metrics, "step", st.step);
        res->resumed = 1;
    } else {
        s = gv_data_cursor_shuffle(&st.cur, j->seed);
    }
    /* every rank has read the run's files; the hash check doubles as the barrier before rank 0
       writes anything */
    if (s == GV_OK) s = check_params(j, "at start");
    if (s == GV_OK) s = gv_pretrain_config_dump(cfg, NULL, &yaml);
    if (s == GV_OK && lead) s = gv_rundir_write_atomic(rf->config, yaml);
    if (s == GV_OK) s = gv_metrics_open(&m, lead ? rf->metrics : "/dev/null", lead ? res->resumed : 1);
    if (s == GV_OK) {
        s = run_loop(j, kind, &st, opt, rf, yaml, &m, res);
        gv_status c = gv_metrics_close(&m);
        if (s == GV_OK) s = c;
    }
    free(yaml);
    free(st.cur.perm);
    return s;
}

gv_status gv_pretrain_run(const gv_pretrain_config *cfg, const gv_pretrain_options *opt) {
    gv_pretrain_result local;
    gv_pretrain_result *res = opt->result ? opt->result : &local;
    memset(res, 0, sizeof *res);
    res->eval_accuracy = res->eval_loss = res->last_loss = NAN;
    if (cfg->train.steps >= ((int64_t)1 << 32))
        return GV_ERROR(GV_ERR_CONFIG, "train.steps = %lld: at most 2^32 - 1 (the RNG iteration field)",
                        (long long)cfg->train.steps);
    run_files rf;
    if (*cfg->run.dir) snprintf(rf.dir, sizeof rf.dir, "%s", cfg->run.dir);
    else snprintf(rf.dir, sizeof rf.dir, "runs/%s", cfg->run.name);
    snprintf(rf.config, sizeof rf.config, "%s/config.yaml", rf.dir);
    snprintf(rf.metrics, sizeof rf.metrics, "%s/metrics.jsonl", rf.dir);
    snprintf(rf.last, sizeof rf.last, "%s/last.h5", rf.dir);
    snprintf(res->run_dir, sizeof res->run_dir, "%s", rf.dir);
    snprintf(res->export_path, sizeof res->export_path, "%s", cfg->export_path);
    gv_pretrain_job j;
    memset(&j, 0, sizeof j);
    j.be = opt->backend;
    if (!j.be) GV_TRY(gv_backend_find(device_names[cfg->run.device], &j.be));
    GV_TRY(gv_rundir_mkdir_p(rf.dir));
    gv_pretrain_config eff;
    int existing = 0;
    GV_TRY(prepare_run_config(cfg, &rf, opt->force, &eff, &existing));
    j.cfg = &eff;
    j.B = cfg->train.batch / cfg->run.shards;
    gv_dist_set_timeout(cfg->dist.timeout_s);
    j.seed = (uint32_t)cfg->run.seed;
    gv_status s = gv_dist_use_backend(j.be); /* CUDA under several ranks: the NCCL transport */
    if (s == GV_OK) s = setup_and_run(&j, opt, &rf, existing, res);
    gv_pretrain_job_free_buffers(&j);
    gv_image_model_free(&j.model);
    gv_prompts_free(&j.prompts);
    gv_dataset_free(&j.data);
    gv_arena_release(&j.arena);
    if (j.ctx) j.be->ctx_destroy(j.ctx);
    return s;
}
