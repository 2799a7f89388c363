/* Building and tearing down a `grove train` job (grpo.h), the plan `--dry-run` prints, and the
 * held-out eval (ALGORITHMS.md §3; DESIGN.md §1, §3, §7).
 *
 * Setup: the base UNet is opened with use_ema = 0 (an export's /params are the base weights) and
 * kept as the frozen KL reference; the trained model is a second table of the same architecture
 * with Adam state and an EMA, both initialised to the base. Prompts (data.prompts,
 * data.eval_prompts) are encoded with the model's vocabulary. Rewards come from the built-in
 * registry or are plugins (`plugin:`, opened with their `config:` flattened; DESIGN.md §7); a
 * classifier reward's `model:` is "" / "reward" (models/weights/<dataset>-classifier.h5 under the
 * grove root), "gold" (<dataset>-classifier-gold.h5) or a checkpoint path. reward_transform
 * win_rate needs a pairwise plugin among the training rewards; a judge without score() is
 * refused anywhere else.
 * Eval: the ODE sampler with the EMA weights, eval.seeds fixed seeds per eval prompt (RNG stream
 * EVAL, iteration 0: the same noise at every eval), every eval reward's mean over unmasked samples,
 * and with a classifier as the first eval reward its accuracy and mean gold probability. FCD is
 * NOT computed in training evals (it needs the dataset's test features; `grove eval` reports it).
 * Deliberately not here: the rollout, the training pass and the run directory. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "grove/algorithm_config.h"
#include "grove/dist.h"
#include "grove/grpo.h"
#include "grove/paths.h"
#include "grove/reward.h"

/* ---- the plan --------------------------------------------------------------------------------- */

static int trained_steps(const gv_run_config *cfg) { return gv_grpo_trained_step_count(cfg); }

static int train_cfg_on(const gv_run_config *cfg) {
    if (cfg->train.train_cfg == GV_TRAIN_CFG_AUTO) return cfg->sampler.guidance != 1.0;
    return cfg->train.train_cfg == GV_TRAIN_CFG_TRUE;
}

