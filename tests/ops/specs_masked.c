/* Harness specs: the masked-diffusion sampler ops (masked_select, masked_features; ALGORITHMS.md
 * §10, ops.h). Forward-only, per-sample; checked against an independent fp64 reference written
 * from the definition (probabilities by log-sum-exp, inverse CDF, Gumbel confidence, qsort of the
 * candidates), on shapes with one and several blocks, CFG (logits_null) and without, the block's
 * last step (commit all) and not, optional records (logp, null_tokens) present and absent.
 *
 * Inputs are random: tokens in [0, V) (so about 1/V of the positions hold mask_id and are masked),
 * commit with about a quarter -1 (prompt) and a last sample that is all prompt (nothing to do),
 * knobs in [0.05, 1.05) (r above 1 clamps to every candidate, as it must). The int outputs
 * (tokens, commit, null_tokens) are compared as exact small integers.
 * No batch-invariance check (n_arg -1): a row's random numbers come from its slot (the ctr_hi slot
 * of row 0 plus the row index), so moving a sample to another row changes them by design. The
 * sampler keeps a sample's slot whatever the batch split (slot0 + n); tests/cpu/test_masked.c
 * checks that (deterministic_and_independent_of_the_batch_split), and the items read only their
 * own sample's rows. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "grove/rng.h"
#include "harness.h"

/* case v = {N, T, V, mask_id, blocks, block, step, last, cfg, records}; records bit 0: logp,
   bit 1: null_tokens. p[0]: seed. */
enum { MTOK, MCOMMIT, MLOGP, MSTATS, MNULLTOK, MLOGITS, MLNULL, MKNOBS };
static const gv_h_tensor select_tensors[] = {
    [MTOK] = {"tokens", GV_H_INOUT, GV_H_I32, GV_H_IDS, GV_H_PER_SAMPLE},
    [MCOMMIT] = {"commit", GV_H_INOUT, GV_H_I32, GV_H_IDS_PAD, GV_H_PER_SAMPLE},
    [MLOGP] = {"logp", GV_H_INOUT, GV_H_F32, GV_H_NORMAL, GV_H_PER_SAMPLE},
    [MSTATS] = {"stats", GV_H_OUT, GV_H_F32, GV_H_NONE, GV_H_PER_SAMPLE},
    [MNULLTOK] = {"null_tokens", GV_H_SAVED, GV_H_I32, GV_H_NONE, GV_H_PER_SAMPLE},
    [MLOGITS] = {"logits", GV_H_IN, GV_H_F32, GV_H_NORMAL, GV_H_PER_SAMPLE},
    [MLNULL] = {"logits_null", GV_H_IN, GV_H_F32, GV_H_NORMAL, GV_H_PER_SAMPLE},
    [MKNOBS] = {"knobs", GV_H_IN, GV_H_F32, GV_H_POSITIVE, GV_H_PER_SAMPLE},
};
static const gv_h_case select_cases[] = {
    {"N1 T1 V2", {1, 1, 2, 0, 1, 0, 0, 0, 0, 3}, {7}},
    {"N3 T13 V7 one block", {3, 13, 7, 6, 1, 0, 2, 0, 0, 1}, {11}},
    {"N2 T17 V5 blocks3 block1 cfg", {2, 17, 5, 2, 3, 1, 4, 0, 1, 3}, {12}},
    {"N4 T9 V10 last step cfg", {4, 9, 10, 9, 2, 1, 5, 1, 1, 0}, {13}},
    {"N3 T24 V3 blocks2 block0", {3, 24, 3, 1, 2, 0, 1, 0, 0, 2}, {14}},
};

static gv_masked_args masked_args_of(const gv_h_case *c) {
    gv_masked_args a = {.N = c->v[0], .T = c->v[1], .V = c->v[2], .mask_id = c->v[3],
                        .blocks = c->v[4], .block = c->v[5], .step = c->v[6], .last = c->v[7],
                        .stats_stride = GV_MASKED_STATS};
    gv_rng_addr addr = {.iteration = 3, .slot = 5, .step = (uint32_t)a.step,
                        .purpose = GV_RNG_PURPOSE_MASK_UNIFORM};
    gv_rng_key((uint32_t)c->p[0], GV_RNG_STREAM_SAMPLER, a.key);
    (void)gv_rng_addr_pack(&addr, a.ctr_hi);
    return a;
}

static void select_layout(const gv_h_case *c, gv_h_layout *L) {
    gv_masked_args a = masked_args_of(c);
    L->dims.masked = a;
    const int64_t NT = (int64_t)a.N * a.T;
    L->numel[MTOK] = L->numel[MCOMMIT] = NT;
    L->numel[MLOGP] = (c->v[9] & 1) ? NT : 0;
    L->numel[MNULLTOK] = (c->v[9] & 2) ? NT : 0;
    L->numel[MSTATS] = (int64_t)a.N * GV_MASKED_STATS;
    L->numel[MLOGITS] = NT * a.V;
    L->numel[MLNULL] = c->v[8] ? NT * a.V : 0;
    L->numel[MKNOBS] = (int64_t)a.N * GV_MASKED_KNOBS;
    L->id_hi[MTOK] = a.V;
    L->id_hi[MCOMMIT] = a.step + 1;
    L->shift[MKNOBS] = -0.45f; /* knobs in [0.05, 1.05) */
}

