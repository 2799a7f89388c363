/* The masked-diffusion sampler (samplers/masked.c, ALGORITHMS.md §10) with synthetic logits
 * callbacks (no network): commit counts per step under the default and a buffered schedule against
 * hand-computed values, confidence order, recorded log-probs against an independent log-softmax,
 * prompt positions untouched, [MASK] never sampled, CFG's null rows and combination, determinism
 * and independence of the batch split, and knob validation. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "grove/kernels_cpu.h"
#include "grove/rng.h"
#include "samplers/masked.h"

/* Logits that depend on the position only: l[p][v] = a * ((p * 7 + v * 3) % 5) + bias for v = p%V' */
typedef struct fake {
    int T, V, mask_id;
    int calls, rows_seen;
    int prompt_mask_seen; /* rows whose prompt positions were all masked (null rows) */
    const int32_t *prompt; /* (T) 1 = prompt position (for the CFG fake) */
} fake;

static gv_status fake_logits(void *user, int rows, const int32_t *tokens, float *logits) {
    fake *f = user;
    f->calls++;
    f->rows_seen += rows;
    for (int r = 0; r < rows; ++r)
        for (int p = 0; p < f->T; ++p)
            for (int v = 0; v < f->V; ++v)
                logits[((int64_t)r * f->T + p) * f->V + v] =
                    v == f->mask_id ? 50.0f /* must never be sampled */
                                    : 0.3f * (float)((p * 7 + v * 3) % 5) + (v == p % 3 ? 0.1f * p : 0.0f);
    (void)tokens;
    return GV_OK;
}

static void *scratch_for(const gv_masked_config *c, int with_cfg, size_t *bytes) {
    *bytes = gv_masked_scratch_bytes(c, with_cfg);
    void *s = malloc(*bytes);
    cr_assert(s);
    return s;
}

Test(masked, default_schedule_commits_the_hand_computed_counts) {
    /* T 12, 2 prompt positions, m = 10 completion, 4 steps: r = 1/(s-j) ->
       j0: floor(10/4 + .5) = 3, j1: floor(7/3 + .5) = 2, j2: floor(5/2 + .5) = 3, j3: all 2 */
    enum { T = 12, V = 4, N = 2, S = 4 };
    gv_masked_config c = {.N = N, .T = T, .V = V, .mask_id = 3, .steps = S, .blocks = 1, .seed = 9,
                          .stream = GV_RNG_STREAM_EVAL};
    int32_t tok[N * T];
    for (int i = 0; i < N * T; ++i) tok[i] = 3;
    tok[0] = 1, tok[5] = 2, tok[T + 3] = 0, tok[T + 11] = 1;
    int32_t orig[N * T];
    memcpy(orig, tok, sizeof tok);
    int32_t commit_step[N * T], commits[N * S];
    float logp[N * T], frac[N * S], conf[N * S];
    gv_masked_record rec = {.commit_step = commit_step, .logp = logp, .commits = commits,
                            .masked_frac = frac, .mean_conf = conf};
    fake f = {.T = T, .V = V, .mask_id = 3};
    size_t sb;
    void *scr = scratch_for(&c, 0, &sb);
    cr_assert_eq(gv_masked_sample(&c, NULL, fake_logits, &f, tok, &rec, scr, sb), GV_OK, "%s", gv_last_error());
    const int want[S] = {3, 2, 3, 2};
    for (int n = 0; n < N; ++n) {
        int remaining = 10;
        for (int k = 0; k < S; ++k) {
            cr_assert_eq(commits[n * S + k], want[k], "sample %d step %d: %d committed", n, k, commits[n * S + k]);
            cr_assert_float_eq(frac[n * S + k], remaining / 10.0f, 1e-6f);
            remaining -= want[k];
            int count = 0;
            for (int p = 0; p < T; ++p) count += commit_step[n * T + p] == k;
            cr_assert_eq(count, want[k]);
        }
        for (int p = 0; p < T; ++p) {
            const int i = n * T + p;
            if (orig[i] != 3) {
                cr_assert_eq(tok[i], orig[i], "a prompt position changed");
                cr_assert_eq(commit_step[i], -1);
            } else {
                cr_assert(tok[i] >= 0 && tok[i] < 3, "position %d holds %d ([MASK] sampled?)", p, tok[i]);
                cr_assert(commit_step[i] >= 0 && commit_step[i] < S);
                /* the recorded log-prob is log softmax over the non-[MASK] logits at tau_s = 1 */
                double z = 0.0;
                for (int v = 0; v < 3; ++v) z += exp(0.3 * ((p * 7 + v * 3) % 5) + (v == p % 3 ? 0.1 * p : 0.0));
                double lv = 0.3 * ((p * 7 + tok[i] * 3) % 5) + (tok[i] == p % 3 ? 0.1 * p : 0.0);
                cr_assert_float_eq(logp[i], (float)(lv - log(z)), 1e-5f);
            }
        }
    }
    cr_assert_eq(f.calls, S);
    cr_assert_eq(f.rows_seen, S * N, "no CFG: one N-row call per step");
    free(scr);
}

