/* linear and matmul through cuBLAS (row-major tensors on column-major GEMMs).
 *
 * A row-major product C (m, n) = op(A) op(B) is the column-major product C^T = op(B)^T op(A)^T on
 * the same memory, so every call below passes B before A with the row lengths as leading
 * dimensions. Backward GEMMs use beta = 1: cuBLAS adds into the gradient, which is the += rule of
 * ops.h without a temporary. Bias passes are own items (gv_items.h). The handle runs on the module
 * stream with a start-up workspace (backend_cuda.cu), in CUBLAS_DEFAULT_MATH (no TF32: fp32 GEMMs
 * stay fp32, so CPU/CUDA parity holds to float rounding). A row of y depends only on its row of x:
 * per-sample outputs are independent of the other rows (DESIGN.md §3).
 * linear_forward with a bias goes through cuBLASLt with the BIAS epilogue (y = x w^T + b in one
 * kernel, fp32 compute CUBLAS_COMPUTE_32F: no TF32), one cached matmul descriptor, layouts and
 * heuristic algorithm per shape (GV_LT_CACHE), the cuBLAS workspace shared (one stream orders
 * them). A shape for which cuBLASLt offers no algorithm is remembered and takes the cuBLAS GEMM +
 * bias item path, as does every call when GROVE_CUDA_FUSE=0 (the parity test compares both).
 * Deliberately not here: mixed precision, fused backward epilogues (dbias from the GEMM). */
#include <stdlib.h>
#include <string.h>

#include "cuda_backend.h"

#define GV_LT_CACHE 64

typedef struct gv_lt_plan {
    int used, unsupported;
    gv_linear_dims d;
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t a, b, y; /* w (stored Din x Dout), x (Din x N), y (Dout x N), col-major */
    cublasLtMatmulAlgo_t algo;
} gv_lt_plan;

struct gv_lt_cache {
    gv_lt_plan e[GV_LT_CACHE];
};

static void lt_plan_free(gv_lt_plan *p) {
    if (p->op) (void)cublasLtMatmulDescDestroy(p->op);
    if (p->a) (void)cublasLtMatrixLayoutDestroy(p->a);
    if (p->b) (void)cublasLtMatrixLayoutDestroy(p->b);
    if (p->y) (void)cublasLtMatrixLayoutDestroy(p->y);
    memset(p, 0, sizeof *p);
}

void gv_cuda_lt_cache_free(gv_lt_cache *cache) {
    if (!cache) return;
    for (int i = 0; i < GV_LT_CACHE; ++i)
        if (cache->e[i].used) lt_plan_free(&cache->e[i]);
    free(cache);
}

/* Descriptor, layouts and the heuristics' first algorithm for d; GV_ERR_UNSUPPORTED when cuBLASLt
   has none within the workspace. */
static gv_status lt_build(gv_cuda_impl *impl, gv_lt_plan *p) {
    const gv_linear_dims *d = &p->d;
    const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    const cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
    GV_CUBLAS_CHECK(cublasLtMatmulDescCreate(&p->op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    GV_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
    GV_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
    GV_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi));
    GV_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->a, CUDA_R_32F, d->Din, d->Dout, d->Din));
    GV_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->b, CUDA_R_32F, d->Din, d->N, d->Din));
    GV_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->y, CUDA_R_32F, d->Dout, d->N, d->Dout));
    cublasLtMatmulPreference_t pref = NULL;
    GV_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    const size_t ws = impl->cublas_workspace_bytes;
    cublasLtMatmulHeuristicResult_t result;
    int found = 0;
    cublasStatus_t e = cublasLtMatmulPreferenceSetAttribute(
        pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws);
    if (e == CUBLAS_STATUS_SUCCESS)
        e = cublasLtMatmulAlgoGetHeuristic(impl->cublaslt, p->op, p->a, p->b, p->y, p->y, pref, 1,
                                           &result, &found);
    (void)cublasLtMatmulPreferenceDestroy(pref);
    if (e != CUBLAS_STATUS_SUCCESS || found < 1 || result.state != CUBLAS_STATUS_SUCCESS)
        return GV_ERROR(GV_ERR_UNSUPPORTED, "linear_forward: cuBLASLt has no bias-epilogue "
                        "algorithm for N %d Din %d Dout %d", d->N, d->Din, d->Dout);
    p->algo = result.algo;
    return GV_OK;
}

/* The cached plan of d (NULL *out: cuBLASLt cannot run it; use the cuBLAS path). */
static gv_status lt_plan_for(gv_cuda_impl *impl, const gv_linear_dims *d, gv_lt_plan **out) {
    *out = NULL;
    if (!impl->lt_cache) {
        impl->lt_cache = (gv_lt_cache *)calloc(1, sizeof *impl->lt_cache);
        if (!impl->lt_cache) return GV_ERROR(GV_ERR_OOM, "linear: cannot allocate a plan cache");
    }
    gv_lt_plan *slot = NULL;
    for (int i = 0; i < GV_LT_CACHE; ++i) {
        gv_lt_plan *p = &impl->lt_cache->e[i];
        if (p->used && p->d.N == d->N && p->d.Din == d->Din && p->d.Dout == d->Dout) {
            if (!p->unsupported) *out = p;
            return GV_OK;
        }
        if (!p->used && !slot) slot = p;
    }
    if (!slot) return GV_OK; /* cache full: the cuBLAS path, still correct */
    slot->d = *d;
    if (lt_build(impl, slot) != GV_OK) {
        lt_plan_free(slot);
        gv_clear_error();
        slot->d = *d;
        slot->unsupported = 1;
    }
    slot->used = 1;
    if (!slot->unsupported) *out = slot;
    return GV_OK;
}

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
    gv_cuda_impl *impl = gv_cuda_impl_of(c);
    gv_lt_plan *p = NULL;
    if (b && impl->fuse_conv_bias) GV_TRY(lt_plan_for(impl, d, &p));
    if (p) { /* y = x w^T + b, one cuBLASLt kernel */
        GV_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &b,
                                                       sizeof b));
        GV_CUBLAS_CHECK(cublasLtMatmul(impl->cublaslt, p->op, &one, w, p->a, x, p->b, &zero, y,
                                       p->y, y, p->y, &p->algo, impl->cublas_workspace,
                                       impl->cublas_workspace_bytes, impl->stream));
        return GV_OK;
    }
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
