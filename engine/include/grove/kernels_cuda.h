/* The CUDA backend's public face (kernels/cuda): the module file, its one exported init symbol and
 * where to look for it. Like kernels_cpu.h, this belongs to the backend, not to engine/core; main
 * and the GPU tests include it. */
#ifndef GROVE_KERNELS_CUDA_H
#define GROVE_KERNELS_CUDA_H

#include "grove/module.h"

#define GROVE_CUDA_MODULE_FILE "libgrove_cuda.so"
#define GROVE_CUDA_MODULE_ENV "GROVE_CUDA_MODULE"
#define GROVE_CUDA_INIT_SYMBOL "grove_backend_cuda_init" /* a gv_backend_init_fn */

/* $GROVE_CUDA_MODULE, else libgrove_cuda.so next to the executable, else in the directory compiled
   into the including program (GROVE_CUDA_MODULE_DIR; the CLI is built with the build root). */
static inline gv_status gv_cuda_module_path(char *buf, size_t n) {
#ifdef GROVE_CUDA_MODULE_DIR
    return gv_module_find(GROVE_CUDA_MODULE_FILE, GROVE_CUDA_MODULE_ENV, GROVE_CUDA_MODULE_DIR, buf, n);
#else
    return gv_module_find(GROVE_CUDA_MODULE_FILE, GROVE_CUDA_MODULE_ENV, NULL, buf, n);
#endif
}

#endif
