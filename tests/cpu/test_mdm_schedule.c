/* Co-GRPO's schedule policy (engine/train/mdm_schedule.c, ALGORITHMS.md §10) on the masked sampler
 * with synthetic logits (no network, so θ is frozen by construction): the zero-initialized head
 * gives exactly the hand-made schedule (the sampler's output is bit-identical to the no-hook run),
 * σ's decay, which knobs act at a block's last step, log π against the Gaussian density by hand and
 * ρ == 1 before an update, the φ gradient against finite differences, and φ moving toward the
 * schedule a constructed reward prefers. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "grove/advantage.h"
#include "grove/mdm_schedule.h"

enum { T = 12, V = 4, MASK = 3 };

/* logits that depend on the position and the canvas (so features vary) */
static gv_status toy_logits(void *user, int rows, const int32_t *tokens, float *logits) {
    (void)user;
    for (int r = 0; r < rows; ++r) {
        int filled = 0;
        for (int p = 0; p < T; ++p) filled += tokens[r * T + p] != MASK;
        for (int p = 0; p < T; ++p)
            for (int v = 0; v < V; ++v)
                logits[((int64_t)r * T + p) * V + v] =
                    v == MASK ? 0.0f : 0.4f * (float)((p * 5 + v * 3) % 4) + (v == p % 3 ? 0.15f * (float)filled : 0.0f);
    }
    return GV_OK;
}

static gv_schedule_config cfg_of(int steps, int blocks) {
    gv_schedule_config c = {.learned = {1, 1, 1, 0}, .steps = steps, .blocks = blocks, .hidden = 8,
                            .seed = 11, .lr = 0.05f, .weight_decay = 0.0f, .clip_range = 0.2f,
                            .sigma_decay_iterations = 10};
    return c;
}

static void fresh_canvas(int32_t *tok, int N) {
    for (int i = 0; i < N * T; ++i) tok[i] = (i % 5 == 0) ? i % 3 : MASK;
}

static void run_sampler(gv_schedule *p, int N, int steps, int blocks, int64_t it, int32_t *tok,
                        int32_t *commits) {
    gv_masked_config c = {.N = N, .T = T, .V = V, .mask_id = MASK, .steps = steps, .blocks = blocks,
                          .seed = 3, .stream = GV_RNG_STREAM_SAMPLER, .addr = {.iteration = (uint32_t)it}};
    gv_masked_knobs k = {.step_fn = gv_schedule_hook, .step_user = p};
    gv_masked_record rec = {.commits = commits};
    size_t sb = gv_masked_scratch_bytes(&c, 0);
    void *scr = malloc(sb);
    cr_assert_eq(gv_masked_sample(&c, p ? &k : NULL, toy_logits, NULL, tok, &rec, scr, sb), GV_OK, "%s",
                 gv_last_error());
    free(scr);
}

/* An unlearned knob that the sampler holds fixed (sampler.tau_r) is reported at its fixed value,
   the learned ones and the other defaults unchanged: the exported schedule is the one sampled. */
Test(mdm_schedule, mean_knobs_report_a_held_knob) {
    enum { S = 6, B = 2 };
    gv_schedule_config c = cfg_of(S, B);
    c.learned[GV_KNOB_TAU_R] = 0;
    gv_schedule p;
    cr_assert_eq(gv_schedule_create(&c, &p), GV_OK, "%s", gv_last_error());
    float *b2 = gv_params_find(&p.phi, "b2")->value; /* move the learned knobs off their defaults */
    for (int i = 0; i < p.K; ++i) b2[i] = 0.3f * (float)(i + 1);
    const gv_masked_knobs held = {.fixed_mask = 1u << GV_KNOB_TAU_R, .fixed[GV_KNOB_TAU_R] = 0.375f};
    for (int k = 0; k < S; ++k) {
        float free_kn[GV_KNOB_COUNT], held_kn[GV_KNOB_COUNT];
        gv_schedule_mean_knobs(&p, NULL, k, 0.5f, 0.7f, free_kn);
        gv_schedule_mean_knobs(&p, &held, k, 0.5f, 0.7f, held_kn);
        const int j = k % (S / B);
        cr_expect_eq(free_kn[GV_KNOB_TAU_R], gv_masked_default_knob(GV_KNOB_TAU_R, j, S / B));
        cr_expect_eq(held_kn[GV_KNOB_TAU_R], 0.375f, "step %d", k);
        for (int q = 0; q < GV_KNOB_COUNT; ++q)
            if (q != GV_KNOB_TAU_R) cr_expect_eq(held_kn[q], free_kn[q], "step %d knob %s", k, gv_knob_names[q]);
        if (j < S / B - 1) /* a block's last step has no action */
            cr_expect_neq(held_kn[GV_KNOB_R], gv_masked_default_knob(GV_KNOB_R, j, S / B), "step %d", k);
    }
    gv_schedule_free(&p);
}

