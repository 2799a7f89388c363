/* DenseGRPO in `grove train` (grpo.h; ALGORITHMS.md §5; grove's definition, the paper has no
 * public code): the ODE completions of every chain's x_i, the step-gain credit, and the ψ(i)
 * calibration phase.
 *
 *   completions  for every needed i, the S chains' x_i (contiguous in the chain pool) go through
 *                Euler steps on gv_schedule_completion_sigmas (`all`: the remaining schedule,
 *                `n`: n steps on σ_i(1 − j/n)), one batched denoiser call per step and
 *                shard (the rollout's fixed micro-batch), then are scored like a rollout's
 *                x_N: R_i is the weighted reward sum, masked when a weighted component FAILED or is not finite.
 *                R_N is the rollout's own reward; under `all`, R_{N−1} = R_N (its completion IS
 *                the rollout's last step).
 *   credit       gv_credit_dense over the trained steps (the first T SDE steps) → j->credit.
 *   calibration  dense.rounds rounds before the first iteration of a new run: a rollout of the
 *                calibration batch, C = dense.calibration_prompts prompts (0, or more than
 *                the P of an iteration: P) x G chains, prompts (round·C + p) mod n_train, at RNG iteration
 *                2^32 − 1 − round (apart from every training iteration), completions of every
 *                x_i, gains, the §5 update (noise_calibration.h; its fixed point depends on the
 *                C·G samples, stored as psi_batch_samples); each round is a metrics record
 *                {"iteration": 0, "calibration": {round, samples, psi, up, down, unchanged, clamped, nfe}}.
 *                ψ is then frozen; the checkpoint's /state psi carries it (grpo_loop.c).
 * Shards (grpo.h, data parallel): each of this rank's shards completes its own chains (one
 * batched denoiser call per Euler step over the shard's rows) and scores them through
 * gv_grpo_score_shards (rollout.c), which gathers every completion's scores to every rank
 * bitwise; so R, the gains, the credit and the calibration counts (over the whole batch) are
 * computed alike on every rank, and the completion NFE is summed over the ranks.
 * Deliberately not here: the rule itself (noise_calibration.c), the gains (credit.c). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "grove/algorithm_config.h"
#include "grove/dist.h"
#include "grove/grpo.h"
#include "grove/log.h"

/* The weighted reward sum of sample s (scores, status: (S, n_rewards)), masked (NaN, valid 0) when
   a weighted component FAILED or is not finite, into R[s·(N+1) + i] and Rv likewise. */
static void weighted_reward(const gv_grpo_job *j, const float *scores, const uint8_t *status,
                            int s, int i) {
    const int R = j->cfg->n_rewards, N = j->N;
    double r = 0.0;
    int ok = 1;
    for (int q = 0; q < R; ++q) {
        if (j->weights[q] == 0.0) continue;
        const float v = scores[(int64_t)s * R + q];
        if (status[(int64_t)s * R + q] != GV_REWARD_ITEM_OK || !isfinite(v)) ok = 0;
        else r += j->weights[q] * v;
    }
    j->dense_R[(int64_t)s * (N + 1) + i] = ok ? (float)r : NAN;
    j->dense_Rv[(int64_t)s * (N + 1) + i] = (uint8_t)ok;
}

/* R (S, N+1), Rv likewise: the completions of the steps with need[i] (i < N), and R_N. Each of
   this rank's shards completes its own chains (one batched denoiser call per Euler step over the
   shard's rows, as the rollout's step_frontier); the scores are gathered to every rank by
   gv_grpo_score_shards (rollout.c), so every rank holds the whole R. */