Test(masked, buffered_knobs_per_sample_and_step) {
    /* sample 0: r = 0.25 at every step; sample 1: r = 1 (everything at step 0) */
    enum { T = 9, V = 3, N = 2, S = 3 };
    gv_masked_config c = {.N = N, .T = T, .V = V, .mask_id = 2, .steps = S, .blocks = 1, .seed = 1,
                          .stream = GV_RNG_STREAM_EVAL};
    float r[N * S] = {0.25f, 0.25f, 0.25f, 1.0f, 1.0f, 1.0f};
    gv_masked_knobs k = {.v = {r, NULL, NULL, NULL}};
    int32_t tok[N * T], commits[N * S];
    for (int i = 0; i < N * T; ++i) tok[i] = 2;
    gv_masked_record rec = {.commits = commits};
    fake f = {.T = T, .V = V, .mask_id = 2};
    size_t sb;
    void *scr = scratch_for(&c, 0, &sb);
    cr_assert_eq(gv_masked_sample(&c, &k, fake_logits, &f, tok, &rec, scr, sb), GV_OK, "%s", gv_last_error());
    /* sample 0: floor(.25*9+.5) = 2, floor(.25*7+.5) = 2, last step: the remaining 5 */
    cr_assert_eq(commits[0], 2);
    cr_assert_eq(commits[1], 2);
    cr_assert_eq(commits[2], 5);
    cr_assert_eq(commits[3], 9);
    cr_assert_eq(commits[4], 0);
    cr_assert_eq(commits[5], 0);
    r[0] = 0.0f; /* out of range */
    cr_assert_eq(gv_masked_sample(&c, &k, fake_logits, &f, tok, &rec, scr, sb), GV_ERR_INVALID);
    free(scr);
}

/* Position p favours token 0 by a margin growing with p: logits (10 + p, 0) (+ [MASK] 0). */
static gv_status increasing_logits(void *u, int rows, const int32_t *t, float *l) {
    const int T = *(const int *)u;
    (void)t;
    for (int r = 0; r < rows; ++r)
        for (int p = 0; p < T; ++p) {
            float *row = l + ((int64_t)r * T + p) * 3;
            row[0] = 10.0f + (float)p, row[1] = 0.0f, row[2] = 0.0f;
        }
    return GV_OK;
}

