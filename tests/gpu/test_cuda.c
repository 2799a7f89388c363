/* The CUDA module on a real device: loading, memory round trips, and every implemented CUDA op
 * against the CPU reference op on the same inputs.
 *
 * Skips (cr_skip_test, with the reason) when no module was built or the module finds no GPU; any
 * other load failure (a module that exists but cannot be dlopen()ed) fails. The loader's own error
 * paths (engine/core/module.c) need no device and run everywhere. Criterion runs each test
 * in its own process, so every test loads the module and initialises CUDA itself.
 * Tolerances: philox, add, scale, axpby bitwise vs the CPU op; silu and its backward bitwise vs the
 * host-compiled GV_HD function (the arithmetic the kernel runs), and vs the CPU op (libm expf) with
 * the bounds tests/cpu/test_hd_arith.c explains: silu 4 ulp; backward
 * 8 eps (|dx| + |dy| (1 + |x|)).
 * What only this test can find is therefore launch and memory glue, and device arithmetic that is
 * not the host's (a contraction or flush-to-zero the build flags should have ruled out). */
#define _GNU_SOURCE /* dladdr */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <dlfcn.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Without $GROVE_CUDA_MODULE the module is looked for in the build root this test belongs to. */
#include "grove/backend.h"
#include "gpu_test_util.h"
#include "grove/kernels_cpu.h"
#include "gv_elementwise.h"
#include "gv_math.h"

/* n floats in [-30, 30] with the edge values up front; deterministic per seed. */
static float *make_inputs(int64_t n, uint32_t seed) {
    static const float edges[] = {0.0f, -0.0f, 1e-45f, -1e-45f, 1.0f, -1.0f, 88.7f, -88.7f,
                                  89.0f, -89.0f, 104.5f, -104.5f, 1e30f, -1e30f};
    float *x = malloc((size_t)n * sizeof *x);
    cr_assert_not_null(x);
    uint32_t s = seed;
    for (int64_t i = 0; i < n; ++i) {
        s = s * 1664525u + 1013904223u;
        x[i] = ((float)(s >> 8) * 0x1p-24f - 0.5f) * 60.0f;
    }
    for (int64_t i = 0; i < (int64_t)(sizeof edges / sizeof edges[0]) && i < n; ++i)
        x[i] = edges[i];
    return x;
}

/* Device copy of n host floats. */
static float *to_device(const gv_backend *be, const float *h, int64_t n) {
    void *d = NULL;
    cr_assert_eq(be->alloc((size_t)n * sizeof(float), &d), GV_OK, "alloc: %s", gv_last_error());
    cr_assert_eq(be->copy_from_host(d, h, (size_t)n * sizeof(float)), GV_OK, "copy_from_host: %s",
                 gv_last_error());
    return d;
}

static void from_device(const gv_backend *be, float *h, const float *d, int64_t n) {
    cr_assert_eq(be->synchronize(), GV_OK, "synchronize (kernel execution): %s", gv_last_error());
    cr_assert_eq(be->copy_to_host(h, d, (size_t)n * sizeof(float)), GV_OK, "copy_to_host: %s",
                 gv_last_error());
}

static void compare(const char *what, const float *got, const float *want, int64_t n,
                    int64_t tol) {
    int64_t worst = 0, worst_i = 0;
    for (int64_t i = 0; i < n; ++i) {
        int64_t d = gv_hd_ulp_distance(got[i], want[i]);
        if (d > worst) {
            worst = d;
            worst_i = i;
        }
    }
    cr_log_info("%s: max %lld ulp over %lld elements", what, (long long)worst, (long long)n);
    cr_assert_leq(worst, tol, "%s: %lld ulp > %lld at i=%lld (gpu %a, reference %a)", what,
                  (long long)worst, (long long)tol, (long long)worst_i, got[worst_i],
                  want[worst_i]);
}

static void compare_silu_backward(const float *got, const float *want, const float *dx0,
                                  const float *dy, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
        double bound = 8.0 * 0x1p-24 * (fabs(dx0[i]) + fabs(dy[i]) * (1.0 + fabs(x[i])));
        double diff = fabs((double)got[i] - (double)want[i]);
        cr_assert(diff <= bound || gv_hd_ulp_distance(got[i], want[i]) == 0,
                  "silu_backward gpu vs cpu op: i=%lld x=%a gpu=%a reference=%a: |diff| %g > %g",
                  (long long)i, x[i], got[i], want[i], diff, bound);
    }
}

