/* Masked-diffusion GRPO estimators (engine/train/mdm_estimator.c, ALGORITHMS.md §10): coupled views
 * partition the completion tokens exactly (V1 and V2 complementary, V0 all), prompt positions are
 * never masked by the coupled estimators, the diffu_grpo prompt-mask rate, ℓ̂ against hand-computed
 * values from fixed logits, the aggregation weights by hand, ρ == 1 exactly before an update on a
 * tiny mdt, the gradient through estimator + clipped objective against finite differences, and the
 * direction of one small step (dL/dℓ̂ = −A·w by hand; the advantage-weighted log-prob rises).
 * trajectory: its views by hand from a commit record, and its ℓ̂ equal to the masked sampler's own
 * recorded log-probs of a real rollout (samplers/masked.c, an independent code path). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "grove/mdm.h"
#include "grove/mdm_grpo.h"
#include "grove/ops.h"
#include "grove/rng.h"
#include "samplers/masked.h"
#include "test_util.h"

/* K: the sampler steps of the trajectory estimator's synthetic record; MAXV: views per sequence */
enum { T = 16, V = 5, MASK = 4, K = 5, MAXV = 5 };

static void canvas(int N, int32_t *tok, uint8_t *comp) {
    for (int n = 0; n < N; ++n)
        for (int p = 0; p < T; ++p) {
            tok[n * T + p] = (p * 3 + n) % 4;
            comp[n * T + p] = (p + n) % 3 != 0; /* about 2/3 completion */
        }
}

Test(mdm_grpo, coupled_views_partition_the_completion_exactly) {
    enum { N = 6 };
    int32_t tok[N * T], ids[N * 3 * T], group[N] = {0, 0, 0, 1, 1, 1};
    uint8_t comp[N * T];
    float coef[N * 3 * T], t[N];
    canvas(N, tok, comp);
    for (int e = GV_MDM_EST_COUPLED; e <= GV_MDM_EST_COUPLED_PAIR; ++e) {
        const int views = gv_mdm_estimator_views(e, 0), off = e == GV_MDM_EST_COUPLED; /* V1 index */
        gv_mdm_view_args a = {.N = N, .T = T, .mask_id = MASK, .estimator = e, .prompt_mask = 0.15f,
                              .t_lo = 0.2f, .t_hi = 0.8f, .seed = 3, .stream = GV_RNG_STREAM_TRAIN,
                              .iteration = 7, .draw = 1};
        cr_assert_eq(gv_mdm_views_draw(&a, tok, comp, group, ids, coef, t), GV_OK, "%s", gv_last_error());
        cr_assert_eq(t[0], t[1]);
        cr_assert_eq(t[0], t[2], "t is shared by a group");
        cr_assert_neq(t[0], t[3], "groups draw their own t");
        int in_v1 = 0, in_v2 = 0;
        for (int n = 0; n < N; ++n) {
            cr_assert(t[n] >= 0.2f && t[n] <= 0.8f);
            for (int p = 0; p < T; ++p) {
                const int i = n * T + p;
                const int32_t *v1 = ids + ((int64_t)n * views + off) * T, *v2 = v1 + T;
                if (!comp[i]) {
                    for (int v = 0; v < views; ++v) {
                        cr_assert_eq(ids[((int64_t)n * views + v) * T + p], tok[i], "prompt masked");
                        cr_assert_eq(coef[((int64_t)n * views + v) * T + p], 0.0f);
                    }
                    continue;
                }
                const int m1 = v1[p] == MASK, m2 = v2[p] == MASK;
                cr_assert_eq(m1 + m2, 1, "sample %d pos %d: V1 %d V2 %d not complementary", n, p, m1, m2);
                in_v1 += m1, in_v2 += m2;
                const float c1 = coef[((int64_t)n * views + off) * T + p];
                const float c2 = coef[((int64_t)n * views + off + 1) * T + p];
                cr_assert_float_eq(m1 ? c1 : c2, m1 ? 0.5f / t[n] : 0.5f / (1.0f - t[n]), 1e-6f);
                cr_assert_eq(m1 ? c2 : c1, 0.0f, "an unmasked position counts");
                if (off) {
                    cr_assert_eq(ids[(int64_t)n * views * T + p], MASK, "V0 masks every completion");
                    cr_assert_eq(coef[(int64_t)n * views * T + p], 0.5f);
                }
            }
        }
        cr_assert(in_v1 > 5 && in_v2 > 5, "degenerate draw %d / %d", in_v1, in_v2);
    }
}