Test(masked, zero_remask_temperature_commits_the_most_confident_first) {
    /* with tau_r = 0 the confidence is the token's log-prob, increasing with p: step 0 commits
       floor(.375*8 + .5) = 3 (positions 7, 6, 5), step 1 floor(.5*5 + .5) = 3 (4, 3, 2), the last 2.
       tau_r 0 comes from a buffer, then from a fixed constant (the buffer's NULL), then a fixed
       constant of 5 that a buffer of zeros overrides: the same commits each time. */
    enum { T = 8, V = 3, S = 3 };
    gv_masked_config c = {.N = 1, .T = T, .V = V, .mask_id = 2, .steps = S, .blocks = 1};
    float tr[S] = {0, 0, 0}, r[S] = {0.375f, 0.5f, 1.0f};
    const gv_masked_knobs ks[3] = {
        {.v = {r, NULL, tr, NULL}},
        {.v = {r, NULL, NULL, NULL}, .fixed_mask = 1u << GV_KNOB_TAU_R},
        {.v = {r, NULL, tr, NULL}, .fixed_mask = 1u << GV_KNOB_TAU_R, .fixed = {[GV_KNOB_TAU_R] = 5.0f}}};
    for (int kk = 0; kk < 3; ++kk) {
        int32_t tok[T], cs[T];
        for (int i = 0; i < T; ++i) tok[i] = 2;
        gv_masked_record rec = {.commit_step = cs};
        int t_len = T;
        size_t sb;
        void *scr = scratch_for(&c, 0, &sb);
        cr_assert_eq(gv_masked_sample(&c, &ks[kk], increasing_logits, &t_len, tok, &rec, scr, sb),
                     GV_OK, "%s", gv_last_error());
        for (int p = 0; p < T; ++p) {
            cr_assert_eq(tok[p], 0, "knobs %d: token 0 expected at %d", kk, p);
            const int want = p >= 5 ? 0 : p >= 2 ? 1 : 2;
            cr_assert_eq(cs[p], want, "knobs %d: position %d committed at step %d, expected %d", kk,
                         p, cs[p], want);
        }
        free(scr);
    }
}

/* The order record (drawn, commit_rank, tau_r): by hand at τ_r 0 on increasing logits (the commits
   of the test above, most confident first), then its invariants under the default schedule. */
