/* bench_ops: GFLOP/s of the CPU conv2d and linear kernels, reference loop nests vs oneDNN, at the
 * unet-s shapes (DESIGN.md §5), batch 64.
 *
 *   build-<dir>/bench/bench_ops [reps]        (threads: GROVE_THREADS, else all cores)
 *
 * Each figure is the median of `reps` timed calls (default 15 for oneDNN, a third of that for the
 * slow reference) after warm-up calls, timed with CLOCK_MONOTONIC. It prints figures and never fails
 * on time; it fails only when an op returns an error. Not here: whole-model or GPU timings. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "grove/kernels_cpu.h"
#include "../kernels/cpu/dnnl_glue.h"

enum bench_kind { CONV_FWD, CONV_BWD_DATA, CONV_BWD_WEIGHTS, LINEAR_FWD, LINEAR_BWD };

typedef struct bench_case {
    const char *name;
    enum bench_kind kind;
    gv_conv2d_dims conv; /* conv cases (P, Q filled at start) */
    gv_linear_dims lin;  /* linear cases                       */
} bench_case;

#define CONV(n, k, c, h, w, kk, r, st, pad) {n, k, {64, c, h, w, kk, r, r, st, pad, 0, 0}, {0, 0, 0}}
#define LIN(n, k, rows, din, dout) {n, k, {0}, {rows, din, dout}}
static bench_case cases[] = {
    CONV("conv3x3 32->32 28x28 fwd", CONV_FWD, 32, 28, 28, 32, 3, 1, 1),
    CONV("conv3x3 32->32 28x28 bwd-data", CONV_BWD_DATA, 32, 28, 28, 32, 3, 1, 1),
    CONV("conv3x3 32->32 28x28 bwd-weights", CONV_BWD_WEIGHTS, 32, 28, 28, 32, 3, 1, 1),
    CONV("conv3x3 64->64 7x7 fwd", CONV_FWD, 64, 7, 7, 64, 3, 1, 1),
    CONV("conv3x3 64->64 7x7 bwd-data", CONV_BWD_DATA, 64, 7, 7, 64, 3, 1, 1),
    CONV("conv3x3 64->64 7x7 bwd-weights", CONV_BWD_WEIGHTS, 64, 7, 7, 64, 3, 1, 1),
    CONV("conv3x3 s2 32->32 28->14 fwd", CONV_FWD, 32, 28, 28, 32, 3, 2, 1),
    CONV("conv3x3 s2 32->32 28->14 bwd-data", CONV_BWD_DATA, 32, 28, 28, 32, 3, 2, 1),
    CONV("conv3x3 s2 32->32 28->14 bwd-wei", CONV_BWD_WEIGHTS, 32, 28, 28, 32, 3, 2, 1),
    CONV("conv1x1 96->32 28x28 fwd", CONV_FWD, 96, 28, 28, 32, 1, 1, 0),
    CONV("conv1x1 96->32 28x28 bwd-data", CONV_BWD_DATA, 96, 28, 28, 32, 1, 1, 0),
    CONV("conv1x1 96->32 28x28 bwd-weights", CONV_BWD_WEIGHTS, 96, 28, 28, 32, 1, 1, 0),
    LIN("linear 64x128 . 128x128 fwd", LINEAR_FWD, 64, 128, 128),
    LIN("linear 64x128 . 128x128 bwd", LINEAR_BWD, 64, 128, 128),
};
#define N_CASES (sizeof cases / sizeof cases[0])

/* Tensors of one case, sized for its largest use. */
typedef struct bench_bufs {
    float *x, *w, *b, *y;    /* input, weight, bias, output           */
    float *dx, *dw, *db, *dy; /* gradients (added into, never read)   */
} bench_bufs;

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double case_flops(const bench_case *bc) {
    if (bc->kind == LINEAR_FWD || bc->kind == LINEAR_BWD) {
        double f = 2.0 * bc->lin.N * bc->lin.Din * bc->lin.Dout;
        return bc->kind == LINEAR_BWD ? 2.0 * f : f; /* dx and dw */
    }
    const gv_conv2d_dims *d = &bc->conv;
    return 2.0 * d->N * d->K * d->P * d->Q * (double)d->C * d->R * d->S;
}

static gv_status run_case(gv_ctx *c, const bench_case *bc, const bench_bufs *t) {
    const gv_ops *ops = c->backend->ops;
    switch (bc->kind) {
    case CONV_FWD: return ops->conv2d_forward(c, t->y, t->x, t->w, t->b, &bc->conv);
    case CONV_BWD_DATA:
        return ops->conv2d_backward(c, t->dx, NULL, NULL, t->dy, t->x, t->w, &bc->conv);
    case CONV_BWD_WEIGHTS:
        return ops->conv2d_backward(c, NULL, t->dw, t->db, t->dy, t->x, t->w, &bc->conv);
    case LINEAR_FWD: return ops->linear_forward(c, t->y, t->x, t->w, t->b, &bc->lin);
    case LINEAR_BWD:
        return ops->linear_backward(c, t->dx, t->dw, t->db, t->dy, t->x, t->w, &bc->lin);
    }
    return GV_ERR_INTERNAL;
}