Test(mdm_grpo, diffu_grpo_masks_every_completion_and_some_prompt) {
    enum { N = 64 };
    int32_t *tok = malloc(N * T * sizeof(int32_t)), *ids = malloc(N * T * sizeof(int32_t));
    uint8_t *comp = malloc(N * T);
    float *coef = malloc(N * T * sizeof(float)), t[N];
    canvas(N, tok, comp);
    gv_mdm_view_args a = {.N = N, .T = T, .mask_id = MASK, .estimator = GV_MDM_EST_DIFFU_GRPO,
                          .prompt_mask = 0.15f, .seed = 1, .stream = GV_RNG_STREAM_TRAIN};
    cr_assert_eq(gv_mdm_views_draw(&a, tok, comp, NULL, ids, coef, t), GV_OK, "%s", gv_last_error());
    int prompt = 0, masked = 0;
    for (int i = 0; i < N * T; ++i) {
        if (comp[i]) {
            cr_assert_eq(ids[i], MASK);
            cr_assert_eq(coef[i], 1.0f);
        } else {
            prompt++, masked += ids[i] == MASK;
            cr_assert_eq(coef[i], 0.0f);
        }
    }
    /* Binomial(prompt ~ 340, 0.15): mean 51, sd 6.6 */
    cr_assert(masked > 25 && masked < 80, "%d of %d prompt positions masked", masked, prompt);
    /* another draw (inner epoch) gives other prompt masks */
    int32_t *ids2 = malloc(N * T * sizeof(int32_t));
    a.draw = 1;
    cr_assert_eq(gv_mdm_views_draw(&a, tok, comp, NULL, ids2, coef, t), GV_OK);
    cr_assert(memcmp(ids, ids2, N * T * sizeof(int32_t)) != 0);
    free(tok), free(ids), free(ids2), free(comp), free(coef);
}

Test(mdm_grpo, estimate_equals_hand_computed_values) {
    /* one sequence, T 2 (position 0 prompt, 1 completion), V 3 with [MASK] = 2 whose logit 50 must be
       ignored; token at position 1 is 0. View logits at position 1: l = (log 1, log 3, 50) -> ℓ = log
       1/4; V1: (log 2, log 2, 50) -> log 1/2; V2: (0, 0, 50) -> log 1/2. Coupled with t = 0.25 and the
       position in V1: ℓ̂ = ½ (log 1/4 + log(1/2) / 0.25). */
    const float L[3 * 2 * 3] = {0, 0, 0, 0.0f, logf(3.0f), 50.0f, /* V0 */
                                0, 0, 0, logf(2.0f), logf(2.0f), 50.0f, /* V1 */
                                0, 0, 0, 0.0f, 0.0f, 50.0f}; /* V2 */
    const int32_t tok[2] = {1, 0};
    const float coef[3 * 2] = {0, 0.5f, 0, 0.5f / 0.25f, 0, 0};
    float ell[2];
    gv_mdm_estimate(1, 3, 2, 3, 2, L, tok, coef, NULL, ell);
    const double want = 0.5 * (log(0.25) + log(0.5) / 0.25);
    cr_assert_float_eq(ell[1], want, 1e-6, "%g vs %g", (double)ell[1], want);
    cr_assert_eq(ell[0], 0.0f, "a prompt position has no log-prob");
    /* gradient w.r.t. the V0 logits at position 1: ½ (onehot(0) − softmax) = ½ (3/4, −3/4, 0) */
    float dl[3 * 2 * 3], dell[2] = {0, 1};
    gv_mdm_estimate_backward(1, 3, 2, 3, 2, L, tok, coef, NULL, dell, dl);
    cr_assert_float_eq(dl[3], 0.375f, 1e-6f);
    cr_assert_float_eq(dl[4], -0.375f, 1e-6f);
    cr_assert_eq(dl[5], 0.0f, "[MASK] gets no gradient");
    cr_assert_float_eq(dl[9], 2.0f * 0.5f, 1e-6f); /* V1: 2 (1 − 1/2) */
    cr_assert_eq(dl[15], 0.0f, "V2 does not count this position");
}

/* ---- the commit order (gv_mdm_order) -------------------------------------------------------- */

/* log softmax over classes 0..1 (class 2 = [MASK], excluded) of a V = 3 logit row */
static double lsm2(const float *l, int tok) {
    return (double)l[tok] - log(exp((double)l[0]) + exp((double)l[1]));
}

