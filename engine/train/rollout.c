/* Flow-GRPO rollouts over the node pool (grpo.h; ALGORITHMS.md §1–3; DESIGN.md §3, §4).
 *
 * One iteration: G chains per prompt slot in the pool (samplers/tree.h), x_T from Philox at
 * (iteration, slot, node id, LATENT) — with group.same_latent every root of a group reads root 0's
 * address —, then N steps of the shifted grid, each ONE batched denoiser call over the whole
 * frontier (denoiser.h: fixed micro-batch, padded tail, CFG rows in the same forward) followed by
 * the schedule's step: gaussian_step_forward with the step noise of (iteration, slot, node id,
 * step) for the SDE steps 0..N-2, euler_step for the last. Every latent x_step stays in the pool's
 * backend buffer (training recomputes from it); logp_old goes to the host node. The final x_N is
 * copied to the host once, mapped to p = clamp((x + 1)/2, 0, 1) and scored by the rewards; the
 * advantages follow advantage.h. Deliberately not here: the training pass (grpo_train.c) and the
 * run directory (grpo_loop.c). Device-agnostic: tensors only through ops and explicit copies. */
#include <string.h>

#include "grove/advantage.h"
#include "grove/grpo.h"
#include "grove/rng.h"

gv_status gv_grpo_score(gv_grpo_job *j, gv_reward *r, int count, int n, const float *p_host,
                        const int32_t *labels, float *scores, uint8_t *status) {
    const gv_unet_config *uc = &j->model.unet.cfg;
    gv_reward_images b = {.n = n, .channels = uc->in_channels, .height = uc->height,
                          .width = uc->width, .pixels = p_host, .labels = labels};
    for (int k = 0; k < count; ++k) {
        GV_TRY(gv_reward_score(&r[k], j->ctx, &b, j->scores_tmp, j->status_tmp));
        for (int i = 0; i < n; ++i) {
            scores[(int64_t)i * count + k] = j->scores_tmp[i];
            status[(int64_t)i * count + k] = j->status_tmp[i];
        }
    }
    return GV_OK;
}

/* x_T of every root (DESIGN.md §3, RNG). */
static gv_status fill_roots(gv_grpo_job *j, uint32_t iteration) {
    const gv_ops *ops = j->be->ops;
    for (int32_t s = 0; s < j->tree.n_roots; ++s) {
        gv_rng_addr addr;
        GV_TRY(gv_tree_rng_addr(&j->tree, s, iteration, 0, GV_RNG_PURPOSE_LATENT, &addr));
        if (j->cfg->group.same_latent) addr.node = 0; /* root index 0's id is 0 */
        gv_philox_args pa;
        GV_TRY(gv_rng_args(j->seed, GV_RNG_STREAM_SAMPLER, &addr, 0, j->D, &pa));
        GV_TRY(ops->philox_normal_fill(j->ctx, j->latents + j->tree.nodes[s].latent, &pa));
    }
    return GV_OK;
}

/* One sampler step i over the frontier [begin, begin + n): the children were just appended. */
static gv_status step_frontier(gv_grpo_job *j, uint32_t iteration, int i, int32_t begin, int32_t n) {
    const gv_ops *ops = j->be->ops;
    gv_step_args a;
    int is_sde = 0;
    GV_TRY(gv_step_coeffs(&j->noise, j->sigmas, j->N, i, &a, &is_sde));
    a.N = n;
    a.D = j->D;
    float *x = j->latents + j->tree.nodes[begin].latent;
    GV_TRY(gv_denoiser_call(&j->den, j->ctx, x, j->sigmas[i], j->v));
    GV_TRY(gv_tree_expand(&j->tree, 1, is_sde));
    const int32_t child0 = j->tree.count - n;
    float *x_next = j->latents + j->tree.nodes[child0].latent;
    if (!is_sde) /* ALGORITHMS.md §2: the ODE fast path x' = x + Δ·v (always the last step) */
        return ops->euler_step(j->ctx, x_next, x, j->v, &a);
    for (int32_t k = 0; k < n; ++k) {
        gv_rng_addr addr;
        gv_philox_args pa;
        GV_TRY(gv_tree_rng_addr(&j->tree, child0 + k, iteration, (uint32_t)i,
                                GV_RNG_PURPOSE_STEP_NOISE, &addr));
        GV_TRY(gv_rng_args(j->seed, GV_RNG_STREAM_SAMPLER, &addr, 0, j->D, &pa));
        GV_TRY(ops->philox_normal_fill(j->ctx, j->eps + (int64_t)k * j->D, &pa));
    }
    /* ALGORITHMS.md §2: x' = μ + std·ε with its per-element-mean log-prob (logp_old) */
    GV_TRY(ops->gaussian_step_forward(j->ctx, x_next, j->logp, x, j->v, j->eps, &a));
    GV_TRY(j->be->copy_to_host(j->logp_host, j->logp, (size_t)n * sizeof(float)));
    for (int32_t k = 0; k < n; ++k) j->tree.nodes[child0 + k].logp_old = j->logp_host[k];
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
        }
    gv_tree_reset(&j->tree);
    GV_TRY(gv_tree_add_roots(&j->tree, j->P, G));
    GV_TRY(fill_roots(j, iteration));
    GV_TRY(gv_denoiser_bind(&j->den, j->S, j->sample_ids));
    const int64_t nfe0 = j->den.nfe;
    for (int i = 0; i < j->N; ++i) {
        int32_t begin, n;
        gv_tree_frontier(&j->tree, &begin, &n);
        GV_TRY(step_frontier(j, iteration, i, begin, n));
    }
    out->nfe = j->den.nfe - nfe0;
    /* ALGORITHMS.md §1: p = clamp((x_N + 1)/2, 0, 1) on the host copy */
    int32_t begin, n;
    gv_tree_frontier(&j->tree, &begin, &n);
    const int64_t total = (int64_t)n * j->D;
    GV_TRY(j->be->copy_to_host(j->p_host, j->latents + j->tree.nodes[begin].latent,
                               (size_t)total * sizeof(float)));
    for (int64_t e = 0; e < total; ++e) {
        float p = (j->p_host[e] + 1.0f) * 0.5f;
        j->p_host[e] = p < 0.0f ? 0.0f : (p > 1.0f ? 1.0f : p);
    }
    const gv_run_config *cfg = j->cfg;
    GV_TRY(gv_grpo_score(j, j->rewards, cfg->n_rewards, j->S, j->p_host, j->sample_labels,
                         j->scores, j->status));
    /* ALGORITHMS.md §3, Reward and Advantage */
    gv_advantage_opts ao = {.mode = cfg->rewards_mode, .global_std = cfg->train.global_std,
                            .std_eps = 1e-4, .adv_clip = cfg->train.adv_clip};
    gv_advantage_input in = {.n_samples = j->S, .n_rewards = cfg->n_rewards, .rewards = j->scores,
                             .status = j->status, .weights = j->weights,
                             .prompt = j->sample_prompt};
    return gv_advantage_compute(&in, &ao, j->advantage, j->valid, out->per_reward, &out->adv);
}