Test(masked, order_record_by_hand_and_under_the_default_schedule) {
    enum { T = 8, V = 3, S = 3 };
    gv_masked_config c = {.N = 1, .T = T, .V = V, .mask_id = 2, .steps = S, .blocks = 1};
    float tr[S] = {0, 0, 0}, r[S] = {0.375f, 0.5f, 1.0f};
    gv_masked_knobs k = {.v = {r, NULL, tr, NULL}};
    int32_t tok[T], cs[T], drawn[S * T], rank[T];
    float tau[S];
    for (int i = 0; i < T; ++i) tok[i] = 2;
    gv_masked_record rec = {.commit_step = cs, .drawn = drawn, .commit_rank = rank, .tau_r = tau};
    int t_len = T;
    size_t sb;
    void *scr = scratch_for(&c, 0, &sb);
    cr_assert_eq(gv_masked_sample(&c, &k, increasing_logits, &t_len, tok, &rec, scr, sb), GV_OK, "%s",
                 gv_last_error());
    free(scr);
    /* step 0 commits 7, 6, 5 in that order; step 1 4, 3, 2; step 2 (all that is left) 1, 0 */
    const int want_rank[T] = {1, 0, 2, 1, 0, 2, 1, 0};
    for (int p = 0; p < T; ++p) {
        cr_assert_eq(rank[p], want_rank[p], "position %d: place %d, expected %d", p, rank[p], want_rank[p]);
        for (int s = 0; s < S; ++s) /* drawn wherever the position was still masked: token 0 */
            cr_assert_eq(drawn[s * T + p], cs[p] >= s ? 0 : -1, "step %d position %d drew %d", s, p,
                         drawn[s * T + p]);
    }
    for (int s = 0; s < S; ++s) cr_assert_eq(tau[s], 0.0f);

    /* the default schedule (τ_r = 1 − j/s > 0: a random order), 2 samples with prompt positions */
    enum { N = 2, T2 = 12, V2 = 4, S2 = 4 };
    gv_masked_config c2 = {.N = N, .T = T2, .V = V2, .mask_id = 3, .steps = S2, .blocks = 1, .seed = 5,
                           .stream = GV_RNG_STREAM_SAMPLER};
    int32_t t2[N * T2], cs2[N * T2], d2[N * S2 * T2], rk2[N * T2];
    float tau2[N * S2];
    for (int i = 0; i < N * T2; ++i) t2[i] = i % 5 == 0 ? 1 : 3;
    gv_masked_record rec2 = {.commit_step = cs2, .drawn = d2, .commit_rank = rk2, .tau_r = tau2};
    fake f = {.T = T2, .V = V2, .mask_id = 3};
    scr = scratch_for(&c2, 0, &sb);
    cr_assert_eq(gv_masked_sample(&c2, NULL, fake_logits, &f, t2, &rec2, scr, sb), GV_OK, "%s",
                 gv_last_error());
    free(scr);
    for (int n = 0; n < N; ++n) {
        for (int s = 0; s < S2; ++s) {
            cr_assert_float_eq(tau2[n * S2 + s], gv_masked_default_knob(GV_KNOB_TAU_R, s, S2), 1e-7f);
            int count = 0, seen = 0;
            for (int p = 0; p < T2; ++p) {
                const int i = n * T2 + p, d = d2[(n * S2 + s) * T2 + p];
                const int candidate = cs2[i] >= s; /* prompt: -1 */
                cr_assert_eq(d >= 0, candidate, "sample %d step %d position %d: drawn %d", n, s, p, d);
                if (cs2[i] == s) {
                    cr_assert_eq(d, t2[i], "the draw at the commit step is the committed token");
                    cr_assert(rk2[i] >= 0 && rk2[i] < T2);
                    seen |= 1 << rk2[i];
                    ++count;
                }
            }
            cr_assert_eq(seen, (1 << count) - 1, "step %d: the places are 0..%d", s, count - 1);
        }
        for (int p = 0; p < T2; ++p)
            if (cs2[n * T2 + p] < 0) cr_assert_eq(rk2[n * T2 + p], -1, "a prompt position has no place");
    }
    /* the places against the perturbed confidences recomputed here from the record's draws, the
       fake logits and the sampler's Philox addresses (draw u at element 2p, Gumbel at 2p + 1):
       every commit outranks every candidate left, and the places follow the confidence */
    uint32_t key[2];
    gv_rng_key(c2.seed, c2.stream, key);
    float lg[T2 * V2];
    fake_logits(&f, 1, NULL, lg);
    for (int n = 0; n < N; ++n)
        for (int s = 0; s < S2; ++s) {
            uint32_t ctr[3];
            cr_assert_eq(gv_rng_addr_pack(&(gv_rng_addr){.step = (uint32_t)s, .slot = (uint32_t)n}, ctr), GV_OK);
            double conf[T2];
            const double tau = tau2[n * S2 + s];
            for (int p = 0; p < T2; ++p) {
                const int d = d2[(n * S2 + s) * T2 + p];
                if (d < 0) continue;
                const float *l = lg + p * V2;
                double z = 0.0;
                for (int v = 0; v < V2; ++v) z += v == 3 ? 0.0 : exp((double)l[v]);
                const double g = -log(-log((double)gv_rng_uniform_at(key, ctr, 2 * (uint64_t)p + 1)));
                conf[p] = (double)l[d] - log(z) + tau * g;
            }
            for (int p = 0; p < T2; ++p) {
                if (cs2[n * T2 + p] != s) continue;
                for (int q = 0; q < T2; ++q) {
                    if (q == p || d2[(n * S2 + s) * T2 + q] < 0) continue;
                    if (cs2[n * T2 + q] == s) /* both committed: the more confident has the lower place */
                        cr_assert_eq(rk2[n * T2 + p] < rk2[n * T2 + q], conf[p] > conf[q],
                                     "sample %d step %d: places %d, %d vs confidences %g, %g", n, s,
                                     rk2[n * T2 + p], rk2[n * T2 + q], conf[p], conf[q]);
                    else
                        cr_assert(conf[p] > conf[q], "sample %d step %d: commit %d (%g) below %d (%g)",
                                  n, s, p, conf[p], q, conf[q]);
                }
            }
        }
}

/* CFG fake: conditional rows (prompt visible) favour token 0, null rows (every prompt position
   masked) favour token 1: cond [1, 0], null [0, 0.9]. */
static gv_status cfg_logits(void *user, int rows, const int32_t *tokens, float *logits) {
    fake *f = user;
    f->calls++;
    f->rows_seen += rows;
    for (int r = 0; r < rows; ++r) {
        int null_row = 1;
        for (int p = 0; p < f->T; ++p)
            if (f->prompt[p] && tokens[(int64_t)r * f->T + p] != f->mask_id) null_row = 0;
        f->prompt_mask_seen += null_row;
        for (int p = 0; p < f->T; ++p) {
            float *l = logits + ((int64_t)r * f->T + p) * f->V;
            l[0] = null_row ? 0.0f : 1.0f;
            l[1] = null_row ? 0.9f : 0.0f;
            l[2] = 0.0f;
        }
    }
    return GV_OK;
}

