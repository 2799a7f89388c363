/* The data parallel pieces of the masked-diffusion trainer (grove/mdm_train.h, dist.h;
 * engine/train/mdm_job.h): scoring this rank's shards (per-sample metadata for plugins) and
 * gathering rewards, statuses, solved flags and batch outcomes bitwise (failed_batches counted
 * from them, and logged); minibatches ordered by shard; per-shard forward / objective /
 * backward into the shard's gradient buffer with the statistics gathered and combined in shard
 * order; the φ step with the acted units of every shard. With one shard in one process each piece
 * is the plain single-process computation, bit for bit. Deliberately not here: the loop, the
 * optimizer steps' order (mdm_train.c), the collectives themselves (dist.c). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "grove/dist.h"
#include "grove/sudoku.h"
#include "mdm_job.h"

/* The rewards of this rank's shards, one token batch per shard (prompt = the starting canvas,
   reference = the solution, texts for plugins), a failed plugin batch masked; then every sample's
   scores, statuses and solved flags and every batch outcome gathered bitwise, and the
   reward_failures streak replayed in shard order on every rank (rank 0 notes masked batches). */
gv_status gv_mdm_score_rollout(gv_mdm_job *j, uint32_t iteration) {
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
        snprintf(j->meta_text + (size_t)n * GV_MDM_META_LEN, GV_MDM_META_LEN,
                 "{\"iteration\": %u, \"seed\": %u, \"slot\": %d, \"member\": %d}", iteration,
                 j->seed, n / j->G, n % j->G);
    }
    for (int sh = j->shard_lo; sh < j->shard_hi; ++sh) {
        const int n0 = j->shard_first[sh], n1 = j->shard_first[sh + 1];
        const gv_reward_images b = {.n = n1 - n0, .seq_len = T, .tokens = j->tokens + (int64_t)n0 * T,
                                    .prompt = j->canvas + (int64_t)n0 * T,
                                    .reference = j->solution + (int64_t)n0 * T, .mask_id = j->mask_id,
                                    .texts = j->texts + n0, .prompts = j->puzzles + n0,
                                    .groups = j->group + n0, .metadata = j->meta + n0};
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
    for (int sh = 0; sh < j->shards; ++sh) /* the masked batches of every rank, from the gather */
        for (int k = 0; k < R; ++k) j->failed_batches[k] += j->outcomes[(int64_t)sh * R + k].outcome == 2;
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

/* The rows [*a, *c) of minibatch b of epoch e (n rows, ordered by shard) that shard sh holds. */
void gv_mdm_shard_rows(const gv_mdm_job *j, int e, int b, int n, int sh, int *a, int *c) {
    const int32_t *ord = j->order + (int64_t)e * j->N + (int64_t)b * j->mb;
    int i = 0;
    while (i < n && j->seq_shard[ord[i]] < sh) ++i;
    *a = i;
    while (i < n && j->seq_shard[ord[i]] == sh) ++i;
    *c = i;
}

/* Order each minibatch of epoch e by shard, stably (a no-op with one shard): shard s's rows of a
   minibatch are then one contiguous block, in shuffled order, on every rank alike. */
void gv_mdm_order_by_shard(gv_mdm_job *j, int e) {
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

/* This rank's shards of minibatch b of epoch e (n rows, gathered; token weights in mb_w): per
   shard the training forward, the objective and the backward into zeroed gradients, kept in the
   shard's buffer (one shard in all: params.grads itself). */
gv_status gv_mdm_minibatch_parts(gv_mdm_job *j, int e, int b, int n, gv_mdm_shard_part *parts) {
    const gv_mdm_train_config *cfg = j->cfg;
    gv_params *ps = &j->model.params;
    gv_mdm_loss_args la = {.clip_eps = (float)cfg->algorithm.clip_range,
                           .beta = (float)cfg->algorithm.beta};
    const int64_t T = j->T, VT = (int64_t)j->views * j->T, at = (int64_t)e * j->N + (int64_t)b * j->mb;
    for (int sh = j->shard_lo; sh < j->shard_hi; ++sh) {
        gv_mdm_shard_part *pt = &parts[sh];
        memset(pt, 0, sizeof *pt);
        int a, c;
        gv_mdm_shard_rows(j, e, b, n, sh, &a, &c);
        GV_TRY(gv_params_zero_grads(ps));
        if (c > a) {
            const float *old = j->old + (at + a) * T;
            const float *ref = j->have_ref ? j->refl + (at + a) * T : NULL;
            gv_mdm_order ob;
            GV_TRY(gv_mdm_policy_logp(&j->pol, ps->values, c - a, j->mb_ids + a * VT, j->mb_tok + a * T,
                                      j->mb_coef + a * VT, gv_mdm_mb_order(j, a, &ob),
                                      j->mb_ell + a * T));
            float loss;
            int units = 0;
            la.token_adv = j->mb_cell_adv ? j->mb_cell_adv + a * T : NULL;
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
gv_mdm_shard_part gv_mdm_combine_parts(const gv_mdm_job *j, const gv_mdm_shard_part *parts) {
    gv_mdm_shard_part t = parts[0];
    for (int sh = 1; sh < j->shards; ++sh) {
        const gv_mdm_shard_part *p = &parts[sh];
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

/* One φ step of a Co-GRPO φ phase (θ frozen): per shard of this rank the clipped objective over
   its samples, normalized by the acted units of ALL shards (their counts gathered), into zeroed
   gradients; summed in shard order; one AdamW step. One shard: gv_schedule_update exactly. */
gv_status gv_mdm_phi_step(gv_mdm_job *j, double *loss, double *ratio) {
    gv_schedule *p = &j->sched;
    gv_params *phi = &p->phi;
    gv_mdm_shard_part *parts = j->shard_stats;
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


/* Per plugin reward of the iteration record, as the image trainer logs it (grpo_loop.c):
   "reward": {"<name>": {"failed_batches": n}} — the masked batches of all shards so far (the same
   count on every rank and in one process); a repeated name gets _2, _3, ... Nothing without a
   plugin reward (the built-in sudoku never fails a batch). */
void gv_mdm_log_failed_batches(gv_metrics *m, const gv_mdm_job *j) {
    int plugins = 0;
    for (int k = 0; k < j->R; ++k) plugins += j->rewards[k].plugin != NULL;
    if (!plugins) return;
    gv_metrics_object(m, "reward");
    for (int k = 0; k < j->R; ++k) {
        if (!j->rewards[k].plugin) continue;
        int same = 0;
        for (int i = 0; i < k; ++i) same += strcmp(j->rewards[i].name, j->rewards[k].name) == 0;
        char key[96];
        if (same) snprintf(key, sizeof key, "%s_%d", j->rewards[k].name, same + 1);
        else snprintf(key, sizeof key, "%s", j->rewards[k].name);
        gv_metrics_object(m, key);
        gv_metrics_i64(m, "failed_batches", j->failed_batches[k]);
        gv_metrics_end_object(m);
    }
    gv_metrics_end_object(m);
}