/* Median seconds per call over `reps` timed calls after `warmup` calls; < 0 on an op error. */
static double time_case(gv_ctx *c, const bench_case *bc, const bench_bufs *t, int warmup, int reps) {
    double *times = calloc((size_t)reps, sizeof *times);
    if (!times) return -1.0;
    for (int i = 0; i < warmup; i++)
        if (run_case(c, bc, t) != GV_OK) return free(times), -1.0;
    for (int i = 0; i < reps; i++) {
        double t0 = now_s();
        if (run_case(c, bc, t) != GV_OK) return free(times), -1.0;
        times[i] = now_s() - t0;
    }
    qsort(times, (size_t)reps, sizeof *times, cmp_double);
    double median = times[reps / 2];
    free(times);
    return median;
}

static float *filled(size_t n, float v) {
    float *p = malloc((n ? n : 1) * sizeof *p);
    if (p)
        for (size_t i = 0; i < n; i++) p[i] = v * (float)((i * 2654435761u) % 1000) / 1000.0f;
    return p;
}

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 15;
    if (reps < 1) reps = 1;
    int ref_reps = reps / 3 > 0 ? reps / 3 : 1;
    const gv_backend *be = grove_backend_cpu();
    gv_ctx *ref = NULL, *fast = NULL;
    if (be->ctx_create(&(gv_ctx_options){.use_fast = 0}, &ref) != GV_OK ||
        be->ctx_create(&(gv_ctx_options){.use_fast = 1}, &fast) != GV_OK) {
        fprintf(stderr, "bench_ops: %s\n", gv_last_error());
        return 1;
    }
    char desc[256];
    be->describe(desc, sizeof desc);
    printf("bench_ops: %s\n", desc);
    printf("threads %d, median of %d (oneDNN) / %d (reference) calls, batch 64\n\n", fast->threads,
           reps, ref_reps);
    printf("%-34s %7s %9s %8s %9s %8s %8s  %s\n", "op", "GFLOP", "ref ms", "GFLOP/s", "dnnl ms",
           "GFLOP/s", "speedup", "oneDNN impl");

    size_t big = 0; /* the largest tensor over all cases */
    for (size_t i = 0; i < N_CASES; i++) {
        bench_case *bc = &cases[i];
        if (bc->kind <= CONV_BWD_WEIGHTS) {
            gv_conv2d_dims *d = &bc->conv;
            gv_conv2d_dims_set(d);
            size_t sizes[] = {(size_t)d->N * d->C * d->H * d->W, (size_t)d->K * d->C * d->R * d->S,
                              (size_t)d->N * d->K * d->P * d->Q};
            for (int j = 0; j < 3; j++) big = sizes[j] > big ? sizes[j] : big;
        } else {
            size_t sizes[] = {(size_t)bc->lin.N * bc->lin.Din, (size_t)bc->lin.Dout * bc->lin.Din,
                              (size_t)bc->lin.N * bc->lin.Dout};
            for (int j = 0; j < 3; j++) big = sizes[j] > big ? sizes[j] : big;
        }
    }
    bench_bufs t = {filled(big, 1.0f), filled(big, 0.1f), filled(big, 0.5f), filled(big, 0.0f),
                    filled(big, 0.0f), filled(big, 0.0f), filled(big, 0.0f), filled(big, 1.0f)};
    if (!t.x || !t.w || !t.b || !t.y || !t.dx || !t.dw || !t.db || !t.dy) {
        fprintf(stderr, "bench_ops: out of memory\n");
        return 1;
    }

    int failed = 0;
    for (size_t i = 0; i < N_CASES; i++) {
        const bench_case *bc = &cases[i];
        double gflop = case_flops(bc) * 1e-9;
        double t_fast = time_case(fast, bc, &t, 3, reps);
        const char *impl = gv_dnnl_last_impl(fast); /* this case's primitive was created last */
        char impl_buf[64];
        snprintf(impl_buf, sizeof impl_buf, "%s", impl);
        double t_ref = time_case(ref, bc, &t, 1, ref_reps);
        if (t_fast < 0 || t_ref < 0) {
            fprintf(stderr, "bench_ops: %s failed: %s\n", bc->name, gv_last_error());
            failed = 1;
            continue;
        }
        printf("%-34s %7.3f %9.3f %8.1f %9.3f %8.1f %7.1fx  %s\n", bc->name, gflop, t_ref * 1e3,
               gflop / t_ref, t_fast * 1e3, gflop / t_fast, t_ref / t_fast, impl_buf);
        fflush(stdout);
    }
    printf("\n(the figures depend on machine load; TOOLCHAIN.md: oneDNN 430-500 GFLOP/s on 2 idle "
           "cores for the stride-1 3x3 convs)\n");
    free(t.x), free(t.w), free(t.b), free(t.y), free(t.dx), free(t.dw), free(t.db), free(t.dy);
    be->ctx_destroy(ref);
    be->ctx_destroy(fast);
    return failed;
}