Test(masked, cfg_builds_null_rows_and_combines) {
    enum { T = 4, V = 3, S = 2 };
    const int32_t prompt[T] = {1, 0, 0, 0};
    const float tau[S] = {1e-3f, 1e-3f};
    const float w_values[3] = {1.0f, 0.0f, 2.0f}; /* -> token 0 (cond), 1 (null), 0 (extrapolated) */
    const int want[3] = {0, 1, 0};
    for (int t = 0; t < 3; ++t) {
        gv_masked_config c = {.N = 1, .T = T, .V = V, .mask_id = 2, .steps = S, .blocks = 1};
        float w[S] = {w_values[t], w_values[t]};
        gv_masked_knobs k = {.v = {NULL, tau, NULL, w}};
        int32_t tok[T] = {0, 2, 2, 2};
        fake f = {.T = T, .V = V, .mask_id = 2, .prompt = prompt};
        size_t sb;
        void *scr = scratch_for(&c, 1, &sb);
        cr_assert_eq(gv_masked_sample(&c, &k, cfg_logits, &f, tok, NULL, scr, sb), GV_OK, "%s", gv_last_error());
        for (int p = 1; p < T; ++p) cr_assert_eq(tok[p], want[t], "w = %g: token %d at %d", (double)w[0], tok[p], p);
        cr_assert_eq(f.rows_seen, t == 0 ? S : 2 * S, "w == 1 needs no null rows");
        cr_assert_eq(f.prompt_mask_seen, t == 0 ? 0 : S);
        free(scr);
    }
}

Test(masked, deterministic_and_independent_of_the_batch_split) {
    enum { T = 10, V = 5, N = 4, S = 5 };
    gv_masked_config c = {.N = N, .T = T, .V = V, .mask_id = 4, .steps = S, .blocks = 1, .seed = 77,
                          .stream = GV_RNG_STREAM_SAMPLER, .addr = {.iteration = 3}};
    int32_t a[N * T], b[N * T];
    for (int i = 0; i < N * T; ++i) a[i] = (i % 3 == 0) ? i % 4 : 4;
    memcpy(b, a, sizeof a);
    fake f = {.T = T, .V = V, .mask_id = 4};
    size_t sb;
    void *scr = scratch_for(&c, 0, &sb);
    cr_assert_eq(gv_masked_sample(&c, NULL, fake_logits, &f, a, NULL, scr, sb), GV_OK);
    /* the same rows as two calls of 2 with slot0 = 0 and 2 */
    gv_masked_config h = c;
    h.N = 2;
    cr_assert_eq(gv_masked_sample(&h, NULL, fake_logits, &f, b, NULL, scr, sb), GV_OK);
    h.slot0 = 2;
    cr_assert_eq(gv_masked_sample(&h, NULL, fake_logits, &f, b + 2 * T, NULL, scr, sb), GV_OK);
    cr_assert_eq(memcmp(a, b, sizeof a), 0, "the batch split changed the samples");
    /* another seed changes something */
    for (int i = 0; i < N * T; ++i) b[i] = (i % 3 == 0) ? i % 4 : 4;
    c.seed = 78;
    cr_assert_eq(gv_masked_sample(&c, NULL, fake_logits, &f, b, NULL, scr, sb), GV_OK);
    cr_assert_neq(memcmp(a, b, sizeof a), 0);
    free(scr);
}

