/* Loading a backend from a shared module (the CUDA backend, libgrove_cuda.so).
 *
 * engine/core knows no backend: it only opens a module, looks up its init symbol and calls it. The
 * caller (the CLI's main, a test) decides which module and registers the result (DESIGN.md §3).
 * Deliberately not here: validation (gv_backend_register does it) and unloading (a loaded backend
 * lives until the process exits, so the module is never dlclose()d). */
#ifndef GROVE_MODULE_H
#define GROVE_MODULE_H

#include <stddef.h>

#include "grove/backend.h"
#include "grove/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define GROVE_CUDA_MODULE_FILE "libgrove_cuda.so"

/* dlopen(path, RTLD_NOW | RTLD_LOCAL), look up `symbol` (a gv_backend_init_fn) and call it.
   Errors, one line each:
     GV_ERR_IO           the file does not exist (named)
     GV_ERR_BACKEND      dlopen failed (dlerror() verbatim) or the symbol is missing
     GV_ERR_UNSUPPORTED  the init function returned NULL: its own message ("no GPU: ...")
   On success *out is the backend, not yet validated or registered. */
gv_status gv_backend_load_module(const char *path, const char *symbol, const gv_backend **out);

/* Where the CUDA module is: $GROVE_CUDA_MODULE if set (used as given, even if missing, so the load
   names it), else libgrove_cuda.so next to the running executable (/proc/self/exe), else
   libgrove_cuda.so in `compiled_dir` (may be NULL). GV_ERR_UNSUPPORTED naming the places looked at
   when none exists. */
gv_status gv_cuda_module_path_in(char *buf, size_t n, const char *compiled_dir);

/* The same, with the directory compiled into the including program (the CLI is built with
   GROVE_CUDA_MODULE_DIR pointing at the build root; tests may define it before including). */
static inline gv_status gv_cuda_module_path(char *buf, size_t n) {
#ifdef GROVE_CUDA_MODULE_DIR
    return gv_cuda_module_path_in(buf, n, GROVE_CUDA_MODULE_DIR);
#else
    return gv_cuda_module_path_in(buf, n, NULL);
#endif
}

#ifdef __cplusplus
}
#endif
#endif