Test(mdm_schedule, zero_init_head_gives_the_defaults_exactly) {
    enum { N = 3, S = 6, B = 2 };
    gv_schedule p;
    cr_assert_eq(gv_schedule_create(&(gv_schedule_config){0}, &p), GV_ERR_INVALID);
    gv_schedule_config c = cfg_of(S, B);
    cr_assert_eq(gv_schedule_create(&c, &p), GV_OK, "%s", gv_last_error());
    for (int k = 0; k < S; ++k)
        for (int f = 0; f < 4; ++f) {
            float kn[GV_KNOB_COUNT];
            gv_schedule_mean_knobs(&p, NULL, k, 0.25f * (float)f, 0.9f - 0.2f * (float)f, kn);
            for (int q = 0; q < GV_KNOB_COUNT; ++q)
                cr_assert_eq(kn[q], gv_masked_default_knob(q, k % (S / B), S / B), "step %d knob %s: %.9g",
                             k, gv_knob_names[q], (double)kn[q]);
        }
    int32_t a[N * T], b[N * T], ca[N * S], cb[N * S];
    fresh_canvas(a, N), fresh_canvas(b, N);
    run_sampler(NULL, N, S, B, 0, a, ca);
    cr_assert_eq(gv_schedule_begin(&p, N, 0, 1), GV_OK);
    run_sampler(&p, N, S, B, 0, b, cb);
    cr_assert_eq(memcmp(a, b, sizeof a), 0, "the mean schedule at init must equal the defaults");
    cr_assert_eq(memcmp(ca, cb, sizeof ca), 0);
    gv_schedule_free(&p);
}

Test(mdm_schedule, sigma_decays_linearly_from_0_6_to_0_1) {
    cr_assert_float_eq(gv_schedule_sigma(0, 10), 0.6f, 1e-7f);
    cr_assert_float_eq(gv_schedule_sigma(5, 10), 0.35f, 1e-7f);
    cr_assert_float_eq(gv_schedule_sigma(10, 10), 0.1f, 1e-7f);
    cr_assert_float_eq(gv_schedule_sigma(99, 10), 0.1f, 1e-7f);
    for (int q = 0; q < 3; ++q) /* the squashes invert */
        cr_assert_float_eq(gv_schedule_squash(q, gv_schedule_unsquash(q, 0.3)), 0.3, 1e-12);
}

Test(mdm_schedule, log_prob_is_the_gaussian_density_of_the_acted_knobs_and_ratio_is_one) {
    enum { N = 4, S = 4, B = 2 };
    gv_schedule p;
    gv_schedule_config c = cfg_of(S, B);
    cr_assert_eq(gv_schedule_create(&c, &p), GV_OK, "%s", gv_last_error());
    cr_assert_eq(gv_schedule_begin(&p, N, 4, 0), GV_OK);
    cr_assert_float_eq(p.sigma, 0.4f, 1e-7f);
    int32_t tok[N * T], cm[N * S];
    fresh_canvas(tok, N);
    run_sampler(&p, N, S, B, 4, tok, cm);
    for (int n = 0; n < N; ++n)
        for (int k = 0; k < S; ++k) {
            const int64_t u = (int64_t)n * S + k;
            const int last = k % (S / B) == S / B - 1;
            /* r and tau_r have no action at a block's last step; tau_s always */
            cr_assert_eq(p.acted[u * 3 + 0], !last);
            cr_assert_eq(p.acted[u * 3 + 1], 1);
            cr_assert_eq(p.acted[u * 3 + 2], !last);
            double want = 0.0; /* μ = 0 at init */
            for (int i = 0; i < 3; ++i)
                if (p.acted[u * 3 + i]) {
                    const double z = p.act[u * 3 + i] / 0.4;
                    want += -0.5 * z * z - log(0.4) - 0.5 * log(2.0 * M_PI);
                }
            cr_assert_float_eq(p.logp_old[u], (float)want, 1e-5f);
            cr_assert_float_eq(gv_schedule_logp(&p, n, k), p.logp_old[u], 1e-5);
        }
    const float adv[N] = {1.0f, -1.0f, 0.5f, -0.5f};
    double loss, ratio;
    cr_assert_eq(gv_schedule_loss(&p, adv, &loss, &ratio), GV_OK);
    cr_assert_eq(ratio, 1.0, "ratio %.17g before any update", ratio);
    gv_schedule_free(&p);
}