Test(masked, blocks_decode_left_to_right_and_geometry_is_checked) {
    /* text layout: 2 prompt tokens then 6 masked; 2 blocks of 3, 4 steps (2 per block) */
    enum { T = 8, V = 4, S = 4 };
    gv_masked_config c = {.N = 1, .T = T, .V = V, .mask_id = 3, .steps = S, .blocks = 2};
    int32_t tok[T] = {0, 1, 3, 3, 3, 3, 3, 3}, cs[T];
    gv_masked_record rec = {.commit_step = cs};
    fake f = {.T = T, .V = V, .mask_id = 3};
    size_t sb;
    void *scr = scratch_for(&c, 0, &sb);
    cr_assert_eq(gv_masked_sample(&c, NULL, fake_logits, &f, tok, &rec, scr, sb), GV_OK, "%s", gv_last_error());
    for (int p = 2; p < 5; ++p) cr_assert(cs[p] == 0 || cs[p] == 1, "block 0 position %d at step %d", p, cs[p]);
    for (int p = 5; p < 8; ++p) cr_assert(cs[p] == 2 || cs[p] == 3, "block 1 position %d at step %d", p, cs[p]);
    c.blocks = 3; /* 4 % 3 != 0 */
    cr_assert_eq(gv_masked_sample(&c, NULL, fake_logits, &f, tok, &rec, scr, sb), GV_ERR_INVALID);
    cr_assert(strstr(gv_last_error(), "blocks"), "%s", gv_last_error());
    c.blocks = 2;
    cr_assert_eq(gv_masked_sample(&c, NULL, fake_logits, &f, tok, &rec, scr, 16), GV_ERR_INVALID);
    free(scr);
}

Test(masked, default_knobs_match_the_document) {
    /* ALGORITHMS.md §10: r = 1/(s - j), tau_s = 1, tau_r = 1 - j/s, w = 1 */
    cr_assert_float_eq(gv_masked_default_knob(GV_KNOB_R, 0, 4), 0.25f, 1e-7f);
    cr_assert_float_eq(gv_masked_default_knob(GV_KNOB_R, 3, 4), 1.0f, 1e-7f);
    cr_assert_float_eq(gv_masked_default_knob(GV_KNOB_TAU_S, 2, 4), 1.0f, 1e-7f);
    cr_assert_float_eq(gv_masked_default_knob(GV_KNOB_TAU_R, 1, 4), 0.75f, 1e-7f);
    cr_assert_float_eq(gv_masked_default_knob(GV_KNOB_W, 1, 4), 1.0f, 1e-7f);
}

/* ---- the per-step hook (Co-GRPO's schedule policy plugs in here) ---- */

typedef struct hook_log {
    int calls, change_w;
    float r_of_sample[2]; /* r to write per sample; <= 0: leave the pre-filled value */
    float frac[16], conf[16], knobs_seen[16][GV_KNOB_COUNT];
    int N, steps;
} hook_log;

static gv_status record_hook(void *user, const gv_masked_config *c, int step, int j, int s,
                             const float *masked_frac, const float *mean_conf, float *knobs) {
    hook_log *h = user;
    h->calls++;
    for (int n = 0; n < c->N; ++n) {
        const int i = (int)(c->slot0 + (uint32_t)n) * h->steps + step;
        h->frac[i] = masked_frac[n];
        h->conf[i] = mean_conf[n];
        for (int q = 0; q < GV_KNOB_COUNT; ++q) h->knobs_seen[i][q] = knobs[n * GV_KNOB_COUNT + q];
        if (h->r_of_sample[c->slot0 + (uint32_t)n] > 0.0f)
            knobs[n * GV_KNOB_COUNT + GV_KNOB_R] = h->r_of_sample[c->slot0 + (uint32_t)n];
        if (h->change_w) knobs[n * GV_KNOB_COUNT + GV_KNOB_W] = 2.0f;
    }
    (void)j, (void)s;
    return GV_OK;
}

