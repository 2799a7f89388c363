/* conv2d forward / backward-data / backward-filter through cuDNN's graph (backend) API.
 *
 * Per (direction, shape) one operation graph of a single convolution node is built, cuDNN's
 * heuristics (mode A) rank engine configurations, and the first one that finalizes into an
 * execution plan whose workspace fits the context's start-up conv workspace, and whose numerical
 * notes allow it, is kept in the context's plan cache (GV_CONV_CACHE entries, built once per shape;
 * the legacy cudnnConvolutionForward / BackwardData / BackwardFilter calls are not used). The
 * notes filter, in order of preference: first no tensor cores / down-converted inputs (fp32 on
 * Ampere+ would otherwise run TF32 and lose CPU parity) and no non-deterministic engines (runs must
 * repeat bit for bit), then deterministic only relaxed, then anything cuDNN offers (named in the
 * error if even that fails).
 * Tensors are NCHW packed, float, with a 4-byte alignment (views into arenas need not be more
 * aligned). Forward writes y (beta 0); the backwards write into context scratch and add (the +=
 * rule of ops.h, kept with an own item rather than a cuDNN beta = 1 that not every engine takes).
 * Bias (forward): a fused graph, convolution -> pointwise ADD of the (1, K, 1, 1) bias broadcast,
 * with the conv output a virtual tensor, so y is written once. It is tried first for every forward
 * with a bias; when cuDNN offers no engine for the fused graph within the same notes filter (fp32
 * fusion engines are often tensor-core only, which the filter refuses), the shape's cache entry
 * remembers that and the forward runs the single-convolution plan plus the bias item (gv_items.h)
 * from then on. GROVE_CUDA_FUSE=0 in the environment (read when a context is created) turns the
 * fused graph off, for the parity test that compares both. The models have no conv -> SiLU pair
 * (every conv is followed by a norm, a residual add or nothing), so no activation node is built.
 * A sample's output depends only on its own input.
 * Deliberately not here: autotuning by timing (heuristics only), fused backward graphs.
 * The operation-graph and plan handle attributes are the cuDNN 9 ones every 9.x accepts
 * (the lent GPU image may carry an older 9.x than the headers here). */
#include <stdlib.h>
#include <string.h>

#include "cuda_backend.h"

#define GV_CONV_CACHE 128
#define GV_CONV_DESCS 12 /* descriptors kept alive with a plan */

/* directions; GV_CONV_FWD_BIAS is the fused conv -> bias-add graph */
enum { GV_CONV_FWD = 0, GV_CONV_BWD_DATA = 1, GV_CONV_BWD_FILTER = 2, GV_CONV_FWD_BIAS = 3 };

typedef struct gv_conv_plan {
    int used;
    int dir;
    gv_conv2d_dims d;
    cudnnBackendDescriptor_t plan;
    cudnnBackendDescriptor_t keep[GV_CONV_DESCS]; /* tensors, conv, op, graph, cfg */
    int nkeep;
    int64_t workspace;
    int unsupported; /* GV_CONV_FWD_BIAS only: cuDNN has no allowed engine; use the unfused path */
} gv_conv_plan;

struct gv_conv_cache {
    gv_conv_plan e[GV_CONV_CACHE];
};

static void plan_free(gv_conv_plan *p) {
    if (p->plan) (void)cudnnBackendDestroyDescriptor(p->plan);
    for (int i = 0; i < p->nkeep; ++i)
        if (p->keep[i]) (void)cudnnBackendDestroyDescriptor(p->keep[i]);
    memset(p, 0, sizeof *p);
}

void gv_cuda_conv_cache_free(gv_conv_cache *cache) {
    if (!cache) return;
    for (int i = 0; i < GV_CONV_CACHE; ++i)
        if (cache->e[i].used) plan_free(&cache->e[i]);
    free(cache);
}

