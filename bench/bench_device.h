/* The backend a benchmark runs on: $GROVE_BENCH_DEVICE = cpu (default) | cuda.
 *
 * cuda loads the module as the CLI does (grove/kernels_cuda.h; $GROVE_CUDA_MODULE or the build
 * root) and validates its table; a missing module or GPU is a one-line error, not a fallback: a
 * benchmark must say which device its figures are from. Timers must call be->synchronize() before
 * reading the clock (device ops are asynchronous). */
#ifndef GROVE_BENCH_DEVICE_H
#define GROVE_BENCH_DEVICE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grove/backend.h"
#include "grove/kernels_cpu.h"
#include "grove/kernels_cuda.h"

static const gv_backend *bench_backend(const char *prog) {
    const char *dev = getenv("GROVE_BENCH_DEVICE");
    if (!dev || !*dev || !strcmp(dev, "cpu")) return grove_backend_cpu();
    if (strcmp(dev, "cuda") != 0) {
        fprintf(stderr, "%s: GROVE_BENCH_DEVICE=%s: expected cpu or cuda\n", prog, dev);
        return NULL;
    }
    char path[4096];
    const gv_backend *be = NULL;
    gv_status s = gv_cuda_module_path(path, sizeof path);
    if (s == GV_OK) s = gv_backend_load_module(path, GROVE_CUDA_INIT_SYMBOL, &be);
    if (s == GV_OK) s = gv_backend_register(be);
    if (s != GV_OK) {
        fprintf(stderr, "%s: GROVE_BENCH_DEVICE=cuda: %s\n", prog, gv_last_error());
        return NULL;
    }
    return be;
}

#endif