Test(masked, a_hook_that_writes_nothing_leaves_the_sampler_bit_identical) {
    enum { T = 10, V = 5, N = 2, S = 5 };
    gv_masked_config c = {.N = N, .T = T, .V = V, .mask_id = 4, .steps = S, .blocks = 1, .seed = 5,
                          .stream = GV_RNG_STREAM_SAMPLER};
    int32_t a[N * T], b[N * T], csa[N * T], csb[N * T], ca[N * S], cb[N * S];
    float la[N * T], lb[N * T], fa[N * S], fb[N * S], ma[N * S], mb[N * S];
    for (int i = 0; i < N * T; ++i) a[i] = b[i] = i % 3 == 0 ? i % 4 : 4;
    gv_masked_record ra = {.commit_step = csa, .logp = la, .commits = ca, .masked_frac = fa, .mean_conf = ma},
                     rb = {.commit_step = csb, .logp = lb, .commits = cb, .masked_frac = fb, .mean_conf = mb};
    fake f = {.T = T, .V = V, .mask_id = 4};
    hook_log h = {.N = N, .steps = S};
    gv_masked_knobs k = {.step_fn = record_hook, .step_user = &h};
    size_t sb;
    void *scr = scratch_for(&c, 0, &sb);
    cr_assert_eq(gv_masked_sample(&c, NULL, fake_logits, &f, a, &ra, scr, sb), GV_OK, "%s", gv_last_error());
    cr_assert_eq(gv_masked_sample(&c, &k, fake_logits, &f, b, &rb, scr, sb), GV_OK, "%s", gv_last_error());
    cr_assert_eq(memcmp(a, b, sizeof a), 0);
    cr_assert_eq(memcmp(csa, csb, sizeof csa), 0);
    cr_assert_eq(memcmp(la, lb, sizeof la), 0);
    cr_assert_eq(memcmp(ca, cb, sizeof ca), 0);
    cr_assert_eq(h.calls, S, "one hook call per step");
    for (int n = 0; n < N; ++n)
        for (int kk = 0; kk < S; ++kk) {
            const int i = n * S + kk;
            /* the pre-filled rows are the defaults; the masked fraction is the record's, and at
               tau_s = 1 the mean max-probability is the record's too */
            for (int q = 0; q < GV_KNOB_COUNT; ++q)
                cr_assert_eq(h.knobs_seen[i][q], gv_masked_default_knob(q, kk, S));
            cr_assert_eq(h.frac[i], fa[i]);
            cr_assert_float_eq(h.conf[i], ma[i], 1e-6f);
            cr_assert(h.conf[i] > 1.0f / 4.0f && h.conf[i] < 1.0f, "a max-probability over 4 tokens");
        }
    free(scr);
}

Test(masked, a_hook_sets_the_step_knobs_like_the_buffer_does) {
    enum { T = 9, V = 3, N = 2, S = 3 };
    gv_masked_config c = {.N = N, .T = T, .V = V, .mask_id = 2, .steps = S, .blocks = 1, .seed = 1,
                          .stream = GV_RNG_STREAM_EVAL};
    float r[N * S] = {0.25f, 0.25f, 0.25f, 1.0f, 1.0f, 1.0f};
    gv_masked_knobs kbuf = {.v = {r, NULL, NULL, NULL}};
    hook_log h = {.N = N, .steps = S, .r_of_sample = {0.25f, 1.0f}};
    gv_masked_knobs khook = {.step_fn = record_hook, .step_user = &h};
    int32_t a[N * T], b[N * T], ca[N * S], cb[N * S];
    for (int i = 0; i < N * T; ++i) a[i] = b[i] = 2;
    gv_masked_record ra = {.commits = ca}, rb = {.commits = cb};
    fake f = {.T = T, .V = V, .mask_id = 2};
    size_t sb;
    void *scr = scratch_for(&c, 0, &sb);
    cr_assert_eq(gv_masked_sample(&c, &kbuf, fake_logits, &f, a, &ra, scr, sb), GV_OK, "%s", gv_last_error());
    cr_assert_eq(gv_masked_sample(&c, &khook, fake_logits, &f, b, &rb, scr, sb), GV_OK, "%s", gv_last_error());
    cr_assert_eq(memcmp(a, b, sizeof a), 0);
    cr_assert_eq(memcmp(ca, cb, sizeof ca), 0);
    cr_assert_eq(ca[0], 2); /* floor(.25*9+.5) */
    cr_assert_eq(ca[3], 9);
    /* the features follow the state: sample 1 committed everything at step 0 */
    cr_assert_eq(h.frac[0 * S + 1], 7.0f / 9.0f);
    cr_assert_eq(h.frac[1 * S + 1], 0.0f);
    cr_assert_eq(h.conf[1 * S + 1], 0.0f, "no masked position: mean confidence 0");
    h.change_w = 1; /* w cannot be changed by the hook */
    for (int i = 0; i < N * T; ++i) b[i] = 2;
    cr_assert_eq(gv_masked_sample(&c, &khook, fake_logits, &f, b, &rb, scr, sb), GV_ERR_INVALID);
    free(scr);
}