Test(mdm_grpo, order_logp_by_hand) {
    /* one sequence, T 3 (all completion), V 3 ([MASK] = 2), 2 steps. Step 0 draws (1, 0, 1) at
       positions 0, 1, 2 and commits position 2 then 0 (ranks 1, -, 0) at τ 0.5; step 1 (the last)
       commits position 1 (token 0): no choice there. By hand, with ℓ_kq = lsm2(logits[k][q], x):
       ℓ̂_0 = ℓ_00 + [s_0 − log(e^{s_0} + e^{s_1})] (position 2 went first),
       ℓ̂_1 = ℓ_01(draw 0) + ℓ_11(token 0), ℓ̂_2 = ℓ_02 + [s_2 − log(e^{s_0} + e^{s_1} + e^{s_2})],
       s_q = ℓ_0q / 0.5. */
    const float L[2 * 3 * 3] = {0.3f, -0.2f, 50, 1.0f, 0.1f, 50, -0.4f, 0.6f, 50, /* view 0 */
                                0.0f, 0.0f, 50, 0.7f, -0.5f, 50, 0.0f, 0.0f, 50}; /* view 1 */
    const int32_t tok[3] = {1, 0, 1}, drawn[2 * 3] = {1, 0, 1, -1, 0, -1};
    const int32_t cs[3] = {0, 1, 0}, rank[3] = {1, 0, 0};
    const float tau[2] = {0.5f, 0.25f};
    /* the views' coefficients with the order: view 0 every position, view 1 position 1 only */
    const float coef[2 * 3] = {1, 1, 1, 0, 1, 0};
    const gv_mdm_order o = {.drawn = drawn, .commit_rank = rank, .commit_step = cs, .tau_r = tau};
    float ell[3];
    gv_mdm_estimate(1, 2, 3, 3, 2, L, tok, coef, &o, ell);
    const double l00 = lsm2(L + 0, 1), l01 = lsm2(L + 3, 0), l02 = lsm2(L + 6, 1), l11 = lsm2(L + 12, 0);
    const double s0 = l00 / 0.5, s1 = l01 / 0.5, s2 = l02 / 0.5;
    const double want[3] = {l00 + s0 - log(exp(s0) + exp(s1)), l01 + l11,
                            l02 + s2 - log(exp(s0) + exp(s1) + exp(s2))};
    for (int p = 0; p < 3; ++p)
        cr_assert_float_eq(ell[p], want[p], 1e-6, "position %d: %g vs %g", p, (double)ell[p], want[p]);
    /* without the order the same coefficients would score the sequence's tokens only */
    gv_mdm_estimate(1, 2, 3, 3, 2, L, tok, coef, NULL, ell);
    cr_assert_float_eq(ell[1], lsm2(L + 3, 0) + l11, 1e-6);
}

/* The choice factors are a distribution: over all m!/(m−c)! ordered choices of c commits from m
   candidates (fixed draws), Σ exp(choice log-prob) = 1. The choice part is ℓ̂ minus ℓ̂ at τ 0 (no
   choice: the same token terms). */
Test(mdm_grpo, order_choice_probabilities_sum_to_one) {
    enum { T = 4, V = 3, K = 2 };
    float L[K * T * V];
    for (int i = 0; i < K * T * V; ++i) L[i] = i % 3 == 2 ? 50.0f : (float)sin(1.7 * i) * 1.5f;
    int32_t tok[T], drawn[K * T];
    for (int p = 0; p < T; ++p) tok[p] = drawn[p] = p % 2, drawn[T + p] = p % 2;
    float coef[K * T];
    double total = 0.0;
    int orders = 0;
    for (int a = 0; a < T; ++a)
        for (int b = 0; b < T; ++b) {
            if (a == b) continue;
            int32_t cs[T], rank[T];
            for (int p = 0; p < T; ++p) cs[p] = 1, rank[p] = 0;
            cs[a] = 0, rank[a] = 0, cs[b] = 0, rank[b] = 1; /* a first, then b, at step 0 */
            for (int p = 0; p < T; ++p) coef[p] = 1.0f, coef[T + p] = cs[p] == 1 ? 1.0f : 0.0f;
            const float tau[K] = {0.7f, 0.5f}, none[K] = {0.0f, 0.0f};
            const gv_mdm_order o = {.drawn = drawn, .commit_rank = rank, .commit_step = cs, .tau_r = tau};
            const gv_mdm_order o0 = {.drawn = drawn, .commit_rank = rank, .commit_step = cs, .tau_r = none};
            float e1[T], e0[T];
            gv_mdm_estimate(1, K, T, V, 2, L, tok, coef, &o, e1);
            gv_mdm_estimate(1, K, T, V, 2, L, tok, coef, &o0, e0);
            double choice = 0.0;
            for (int p = 0; p < T; ++p) choice += (double)e1[p] - (double)e0[p];
            total += exp(choice);
            ++orders;
        }
    cr_assert_eq(orders, 12);
    cr_assert_float_eq(total, 1.0, 1e-5, "Σ over the 12 ordered choices = %.9f", total);
}

/* The backward with an order against central differences of Σ_p dell_p ℓ̂_p. */
Test(mdm_grpo, order_backward_matches_finite_differences) {
    enum { T = 5, V = 4, K = 3 };
    float L[K * T * V], dl[K * T * V];
    for (int i = 0; i < K * T * V; ++i) L[i] = i % V == 3 ? 40.0f : (float)cos(0.9 * i + 0.3);
    /* positions 0 prompt; step 0 commits 3 then 1 of {1..4}, step 1 commits 4 of {2, 4}, step 2 (the
       last) commits 2 */
    const int32_t tok[T] = {1, 2, 0, 1, 2}, cs[T] = {-1, 0, 2, 0, 1}, rank[T] = {-1, 1, 0, 0, 0};
    int32_t drawn[K * T];
    for (int k = 0; k < K; ++k)
        for (int p = 0; p < T; ++p) drawn[k * T + p] = p && cs[p] >= k ? (p + k) % 3 : -1;
    float coef[K * T];
    for (int k = 0; k < K; ++k)
        for (int p = 0; p < T; ++p) coef[k * T + p] = p && cs[p] >= k ? 1.0f : 0.0f;
    const float tau[K] = {0.8f, 0.3f, 0.5f}, dell[T] = {0.0f, 0.7f, -1.1f, 0.4f, 1.3f};
    const gv_mdm_order o = {.drawn = drawn, .commit_rank = rank, .commit_step = cs, .tau_r = tau};
    gv_mdm_estimate_backward(1, K, T, V, 3, L, tok, coef, &o, dell, dl);
    double worst = 0.0;
    for (int i = 0; i < K * T * V; ++i) {
        if (i % V == 3) continue;
        const float keep = L[i], h = 1e-2f;
        float e[T];
        double f[2];
        for (int sgn = 0; sgn < 2; ++sgn) {
            L[i] = keep + (sgn ? -h : h);
            gv_mdm_estimate(1, K, T, V, 3, L, tok, coef, &o, e);
            f[sgn] = 0.0;
            for (int p = 0; p < T; ++p) f[sgn] += (double)dell[p] * e[p];
        }
        L[i] = keep;
        const double fd = (f[0] - f[1]) / (2.0 * h), err = fabs(fd - (double)dl[i]);
        worst = err > worst ? err : worst;
        cr_assert(err < 2e-3, "logit %d: analytic %g, finite difference %g", i, (double)dl[i], fd);
    }
    cr_log_info("order backward vs central differences: worst |Δ| %.3g", worst);
}

