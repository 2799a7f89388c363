/* Tests of the terminal-reward advantage (engine/train/advantage.c; ALGORITHMS.md §3, Reward and
 * Advantage): hand-computed values for group std, global std, both reward modes, masking, small and
 * zero-std groups, the clamp, group size 1 and the std epsilon. */
#include <criterion/criterion.h>
#include <math.h>

#include "grove/advantage.h"

#define NEAR(got, want) \
    cr_expect(fabs((double)(got) - (want)) <= 1e-5, "got %.7f, want %.7f", (double)(got), (double)(want))

static gv_advantage_result run(const float *r, const uint8_t *st, const double *w, const int32_t *p,
                               int n, int k, gv_advantage_opts o, float *A, uint8_t *valid,
                               gv_reward_moments *m) {
    gv_advantage_input in = {n, k, r, st, w, p};
    gv_advantage_result res;
    cr_assert_eq(gv_advantage_compute(&in, &o, A, valid, m, &res), GV_OK, "%s", gv_last_error());
    return res;
}

Test(advantage, group_std_and_zero_std_group) {
    const float r[8] = {1, 2, 3, 4, 5, 5, 5, 5};
    const int32_t p[8] = {0, 0, 0, 0, 1, 1, 1, 1};
    const double w[1] = {1};
    gv_advantage_opts o = gv_advantage_opts_default();
    o.global_std = 0;
    float A[8];
    uint8_t v[8];
    gv_reward_moments m;
    gv_advantage_result res = run(r, NULL, w, p, 8, 1, o, A, v, &m);
    const double want[4] = {-1.3415207972, -0.4471735991, 0.4471735991, 1.3415207972};
    for (int i = 0; i < 4; ++i) {
        NEAR(A[i], want[i]);
        cr_expect_eq(v[i], 1);
    }
    for (int i = 4; i < 8; ++i) {
        cr_expect_eq(A[i], 0.0f);
        cr_expect_eq(v[i], 0);
    }
    cr_expect_eq(res.n_groups, 2);
    cr_expect_eq(res.n_groups_zero, 1);
    cr_expect_eq(res.n_valid, 4);
    NEAR(m.raw_mean, 3.75); /* (1+2+3+4+4*5)/8 */
    NEAR(res.reward_mean, 3.75);
}

