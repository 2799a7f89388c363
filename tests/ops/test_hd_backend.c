/* The CUDA module's arithmetic on the host: a backend ("hd") whose own ops are kernels/shared/
 * gv_own_ops.h instantiated with a plain host loop, i.e. the very item functions
 * (kernels/shared/gv_items.h) the CUDA kernels launch, put through the op harness on every machine.
 *
 * Per op: every harness check on the hd backend (finite differences, the += sentinel, NULL
 * gradients, the fp64 references, batch independence), and parity with the CPU reference backend
 * (use_fast 0) on every harness shape, all outputs and gradients, at rtol 1e-5 (what the items
 * change is only the tanh / exp / sqrt calls taken in fp64 and the loop order of reductions that
 * the CPU runs in a different but also fixed order; measured worst: see the log line per op).
 * What stays GPU-only is the launch (GV_EACH as a grid-stride kernel) and the library ops, which
 * the hd backend takes from the CPU backend: conv2d (cuDNN), linear / matmul (cuBLAS), and the
 * Philox fill (already one GV_HD function on both sides, tests/cpu/test_rng.c). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

#include "grove/backend.h"
#include "grove/kernels_cpu.h"
#include "harness.h"

#define GV_OWN_OP(name) gv_hdop_##name
#define GV_EACH(c, n, FN, ...)                                                                     \
    do {                                                                                           \
        (void)(c);                                                                                 \
        for (int64_t gv_i_ = 0; gv_i_ < (int64_t)(n); ++gv_i_) FN(gv_i_, __VA_ARGS__);            \
    } while (0)
#include "gv_own_ops.h"

static gv_ops hd_ops;
static gv_backend hd_backend;

static gv_status hd_ctx_create(const gv_ctx_options *opt, gv_ctx **out) {
    GV_TRY(grove_backend_cpu()->ctx_create(opt, out));
    (*out)->backend = &hd_backend;
    return GV_OK;
}
static void hd_ctx_destroy(gv_ctx *c) { grove_backend_cpu()->ctx_destroy(c); }

/* The CPU backend with every own op replaced by its gv_own_ops.h instance. */
static const gv_backend *hd(void) {
    const gv_backend *cpu = grove_backend_cpu();
    hd_ops = *cpu->ops;
#define GV_HD_OWN_(name) hd_ops.name = gv_hdop_##name;
    GV_HD_OWN_(silu_forward) GV_HD_OWN_(silu_backward) GV_HD_OWN_(gelu_forward)
    GV_HD_OWN_(gelu_backward) GV_HD_OWN_(softmax_forward) GV_HD_OWN_(softmax_backward)
    GV_HD_OWN_(log_softmax_forward) GV_HD_OWN_(log_softmax_backward)
    GV_HD_OWN_(groupnorm_forward) GV_HD_OWN_(groupnorm_backward) GV_HD_OWN_(layernorm_forward)
    GV_HD_OWN_(layernorm_backward) GV_HD_OWN_(attention_forward) GV_HD_OWN_(attention_backward)
    GV_HD_OWN_(embedding_forward) GV_HD_OWN_(embedding_backward)
    GV_HD_OWN_(embedding_bag_forward) GV_HD_OWN_(embedding_bag_backward)
    GV_HD_OWN_(time_embedding_forward) GV_HD_OWN_(upsample_nearest_forward)
    GV_HD_OWN_(upsample_nearest_backward) GV_HD_OWN_(concat_forward) GV_HD_OWN_(concat_backward)
    GV_HD_OWN_(add_channel_forward) GV_HD_OWN_(add_channel_backward) GV_HD_OWN_(add)
    GV_HD_OWN_(scale) GV_HD_OWN_(axpby) GV_HD_OWN_(mse_forward) GV_HD_OWN_(mse_backward)
    GV_HD_OWN_(cross_entropy_forward) GV_HD_OWN_(cross_entropy_backward) GV_HD_OWN_(adamw_step)
    GV_HD_OWN_(sumsq) GV_HD_OWN_(gaussian_step_forward) GV_HD_OWN_(gaussian_step_backward)
    GV_HD_OWN_(euler_step) GV_HD_OWN_(cfg_combine) GV_HD_OWN_(cfg_combine_backward)
    GV_HD_OWN_(grpo_objective_forward) GV_HD_OWN_(grpo_objective_backward) GV_HD_OWN_(kl_forward)
    GV_HD_OWN_(kl_backward) GV_HD_OWN_(masked_select) GV_HD_OWN_(masked_features)
#undef GV_HD_OWN_
    hd_backend = *cpu;
    hd_backend.name = "hd";
    hd_backend.ops = &hd_ops;
    hd_backend.ctx_create = hd_ctx_create;
    hd_backend.ctx_destroy = hd_ctx_destroy;
    return &hd_backend;
}

/* Every op except the library ones must be an own op here: a new op of the list fails this until
   it gets items (or is declared a library op). */
Test(hd_backend, every_non_library_op_is_an_own_op) {
    const gv_backend *be = hd(), *cpu = grove_backend_cpu();
    cr_assert_eq(gv_backend_validate(be), GV_OK, "%s", gv_last_error());
    for (int op = 0; op < GV_OP_COUNT; ++op) {
        const char *n = gv_op_names[op];
        int library = op == GV_OP_conv2d_forward || op == GV_OP_conv2d_backward ||
                      op == GV_OP_linear_forward || op == GV_OP_linear_backward ||
                      op == GV_OP_matmul_forward || op == GV_OP_matmul_backward ||
                      op == GV_OP_philox_normal_fill;
        void *const *a = (void *const *)be->ops, *const *b = (void *const *)cpu->ops;
        cr_expect(library || a[op] != b[op], "op %s has no shared-arithmetic (GV_HD) version", n);
    }
}

#define GV_HD_TEST_(name, args)                                                                    \
    Test(hd_backend, name, .timeout = 120) {                                                       \
        const gv_backend *be = hd();                                                               \
        gv_h_report rep;                                                                           \
        int failures = gv_harness_check_op_on(be, GV_OP_##name, stderr, &rep);                     \
        gv_ctx_options o = {.threads = 1, .use_fast = 0, .scratch_bytes = 1 << 20};                \
        gv_ctx *ref = NULL, *sh = NULL;                                                            \
        cr_assert_eq(grove_backend_cpu()->ctx_create(&o, &ref), GV_OK);                            \
        cr_assert_eq(be->ctx_create(&o, &sh), GV_OK);                                              \
        double worst = 0;                                                                          \
        int pf = gv_harness_parity(ref, sh, GV_OP_##name, 1e-5, stderr, &worst);                   \
        fprintf(stderr, "hd %s: parity with the CPU reference worst rel %.3g\n", #name, worst);   \
        grove_backend_cpu()->ctx_destroy(ref);                                                     \
        be->ctx_destroy(sh);                                                                       \
        cr_assert_eq(failures, 0, "hd op %s: %d failed harness checks (details above)", #name,     \
                     failures);                                                                    \
        cr_assert_eq(pf, 0, "hd op %s: %d parity failures vs the CPU reference", #name, pf);      \
    }
GROVE_OP_LIST(GV_HD_TEST_)
#undef GV_HD_TEST_