static gv_status check_conv(const char *op, const gv_conv2d_dims *d) {
    gv_conv2d_dims t = *d;
    if (d->N <= 0 || d->C <= 0 || d->H <= 0 || d->W <= 0 || d->K <= 0 || d->R <= 0 || d->S <= 0 ||
        !gv_conv2d_dims_set(&t) || t.P != d->P || t.Q != d->Q)
        return GV_ERROR(GV_ERR_INVALID,
                        "%s: invalid geometry N %d C %d H %d W %d K %d R %d S %d stride %d pad %d "
                        "(P %d Q %d)", op, d->N, d->C, d->H, d->W, d->K, d->R, d->S, d->stride,
                        d->pad, d->P, d->Q);
    return GV_OK;
}

#define SET(desc, attr, type, count, ptr) GV_CUDNN_CHECK(cudnnBackendSetAttribute(desc, attr, type, count, ptr))

/* A finalized NCHW float tensor descriptor with unique id uid (virtual: an intermediate of a fused
   graph that never reaches memory). */
static gv_status make_tensor_v(gv_conv_plan *p, int64_t uid, int64_t n, int64_t c, int64_t h,
                               int64_t w, bool is_virtual, cudnnBackendDescriptor_t *out) {
    cudnnBackendDescriptor_t t = NULL;
    GV_CUDNN_CHECK(cudnnBackendCreateDescriptor(CUDNN_BACKEND_TENSOR_DESCRIPTOR, &t));
    p->keep[p->nkeep++] = t;
    const int64_t dims[4] = {n, c, h, w}, strides[4] = {c * h * w, h * w, w, 1};
    const int64_t align = 4;
    const cudnnDataType_t dtype = CUDNN_DATA_FLOAT;
    SET(t, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &dtype);
    SET(t, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, dims);
    SET(t, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, strides);
    SET(t, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid);
    SET(t, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &align);
    if (is_virtual) SET(t, CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &is_virtual);
    GV_CUDNN_CHECK(cudnnBackendFinalize(t));
    *out = t;
    return GV_OK;
}
static gv_status make_tensor(gv_conv_plan *p, int64_t uid, int64_t n, int64_t c, int64_t h,
                             int64_t w, cudnnBackendDescriptor_t *out) {
    return make_tensor_v(p, uid, n, c, h, w, false, out);
}

/* The fused graph's second node: y = conv_out + bias (broadcast over N, H, W), fp32. */
static gv_status make_bias_add(gv_conv_plan *p, cudnnBackendDescriptor_t conv_out,
                               cudnnBackendDescriptor_t y, cudnnBackendDescriptor_t *out) {
    const gv_conv2d_dims *d = &p->d;
    cudnnBackendDescriptor_t bias = NULL, pw = NULL, op = NULL;
    GV_TRY(make_tensor(p, 'b', 1, d->K, 1, 1, &bias));
    GV_CUDNN_CHECK(cudnnBackendCreateDescriptor(CUDNN_BACKEND_POINTWISE_DESCRIPTOR, &pw));
    p->keep[p->nkeep++] = pw;
    const cudnnPointwiseMode_t mode = CUDNN_POINTWISE_ADD;
    const cudnnDataType_t prec = CUDNN_DATA_FLOAT;
    SET(pw, CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode);
    SET(pw, CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1, &prec);
    GV_CUDNN_CHECK(cudnnBackendFinalize(pw));
    GV_CUDNN_CHECK(cudnnBackendCreateDescriptor(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR, &op));
    p->keep[p->nkeep++] = op;
    const cudnnBackendAttributeType_t B = CUDNN_TYPE_BACKEND_DESCRIPTOR;
    SET(op, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, B, 1, &pw);
    SET(op, CUDNN_ATTR_OPERATION_POINTWISE_XDESC, B, 1, &conv_out);
    SET(op, CUDNN_ATTR_OPERATION_POINTWISE_BDESC, B, 1, &bias);
    SET(op, CUDNN_ATTR_OPERATION_POINTWISE_YDESC, B, 1, &y);
    GV_CUDNN_CHECK(cudnnBackendFinalize(op));
    *out = op;
    return GV_OK;
}