static gv_status select_forward(gv_ctx *c, void *const *t, const gv_h_layout *L) {
    return c->backend->ops->masked_select(c, t[MTOK], t[MCOMMIT], t[MLOGP], t[MSTATS], t[MNULLTOK],
                                          t[MLOGITS], t[MLNULL], t[MKNOBS], &L->dims.masked);
}

/* ---- the independent reference ---------------------------------------------------------------- */

typedef struct cand_ref {
    int p;
    double conf;
} cand_ref;
static int cand_cmp(const void *x, const void *y) {
    const cand_ref *a = x, *b = y;
    if (a->conf != b->conf) return a->conf > b->conf ? -1 : 1; /* most confident first */
    return a->p - b->p;                                         /* then the lower position */
}

/* Class probabilities of one position at the step's temperature (mask class 0), fp64. */
static void position_probs(const gv_masked_args *a, const float *lc, const float *ln,
                           const float *kn, double *prob) {
    double mx = -INFINITY;
    for (int v = 0; v < a->V; ++v) {
        prob[v] = -INFINITY;
        if (v == a->mask_id) continue;
        double l = ln ? (double)ln[v] + (double)kn[3] * ((double)lc[v] - (double)ln[v]) : lc[v];
        prob[v] = l / (double)kn[1];
        mx = fmax(mx, prob[v]);
    }
    double z = 0;
    for (int v = 0; v < a->V; ++v) z += v == a->mask_id ? 0.0 : exp(prob[v] - mx);
    for (int v = 0; v < a->V; ++v) prob[v] = v == a->mask_id ? 0.0 : exp(prob[v] - mx) / z;
}

static void select_reference(const gv_h_layout *L, const void *const *in, double *const *e) {
    const gv_masked_args a = L->dims.masked;
    const int32_t *tok = in[MTOK], *com = in[MCOMMIT];
    const float *logp = in[MLOGP], *lc = in[MLOGITS], *ln = in[MLNULL], *kn = in[MKNOBS];
    double *prob = malloc((size_t)a.V * sizeof *prob);
    cand_ref *cand = malloc((size_t)a.T * sizeof *cand);
    int *pick = malloc((size_t)a.T * sizeof *pick);
    double *lp = malloc((size_t)a.T * sizeof *lp);
    for (int n = 0; n < a.N; ++n) {
        const int64_t row = (int64_t)n * a.T;
        const float *k = kn + (int64_t)n * GV_MASKED_KNOBS;
        for (int p = 0; p < a.T; ++p) {
            e[MTOK][row + p] = tok[row + p];
            e[MCOMMIT][row + p] = com[row + p];
            if (logp) e[MLOGP][row + p] = logp[row + p];
        }
        int m = 0, still = 0, nc = 0;
        for (int p = 0; p < a.T; ++p) m += com[row + p] != -1;
        const int per_block = (m + a.blocks - 1) / a.blocks;
        uint32_t ctr[3];
        gv_rng_addr addr;
        gv_rng_addr_unpack(a.ctr_hi, &addr);
        addr.slot += (uint32_t)n;
        (void)gv_rng_addr_pack(&addr, ctr);
        double maxp_sum = 0;
        for (int p = 0, rank = -1; p < a.T; ++p) {
            if (com[row + p] == -1) continue;
            ++rank;
            if (tok[row + p] != a.mask_id) continue;
            ++still;
            if (rank / per_block != a.block) continue;
            position_probs(&a, lc + (row + p) * a.V, ln ? ln + (row + p) * a.V : NULL, k, prob);
            const double u = gv_rng_uniform_at(a.key, ctr, 2 * (uint64_t)p);
            int v = 0, lastv = 0;
            double cum = 0, maxp = 0;
            for (v = 0; v < a.V; ++v) maxp = fmax(maxp, prob[v]);
            for (v = 0; v < a.V; ++v) {
                if (v == a.mask_id) continue;
                lastv = v;
                cum += prob[v];
                if (u < cum) break;
            }
            if (v == a.V) v = lastv;
            pick[p] = v;
            lp[p] = log(prob[v]);
            const double gumbel =
                -log(-log((double)gv_rng_uniform_at(a.key, ctr, 2 * (uint64_t)p + 1)));
            cand[nc++] = (cand_ref){p, lp[p] + (double)k[2] * gumbel};
            maxp_sum += maxp;
        }
        qsort(cand, (size_t)nc, sizeof *cand, cand_cmp);
        int commits = a.last ? nc : (int)floor((double)k[0] * nc + 0.5);
        commits = nc ? (commits < 1 ? 1 : commits > nc ? nc : commits) : 0;
        for (int i = 0; i < commits; ++i) {
            const int p = cand[i].p;
            e[MTOK][row + p] = pick[p];
            e[MCOMMIT][row + p] = a.step;
            if (logp) e[MLOGP][row + p] = lp[p];
        }
        double *st = e[MSTATS] + (int64_t)n * GV_MASKED_STATS;
        st[GV_MASKED_STAT_COMMITS] = commits;
        st[GV_MASKED_STAT_MASKED_FRAC] = m ? (double)still / m : 0.0;
        st[GV_MASKED_STAT_MEAN_CONF] = nc ? maxp_sum / nc : 0.0;
        if (L->numel[MNULLTOK])
            for (int p = 0; p < a.T; ++p)
                e[MNULLTOK][row + p] = com[row + p] == -1 ? a.mask_id : e[MTOK][row + p];
    }
    free(prob);
    free(cand);
    free(pick);
    free(lp);
}