gv_status gv_grpo_plan_count(const gv_run_config *cfg, gv_grpo_plan *p) {
    memset(p, 0, sizeof *p);
    const int P = cfg->group.prompts_per_iteration, G = cfg->group.size, N = cfg->sampler.steps;
    const int mb = cfg->run.micro_batch, per_mb = cfg->train.minibatch;
    const int sde = cfg->sampler.noise.kind != GV_NOISE_ODE && cfg->sampler.noise.level > 0.0;
    p->window_kind = cfg->sampler.window.kind;
    p->window_size = cfg->sampler.window.kind != GV_WINDOW_NONE ? cfg->sampler.window.size : 0;
    p->prompts = P;
    p->group_size = G;
    p->samples = P * G;
    p->steps = N;
    p->sde_steps = sde ? gv_grpo_sde_step_count(cfg) : 0;
    p->trained_steps = sde ? trained_steps(cfg) : 0;
    p->nodes = (int64_t)p->samples * (N + 1);
    p->edges = (int64_t)p->samples * N;
    p->sde_edges = (int64_t)p->samples * p->sde_steps;
    p->trained_units = (int64_t)p->samples * p->trained_steps;
    p->minibatches = (p->samples + per_mb - 1) / per_mb;
    p->micro_batch = mb;
    const int rollout_cfg = cfg->sampler.guidance != 1.0;
    p->train_cfg = train_cfg_on(cfg);
    p->rows = rollout_cfg ? 2 * mb : mb;
    p->kl_forwards = cfg->kl.kind != GV_KL_NONE && cfg->kl.beta > 0.0;
    p->nfe_rollout = (int64_t)p->samples * N * (rollout_cfg ? 2 : 1);
    p->forwards_rollout = (int64_t)N * ((p->samples + mb - 1) / mb);
    const int mult = (p->train_cfg ? 2 : 1) * (p->kl_forwards ? 2 : 1);
    p->nfe_train = (int64_t)cfg->train.inner_epochs * p->trained_units * mult;
    int64_t chunks = 0;
    for (int first = 0; first < p->samples; first += per_mb) {
        const int m = p->samples - first < per_mb ? p->samples - first : per_mb;
        chunks += ((int64_t)m * p->trained_steps + mb - 1) / mb;
    }
    p->forwards_train = (int64_t)cfg->train.inner_epochs * chunks * (p->kl_forwards ? 2 : 1);
    /* the topology's counts (rollout_plan.h), which replace the chain formulas for trees */
    gv_rollout_plan rp;
    GV_TRY(gv_run_config_rollout_plan(cfg, &rp));
    p->topology = cfg->topology.kind;
    p->roots = rp.roots;
    p->leaves = rp.leaves;
    p->trainable_edges = rp.trainable_edges;
    p->trained_edges = rp.trained_edges;
    p->rows_rollout = rp.rollout_forwards;
    p->rows_train = rp.training_forwards;
    p->rows_train_no_reuse = rp.training_forwards_no_reuse;
    p->rows_completion = rp.completion_forwards;
    if (cfg->dense.calibrate) { /* dense.c gv_grpo_calibrate: R_0..R_{N-1} of every chain */
        gv_topology ct;
        gv_rollout_plan cp;
        const int n = gv_run_config_dense_completion(cfg);
        const gv_plan_opts co = {.n_prompts = gv_run_config_calibration_prompts(cfg),
                                 .dense_completion = n ? n : GV_DENSE_COMPLETION_ALL};
        GV_TRY(gv_run_config_topology(cfg, NULL, &ct));
        GV_TRY(gv_rollout_plan_compute(&ct, &co, &cp));
        p->calibration_rounds = cfg->dense.rounds;
        p->calibration_samples = co.n_prompts * G;
        p->rows_calibration = (int64_t)cfg->dense.rounds * (cp.rollout_forwards + cp.completion_forwards);
    }
    if (cfg->topology.kind == GV_TOPOLOGY_CHAINS) return GV_OK;
    p->nodes = rp.nodes;
    p->edges = rp.transitions;
    p->sde_edges = rp.trainable_edges;
    p->trained_units = rp.trained_edges;
    p->nfe_rollout = rp.rollout_forwards * (rollout_cfg ? 2 : 1);
    p->nfe_train = (int64_t)cfg->train.inner_epochs * rp.training_forwards * mult;
    /* fixed-shape calls: each step's frontier in chunks of mb (rollout); each minibatch's
       parents in chunks of mb (training; every root has the same parents) */
    gv_topology t;
    GV_TRY(gv_run_config_topology(cfg, NULL, &t));
    int64_t nodes, rows, children;
    GV_TRY(gv_topology_sizes(&t, P, &nodes, &rows, &children));
    gv_tree tree;
    GV_TRY(gv_tree_init(&tree, (int32_t)nodes, 1));
    gv_tree_action *act = malloc((size_t)rows * sizeof *act);
    gv_status s = act ? gv_tree_add_roots(&tree, P, G) : GV_ERROR(GV_ERR_OOM, "plan: actions");
    p->forwards_rollout = 0;
    for (int i = 0; i < N && s == GV_OK; ++i) {
        gv_step_batch b;
        s = gv_topology_expand(&t, &tree, i, act, (int32_t)rows, &b);
        p->forwards_rollout += (b.n_rows + mb - 1) / mb;
    }
    free(act);
    gv_tree_free(&tree);
    GV_TRY(s);
    const int64_t parents = rp.roots > 0 ? rp.training_forwards / rp.roots : 0;
    chunks = 0;
    for (int first = 0; first < p->samples; first += per_mb) {
        const int m = p->samples - first < per_mb ? p->samples - first : per_mb;
        chunks += ((int64_t)m * parents + mb - 1) / mb;
    }
    p->forwards_train = (int64_t)cfg->train.inner_epochs * chunks * (p->kl_forwards ? 2 : 1);
    return GV_OK;
}

/* ---- rewards ---------------------------------------------------------------------------------- */

static gv_status reward_model_path(const char *model, const char *dataset, char *out, size_t n) {
    char rel[512];
    if (!model || !*model || strcmp(model, "reward") == 0)
        snprintf(rel, sizeof rel, "models/weights/%s-classifier.h5", dataset);
    else if (strcmp(model, "gold") == 0)
        snprintf(rel, sizeof rel, "models/weights/%s-classifier-gold.h5", dataset);
    else {
        if (strlen(model) >= n) return GV_ERROR(GV_ERR_INVALID, "reward model path too long");
        snprintf(out, n, "%s", model);
        return GV_OK;
    }
    return gv_root_path(rel, out, n);
}

gv_status gv_grpo_rewards_create(gv_ctx *ctx, const char *dataset, int micro_batch,
                                 const gv_reward_spec *specs, int count, const char *what,
                                 gv_reward **out, gv_image_model **models) {
    return gv_grpo_rewards_create_kind(ctx, dataset, micro_batch, specs, count, what,
                                       GROVE_SAMPLES_IMAGE, out, models);
}

