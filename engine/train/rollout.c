/* GRPO rollouts over the node pool (grpo.h; ALGORITHMS.md §1–6; DESIGN.md §3, §4).
 *
 * One iteration: G chains per prompt slot in the pool (samplers/tree.h), x_T from Philox at
 * (iteration, slot, node id, LATENT) — with group.same_latent every root of a group reads root 0's
 * address —, then N steps of the shifted grid, each ONE batched denoiser call over the whole
 * frontier (denoiser.h: fixed micro-batch, padded tail, CFG rows in the same forward) followed by
 * the schedule's step: gaussian_step_forward with the step noise of (iteration, slot, node id,
 * step) for the SDE steps 0..N-2, euler_step for the last. Every latent x_step stays in the pool's
 * backend buffer (training recomputes from it); logp_old goes to the host node. The final x_N is
 * copied to the host once, mapped to p = clamp((x + 1)/2, 0, 1) and scored by the rewards; the
 * advantages follow advantage.h. On dump iterations (j->dump_now) every step's velocity is kept and
 * gv_grpo_dump_rollouts writes rollouts-<k>.h5 from the pool (grpo.h; under several ranks rank 0
 * first gathers the other ranks' chains into its pool). With credit dense the
 * chains' x_i are then ODE-completed and the step gains become j->credit (dense.c).
 * Trees and branch points (rollout_topology): the same roots, then per step the topology's batch
 * (topology.h): ONE forward over the frontier rows (prompt ids of each row's root), one step op
 * per child reading its parent's row — ODE children euler_step, SDE children μ + noise·std·ε with
 * noise λ for split children, scored under split_density's std; the leaves x_N are scored, their
 * weighted reward sums (masked on a FAILED / non-finite weighted component) go through the credit
 * scheme (tempflow / branch) and pruning into j->credit. Deliberately not here: the training pass
 * (grpo_train.c) and the run directory (grpo_loop.c). Device-agnostic: tensors only through ops
 * and explicit copies. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "grove/advantage.h"
#include "grove/algorithm_config.h"
#include "grove/checkpoint.h"
#include "grove/dist.h"
#include "grove/grpo.h"
#include "grove/rng.h"

/* One reward column of one batch into j->scores_tmp / status_tmp, a failed plugin batch masked
   (grove/reward_outcome.h); the failure streak is the caller's (reward_streak). */
static gv_status score_one(gv_grpo_job *j, gv_reward *r, const gv_reward_images *b,
                           gv_grpo_batch_outcome *o) {
    const gv_win_rate_options wo = {.hard = j->cfg->pairwise.hard,
                                    .both_orders = j->cfg->pairwise.both_orders};
    const int win = j->cfg->reward_transform == GV_REWARD_TRANSFORM_WIN_RATE;
    return gv_reward_score_outcome(r, j->ctx, b, win ? &wo : NULL, j->scores_tmp, j->status_tmp,
                                   &j->pairwise_judged, &j->pairwise_imputed, o);
}

/* One batch's outcome into r's streak of failed batches (grpo.h, reward_failures). */
static gv_status reward_streak(const gv_grpo_job *j, gv_reward *r, const gv_grpo_batch_outcome *o,
                               int quiet) {
    return gv_reward_outcome_streak(r, j->cfg->reward_failures.max_consecutive, o, quiet);
}

/* Every reward of one batch into scores / status (n, count), the outcomes into o (count). */
static gv_status score_batch(gv_grpo_job *j, gv_reward *r, int count, const gv_reward_images *b,
                             float *scores, uint8_t *status, gv_grpo_batch_outcome *o) {
    j->pairwise_judged = j->pairwise_imputed = 0;
    for (int k = 0; k < count; ++k) {
        GV_TRY(score_one(j, &r[k], b, &o[k]));
        for (int i = 0; i < b->n; ++i) {
            scores[(int64_t)i * count + k] = j->scores_tmp[i];
            status[(int64_t)i * count + k] = j->status_tmp[i];
        }
    }
    return GV_OK;
}

static gv_reward_images images_of(const gv_grpo_job *j, int n, const float *p_host,
                                  const int32_t *labels, const char *const *prompts,
                                  const int32_t *groups, const char *const *metadata) {
    const gv_unet_config *uc = &j->model.unet.cfg;
    return (gv_reward_images){.n = n, .channels = uc->in_channels, .height = uc->height,
                              .width = uc->width, .pixels = p_host, .labels = labels,
                              .prompts = prompts, .groups = groups, .metadata = metadata};
}

gv_status gv_grpo_score(gv_grpo_job *j, gv_reward *r, int count, int n, const float *p_host,
                        const int32_t *labels, const char *const *prompts, const int32_t *groups,
                        const char *const *metadata, float *scores, uint8_t *status) {
    const gv_reward_images b = images_of(j, n, p_host, labels, prompts, groups, metadata);
    gv_grpo_batch_outcome o[64];
    if (count > 64) return GV_ERROR(GV_ERR_CONFIG, "rewards: at most 64");
    GV_TRY(score_batch(j, r, count, &b, scores, status, o));
    for (int k = 0; k < count; ++k) GV_TRY(reward_streak(j, &r[k], &o[k], gv_dist_rank() != 0));
    return GV_OK;
}