/* 1 when the engine of cfg has none of the notes in `banned` (a bit per cudnnBackendNumericalNote_t). */
static int engine_allowed(cudnnBackendDescriptor_t cfg, unsigned banned) {
    cudnnBackendDescriptor_t engine = NULL;
    if (cudnnBackendCreateDescriptor(CUDNN_BACKEND_ENGINE_DESCRIPTOR, &engine) !=
        CUDNN_STATUS_SUCCESS)
        return 0;
    int64_t got = 0;
    int ok = cudnnBackendGetAttribute(cfg, CUDNN_ATTR_ENGINECFG_ENGINE,
                                      CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &got, &engine) ==
             CUDNN_STATUS_SUCCESS;
    cudnnBackendNumericalNote_t notes[CUDNN_NUMERICAL_NOTE_TYPE_COUNT];
    int64_t nnotes = 0;
    if (ok && cudnnBackendGetAttribute(engine, CUDNN_ATTR_ENGINE_NUMERICAL_NOTE,
                                       CUDNN_TYPE_NUMERICAL_NOTE, CUDNN_NUMERICAL_NOTE_TYPE_COUNT,
                                       &nnotes, notes) != CUDNN_STATUS_SUCCESS)
        ok = 0;
    for (int64_t i = 0; ok && i < nnotes; ++i)
        if (banned & (1u << (unsigned)notes[i])) ok = 0;
    (void)cudnnBackendDestroyDescriptor(engine);
    return ok;
}

