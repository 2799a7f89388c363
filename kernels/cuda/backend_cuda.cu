/* The CUDA backend: module init (the one exported symbol), describe, device memory on the module
 * stream, contexts (cuBLAS + cuDNN handles, their start-up workspaces), and the op table.
 *
 * The table is generated from GROVE_OP_LIST (every op has a gv_cuda_<op>: own_ops.cu, blas_cuda.cu,
 * conv_cudnn.cu, philox_cuda.cu), so an op added to the list without a CUDA kernel is a link error
 * of the module, as for the CPU table. Every device buffer a context uses is allocated when the
 * context is created (scratch arena, cuBLAS workspace, cuDNN plan workspace); convolution plans
 * are built on a shape's first use and cached (host memory only).
 * Deliberately not here: kernels, cuDNN convolution plans, cuBLAS GEMM calls. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <type_traits>

#include "cuda_backend.h"
#include "grove/dist.h"

#define GV_CUDA_DEFAULT_SCRATCH ((size_t)256 << 20)
#define GV_CUDA_CUBLAS_WORKSPACE ((size_t)32 << 20)
#define GV_CUDA_CONV_WORKSPACE ((size_t)256 << 20)

static cudaStream_t module_stream; /* created once by the init function, never destroyed */
static int module_sm_count = 1;
static int module_ready;
static gv_ops cuda_ops;
static gv_backend cuda_backend;

cudaStream_t gv_cuda_stream(void) { return module_stream; }

unsigned gv_cuda_grid_for(int64_t n) {
    int64_t blocks = (n + GV_CUDA_BLOCK - 1) / GV_CUDA_BLOCK;
    int64_t cap = (int64_t)module_sm_count * 64;
    if (blocks > cap) blocks = cap;
    return blocks < 1 ? 1u : (unsigned)blocks;
}

/* ---- memory: everything on the module stream ------------------------------------------------- */

static gv_status cuda_alloc(size_t bytes, void **out) {
    *out = NULL;
    cudaError_t e = cudaMalloc(out, bytes ? bytes : GV_ARENA_ALIGN);
    if (e != cudaSuccess) {
        (void)cudaGetLastError(); /* not sticky: clear it, or the next launch check reports it */
        *out = NULL;
        return GV_ERROR(GV_ERR_OOM, "cuda: cudaMalloc of %zu bytes failed: %s", bytes,
                        cudaGetErrorString(e));
    }
    return GV_OK;
}

static void cuda_free(void *p) {
    if (!p) return;
    cudaError_t e = cudaFree(p);
    /* free cannot return a status; the failure is recorded as the thread's last error. */
    if (e != cudaSuccess) (void)GV_CHECK_FAIL_("cudaFree(p)", cudaGetErrorString(e));
}

static gv_status cuda_copy_to_host(void *host_dst, const void *src, size_t bytes) {
    if (!bytes) return GV_OK;
    GV_CUDA_CHECK(cudaMemcpyAsync(host_dst, src, bytes, cudaMemcpyDeviceToHost, module_stream));
    GV_CUDA_CHECK(cudaStreamSynchronize(module_stream));
    return GV_OK;
}

static gv_status cuda_copy_from_host(void *dst, const void *host_src, size_t bytes) {
    if (!bytes) return GV_OK;
    GV_CUDA_CHECK(cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice, module_stream));
    GV_CUDA_CHECK(cudaStreamSynchronize(module_stream)); /* the caller may reuse host_src at once */
    return GV_OK;
}

static gv_status cuda_copy(void *dst, const void *src, size_t bytes) {
    if (!bytes) return GV_OK;
    GV_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, module_stream));
    return GV_OK;
}

static gv_status cuda_memset_zero(void *dst, size_t bytes) {
    if (!bytes) return GV_OK;
    GV_CUDA_CHECK(cudaMemsetAsync(dst, 0, bytes, module_stream));
    return GV_OK;
}

static gv_status cuda_synchronize(void) {
    GV_CUDA_CHECK(cudaStreamSynchronize(module_stream));
    return GV_OK;
}

/* ---- describe -------------------------------------------------------------------------------- */

static void version_str(char *buf, size_t len, size_t v) {
    /* cuDNN 9 numbers versions major*10000 + minor*100 + patch. */
    snprintf(buf, len, "%zu.%zu.%zu", v / 10000, v / 100 % 100, v % 100);
}

/* The kernel driver's version ("570.86.15") from /proc/driver/nvidia/version; "?" when absent
   (cudaDriverGetVersion gives only the CUDA version the driver supports). */
static void driver_version(char *buf, size_t len) {
    snprintf(buf, len, "?");
    FILE *f = fopen("/proc/driver/nvidia/version", "r");
    if (!f) return;
    char line[512];
    if (fgets(line, sizeof line, f)) {
        const char *m = strstr(line, "Kernel Module");
        char v[64];
        if (m && sscanf(m + strlen("Kernel Module"), "%63s", v) == 1) snprintf(buf, len, "%s", v);
    }
    fclose(f);
}