gv_status gv_grpo_rewards_create_kind(gv_ctx *ctx, const char *dataset, int micro_batch,
                                      const gv_reward_spec *specs, int count, const char *what,
                                      uint32_t kind, gv_reward **out, gv_image_model **models) {
    *out = calloc((size_t)(count ? count : 1), sizeof **out);
    *models = calloc((size_t)(count ? count : 1), sizeof **models);
    if (!*out || !*models) return GV_ERROR(GV_ERR_OOM, "grpo: rewards");
    for (int k = 0; k < count; ++k) {
        const gv_reward_spec *r = &specs[k];
        if (r->plugin && *r->plugin) { /* DESIGN.md §7: `config:` handed over flattened */
            gv_status s = gv_reward_load_plugin(&(*out)[k], r->plugin, r->config.flat, r->weight,
                                                kind);
            if (s != GV_OK) return gv_error_prefix("%s[%d]", what, k), s;
            continue;
        }
        gv_builtin_reward_id id;
        GV_TRY(gv_builtin_reward_find(r->builtin, &id));
        const gv_image_model *m = NULL;
        if (gv_builtin_rewards[id].needs_classifier) {
            char path[4096];
            GV_TRY(reward_model_path(r->model, dataset, path, sizeof path));
            gv_status s = gv_image_model_load(path, ctx->backend, 0, &(*models)[k]);
            if (s != GV_OK) return gv_error_prefix("%s[%d] (%s)", what, k, r->builtin), s;
            if ((*models)[k].kind != GV_MODEL_CLASSIFIER)
                return GV_ERROR(GV_ERR_CONFIG, "%s[%d]: %s is not a classifier", what, k, path);
            m = &(*models)[k];
        }
        GV_TRY(gv_reward_create(&(*out)[k], r->builtin, r->weight, m, micro_batch, ctx));
        GV_TRY(gv_reward_set_score(&(*out)[k], (gv_classifier_score)r->score));
    }
    return GV_OK;
}

/* ---- prompts ---------------------------------------------------------------------------------- */

static gv_status encode_prompts(gv_grpo_job *j, const char *path, char ***text, int *n,
                                int32_t **ids, int **labels) {
    GV_TRY(gv_eval_prompts_read(path, text, n));
    *ids = malloc((size_t)*n * (size_t)j->L * sizeof(int32_t));
    *labels = malloc((size_t)*n * sizeof(int));
    if (!*ids || !*labels) return GV_ERROR(GV_ERR_OOM, "%s: prompts", path);
    for (int i = 0; i < *n; ++i) {
        gv_status s = gv_image_model_encode_prompt(&j->model, (*text)[i], *ids + (int64_t)i * j->L,
                                                   &(*labels)[i]);
        if (s != GV_OK) return gv_error_prefix("%s:%d", path, i + 1), s;
    }
    return GV_OK;
}

/* ---- setup ------------------------------------------------------------------------------------ */

static gv_status dev_alloc(const gv_backend *be, size_t bytes, void **out) {
    GV_TRY(be->alloc(bytes ? bytes : 4, out));
    return be->memset_zero(*out, bytes ? bytes : 4);
}

static gv_status host_alloc(size_t bytes, void **out) {
    *out = calloc(1, bytes ? bytes : 1);
    return *out ? GV_OK : GV_ERROR(GV_ERR_OOM, "grpo: %zu host bytes", bytes);
}

static gv_status check_supported(const gv_run_config *cfg) {
    if (cfg->sampler.noise.kind == GV_NOISE_ODE || cfg->sampler.noise.level <= 0.0 ||
        trained_steps(cfg) < 1)
        return GV_ERROR(GV_ERR_CONFIG, "nothing to train: sampler.noise (%s, level %g), "
                        "sampler.window and train.timestep_fraction %g / random_fraction %g "
                        "leave no stochastic trained step",
                        cfg->sampler.noise.kind == GV_NOISE_ODE ? "ode" : "sde",
                        cfg->sampler.noise.level, cfg->train.timestep_fraction,
                        cfg->train.random_fraction);
    if (cfg->train.random_fraction > 0.0 && cfg->train.timestep_fraction != 1.0)
        return GV_ERROR(GV_ERR_CONFIG, "train.random_fraction %g and train.timestep_fraction %g: "
                        "give one of them (timestep_fraction 1 with random_fraction)",
                        cfg->train.random_fraction, cfg->train.timestep_fraction);
    int l;
    GV_TRY(gv_grpo_window_start(cfg, 0, 0, &l)); /* the window fits 0..N−2 */
    if (cfg->credit.kind == GV_CREDIT_KIND_DENSE && cfg->train.random_fraction > 0.0)
        return GV_ERROR(GV_ERR_CONFIG, "credit.kind dense trains the first timestep_fraction of "
                        "the steps of every chain; train.random_fraction %g is not supported with it",
                        cfg->train.random_fraction);
    if (cfg->topology.kind != GV_TOPOLOGY_CHAINS && cfg->dump.every > 0)
        return GV_ERROR(GV_ERR_UNSUPPORTED, "dump.every %d: rollout dumps are written for chains "
                        "only (topology.kind %s)", cfg->dump.every,
                        gv_topology_kind_names[cfg->topology.kind]);
    if (cfg->run.shards > cfg->group.prompts_per_iteration)
        return GV_ERROR(GV_ERR_CONFIG, "run.shards %d: at most group.prompts_per_iteration (%d); a "
                        "shard holds whole prompt groups", cfg->run.shards,
                        cfg->group.prompts_per_iteration);
    if (cfg->run.micro_batch > 1024)
        return GV_ERROR(GV_ERR_CONFIG, "run.micro_batch %d: at most 1024 for training",
                        cfg->run.micro_batch);
    return GV_OK;
}