Test(advantage, global_std) {
    const float r[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    const int32_t p[8] = {0, 0, 0, 0, 1, 1, 1, 1};
    const double w[1] = {1};
    float A[8];
    uint8_t v[8];
    run(r, NULL, w, p, 8, 1, gv_advantage_opts_default(), A, v, NULL);
    const double want[4] = {-0.6546251005, -0.2182083668, 0.2182083668, 0.6546251005};
    for (int i = 0; i < 8; ++i) NEAR(A[i], want[i % 4]);
}

Test(advantage, reward_modes) {
    /* r1 = [1,2,3,4] (w 1), r2 = [0,0,1,1] (w 2), one group of 4. */
    const float r[8] = {1, 0, 2, 0, 3, 1, 4, 1};
    const int32_t p[4] = {7, 7, 7, 7};
    const double w[2] = {1, 2};
    gv_advantage_opts o = gv_advantage_opts_default();
    o.adv_clip = 0;
    float A[4];
    uint8_t v[4];
    gv_reward_moments m[2];
    run(r, NULL, w, p, 4, 2, o, A, v, m);
    const double stn[4] = {-1.2126193045, -0.7275715827, 0.7275715827, 1.2126193045};
    for (int i = 0; i < 4; ++i) NEAR(A[i], stn[i]);
    o.mode = GV_ADV_NORMALIZE_THEN_SUM;
    run(r, NULL, w, p, 4, 2, o, A, v, m);
    const double nts[4] = {-3.3411208772, -2.4467736791, 2.4467736791, 3.3411208772};
    for (int i = 0; i < 4; ++i) NEAR(A[i], nts[i]);
    NEAR(m[0].raw_mean, 2.5);
    NEAR(m[0].raw_std, 1.1180339887);
    NEAR(m[1].raw_mean, 0.5);
    NEAR(m[0].norm_mean, 0.0);
    NEAR(m[1].norm_std, 0.5 / 0.5001);
}

Test(advantage, masking_and_small_groups) {
    /* Group 0: sample 1 FAILED in the weighted reward, sample 2 NaN -> 2 valid left.
       Group 1: sample 5 FAILED -> 1 valid left -> dropped (small). Reward 1 has weight 0: its
       FAILED status on sample 0 does not mask. */
    const float r[12] = {1, 0, 9, 0, NAN, 0, 3, 0, 5, 0, 6, 0};
    const uint8_t st[12] = {0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0};
    const int32_t p[6] = {0, 0, 0, 0, 1, 1};
    const double w[2] = {1, 0};
    gv_advantage_opts o = gv_advantage_opts_default();
    o.global_std = 0;
    float A[6];
    uint8_t v[6];
    gv_advantage_result res = run(r, st, w, p, 6, 2, o, A, v, NULL);
    cr_expect_eq(res.n_masked, 3);
    cr_expect_eq(res.n_groups_small, 1);
    cr_expect_eq(res.n_valid, 2);
    const uint8_t want_v[6] = {1, 0, 0, 1, 0, 0};
    for (int i = 0; i < 6; ++i) cr_expect_eq(v[i], want_v[i], "valid[%d]", i);
    /* {1, 3}: mean 2, std 1 -> -+1/(1 + 1e-4) */
    NEAR(A[0], -1.0 / 1.0001);
    NEAR(A[3], 1.0 / 1.0001);
    cr_expect_eq(A[4], 0.0f);
}

Test(advantage, clamp) {
    const float r[4] = {0, 0, 0, 1};
    const int32_t p[4] = {0, 0, 0, 0};
    const double w[1] = {1};
    gv_advantage_opts o = gv_advantage_opts_default();
    o.adv_clip = 1.0;
    float A[4];
    uint8_t v[4];
    gv_advantage_result res = run(r, NULL, w, p, 4, 1, o, A, v, NULL);
    NEAR(A[0], -0.5772169666);
    NEAR(A[3], 1.0);
    cr_expect_eq(res.n_clipped, 1);
    o.adv_clip = 0;
    run(r, NULL, w, p, 4, 1, o, A, v, NULL);
    NEAR(A[3], 1.7316508999);
}

Test(advantage, group_size_one_is_global_z_score) {
    const float r[4] = {1, 2, 3, 4};
    const int32_t p[4] = {0, 1, 2, 3};
    const double w[1] = {1};
    float A[4];
    uint8_t v[4];
    gv_advantage_result res = run(r, NULL, w, p, 4, 1, gv_advantage_opts_default(), A, v, NULL);
    const double want[4] = {-1.3415207972, -0.4471735991, 0.4471735991, 1.3415207972};
    for (int i = 0; i < 4; ++i) {
        NEAR(A[i], want[i]);
        cr_expect_eq(v[i], 1);
    }
    cr_expect_eq(res.n_groups, 1);
    cr_expect_eq(res.n_groups_small, 0);
}

Test(advantage, std_epsilon_option) {
    const float r[4] = {0, 0, 0, 0.0004f};
    const int32_t p[4] = {3, 3, 3, 3};
    const double w[1] = {1};
    gv_advantage_opts o = gv_advantage_opts_default();
    float A[4];
    uint8_t v[4];
    run(r, NULL, w, p, 4, 1, o, A, v, NULL);
    NEAR(A[3], 1.0980762012);
    NEAR(A[0], -0.3660254004);
    o.std_eps = 1e-8; /* DanceGRPO */
    run(r, NULL, w, p, 4, 1, o, A, v, NULL);
    NEAR(A[3], 1.7319508133);
}

Test(advantage, bad_input) {
    const float r[1] = {1};
    const int32_t p[1] = {0};
    const double w[1] = {1};
    gv_advantage_input in = {0, 1, r, NULL, w, p};
    gv_advantage_opts o = gv_advantage_opts_default();
    float A[1];
    uint8_t v[1];
    gv_advantage_result res;
    cr_expect_eq(gv_advantage_compute(&in, &o, A, v, NULL, &res), GV_ERR_INVALID);
    in.n_samples = 1;
    o.mode = 7;
    cr_expect_eq(gv_advantage_compute(&in, &o, A, v, NULL, &res), GV_ERR_INVALID);
}

Test(advantage, masked_diffusion_centring_by_hand) {
    /* ALGORITHMS.md §10: group {1, 2, 3, 6} (mean 3), group {0, 4} (mean 2); clamp off */
    const float r[6] = {1, 2, 3, 6, 0, 4};
    const int32_t p[6] = {0, 0, 0, 0, 1, 1};
    const double w[1] = {1};
    gv_advantage_opts o = gv_advantage_opts_default();
    o.adv_clip = 0;
    float A[6];
    uint8_t v[6];
    o.center = GV_ADV_CENTER_MEAN; /* d1: r - mean_g */
    run(r, NULL, w, p, 6, 1, o, A, v, NULL);
    const double mean_want[6] = {-2, -1, 0, 3, -2, 2};
    for (int i = 0; i < 6; ++i) NEAR(A[i], mean_want[i]);
    o.center = GV_ADV_CENTER_LEAVE_ONE_OUT; /* r_i - mean of the others */
    run(r, NULL, w, p, 6, 1, o, A, v, NULL);
    const double loo_want[6] = {1 - 11.0 / 3, 2 - 10.0 / 3, 3 - 3.0, 6 - 2.0, 0 - 4.0, 4 - 0.0};
    for (int i = 0; i < 6; ++i) NEAR(A[i], loo_want[i]);
}
