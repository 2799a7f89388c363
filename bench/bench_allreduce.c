/* bench_allreduce: the cost of grove's gradient all-reduce (dist.h gv_dist_shard_sum: the
 * fixed-order chain through the ranks plus a broadcast) for a buffer of N floats, once every rank
 * is ready (a barrier before each timed call, so load imbalance is not counted). Run it under
 * mpirun; as one process it times the local shard additions only. Prints figures; never fails on
 * time. bench/dist/bench_dist.sh runs it next to the end-to-end pretraining comparison.
 *
 * usage: mpirun -np R bench_allreduce [floats (default 499617 = unet-s)] [repetitions (default 30)] */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "grove/dist.h"
#include "grove/kernels_cpu.h"

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
            fprintf(stderr, "bench_allreduce: rank %d: %s: %s\n", gv_dist_rank(), #expr,          \
                    gv_last_error());                                                              \
            gv_dist_abort(1);                                                                      \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

int main(int argc, char **argv) {
    const long long n = argc > 1 ? atoll(argv[1]) : 499617;
    const int reps = argc > 2 ? atoi(argv[2]) : 30;
    if (n < 1 || reps < 1) {
        fprintf(stderr, "usage: bench_allreduce [floats] [repetitions]\n");
        return 2;
    }
    CHECK(gv_dist_init());
    const int R = gv_dist_size(), rank = gv_dist_rank();
    const gv_backend *be = grove_backend_cpu();
    gv_ctx *ctx = NULL;
    CHECK(be->ctx_create(&(gv_ctx_options){.threads = 1}, &ctx));
    float *local = NULL, *out = NULL;
    CHECK(be->alloc((size_t)n * sizeof(float), (void **)&local));
    CHECK(be->alloc((size_t)n * sizeof(float), (void **)&out));
    for (long long i = 0; i < n; ++i) local[i] = (float)(rank + 1) * 1e-3f * (float)(i % 97);
    gv_shard_sum a = {.be = be, .ctx = ctx, .n = n, .shards = R, .local = &local, .out = out};
    gv_dist_shard_range(R, rank, R, &a.lo, &a.hi);
    double *t = calloc((size_t)reps, sizeof *t);
    for (int k = -3; k < reps; ++k) { /* 3 warm-up calls */
        CHECK(gv_dist_barrier("bench"));
        double t0 = now_s();
        CHECK(gv_dist_shard_sum(&a, "bench"));
        if (k >= 0) t[k] = now_s() - t0;
    }
    qsort(t, (size_t)reps, sizeof *t, cmp_double);
    if (rank == 0)
        printf("shard sum of %lld floats (%.2f MB) over %d rank%s: median %.3f ms, min %.3f ms "
               "(%.2f GB/s of gradient per rank)\n", n, 4e-6 * (double)n, R, R > 1 ? "s" : "",
               1e3 * t[reps / 2], 1e3 * t[0], 4e-9 * (double)n / t[reps / 2]);
    free(t);
    be->free(local);
    be->free(out);
    be->ctx_destroy(ctx);
    gv_dist_finalize();
    return 0;
}