/* Builds the plan of p->dir for p->d into p (graph, heuristics, first allowed config). */
static gv_status build_plan(gv_ctx *c, gv_conv_plan *p) {
    gv_cuda_impl *impl = gv_cuda_impl_of(c);
    const gv_conv2d_dims *d = &p->d;
    cudnnBackendDescriptor_t x, w, y, conv, op, graph, heur, conv_y, bias_op = NULL;
    const int fused = p->dir == GV_CONV_FWD_BIAS;
    GV_TRY(make_tensor(p, 'x', d->N, d->C, d->H, d->W, &x));
    GV_TRY(make_tensor(p, 'w', d->K, d->C, d->R, d->S, &w));
    GV_TRY(make_tensor(p, 'y', d->N, d->K, d->P, d->Q, &y));
    conv_y = y;
    if (fused) GV_TRY(make_tensor_v(p, 'c', d->N, d->K, d->P, d->Q, true, &conv_y));

    GV_CUDNN_CHECK(cudnnBackendCreateDescriptor(CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR, &conv));
    p->keep[p->nkeep++] = conv;
    const cudnnDataType_t comp = CUDNN_DATA_FLOAT;
    const cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
    /* symmetric padding: cuDNN's output size floor((H + 2 pad - R) / stride) + 1 is P, as on
       the CPU (gv_conv2d_dims_set); rows the floor drops are simply never read */
    const int64_t spatial = 2, ones[2] = {1, 1}, stride[2] = {d->stride, d->stride},
                  pad[2] = {d->pad, d->pad}, post[2] = {d->pad, d->pad};
    SET(conv, CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &comp);
    SET(conv, CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE, 1, &mode);
    SET(conv, CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, CUDNN_TYPE_INT64, 1, &spatial);
    SET(conv, CUDNN_ATTR_CONVOLUTION_DILATIONS, CUDNN_TYPE_INT64, 2, ones);
    SET(conv, CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, CUDNN_TYPE_INT64, 2, stride);
    SET(conv, CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, CUDNN_TYPE_INT64, 2, pad);
    SET(conv, CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, CUDNN_TYPE_INT64, 2, post);
    GV_CUDNN_CHECK(cudnnBackendFinalize(conv));

    const float alpha = 1.0f, beta = 0.0f;
    const cudnnBackendDescriptorType_t op_type[3] = {
        CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR,
        CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_DATA_DESCRIPTOR,
        CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_FILTER_DESCRIPTOR};
    GV_CUDNN_CHECK(cudnnBackendCreateDescriptor(op_type[fused ? GV_CONV_FWD : p->dir], &op));
    p->keep[p->nkeep++] = op;
    const cudnnBackendAttributeType_t B = CUDNN_TYPE_BACKEND_DESCRIPTOR;
    if (p->dir == GV_CONV_FWD || fused) {
        SET(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X, B, 1, &x);
        SET(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W, B, 1, &w);
        SET(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y, B, 1, &conv_y);
        SET(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC, B, 1, &conv);
        SET(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA, CUDNN_TYPE_FLOAT, 1, &alpha);
        SET(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA, CUDNN_TYPE_FLOAT, 1, &beta);
    } else if (p->dir == GV_CONV_BWD_DATA) {
        SET(op, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DX, B, 1, &x);
        SET(op, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_W, B, 1, &w);
        SET(op, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DY, B, 1, &y);
        SET(op, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_CONV_DESC, B, 1, &conv);
        SET(op, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_ALPHA, CUDNN_TYPE_FLOAT, 1, &alpha);
        SET(op, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_BETA, CUDNN_TYPE_FLOAT, 1, &beta);
    } else {
        SET(op, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_X, B, 1, &x);
        SET(op, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DW, B, 1, &w);
        SET(op, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DY, B, 1, &y);
        SET(op, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_CONV_DESC, B, 1, &conv);
        SET(op, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_ALPHA, CUDNN_TYPE_FLOAT, 1, &alpha);
        SET(op, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_BETA, CUDNN_TYPE_FLOAT, 1, &beta);
    }
    GV_CUDNN_CHECK(cudnnBackendFinalize(op));
    if (fused) GV_TRY(make_bias_add(p, conv_y, y, &bias_op));

    GV_CUDNN_CHECK(cudnnBackendCreateDescriptor(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR, &graph));
    p->keep[p->nkeep++] = graph;
    cudnnBackendDescriptor_t ops[2] = {op, bias_op};
    SET(graph, CUDNN_ATTR_OPERATIONGRAPH_OPS, B, fused ? 2 : 1, ops);
    SET(graph, CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &impl->cudnn);
    GV_CUDNN_CHECK(cudnnBackendFinalize(graph));

    GV_CUDNN_CHECK(cudnnBackendCreateDescriptor(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR, &heur));
    gv_status s = GV_OK;
    const cudnnBackendHeurMode_t hmode = CUDNN_HEUR_MODE_A;
    int64_t count = 0;
    cudnnBackendDescriptor_t *cfgs = NULL;
    cudnnStatus_t e = cudnnBackendSetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, B, 1,
                                               &graph);
    if (e == CUDNN_STATUS_SUCCESS)
        e = cudnnBackendSetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1,
                                     &hmode);
    if (e == CUDNN_STATUS_SUCCESS) e = cudnnBackendFinalize(heur);
    if (e == CUDNN_STATUS_SUCCESS)
        e = cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS, B, 0, &count, NULL);
    if (e != CUDNN_STATUS_SUCCESS) {
        (void)cudnnBackendDestroyDescriptor(heur);
        return GV_CHECK_FAIL_("cudnn engine heuristics", cudnnGetErrorString(e));
    }
    cfgs = (cudnnBackendDescriptor_t *)calloc(count ? (size_t)count : 1, sizeof *cfgs);
    if (!cfgs) {
        (void)cudnnBackendDestroyDescriptor(heur);
        return GV_ERROR(GV_ERR_OOM, "conv2d: cannot allocate %lld engine configs", (long long)count);
    }
    int64_t got = 0;
    for (int64_t i = 0; i < count && e == CUDNN_STATUS_SUCCESS; ++i)
        e = cudnnBackendCreateDescriptor(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR, &cfgs[i]);
    if (e == CUDNN_STATUS_SUCCESS)
        e = cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS, B, count, &got, cfgs);
    /* preference passes: strict, then non-deterministic allowed; never tensor-core / down-convert
       (TF32) engines, which would break CPU parity (README, GPU) */
    const unsigned tc = (1u << CUDNN_NUMERICAL_NOTE_TENSOR_CORE) |
                        (1u << CUDNN_NUMERICAL_NOTE_DOWN_CONVERT_INPUTS) |
                        (1u << CUDNN_NUMERICAL_NOTE_REDUCED_PRECISION_REDUCTION);
    const unsigned passes[2] = {tc | (1u << CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC), tc};
    int chosen = -1;
    for (int pass = 0; pass < 2 && chosen < 0 && e == CUDNN_STATUS_SUCCESS; ++pass)
        for (int64_t i = 0; i < got && chosen < 0; ++i) {
            if (!engine_allowed(cfgs[i], passes[pass])) continue;
            cudnnBackendDescriptor_t plan = NULL;
            if (cudnnBackendCreateDescriptor(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR, &plan) !=
                CUDNN_STATUS_SUCCESS)
                continue;
            int64_t ws = 0, nws = 0;
            int ok = cudnnBackendSetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_HANDLE,
                                              CUDNN_TYPE_HANDLE, 1, &impl->cudnn) ==
                         CUDNN_STATUS_SUCCESS &&
                     cudnnBackendSetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, B, 1,
                                              &cfgs[i]) == CUDNN_STATUS_SUCCESS &&
                     cudnnBackendFinalize(plan) == CUDNN_STATUS_SUCCESS &&
                     cudnnBackendGetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE,
                                              CUDNN_TYPE_INT64, 1, &nws, &ws) ==
                         CUDNN_STATUS_SUCCESS &&
                     ws >= 0 && (size_t)ws <= impl->conv_workspace_bytes;
            if (!ok) {
                (void)cudnnBackendDestroyDescriptor(plan);
                continue;
            }
            p->plan = plan;
            p->workspace = ws;
            chosen = (int)i;
        }
    for (int64_t i = 0; i < count; ++i) {
        if (i == chosen) {
            p->keep[p->nkeep++] = cfgs[i]; /* the plan refers to it */
        } else if (cfgs[i]) {
            (void)cudnnBackendDestroyDescriptor(cfgs[i]);
        }
    }
    free(cfgs);
    (void)cudnnBackendDestroyDescriptor(heur);
    if (e != CUDNN_STATUS_SUCCESS) return GV_CHECK_FAIL_("cudnn engine configs", cudnnGetErrorString(e));
    if (chosen < 0)
        s = GV_ERROR(GV_ERR_BACKEND,
                     "conv2d: cuDNN offers no engine for direction %d, N %d C %d H %d W %d K %d "
                     "R %d S %d stride %d pad %d within %zu bytes of workspace",
                     p->dir, d->N, d->C, d->H, d->W, d->K, d->R, d->S, d->stride, d->pad,
                     impl->conv_workspace_bytes);
    return s;
}

