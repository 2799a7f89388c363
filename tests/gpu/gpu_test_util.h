/* Shared set-up of the GPU tests (tests/gpu/test_cuda*.c): load the CUDA module or skip the test
 * with the reason (no module built, no device, driver too old), and a one-thread context on a
 * backend. Deliberately not here: anything that compares values (each test states its own
 * tolerances next to its checks). Include after <criterion/criterion.h>. */
#ifndef GROVE_TESTS_GPU_TEST_UTIL_H
#define GROVE_TESTS_GPU_TEST_UTIL_H

#ifndef GROVE_CUDA_MODULE_DIR
#define GROVE_CUDA_MODULE_DIR GROVE_BINARY_DIR
#endif
#include "grove/backend.h"
#include "grove/kernels_cuda.h"

/* The CUDA backend with its op table validated, or cr_skip_test() saying why it cannot run here. */
static inline const gv_backend *gpu_test_cuda_or_skip(void) {
    char path[4096];
    if (gv_cuda_module_path(path, sizeof path) != GV_OK) cr_skip_test("%s", gv_last_error());
    const gv_backend *be = NULL;
    gv_status s = gv_backend_load_module(path, GROVE_CUDA_INIT_SYMBOL, &be);
    if (s == GV_ERR_UNSUPPORTED) cr_skip_test("CUDA module cannot run here: %s", gv_last_error());
    cr_assert_eq(s, GV_OK, "loading %s: %s", path, gv_last_error());
    cr_assert_eq(gv_backend_validate(be), GV_OK, "CUDA op table: %s", gv_last_error());
    return be;
}

/* A one-thread context on `be` (no fast paths) with `scratch_bytes` of scratch arena. */
static inline gv_ctx *gpu_test_ctx(const gv_backend *be, size_t scratch_bytes) {
    gv_ctx_options opt = {.threads = 1, .use_fast = 0, .scratch_bytes = scratch_bytes};
    gv_ctx *c = NULL;
    cr_assert_eq(be->ctx_create(&opt, &c), GV_OK, "%s ctx_create: %s", be->name, gv_last_error());
    return c;
}

#endif