static const gv_op_spec masked_select = {
    .name = "masked_select", .fwd_op = GV_OP_masked_select, .bwd_op = -1,
    .ntensors = GV_H_COUNT(select_tensors), .tensors = select_tensors,
    .ncases = GV_H_COUNT(select_cases), .cases = select_cases, .n_arg = -1,
    .layout = select_layout, .run_forward = select_forward, .reference = select_reference,
};
GV_SPEC_FOR(masked_select, masked_select);

/* ---- masked_features: the same cases (tensors tokens, commit, logits -> feat) --------------------- */

enum { FFEAT, FTOK, FCOMMIT, FLOGITS };
static const gv_h_tensor features_tensors[] = {
    [FFEAT] = {"feat", GV_H_OUT, GV_H_F32, GV_H_NONE, GV_H_PER_SAMPLE},
    [FTOK] = {"tokens", GV_H_IN, GV_H_I32, GV_H_IDS, GV_H_PER_SAMPLE},
    [FCOMMIT] = {"commit", GV_H_IN, GV_H_I32, GV_H_IDS_PAD, GV_H_PER_SAMPLE},
    [FLOGITS] = {"logits", GV_H_IN, GV_H_F32, GV_H_NORMAL, GV_H_PER_SAMPLE},
};
static void features_layout(const gv_h_case *c, gv_h_layout *L) {
    gv_masked_args a = masked_args_of(c);
    L->dims.masked = a;
    L->numel[FFEAT] = 2 * (int64_t)a.N;
    L->numel[FTOK] = L->numel[FCOMMIT] = (int64_t)a.N * a.T;
    L->numel[FLOGITS] = (int64_t)a.N * a.T * a.V;
    L->id_hi[FTOK] = a.V;
    L->id_hi[FCOMMIT] = a.step + 1;
}
static gv_status features_forward(gv_ctx *c, void *const *t, const gv_h_layout *L) {
    return c->backend->ops->masked_features(c, t[FFEAT], t[FTOK], t[FCOMMIT], t[FLOGITS],
                                            &L->dims.masked);
}
static void features_reference(const gv_h_layout *L, const void *const *in, double *const *e) {
    const gv_masked_args a = L->dims.masked;
    const int32_t *tok = in[FTOK], *com = in[FCOMMIT];
    const float *lg = in[FLOGITS];
    double *prob = malloc((size_t)a.V * sizeof *prob);
    const float unit_knobs[GV_MASKED_KNOBS] = {1, 1, 1, 1};
    for (int n = 0; n < a.N; ++n) {
        const int64_t row = (int64_t)n * a.T;
        int m = 0, still = 0, nc = 0;
        double sum = 0;
        for (int p = 0; p < a.T; ++p) m += com[row + p] != -1;
        const int per_block = (m + a.blocks - 1) / a.blocks;
        for (int p = 0, rank = -1; p < a.T; ++p) {
            if (com[row + p] == -1) continue;
            ++rank;
            if (tok[row + p] != a.mask_id) continue;
            ++still;
            if (rank / per_block != a.block) continue;
            position_probs(&a, lg + (row + p) * a.V, NULL, unit_knobs, prob);
            double maxp = 0;
            for (int v = 0; v < a.V; ++v) maxp = fmax(maxp, prob[v]);
            sum += maxp;
            ++nc;
        }
        e[FFEAT][2 * n] = m ? (double)still / m : 0.0;
        e[FFEAT][2 * n + 1] = nc ? sum / nc : 0.0;
    }
    free(prob);
}
static const gv_op_spec masked_features = {
    .name = "masked_features", .fwd_op = GV_OP_masked_features, .bwd_op = -1,
    .ntensors = GV_H_COUNT(features_tensors), .tensors = features_tensors,
    .ncases = GV_H_COUNT(select_cases), .cases = select_cases, .n_arg = 0,
    .layout = features_layout, .run_forward = features_forward, .reference = features_reference,
};
GV_SPEC_FOR(masked_features, masked_features);
