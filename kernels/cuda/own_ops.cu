/* The CUDA module's own ops: kernels/shared/gv_own_ops.h instantiated with a grid-stride kernel.
 *
 * gv_each_kernel<FN> runs the GV_HD item function FN(i, args...) of kernels/shared/gv_items.h for
 * every item i of a pass; the arithmetic is the host's (tests/ops/test_hd_backend.c runs the same
 * header through the op harness on every machine), so what only a GPU tests here is this launch
 * (tests/gpu/test_cuda.c). Every launch goes to the context's stream, the module's one stream.
 * Deliberately not here: cuBLAS / cuDNN ops (blas_cuda.cu, conv_cudnn.cu), the Philox fill
 * (philox_cuda.cu), block-cooperative reductions: an item is one thread, which keeps the CPU's
 * summation order bit for bit; rows of a norm or a softmax are therefore serial per thread, the
 * first thing a profile on a GPU should look at. */
#include "cuda_backend.h"

template <auto FN, typename... A> __global__ void gv_each_kernel(int64_t n, A... a) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (int64_t)blockDim.x * gridDim.x)
        FN(i, a...);
}

#define GV_OWN_OP(name) gv_cuda_##name
#define GV_EACH(c, n, FN, ...)                                                                     \
    do {                                                                                           \
        const int64_t gv_n_ = (int64_t)(n);                                                        \
        if (gv_n_ > 0) {                                                                           \
            gv_each_kernel<FN><<<gv_cuda_grid_for(gv_n_), GV_CUDA_BLOCK, 0,                        \
                                 gv_cuda_impl_of(c)->stream>>>(gv_n_, __VA_ARGS__);                \
            GV_CUDA_CHECK_LAUNCH(#FN);                                                             \
        }                                                                                          \
    } while (0)
#include "gv_own_ops.h"

/* The bias passes of linear and conv (blas_cuda.cu, conv_cudnn.cu). */
gv_status gv_cuda_bias_add(gv_ctx *c, float *y, const float *b, int64_t rows, int K,
                           int64_t inner) {
    GV_EACH(c, rows * K * inner, gv_item_bias_add, y, b, K, inner);
    return GV_OK;
}
gv_status gv_cuda_bias_grad(gv_ctx *c, float *db, const float *dy, int64_t rows, int K,
                            int64_t inner) {
    GV_EACH(c, K, gv_item_bias_grad, db, dy, rows, K, inner);
    return GV_OK;
}
gv_status gv_cuda_accumulate(gv_ctx *c, float *dst, const float *src, int64_t n) {
    GV_EACH(c, n, gv_item_add_channel_dx, dst, src);
    return GV_OK;
}