gv_status gv_grpo_setup(gv_grpo_job *j, const gv_run_config *cfg, const gv_backend *be) {
    memset(j, 0, sizeof *j);
    j->cfg = cfg;
    j->be = be;
    j->seed = (uint32_t)cfg->run.seed;
    /* refusals of the config: every rank raises them alike, rank 0 alone prints (dist.h) */
    if (check_supported(cfg) != GV_OK) {
        gv_dist_agree_error();
        return gv_last_status();
    }
    /* data parallel (grpo.h): this rank's shards */
    j->shards = cfg->run.shards;
    GV_TRY(gv_dist_own_shards(j->shards, &j->shard_lo, &j->shard_hi));
    GV_TRY(be->ctx_create(&(gv_ctx_options){.threads = gv_resolve_threads(cfg->run.threads),
                                            .use_fast = 1}, &j->ctx));
    /* the base model = the frozen reference; the trained copy with Adam state and an EMA */
    GV_TRY(gv_image_model_load(cfg->model.checkpoint, be, 0, &j->base));
    if (j->base.kind != GV_MODEL_UNET)
        return GV_ERROR(GV_ERR_CONFIG, "model.checkpoint %s: a %s, not a flow UNet",
                        cfg->model.checkpoint, gv_model_kind_name(j->base.kind));
    GV_TRY(gv_image_model_create(&j->model, GV_MODEL_UNET, &j->base.unet.cfg, be, 1));
    GV_TRY(gv_image_model_set_vocab(&j->model, j->base.vocab_text, cfg->model.checkpoint));
    snprintf(j->model.dataset, sizeof j->model.dataset, "%s", j->base.dataset);
    snprintf(j->model.path, sizeof j->model.path, "%s", j->base.path);
    const size_t pbytes = (size_t)j->model.params.total * sizeof(float);
    GV_TRY(be->copy(j->model.params.values, j->base.params.values, pbytes));
    GV_TRY(be->copy(j->model.params.ema, j->base.params.values, pbytes));
    /* sizes */
    const gv_unet_config *uc = &j->model.unet.cfg;
    j->P = cfg->group.prompts_per_iteration;
    j->G = cfg->group.size;
    j->S = j->P * j->G;
    j->N = cfg->sampler.steps;
    j->T = trained_steps(cfg);
    j->mb = cfg->run.micro_batch;
    j->L = uc->max_prompt_len;
    j->D = (int64_t)uc->in_channels * uc->height * uc->width;
    j->guidance = (float)cfg->sampler.guidance;
    j->train_cfg = train_cfg_on(cfg);
    j->noise = (gv_noise_spec){.kind = (gv_noise_kind)cfg->sampler.noise.kind,
                               .level = cfg->sampler.noise.level};
    GV_TRY(gv_schedule_sigmas(j->N, cfg->sampler.shift, j->sigmas));
    if (cfg->sampler.noise.kind == GV_NOISE_CALIBRATED) { /* ALGORITHMS.md §5: ψ0 = flow_grpo s(i) */
        GV_TRY(gv_psi_calibration_init(&j->cal, j->sigmas, j->N, cfg->sampler.noise.level,
                                       cfg->dense.calibrate ? cfg->dense.rounds : 0,
                                       cfg->dense.eps1, cfg->dense.eps2));
        j->noise.psi = j->cal.psi;
        j->noise.n_psi = j->N - 1;
    }
    /* prompts and the cursor */
    GV_TRY(encode_prompts(j, cfg->data.prompts, &j->train_text, &j->n_train, &j->train_ids,
                          &j->train_labels));
    if (cfg->data.eval_prompts && *cfg->data.eval_prompts)
        GV_TRY(encode_prompts(j, cfg->data.eval_prompts, &j->eval_text, &j->n_eval, &j->eval_ids,
                              &j->eval_labels));
    j->cursor.n = j->n_train;
    GV_TRY(host_alloc((size_t)j->n_train * sizeof(int64_t), (void **)&j->cursor.perm));
    GV_TRY(host_alloc((size_t)j->S * sizeof(int32_t), (void **)&j->root_shard));
    gv_grpo_set_batch(j, j->P);
    /* rollout buffers: chains S·(N+1) nodes; trees and branch points the topology's pool */
    const size_t SD = (size_t)j->S * (size_t)j->D * sizeof(float), img = (size_t)j->D * sizeof(float);
    int64_t capacity = (int64_t)j->S * (j->N + 1), rows = j->S, children = j->S, leaves = j->S;
    j->tree_mode = cfg->topology.kind != GV_TOPOLOGY_CHAINS;
    if (j->tree_mode) {
        GV_TRY(gv_run_config_topology(cfg, NULL, &j->topo));
        GV_TRY(gv_topology_sizes(&j->topo, j->P, &capacity, &rows, &children));
        gv_rollout_plan rp;
        GV_TRY(gv_run_config_rollout_plan(cfg, &rp));
        leaves = rp.leaves;
        if (rows < j->S) rows = j->S;
        if (children < j->S) children = j->S;
    }
    j->max_rows = (int32_t)rows;
    j->max_children = (int32_t)children;
    j->n_leaves = (int32_t)leaves;
    GV_TRY(gv_tree_init(&j->tree, (int32_t)capacity, j->D));
    GV_TRY(dev_alloc(be, img * (size_t)capacity, (void **)&j->latents));
    GV_TRY(dev_alloc(be, img * (size_t)rows, (void **)&j->v));
    GV_TRY(dev_alloc(be, SD, (void **)&j->eps));
    GV_TRY(dev_alloc(be, (size_t)children * sizeof(float), (void **)&j->logp));
    GV_TRY(host_alloc((size_t)children * sizeof(float), (void **)&j->logp_host));
    if (j->tree_mode) {
        GV_TRY(host_alloc((size_t)rows * sizeof(gv_tree_action), (void **)&j->actions));
        GV_TRY(host_alloc((size_t)rows * (size_t)j->L * sizeof(int32_t), (void **)&j->row_ids));
        GV_TRY(host_alloc((size_t)leaves * sizeof(int32_t), (void **)&j->leaf_labels));
        GV_TRY(host_alloc((size_t)leaves * sizeof(int32_t), (void **)&j->leaf_prompt));
        GV_TRY(host_alloc((size_t)leaves * sizeof(char *), (void **)&j->leaf_text));
        GV_TRY(host_alloc((size_t)capacity * sizeof(float), (void **)&j->node_reward));
        GV_TRY(host_alloc((size_t)capacity, (void **)&j->node_valid));
        GV_TRY(host_alloc((size_t)capacity * sizeof(gv_credit_edge), (void **)&j->credit.edges));
        j->credit.capacity = (int32_t)capacity;
        GV_TRY(gv_credit_work_init(&j->credit_work, (int32_t)capacity));
        GV_TRY(gv_prune_work_init(&j->prune_work, (int32_t)capacity));
        if (gv_dist_size() > 1)
            GV_TRY(host_alloc((size_t)capacity * sizeof(float), (void **)&j->logp_pack));
    }
    GV_TRY(host_alloc((size_t)j->S * (size_t)j->L * sizeof(int32_t), (void **)&j->sample_ids));
    GV_TRY(host_alloc((size_t)j->S * sizeof(int32_t), (void **)&j->sample_labels));
    GV_TRY(host_alloc((size_t)j->S * sizeof(int32_t), (void **)&j->sample_prompt));
    GV_TRY(host_alloc((size_t)j->S * sizeof(int64_t), (void **)&j->sample_index));
    GV_TRY(host_alloc((size_t)j->S * sizeof(char *), (void **)&j->sample_text));
    if (cfg->dump.every > 0) { /* rollouts.h5: every step's velocity and one μ (grpo.h) */
        GV_TRY(dev_alloc(be, SD * (size_t)j->N, (void **)&j->dump_v));
        GV_TRY(dev_alloc(be, (size_t)j->D * sizeof(float), (void **)&j->dump_mu));
    }
    GV_TRY(host_alloc(img * (size_t)(leaves > j->S ? leaves : j->S), (void **)&j->p_host));
    if (cfg->credit.kind == GV_CREDIT_KIND_DENSE || j->cal.rounds > 0) { /* dense.c */
        const size_t SR = (size_t)j->S * (size_t)(cfg->n_rewards > 0 ? cfg->n_rewards : 1);
        GV_TRY(host_alloc((size_t)j->S * (size_t)(j->N + 1) * sizeof(float), (void **)&j->dense_R));
        GV_TRY(host_alloc((size_t)j->S * (size_t)(j->N + 1), (void **)&j->dense_Rv));
        GV_TRY(dev_alloc(be, SD, (void **)&j->dense_x));
        GV_TRY(host_alloc(SR * sizeof(float), (void **)&j->dense_scores));
        GV_TRY(host_alloc(SR, (void **)&j->dense_status));
        if (!j->tree_mode) GV_TRY(gv_credit_work_init(&j->credit_work, (int32_t)capacity));
    }
    gv_denoiser_options dopt = {.micro_batch = j->mb, .guidance = j->guidance,
                                .null_id = j->model.null_id};
    GV_TRY(gv_denoiser_create(&j->den, j->ctx, &j->model.unet, j->model.params.values, &dopt));
    /* rewards */
    GV_TRY(gv_grpo_rewards_create(j->ctx, j->model.dataset, j->mb, cfg->rewards, cfg->n_rewards,
                                  "rewards", &j->rewards, &j->reward_models));
    GV_TRY(gv_grpo_rewards_create(j->ctx, j->model.dataset, j->mb, cfg->eval_rewards,
                                  cfg->n_eval_rewards, "eval_rewards", &j->eval_rewards,
                                  &j->eval_reward_models));
    for (int k = 0; k < cfg->n_rewards; ++k)
        if (!gv_reward_can_score(&j->rewards[k]) &&
            cfg->reward_transform != GV_REWARD_TRANSFORM_WIN_RATE)
            return GV_ERROR(GV_ERR_CONFIG, "rewards[%d]: plugin '%s' is a pairwise judge without "
                            "score: it needs reward_transform win_rate (preset pref_grpo)", k,
                            j->rewards[k].name);
    if (cfg->reward_transform == GV_REWARD_TRANSFORM_WIN_RATE) {
        int pairwise = 0;
        for (int k = 0; k < cfg->n_rewards; ++k) pairwise += gv_reward_is_pairwise(&j->rewards[k]);
        if (!pairwise)
            return GV_ERROR(GV_ERR_CONFIG, "reward_transform win_rate (preset %s): no training "
                            "reward is a pairwise judge (a plugin with flag PAIRWISE and compare)",
                            cfg->algorithm.preset);
    }
    GV_TRY(host_alloc((size_t)(cfg->n_rewards ? cfg->n_rewards : 1) * sizeof(double), (void **)&j->weights));
    for (int k = 0; k < cfg->n_rewards; ++k) j->weights[k] = cfg->rewards[k].weight;
    j->n_eval_samples = j->n_eval > 0 && cfg->n_eval_rewards > 0 ? j->n_eval * cfg->eval.seeds : 0;
    if (j->n_eval_samples > 65536)
        return GV_ERROR(GV_ERR_CONFIG, "eval.seeds %d x %d eval prompts: at most 65536 samples",
                        cfg->eval.seeds, j->n_eval);
    const int R = cfg->n_rewards > cfg->n_eval_rewards ? cfg->n_rewards : cfg->n_eval_rewards;
    int n_max = j->S > j->n_eval_samples ? j->S : j->n_eval_samples;
    if (j->n_leaves > n_max) n_max = j->n_leaves;
    GV_TRY(host_alloc((size_t)n_max * (size_t)R * sizeof(float), (void **)&j->scores));
    GV_TRY(host_alloc((size_t)n_max * (size_t)R, (void **)&j->status));
    GV_TRY(host_alloc((size_t)n_max * sizeof(float), (void **)&j->scores_tmp));
    GV_TRY(host_alloc((size_t)j->shards * (size_t)(cfg->n_rewards > 0 ? cfg->n_rewards : 1) *
                          sizeof(gv_grpo_batch_outcome), (void **)&j->batch_outcomes));
    GV_TRY(host_alloc((size_t)n_max, (void **)&j->status_tmp));
    GV_TRY(host_alloc((size_t)n_max * GV_GRPO_META_LEN, (void **)&j->meta_text));
    GV_TRY(host_alloc((size_t)n_max * sizeof(char *), (void **)&j->meta));
    for (int i = 0; i < n_max; ++i) j->meta[i] = j->meta_text + (size_t)i * GV_GRPO_META_LEN;
    const int n_adv = j->n_leaves > j->S ? j->n_leaves : j->S; /* trees: per leaf (stats) */
    GV_TRY(host_alloc((size_t)n_adv * sizeof(float), (void **)&j->advantage));
    GV_TRY(host_alloc((size_t)n_adv, (void **)&j->valid));
    /* training */
    GV_TRY(gv_grpo_train_alloc(j));
    /* eval */
    if (j->n_eval_samples > 0) {
        const int ne = j->n_eval_samples;
        GV_TRY(dev_alloc(be, (size_t)ne * (size_t)j->D * sizeof(float), (void **)&j->eval_x));
        GV_TRY(host_alloc((size_t)ne * (size_t)j->D * sizeof(float), (void **)&j->eval_p));
        GV_TRY(host_alloc((size_t)ne * (size_t)j->L * sizeof(int32_t), (void **)&j->eval_sample_ids));
        GV_TRY(host_alloc((size_t)ne * sizeof(int32_t), (void **)&j->eval_sample_labels));
        GV_TRY(host_alloc((size_t)ne * sizeof(char *), (void **)&j->eval_sample_text));
        GV_TRY(host_alloc((size_t)ne * sizeof(int32_t), (void **)&j->eval_sample_group));
        for (int i = 0; i < ne; ++i) { /* sample i: eval prompt i / seeds, seed slot i */
            const int p = i / cfg->eval.seeds;
            j->eval_sample_text[i] = j->eval_text[p];
            j->eval_sample_group[i] = p;
            memcpy(j->eval_sample_ids + (int64_t)i * j->L, j->eval_ids + (int64_t)p * j->L,
                   (size_t)j->L * sizeof(int32_t));
            j->eval_sample_labels[i] = j->eval_labels[p];
        }
        GV_TRY(gv_denoiser_create(&j->eval_den, j->ctx, &j->model.unet, j->model.params.ema, &dopt));
        if (j->eval_rewards[0].id == GV_REWARD_CLASSIFIER) {
            const gv_image_model *gm = &j->eval_reward_models[0];
            GV_TRY(gv_judge_create(&j->judge, j->ctx, &gm->classifier, gv_image_model_theta(gm), j->mb));
            j->judge_ok = 1;
            GV_TRY(host_alloc((size_t)ne * (size_t)j->judge.K * sizeof(float), (void **)&j->eval_probs));
        }
    }
    return GV_OK;
}