/* x_T of every root (DESIGN.md §3, RNG). */
static gv_status fill_roots(gv_grpo_job *j, uint32_t iteration) {
    const gv_ops *ops = j->be->ops;
    for (int32_t s = 0; s < j->tree.n_roots; ++s) {
        if (!gv_grpo_root_is_local(j, s)) continue; /* another rank's shard */
        gv_rng_addr addr;
        GV_TRY(gv_tree_rng_addr(&j->tree, s, iteration, 0, GV_RNG_PURPOSE_LATENT, &addr));
        if (j->cfg->group.same_latent) addr.node = 0; /* root index 0's id is 0 */
        gv_philox_args pa;
        GV_TRY(gv_rng_args(j->seed, GV_RNG_STREAM_SAMPLER, &addr, 0, j->D, &pa));
        GV_TRY(ops->philox_normal_fill(j->ctx, j->latents + j->tree.nodes[s].latent, &pa));
    }
    return GV_OK;
}

/* One sampler step i over the chains' frontier [begin, begin + n) (row k = root k): per local
   shard ONE batched denoiser call over its rows, then the step op over them (the children are
   appended first, for every root: the pool's bookkeeping is the same on every rank). */
static gv_status step_frontier(gv_grpo_job *j, uint32_t iteration, int i, int32_t begin, int32_t n) {
    const gv_ops *ops = j->be->ops;
    gv_step_args a;
    int is_sde = 0;
    GV_TRY(gv_grpo_step_coeffs(j, i, &a, &is_sde)); /* ODE outside the SDE window (step_select.c) */
    a.D = j->D;
    GV_TRY(gv_tree_expand(&j->tree, 1, is_sde));
    const int32_t child0 = j->tree.count - n;
    for (int sh = j->shard_lo; sh < j->shard_hi; ++sh) {
        int lo, hi;
        gv_grpo_shard_roots(j, sh, &lo, &hi);
        if (hi == lo) continue; /* a calibration batch of fewer prompts than shards (dense.c) */
        const int64_t off = (int64_t)lo * j->D;
        const float *x = j->latents + j->tree.nodes[begin + lo].latent;
        float *x_next = j->latents + j->tree.nodes[child0 + lo].latent, *v = j->v + off;
        a.N = hi - lo;
        GV_TRY(gv_denoiser_bind(&j->den, hi - lo, j->sample_ids + (int64_t)lo * j->L));
        GV_TRY(gv_denoiser_call(&j->den, j->ctx, x, j->sigmas[i], v));
        if (j->dump_now) /* rollouts.h5: keep step i's velocities (chains: the frontier is S wide) */
            GV_TRY(j->be->copy(j->dump_v + (int64_t)i * j->S * j->D + off, v,
                               (size_t)(hi - lo) * (size_t)j->D * sizeof(float)));
        if (!is_sde) { /* ALGORITHMS.md §2: the ODE fast path x' = x + Δ·v (always the last step) */
            GV_TRY(ops->euler_step(j->ctx, x_next, x, v, &a));
            continue;
        }
        for (int32_t k = lo; k < hi; ++k) {
            gv_rng_addr addr;
            gv_philox_args pa;
            GV_TRY(gv_tree_rng_addr(&j->tree, child0 + k, iteration, (uint32_t)i,
                                    GV_RNG_PURPOSE_STEP_NOISE, &addr));
            GV_TRY(gv_rng_args(j->seed, GV_RNG_STREAM_SAMPLER, &addr, 0, j->D, &pa));
            GV_TRY(ops->philox_normal_fill(j->ctx, j->eps + (int64_t)k * j->D, &pa));
        }
        /* ALGORITHMS.md §2: x' = μ + std·ε with its per-element-mean log-prob (logp_old) */
        GV_TRY(ops->gaussian_step_forward(j->ctx, x_next, j->logp + lo, x, v, j->eps + off, &a));
        GV_TRY(j->be->copy_to_host(j->logp_host + lo, j->logp + lo, (size_t)(hi - lo) * sizeof(float)));
        for (int32_t k = lo; k < hi; ++k) j->tree.nodes[child0 + k].logp_old = j->logp_host[k];
    }
    return GV_OK;
}

/* ---- data parallel: the local blocks and the exchanges ---------------------------------------- */

/* The nodes [begin, begin + n) (a frontier: children are appended in their parents' order, so its
   nodes are sorted by root; checked) whose root lies in [lo, hi): [*k0, *k1) relative to begin. */
static gv_status frontier_block(const gv_grpo_job *j, int32_t begin, int32_t n, int lo, int hi,
                                int32_t *k0, int32_t *k1) {
    for (int32_t k = 1; k < n; ++k)
        if (j->tree.nodes[begin + k].root < j->tree.nodes[begin + k - 1].root)
            return GV_ERROR(GV_ERR_INTERNAL, "grpo: frontier node %d (root %d) after root %d: not "
                            "sorted by root, shards would not be contiguous", begin + k,
                            j->tree.nodes[begin + k].root, j->tree.nodes[begin + k - 1].root);
    int32_t a = 0;
    while (a < n && j->tree.nodes[begin + a].root < lo) ++a;
    int32_t b = a;
    while (b < n && j->tree.nodes[begin + b].root < hi) ++b;
    *k0 = a;
    *k1 = b;
    return GV_OK;
}

