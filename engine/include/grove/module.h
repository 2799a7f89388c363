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

/* dlopen(path, RTLD_NOW | RTLD_LOCAL), look up `symbol` (a gv_backend_init_fn) and call it.
   Errors, one line each:
     GV_ERR_IO           the file does not exist (named)
     GV_ERR_BACKEND      dlopen failed (dlerror() verbatim) or the symbol is missing
     GV_ERR_UNSUPPORTED  the init function returned NULL: its own message ("no GPU: ...")
   On success *out is the backend, not yet validated or registered. */
gv_status gv_backend_load_module(const char *path, const char *symbol, const gv_backend **out);

/* Where module `file` is: $<env_var> if set (used as given, even if missing, so the load names
   it), else `file` next to the running executable (/proc/self/exe), else in `compiled_dir` (may be
   NULL). GV_ERR_UNSUPPORTED naming the places looked at when none exists. */
gv_status gv_module_find(const char *file, const char *env_var, const char *compiled_dir,
                         char *buf, size_t n);

#ifdef __cplusplus
}
#endif
#endif