Test(cuda, loader_errors_are_one_line_and_named) {
    const gv_backend *be = NULL;
    cr_assert_eq(gv_backend_load_module("/nonexistent/libgrove_cuda.so", GROVE_CUDA_INIT_SYMBOL,
                                        &be), GV_ERR_IO);
    cr_assert(strstr(gv_last_error(), "/nonexistent/libgrove_cuda.so"), "%s", gv_last_error());
    /* a file that is not a shared object: dlerror() verbatim */
    char path[] = "/tmp/grove-not-a-module-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, "not ELF\n", 8), 8);
    close(fd);
    cr_assert_eq(gv_backend_load_module(path, GROVE_CUDA_INIT_SYMBOL, &be), GV_ERR_BACKEND);
    cr_assert(strstr(gv_last_error(), "dlopen") && strstr(gv_last_error(), path), "%s",
              gv_last_error());
    unlink(path);
    /* a real shared object without the symbol: the libgrove this test runs with */
    Dl_info info;
    cr_assert(dladdr((void *)gv_backend_validate, &info) && info.dli_fname, "dladdr failed");
    cr_assert_eq(gv_backend_load_module(info.dli_fname, GROVE_CUDA_INIT_SYMBOL, &be),
                 GV_ERR_BACKEND, "%s: %s", info.dli_fname, gv_last_error());
    cr_assert(strstr(gv_last_error(), "does not export " GROVE_CUDA_INIT_SYMBOL), "%s",
              gv_last_error());
    cr_assert_null(be);
}

Test(cuda, describe_and_validation_state) {
    const gv_backend *be = gpu_test_cuda_or_skip();
    char line[512];
    cr_assert_eq(be->describe(line, sizeof line), GV_OK, "describe: %s", gv_last_error());
    cr_log_info("cuda: %s", line);
    cr_assert_str_eq(be->name, "cuda");
    /* The table is complete (generated from GROVE_OP_LIST): validation accepts it. */
    cr_assert_eq(gv_backend_validate(be), GV_OK, "CUDA op table refused: %s", gv_last_error());
}

Test(cuda, memory_round_trip) {
    const gv_backend *be = gpu_test_cuda_or_skip();
    const int64_t n = (1 << 20) + 37;
    float *h = make_inputs(n, 11), *back = malloc((size_t)n * sizeof *back);
    float *d1 = to_device(be, h, n), *d2 = NULL;
    cr_assert_eq(be->alloc((size_t)n * sizeof(float), (void **)&d2), GV_OK);
    cr_assert_eq(be->copy(d2, d1, (size_t)n * sizeof(float)), GV_OK, "copy: %s", gv_last_error());
    cr_assert_eq(be->memset_zero(d2, 100 * sizeof(float)), GV_OK, "memset: %s", gv_last_error());
    from_device(be, back, d2, n);
    for (int64_t i = 0; i < n; ++i) {
        uint32_t want = i < 100 ? 0u : gv_float_to_bits(h[i]);
        cr_assert_eq(gv_float_to_bits(back[i]), want, "element %lld after the round trip", i);
    }
    /* an impossible allocation is GV_ERR_OOM naming the size, and the device stays usable */
    void *huge = NULL;
    cr_assert_eq(be->alloc((size_t)1 << 50, &huge), GV_ERR_OOM);
    cr_assert(strstr(gv_last_error(), "1125899906842624"), "size not named: %s", gv_last_error());
    cr_assert_eq(be->copy_to_host(back, d1, sizeof(float)), GV_OK, "%s", gv_last_error());
    be->free(d1);
    be->free(d2);
    free(h);
    free(back);
}

