/* DenseGRPO's psi(i) calibration rule (see noise_calibration.h; ALGORITHMS.md §5). Pure update on
 * host scalars; psi0 comes from the flow_grpo schedule (schedule.h), not a copy of its formula. */
#include "grove/noise_calibration.h"

#include <math.h>
#include <string.h>

#include "samplers/schedule.h"

gv_status gv_psi_calibration_init(gv_psi_calibration *c, const float *sigmas, int N, double a,
                                  int rounds, double eps1, double eps2) {
    memset(c, 0, sizeof *c);
    if (N < 2 || N - 1 > GV_PSI_MAX_STEPS)
        return GV_ERROR(GV_ERR_INVALID, "dense calibration: N = %d steps must be in [2, %d]", N,
                        GV_PSI_MAX_STEPS + 1);
    if (!(a > 0.0) || rounds < 0 || !(eps1 > 0.0) || !(eps2 > 0.0 && eps2 < 1.0))
        return GV_ERROR(GV_ERR_INVALID, "dense calibration: level a = %g > 0, rounds = %d >= 0, "
                        "eps1 = %g > 0 and eps2 = %g in (0, 1) required", a, rounds, eps1, eps2);
    const gv_noise_spec flow = {.kind = GV_NOISE_FLOW_GRPO, .level = a};
    for (int i = 0; i < N - 1; ++i) {
        gv_step_args s;
        int is_sde;
        GV_TRY(gv_step_coeffs(&flow, sigmas, N, i, &s, &is_sde));
        /* §2: std = s sqrt(-Δ), so the flow_grpo scale is s = std / sqrt(-Δ) */
        c->psi0[i] = c->psi[i] = (float)((double)s.std / sqrt(-(double)s.delta));
    }
    c->n_steps = N - 1;
    c->eps1 = eps1;
    c->eps2 = eps2;
    c->rounds = rounds;
    return GV_OK;
}

gv_status gv_psi_calibration_update(gv_psi_calibration *c, const float *gains,
                                    const uint8_t *gain_valid, int n_samples, int N,
                                    gv_psi_round *log) {
    if (c->round >= c->rounds)
        return GV_ERROR(GV_ERR_INVALID, "dense calibration: all %d rounds are done", c->rounds);
    if (N - 1 != c->n_steps || n_samples < 1)
        return GV_ERROR(GV_ERR_INVALID, "dense calibration: gains of %d samples x %d steps, the "
                        "state has %d stochastic steps", n_samples, N, c->n_steps);
    if (c->batch_samples != 0 && c->batch_samples != n_samples)
        return GV_ERROR(GV_ERR_INVALID, "dense calibration: round %d has %d samples, earlier "
                        "rounds %d (psi's fixed point depends on the batch size)", c->round + 1,
                        n_samples, c->batch_samples);
    gv_psi_round local;
    gv_psi_round *r = log ? log : &local;
    memset(r, 0, sizeof *r);
    for (int i = 0; i < c->n_steps; ++i) {
        int pos = 0, neg = 0;
        for (int s = 0; s < n_samples; ++s) {
            const int64_t k = (int64_t)s * N + i;
            if (gain_valid && !gain_valid[k]) continue;
            const float g = gains[k];
            if (!isfinite(g) || fabsf(g) <= (float)GV_PSI_TIE) continue; /* §5: ties ignored */
            pos += g > 0.0f;
            neg += g < 0.0f;
        }
        const int n = pos + neg;
        r->pos[i] = pos;
        r->neg[i] = neg;
        r->n[i] = n;
        if (n < GV_PSI_MIN_COUNT) continue; /* §5: too few gains, psi(i) unchanged */
        const int balanced = fabs((double)(pos - neg)) <= c->eps1 * sqrt((double)n);
        double psi = (double)c->psi[i] * (balanced ? 1.0 + c->eps2 : 1.0 - c->eps2);
        r->move[i] = (int8_t)(balanced ? 1 : -1);
        const double lo = GV_PSI_FLOOR * c->psi0[i], hi = GV_PSI_CEILING * c->psi0[i];
        if (psi < lo || psi > hi) { /* §5: clamp to [0.05 psi0, 3 psi0] */
            psi = psi < lo ? lo : hi;
            r->clamped++;
        }
        c->psi[i] = (float)psi;
    }
    c->batch_samples = n_samples;
    c->round++;
    return GV_OK;
}
