/* The masked-diffusion sampler (masked.h, ALGORITHMS.md §10): canvas state, blocks, per-step
 * knobs, the categorical draw at temperature τ_s, Gumbel-perturbed confidence at τ_r, the top-c
 * commit and the record. All arithmetic on probabilities is fp64. Not here: the network (the
 * callback), CFG batching beyond building the null rows, any trainer logic. */
#include "masked.h"

#include <math.h>
#include <string.h>

const char *const gv_knob_names[GV_KNOB_COUNT] = {"r", "tau_s", "tau_r", "w"};

/* ALGORITHMS.md §10, hand-made defaults at block step j of s */
float gv_masked_default_knob(int knob, int j, int s) {
    switch (knob) {
    case GV_KNOB_R: return 1.0f / (float)(s - j);
    case GV_KNOB_TAU_S: return 1.0f;
    case GV_KNOB_TAU_R: return 1.0f - (float)j / (float)s;
    default: return 1.0f; /* w */
    }
}

#define STATE_PROMPT (-1)
#define STATE_MASKED (-2)

/* scratch layout: logp, conf (T each) doubles, logits (rows·T·V floats), tokens2 (rows·T),
   state (N·T), cand (T), tok (T), completion counts (N) ints; the step's knobs (N·GV_KNOB_COUNT)
   and the hook's features (2·N) floats */
size_t gv_masked_scratch_bytes(const gv_masked_config *c, int with_cfg) {
    const size_t rows = (size_t)c->N * (with_cfg ? 2 : 1), T = (size_t)c->T;
    return rows * T * (size_t)c->V * sizeof(float) + rows * T * sizeof(int32_t) +
           (size_t)c->N * T * sizeof(int32_t) + 2 * T * sizeof(int32_t) + 2 * T * sizeof(double) +
           (size_t)c->N * sizeof(int32_t) + (size_t)c->N * (GV_KNOB_COUNT + 2) * sizeof(float);
}

