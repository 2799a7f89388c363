/* Tests of DenseGRPO's psi(i) calibration rule (engine/train/noise_calibration.c; ALGORITHMS.md
 * §5) on constructed gain tables: psi0 is the flow_grpo s(i) of §2's check numbers, a balanced
 * step moves up by (1 + eps2), a one-sided step down by (1 - eps2), the threshold eps1 sqrt(n)
 * is inclusive, ties and invalid gains are not counted, n < 8 leaves psi alone, and psi never
 * leaves [0.05 psi0, 3 psi0]. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "grove/credit.h"
#include "grove/noise_calibration.h"
#include "samplers/schedule.h"

#define ASSERT_OK(expr) cr_assert_eq((expr), GV_OK, "%s", gv_last_error())

enum { N = 10, S = 64 };

static void init10(gv_psi_calibration *c, int rounds) {
    float sigmas[N + 1];
    ASSERT_OK(gv_schedule_sigmas(N, 3.0, sigmas));
    ASSERT_OK(gv_psi_calibration_init(c, sigmas, N, 0.7, rounds, 1.0, 0.05));
}

/* ALGORITHMS.md §2: s(2) = 2.424871 and the per-step std s(i) sqrt(-Δ_i) for N = 10, S = 3,
   a = .7: .700 .738 .532 .441 .388 .350 .320 .290 .256. */
Test(noise_calibration, starts_at_flow_grpo_scale) {
    gv_psi_calibration c;
    init10(&c, 20);
    cr_expect_eq(c.n_steps, 9);
    cr_expect(fabs(c.psi0[2] - 2.424871) < 1e-5, "psi0(2) = %.7f", (double)c.psi0[2]);
    float sigmas[N + 1];
    ASSERT_OK(gv_schedule_sigmas(N, 3.0, sigmas));
    const double std[9] = {.700, .738, .532, .441, .388, .350, .320, .290, .256};
    for (int i = 0; i < 9; ++i) {
        const double s = c.psi0[i] * sqrt(sigmas[i] - sigmas[i + 1]);
        cr_expect(fabs(s - std[i]) < 6e-4, "step %d: std %.4f, want %.3f", i, s, std[i]);
        cr_expect_eq(c.psi[i], c.psi0[i]);
    }
}

/* One round over a constructed batch of 64 samples (gains per step i):
     0: 32 +, 32 -          balanced            -> x 1.05
     1: 64 +                one-sided           -> x 0.95
     2: 36 +, 28 -          |8| <= sqrt(64)     -> x 1.05 (the threshold is inclusive)
     3: 37 +, 27 -          |10| > 8            -> x 0.95
     4: 4 +, 60 ties        n = 4 < 8           -> unchanged
     5: 7 +, 57 invalid     n = 7 < 8           -> unchanged
     6: 8 +, 56 ties        |8| > sqrt(8)       -> x 0.95
     7: 4 +, 4 -, 56 ties   |0| <= sqrt(8)      -> x 1.05
     8: all ties                                -> unchanged
     9: the ODE step's column (ignored; psi has 9 entries) */
Test(noise_calibration, one_round_rules) {
    static float g[S * N];
    static uint8_t ok[S * N];
    memset(ok, 1, sizeof ok);
    for (int s = 0; s < S; ++s) {
        float *r = &g[s * N];
        r[0] = s < 32 ? 0.3f : -0.2f;
        r[1] = 0.01f + 0.001f * s;
        r[2] = s < 36 ? 0.5f : -0.5f;
        r[3] = s < 37 ? 0.5f : -0.5f;
        r[4] = s < 4 ? 0.1f : 5e-7f; /* |dR| <= 1e-6 is a tie */
        r[5] = 0.2f;
        if (s >= 7) ok[s * N + 5] = 0;
        r[6] = s < 8 ? 1e-3f : -1e-6f;
        r[7] = s < 4 ? 0.1f : (s < 8 ? -0.1f : 0.0f);
        r[8] = 0.0f;
        r[9] = 1.0f;
    }
    gv_psi_calibration c;
    init10(&c, 20);
    gv_psi_round log;
    ASSERT_OK(gv_psi_calibration_update(&c, g, ok, S, N, &log));
    const double factor[9] = {1.05, 0.95, 1.05, 0.95, 1, 1, 0.95, 1.05, 1};
    const int n[9] = {64, 64, 64, 64, 4, 7, 8, 8, 0};
    for (int i = 0; i < 9; ++i) {
        cr_expect(fabs(c.psi[i] - c.psi0[i] * factor[i]) <= 1e-6 * c.psi0[i],
                  "step %d: psi %.7f, want %.7f", i, (double)c.psi[i], c.psi0[i] * factor[i]);
        cr_expect_eq(log.n[i], n[i], "step %d", i);
        cr_expect_eq(log.move[i], factor[i] > 1 ? 1 : factor[i] < 1 ? -1 : 0, "step %d", i);
    }
    cr_expect_eq(log.pos[2], 36);
    cr_expect_eq(log.neg[2], 28);
    cr_expect_eq(c.round, 1);
    cr_expect_eq(c.batch_samples, S);
    /* the fixed point depends on the batch size: a different size later is refused */
    cr_expect_eq(gv_psi_calibration_update(&c, g, ok, S / 2, N, NULL), GV_ERR_INVALID);
}