/* The rank of shard `sh` (the inverse of gv_dist_shard_range). */
static int shard_rank(const gv_grpo_job *j, int sh) {
    const int R = gv_dist_size();
    for (int r = 0; r < R; ++r) {
        int lo, hi;
        gv_dist_shard_range(j->shards, r, R, &lo, &hi);
        if (sh >= lo && sh < hi) return r;
    }
    return R - 1;
}

gv_status gv_grpo_score_shards(gv_grpo_job *j, int32_t begin, int32_t n, const float *x,
                              const int32_t *labels, const char *const *prompts,
                              const int32_t *groups, float *scores, uint8_t *status,
                              gv_grpo_rollout_stats *out) {
    const gv_run_config *cfg = j->cfg;
    const int R = cfg->n_rewards;
    const int64_t D = j->D;
    int64_t judged = 0, imputed = 0;
    int32_t first = -1, last = -1; /* this rank's block */
    for (int64_t e = (int64_t)j->shard_lo * R; e < (int64_t)j->shard_hi * R; ++e)
        j->batch_outcomes[e].outcome = 0; /* an empty shard scores nothing */
    for (int sh = j->shard_lo; sh < j->shard_hi; ++sh) {
        int lo, hi;
        int32_t k0, k1;
        gv_grpo_shard_roots(j, sh, &lo, &hi);
        GV_TRY(frontier_block(j, begin, n, lo, hi, &k0, &k1));
        if (first < 0) first = k0;
        last = k1;
        if (k1 == k0) continue;
        const int64_t total = (int64_t)(k1 - k0) * D;
        float *p = j->p_host + (int64_t)k0 * D;
        GV_TRY(j->be->copy_to_host(p, x + (int64_t)k0 * D, (size_t)total * sizeof(float)));
        for (int64_t e = 0; e < total; ++e) { /* ALGORITHMS.md §1: p = clamp((x_N + 1)/2, 0, 1) */
            float q = (p[e] + 1.0f) * 0.5f;
            p[e] = q < 0.0f ? 0.0f : (q > 1.0f ? 1.0f : q);
        }
        const gv_reward_images b = images_of(j, k1 - k0, p, labels + k0, prompts + k0, groups + k0,
                                             (const char *const *)j->meta + k0);
        GV_TRY(score_batch(j, j->rewards, R, &b, scores + (int64_t)k0 * R,
                           status + (int64_t)k0 * R, j->batch_outcomes + (int64_t)sh * R));
        judged += j->pairwise_judged;
        imputed += j->pairwise_imputed;
    }
    int64_t counts[2 + 64] = {judged, imputed};
    for (int k = 0; k < R && k < 64; ++k) counts[2 + k] = j->rewards[k].failed_batches;
    if (gv_dist_size() > 1) {
        GV_TRY(gv_dist_allgather("rewards", scores, (size_t)R * sizeof(float), n, first, last));
        GV_TRY(gv_dist_allgather("reward statuses", status, (size_t)R, n, first, last));
        if (out) GV_TRY(gv_dist_sum_i64("reward counts", counts, 2 + (R < 64 ? R : 64)));
        GV_TRY(gv_dist_allgather("reward batch outcomes", j->batch_outcomes,
                                 (size_t)R * sizeof *j->batch_outcomes, j->shards, j->shard_lo,
                                 j->shard_hi));
    }
    /* reward_failures: the streak over the batches in shard order, on every rank alike, so one
       process and any rank count stop at the same batch with the same message (rank 0 notes) */
    for (int sh = 0; sh < j->shards; ++sh)
        for (int k = 0; k < R; ++k) {
            gv_status s = reward_streak(j, &j->rewards[k], &j->batch_outcomes[(int64_t)sh * R + k],
                                        gv_dist_rank() != 0);
            if (s != GV_OK) {
                gv_dist_agree_error(); /* every rank raised it from the same gathered outcomes */
                return s;
            }
        }
    if (!out) return GV_OK; /* completions (dense.c): their counts stay in the rewards' totals */
    j->pairwise_judged = out->pairwise_judged = counts[0];
    j->pairwise_imputed = out->pairwise_imputed = counts[1];
    if (out->failed_batches)
        for (int k = 0; k < R && k < 64; ++k) out->failed_batches[k] = counts[2 + k];
    return GV_OK;
}

/* Trees under several ranks: every child's logp_old to every rank (the prob-weighted fusion of
   credit.c reads siblings' log-probs). Each rank packs its nodes' values in pool order; the
   packs are concatenated in rank order and unpacked by the same ownership rule. */
static gv_status exchange_logp(gv_grpo_job *j) {
    if (gv_dist_size() == 1) return GV_OK;
    const int me = gv_dist_rank(), R = gv_dist_size();
    const int32_t n0 = j->tree.n_roots, count = j->tree.count;
    int64_t before = 0, mine = 0;
    for (int32_t c = n0; c < count; ++c) before += shard_rank(j, j->root_shard[j->tree.nodes[c].root]) < me;
    for (int32_t c = n0; c < count; ++c)
        if (shard_rank(j, j->root_shard[j->tree.nodes[c].root]) == me)
            j->logp_pack[before + mine++] = j->tree.nodes[c].logp_old;
    GV_TRY(gv_dist_allgather("tree log-probs", j->logp_pack, sizeof(float), count - n0, before,
                             before + mine));
    int64_t pos = 0;
    for (int q = 0; q < R; ++q)
        for (int32_t c = n0; c < count; ++c)
            if (shard_rank(j, j->root_shard[j->tree.nodes[c].root]) == q)
                j->tree.nodes[c].logp_old = j->logp_pack[pos++];
    return GV_OK;
}

