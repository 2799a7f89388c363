/* Reference kernels of the masked-diffusion sampler step (ALGORITHMS.md §10; ops.h masked_select,
 * masked_features): the per-sample loop the sampler (samplers/masked.c) ran on the host before it
 * became an op, unchanged in its arithmetic, so every sampled token, log-prob and commit is the
 * same bit for bit.
 *
 *   per masked position p of the step's block:
 *     l_v   = (l_null,v + w (l_cond,v - l_null,v)) / tau_s  (fp64; v != mask_id)
 *     token = inverse CDF of softmax(l) at u = uniform element 2p of the sample's address
 *     conf  = log p(token) + tau_r * (-log(-log u')),  u' = uniform element 2p+1
 *   commit the c = max(1, floor(r m' + 0.5)) most confident (all at the block's last step),
 *   ties to the lower position.
 *
 * Samples run one after another on one thread (T·V per sample is small; the sampler's cost is the
 * network). Knobs are not validated here: the sampler checks them on the host. Deliberately not
 * here: the sampler's loop over steps, CFG batching, the hook (samplers/masked.c); the device
 * version (kernels/shared/gv_masked_items.h, two passes with the same arithmetic). */
#include <math.h>

#include "cpu_backend.h"
#include "grove/arena.h"
#include "grove/rng.h"

static gv_status check_masked(const char *op, const gv_masked_args *a) {
    if (a->N < 1 || a->T < 1 || a->V < 2 || a->mask_id < 0 || a->mask_id >= a->V || a->blocks < 1 ||
        a->block < 0 || a->block >= a->blocks || a->step < 0)
        return GV_ERROR(GV_ERR_INVALID, "%s: bad geometry N=%d T=%d V=%d mask_id=%d blocks=%d "
                        "block=%d step=%d", op, a->N, a->T, a->V, (int)a->mask_id, a->blocks,
                        a->block, a->step);
    if (a->stats_stride < GV_MASKED_STATS)
        return GV_ERROR(GV_ERR_INVALID, "%s: stats_stride %d < %d", op, a->stats_stride,
                        (int)GV_MASKED_STATS);
    return GV_OK;
}

/* Sort candidates by confidence, highest first, ties to the lower position (insertion sort: the
   candidate lists are short). */
static void sort_candidates(int32_t *cand, int n, const double *conf) {
    for (int i = 1; i < n; ++i) {
        int32_t p = cand[i];
        int k = i - 1;
        while (k >= 0 && (conf[cand[k]] < conf[p] || (conf[cand[k]] == conf[p] && cand[k] > p))) {
            cand[k + 1] = cand[k];
            --k;
        }
        cand[k + 1] = p;
    }
}

/* Sample n of masked_select; tok, cand (T) int32 and logp, conf (T) double scratch. */
static void select_sample(int n, int32_t *tokens, int32_t *commit, float *logp_rec, float *stats,
                          int32_t *null_tokens, const float *logits, const float *logits_null,
                          const float *knobs, const gv_masked_args *a, int32_t *tok,
                          int32_t *cand, double *logp, double *conf) {
    const int T = a->T, V = a->V, B = a->blocks;
    int32_t *trow = tokens + (int64_t)n * T, *crow = commit + (int64_t)n * T;
    const float r = knobs[(int64_t)n * GV_MASKED_KNOBS + 0];
    const float tau_s = knobs[(int64_t)n * GV_MASKED_KNOBS + 1];
    const float tau_r = knobs[(int64_t)n * GV_MASKED_KNOBS + 2];
    const float w = knobs[(int64_t)n * GV_MASKED_KNOBS + 3];
    int m = 0;
    for (int p = 0; p < T; ++p) m += crow[p] != -1;
    /* the block: completion ranks [block·L, (block+1)·L), L = ceil(m / blocks) */
    const int L = (m + B - 1) / B, lo = a->block * L, hi = lo + L;
    const uint32_t ctr[3] = {a->ctr_hi[0], a->ctr_hi[1] + ((uint32_t)n << GV_RNG_PURPOSE_BITS),
                             a->ctr_hi[2]};
    int nc = 0, rank = 0, still = 0;
    double conf_sum = 0.0;
    for (int p = 0; p < T; ++p) {
        if (crow[p] == -1) continue; /* prompt */
        const int in_block = rank >= lo && rank < hi;
        ++rank;
        if (trow[p] != a->mask_id) continue; /* committed */
        ++still;
        if (!in_block) continue;
        const float *lc = logits + ((int64_t)n * T + p) * V;
        const float *ln = logits_null ? logits_null + ((int64_t)n * T + p) * V : NULL;
        /* l_v = (l_null + w (l_cond - l_null)) / τ_s; [MASK] excluded */
        double mx = -INFINITY;
        for (int v = 0; v < V; ++v) {
            if (v == a->mask_id) continue;
            double l = ln ? (double)ln[v] + (double)w * ((double)lc[v] - (double)ln[v]) : lc[v];
            l /= (double)tau_s;
            if (l > mx) mx = l;
        }
        double z = 0.0;
        for (int v = 0; v < V; ++v) {
            if (v == a->mask_id) continue;
            double l = ln ? (double)ln[v] + (double)w * ((double)lc[v] - (double)ln[v]) : lc[v];
            z += exp(l / (double)tau_s - mx);
        }
        const double lse = mx + log(z);
        const double u = gv_rng_uniform_at(a->key, ctr, 2 * (uint64_t)p);
        double cum = 0.0;
        int pick = -1, lastv = -1;
        double lpick = 0.0;
        for (int v = 0; v < V; ++v) {
            if (v == a->mask_id) continue;
            double l = ln ? (double)ln[v] + (double)w * ((double)lc[v] - (double)ln[v]) : lc[v];
            const double lp = l / (double)tau_s - lse;
            lastv = v;
            lpick = lp;
            cum += exp(lp);
            if (u < cum) {
                pick = v;
                break;
            }
        }
        if (pick < 0) pick = lastv; /* rounding: the cumulative sum fell short of u */
        const double g = -log(-log((double)gv_rng_uniform_at(a->key, ctr, 2 * (uint64_t)p + 1)));
        tok[p] = pick;
        logp[p] = lpick;
        conf[p] = lpick + (double)tau_r * g;
        conf_sum += exp(mx - lse); /* the max probability */
        cand[nc++] = p;
    }
    float *st = stats + (int64_t)n * a->stats_stride;
    st[GV_MASKED_STAT_MASKED_FRAC] = m ? (float)still / (float)m : 0.0f;
    st[GV_MASKED_STAT_MEAN_CONF] = nc ? (float)(conf_sum / nc) : 0.0f;
    int c = 0;
    if (nc) {
        c = a->last ? nc : (int)floor((double)r * nc + 0.5);
        if (c < 1) c = 1;
        if (c > nc) c = nc;
        sort_candidates(cand, nc, conf);
        for (int i = 0; i < c; ++i) {
            const int p = cand[i];
            trow[p] = tok[p];
            crow[p] = a->step;
            if (logp_rec) logp_rec[(int64_t)n * T + p] = (float)logp[p];
        }
    }
    st[GV_MASKED_STAT_COMMITS] = (float)c;
    if (null_tokens) /* the CFG null prompt: every prompt position masked */
        for (int p = 0; p < T; ++p)
            null_tokens[(int64_t)n * T + p] = crow[p] == -1 ? a->mask_id : trow[p];
}

