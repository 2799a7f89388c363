/* The masked-diffusion trainer's setup (engine/train/mdm_job.h): the refusals of the config (raised
 * alike on every rank, printed once: check_supported), the dataset and its training and
 * eval rows, the policy and its frozen reference, every host buffer (nothing is allocated inside
 * an iteration), this rank's shards and their gradient buffers, the `rewards:` list (built-in
 * sudoku and token-batch plugins, as the image trainer creates them) and Co-GRPO's schedule
 * policy; and the release of all of it. Deliberately not here: the loop (mdm_train.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grove/dist.h"
#include "grove/paths.h"
#include "grove/reward.h"
#include "grove/sudoku.h"
#include "mdm_job.h"

gv_status gv_mdm_host_alloc(size_t bytes, void **out) {
    *out = calloc(1, bytes ? bytes : 1);
    return *out ? GV_OK : GV_ERROR(GV_ERR_OOM, "mdm train: host allocation of %zu bytes failed", bytes);
}

/* Co-GRPO's learned knobs from co_grpo.knobs ("r,tau_s,tau_r"): learned[q] = 1 for each named. */
static gv_status parse_knobs(const char *knobs, int learned[GV_KNOB_COUNT]) {
    for (const char *p = knobs; *p;) {
        const size_t len = strcspn(p, ",");
        int found = -1;
        for (int q = 0; q < GV_KNOB_COUNT; ++q)
            if (strlen(gv_knob_names[q]) == len && !strncmp(p, gv_knob_names[q], len)) found = q;
        if (found < 0 || found == GV_KNOB_W)
            return GV_ERROR(GV_ERR_CONFIG, "co_grpo.knobs: '%.*s' is not a learnable knob (r, tau_s, "
                            "tau_r)", (int)len, p);
        learned[found] = 1;
        p += len + (p[len] == ',');
    }
    return GV_OK;
}

/* The refusals that follow from the config alone, so every rank raises them alike and rank 0 alone
   prints them (gv_dist_agree_error; the image trainer's check_supported). Not here: what can
   fail on one rank only (a plugin that does not load on one node). */
static gv_status check_supported(const gv_mdm_train_config *cfg) {
    if (cfg->run.shards > cfg->group.prompts_per_iteration)
        return GV_ERROR(GV_ERR_CONFIG, "run.shards %d: at most group.prompts_per_iteration (%d); a "
                        "shard holds whole puzzle groups", cfg->run.shards,
                        cfg->group.prompts_per_iteration);
    for (int k = 0; k < cfg->n_rewards; ++k) {
        const char *b = cfg->rewards[k].builtin;
        if (!b || !*b || strcmp(b, "sudoku") == 0) continue;
        gv_builtin_reward_id id;
        const int known = gv_builtin_reward_find(b, &id) == GV_OK;
        return GV_ERROR(GV_ERR_CONFIG, "rewards[%d]: builtin '%s' %s; the Sudoku trainer takes "
                        "{builtin: sudoku} or a token-batch plugin ({plugin: PATH}, kind tokens)", k, b,
                        known ? "scores images" : "is unknown");
    }
    if (cfg->algorithm.credit == GV_MDM_CREDIT_CELL) {
        if (cfg->algorithm.aggregation == GV_MDM_AGG_BALANCED)
            return GV_ERROR(GV_ERR_CONFIG, "algorithm.credit cell with aggregation balanced: balanced "
                            "splits by the sign of a sample's advantage, cell credit has one per token");
        const char *b0 = cfg->n_rewards == 1 && cfg->rewards[0].builtin ? cfg->rewards[0].builtin : "";
        if (cfg->n_rewards > 1 || (cfg->n_rewards == 1 && strcmp(b0, "sudoku") != 0))
            return GV_ERROR(GV_ERR_CONFIG, "algorithm.credit cell scores each cell against the "
                            "solution and would ignore the rewards: list; use {builtin: sudoku} alone "
                            "or credit sequence");
    }
    if (cfg->algorithm.order_logp && (cfg->algorithm.estimator != GV_MDM_EST_TRAJECTORY ||
                                      !cfg->sampler.steps))
        return GV_ERROR(GV_ERR_CONFIG, "algorithm.order_logp scores the sampler's commit order in the "
                        "rollout's own canvases: it needs algorithm.estimator trajectory and a fixed "
                        "sampler.steps (> 0)");
    if (cfg->co_grpo.enabled) {
        if (cfg->algorithm.estimator == GV_MDM_EST_TRAJECTORY)
            return GV_ERROR(GV_ERR_CONFIG, "algorithm.estimator trajectory with co_grpo.enabled: the "
                            "trajectory views score at τ_s = 1, Co-GRPO's sampler does not");
        if (!cfg->sampler.steps)
            return GV_ERROR(GV_ERR_CONFIG, "co_grpo.enabled needs a fixed sampler.steps (> 0): the "
                            "schedule policy is made for a step count");
        int learned[GV_KNOB_COUNT] = {0};
        GV_TRY(parse_knobs(cfg->co_grpo.knobs, learned));
        if (learned[GV_KNOB_TAU_R] && cfg->sampler.tau_r >= 0.0)
            return GV_ERROR(GV_ERR_CONFIG, "sampler.tau_r %g with co_grpo.knobs learning tau_r: "
                            "one or the other", cfg->sampler.tau_r);
    }
    return GV_OK;
}