Test(mdm_schedule, phi_gradient_matches_finite_differences) {
    enum { N = 3, S = 4, B = 1 };
    gv_schedule p;
    gv_schedule_config c = cfg_of(S, B);
    c.clip_range = 10.0f; /* keep away from the clip's kinks */
    cr_assert_eq(gv_schedule_create(&c, &p), GV_OK, "%s", gv_last_error());
    cr_assert_eq(gv_schedule_begin(&p, N, 2, 0), GV_OK);
    int32_t tok[N * T], cm[N * S];
    fresh_canvas(tok, N);
    run_sampler(&p, N, S, B, 2, tok, cm);
    /* move off the zero head so every parameter has a gradient */
    float *vals = p.phi.values;
    for (int64_t i = 0; i < p.phi.total; ++i) vals[i] += 0.05f * (float)sin(1.7 * (double)i);
    const float adv[N] = {1.2f, -0.7f, 0.4f};
    double L0;
    cr_assert_eq(gv_schedule_loss(&p, adv, &L0, NULL), GV_OK);
    float *grad = malloc((size_t)p.phi.total * sizeof(float));
    memcpy(grad, p.phi.grads, (size_t)p.phi.total * sizeof(float));
    int checked = 0;
    for (int it = 0; it < p.phi.count; ++it) {
        gv_param *pp = &p.phi.items[it];
        for (int64_t e = 0; e < pp->numel; e += 1 + pp->numel / 7) {
            const float keep = pp->value[e];
            const float h = 1e-2f;
            double Lp, Lm;
            pp->value[e] = keep + h;
            cr_assert_eq(gv_schedule_loss(&p, adv, &Lp, NULL), GV_OK);
            pp->value[e] = keep - h;
            cr_assert_eq(gv_schedule_loss(&p, adv, &Lm, NULL), GV_OK);
            pp->value[e] = keep;
            const double fd = (Lp - Lm) / (2.0 * ((double)(keep + h) - (double)keep));
            const double an = grad[pp->offset + e];
            cr_assert(fabs(fd - an) <= 2e-3 * (1.0 + fabs(fd)), "%s[%lld]: fd %.6g analytic %.6g", pp->name,
                      (long long)e, fd, an);
            ++checked;
        }
    }
    cr_assert(checked > 10);
    free(grad);
    gv_schedule_free(&p);
}

Test(mdm_schedule, phi_moves_toward_the_schedule_a_constructed_reward_prefers) {
    /* reward = positions committed at the first step (prefers a larger r_0, default 1/4); the
       logits are fixed (θ frozen); group z-score advantages over the 8 samples of one canvas */
    enum { N = 8, S = 4, B = 1 };
    gv_schedule p;
    gv_schedule_config c = cfg_of(S, B);
    c.sigma_decay_iterations = 40;
    cr_assert_eq(gv_schedule_create(&c, &p), GV_OK, "%s", gv_last_error());
    float before[GV_KNOB_COUNT], after[GV_KNOB_COUNT];
    gv_schedule_mean_knobs(&p, NULL, 0, 1.0f, 0.5f, before);
    for (int it = 0; it < 40; ++it) {
        cr_assert_eq(gv_schedule_begin(&p, N, it, 0), GV_OK);
        int32_t tok[N * T], cm[N * S];
        fresh_canvas(tok, N);
        run_sampler(&p, N, S, B, it, tok, cm);
        float rew[N], adv[N];
        double mean = 0.0, var = 0.0;
        for (int n = 0; n < N; ++n) mean += rew[n] = (float)cm[n * S];
        mean /= N;
        for (int n = 0; n < N; ++n) var += (rew[n] - mean) * (rew[n] - mean);
        const double sd = sqrt(var / N);
        for (int n = 0; n < N; ++n) adv[n] = (float)((rew[n] - mean) / (sd + 1e-4));
        for (int e = 0; e < 2; ++e) cr_assert_eq(gv_schedule_update(&p, adv, NULL, NULL), GV_OK);
    }
    gv_schedule_mean_knobs(&p, NULL, 0, 1.0f, 0.5f, after);
    cr_assert_eq(before[GV_KNOB_R], 0.25f);
    cr_assert(after[GV_KNOB_R] > 0.4f, "r_0 %.4f -> %.4f: expected a clear rise", (double)before[GV_KNOB_R],
              (double)after[GV_KNOB_R]);
    gv_schedule_free(&p);
}
