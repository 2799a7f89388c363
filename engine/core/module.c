/* Backend modules: dlopen, init-symbol lookup, and the search for a module file (see module.h). */
#include "grove/module.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

gv_status gv_backend_load_module(const char *path, const char *symbol, const gv_backend **out) {
    *out = NULL;
    struct stat st;
    if (stat(path, &st) != 0)
        return GV_ERROR(GV_ERR_IO, "backend module %s: %s", path, strerror(errno));
    dlerror(); /* clear any stale error */
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        const char *why = dlerror();
        return GV_ERROR(GV_ERR_BACKEND, "dlopen %s: %s", path, why ? why : "unknown error");
    }
    dlerror();
    void *sym = dlsym(handle, symbol);
    const char *why = dlerror();
    if (!sym || why) {
        dlclose(handle);
        return GV_ERROR(GV_ERR_BACKEND, "backend module %s does not export %s%s%s", path, symbol,
                        why ? ": " : "", why ? why : "");
    }
    /* POSIX: a dlsym result converts to a function pointer through memcpy without a warning. */
    gv_backend_init_fn init;
    memcpy(&init, &sym, sizeof init);
    char err[512] = "";
    const gv_backend *be = init(err, sizeof err);
    if (!be) {
        /* The module stays loaded: it may have started a runtime that does not like dlclose. */
        return GV_ERROR(GV_ERR_UNSUPPORTED, "%s", err[0] ? err : "backend module init failed");
    }
    *out = be;
    return GV_OK;
}

/* out = dir/file; 0 when it does not fit. */
static int join_path(char *out, size_t n, const char *dir, const char *file) {
    int len = snprintf(out, n, "%s/%s", dir, file);
    if (len < 0 || (size_t)len >= n) {
        out[0] = '\0';
        return 0;
    }
    return 1;
}

static int file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

gv_status gv_module_find(const char *file, const char *env_var, const char *compiled_dir,
                         char *buf, size_t n) {
    if (!buf || n == 0) return GV_ERROR(GV_ERR_INVALID, "gv_module_find: no buffer");
    buf[0] = '\0';
    const char *env = env_var ? getenv(env_var) : NULL;
    if (env && *env) {
        if ((size_t)snprintf(buf, n, "%s", env) >= n)
            return GV_ERROR(GV_ERR_INVALID, "%s is too long (%zu bytes)", env_var, strlen(env));
        return GV_OK;
    }
    char exe_cand[4096] = "";
    char exe[4096];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len > 0) {
        exe[len] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            join_path(exe_cand, sizeof exe_cand, exe, file);
        }
    }
    if (exe_cand[0] && file_exists(exe_cand)) {
        if ((size_t)snprintf(buf, n, "%s", exe_cand) >= n)
            return GV_ERROR(GV_ERR_INVALID, "module path too long: %s", exe_cand);
        return GV_OK;
    }
    char dir_cand[4096] = "";
    if (compiled_dir && *compiled_dir) {
        if (join_path(dir_cand, sizeof dir_cand, compiled_dir, file) && file_exists(dir_cand)) {
            if ((size_t)snprintf(buf, n, "%s", dir_cand) >= n)
                return GV_ERROR(GV_ERR_INVALID, "module path too long: %s", dir_cand);
            return GV_OK;
        }
    }
    return GV_ERROR(GV_ERR_UNSUPPORTED,
                    "no module %s: %s is unset; not found %s%s%s%s (this build has none)", file,
                    env_var ? env_var : "no variable", exe_cand[0] ? "at " : "next to the executable",
                    exe_cand, dir_cand[0] ? " or " : "", dir_cand);
}