/* Balanced gains every round push psi up until the ceiling 3 psi0 holds it; one-sided gains push
   it down to the floor 0.05 psi0; neither is ever crossed, and the rounds end. Gains come from
   gv_dense_gains on constructed R tables, as in training. */
Test(noise_calibration, moves_up_and_down_within_bounds) {
    static float R[S * (N + 1)], g[S * N];
    static uint8_t ok[S * N];
    for (int s = 0; s < S; ++s)
        for (int i = 0; i <= N; ++i) /* balanced: alternate chains rise and fall each step */
            R[s * (N + 1) + i] = (s % 2 ? 1.0f : -1.0f) * 0.01f * (float)(i % 2);
    gv_dense_gains(R, NULL, S, N, g, ok);
    gv_psi_calibration up, down;
    init10(&up, 200);
    init10(&down, 200);
    for (int r = 0; r < 200; ++r) {
        ASSERT_OK(gv_psi_calibration_update(&up, g, ok, S, N, NULL));
        for (int i = 0; i < 9; ++i) {
            cr_assert(up.psi[i] <= (float)(3.0 * up.psi0[i]), "round %d step %d above 3 psi0", r,
                      i);
            cr_assert(up.psi[i] >= up.psi0[i]);
        }
        if (r == 19) /* 20 rounds: 1.05^20 = 2.653 */
            cr_expect(fabs(up.psi[0] / up.psi0[0] - pow(1.05, 20)) < 1e-4, "%.6f",
                      (double)(up.psi[0] / up.psi0[0]));
    }
    for (int i = 0; i < 9; ++i)
        cr_expect(fabs(up.psi[i] - 3.0 * up.psi0[i]) <= 1e-6 * up.psi0[i], "step %d at the ceiling",
                  i);
    cr_expect_eq(gv_psi_calibration_update(&up, g, ok, S, N, NULL), GV_ERR_INVALID,
                 "no round after the last");
    for (int s = 0; s < S; ++s)
        for (int i = 0; i <= N; ++i) R[s * (N + 1) + i] = 0.01f * (float)i; /* every gain > 0 */
    gv_dense_gains(R, NULL, S, N, g, ok);
    for (int r = 0; r < 200; ++r) {
        ASSERT_OK(gv_psi_calibration_update(&down, g, ok, S, N, NULL));
        for (int i = 0; i < 9; ++i) {
            cr_assert(down.psi[i] >= (float)(0.05 * down.psi0[i]),
                      "round %d step %d below the floor", r, i);
            cr_assert(down.psi[i] < down.psi0[i]);
        }
    }
    for (int i = 0; i < 9; ++i)
        cr_expect(fabs(down.psi[i] - 0.05 * down.psi0[i]) <= 1e-6 * down.psi0[i], "step %d", i);
    gv_psi_calibration bad;
    float sigmas[N + 1];
    ASSERT_OK(gv_schedule_sigmas(N, 3.0, sigmas));
    cr_expect_eq(gv_psi_calibration_init(&bad, sigmas, N, 0.7, 20, 1.0, 1.5), GV_ERR_INVALID);
}