static int same_dims(const gv_conv2d_dims *a, const gv_conv2d_dims *b) {
    return a->N == b->N && a->C == b->C && a->H == b->H && a->W == b->W && a->K == b->K &&
           a->R == b->R && a->S == b->S && a->stride == b->stride && a->pad == b->pad;
}

/* The cached plan of (dir, d), built on first use (start-up: the first step of a run). A fused
   graph cuDNN cannot run is cached as unsupported (p->unsupported, no plan), not as an error. */
static gv_status get_plan(gv_ctx *c, int dir, const gv_conv2d_dims *d, gv_conv_plan **out) {
    gv_cuda_impl *impl = gv_cuda_impl_of(c);
    if (!impl->conv_cache) {
        impl->conv_cache = (gv_conv_cache *)calloc(1, sizeof *impl->conv_cache);
        if (!impl->conv_cache) return GV_ERROR(GV_ERR_OOM, "conv2d: cannot allocate a plan cache");
    }
    gv_conv_plan *free_slot = NULL;
    for (int i = 0; i < GV_CONV_CACHE; ++i) {
        gv_conv_plan *p = &impl->conv_cache->e[i];
        if (p->used && p->dir == dir && same_dims(&p->d, d)) {
            *out = p;
            return GV_OK;
        }
        if (!p->used && !free_slot) free_slot = p;
    }
    if (!free_slot)
        return GV_ERROR(GV_ERR_BACKEND, "conv2d: plan cache full (%d shapes)", GV_CONV_CACHE);
    free_slot->dir = dir;
    free_slot->d = *d;
    gv_status s = build_plan(c, free_slot);
    if (s != GV_OK && dir == GV_CONV_FWD_BIAS) {
        plan_free(free_slot);
        gv_clear_error();
        free_slot->dir = dir;
        free_slot->d = *d;
        free_slot->unsupported = 1;
    } else if (s != GV_OK) {
        plan_free(free_slot);
        return s;
    }
    free_slot->used = 1;
    *out = free_slot;
    return GV_OK;
}

