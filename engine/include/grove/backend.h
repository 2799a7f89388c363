/* Backends and the registry that knows none of them.
 *
 * A backend is a vtable: memory (alloc/free/copies), an execution context factory and an op table.
 * `kernels/cpu` exposes grove_backend_cpu() (kernels_cpu.h); the CUDA module exports the symbol
 * named in kernels_cuda.h; the CLI's main registers whatever is present (DESIGN.md §3). engine/core
 * only stores and looks backends up; it never names one. */
#ifndef GROVE_BACKEND_H
#define GROVE_BACKEND_H

#include <stddef.h>

#include "grove/arena.h"
#include "grove/ops.h"
#include "grove/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define GV_BACKEND_ABI_VERSION 1u

typedef struct gv_backend gv_backend;

/* Per-thread-of-control execution context: what an op needs besides its arguments. */
struct gv_ctx {
    const gv_backend *backend;
    int threads;      /* CPU threads (OpenMP, oneDNN); 0 before create resolves it        */
    int use_fast;     /* 1: fast paths (oneDNN, cuDNN) where present; 0: reference kernels */
    gv_arena scratch; /* backend memory for op temporaries (oneDNN backward outputs)     */
    void *impl;       /* backend-private state (primitive caches, handles, streams)       */
};

typedef struct gv_ctx_options {
    int threads;  /* 0 = GROVE_THREADS if set, else all cores */
    int use_fast; /* see gv_ctx */
    size_t scratch_bytes; /* 0 = the backend's default */
} gv_ctx_options;

struct gv_backend {
    uint32_t abi_version; /* GV_BACKEND_ABI_VERSION                              */
    uint32_t struct_size; /* sizeof(gv_backend) as the backend was built        */
    const char *name;     /* "cpu", "cuda"                                      */
    const gv_ops *ops;

    /* One line for `grove version`: "oneDNN 2.6.3, 2 threads", "NVIDIA H200, driver ..., cuDNN ...".
       Returns GV_ERR_UNSUPPORTED with a message when the backend cannot run here ("no GPU"). */
    gv_status (*describe)(char *buf, size_t len);

    gv_status (*ctx_create)(const gv_ctx_options *opt, gv_ctx **out);
    void (*ctx_destroy)(gv_ctx *c);

    /* Memory. alloc returns GV_ERR_OOM naming the size on failure. */
    gv_status (*alloc)(size_t bytes, void **out);
    void (*free)(void *p);
    gv_status (*copy_to_host)(void *host_dst, const void *src, size_t bytes);
    gv_status (*copy_from_host)(void *dst, const void *host_src, size_t bytes);
    gv_status (*copy)(void *dst, const void *src, size_t bytes);
    gv_status (*memset_zero)(void *dst, size_t bytes);
    gv_status (*synchronize)(void);
};

/* A backend module's one exported entry point (DESIGN.md §3; the CUDA module's is named in
   grove/kernels_cuda.h). Returns NULL + message when the module cannot run here. */
typedef const gv_backend *(*gv_backend_init_fn)(char *err, size_t err_len);

/* ---- registry -------------------------------------------------------------------------------- */
#define GV_MAX_BACKENDS 4

/* Registers `be` after gv_backend_validate; registering a name twice is an error. */
gv_status gv_backend_register(const gv_backend *be);
/* Looks a backend up by name; GV_ERR_UNSUPPORTED naming the known ones if absent. */
gv_status gv_backend_find(const char *name, const gv_backend **out);
int gv_backend_count(void);
const gv_backend *gv_backend_at(int i);
/* Checks ABI version, struct size and that every op in GROVE_OP_LIST is present, naming the
   first missing op. */
gv_status gv_backend_validate(const gv_backend *be);
/* Test hook: forget all registrations. */
void gv_backend_registry_clear(void);

/* Threads: `requested` > 0, else GROVE_THREADS, else the number of online cores. */
int gv_resolve_threads(int requested);

#ifdef __cplusplus
}
#endif
#endif