Test(mdm_grpo, aggregation_weights_by_hand) {
    /* 3 sequences, T 4: completion counts 2, 4, 1; advantages +1, −1, +0.5 */
    const uint8_t comp[12] = {1, 1, 0, 0, 1, 1, 1, 1, 0, 0, 1, 0};
    const float adv[3] = {1.0f, -1.0f, 0.5f};
    float w[12];
    cr_assert_eq(gv_mdm_token_weights(GV_MDM_AGG_SEQUENCE, 3, 4, comp, adv, NULL, w), GV_OK);
    cr_assert_float_eq(w[0], 1.0f / 6, 1e-7f);
    cr_assert_float_eq(w[4], 1.0f / 12, 1e-7f);
    cr_assert_float_eq(w[10], 1.0f / 3, 1e-7f);
    cr_assert_eq(w[2], 0.0f);
    cr_assert_eq(gv_mdm_token_weights(GV_MDM_AGG_TOKEN, 3, 4, comp, adv, NULL, w), GV_OK);
    cr_assert_float_eq(w[0], 1.0f / 7, 1e-7f);
    cr_assert_float_eq(w[10], 1.0f / 7, 1e-7f);
    /* balanced: positive {0, 2} 3 tokens, weight 2/3; negative {1} 4 tokens, weight 1/3 */
    cr_assert_eq(gv_mdm_token_weights(GV_MDM_AGG_BALANCED, 3, 4, comp, adv, NULL, w), GV_OK);
    cr_assert_float_eq(w[0], (2.0f / 3) / 3, 1e-7f);
    cr_assert_float_eq(w[4], (1.0f / 3) / 4, 1e-7f);
    const uint8_t valid[3] = {1, 0, 1};
    cr_assert_eq(gv_mdm_token_weights(GV_MDM_AGG_SEQUENCE, 3, 4, comp, adv, valid, w), GV_OK);
    cr_assert_eq(w[4], 0.0f);
    cr_assert_float_eq(w[0], 0.25f, 1e-7f);
}

Test(mdm_grpo, cell_advantages_by_hand) {
    /* 2 groups of 3, T 3; position 0 a given (completion 0) everywhere; solution 5 at every cell */
    const int32_t sol[18] = {5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5};
    const int32_t tok[18] = {5, 5, 5,  5, 4, 5,  5, 4, 4,   /* group 0 */
                             5, 1, 5,  5, 5, 2,  5, 5, 5};  /* group 1 (its second member invalid) */
    const uint8_t comp[18] = {0, 1, 1, 0, 1, 1, 0, 1, 1, 0, 1, 1, 0, 1, 1, 0, 1, 1};
    const uint8_t valid[6] = {1, 1, 1, 1, 0, 1};
    float a[18];
    for (int i = 0; i < 18; ++i) a[i] = 99.0f;
    gv_mdm_cell_advantages(6, 3, 3, tok, sol, comp, valid, a);
    /* group 0, cell 1: right 1 of 3 -> +2/3, -1/3, -1/3; cell 2: right 2 of 3 -> +1/3, +1/3, -2/3 */
    cr_assert_float_eq(a[1], 2.0f / 3, 1e-7f);
    cr_assert_float_eq(a[4], -1.0f / 3, 1e-7f);
    cr_assert_float_eq(a[7], -1.0f / 3, 1e-7f);
    cr_assert_float_eq(a[2], 1.0f / 3, 1e-7f);
    cr_assert_float_eq(a[8], -2.0f / 3, 1e-7f);
    /* group 1: the invalid member counts for nothing and gets 0; cell 1 right 1 of 2 -> -1/2, +1/2;
       cell 2 both right -> 0 */
    cr_assert_float_eq(a[10], -0.5f, 1e-7f);
    cr_assert_float_eq(a[16], 0.5f, 1e-7f);
    cr_assert_eq(a[13], 0.0f);
    cr_assert_eq(a[14], 0.0f);
    cr_assert_eq(a[11], 0.0f);
    cr_assert_eq(a[17], 0.0f);
    for (int n = 0; n < 6; ++n) cr_assert_eq(a[n * 3], 0.0f, "a given has no advantage");
}