/* gv_masked_sample_on on a CPU context of its own (separately allocated backend memory, 2 threads,
   fast paths on) is the host API bit for bit: blocks, CFG rows (w 1.5), a hook, every record. */
Test(masked, sampling_on_a_backend_context_equals_the_host_api) {
    enum { T = 12, V = 5, N = 2, S = 6 }; /* hook_log holds N * S <= 16 */
    gv_masked_config c = {.N = N, .T = T, .V = V, .mask_id = 4, .steps = S, .blocks = 2, .seed = 21,
                          .stream = GV_RNG_STREAM_SAMPLER, .addr = {.iteration = 1}};
    float w[N * S];
    for (int i = 0; i < N * S; ++i) w[i] = 1.5f;
    int32_t a[N * T], b[N * T], csa[N * T], csb[N * T], ca[N * S], cb[N * S];
    float la[N * T], lb[N * T], fa[N * S], fb[N * S], ma[N * S], mb[N * S];
    for (int i = 0; i < N * T; ++i) a[i] = b[i] = i % 4 == 1 ? i % 3 : 4;
    gv_masked_record ra = {.commit_step = csa, .logp = la, .commits = ca, .masked_frac = fa, .mean_conf = ma},
                     rb = {.commit_step = csb, .logp = lb, .commits = cb, .masked_frac = fb, .mean_conf = mb};
    fake f = {.T = T, .V = V, .mask_id = 4};
    hook_log ha = {.N = N, .steps = S}, hb = {.N = N, .steps = S};
    gv_masked_knobs ka = {.v = {[GV_KNOB_W] = w}, .step_fn = record_hook, .step_user = &ha};
    gv_masked_knobs kb = {.v = {[GV_KNOB_W] = w}, .step_fn = record_hook, .step_user = &hb};
    size_t sb;
    void *scr = scratch_for(&c, 1, &sb);
    cr_assert_eq(gv_masked_sample(&c, &ka, fake_logits, &f, a, &ra, scr, sb), GV_OK, "%s", gv_last_error());
    const gv_backend *cpu = grove_backend_cpu();
    gv_ctx_options o = {.threads = 2, .use_fast = 1};
    gv_ctx *ctx = NULL;
    cr_assert_eq(cpu->ctx_create(&o, &ctx), GV_OK, "%s", gv_last_error());
    const size_t db = gv_masked_device_bytes(&c, 1), hbytes = gv_masked_host_bytes(&c, 1);
    void *dev = NULL, *host = malloc(hbytes);
    cr_assert_eq(cpu->alloc(db, &dev), GV_OK);
    cr_assert_eq(gv_masked_sample_on(ctx, &c, &kb, fake_logits, &f, b, &rb, dev, db, host, hbytes),
                 GV_OK, "%s", gv_last_error());
    cr_assert_eq(gv_masked_sample_on(ctx, &c, &kb, fake_logits, &f, b, &rb, dev, db - 1, host, hbytes),
                 GV_ERR_INVALID, "too little device memory is refused");
    cr_assert_eq(memcmp(a, b, sizeof a), 0);
    cr_assert_eq(memcmp(csa, csb, sizeof csa), 0);
    cr_assert_eq(memcmp(la, lb, sizeof la), 0);
    cr_assert_eq(memcmp(ca, cb, sizeof ca), 0);
    cr_assert_eq(memcmp(fa, fb, sizeof fa), 0);
    cr_assert_eq(memcmp(ma, mb, sizeof ma), 0);
    cr_assert_eq(memcmp(ha.frac, hb.frac, sizeof ha.frac), 0, "the hook saw the same features");
    cr_assert_eq(memcmp(ha.conf, hb.conf, sizeof ha.conf), 0);
    for (int i = 0; i < N * T; ++i) cr_assert_neq(b[i], 4, "position %d left masked", i);
    cpu->free(dev);
    free(host);
    cpu->ctx_destroy(ctx);
    free(scr);
}