gv_status gv_cpu_masked_select(gv_ctx *c, int32_t *tokens, int32_t *commit, float *logp,
                               float *stats, int32_t *null_tokens, const float *logits,
                               const float *logits_null, const float *knobs,
                               const gv_masked_args *a) {
    GV_TRY(check_masked("masked_select", a));
    const size_t mark = gv_arena_mark(&c->scratch);
    void *ints = NULL, *dbls = NULL;
    GV_TRY(gv_arena_alloc(&c->scratch, 2 * (size_t)a->T * sizeof(int32_t), &ints));
    GV_TRY(gv_arena_alloc(&c->scratch, 2 * (size_t)a->T * sizeof(double), &dbls));
    if (!ints || !dbls)
        return GV_ERROR(GV_ERR_INVALID, "masked_select: no scratch memory (context arena measuring)");
    int32_t *tok = ints, *cand = tok + a->T;
    double *lp = dbls, *conf = lp + a->T;
    for (int n = 0; n < a->N; ++n)
        select_sample(n, tokens, commit, logp, stats, null_tokens, logits, logits_null, knobs, a,
                      tok, cand, lp, conf);
    gv_arena_reset_to(&c->scratch, mark);
    return GV_OK;
}

gv_status gv_cpu_masked_features(gv_ctx *c, float *feat, const int32_t *tokens,
                                 const int32_t *commit, const float *logits,
                                 const gv_masked_args *a) {
    (void)c;
    GV_TRY(check_masked("masked_features", a));
    const int T = a->T, V = a->V, B = a->blocks;
    for (int n = 0; n < a->N; ++n) {
        const int32_t *trow = tokens + (int64_t)n * T, *crow = commit + (int64_t)n * T;
        int m = 0;
        for (int p = 0; p < T; ++p) m += crow[p] != -1;
        const int L = (m + B - 1) / B, lo = a->block * L, hi = lo + L;
        int rank = 0, still = 0, nc = 0;
        double sum = 0.0;
        for (int p = 0; p < T; ++p) {
            if (crow[p] == -1) continue;
            const int in_block = rank >= lo && rank < hi;
            ++rank;
            if (trow[p] != a->mask_id) continue;
            ++still;
            if (!in_block) continue;
            const float *l = logits + ((int64_t)n * T + p) * V;
            double mx = -INFINITY, z = 0.0;
            for (int v = 0; v < V; ++v)
                if (v != a->mask_id && l[v] > mx) mx = l[v];
            for (int v = 0; v < V; ++v)
                if (v != a->mask_id) z += exp((double)l[v] - mx);
            sum += 1.0 / z; /* the max probability at τ = 1 */
            ++nc;
        }
        feat[2 * (int64_t)n + 0] = m ? (float)still / (float)m : 0.0f;
        feat[2 * (int64_t)n + 1] = nc ? (float)(sum / nc) : 0.0f;
    }
    return GV_OK;
}