/* ---- on a tiny mdt ------------------------------------------------------------------------- */

typedef struct fix {
    gv_ctx *ctx;
    gv_image_model m;
    gv_mdm_policy pol;
    int N, views;
    int32_t tok[4 * T], ids[4 * MAXV * T], commit[4 * T];
    uint8_t comp[4 * T];
    float coef[4 * MAXV * T], t[4], dell[4 * T], ell[4 * T];
} fix;

static void fix_setup(fix *f, int estimator) {
    memset(f, 0, sizeof *f);
    f->ctx = tu_make_ctx(1, 0);
    gv_mdt_config cfg = {.vocab_size = V, .seq_len = T, .layers = 1, .width = 8, .heads = 2,
                         .mlp_mult = 2, .norm_eps = 1e-5f, .zero_init_out = 0};
    cr_assert_eq(gv_image_model_create(&f->m, GV_MODEL_MDT, &cfg, grove_backend_cpu(), 0), GV_OK, "%s",
                 gv_last_error());
    cr_assert_eq(gv_params_initialize(&f->m.params, 5), GV_OK);
    /* O(0.2) perturbations: the 0.02-scale embeddings alone make finite differences meaningless */
    gv_params *ps = &f->m.params;
    float *h = malloc((size_t)ps->total * sizeof(float));
    cr_assert(h);
    tu_get(h, ps->values, (size_t)ps->total * sizeof(float));
    uint64_t st = 17;
    for (int64_t i = 0; i < ps->total; ++i) h[i] += 0.2f * tu_rand_sym(&st);
    tu_put(ps->values, h, (size_t)ps->total * sizeof(float));
    free(h);
    f->N = 4;
    f->views = gv_mdm_estimator_views(estimator, K);
    canvas(f->N, f->tok, f->comp);
    /* a synthetic sampler record for trajectory: every step commits something */
    for (int i = 0; i < f->N * T; ++i) f->commit[i] = f->comp[i] ? (i * 7 + i / T) % K : -1;
    gv_mdm_view_args a = {.N = f->N, .T = T, .mask_id = MASK, .estimator = estimator,
                          .prompt_mask = 0.15f, .t_lo = 0.2f, .t_hi = 0.8f, .seed = 2,
                          .stream = GV_RNG_STREAM_TRAIN, .steps = K, .commit_step = f->commit};
    cr_assert_eq(gv_mdm_views_draw(&a, f->tok, f->comp, NULL, f->ids, f->coef, f->t), GV_OK);
    cr_assert_eq(gv_mdm_policy_init(&f->pol, &f->m, f->ctx, f->N, f->views, MASK), GV_OK, "%s",
                 gv_last_error());
}

static void fix_teardown(fix *f) {
    gv_mdm_policy_free(&f->pol);
    gv_image_model_free(&f->m);
    grove_backend_cpu()->ctx_destroy(f->ctx);
}

Test(mdm_grpo, ratio_is_exactly_one_before_the_first_update) {
    for (int e = 0; e < GV_MDM_EST_COUNT; ++e) {
        fix f;
        fix_setup(&f, e);
        float old[4 * T], ref[4 * T], w[4 * T], dell[4 * T], stats[GV_GRPO_STATS], loss;
        const float adv[4] = {1.0f, -0.5f, 0.25f, 0.75f};
        cr_assert_eq(gv_mdm_policy_logp(&f.pol, f.m.params.values, f.N, f.ids, f.tok, f.coef, NULL, old), GV_OK);
        memcpy(ref, old, sizeof ref);
        cr_assert_eq(gv_mdm_token_weights(GV_MDM_AGG_SEQUENCE, f.N, T, f.comp, adv, NULL, w), GV_OK);
        cr_assert_eq(gv_mdm_policy_logp(&f.pol, f.m.params.values, f.N, f.ids, f.tok, f.coef, NULL, f.ell), GV_OK);
        int units = 0;
        gv_mdm_loss_args la = {.clip_eps = 0.2f, .beta = 0.04f};
        cr_assert_eq(gv_mdm_grpo_loss(&f.pol, f.N, f.ell, old, ref, adv, w, &la, dell, &loss, stats, &units),
                     GV_OK, "%s", gv_last_error());
        cr_assert(units > 10);
        cr_assert_eq(stats[GV_GRPO_STAT_RATIO_MIN], 1.0f, "%s: min ratio %.9g", gv_mdm_estimator_names[e],
                     (double)stats[GV_GRPO_STAT_RATIO_MIN]);
        cr_assert_eq(stats[GV_GRPO_STAT_RATIO_MAX], 1.0f, "%s: max ratio %.9g", gv_mdm_estimator_names[e],
                     (double)stats[GV_GRPO_STAT_RATIO_MAX]);
        cr_assert_eq(stats[GV_GRPO_STAT_KL_MEAN], 0.0f);
        /* at ρ == 1 the loss is −Σ w A (sequence weights sum to 1 per sequence / N) */
        cr_assert_float_eq(loss, -(1.0f - 0.5f + 0.25f + 0.75f) / 4.0f, 1e-6f);
        fix_teardown(&f);
    }
}

