/* CUDA module internals shared by the .cu files of kernels/cuda (not a public header).
 *
 * The module has ONE stream (created by the init function) on which memory operations and every
 * kernel run, so the backend's context-free memory calls and the ops are ordered without events.
 * Each gv_ctx holds a cuBLAS and a cuDNN handle bound to that stream. Every CUDA, cuBLAS and cuDNN
 * call goes through a GV_*_CHECK macro, which turns a failure into a one-line GV_ERR_BACKEND naming
 * the call. Deliberately not here: kernels (own_ops.cu, blas_cuda.cu, conv_cudnn.cu, philox_cuda.cu). */
#ifndef GROVE_CUDA_BACKEND_H
#define GROVE_CUDA_BACKEND_H

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include "grove/backend.h"

#define GV_CHECK_FAIL_(call, why)                                                                  \
    GV_ERROR(GV_ERR_BACKEND, "cuda: %s failed: %s", call, why)

#define GV_CUDA_CHECK(call)                                                                        \
    do {                                                                                           \
        cudaError_t gv_e_ = (call);                                                                \
        if (gv_e_ != cudaSuccess) return GV_CHECK_FAIL_(#call, cudaGetErrorString(gv_e_));         \
    } while (0)

#define GV_CUBLAS_CHECK(call)                                                                      \
    do {                                                                                           \
        cublasStatus_t gv_e_ = (call);                                                             \
        if (gv_e_ != CUBLAS_STATUS_SUCCESS)                                                        \
            return GV_CHECK_FAIL_(#call, cublasGetStatusString(gv_e_));                            \
    } while (0)

#define GV_CUDNN_CHECK(call)                                                                       \
    do {                                                                                           \
        cudnnStatus_t gv_e_ = (call);                                                              \
        if (gv_e_ != CUDNN_STATUS_SUCCESS)                                                        \
            return GV_CHECK_FAIL_(#call, cudnnGetErrorString(gv_e_));                              \
    } while (0)

/* After a kernel launch: configuration errors surface here, execution errors at the next sync. */
#define GV_CUDA_CHECK_LAUNCH(kernel_name)                                                          \
    do {                                                                                           \
        cudaError_t gv_e_ = cudaGetLastError();                                                    \
        if (gv_e_ != cudaSuccess)                                                                  \
            return GV_CHECK_FAIL_("launch " kernel_name, cudaGetErrorString(gv_e_));               \
    } while (0)

/* Backend-private part of a gv_ctx. */
typedef struct gv_cuda_impl {
    cudaStream_t stream; /* the module stream (not owned) */
    cublasHandle_t cublas;
    cudnnHandle_t cudnn;
    void *cublas_workspace; /* given to cuBLAS at creation, so GEMMs never allocate          */
    size_t cublas_workspace_bytes;
    void *conv_workspace;   /* cuDNN plans' workspace; a plan that needs more is not chosen */
    size_t conv_workspace_bytes;
    struct gv_conv_cache *conv_cache; /* execution plans per shape (conv_cudnn.cu)        */
    int fuse_conv_bias;     /* 1: a conv / linear forward with a bias tries the fused cuDNN
                               graph / cuBLASLt bias epilogue first; GROVE_CUDA_FUSE=0 at
                               context creation sets 0 (parity tests)                        */
    cublasLtHandle_t cublaslt;
    struct gv_lt_cache *lt_cache; /* cuBLASLt plans per linear shape (blas_cuda.cu)         */
} gv_cuda_impl;

static inline gv_cuda_impl *gv_cuda_impl_of(gv_ctx *c) { return (gv_cuda_impl *)c->impl; }

/* The module stream (backend_cuda.cu). */
cudaStream_t gv_cuda_stream(void);

/* Grid for a grid-stride loop over n elements: 256 threads, at most 64 blocks per SM. */
#define GV_CUDA_BLOCK 256
unsigned gv_cuda_grid_for(int64_t n);

/* Every op of the table (GROVE_OP_LIST): own_ops.cu (gv_own_ops.h), blas_cuda.cu, conv_cudnn.cu,
   philox_cuda.cu define gv_cuda_<op>; backend_cuda.cu puts them into the table. */
#define GV_CUDA_DECL_(name, args) gv_status gv_cuda_##name args;
GROVE_OP_LIST(GV_CUDA_DECL_)
#undef GV_CUDA_DECL_

/* Shared passes of the library ops (own_ops.cu): y (rows, K, inner) += b[k]; db[k] += sums of dy;
   dst (n) += src. */
gv_status gv_cuda_bias_add(gv_ctx *c, float *y, const float *b, int64_t rows, int K,
                           int64_t inner);
gv_status gv_cuda_bias_grad(gv_ctx *c, float *db, const float *dy, int64_t rows, int K,
                            int64_t inner);
gv_status gv_cuda_accumulate(gv_ctx *c, float *dst, const float *src, int64_t n);

/* Convolution plans (conv_cudnn.cu): the per-context cache, freed with the context. */
typedef struct gv_conv_cache gv_conv_cache;
void gv_cuda_conv_cache_free(gv_conv_cache *cache);
/* cuBLASLt bias-epilogue plans (blas_cuda.cu), freed with the context. */
typedef struct gv_lt_cache gv_lt_cache;
void gv_cuda_lt_cache_free(gv_lt_cache *cache);

#endif