static gv_status completions(gv_grpo_job *j, const uint8_t *need, int64_t *nfe) {
    const gv_run_config *cfg = j->cfg;
    const int S = j->S, N = j->N;
    const int n_steps = gv_run_config_dense_completion(cfg) ? gv_run_config_dense_completion(cfg)
                                                            : GV_DENSE_COMPLETION_ALL;
    const int64_t D = j->D;
    const size_t img = (size_t)D * sizeof(float);
    for (int64_t k = 0; k < (int64_t)S * (N + 1); ++k) j->dense_R[k] = NAN, j->dense_Rv[k] = 0;
    for (int s = 0; s < S; ++s) /* R_N: the rollout's own reward (j->scores, gathered) */
        weighted_reward(j, j->scores, j->status, s, N);
    int64_t rows = j->den.nfe;
    for (int i = 0; i < N; ++i) {
        if (!need[i]) continue;
        if (i == N - 1 && n_steps == GV_DENSE_COMPLETION_ALL) { /* its completion is x_N */
            for (int s = 0; s < S; ++s) {
                j->dense_R[(int64_t)s * (N + 1) + i] = j->dense_R[(int64_t)s * (N + 1) + N];
                j->dense_Rv[(int64_t)s * (N + 1) + i] = j->dense_Rv[(int64_t)s * (N + 1) + N];
            }
            continue;
        }
        float grid[GV_SAMPLER_MAX_STEPS + 1];
        int steps = 0;
        GV_TRY(gv_schedule_completion_sigmas(j->sigmas, N, i, n_steps, grid, &steps));
        for (int sh = j->shard_lo; sh < j->shard_hi; ++sh) {
            int lo, hi;
            gv_grpo_shard_roots(j, sh, &lo, &hi);
            if (hi == lo) continue; /* a calibration batch of fewer prompts than shards */
            float *x = j->dense_x + (int64_t)lo * D;
            /* chain node of x_i of sample s: pool index i·S + s, latents contiguous */
            GV_TRY(j->be->copy(x, j->latents + j->tree.nodes[(int64_t)i * S + lo].latent,
                               (size_t)(hi - lo) * img));
            GV_TRY(gv_denoiser_bind(&j->den, hi - lo, j->sample_ids + (int64_t)lo * j->L));
            for (int k = 0; k < steps; ++k) { /* ALGORITHMS.md §2: Euler x' = x + Δ·v */
                GV_TRY(gv_denoiser_call(&j->den, j->ctx, x, grid[k], j->v + (int64_t)lo * D));
                gv_step_args a = {.N = hi - lo, .D = D, .cx = 1.0f, .delta = grid[k + 1] - grid[k]};
                a.cv = a.delta;
                GV_TRY(j->be->ops->euler_step(j->ctx, x, x, j->v + (int64_t)lo * D, &a));
            }
        }
        /* p = clamp((x + 1)/2, 0, 1) and the rewards, per shard; every rank gets all scores */
        GV_TRY(gv_grpo_score_shards(j, i * S, S, j->dense_x, j->sample_labels,
                                    (const char *const *)j->sample_text, j->sample_prompt,
                                    j->dense_scores, j->dense_status, NULL));
        for (int s = 0; s < S; ++s) weighted_reward(j, j->dense_scores, j->dense_status, s, i);
    }
    rows = j->den.nfe - rows;
    GV_TRY(gv_dist_sum_i64("completion NFE", &rows, 1)); /* this rank's shards' rows: the job's */
    *nfe += rows;
    return GV_OK;
}