static float knob_at(const gv_masked_knobs *k, int knob, int n, int step, int steps, int j, int s) {
    if (k && k->v[knob]) return k->v[knob][(int64_t)n * steps + step];
    return gv_masked_default_knob(knob, j, s);
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

/* The hook's pooled features of sample n at the start of a step: the fraction of its completion
   positions still masked and the mean max-probability at τ = 1 (conditional logits, [MASK] excluded)
   over the block's masked positions (0 when none). */
static void step_features(const gv_masked_config *c, const int32_t *state,
                          int m, int n, int block, const float *logits, float *frac, float *conf) {
    const int T = c->T, V = c->V, B = c->blocks;
    const int L = (m + B - 1) / B, lo = block * L, hi = lo + L;
    int rank = 0, still = 0, nc = 0;
    double sum = 0.0;
    for (int p = 0; p < T; ++p) {
        const int32_t st = state[(int64_t)n * T + p];
        if (st == STATE_PROMPT) continue;
        const int in_block = rank >= lo && rank < hi;
        ++rank;
        if (st != STATE_MASKED) continue;
        ++still;
        if (!in_block) continue;
        const float *l = logits + ((int64_t)n * T + p) * V;
        double mx = -INFINITY, z = 0.0;
        for (int v = 0; v < V; ++v)
            if (v != c->mask_id && l[v] > mx) mx = l[v];
        for (int v = 0; v < V; ++v)
            if (v != c->mask_id) z += exp((double)l[v] - mx);
        sum += 1.0 / z;
        ++nc;
    }
    *frac = m ? (float)still / (float)m : 0.0f;
    *conf = nc ? (float)(sum / nc) : 0.0f;
}

gv_status gv_masked_sample(const gv_masked_config *c, const gv_masked_knobs *knobs,
                           gv_masked_logits_fn logits_fn, void *user, int32_t *tokens,
                           gv_masked_record *rec, void *scratch, size_t scratch_bytes) {
    const int N = c->N, T = c->T, V = c->V, steps = c->steps, B = c->blocks;
    if (N < 1 || T < 1 || V < 2 || c->mask_id < 0 || c->mask_id >= V || steps < 1 ||
        steps > GV_MASKED_MAX_STEPS || B < 1 || steps % B)
        return GV_ERROR(GV_ERR_INVALID, "masked sampler: bad geometry N=%d T=%d V=%d mask_id=%d "
                        "steps=%d (1..%d) blocks=%d (must divide steps)", N, T, V, (int)c->mask_id,
                        steps, GV_MASKED_MAX_STEPS, B);
    const int s = steps / B;
    int with_cfg = 0;
    if (knobs && knobs->v[GV_KNOB_W])
        for (int64_t i = 0; i < (int64_t)N * steps; ++i) with_cfg |= knobs->v[GV_KNOB_W][i] != 1.0f;
    if (!scratch || scratch_bytes < gv_masked_scratch_bytes(c, with_cfg))
        return GV_ERROR(GV_ERR_INVALID, "masked sampler: scratch of %zu bytes, %zu needed",
                        scratch_bytes, gv_masked_scratch_bytes(c, with_cfg));
    const size_t rows_max = (size_t)N * (with_cfg ? 2 : 1);
    char *p8 = scratch;
    double *logp = (double *)p8; /* doubles first: alignment */
    p8 += (size_t)T * sizeof(double);
    double *conf = (double *)p8;
    p8 += (size_t)T * sizeof(double);
    float *logits = (float *)p8;
    p8 += rows_max * T * (size_t)V * sizeof(float);
    int32_t *tokens2 = (int32_t *)p8;
    p8 += rows_max * T * sizeof(int32_t);
    int32_t *state = (int32_t *)p8;
    p8 += (size_t)N * T * sizeof(int32_t);
    int32_t *cand = (int32_t *)p8;
    int32_t *tok = cand + T;
    int32_t *mt = tok + T; /* (N) completion positions per sample */
    float *kn = (float *)(mt + N); /* (N, GV_KNOB_COUNT) the step's knobs */
    float *feat_frac = kn + (size_t)N * GV_KNOB_COUNT, *feat_conf = feat_frac + N;

    /* completion = the positions masked at the start */
    for (int n = 0; n < N; ++n) {
        mt[n] = 0;
        for (int p = 0; p < T; ++p) {
            const int masked = tokens[(int64_t)n * T + p] == c->mask_id;
            state[(int64_t)n * T + p] = masked ? STATE_MASKED : STATE_PROMPT;
            mt[n] += masked;
            if (rec && rec->commit_step) rec->commit_step[(int64_t)n * T + p] = -1;
            if (rec && rec->logp) rec->logp[(int64_t)n * T + p] = 0.0f;
        }
    }
    uint32_t key[2];
    gv_rng_key(c->seed, c->stream, key);
    for (int k = 0; k < steps; ++k) {
        const int block = k / s, j = k % s, last = j == s - 1;
        int cfg_now = 0;
        for (int n = 0; n < N && with_cfg; ++n)
            cfg_now |= knob_at(knobs, GV_KNOB_W, n, k, steps, j, s) != 1.0f;
        const int rows = cfg_now ? 2 * N : N;
        memcpy(tokens2, tokens, (size_t)N * T * sizeof(int32_t));
        if (cfg_now) /* the null prompt: every prompt position masked */
            for (int64_t i = 0; i < (int64_t)N * T; ++i)
                tokens2[(int64_t)N * T + i] = state[i] == STATE_PROMPT ? c->mask_id : tokens[i];
        GV_TRY(logits_fn(user, rows, tokens2, logits));
        for (int n = 0; n < N; ++n)
            for (int q = 0; q < GV_KNOB_COUNT; ++q)
                kn[(int64_t)n * GV_KNOB_COUNT + q] = knob_at(knobs, q, n, k, steps, j, s);
        if (knobs && knobs->step_fn) {
            for (int n = 0; n < N; ++n) step_features(c, state, mt[n], n, block, logits,
                                                      &feat_frac[n], &feat_conf[n]);
            GV_TRY(knobs->step_fn(knobs->step_user, c, k, j, s, feat_frac, feat_conf, kn));
            for (int n = 0; n < N; ++n)
                if (kn[(int64_t)n * GV_KNOB_COUNT + GV_KNOB_W] != knob_at(knobs, GV_KNOB_W, n, k, steps, j, s))
                    return GV_ERROR(GV_ERR_INVALID, "masked sampler: the step hook changed w of sample "
                                    "%d at step %d (w is decided before the logits)", n, k);
        }
        for (int n = 0; n < N; ++n) {
            const float r = kn[(int64_t)n * GV_KNOB_COUNT + GV_KNOB_R];
            const float tau_s = kn[(int64_t)n * GV_KNOB_COUNT + GV_KNOB_TAU_S];
            const float tau_r = kn[(int64_t)n * GV_KNOB_COUNT + GV_KNOB_TAU_R];
            const float w = kn[(int64_t)n * GV_KNOB_COUNT + GV_KNOB_W];
            if (!(r > 0.0f && r <= 1.0f) || !(tau_s > 0.0f) || !(tau_r >= 0.0f) || !(w >= 0.0f))
                return GV_ERROR(GV_ERR_INVALID, "masked sampler: sample %d step %d: knobs r=%g "
                                "tau_s=%g tau_r=%g w=%g out of range", n, k, (double)r,
                                (double)tau_s, (double)tau_r, (double)w);
            /* the block: completion ranks [block·L, (block+1)·L), L = ceil(m / blocks) */
            const int L = (mt[n] + B - 1) / B, lo = block * L, hi = lo + L;
            uint32_t ctr[3];
            gv_rng_addr a = c->addr;
            a.step = (uint32_t)k;
            a.slot = c->slot0 + (uint32_t)n;
            GV_TRY(gv_rng_addr_pack(&a, ctr));
            int nc = 0, rank = 0, still = 0;
            double conf_sum = 0.0;
            for (int p = 0; p < T; ++p) {
                const int32_t st = state[(int64_t)n * T + p];
                if (st == STATE_PROMPT) continue;
                const int in_block = rank >= lo && rank < hi;
                ++rank;
                if (st != STATE_MASKED) continue;
                ++still;
                if (!in_block) continue;
                const float *lc = logits + ((int64_t)n * T + p) * V;
                const float *ln = cfg_now ? logits + ((int64_t)(N + n) * T + p) * V : NULL;
                /* l_v = (l_null + w (l_cond - l_null)) / τ_s; [MASK] excluded */
                double mx = -INFINITY;
                for (int v = 0; v < V; ++v) {
                    if (v == c->mask_id) continue;
                    double l = ln ? (double)ln[v] + (double)w * ((double)lc[v] - (double)ln[v]) : lc[v];
                    l /= (double)tau_s;
                    if (l > mx) mx = l;
                }
                double z = 0.0;
                for (int v = 0; v < V; ++v) {
                    if (v == c->mask_id) continue;
                    double l = ln ? (double)ln[v] + (double)w * ((double)lc[v] - (double)ln[v]) : lc[v];
                    z += exp(l / (double)tau_s - mx);
                }
                const double lse = mx + log(z);
                const double u = gv_rng_uniform_at(key, ctr, 2 * (uint64_t)p);
                double cum = 0.0;
                int pick = -1, lastv = -1;
                double lpick = 0.0;
                for (int v = 0; v < V; ++v) {
                    if (v == c->mask_id) continue;
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
                const double g = -log(-log((double)gv_rng_uniform_at(key, ctr, 2 * (uint64_t)p + 1)));
                tok[p] = pick;
                logp[p] = lpick;
                conf[p] = lpick + (double)tau_r * g;
                conf_sum += exp(mx - lse); /* the max probability */
                cand[nc++] = p;
            }
            if (rec && rec->masked_frac)
                rec->masked_frac[(int64_t)n * steps + k] = mt[n] ? (float)still / (float)mt[n] : 0.0f;
            if (rec && rec->mean_conf)
                rec->mean_conf[(int64_t)n * steps + k] = nc ? (float)(conf_sum / nc) : 0.0f;
            int commit = 0;
            if (nc) {
                commit = last ? nc : (int)floor((double)r * nc + 0.5);
                if (commit < 1) commit = 1;
                if (commit > nc) commit = nc;
                sort_candidates(cand, nc, conf);
                for (int i = 0; i < commit; ++i) {
                    const int p = cand[i];
                    tokens[(int64_t)n * T + p] = tok[p];
                    state[(int64_t)n * T + p] = k;
                    if (rec && rec->commit_step) rec->commit_step[(int64_t)n * T + p] = k;
                    if (rec && rec->logp) rec->logp[(int64_t)n * T + p] = (float)logp[p];
                }
            }
            if (rec && rec->commits) rec->commits[(int64_t)n * steps + k] = commit;
        }
    }
    return GV_OK;
}