/* loss(θ) = Σ dell · ℓ̂(θ) */
static double est_loss(fix *f) {
    cr_assert_eq(gv_mdm_policy_logp(&f->pol, f->m.params.values, f->N, f->ids, f->tok, f->coef, NULL, f->ell),
                 GV_OK);
    double s = 0.0;
    for (int i = 0; i < f->N * T; ++i) s += (double)f->dell[i] * f->ell[i];
    return s;
}

Test(mdm_grpo, gradient_through_the_estimator_matches_finite_differences) {
    static const int kinds[] = {GV_MDM_EST_DIFFU_GRPO, GV_MDM_EST_COUPLED, GV_MDM_EST_COUPLED_PAIR,
                                GV_MDM_EST_TRAJECTORY};
    for (size_t ki = 0; ki < sizeof kinds / sizeof kinds[0]; ++ki) {
        const int e = kinds[ki];
        fix f;
        fix_setup(&f, e);
        uint64_t st = 99;
        for (int i = 0; i < f.N * T; ++i) f.dell[i] = tu_rand_sym(&st);
        gv_params *ps = &f.m.params;
        cr_assert_eq(gv_params_zero_grads(ps), GV_OK);
        est_loss(&f);
        cr_assert_eq(gv_mdm_policy_backward(&f.pol, ps->values, ps->grads, f.dell), GV_OK, "%s",
                     gv_last_error());
        float *g = malloc((size_t)ps->total * sizeof(float)), *x = malloc((size_t)ps->total * sizeof(float));
        tu_get(g, ps->grads, (size_t)ps->total * sizeof(float));
        tu_get(x, ps->values, (size_t)ps->total * sizeof(float));
        const char *names[] = {"mdt.tok_emb.weight", "mdt.layer0.q.weight", "mdt.layer0.fc1.weight",
                               "mdt.head.weight", "mdt.head.bias", "mdt.ln_f.weight"};
        int checked = 0, bad = 0;
        for (size_t k = 0; k < sizeof names / sizeof names[0]; ++k) {
            gv_param *p = gv_params_find(ps, names[k]);
            cr_assert(p);
            for (int j = 0; j < 4; ++j) {
                const int64_t i = p->offset + (j * 7 + 1) % p->numel;
                const float h = 1e-2f, x0 = x[i];
                x[i] = x0 + h;
                tu_put(ps->values, x, (size_t)ps->total * sizeof(float));
                const double lp = est_loss(&f);
                x[i] = x0 - h;
                tu_put(ps->values, x, (size_t)ps->total * sizeof(float));
                const double lm = est_loss(&f);
                x[i] = x0;
                tu_put(ps->values, x, (size_t)ps->total * sizeof(float));
                const double fd = (lp - lm) / (2.0 * h);
                const double err = fabs(fd - g[i]);
                ++checked;
                if (err > 2e-2 * fmax(1.0, fabs(fd))) {
                    ++bad;
                    cr_log_error("%s %s[%lld]: analytic %g, fd %g", gv_mdm_estimator_names[e], names[k],
                                 (long long)(i - p->offset), (double)g[i], fd);
                }
            }
        }
        cr_assert_eq(bad, 0, "%s: %d of %d gradient entries disagree", gv_mdm_estimator_names[e], bad,
                     checked);
        free(g), free(x);
        fix_teardown(&f);
    }
}

/* The direction of the θ update (issue #8's question "does the update follow the advantage?"):
   at ρ = 1 (and ℓ̂ = ℓ̂_ref, so the KL term has no gradient) dL/dℓ̂ is −A_n·w_p by hand, and one
   small step θ − η∇L raises the advantage-weighted log-prob J = Σ A_n w_p ℓ̂_p by η|∇L|² to first
   order (a finite difference on J, for every estimator). A flipped sign anywhere between the
   objective and the parameters makes ΔJ negative. */