static gv_status cuda_describe(char *buf, size_t len) {
    int dev = 0, driver = 0, runtime = 0;
    cudaDeviceProp prop;
    GV_CUDA_CHECK(cudaGetDevice(&dev));
    GV_CUDA_CHECK(cudaGetDeviceProperties(&prop, dev));
    GV_CUDA_CHECK(cudaDriverGetVersion(&driver));
    GV_CUDA_CHECK(cudaRuntimeGetVersion(&runtime));
    int cublas_major = 0, cublas_minor = 0, cublas_patch = 0;
    GV_CUBLAS_CHECK(cublasGetProperty(MAJOR_VERSION, &cublas_major));
    GV_CUBLAS_CHECK(cublasGetProperty(MINOR_VERSION, &cublas_minor));
    GV_CUBLAS_CHECK(cublasGetProperty(PATCH_LEVEL, &cublas_patch));
    char run_cudnn[32], hdr_cudnn[32], note[96] = "", drv[64];
    driver_version(drv, sizeof drv);
    version_str(run_cudnn, sizeof run_cudnn, cudnnGetVersion());
    version_str(hdr_cudnn, sizeof hdr_cudnn, (size_t)CUDNN_VERSION);
    if (cudnnGetVersion() != (size_t)CUDNN_VERSION)
        snprintf(note, sizeof note, " (built against cuDNN %s: version mismatch)", hdr_cudnn);
    snprintf(buf, len,
             "%s (sm_%d%d, %d SMs, %.1f GiB), driver %s (CUDA %d.%d), runtime CUDA %d.%d, "
             "cuBLAS %d.%d.%d, cuDNN %s%s",
             prop.name, prop.major, prop.minor, prop.multiProcessorCount,
             (double)prop.totalGlobalMem / (1024.0 * 1024.0 * 1024.0), drv, driver / 1000,
             driver % 1000 / 10, runtime / 1000, runtime % 1000 / 10, cublas_major, cublas_minor,
             cublas_patch, run_cudnn, note);
    return GV_OK;
}

/* ---- contexts -------------------------------------------------------------------------------- */

static void cuda_ctx_destroy(gv_ctx *c) {
    if (!c) return;
    gv_cuda_impl *impl = gv_cuda_impl_of(c);
    gv_arena_release(&c->scratch);
    if (impl) {
        gv_cuda_conv_cache_free(impl->conv_cache);
        gv_cuda_lt_cache_free(impl->lt_cache);
        if (impl->cublaslt) {
            cublasStatus_t e = cublasLtDestroy(impl->cublaslt);
            if (e != CUBLAS_STATUS_SUCCESS)
                (void)GV_CHECK_FAIL_("cublasLtDestroy(impl->cublaslt)", cublasGetStatusString(e));
        }
        cuda_free(impl->conv_workspace);
        cuda_free(impl->cublas_workspace);
        if (impl->cudnn) {
            cudnnStatus_t e = cudnnDestroy(impl->cudnn);
            if (e != CUDNN_STATUS_SUCCESS)
                (void)GV_CHECK_FAIL_("cudnnDestroy(impl->cudnn)", cudnnGetErrorString(e));
        }
        if (impl->cublas) {
            cublasStatus_t e = cublasDestroy(impl->cublas);
            if (e != CUBLAS_STATUS_SUCCESS)
                (void)GV_CHECK_FAIL_("cublasDestroy(impl->cublas)", cublasGetStatusString(e));
        }
    }
    free(impl);
    free(c);
}

static gv_status create_handles(gv_cuda_impl *impl) {
    GV_CUBLAS_CHECK(cublasCreate(&impl->cublas));
    GV_CUBLAS_CHECK(cublasSetStream(impl->cublas, impl->stream));
    GV_CUBLAS_CHECK(cublasSetMathMode(impl->cublas, CUBLAS_DEFAULT_MATH)); /* fp32, no TF32 */
    impl->cublas_workspace_bytes = GV_CUDA_CUBLAS_WORKSPACE;
    GV_TRY(cuda_alloc(impl->cublas_workspace_bytes, &impl->cublas_workspace));
    GV_CUBLAS_CHECK(cublasSetWorkspace(impl->cublas, impl->cublas_workspace,
                                       impl->cublas_workspace_bytes));
    GV_CUBLAS_CHECK(cublasLtCreate(&impl->cublaslt));
    impl->conv_workspace_bytes = GV_CUDA_CONV_WORKSPACE;
    GV_TRY(cuda_alloc(impl->conv_workspace_bytes, &impl->conv_workspace));
    GV_CUDNN_CHECK(cudnnCreate(&impl->cudnn));
    GV_CUDNN_CHECK(cudnnSetStream(impl->cudnn, impl->stream));
    return GV_OK;
}

