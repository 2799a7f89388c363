/* Per-item arithmetic of the masked-diffusion sampler ops (masked_select, masked_features; ops.h,
 * ALGORITHMS.md §10), shared by host and device (GV_HD) like gv_items.h.
 *
 * masked_select runs in two passes so the GPU has work per position, not per sample:
 *   draw    item = (sample n, position p): for a masked position of the step's block, the token
 *           drawn at temperature tau_s (inverse CDF of Philox uniform element 2p), its log-prob,
 *           the Gumbel-perturbed confidence (uniform element 2p+1, scaled by tau_r) and the max
 *           probability, into per-position scratch;
 *   commit  item = sample n: walks its positions in order (candidates, the fp64 sum of max
 *           probabilities), sorts the candidates by confidence (ties to the lower position) and
 *           commits the top c; then the CFG null rows.
 * Both mirror kernels/cpu/masked_kernels.c (the specification, which does the same in one loop
 * per sample) operation for operation: the same fp64 softmax, the same comparisons, the same
 * summation order, so the host build of these items equals the CPU reference bit for bit
 * (tests/ops/test_hd_backend.c). On a GPU, exp/log in fp64 are CUDA's (within an ulp of glibc's),
 * so a near-tie in the sort or the inverse CDF may resolve differently: parity there is stated per
 * op in tests/gpu, not bitwise.
 * Deliberately not here: launches, scratch, argument checks (gv_own_ops.h); knob validation (the
 * sampler, samplers/masked.c, checks knobs on the host before uploading them). */
#ifndef GROVE_GV_MASKED_ITEMS_H
#define GROVE_GV_MASKED_ITEMS_H

#include <math.h>
#include <stdint.h>

#include "grove/ops.h"
#include "grove/philox.h"
#include "grove/rng.h"

/* scratch of the draw pass, per position: three doubles (log-prob, confidence, max probability) */
enum { GV_HD_MASKED_LOGP = 0, GV_HD_MASKED_CONF, GV_HD_MASKED_MAXP, GV_HD_MASKED_DRAW };

/* The completion count m of sample n and the rank range [*lo, *hi) of the step's block. */
GV_HD int gv_hd_masked_block(const int32_t *commit_row, const gv_masked_args *a, int *lo, int *hi) {
    int m = 0;
    for (int p = 0; p < a->T; ++p) m += commit_row[p] != -1;
    const int L = (m + a->blocks - 1) / a->blocks;
    *lo = a->block * L;
    *hi = *lo + L;
    return m;
}

/* The sampler's logit of class v at temperature 1 (CFG-combined when ln is given), fp64. */
GV_HD double gv_hd_masked_logit(const float *lc, const float *ln, double w, int v) {
    return ln ? (double)ln[v] + w * ((double)lc[v] - (double)ln[v]) : (double)lc[v];
}

/* Draw pass, item np = n * T + p. tok (N,T) and dr (N,T,GV_HD_MASKED_DRAW) are written only for
   the block's masked positions. */
GV_HD void gv_item_masked_draw(int64_t np, int32_t *tok, double *dr, const int32_t *tokens,
                               const int32_t *commit, const float *logits,
                               const float *logits_null, const float *knobs, gv_masked_args a) {
    const int64_t n = np / a.T;
    const int p = (int)(np % a.T);
    const int32_t *crow = commit + n * a.T;
    if (crow[p] == -1 || tokens[np] != a.mask_id) return; /* prompt, or committed */
    int rank = 0, lo = 0, hi = 0;
    gv_hd_masked_block(crow, &a, &lo, &hi);
    for (int q = 0; q < p; ++q) rank += crow[q] != -1;
    if (rank < lo || rank >= hi) return; /* another block */
    const float *kn = knobs + n * GV_MASKED_KNOBS;
    const double tau_s = (double)kn[1], tau_r = (double)kn[2], w = (double)kn[3];
    const float *lc = logits + np * a.V;
    const float *ln = logits_null ? logits_null + np * a.V : 0;
    double mx = -INFINITY;
    for (int v = 0; v < a.V; ++v) {
        if (v == a.mask_id) continue;
        double l = gv_hd_masked_logit(lc, ln, w, v);
        l /= tau_s;
        if (l > mx) mx = l;
    }
    double z = 0.0;
    for (int v = 0; v < a.V; ++v) {
        if (v == a.mask_id) continue;
        z += exp(gv_hd_masked_logit(lc, ln, w, v) / tau_s - mx);
    }
    const double lse = mx + log(z);
    uint32_t ctr[3] = {a.ctr_hi[0], a.ctr_hi[1] + ((uint32_t)n << GV_RNG_PURPOSE_BITS), a.ctr_hi[2]};
    const double u = gv_philox_uniform_at(a.key, ctr, 2 * (uint64_t)p);
    double cum = 0.0, lpick = 0.0;
    int pick = -1, lastv = -1;
    for (int v = 0; v < a.V; ++v) {
        if (v == a.mask_id) continue;
        const double lp = gv_hd_masked_logit(lc, ln, w, v) / tau_s - lse;
        lastv = v;
        lpick = lp;
        cum += exp(lp);
        if (u < cum) {
            pick = v;
            break;
        }
    }
    if (pick < 0) pick = lastv; /* rounding: the cumulative sum fell short of u */
    const double g = -log(-log((double)gv_philox_uniform_at(a.key, ctr, 2 * (uint64_t)p + 1)));
    tok[np] = pick;
    dr[np * GV_HD_MASKED_DRAW + GV_HD_MASKED_LOGP] = lpick;
    dr[np * GV_HD_MASKED_DRAW + GV_HD_MASKED_CONF] = lpick + tau_r * g;
    dr[np * GV_HD_MASKED_DRAW + GV_HD_MASKED_MAXP] = exp(mx - lse);
}