/* The `rewards:` list (mdm_train.h): built-in `sudoku` and token-batch plugins, created as the
   image trainer creates its list (gv_grpo_rewards_create_kind); none = [{builtin: sudoku}]. The
   built-ins were checked (check_supported). */
static gv_status setup_rewards(gv_mdm_job *j) {
    const gv_mdm_train_config *cfg = j->cfg;
    const gv_reward_spec fallback = {.builtin = "sudoku", .plugin = "", .model = "", .weight = 1.0};
    const gv_reward_spec *specs = cfg->n_rewards ? cfg->rewards : &fallback;
    j->R = cfg->n_rewards ? cfg->n_rewards : 1;
    GV_TRY(gv_grpo_rewards_create_kind(j->ctx, j->model.dataset, j->N, specs, j->R, "rewards",
                                       GROVE_SAMPLES_TOKENS, &j->rewards, &j->reward_models));
    for (int k = 0; k < j->R; ++k)
        if (!gv_reward_can_score(&j->rewards[k])) {
            /* what the plugin is, not where it loaded: every rank that loaded it refuses alike */
            GV_ERROR(GV_ERR_CONFIG, "rewards[%d]: plugin '%s' is a pairwise judge without score "
                     "(the masked-diffusion trainer has no win-rate transform)", k, j->rewards[k].name);
            gv_dist_agree_error();
            return gv_last_status();
        }
    const size_t N = (size_t)j->N, R = (size_t)j->R, T = (size_t)j->T, tb = GV_SUDOKU_TEXT_BYTES(j->S);
    void **bufs[] = {(void **)&j->weights, (void **)&j->scores, (void **)&j->scores_tmp,
                     (void **)&j->status, (void **)&j->status_tmp, (void **)&j->solved,
                     (void **)&j->outcomes, (void **)&j->canvas, (void **)&j->solution,
                     (void **)&j->text, (void **)&j->texts, (void **)&j->puzzles,
                     (void **)&j->failed_batches, (void **)&j->meta_text, (void **)&j->meta};
    const size_t sizes[] = {R * sizeof(double), N * R * sizeof(float), N * sizeof(float), N * R, N, N,
                            (size_t)j->shards * R * sizeof(gv_reward_outcome), N * T * sizeof(int32_t),
                            N * T * sizeof(int32_t), 2 * N * tb, N * sizeof(char *), N * sizeof(char *),
                            R * sizeof(int64_t), N * GV_MDM_META_LEN, N * sizeof(char *)};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; ++i) GV_TRY(gv_mdm_host_alloc(sizes[i], bufs[i]));
    for (int k = 0; k < j->R; ++k) j->weights[k] = specs[k].weight;
    for (size_t n = 0; n < N; ++n) {
        j->texts[n] = j->text + n * tb;
        j->puzzles[n] = j->text + (N + n) * tb;
        j->meta[n] = j->meta_text + n * GV_MDM_META_LEN;
    }
    return GV_OK;
}