Test(mdm_grpo, one_small_step_raises_the_advantage_weighted_log_prob) {
    for (int e = 0; e < GV_MDM_EST_COUNT; ++e) {
        fix f;
        fix_setup(&f, e);
        gv_params *ps = &f.m.params;
        float old[4 * T], w[4 * T], dell[4 * T], stats[GV_GRPO_STATS], loss;
        const float adv[4] = {1.0f, -1.0f, 0.5f, -0.25f};
        cr_assert_eq(gv_mdm_policy_logp(&f.pol, ps->values, f.N, f.ids, f.tok, f.coef, NULL, old), GV_OK);
        cr_assert_eq(gv_mdm_token_weights(GV_MDM_AGG_SEQUENCE, f.N, T, f.comp, adv, NULL, w), GV_OK);
        cr_assert_eq(gv_params_zero_grads(ps), GV_OK);
        cr_assert_eq(gv_mdm_policy_logp(&f.pol, ps->values, f.N, f.ids, f.tok, f.coef, NULL, f.ell), GV_OK);
        int units = 0;
        gv_mdm_loss_args la = {.clip_eps = 0.2f, .beta = 0.04f};
        cr_assert_eq(gv_mdm_grpo_loss(&f.pol, f.N, f.ell, old, old, adv, w, &la, dell, &loss, stats, &units),
                     GV_OK, "%s", gv_last_error());
        double J0 = 0.0;
        for (int i = 0; i < f.N * T; ++i) {
            cr_assert_float_eq(dell[i], -adv[i / T] * w[i], 1e-7f, "%s: dL/dl[%d] = %g, -A w = %g",
                               gv_mdm_estimator_names[e], i, (double)dell[i], (double)(-adv[i / T] * w[i]));
            J0 += (double)adv[i / T] * w[i] * f.ell[i];
        }
        cr_assert_eq(gv_mdm_policy_backward(&f.pol, ps->values, ps->grads, dell), GV_OK, "%s", gv_last_error());
        float *g = malloc((size_t)ps->total * sizeof(float)), *x = malloc((size_t)ps->total * sizeof(float));
        tu_get(g, ps->grads, (size_t)ps->total * sizeof(float));
        tu_get(x, ps->values, (size_t)ps->total * sizeof(float));
        double g2 = 0.0;
        for (int64_t i = 0; i < ps->total; ++i) g2 += (double)g[i] * g[i];
        cr_assert(g2 > 0.0);
        const double eta = 1e-3 / sqrt(g2); /* a step of length 1e-3 */
        for (int64_t i = 0; i < ps->total; ++i) x[i] -= (float)(eta * g[i]);
        tu_put(ps->values, x, (size_t)ps->total * sizeof(float));
        cr_assert_eq(gv_mdm_policy_logp(&f.pol, ps->values, f.N, f.ids, f.tok, f.coef, NULL, f.ell), GV_OK);
        double J1 = 0.0;
        for (int i = 0; i < f.N * T; ++i) J1 += (double)adv[i / T] * w[i] * f.ell[i];
        const double want = eta * g2, got = J1 - J0;
        cr_assert(got > 0.0 && fabs(got - want) < 0.2 * want, "%s: ΔJ %g, first order η|g|² %g",
                  gv_mdm_estimator_names[e], got, want);
        free(g), free(x);
        fix_teardown(&f);
    }
}

/* credit cell: token_adv replaces the sequence advantage per token — at ρ = 1 with ref = old (no KL
   gradient) dL/dℓ̂ = −A_token·w exactly, whatever the per-sequence adv says */
Test(mdm_grpo, token_advantages_replace_the_sequence_advantage) {
    fix f;
    fix_setup(&f, GV_MDM_EST_DIFFU_GRPO);
    float old[4 * T], w[4 * T], dell[4 * T], tadv[4 * T], stats[GV_GRPO_STATS], loss;
    const float adv[4] = {1.0f, 1.0f, 1.0f, 1.0f};
    for (int i = 0; i < 4 * T; ++i) tadv[i] = (float)((i % 5) - 2) * 0.25f; /* −0.5 … +0.5 */
    cr_assert_eq(gv_mdm_policy_logp(&f.pol, f.m.params.values, f.N, f.ids, f.tok, f.coef, NULL, old), GV_OK);
    cr_assert_eq(gv_mdm_token_weights(GV_MDM_AGG_TOKEN, f.N, T, f.comp, adv, NULL, w), GV_OK);
    int units = 0;
    gv_mdm_loss_args la = {.clip_eps = 0.2f, .beta = 0.04f, .token_adv = tadv};
    cr_assert_eq(gv_mdm_grpo_loss(&f.pol, f.N, old, old, old, adv, w, &la, dell, &loss, stats, &units), GV_OK,
                 "%s", gv_last_error());
    int nonzero = 0;
    for (int i = 0; i < f.N * T; ++i) {
        cr_assert_float_eq(dell[i], -tadv[i] * w[i], 1e-7f, "dL/dl[%d] = %g, -A_token w = %g", i,
                           (double)dell[i], (double)(-tadv[i] * w[i]));
        nonzero += w[i] > 0.0f && tadv[i] != 0.0f;
    }
    cr_assert(nonzero > 0);
    fix_teardown(&f);
}

/* ---- trajectory: the rollout's own canvases ---------------------------------------------------- */