/* Runs plan p with x, w, y (and, for the fused graph, the bias b) bound to their uids. */
static gv_status execute(gv_ctx *c, gv_conv_plan *p, const void *x, const void *w, const void *y,
                         const void *b = NULL) {
    gv_cuda_impl *impl = gv_cuda_impl_of(c);
    cudnnBackendDescriptor_t pack = NULL;
    GV_CUDNN_CHECK(cudnnBackendCreateDescriptor(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, &pack));
    const int64_t uids[4] = {'x', 'w', 'y', 'b'};
    void *ptrs[4] = {(void *)x, (void *)w, (void *)y, (void *)b};
    const int64_t nptr = p->dir == GV_CONV_FWD_BIAS ? 4 : 3;
    void *ws = impl->conv_workspace;
    cudnnStatus_t e = cudnnBackendSetAttribute(pack, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS,
                                               CUDNN_TYPE_INT64, nptr, uids);
    if (e == CUDNN_STATUS_SUCCESS)
        e = cudnnBackendSetAttribute(pack, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS,
                                     CUDNN_TYPE_VOID_PTR, nptr, ptrs);
    if (e == CUDNN_STATUS_SUCCESS)
        e = cudnnBackendSetAttribute(pack, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR,
                                     1, &ws);
    if (e == CUDNN_STATUS_SUCCESS) e = cudnnBackendFinalize(pack);
    if (e == CUDNN_STATUS_SUCCESS) e = cudnnBackendExecute(impl->cudnn, p->plan, pack);
    (void)cudnnBackendDestroyDescriptor(pack);
    if (e != CUDNN_STATUS_SUCCESS) return GV_CHECK_FAIL_("cudnnBackendExecute(conv2d)", cudnnGetErrorString(e));
    return GV_OK;
}

gv_status gv_cuda_conv2d_forward(gv_ctx *c, float *y, const float *x, const float *w,
                                 const float *b, const gv_conv2d_dims *d) {
    GV_TRY(check_conv("conv2d_forward", d));
    gv_conv_plan *p = NULL;
    if (b && gv_cuda_impl_of(c)->fuse_conv_bias) {
        GV_TRY(get_plan(c, GV_CONV_FWD_BIAS, d, &p));
        if (!p->unsupported) return execute(c, p, x, w, y, b);
    }
    GV_TRY(get_plan(c, GV_CONV_FWD, d, &p));
    GV_TRY(execute(c, p, x, w, y));
    if (b) GV_TRY(gv_cuda_bias_add(c, y, b, d->N, d->K, (int64_t)d->P * d->Q));
    return GV_OK;
}

gv_status gv_cuda_conv2d_backward(gv_ctx *c, float *dx, float *dw, float *db, const float *dy,
                                  const float *x, const float *w, const gv_conv2d_dims *d) {
    GV_TRY(check_conv("conv2d_backward", d));
    if (db) GV_TRY(gv_cuda_bias_grad(c, db, dy, d->N, d->K, (int64_t)d->P * d->Q));
    if (!dx && !dw) return GV_OK;
    const size_t mark = gv_arena_mark(&c->scratch);
    gv_status s = GV_OK;
    if (dx) {
        const int64_t n = (int64_t)d->N * d->C * d->H * d->W;
        float *tmp = NULL;
        gv_conv_plan *p = NULL;
        s = gv_arena_floats(&c->scratch, (size_t)n, &tmp);
        if (s == GV_OK) s = get_plan(c, GV_CONV_BWD_DATA, d, &p);
        if (s == GV_OK) s = execute(c, p, tmp, w, dy);
        if (s == GV_OK) s = gv_cuda_accumulate(c, dx, tmp, n);
        gv_arena_reset_to(&c->scratch, mark);
    }
    if (s == GV_OK && dw) {
        const int64_t n = (int64_t)d->K * d->C * d->R * d->S;
        float *tmp = NULL;
        gv_conv_plan *p = NULL;
        s = gv_arena_floats(&c->scratch, (size_t)n, &tmp);
        if (s == GV_OK) s = get_plan(c, GV_CONV_BWD_FILTER, d, &p);
        if (s == GV_OK) s = execute(c, p, x, tmp, dy);
        if (s == GV_OK) s = gv_cuda_accumulate(c, dw, tmp, n);
        gv_arena_reset_to(&c->scratch, mark);
    }
    return s;
}