/* ---- trees and branch points ------------------------------------------------------------------ */

/* The SDE coefficients of step i whatever the window says (a split child is SDE even outside
   the Mix window), std scaled by `std_scale` (ALGORITHMS.md §2, §6). */
gv_status gv_grpo_sde_coeffs(const gv_grpo_job *j, int i, float std_scale, gv_step_args *a) {
    int sde = 0;
    GV_TRY(gv_step_coeffs(&j->noise, j->sigmas, j->N, i, a, &sde));
    if (!sde) return GV_ERROR(GV_ERR_INTERNAL, "grpo: step %d has no SDE coefficients", i);
    a->std *= std_scale;
    return GV_OK;
}

/* One step i of a topology (topology.h): per local shard ONE batched forward over its frontier
   rows (the frontier is sorted by root), then one step op per child of a local root reading its
   parent's row; an SDE child draws mu + noise_scale std eps and is scored under
   N(mu, (logp_scale std)^2) (split_density). */
static gv_status step_topology(gv_grpo_job *j, uint32_t iteration, int i) {
    const gv_ops *ops = j->be->ops;
    gv_step_batch b;
    GV_TRY(gv_topology_expand(&j->topo, &j->tree, i, j->actions, j->max_rows, &b));
    for (int32_t r = 0; r < b.n_rows; ++r) /* the rows' prompts: their root's sample ids */
        memcpy(j->row_ids + (int64_t)r * j->L,
               j->sample_ids + (int64_t)j->tree.nodes[b.rows_begin + r].root * j->L,
               (size_t)j->L * sizeof(int32_t));
    for (int sh = j->shard_lo; sh < j->shard_hi; ++sh) {
        int lo, hi;
        int32_t r0, r1;
        gv_grpo_shard_roots(j, sh, &lo, &hi);
        GV_TRY(frontier_block(j, b.rows_begin, b.n_rows, lo, hi, &r0, &r1));
        if (r1 == r0) continue;
        GV_TRY(gv_denoiser_bind(&j->den, r1 - r0, j->row_ids + (int64_t)r0 * j->L));
        GV_TRY(gv_denoiser_call(&j->den, j->ctx,
                                j->latents + j->tree.nodes[b.rows_begin + r0].latent, j->sigmas[i],
                                j->v + (int64_t)r0 * j->D));
    }
    gv_step_args ode;
    int unused = 0;
    GV_TRY(gv_step_coeffs(&(gv_noise_spec){.kind = GV_NOISE_ODE}, j->sigmas, j->N, i, &ode, &unused));
    ode.N = 1;
    ode.D = j->D;
    const gv_ew_dims e = {.n = j->D};
    for (int32_t c = b.child_begin; c < b.child_begin + b.n_children; ++c) {
        gv_tree_node *nd = &j->tree.nodes[c];
        if (!gv_grpo_root_is_local(j, nd->root)) continue; /* another rank's shard */
        const float *x = j->latents + j->tree.nodes[nd->parent].latent;
        const float *v = j->v + (int64_t)(nd->parent - b.rows_begin) * j->D;
        float *x_next = j->latents + nd->latent;
        if (!nd->sde) { /* ALGORITHMS.md §2: the ODE fast path */
            GV_TRY(ops->euler_step(j->ctx, x_next, x, v, &ode));
            continue;
        }
        float noise, logp_scale;
        gv_topology_edge_scales(&j->topo, nd, &noise, &logp_scale);
        gv_step_args a;
        GV_TRY(gv_grpo_sde_coeffs(j, i, logp_scale, &a));
        a.N = 1;
        a.D = j->D;
        gv_rng_addr addr;
        gv_philox_args pa;
        GV_TRY(gv_tree_rng_addr(&j->tree, c, iteration, (uint32_t)i, GV_RNG_PURPOSE_STEP_NOISE,
                                &addr));
        GV_TRY(gv_rng_args(j->seed, GV_RNG_STREAM_SAMPLER, &addr, 0, j->D, &pa));
        GV_TRY(ops->philox_normal_fill(j->ctx, j->eps, &pa));
        if (noise != logp_scale) /* reference density: drawn with lambda std, scored under std */
            GV_TRY(ops->scale(j->ctx, j->eps, j->eps, noise / logp_scale, &e));
        GV_TRY(ops->gaussian_step_forward(j->ctx, x_next, j->logp + (c - b.child_begin), x, v,
                                          j->eps, &a));
    }
    GV_TRY(j->be->copy_to_host(j->logp_host, j->logp, (size_t)b.n_children * sizeof(float)));
    for (int32_t c = b.child_begin; c < b.child_begin + b.n_children; ++c)
        if (j->tree.nodes[c].sde && gv_grpo_root_is_local(j, j->tree.nodes[c].root))
            j->tree.nodes[c].logp_old = j->logp_host[c - b.child_begin];
    return GV_OK;
}

/* The leaves' rewards -> the credit scheme's triples -> pruning (credit.h, prune.h). Leaf
   rewards are the weighted sum of the components (a tree's credit normalizes them itself); a
   leaf with a FAILED or non-finite weighted component is masked. */