static gv_status cuda_ctx_create(const gv_ctx_options *opt, gv_ctx **out) {
    *out = NULL;
    gv_ctx_options defaults = {0, 1, 0};
    if (!opt) opt = &defaults;
    gv_ctx *c = (gv_ctx *)calloc(1, sizeof *c);
    gv_cuda_impl *impl = (gv_cuda_impl *)calloc(1, sizeof *impl);
    if (!c || !impl) {
        free(c);
        free(impl);
        return GV_ERROR(GV_ERR_OOM, "cuda: cannot allocate a context");
    }
    c->backend = &cuda_backend;
    c->threads = 1; /* host threads are not used by the CUDA ops */
    c->use_fast = opt->use_fast;
    c->impl = impl;
    impl->stream = module_stream;
    const char *fuse = getenv("GROVE_CUDA_FUSE");
    impl->fuse_conv_bias = !(fuse && strcmp(fuse, "0") == 0);
    gv_arena_init(&c->scratch, &cuda_backend, "cuda scratch");
    gv_status s = create_handles(impl);
    if (s == GV_OK)
        s = gv_arena_reserve(&c->scratch,
                             opt->scratch_bytes ? opt->scratch_bytes : GV_CUDA_DEFAULT_SCRATCH);
    if (s != GV_OK) {
        cuda_ctx_destroy(c);
        return s;
    }
    *out = c;
    return GV_OK;
}

/* ---- the table and the exported init --------------------------------------------------------- */

static void fill_backend(void) {
#define GV_CUDA_ENTRY_(name, args) cuda_ops.name = gv_cuda_##name;
    GROVE_OP_LIST(GV_CUDA_ENTRY_)
#undef GV_CUDA_ENTRY_

    memset(&cuda_backend, 0, sizeof cuda_backend);
    cuda_backend.abi_version = GV_BACKEND_ABI_VERSION;
    cuda_backend.struct_size = sizeof(gv_backend);
    cuda_backend.name = "cuda";
    cuda_backend.ops = &cuda_ops;
    cuda_backend.describe = cuda_describe;
    cuda_backend.ctx_create = cuda_ctx_create;
    cuda_backend.ctx_destroy = cuda_ctx_destroy;
    cuda_backend.alloc = cuda_alloc;
    cuda_backend.free = cuda_free;
    cuda_backend.copy_to_host = cuda_copy_to_host;
    cuda_backend.copy_from_host = cuda_copy_from_host;
    cuda_backend.copy = cuda_copy;
    cuda_backend.memset_zero = cuda_memset_zero;
    cuda_backend.synchronize = cuda_synchronize;
}

/* One line into err, for the init function (which reports through its buffer, not gv_error). */
static const gv_backend *init_fail(char *err, size_t err_len, const char *what, cudaError_t e) {
    if (err && err_len) snprintf(err, err_len, "cuda: %s failed: %s", what, cudaGetErrorString(e));
    (void)cudaGetLastError();
    return NULL;
}

extern "C" __attribute__((visibility("default"))) const gv_backend *
grove_backend_cuda_init(char *err, size_t err_len) {
    if (err && err_len) err[0] = '\0';
    /* Without a GPU cudaGetDeviceCount fails (insufficient driver) and leaves count untouched. */
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count <= 0) {
        if (err && err_len)
            snprintf(err, err_len, "no GPU: %s",
                     e != cudaSuccess ? cudaGetErrorString(e) : "no CUDA device found");
        (void)cudaGetLastError();
        return NULL;
    }
    if (module_ready) return &cuda_backend;
    size_t cudnn_runtime = cudnnGetVersion();
    if (cudnn_runtime / 10000 != (size_t)CUDNN_MAJOR) {
        char run[32];
        version_str(run, sizeof run, cudnn_runtime);
        if (err && err_len)
            snprintf(err, err_len, "cuda: cuDNN %s found at run time, the module was built against "
                     "cuDNN %d.%d.%d (major versions differ)", run, CUDNN_MAJOR, CUDNN_MINOR,
                     CUDNN_PATCHLEVEL);
        return NULL;
    }
    /* one GPU per rank of a data-parallel job: the node-local rank mod the device count (dist.h) */
    const int device = gv_dist_local_rank() % count;
    if ((e = cudaSetDevice(device)) != cudaSuccess)
        return init_fail(err, err_len, "cudaSetDevice", e);
    if ((e = cudaDeviceGetAttribute(&module_sm_count, cudaDevAttrMultiProcessorCount, device)) !=
        cudaSuccess)
        return init_fail(err, err_len, "cudaDeviceGetAttribute(multiProcessorCount)", e);
    if ((e = cudaStreamCreateWithFlags(&module_stream, cudaStreamNonBlocking)) != cudaSuccess)
        return init_fail(err, err_len, "cudaStreamCreateWithFlags", e);
    fill_backend();
    module_ready = 1;
    return &cuda_backend;
}

static_assert(std::is_same<decltype(&grove_backend_cuda_init), gv_backend_init_fn>::value,
              "grove_backend_cuda_init must match gv_backend_init_fn (backend.h)");