gv_status gv_grpo_dense_credit(gv_grpo_job *j, int64_t *nfe) {
    const int N = j->N;
    uint8_t train[GV_SAMPLER_MAX_STEPS] = {0}, need[GV_SAMPLER_MAX_STEPS + 1] = {0};
    for (int k = 0; k < j->T && k < j->step_plan.n_sde; ++k) { /* the first T SDE steps (§3) */
        const int i = j->step_plan.sde_list[k];
        train[i] = 1;
        need[i] = need[i + 1] = 1; /* ΔR_i = R_{i+1} − R_i */
    }
    need[N] = 0; /* R_N is the rollout's */
    GV_TRY(completions(j, need, nfe));
    float step_std[GV_SAMPLER_MAX_STEPS] = {0};
    for (int i = 0; i < N - 1; ++i) {
        gv_step_args a;
        if (gv_grpo_sde_coeffs(j, i, 1.0f, &a) == GV_OK) step_std[i] = a.std;
        else gv_clear_error();
    }
    gv_credit_opts o = gv_run_config_credit_opts(j->cfg);
    o.step_std = step_std;
    o.train_step = train;
    return gv_credit_dense(&j->tree, j->dense_R, j->dense_Rv, &o, &j->credit_work, &j->credit,
                           &j->credit_stats);
}

gv_status gv_grpo_calibrate(gv_grpo_job *j, gv_metrics *m) {
    /* the calibration batch: its first C prompt slots of the pool (rollout and completions read
       j->P and j->S, restored below; every buffer is sized for the full P) */
    const int P_full = j->P;
    const int N = j->N, P = gv_run_config_calibration_prompts(j->cfg), S = P * j->G;
    int64_t *slots = malloc((size_t)P * sizeof(int64_t));
    float *gains = malloc((size_t)S * (size_t)N * sizeof(float));
    uint8_t *gain_valid = malloc((size_t)S * (size_t)N);
    gv_status s = slots && gains && gain_valid ? GV_OK
                                               : GV_ERROR(GV_ERR_OOM, "dense calibration: buffers");
    gv_reward_moments per_reward[64];
    uint8_t need[GV_SAMPLER_MAX_STEPS + 1] = {0};
    for (int i = 0; i < N - 1; ++i) need[i] = 1; /* every stochastic step's gain: R_0..R_{N-1} */
    need[N - 1] = 1;
    j->calibrating = 1;
    gv_grpo_set_batch(j, P); /* its shards: slots [P·s/shards, P·(s+1)/shards) of the batch */
    while (s == GV_OK && gv_psi_calibration_pending(&j->cal)) {
        const int round = j->cal.round;
        for (int p = 0; p < P; ++p) slots[p] = ((int64_t)round * P + p) % j->n_train;
        const uint32_t it = UINT32_MAX - (uint32_t)round; /* apart from training iterations */
        gv_grpo_rollout_stats rs = {.per_reward = per_reward};
        int64_t nfe = 0;
        s = gv_grpo_rollout(j, it, slots, &rs);
        if (s == GV_OK) s = completions(j, need, &nfe);
        if (s != GV_OK) break;
        gv_dense_gains(j->dense_R, j->dense_Rv, S, N, gains, gain_valid);
        gv_psi_round log;
        s = gv_psi_calibration_update(&j->cal, gains, gain_valid, S, N, &log);
        if (s != GV_OK || !m) continue;
        int up = 0, down = 0, skipped = 0;
        for (int i = 0; i < N - 1; ++i) up += log.move[i] > 0, down += log.move[i] < 0,
                                        skipped += log.move[i] == 0;
        gv_metrics_begin(m); /* ALGORITHMS.md §5: log psi per round */
        gv_metrics_i64(m, "iteration", 0);
        gv_metrics_object(m, "calibration");
        gv_metrics_i64(m, "round", j->cal.round);
        gv_metrics_i64(m, "samples", S);
        gv_metrics_f32s(m, "psi", j->cal.psi, N - 1);
        gv_metrics_i64(m, "up", up);
        gv_metrics_i64(m, "down", down);
        gv_metrics_i64(m, "unchanged", skipped);
        gv_metrics_i64(m, "clamped", log.clamped);
        gv_metrics_i64(m, "nfe", rs.nfe + nfe);
        gv_metrics_end_object(m);
        s = gv_metrics_end(m);
    }
    j->calibrating = 0;
    gv_grpo_set_batch(j, P_full);
    free(slots);
    free(gains);
    free(gain_valid);
    return s;
}