void gv_grpo_shard_roots(const gv_grpo_job *j, int shard, int *lo, int *hi) {
    int a, b; /* the slots [P·shard/S, P·(shard+1)/S): dist.h's partition rule over the slots */
    gv_dist_shard_range(j->P, shard, j->shards, &a, &b);
    *lo = a * j->G;
    *hi = b * j->G;
}

void gv_grpo_set_batch(gv_grpo_job *j, int P) {
    j->P = P;
    j->S = P * j->G;
    for (int sh = 0; sh < j->shards; ++sh) {
        int lo, hi;
        gv_grpo_shard_roots(j, sh, &lo, &hi);
        for (int r = lo; r < hi; ++r) j->root_shard[r] = sh;
    }
}

void gv_grpo_rewards_free(gv_reward *r, gv_image_model *m, int n) {
    for (int k = 0; r && k < n; ++k) gv_reward_destroy(&r[k]);
    for (int k = 0; m && k < n; ++k) gv_image_model_free(&m[k]);
    free(r);
    free(m);
}

void gv_grpo_teardown(gv_grpo_job *j) {
    const gv_backend *be = j->be;
    if (!be) return;
    if (j->judge_ok) gv_judge_free(&j->judge);
    gv_denoiser_free(&j->eval_den);
    gv_denoiser_free(&j->den);
    gv_grpo_stage_free(&j->stage, be);
    void *dev[] = {j->latents, j->v, j->eps, j->logp, j->u_dv, j->u_v, j->u_mu, j->u_mu_ref,
                   j->u_dmu, j->u_logp, j->u_logp_old, j->u_adv, j->u_weight, j->u_kl, j->u_var,
                   j->u_ratio, j->u_dlogp, j->u_dkl, j->u_stats, j->u_loss, j->u_one, j->eval_x,
                   j->dump_v, j->dump_mu, j->u_kl_row, j->u_dkl_row, j->dense_x};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; ++i)
        if (dev[i]) be->free(dev[i]);
    void *host[] = {j->logp_host, j->sample_ids, j->sample_labels, j->sample_prompt,
                    j->sample_index, j->sample_text, j->eval_sample_text, j->eval_sample_group,
                    j->meta_text, j->meta,
                    j->p_host,
                    j->weights, j->scores, j->scores_tmp, j->status, j->status_tmp, j->advantage,
                    j->valid, j->h_unit, j->roots, j->trained, j->step_w, j->eval_p, j->eval_sample_ids,
                    j->eval_sample_labels, j->eval_probs, j->train_ids, j->eval_ids,
                    j->train_labels, j->eval_labels, j->cursor.perm, j->actions, j->row_ids,
                    j->leaf_labels, j->leaf_prompt, j->leaf_text, j->node_reward, j->node_valid,
                    j->credit.edges, j->root_first, j->unit_args, j->chunk_rows, j->chunk_units,
                    j->dense_R, j->dense_Rv, j->dense_scores, j->dense_status, j->root_shard,
                    j->shard_acc, j->logp_pack, j->batch_outcomes};
    for (int k = 0; j->shard_grads && k < j->shard_hi - j->shard_lo; ++k)
        if (j->shard_grads[k] && j->shard_grads[k] != j->model.params.grads) be->free(j->shard_grads[k]);
    free(j->shard_grads);
    for (size_t i = 0; i < sizeof host / sizeof host[0]; ++i) free(host[i]);
    gv_grpo_rewards_free(j->rewards, j->reward_models, j->cfg->n_rewards);
    gv_grpo_rewards_free(j->eval_rewards, j->eval_reward_models, j->cfg->n_eval_rewards);
    if (j->train_text) gv_eval_prompts_free(j->train_text, j->n_train);
    if (j->eval_text) gv_eval_prompts_free(j->eval_text, j->n_eval);
    gv_tree_free(&j->tree);
    gv_credit_work_free(&j->credit_work);
    gv_prune_work_free(&j->prune_work);
    gv_image_model_free(&j->model);
    gv_image_model_free(&j->base);
    if (j->ctx) be->ctx_destroy(j->ctx);
    memset(j, 0, sizeof *j);
}

