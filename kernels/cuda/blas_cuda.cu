/* linear and matmul through cuBLAS (row-major tensors on column-major GEMMs).
 *
 * A row-major product C (m, n) = op(A) op(B) is the column-major product C^T = op(B)^T op(A)^T on
 * the same memory, so every call below passes B before A with the row lengths as leading
 * dimensions. Backward GEMMs use beta = 1: cuBLAS adds into the gradient, which is the += rule of
 * ops.h without a temporary. Bias passes are own items (gv_items.h). The handle runs on the module
 * stream with a start-up workspace (backend_cuda.cu), in CUBLAS_DEFAULT_MATH (no TF32: fp32 GEMMs
 * stay fp32, so CPU/CUDA parity holds to float rounding). A row of y depends only on its row of x:
 * per-sample outputs are independent of the other rows (DESIGN.md §3).
 * Deliberately not here: cuBLASLt epilogues (bias fused into the GEMM), mixed precision. */
#include "cuda_backend.h"

static gv_status check_linear(const char *op, const gv_linear_dims *d) {
    if (d->N <= 0 || d->Din <= 0 || d->Dout <= 0)
        return GV_ERROR(GV_ERR_INVALID, "%s: N = %d, Din = %d, Dout = %d must be positive", op,
                        d->N, d->Din, d->Dout);
    return GV_OK;
}

static gv_status check_matmul(const char *op, const gv_matmul_dims *d) {
    if (d->B <= 0 || d->M <= 0 || d->K <= 0 || d->N <= 0)
        return GV_ERROR(GV_ERR_INVALID, "%s: B = %d, M = %d, K = %d, N = %d must be positive", op,
                        d->B, d->M, d->K, d->N);
    return GV_OK;
}

gv_status gv_cuda_linear_forward(gv_ctx *c, float *y, const float *x, const float *w,
                                 const float *b, const gv_linear_dims *d) {
    GV_TRY(check_linear("linear_forward", d));
    const float one = 1.0f, zero = 0.0f;
    /* y (N, Dout) = x (N, Din) . w^T, w (Dout, Din) */
    GV_CUBLAS_CHECK(cublasSgemm(gv_cuda_impl_of(c)->cublas, CUBLAS_OP_T, CUBLAS_OP_N, d->Dout,
                                d->N, d->Din, &one, w, d->Din, x, d->Din, &zero, y, d->Dout));
    if (b) GV_TRY(gv_cuda_bias_add(c, y, b, d->N, d->Dout, 1));
    return GV_OK;
}

gv_status gv_cuda_linear_backward(gv_ctx *c, float *dx, float *dw, float *db, const float *dy,
                                  const float *x, const float *w, const gv_linear_dims *d) {
    GV_TRY(check_linear("linear_backward", d));
    const float one = 1.0f;
    cublasHandle_t h = gv_cuda_impl_of(c)->cublas;
    if (dx) /* dx (N, Din) += dy (N, Dout) . w (Dout, Din) */
        GV_CUBLAS_CHECK(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, d->Din, d->N, d->Dout, &one, w,
                                    d->Din, dy, d->Dout, &one, dx, d->Din));
    if (dw) /* dw (Dout, Din) += dy^T (Dout, N) . x (N, Din) */
        GV_CUBLAS_CHECK(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_T, d->Din, d->Dout, d->N, &one, x,
                                    d->Din, dy, d->Dout, &one, dw, d->Din));
    if (db) GV_TRY(gv_cuda_bias_grad(c, db, dy, d->N, d->Dout, 1));
    return GV_OK;
}

gv_status gv_cuda_matmul_forward(gv_ctx *c, float *y, const float *a, const float *b,
                                 const gv_matmul_dims *d) {
    GV_TRY(check_matmul("matmul_forward", d));
    const float one = 1.0f, zero = 0.0f;
    /* y (M, N) = a (M, K) . b (K, N), per batch entry */
    GV_CUBLAS_CHECK(cublasSgemmStridedBatched(
        gv_cuda_impl_of(c)->cublas, CUBLAS_OP_N, CUBLAS_OP_N, d->N, d->M, d->K, &one, b, d->N,
        (long long)d->K * d->N, a, d->K, (long long)d->M * d->K, &zero, y, d->N,
        (long long)d->M * d->N, d->B));
    return GV_OK;
}

gv_status gv_cuda_matmul_backward(gv_ctx *c, float *da, float *db, const float *dy, const float *a,
                                  const float *b, const gv_matmul_dims *d) {
    GV_TRY(check_matmul("matmul_backward", d));
    const float one = 1.0f;
    cublasHandle_t h = gv_cuda_impl_of(c)->cublas;
    if (da) /* da (M, K) += dy (M, N) . b^T */
        GV_CUBLAS_CHECK(cublasSgemmStridedBatched(
            h, CUBLAS_OP_T, CUBLAS_OP_N, d->K, d->M, d->N, &one, b, d->N, (long long)d->K * d->N,
            dy, d->N, (long long)d->M * d->N, &one, da, d->K, (long long)d->M * d->K, d->B));
    if (db) /* db (K, N) += a^T (K, M) . dy (M, N) */
        GV_CUBLAS_CHECK(cublasSgemmStridedBatched(
            h, CUBLAS_OP_N, CUBLAS_OP_T, d->N, d->K, d->M, &one, dy, d->N, (long long)d->M * d->N,
            a, d->K, (long long)d->M * d->K, &one, db, d->N, (long long)d->K * d->N, d->B));
    return GV_OK;
}