gv_status gv_mdm_job_setup(gv_mdm_job *j) {
    const gv_mdm_train_config *cfg = j->cfg;
    const gv_dataset_kind dk = cfg->data.dataset == 0 ? GV_DATASET_SUDOKU4 : GV_DATASET_SUDOKU9;
    char data_path[4096];
    if (*cfg->data.path) snprintf(data_path, sizeof data_path, "%s", cfg->data.path);
    else GV_TRY(gv_root_path(gv_dataset_kind_get(dk)->default_path, data_path, sizeof data_path));
    /* refusals of the config: every rank raises them alike, rank 0 alone prints (dist.h) */
    if (check_supported(cfg) != GV_OK) {
        gv_dist_agree_error();
        return gv_last_status();
    }
    /* data parallel: every rank needs a shard (refused alike on every rank: rank 0 prints) */
    j->shards = cfg->run.shards;
    GV_TRY(gv_dist_own_shards(j->shards, &j->shard_lo, &j->shard_hi));
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
    j->E = cfg->train.inner_epochs;
    j->mb = cfg->train.minibatch < j->N ? cfg->train.minibatch : j->N;
    j->steps = cfg->sampler.steps ? cfg->sampler.steps : cfg->data.blanks_max;
    /* trajectory: one view per sampler step (with sampler.steps 0, blanks_max of them; an
       iteration's puzzles with fewer blanks leave the last views without tokens) */
    j->views = gv_mdm_estimator_views(cfg->algorithm.estimator, j->steps);
    if (j->N > 65536) return GV_ERROR(GV_ERR_CONFIG, "group.size x prompts_per_iteration > 65536");
    /* training puzzles with blanks in [blanks_min, blanks_max] */
    GV_TRY(gv_mdm_host_alloc((size_t)j->data.train.n * sizeof(int64_t), (void **)&j->train_rows));
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
        GV_TRY(gv_mdm_host_alloc((size_t)j->n_eval * sizeof(int64_t), (void **)&j->eval_rows));
        for (int64_t i = 0; i < j->n_eval; ++i) j->eval_rows[i] = first + i;
        GV_TRY(gv_mdm_host_alloc((size_t)j->n_eval, (void **)&j->eval_solved));
        GV_TRY(gv_mdm_host_alloc((size_t)j->n_eval * sizeof(float), (void **)&j->eval_reward));
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
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; ++i) GV_TRY(gv_mdm_host_alloc(sizes[i], bufs[i]));
    if (cfg->algorithm.credit == GV_MDM_CREDIT_CELL) {
        GV_TRY(gv_mdm_host_alloc(N * T * sizeof(float), (void **)&j->cell_adv));
        GV_TRY(gv_mdm_host_alloc(mb * T * sizeof(float), (void **)&j->mb_cell_adv));
    }
    if (cfg->algorithm.estimator == GV_MDM_EST_TRAJECTORY) /* zeroed: rows of other ranks' shards stay valid */
        GV_TRY(gv_mdm_host_alloc(N * T * sizeof(int32_t), (void **)&j->commit_step));
    if (cfg->algorithm.order_logp) {
        void **ob[] = {(void **)&j->drawn, (void **)&j->commit_rank, (void **)&j->tau_r,
                       (void **)&j->mb_drawn, (void **)&j->mb_rank, (void **)&j->mb_cs,
                       (void **)&j->mb_tau};
        const size_t os[] = {N * VT * 4, N * T * 4, N * j->views * 4, mb * VT * 4, mb * T * 4,
                             mb * T * 4, mb * j->views * 4};
        for (size_t i = 0; i < sizeof os / sizeof os[0]; ++i) GV_TRY(gv_mdm_host_alloc(os[i], ob[i]));
    }
    gv_masked_config sc = {.N = j->N > cfg->eval.batch ? j->N : cfg->eval.batch, .T = j->T, .V = j->V};
    j->scratch_bytes = gv_masked_scratch_bytes(&sc, 0);
    GV_TRY(gv_mdm_host_alloc(j->scratch_bytes, &j->scratch));
    const int rows = j->N > cfg->eval.batch ? j->N : cfg->eval.batch;
    GV_TRY(gv_mdm_runner_init(&j->runner, &j->model, j->ctx, rows < 64 ? rows : 64));
    /* shards (mdm_train.h): shard s holds the puzzle slots [P·s/S, P·(s+1)/S), their G samples each */
    GV_TRY(gv_mdm_host_alloc((size_t)(j->shards + 1) * sizeof(int), (void **)&j->shard_first));
    GV_TRY(gv_mdm_host_alloc((size_t)j->N * sizeof(int32_t), (void **)&j->seq_shard));
    GV_TRY(gv_mdm_host_alloc((size_t)j->shards * sizeof(gv_mdm_shard_part), &j->shard_stats));
    for (int sh = 0; sh < j->shards; ++sh) {
        int a, b;
        gv_dist_shard_range(j->P, sh, j->shards, &a, &b);
        j->shard_first[sh] = a * j->G;
        j->shard_first[sh + 1] = b * j->G;
        for (int n = a * j->G; n < b * j->G; ++n) j->seq_shard[n] = sh;
    }
    const int nloc = j->shard_hi - j->shard_lo;
    GV_TRY(gv_mdm_host_alloc((size_t)nloc * sizeof(float *), (void **)&j->shard_grads));
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
        gv_schedule_config sc2 = {.steps = cfg->sampler.steps, .blocks = 1, .hidden = cfg->co_grpo.hidden,
                                  .seed = j->seed, .lr = (float)cfg->co_grpo.lr, .weight_decay = 0.0f,
                                  .clip_range = (float)cfg->algorithm.clip_range,
                                  .sigma_decay_iterations = cfg->co_grpo.sigma_decay_iterations};
        GV_TRY(parse_knobs(cfg->co_grpo.knobs, sc2.learned)); /* checked: check_supported */
        GV_TRY(gv_schedule_create(&sc2, &j->sched));
        GV_TRY(gv_mdm_host_alloc((size_t)nloc * sizeof(float *), (void **)&j->phi_grads));
        for (int k = 0; k < nloc; ++k) {
            if (j->shards == 1) j->phi_grads[k] = j->sched.phi.grads;
            else GV_TRY(gv_mdm_host_alloc((size_t)j->sched.phi.total * sizeof(float), (void **)&j->phi_grads[k]));
        }
    }
    return gv_mdm_policy_init(&j->pol, &j->model, j->ctx, j->mb, j->views, j->mask_id);
}

void gv_mdm_job_free(gv_mdm_job *j) {
    void *h[] = {j->train_rows, j->prompt_rows, j->tokens, j->group, j->completion, j->valid,
                 j->reward, j->adv, j->ids, j->coef, j->t, j->order, j->old, j->refl, j->mb_ids,
                 j->mb_tok, j->mb_coef, j->mb_ell, j->mb_w, j->mb_adv, j->mb_dell, j->mb_comp,
                 j->mb_valid, j->cell_adv, j->mb_cell_adv, j->commit_step, j->drawn, j->commit_rank,
                 j->tau_r, j->mb_drawn, j->mb_rank, j->mb_cs, j->mb_tau, j->scratch, j->eval_rows,
                 j->eval_solved, j->eval_reward};
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
                  j->canvas, j->solution, j->text, (void *)j->texts, (void *)j->puzzles,
                  j->failed_batches, j->meta_text, (void *)j->meta};
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