Test(cuda, elementwise_vs_cpu) {
    const gv_backend *be = gpu_test_cuda_or_skip();
    const gv_backend *cpu = grove_backend_cpu();
    gv_ctx *gc = gpu_test_ctx(be, 1 << 20), *cc = gpu_test_ctx(cpu, 1 << 20);
    /* larger than one grid of the grid-stride loops (SMs * 64 blocks * 256 threads on an H200) */
    const int64_t n = 3 * 1000 * 1000 + 7;
    gv_ew_dims dims = {n};
    float *a = make_inputs(n, 1), *b = make_inputs(n, 2), *dx0 = make_inputs(n, 3);
    float *ref = malloc((size_t)n * sizeof *ref), *got = malloc((size_t)n * sizeof *got);
    float *hd = malloc((size_t)n * sizeof *hd);
    float *da = to_device(be, a, n), *db = to_device(be, b, n), *dy = to_device(be, a, n);
    float *dout = to_device(be, b, n);

    cr_assert_eq(cpu->ops->silu_forward(cc, ref, a, &dims), GV_OK, "%s", gv_last_error());
    cr_assert_eq(be->ops->silu_forward(gc, dout, da, &dims), GV_OK, "%s", gv_last_error());
    from_device(be, got, dout, n);
    for (int64_t i = 0; i < n; ++i) hd[i] = gv_hd_silu(a[i]);
    compare("silu_forward gpu vs host gv_hd_silu", got, hd, n, 0);
    compare("silu_forward gpu vs cpu op", got, ref, n, 4);

    /* backward adds into dx: start from dx0 on both sides; dy = b / 30 */
    for (int64_t i = 0; i < n; ++i) b[i] = b[i] / 30.0f;
    float *ddy = to_device(be, b, n), *ddx = to_device(be, dx0, n);
    memcpy(ref, dx0, (size_t)n * sizeof *ref);
    cr_assert_eq(cpu->ops->silu_backward(cc, ref, b, a, &dims), GV_OK, "%s", gv_last_error());
    cr_assert_eq(be->ops->silu_backward(gc, ddx, ddy, da, &dims), GV_OK, "%s", gv_last_error());
    from_device(be, got, ddx, n);
    for (int64_t i = 0; i < n; ++i) hd[i] = gv_hd_silu_backward(dx0[i], b[i], a[i]);
    compare("silu_backward gpu vs host gv_hd_silu_backward", got, hd, n, 0);
    compare_silu_backward(got, ref, dx0, b, a, n);
    cr_assert_eq(be->ops->silu_backward(gc, NULL, ddy, da, &dims), GV_OK, "NULL dx is skipped");

    /* add, scale, axpby: bitwise against the CPU op (b now holds dy, any values do) */
    cr_assert_eq(cpu->ops->add(cc, ref, a, b, &dims), GV_OK, "%s", gv_last_error());
    cr_assert_eq(be->ops->add(gc, dout, da, ddy, &dims), GV_OK, "%s", gv_last_error());
    from_device(be, got, dout, n);
    compare("add gpu vs cpu op", got, ref, n, 0);

    cr_assert_eq(cpu->ops->scale(cc, ref, a, -0.37f, &dims), GV_OK, "%s", gv_last_error());
    cr_assert_eq(be->ops->scale(gc, dout, da, -0.37f, &dims), GV_OK, "%s", gv_last_error());
    from_device(be, got, dout, n);
    compare("scale gpu vs cpu op", got, ref, n, 0);

    memcpy(ref, b, (size_t)n * sizeof *ref);
    cr_assert_eq(be->copy(dout, ddy, (size_t)n * sizeof(float)), GV_OK, "%s", gv_last_error());
    cr_assert_eq(cpu->ops->axpby(cc, ref, a, 0.7f, -1.3f, &dims), GV_OK, "%s", gv_last_error());
    cr_assert_eq(be->ops->axpby(gc, dout, da, 0.7f, -1.3f, &dims), GV_OK, "%s", gv_last_error());
    from_device(be, got, dout, n);
    compare("axpby gpu vs cpu op", got, ref, n, 0);

    gv_ew_dims empty = {0};
    cr_assert_eq(be->ops->add(gc, dout, da, ddy, &empty), GV_ERR_INVALID, "n = 0 is refused");

    float *dev[] = {da, db, dy, dout, ddy, ddx};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; ++i) be->free(dev[i]);
    be->ctx_destroy(gc);
    cpu->ctx_destroy(cc);
    free(a), free(b), free(dx0), free(ref), free(got), free(hd);
}

Test(cuda, philox_normal_fill_bitwise) {
    const gv_backend *be = gpu_test_cuda_or_skip();
    const gv_backend *cpu = grove_backend_cpu();
    gv_ctx *gc = gpu_test_ctx(be, 1 << 20), *cc = gpu_test_ctx(cpu, 1 << 20);
    const int64_t n = (1 << 22) + 5; /* more than one grid; ends mid-block */
    gv_philox_args args = {.n = n, .key = {1234u, 2u}, .ctr_hi = {0x02000001u, 0x00050003u, 9u},
                           .offset = 6};
    float *ref = malloc((size_t)n * sizeof *ref), *got = malloc((size_t)n * sizeof *got);
    float *dout = NULL;
    cr_assert_eq(be->alloc((size_t)n * sizeof(float), (void **)&dout), GV_OK);
    cr_assert_eq(cpu->ops->philox_normal_fill(cc, ref, &args), GV_OK, "%s", gv_last_error());
    cr_assert_eq(be->ops->philox_normal_fill(gc, dout, &args), GV_OK, "%s", gv_last_error());
    from_device(be, got, dout, n);
    compare("philox_normal_fill gpu vs cpu op", got, ref, n, 0);
    be->free(dout);
    be->ctx_destroy(gc);
    cpu->ctx_destroy(cc);
    free(ref);
    free(got);
}