Test(mdm_grpo, trajectory_views_are_the_rollout_canvases_by_hand) {
    /* T 6: positions 0, 3 prompt; completion 1, 2, 4, 5 committed at steps 2, 0, 1, 2 of K 3 */
    enum { TT = 6, KK = 3, M = 9 };
    const int32_t tok[TT] = {1, 0, 3, 2, 1, 2}, commit[TT] = {-1, 2, 0, -1, 1, 2};
    const uint8_t comp[TT] = {0, 1, 1, 0, 1, 1};
    const int32_t want_ids[KK][TT] = {{1, M, M, 2, M, M}, {1, M, 3, 2, M, M}, {1, M, 3, 2, 1, M}};
    const float want_coef[KK][TT] = {{0, 0, 1, 0, 0, 0}, {0, 0, 0, 0, 1, 0}, {0, 1, 0, 0, 0, 1}};
    int32_t ids[KK * TT];
    float coef[KK * TT], t;
    cr_assert_eq(gv_mdm_estimator_views(GV_MDM_EST_TRAJECTORY, KK), KK);
    gv_mdm_view_args a = {.N = 1, .T = TT, .mask_id = M, .estimator = GV_MDM_EST_TRAJECTORY, .steps = KK,
                          .commit_step = commit};
    cr_assert_eq(gv_mdm_views_draw(&a, tok, comp, NULL, ids, coef, &t), GV_OK, "%s", gv_last_error());
    for (int k = 0; k < KK; ++k)
        for (int p = 0; p < TT; ++p) {
            cr_assert_eq(ids[k * TT + p], want_ids[k][p], "view %d position %d: id %d, want %d", k, p,
                         ids[k * TT + p], want_ids[k][p]);
            cr_assert_eq(coef[k * TT + p], want_coef[k][p], "view %d position %d: coef", k, p);
        }
    cr_assert(isnan(t));
    /* a completion position outside [0, K) (never committed) and a missing record are refused */
    const int32_t bad[TT] = {-1, 2, 0, -1, 3, 2};
    a.commit_step = bad;
    cr_assert_eq(gv_mdm_views_draw(&a, tok, comp, NULL, ids, coef, &t), GV_ERR_INVALID);
    cr_assert(strstr(gv_last_error(), "position 4"), "%s", gv_last_error());
    a.commit_step = NULL;
    cr_assert_eq(gv_mdm_views_draw(&a, tok, comp, NULL, ids, coef, &t), GV_ERR_INVALID);
}

/* The trajectory estimator against an independent code path: roll out with the masked sampler
   (its record: per position the commit step and log p_τs of the committed token, τ_s = 1 by
   default), rebuild the views from the record alone, and ℓ̂ with the rollout's weights equals the
   sampler's recorded log-prob of every completion token. A view built from the wrong canvas
   (commit_step <= k shown, the token itself visible) breaks the equality. */
Test(mdm_grpo, trajectory_log_probs_equal_the_samplers_record) {
    fix f;
    fix_setup(&f, GV_MDM_EST_TRAJECTORY);
    int32_t x[4 * T], commit[4 * T];
    float rec_logp[4 * T];
    for (int i = 0; i < f.N * T; ++i) x[i] = f.comp[i] ? MASK : f.tok[i];
    gv_masked_config mc = {.N = f.N, .T = T, .V = V, .mask_id = MASK, .steps = K, .blocks = 1, .seed = 11,
                           .stream = GV_RNG_STREAM_SAMPLER,
                           .addr = {.iteration = 3, .purpose = GV_RNG_PURPOSE_MASK_UNIFORM}};
    gv_mdm_runner r;
    cr_assert_eq(gv_mdm_runner_init(&r, &f.m, f.ctx, f.N), GV_OK, "%s", gv_last_error());
    const size_t sb = gv_masked_scratch_bytes(&mc, 0);
    void *scratch = malloc(sb);
    gv_masked_record rec = {.commit_step = commit, .logp = rec_logp};
    cr_assert_eq(gv_masked_sample(&mc, NULL, gv_mdm_logits, &r, x, &rec, scratch, sb), GV_OK, "%s",
                 gv_last_error());
    int per_step[K] = {0};
    for (int i = 0; i < f.N * T; ++i)
        if (f.comp[i]) {
            cr_assert(commit[i] >= 0 && commit[i] < K);
            per_step[commit[i]]++;
        }
    for (int k = 0; k < K; ++k) cr_assert(per_step[k] > 0, "step %d committed nothing", k);
    gv_mdm_view_args a = {.N = f.N, .T = T, .mask_id = MASK, .estimator = GV_MDM_EST_TRAJECTORY,
                          .steps = K, .commit_step = commit};
    cr_assert_eq(gv_mdm_views_draw(&a, x, f.comp, NULL, f.ids, f.coef, f.t), GV_OK, "%s", gv_last_error());
    cr_assert_eq(gv_mdm_policy_logp(&f.pol, f.m.params.values, f.N, f.ids, x, f.coef, NULL, f.ell), GV_OK, "%s",
                 gv_last_error());
    double worst = 0.0, lo = 0.0;
    for (int i = 0; i < f.N * T; ++i) {
        if (!f.comp[i]) {
            cr_assert_eq(f.ell[i], 0.0f);
            continue;
        }
        worst = fmax(worst, fabs((double)f.ell[i] - rec_logp[i]));
        lo = fmin(lo, rec_logp[i]);
    }
    cr_log_info("trajectory vs sampler record: max |Δ| %.3g, lowest log p %.3f", worst, lo);
    cr_assert(lo < -0.3, "degenerate: every committed token near-certain (lowest log p %g)", lo);
    cr_assert(worst < 2e-6, "trajectory ℓ̂ differs from the sampler's record by %g", worst);
    free(scratch);
    gv_mdm_runner_free(&r);
    fix_teardown(&f);
}