static gv_status tree_credit(gv_grpo_job *j, uint32_t iteration, int32_t leaf0, int32_t n_leaves) {
    const gv_run_config *cfg = j->cfg;
    const int R = cfg->n_rewards;
    for (int32_t c = 0; c < j->tree.count; ++c) j->node_reward[c] = NAN, j->node_valid[c] = 0;
    for (int32_t k = 0; k < n_leaves; ++k) {
        double r = 0.0;
        int ok = 1;
        for (int q = 0; q < R; ++q) {
            if (j->weights[q] == 0.0) continue;
            const float v = j->scores[(int64_t)k * R + q];
            if (j->status[(int64_t)k * R + q] != GV_REWARD_ITEM_OK || !isfinite(v)) ok = 0;
            else r += j->weights[q] * v;
        }
        j->node_reward[leaf0 + k] = ok ? (float)r : NAN;
        j->node_valid[leaf0 + k] = (uint8_t)ok;
    }
    float step_std[GV_TOPOLOGY_MAX_STEPS] = {0};
    for (int i = 0; i < j->N - 1; ++i) {
        gv_step_args a;
        if (gv_grpo_sde_coeffs(j, i, 1.0f, &a) == GV_OK) step_std[i] = a.std;
        else gv_clear_error(); /* noise level 0: no SDE step, no weight needed */
    }
    gv_credit_opts o = gv_run_config_credit_opts(cfg);
    o.step_std = step_std;
    o.train_step = NULL; /* trees and branch points train every SDE edge (ALGORITHMS.md §3) */
    j->credit.n = 0;
    if (cfg->credit.kind == GV_CREDIT_KIND_TEMPFLOW)
        GV_TRY(gv_credit_tempflow(&j->tree, j->node_reward, j->node_valid, &o, &j->credit_work,
                                  &j->credit, &j->credit_stats));
    else
        GV_TRY(gv_credit_branch(&j->tree, j->node_reward, j->node_valid, &o, &j->credit_work,
                                &j->credit, &j->credit_stats));
    memset(&j->prune_stats, 0, sizeof j->prune_stats);
    if (j->topo.kind == GV_TOPOLOGY_TREE) {
        gv_prune_spec spec;
        GV_TRY(gv_run_config_prune(cfg, &spec));
        GV_TRY(gv_prune_apply(&spec, &j->tree, gv_topology_last_split(&j->topo), (int)iteration,
                              &j->prune_work, &j->credit, &j->prune_stats));
    }
    return GV_OK;
}

static gv_status rollout_topology(gv_grpo_job *j, uint32_t iteration, gv_grpo_rollout_stats *out) {
    const gv_run_config *cfg = j->cfg;
    if (j->topo.kind == GV_TOPOLOGY_TREE) { /* Mix mode: the non-split steps follow the window */
        int splits[GV_TOPOLOGY_MAX_STEPS], n;
        GV_TRY(gv_run_config_splits(cfg, splits, &n));
        GV_TRY(gv_topology_tree(&j->topo, j->N, j->G, j->topo.K, j->topo.split_scale,
                                j->topo.split_density, splits, n, j->step_plan.sde));
    }
    const int64_t nfe0 = j->den.nfe;
    for (int i = 0; i < j->N; ++i) GV_TRY(step_topology(j, iteration, i));
    out->nfe = j->den.nfe - nfe0;
    int32_t begin, n;
    gv_tree_frontier(&j->tree, &begin, &n); /* the leaves x_N */
    if (n != j->n_leaves)
        return GV_ERROR(GV_ERR_INTERNAL, "grpo: %d leaves, planned %d", n, j->n_leaves);
    uint64_t hash = 0; /* the raw weights that sampled this rollout, for plugins' metadata */
    GV_TRY(gv_params_hash(&j->model.params, &hash));
    for (int32_t k = 0; k < n; ++k) {
        const gv_tree_node *leaf = &j->tree.nodes[begin + k];
        j->leaf_prompt[k] = leaf->prompt;
        j->leaf_labels[k] = j->sample_labels[leaf->root];
        j->leaf_text[k] = j->sample_text[leaf->root];
        snprintf(j->meta_text + (size_t)k * GV_GRPO_META_LEN, GV_GRPO_META_LEN,
                 "{\"iteration\": %u, \"seed\": %u, \"slot\": %d, \"root\": %d, \"leaf\": %d, "
                 "\"prompt_index\": %lld, \"checkpoint\": \"%016llx\"}", iteration, j->seed,
                 leaf->prompt, (int)leaf->root, (int)k, (long long)j->sample_index[leaf->root],
                 (unsigned long long)hash);
    }
    GV_TRY(gv_grpo_score_shards(j, begin, n, j->latents + j->tree.nodes[begin].latent,
                                j->leaf_labels, j->leaf_text, j->leaf_prompt, j->scores,
                                j->status, out));
    GV_TRY(exchange_logp(j));
    /* the logged reward statistics: the leaves as samples of their prompt's group */
    gv_advantage_opts ao = {.mode = cfg->rewards_mode, .global_std = cfg->train.global_std,
                            .std_eps = cfg->train.std_eps, .adv_clip = cfg->train.adv_clip};
    gv_advantage_input in = {.n_samples = n, .n_rewards = cfg->n_rewards, .rewards = j->scores,
                             .status = j->status, .weights = j->weights, .prompt = j->leaf_prompt};
    GV_TRY(gv_advantage_compute(&in, &ao, j->advantage, j->valid, out->per_reward, &out->adv));
    GV_TRY(tree_credit(j, iteration, begin, n));
    const gv_credit_stats *cs = &j->credit_stats; /* the triples' advantages replace the leaves' */
    out->adv.adv_mean = cs->adv_mean;
    out->adv.adv_std = cs->adv_std;
    out->adv.adv_min = cs->adv_min;
    out->adv.adv_max = cs->adv_max;
    out->adv.n_clipped = cs->n_clipped;
    return GV_OK;
}

