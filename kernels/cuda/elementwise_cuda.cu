/* CUDA elementwise ops: silu forward/backward, add, scale, axpby.
 *
 * Each kernel is a grid-stride loop around one GV_HD function of kernels/shared/gv_elementwise.h;
 * the arithmetic itself is tested on every machine by tests/cpu/test_hd_arith.c, so what only a GPU
 * can test here is the launch (tests/gpu/test_cuda.c). Argument checks mirror the CPU reference
 * (kernels/cpu/elementwise.c, activation.c): n must be positive; a NULL gradient output is skipped.
 * Deliberately not here: fused variants, vectorised loads (not needed before a profile says so). */
#include "cuda_backend.h"
#include "gv_elementwise.h"

#define GV_GRID_STRIDE(i, n)                                                                       \
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);                      \
         i += (int64_t)blockDim.x * gridDim.x)

__global__ void gv_silu_forward_kernel(float *y, const float *x, int64_t n) {
    GV_GRID_STRIDE(i, n) y[i] = gv_hd_silu(x[i]);
}

__global__ void gv_silu_backward_kernel(float *dx, const float *dy, const float *x, int64_t n) {
    GV_GRID_STRIDE(i, n) dx[i] = gv_hd_silu_backward(dx[i], dy[i], x[i]);
}

__global__ void gv_add_kernel(float *y, const float *a, const float *b, int64_t n) {
    GV_GRID_STRIDE(i, n) y[i] = gv_hd_add(a[i], b[i]);
}

__global__ void gv_scale_kernel(float *y, const float *x, float alpha, int64_t n) {
    GV_GRID_STRIDE(i, n) y[i] = gv_hd_scale(alpha, x[i]);
}

__global__ void gv_axpby_kernel(float *y, const float *x, float alpha, float beta, int64_t n) {
    GV_GRID_STRIDE(i, n) y[i] = gv_hd_axpby(alpha, x[i], beta, y[i]);
}

static gv_status check_n(const char *op, const gv_ew_dims *d) {
    if (d->n <= 0)
        return GV_ERROR(GV_ERR_INVALID, "%s: n = %lld must be positive", op, (long long)d->n);
    return GV_OK;
}

#define GV_LAUNCH_EW(kernel, c, n, ...)                                                            \
    do {                                                                                           \
        cudaStream_t gv_stream_ = gv_cuda_impl_of(c)->stream;                                     \
        kernel<<<gv_cuda_grid_for(n), GV_CUDA_BLOCK, 0, gv_stream_>>>(__VA_ARGS__);                \
        GV_CUDA_CHECK_LAUNCH(#kernel);                                                             \
    } while (0)

gv_status gv_cuda_silu_forward(gv_ctx *c, float *y, const float *x, const gv_ew_dims *d) {
    GV_TRY(check_n("silu_forward", d));
    GV_LAUNCH_EW(gv_silu_forward_kernel, c, d->n, y, x, d->n);
    return GV_OK;
}

gv_status gv_cuda_silu_backward(gv_ctx *c, float *dx, const float *dy, const float *x,
                                const gv_ew_dims *d) {
    GV_TRY(check_n("silu_backward", d));
    if (!dx) return GV_OK;
    GV_LAUNCH_EW(gv_silu_backward_kernel, c, d->n, dx, dy, x, d->n);
    return GV_OK;
}

gv_status gv_cuda_add(gv_ctx *c, float *y, const float *a, const float *b, const gv_ew_dims *d) {
    GV_TRY(check_n("add", d));
    GV_LAUNCH_EW(gv_add_kernel, c, d->n, y, a, b, d->n);
    return GV_OK;
}

gv_status gv_cuda_scale(gv_ctx *c, float *y, const float *x, float alpha, const gv_ew_dims *d) {
    GV_TRY(check_n("scale", d));
    GV_LAUNCH_EW(gv_scale_kernel, c, d->n, y, x, alpha, d->n);
    return GV_OK;
}

gv_status gv_cuda_axpby(gv_ctx *c, float *y, const float *x, float alpha, float beta,
                        const gv_ew_dims *d) {
    GV_TRY(check_n("axpby", d));
    GV_LAUNCH_EW(gv_axpby_kernel, c, d->n, y, x, alpha, beta, d->n);
    return GV_OK;
}
