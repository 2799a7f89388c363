/* bench_mdm_estimator: the estimator experiment of ALGORITHMS.md §10 — `coupled_pair` (two
 * complementary views) against the mean of two independent `single_mask` draws (also two views):
 * same expectation, same forward count. For K completions of held-out 9x9 puzzles (the shipped mdt
 * samples them with the default schedule, eval stream, seed 0), D fresh (t, u) draws each of the
 * per-sequence sum over completion tokens of ℓ̂ under both; per sequence the variance over draws;
 * reports the pooled variance ratio var(pair) / var(two singles) with a 95 % bootstrap interval
 * over sequences (2,000 resamples, a fixed LCG), and the two means (they must agree). Prints CSV
 * (one header, one row). Never fails on the figures.
 *
 * usage: bench_mdm_estimator [CKPT (default models/weights/sudoku-mdt-s.h5)] [K 32] [D 64] [blanks 35] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grove/kernels_cpu.h"
#include "grove/mdm.h"
#include "grove/mdm_grpo.h"
#include "grove/paths.h"
#include "grove/rundir.h"
#include "grove/sudoku.h"

#define CHECK(expr)                                                                                \
    do {                                                                                           \
        if ((expr) != GV_OK) {                                                                     \
            fprintf(stderr, "bench_mdm_estimator: %s\n", gv_last_error());                        \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

static double seq_sum(const float *ell, const uint8_t *comp, int T) {
    double s = 0.0;
    for (int p = 0; p < T; ++p)
        if (comp[p]) s += ell[p];
    return s;
}

int main(int argc, char **argv) {
    char ckpt[4096], data_path[4096];
    CHECK(gv_root_path(argc > 1 ? argv[1] : "models/weights/sudoku-mdt-s.h5", ckpt, sizeof ckpt));
    const int K = argc > 2 ? atoi(argv[2]) : 32, D = argc > 3 ? atoi(argv[3]) : 64;
    const int blanks = argc > 4 ? atoi(argv[4]) : 35;
    if (K < 2 || D < 2) {
        fprintf(stderr, "usage: bench_mdm_estimator [CKPT] [K >= 2] [D >= 2] [blanks]\n");
        return 2;
    }
    const gv_backend *be = grove_backend_cpu();
    gv_ctx *ctx = NULL;
    CHECK(be->ctx_create(&(gv_ctx_options){.threads = gv_resolve_threads(0), .use_fast = 1}, &ctx));
    gv_image_model m;
    CHECK(gv_image_model_load(ckpt, be, 1, &m));
    CHECK(gv_root_path(gv_dataset_kind_get(GV_DATASET_SUDOKU9)->default_path, data_path, sizeof data_path));
    gv_dataset ds;
    CHECK(gv_dataset_load_as(data_path, GV_DATASET_SUDOKU9, &ds));
    const int S = 9, T = 81, V = GV_SUDOKU_VOCAB(S);
    const int32_t mask = GV_SUDOKU_MASK(S);
    int64_t first, count;
    CHECK(gv_sudoku_test_level(&ds, blanks, &first, &count));
    int32_t *tok = malloc((size_t)K * T * sizeof(int32_t)), *ids = malloc((size_t)K * 2 * T * sizeof(int32_t));
    uint8_t *comp = malloc((size_t)K * T);
    float *coef = malloc((size_t)K * 2 * T * sizeof(float)), *ell = malloc((size_t)K * T * sizeof(float));
    float *t = malloc((size_t)K * sizeof(float));
    double *x = malloc((size_t)K * D * sizeof(double)), *y = malloc((size_t)K * D * sizeof(double));
    if (!tok || !ids || !comp || !coef || !ell || !t || !x || !y) return 1;
    for (int k = 0; k < K; ++k) {
        const uint8_t *puz = gv_sudoku_puzzle(&ds.test, first + k);
        gv_sudoku_tokens_from_grid(puz, S, tok + (int64_t)k * T);
        for (int p = 0; p < T; ++p) comp[(int64_t)k * T + p] = puz[p] == 0;
    }
    /* the completions: the model's own samples, default schedule */
    gv_mdm_runner runner;
    CHECK(gv_mdm_runner_init(&runner, &m, ctx, K));
    gv_masked_config mc = {.N = K, .T = T, .V = V, .mask_id = mask, .steps = blanks, .blocks = 1,
                           .seed = 0, .stream = GV_RNG_STREAM_EVAL,
                           .addr = {.purpose = GV_RNG_PURPOSE_MASK_UNIFORM}};
    const size_t sb = gv_masked_scratch_bytes(&mc, 0);
    void *scratch = malloc(sb);
    CHECK(gv_masked_sample(&mc, NULL, gv_mdm_logits, &runner, tok, NULL, scratch, sb));
    gv_mdm_policy pair, single;
    CHECK(gv_mdm_policy_init(&pair, &m, ctx, K, 2, mask));
    CHECK(gv_mdm_policy_init(&single, &m, ctx, K, 1, mask));
    const double t0 = gv_rundir_now();
    for (int d = 0; d < D; ++d) {
        gv_mdm_view_args a = {.N = K, .T = T, .mask_id = mask, .estimator = GV_MDM_EST_COUPLED_PAIR,
                              .t_lo = 0.2f, .t_hi = 0.8f, .seed = 11, .stream = GV_RNG_STREAM_TRAIN,
                              .iteration = (uint32_t)d, .draw = 0};
        CHECK(gv_mdm_views_draw(&a, tok, comp, NULL, ids, coef, t));
        CHECK(gv_mdm_policy_logp(&pair, m.params.values, K, ids, tok, coef, NULL, ell));
        for (int k = 0; k < K; ++k) x[(int64_t)k * D + d] = seq_sum(ell + (int64_t)k * T, comp + (int64_t)k * T, T);
        a.estimator = GV_MDM_EST_SINGLE_MASK;
        for (int k = 0; k < K; ++k) y[(int64_t)k * D + d] = 0.0;
        for (int r = 1; r <= 2; ++r) { /* two independent draws: nodes 1 and 2 */
            a.draw = (uint32_t)r;
            CHECK(gv_mdm_views_draw(&a, tok, comp, NULL, ids, coef, t));
            CHECK(gv_mdm_policy_logp(&single, m.params.values, K, ids, tok, coef, NULL, ell));
            for (int k = 0; k < K; ++k)
                y[(int64_t)k * D + d] += 0.5 * seq_sum(ell + (int64_t)k * T, comp + (int64_t)k * T, T);
        }
    }
    const double secs = gv_rundir_now() - t0;
    double *vx = malloc((size_t)K * sizeof(double)), *vy = malloc((size_t)K * sizeof(double));
    double mx_all = 0.0, my_all = 0.0;
    for (int k = 0; k < K; ++k) {
        double mx = 0.0, my = 0.0, sx = 0.0, sy = 0.0;
        for (int d = 0; d < D; ++d) mx += x[(int64_t)k * D + d], my += y[(int64_t)k * D + d];
        mx /= D, my /= D;
        for (int d = 0; d < D; ++d) {
            sx += (x[(int64_t)k * D + d] - mx) * (x[(int64_t)k * D + d] - mx);
            sy += (y[(int64_t)k * D + d] - my) * (y[(int64_t)k * D + d] - my);
        }
        vx[k] = sx / (D - 1), vy[k] = sy / (D - 1);
        mx_all += mx / K, my_all += my / K;
    }
    double svx = 0.0, svy = 0.0;
    for (int k = 0; k < K; ++k) svx += vx[k], svy += vy[k];
    const double ratio = svx / svy;
    enum { BOOT = 2000 };
    double *boot = malloc(BOOT * sizeof(double));
    uint64_t st = 12345;
    for (int b = 0; b < BOOT; ++b) {
        double bx = 0.0, by = 0.0;
        for (int k = 0; k < K; ++k) {
            st = st * 6364136223846793005ull + 1442695040888963407ull;
            const int j = (int)((st >> 33) % (uint64_t)K);
            bx += vx[j], by += vy[j];
        }
        boot[b] = bx / by;
    }
    for (int i = 1; i < BOOT; ++i) /* insertion sort: 2,000 values */
        for (int j = i; j > 0 && boot[j - 1] > boot[j]; --j) {
            const double tmp = boot[j];
            boot[j] = boot[j - 1];
            boot[j - 1] = tmp;
        }
    printf("sequences,draws,blanks,mean_sum_pair,mean_sum_two_single,var_pair,var_two_single,"
           "variance_ratio,ci_lo,ci_hi,forwards_per_draw_each,seconds\n");
    printf("%d,%d,%d,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,2,%.1f\n", K, D, blanks, mx_all, my_all,
           svx / K, svy / K, ratio, boot[(int)(0.025 * BOOT)], boot[(int)(0.975 * BOOT) - 1], secs);
    return 0;
}