gv_status gv_grpo_rollout(gv_grpo_job *j, uint32_t iteration, const int64_t *prompt_of_slot,
                          gv_grpo_rollout_stats *out) {
    const int G = j->G, L = j->L;
    for (int p = 0; p < j->P; ++p)
        for (int g = 0; g < G; ++g) {
            const int s = p * G + g;
            memcpy(j->sample_ids + (int64_t)s * L, j->train_ids + prompt_of_slot[p] * L,
                   (size_t)L * sizeof(int32_t));
            j->sample_labels[s] = j->train_labels[prompt_of_slot[p]];
            j->sample_prompt[s] = p;
            j->sample_index[s] = prompt_of_slot[p];
            j->sample_text[s] = j->train_text[prompt_of_slot[p]];
        }
    GV_TRY(gv_grpo_step_plan_make(j->cfg, &j->noise, j->sigmas, j->seed, iteration, &j->step_plan));
    gv_tree_reset(&j->tree);
    GV_TRY(gv_tree_add_roots(&j->tree, j->P, G));
    GV_TRY(fill_roots(j, iteration));
    if (j->tree_mode) {
        GV_TRY(rollout_topology(j, iteration, out));
        return gv_dist_sum_i64("rollout NFE", &out->nfe, 1);
    }
    const int64_t nfe0 = j->den.nfe;
    for (int i = 0; i < j->N; ++i) {
        int32_t begin, n;
        gv_tree_frontier(&j->tree, &begin, &n);
        GV_TRY(step_frontier(j, iteration, i, begin, n));
    }
    out->nfe = j->den.nfe - nfe0;
    GV_TRY(gv_dist_sum_i64("rollout NFE", &out->nfe, 1));
    int32_t begin, n;
    gv_tree_frontier(&j->tree, &begin, &n);
    const gv_run_config *cfg = j->cfg;
    uint64_t hash = 0; /* the raw weights that sampled this rollout, for plugins' metadata */
    GV_TRY(gv_params_hash(&j->model.params, &hash));
    for (int s = 0; s < j->S; ++s)
        snprintf(j->meta_text + (size_t)s * GV_GRPO_META_LEN, GV_GRPO_META_LEN,
                 "{\"iteration\": %u, \"seed\": %u, \"slot\": %d, \"member\": %d, "
                 "\"prompt_index\": %lld, \"checkpoint\": \"%016llx\"}", iteration, j->seed,
                 j->sample_prompt[s], s % G, (long long)j->sample_index[s],
                 (unsigned long long)hash);
    GV_TRY(gv_grpo_score_shards(j, begin, n, j->latents + j->tree.nodes[begin].latent,
                                j->sample_labels, (const char *const *)j->sample_text,
                                j->sample_prompt, j->scores, j->status, out));
    /* ALGORITHMS.md §3, Reward and Advantage; §8: win rates get the unbiased std + 1e-8 */
    const int win_rate = cfg->reward_transform == GV_REWARD_TRANSFORM_WIN_RATE;
    gv_advantage_opts ao = {.mode = cfg->rewards_mode, .global_std = cfg->train.global_std,
                            .std_eps = cfg->train.std_eps, .adv_clip = cfg->train.adv_clip,
                            .unbiased_std = win_rate};
    gv_advantage_input in = {.n_samples = j->S, .n_rewards = cfg->n_rewards, .rewards = j->scores,
                             .status = j->status, .weights = j->weights,
                             .prompt = j->sample_prompt};
    GV_TRY(gv_advantage_compute(&in, &ao, j->advantage, j->valid, out->per_reward, &out->adv));
    out->nfe_completion = 0;
    if (cfg->credit.kind != GV_CREDIT_KIND_DENSE || j->calibrating) return GV_OK;
    GV_TRY(gv_grpo_dense_credit(j, &out->nfe_completion)); /* ALGORITHMS.md §5 (dense.c) */
    const gv_credit_stats *cs = &j->credit_stats; /* the step gains' advantages are the trained ones */
    out->adv.adv_mean = cs->adv_mean;
    out->adv.adv_std = cs->adv_std;
    out->adv.adv_min = cs->adv_min;
    out->adv.adv_max = cs->adv_max;
    out->adv.n_clipped = cs->n_clipped;
    return GV_OK;
}

/* ---- rollouts.h5 ------------------------------------------------------------------------------ */

