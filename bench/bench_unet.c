/* bench_unet: unet-s throughput on this machine — pretraining samples/s (forward + backward +
 * AdamW at batch 64) and sampling images/s (20 Euler steps = 20 forwards per image), with the
 * GFLOP/s they imply (DESIGN.md §5: ~183 MFLOP per 28x28 forward; a training step counts 3x the
 * forward). Random weights: speed does not depend on them. Prints figures; never fails on time.
 *
 * usage: bench_unet [batch (default 64)] [repetitions (default 10)]
 * GROVE_BENCH_DEVICE=cuda runs it on the CUDA module (bench_device.h; scripts/gpu-check.sh). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "grove/arena.h"
#include "bench_device.h"
#include "grove/optim.h"
#include "grove/params.h"
#include "grove/rng.h"
#include "models/unet/unet.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

#define CHECK(expr)                                                                                \
    do {                                                                                           \
        if ((expr) != GV_OK) {                                                                     \
            fprintf(stderr, "bench_unet: %s: %s\n", #expr, gv_last_error());                       \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

int main(int argc, char **argv) {
    const int N = argc > 1 ? atoi(argv[1]) : 64;
    const int reps = argc > 2 ? atoi(argv[2]) : 10;
    if (N < 1 || reps < 1) {
        fprintf(stderr, "usage: bench_unet [batch] [repetitions]\n");
        return 2;
    }
    const gv_backend *be = bench_backend("bench_unet");
    if (!be) return 1;
    gv_ctx *ctx = NULL;
    CHECK(be->ctx_create(&(gv_ctx_options){.threads = 0, .use_fast = 1}, &ctx));

    /* V = 19: the MNIST vocabulary (18 words + <null>), as the shipped model and torch_unet_s.py */
    gv_unet_config cfg = gv_unet_config_s(19, 4);
    cfg.zero_init_out = 0;
    gv_unet m;
    gv_params ps;
    gv_params_init(&ps, be);
    CHECK(gv_unet_declare(&m, &cfg, &ps, "unet"));
    CHECK(gv_params_allocate(&ps, 0));
    CHECK(gv_params_initialize(&ps, 1));

    const int64_t nx = (int64_t)N * 28 * 28; /* (N, 1, 28, 28) */
    float *x, *v, *dv, *sigma;
    int32_t *ids;
    CHECK(be->alloc((size_t)nx * sizeof(float), (void **)&x));
    CHECK(be->alloc((size_t)nx * sizeof(float), (void **)&v));
    CHECK(be->alloc((size_t)nx * sizeof(float), (void **)&dv));
    CHECK(be->alloc((size_t)N * sizeof(float), (void **)&sigma));
    CHECK(be->alloc((size_t)N * 4 * sizeof(int32_t), (void **)&ids));
    gv_philox_args fill = {.n = nx, .key = {1, 2}};
    CHECK(ctx->backend->ops->philox_normal_fill(ctx, x, &fill));
    CHECK(ctx->backend->ops->philox_normal_fill(ctx, dv, &fill));
    float *host = malloc((size_t)N * 4 * sizeof(int32_t) + (size_t)N * sizeof(float));
    int32_t *ids_host = (int32_t *)host;
    float *sig_host = host + N * 4;
    for (int i = 0; i < N; ++i) {
        sig_host[i] = (float)(i + 1) / (float)(N + 1);
        for (int j = 0; j < 4; ++j) ids_host[i * 4 + j] = j < 2 ? (i + j) % 11 : -1;
    }
    CHECK(be->copy_from_host(ids, ids_host, (size_t)N * 4 * sizeof(int32_t)));
    CHECK(be->copy_from_host(sigma, sig_host, (size_t)N * sizeof(float)));

    gv_arena arena;
    gv_unet_saved saved;
    gv_arena_init(&arena, be, "activations");
    gv_arena_measure_begin(&arena);
    CHECK(gv_unet_forward(&m, ctx, &arena, ps.values, N, x, sigma, ids, v, &saved));
    CHECK(gv_unet_backward(&m, ctx, &arena, ps.values, ps.grads, &saved, dv, NULL));
    CHECK(gv_arena_reserve(&arena, gv_arena_measure_end(&arena)));

    gv_adamw_config adam = GV_ADAMW_CONFIG_DEFAULT;
    double *fwd = calloc((size_t)reps, sizeof(double)), *step = calloc((size_t)reps, sizeof(double));
    for (int r = -2; r < reps; ++r) { /* two warm-up rounds create oneDNN primitives */
        double t0 = now_s();
        gv_arena_reset(&arena);
        CHECK(gv_unet_forward(&m, ctx, &arena, ps.values, N, x, sigma, ids, v, &saved));
        CHECK(be->synchronize());
        double t1 = now_s();
        CHECK(gv_params_zero_grads(&ps));
        CHECK(gv_unet_backward(&m, ctx, &arena, ps.values, ps.grads, &saved, dv, NULL));
        CHECK(gv_optim_step(ctx, &ps, &adam, 1e-4f, (int64_t)(r + 3)));
        CHECK(be->synchronize());
        double t2 = now_s();
        if (r >= 0) {
            fwd[r] = t1 - t0;
            step[r] = t2 - t0;
        }
    }
    qsort(fwd, (size_t)reps, sizeof(double), cmp_double);
    qsort(step, (size_t)reps, sizeof(double), cmp_double);
    const double f_med = fwd[reps / 2], s_med = step[reps / 2];
    const double flops = (double)gv_unet_flops(&m);
    char desc[256];
    be->describe(desc, sizeof desc);
    printf("bench_unet: unet-s (%lld parameters, %.1f MFLOP per forward), batch %d, %s\n",
           (long long)m.n_params, flops * 1e-6, N, desc);
    printf("  forward                 %8.2f ms  %8.1f images/s  %6.1f GFLOP/s\n", f_med * 1e3,
           N / f_med, flops * N / f_med * 1e-9);
    printf("  train step (fwd+bwd+adam) %6.2f ms  %8.1f samples/s %6.1f GFLOP/s (3x forward)\n",
           s_med * 1e3, N / s_med, 3.0 * flops * N / s_med * 1e-9);
    printf("  sampling, 20 Euler steps            %8.1f images/s\n", N / (20.0 * f_med));
    printf("  (median of %d; figures depend on machine load)\n", reps);
    free(fwd);
    free(step);
    free(host);
    return 0;
}