/* Commit pass, item = sample n; cand (N,T) is scratch. */
GV_HD void gv_item_masked_commit(int64_t n, int32_t *cand, int32_t *tokens, int32_t *commit,
                                 float *logp, float *stats, int32_t *null_tokens,
                                 const int32_t *tok, const double *dr, const float *knobs,
                                 gv_masked_args a) {
    const int T = a.T;
    int32_t *trow = tokens + n * T, *crow = commit + n * T, *cn = cand + n * T;
    const double *drow = dr + n * T * GV_HD_MASKED_DRAW;
    int lo = 0, hi = 0;
    const int m = gv_hd_masked_block(crow, &a, &lo, &hi);
    int nc = 0, rank = 0, still = 0;
    double conf_sum = 0.0;
    for (int p = 0; p < T; ++p) {
        if (crow[p] == -1) continue;
        const int in_block = rank >= lo && rank < hi;
        ++rank;
        if (trow[p] != a.mask_id) continue;
        ++still;
        if (!in_block) continue;
        conf_sum += drow[p * GV_HD_MASKED_DRAW + GV_HD_MASKED_MAXP];
        cn[nc++] = p;
    }
    float *st = stats + n * a.stats_stride;
    st[GV_MASKED_STAT_MASKED_FRAC] = m ? (float)still / (float)m : 0.0f;
    st[GV_MASKED_STAT_MEAN_CONF] = nc ? (float)(conf_sum / nc) : 0.0f;
    int c = 0;
    if (nc) {
        const float r = knobs[n * GV_MASKED_KNOBS + 0];
        c = a.last ? nc : (int)floor((double)r * nc + 0.5);
        if (c < 1) c = 1;
        if (c > nc) c = nc;
        /* insertion sort, highest confidence first, ties to the lower position */
        for (int i = 1; i < nc; ++i) {
            const int32_t p = cn[i];
            const double cp = drow[p * GV_HD_MASKED_DRAW + GV_HD_MASKED_CONF];
            int k = i - 1;
            while (k >= 0) {
                const double ck = drow[cn[k] * GV_HD_MASKED_DRAW + GV_HD_MASKED_CONF];
                if (!(ck < cp || (ck == cp && cn[k] > p))) break;
                cn[k + 1] = cn[k];
                --k;
            }
            cn[k + 1] = p;
        }
        for (int i = 0; i < c; ++i) {
            const int p = cn[i];
            trow[p] = tok[n * T + p];
            crow[p] = a.step;
            if (logp) logp[n * T + p] = (float)drow[p * GV_HD_MASKED_DRAW + GV_HD_MASKED_LOGP];
        }
    }
    st[GV_MASKED_STAT_COMMITS] = (float)c;
    if (null_tokens)
        for (int p = 0; p < T; ++p) null_tokens[n * T + p] = crow[p] == -1 ? a.mask_id : trow[p];
}

/* masked_features, item = sample n. */
GV_HD void gv_item_masked_features(int64_t n, float *feat, const int32_t *tokens,
                                   const int32_t *commit, const float *logits, gv_masked_args a) {
    const int T = a.T, V = a.V;
    const int32_t *trow = tokens + n * T, *crow = commit + n * T;
    int lo = 0, hi = 0;
    const int m = gv_hd_masked_block(crow, &a, &lo, &hi);
    int rank = 0, still = 0, nc = 0;
    double sum = 0.0;
    for (int p = 0; p < T; ++p) {
        if (crow[p] == -1) continue;
        const int in_block = rank >= lo && rank < hi;
        ++rank;
        if (trow[p] != a.mask_id) continue;
        ++still;
        if (!in_block) continue;
        const float *l = logits + (n * T + p) * V;
        double mx = -INFINITY, z = 0.0;
        for (int v = 0; v < V; ++v)
            if (v != a.mask_id && l[v] > mx) mx = l[v];
        for (int v = 0; v < V; ++v)
            if (v != a.mask_id) z += exp((double)l[v] - mx);
        sum += 1.0 / z;
        ++nc;
    }
    feat[n * 2 + 0] = m ? (float)still / (float)m : 0.0f;
    feat[n * 2 + 1] = nc ? (float)(sum / nc) : 0.0f;
}

#endif