static gv_status dump_write(gv_grpo_job *j, gv_ckpt_writer *w, uint32_t iteration, int K,
                            const gv_step_args *a, float *lat, float *buf, float *small,
                            int64_t *ibuf) {
    const gv_backend *be = j->be;
    const int S = j->S, N = j->N, R = j->cfg->n_rewards;
    const int64_t D = j->D;
    const size_t img = (size_t)D * sizeof(float);
    /* the pool: chain node of x_i of sample s is at i·S + s (its latent offset in the node) */
    GV_TRY(be->copy_to_host(lat, j->latents, (size_t)S * (size_t)(N + 1) * img));
    const gv_shape sk_d = gv_shape_make(3, (int64_t[]){S, K, D});
    for (int which = 0; which < 2; ++which) { /* x_i, x_{i+1} */
        for (int s = 0; s < S; ++s)
            for (int i = 0; i < K; ++i) {
                const gv_tree_node *nd = &j->tree.nodes[(int64_t)(i + which) * S + s];
                memcpy(buf + ((int64_t)s * K + i) * D, lat + nd->latent, img);
            }
        GV_TRY(gv_ckpt_write_tensor(w, "steps", which ? "x_next" : "x", &sk_d, buf));
    }
    for (int i = 0; i < K; ++i) /* v: dump_v holds step i at i·S·D, sample s at s·D */
        for (int s = 0; s < S; ++s)
            GV_TRY(be->copy_to_host(buf + ((int64_t)s * K + i) * D,
                                    j->dump_v + ((int64_t)i * S + s) * D, img));
    GV_TRY(gv_ckpt_write_tensor(w, "steps", "v", &sk_d, buf));
    /* μ = cx·x + cv·v with the trainer's ops (grpo_train.c unit_mean), one (1, D) at a time */
    const gv_ew_dims e = {.n = D};
    for (int i = 0; i < K; ++i)
        for (int s = 0; s < S; ++s) {
            const float *x = j->latents + j->tree.nodes[(int64_t)i * S + s].latent;
            GV_TRY(be->ops->scale(j->ctx, j->dump_mu, j->dump_v + ((int64_t)i * S + s) * D,
                                  a[i].cv, &e));
            GV_TRY(be->ops->axpby(j->ctx, j->dump_mu, x, a[i].cx, 1.0f, &e));
            GV_TRY(be->copy_to_host(buf + ((int64_t)s * K + i) * D, j->dump_mu, img));
        }
    GV_TRY(gv_ckpt_write_tensor(w, "steps", "mu", &sk_d, buf));
    for (int s = 0; s < S; ++s)
        for (int i = 0; i < K; ++i)
            small[(int64_t)s * K + i] = j->tree.nodes[(int64_t)(i + 1) * S + s].logp_old;
    const gv_shape sk = gv_shape_make(2, (int64_t[]){S, K}), k1 = gv_shape_make(1, (int64_t[]){K});
    GV_TRY(gv_ckpt_write_tensor(w, "steps", "logp_old", &sk, small));
    const char *names[] = {"sigma", "sigma_next", "std", "cx", "cv", "sde"};
    for (int f = 0; f < 6; ++f) {
        for (int i = 0; i < K; ++i) {
            const float vals[] = {j->sigmas[i], j->sigmas[i + 1], a[i].std, a[i].cx, a[i].cv,
                                  (float)j->step_plan.sde[i]};
            small[i] = vals[f];
        }
        GV_TRY(gv_ckpt_write_tensor(w, "steps", names[f], &k1, small));
    }
    /* per sample */
    const struct { const char *key; int64_t v; } attrs[] = {
        {"iteration", iteration}, {"samples", S}, {"prompts", j->P}, {"group_size", j->G},
        {"steps", N}, {"stored_steps", K}, {"elements", D}, {"n_rewards", R},
        {"logp_kind", a[K > 0 ? K - 1 : 0].logp_kind}};
    for (size_t k = 0; k < sizeof attrs / sizeof attrs[0]; ++k)
        GV_TRY(gv_ckpt_put_i64(w, GV_CKPT_STATE, attrs[k].key, attrs[k].v));
    GV_TRY(gv_ckpt_put_i64s(w, GV_CKPT_STATE, "prompt", j->sample_index, S));
    for (int s = 0; s < S; ++s) ibuf[s] = j->sample_prompt[s];
    GV_TRY(gv_ckpt_put_i64s(w, GV_CKPT_STATE, "slot", ibuf, S));
    for (int s = 0; s < S; ++s) ibuf[s] = s % j->G;
    GV_TRY(gv_ckpt_put_i64s(w, GV_CKPT_STATE, "member", ibuf, S));
    for (int s = 0; s < S; ++s) ibuf[s] = j->valid[s] != 0;
    GV_TRY(gv_ckpt_put_i64s(w, GV_CKPT_STATE, "valid", ibuf, S));
    for (int64_t e2 = 0; e2 < (int64_t)S * R; ++e2) ibuf[e2] = j->status[e2];
    GV_TRY(gv_ckpt_put_i64s(w, GV_CKPT_STATE, "reward_status", ibuf, (int64_t)S * R));
    GV_TRY(gv_ckpt_put_f32s(w, GV_CKPT_STATE, "advantage", j->advantage, S));
    GV_TRY(gv_ckpt_put_f32s(w, GV_CKPT_STATE, "rewards", j->scores, (int64_t)S * R));
    for (int k = 0; k < R; ++k) small[k] = (float)j->weights[k];
    GV_TRY(gv_ckpt_put_f32s(w, GV_CKPT_STATE, "weights", small, R));
    return gv_ckpt_put_str(w, GV_CKPT_META, "content", "rollouts");
}

