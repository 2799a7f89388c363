/* DenseGRPO's timestep-aware noise calibration of psi(i) (ALGORITHMS.md §5; grove's definition —
 * the paper has no public code): the state and its pure per-round update.
 *
 * Start: psi0(i) = the flow_grpo noise scale s(i) = a sqrt(sigma_i / (1 - sigma~)) of stochastic
 * step i = 0..N-2 (schedule.h). Each round, from one calibration batch's step gains dR (credit.h,
 * gv_dense_gains), per step i over the whole batch:
 *   ties |dR| <= 1e-6 (and invalid gains) are ignored; n_i = #pos + #neg;
 *   n_i < 8                              -> psi(i) unchanged ("skip");
 *   |#pos - #neg| <= eps1 sqrt(n_i)      -> balanced: psi(i) <- psi(i) (1 + eps2)  ("up");
 *   otherwise                            -> psi(i) <- psi(i) (1 - eps2)            ("down");
 *   then clamp to [0.05 psi0(i), 3 psi0(i)].
 * Defaults eps1 = 1, eps2 = 0.05, rounds = 20. The fixed point depends on the batch size, so the
 * state records the samples per round with psi. The trainer runs the rounds as a phase of
 * `grove train`, freezes psi afterwards (gv_noise_spec.psi, kind calibrated), logs each round's
 * gv_psi_round and stores the state in the checkpoint's /state.
 * Deliberately not here: sampling the calibration batch, checkpoint I/O, logging. */
#ifndef GROVE_NOISE_CALIBRATION_H
#define GROVE_NOISE_CALIBRATION_H

#include <stdint.h>

#include "grove/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define GV_PSI_MAX_STEPS 255      /* stochastic steps: N - 1 < 2^8 (the RNG step field)   */
#define GV_PSI_TIE 1e-6           /* |dR| <= this is a tie                                 */
#define GV_PSI_MIN_COUNT 8        /* fewer non-tied gains: no move this round              */
#define GV_PSI_FLOOR 0.05         /* psi >= 0.05 psi0                                      */
#define GV_PSI_CEILING 3.0        /* psi <= 3 psi0                                         */

typedef struct gv_psi_calibration {
    int n_steps;                  /* N - 1 stochastic steps                                  */
    float psi[GV_PSI_MAX_STEPS];  /* current psi(i)                                          */
    float psi0[GV_PSI_MAX_STEPS]; /* the flow_grpo start                                     */
    double eps1, eps2;            /* threshold factor, multiplicative step                  */
    int rounds;                   /* rounds to run (dense.rounds)                           */
    int round;                    /* rounds done                                             */
    int batch_samples;            /* trajectories per calibration round (recorded with psi) */
} gv_psi_calibration;

/* What one round saw and did, per step (for the log). move: +1 up, -1 down, 0 skipped. */
typedef struct gv_psi_round {
    int32_t pos[GV_PSI_MAX_STEPS], neg[GV_PSI_MAX_STEPS], n[GV_PSI_MAX_STEPS];
    int8_t move[GV_PSI_MAX_STEPS];
    int clamped;                  /* steps that hit the floor or the ceiling this round     */
} gv_psi_round;

/* psi = psi0 = flow_grpo s(i) for the N-step grid `sigmas` (N+1) and level a; round 0. */
gv_status gv_psi_calibration_init(gv_psi_calibration *c, const float *sigmas, int N, double a,
                                  int rounds, double eps1, double eps2);

/* One round from gains (n_samples, N) and gain_valid (same; NULL: all valid) — the layout of
   gv_dense_gains; column N-1 (the ODE step) is ignored. Records n_samples as batch_samples
   (a different batch size from an earlier round is an error: the fixed point depends on it).
   GV_ERR_INVALID once all rounds are done. `log` may be NULL. */
gv_status gv_psi_calibration_update(gv_psi_calibration *c, const float *gains,
                                    const uint8_t *gain_valid, int n_samples, int N,
                                    gv_psi_round *log);

/* 1 while rounds remain. */
static inline int gv_psi_calibration_pending(const gv_psi_calibration *c) {
    return c->round < c->rounds;
}

#ifdef __cplusplus
}
#endif
#endif