/* ---- memory of the plan ----------------------------------------------------------------------- */

void gv_grpo_plan_memory(const gv_grpo_job *j, gv_grpo_plan *p) {
    p->param_count = 0;
    for (int i = 0; i < j->model.params.count; ++i) p->param_count += j->model.params.items[i].numel;
    /* params, grads, m, v, EMA + the reference table (values, grads, m, v of the base copy) */
    p->param_bytes = (int64_t)j->model.params.total * 4 * 9;
    p->latent_bytes = (int64_t)j->tree.capacity * j->D * 4; /* the pool: chains S·(N+1) */
    p->activation_bytes = (int64_t)(j->den.arena.cap + j->stage.arena.cap + j->eval_den.arena.cap +
                                    (j->judge_ok ? j->judge.arena.cap : 0));
}

/* ---- eval ------------------------------------------------------------------------------------- */

gv_status gv_grpo_eval(gv_grpo_job *j, gv_grpo_eval_result *out) {
    const gv_run_config *cfg = j->cfg;
    memset(out, 0, sizeof *out);
    const int n = j->n_eval_samples;
    out->n = n;
    out->accuracy = out->gold_prob = NAN;
    gv_generate_options o = gv_generate_defaults();
    o.steps = j->N;
    o.shift = cfg->sampler.shift;
    o.seed = j->seed;
    o.stream = GV_RNG_STREAM_EVAL;
    o.iteration = 0; /* fixed eval noise, independent of the training iteration */
    GV_TRY(gv_generate(&j->eval_den, j->ctx, n, j->eval_sample_ids, &o, j->eval_x, j->eval_p,
                       &out->nfe));
    const int R = cfg->n_eval_rewards;
    for (int i = 0; i < n; ++i)
        snprintf(j->meta_text + (size_t)i * GV_GRPO_META_LEN, GV_GRPO_META_LEN,
                 "{\"eval\": true, \"seed\": %u, \"prompt_index\": %d, \"seed_index\": %d, "
                 "\"weights\": \"ema\"}", j->seed, j->eval_sample_group[i], i % cfg->eval.seeds);
    GV_TRY(gv_grpo_score(j, j->eval_rewards, R, n, j->eval_p, j->eval_sample_labels,
                         (const char *const *)j->eval_sample_text, j->eval_sample_group,
                         (const char *const *)j->meta, j->scores, j->status));
    for (int k = 0; k < R && k < GV_GRPO_MAX_EVAL_REWARDS; ++k) {
        double sum = 0.0, sumsq = 0.0;
        int ok = 0;
        for (int i = 0; i < n; ++i) {
            const float v = j->scores[(int64_t)i * R + k];
            if (j->status[(int64_t)i * R + k] == GV_REWARD_ITEM_OK && isfinite(v))
                sum += v, sumsq += (double)v * v, ok++;
        }
        out->mean[k] = ok ? sum / ok : NAN;
        /* sample std (n - 1): with n it gives the standard error of the mean */
        out->std[k] = ok > 1 ? sqrt(fmax(0.0, (sumsq - sum * sum / ok) / (ok - 1))) : NAN;
        out->masked[k] = n - ok;
    }
    if (j->judge_ok) {
        GV_TRY(gv_judge_run(&j->judge, j->ctx, j->eval_p, 0, n, j->eval_probs, NULL));
        const int K = j->judge.K;
        double acc = 0.0, prob = 0.0;
        for (int i = 0; i < n; ++i) {
            const float *pr = j->eval_probs + (int64_t)i * K;
            int best = 0;
            for (int c = 1; c < K; ++c)
                if (pr[c] > pr[best]) best = c;
            const int lab = j->eval_sample_labels[i];
            acc += best == lab;
            prob += lab >= 0 && lab < K ? pr[lab] : 0.0;
        }
        out->accuracy = acc / n;
        out->gold_prob = prob / n;
    }
    return GV_OK;
}