/* Under several ranks rank 0 holds only its own shards' chains: every other chain's latents
   x_0..x_N, velocities v_0..v_{N-1} and logp_old of x_1..x_N are gathered to rank 0 and put into
   its pool, dump_v and tree, so that dump_write reads exactly what one process holds. One gather
   per level (the ranks' samples are contiguous blocks in rank order), so a message is S images
   whatever N is and a rank stages S images, not the whole rollout. Every rank calls it; the
   others' buffers stay as they are. */
static gv_status dump_gather_level(gv_grpo_job *j, float *buf, int first, int last, float *src,
                                   int64_t src_stride, gv_tree_node *node0) {
    const size_t img = (size_t)j->D * sizeof(float);
    const int S = j->S;
    gv_status st = GV_OK;
    for (int s = first; st == GV_OK && s < last; ++s) /* this rank's samples */
        st = j->be->copy_to_host(buf + (int64_t)s * j->D,
                                 src + (node0 ? node0[s].latent : s * src_stride), img);
    if (st == GV_OK) st = gv_dist_gather_to_rank0("rollouts dump", buf, img, S, first, last);
    for (int s = 0; st == GV_OK && gv_dist_rank() == 0 && s < S; ++s)
        if (!gv_grpo_root_is_local(j, s))
            st = j->be->copy_from_host(src + (node0 ? node0[s].latent : s * src_stride),
                                       buf + (int64_t)s * j->D, img);
    return st;
}

static gv_status dump_gather(gv_grpo_job *j) {
    if (gv_dist_size() == 1) return GV_OK;
    const int S = j->S, N = j->N;
    const int64_t D = j->D;
    int first, last, unused;
    gv_grpo_shard_roots(j, j->shard_lo, &first, &unused);
    gv_grpo_shard_roots(j, j->shard_hi - 1, &unused, &last);
    float *buf = malloc((size_t)S * (size_t)(D > N ? D : N) * sizeof(float));
    if (!buf) return GV_ERROR(GV_ERR_OOM, "rollouts dump: %d samples to gather", S);
    gv_status st = GV_OK;
    for (int i = 0; st == GV_OK && i <= N; ++i) /* latents x_i: level i is nodes [i S, i S + S) */
        st = dump_gather_level(j, buf, first, last, j->latents, 0, j->tree.nodes + (int64_t)i * S);
    for (int i = 0; st == GV_OK && i < N; ++i) /* velocities v_i */
        st = dump_gather_level(j, buf, first, last, j->dump_v + (int64_t)i * S * D, D, NULL);
    if (st == GV_OK) { /* logp_old of x_1..x_N, one row of N per sample */
        for (int s = first; s < last; ++s)
            for (int i = 0; i < N; ++i) buf[(int64_t)s * N + i] = j->tree.nodes[(int64_t)(i + 1) * S + s].logp_old;
        st = gv_dist_gather_to_rank0("rollouts dump", buf, (size_t)N * sizeof(float), S, first, last);
        for (int s = 0; st == GV_OK && gv_dist_rank() == 0 && s < S; ++s)
            if (!gv_grpo_root_is_local(j, s))
                for (int i = 0; i < N; ++i)
                    j->tree.nodes[(int64_t)(i + 1) * S + s].logp_old = buf[(int64_t)s * N + i];
    }
    free(buf);
    return st;
}

gv_status gv_grpo_dump_rollouts(gv_grpo_job *j, uint32_t iteration, const char *yaml,
                                const char *path) {
    if (!j->dump_v || !j->dump_mu)
        return GV_ERROR(GV_ERR_INVALID, "%s: rollouts dump without its buffers", path);
    GV_TRY(dump_gather(j));
    if (gv_dist_rank() != 0) return GV_OK; /* rank 0 alone writes */
    gv_step_args a[GV_SAMPLER_MAX_STEPS];
    int K = 0;
    for (int i = 0; i < j->N; ++i) { /* steps 0..K-1 up to the last SDE step (window: ODE before) */
        int sde = 0;
        GV_TRY(gv_grpo_step_coeffs(j, i, &a[i], &sde));
        if (sde) K = i + 1;
    }
    const int R = j->cfg->n_rewards;
    const int64_t S = j->S, D = j->D;
    int64_t n_small = S * K > K ? S * K : K;
    if (R > n_small) n_small = R;
    float *lat = malloc((size_t)S * (size_t)(j->N + 1) * (size_t)D * sizeof(float));
    float *buf = malloc((size_t)S * (size_t)(K ? K : 1) * (size_t)D * sizeof(float));
    float *small = malloc((size_t)(n_small + 1) * sizeof(float));
    int64_t *ibuf = malloc((size_t)(S * (R > 1 ? R : 1) + 1) * sizeof(int64_t));
    gv_status s = lat && buf && small && ibuf ? GV_OK
                                              : GV_ERROR(GV_ERR_OOM, "%s: rollouts dump staging", path);
    gv_ckpt_writer *w = NULL;
    if (s == GV_OK) s = gv_ckpt_writer_begin(path, &w);
    if (s == GV_OK) s = dump_write(j, w, iteration, K, a, lat, buf, small, ibuf);
    if (s == GV_OK && yaml) s = gv_ckpt_put_config(w, yaml);
    if (s == GV_OK) {
        s = gv_ckpt_writer_commit(w);
        w = NULL;
    }
    gv_ckpt_writer_abort(w);
    free(lat);
    free(buf);
    free(small);
    free(ibuf);
    return s;
}
