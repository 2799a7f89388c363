/* Backend registry and validation (see backend.h). Knows no backend by name. */
#include "grove/backend.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *const gv_op_names[GV_OP_COUNT] = {
#define GV_OP_NAME_(name, args) #name,
    GROVE_OP_LIST(GV_OP_NAME_)
#undef GV_OP_NAME_
};

int gv_ops_has(const gv_ops *ops, int i) {
    switch (i) {
#define GV_OP_CASE_(name, args)                                                                    \
    case GV_OP_##name:                                                                             \
        return ops->name != NULL;
        GROVE_OP_LIST(GV_OP_CASE_)
#undef GV_OP_CASE_
    default:
        return 0;
    }
}

static const gv_backend *registry[GV_MAX_BACKENDS];
static int registry_count;

gv_status gv_backend_validate(const gv_backend *be) {
    if (!be) return GV_ERROR(GV_ERR_BACKEND, "backend is NULL");
    if (be->abi_version != GV_BACKEND_ABI_VERSION)
        return GV_ERROR(GV_ERR_BACKEND, "backend '%s' speaks backend ABI v%u, this grove v%u",
                        be->name ? be->name : "?", be->abi_version, GV_BACKEND_ABI_VERSION);
    if (be->struct_size < sizeof(gv_backend))
        return GV_ERROR(GV_ERR_BACKEND, "backend '%s' struct is %u bytes, expected %zu",
                        be->name ? be->name : "?", be->struct_size, sizeof(gv_backend));
    if (!be->name || !be->ops || !be->ctx_create || !be->ctx_destroy || !be->alloc || !be->free ||
        !be->copy_to_host || !be->copy_from_host || !be->copy || !be->memset_zero ||
        !be->synchronize || !be->describe)
        return GV_ERROR(GV_ERR_BACKEND, "backend '%s' lacks a required entry point",
                        be->name ? be->name : "?");
    for (int i = 0; i < GV_OP_COUNT; ++i)
        if (!gv_ops_has(be->ops, i))
            return GV_ERROR(GV_ERR_BACKEND, "backend '%s' lacks op '%s'", be->name,
                            gv_op_names[i]);
    return GV_OK;
}

gv_status gv_backend_register(const gv_backend *be) {
    GV_TRY(gv_backend_validate(be));
    for (int i = 0; i < registry_count; ++i)
        if (strcmp(registry[i]->name, be->name) == 0)
            return GV_ERROR(GV_ERR_BACKEND, "backend '%s' registered twice", be->name);
    if (registry_count == GV_MAX_BACKENDS)
        return GV_ERROR(GV_ERR_BACKEND, "too many backends (max %d)", GV_MAX_BACKENDS);
    registry[registry_count++] = be;
    return GV_OK;
}

gv_status gv_backend_find(const char *name, const gv_backend **out) {
    char known[256] = "";
    size_t at = 0;
    for (int i = 0; i < registry_count; ++i) {
        if (strcmp(registry[i]->name, name) == 0) {
            *out = registry[i];
            return GV_OK;
        }
        size_t len = strlen(registry[i]->name);
        if (at + len + 3 < sizeof known) {
            if (at) {
                memcpy(known + at, ", ", 2);
                at += 2;
            }
            memcpy(known + at, registry[i]->name, len + 1);
            at += len;
        }
    }
    *out = NULL;
    return GV_ERROR(GV_ERR_UNSUPPORTED, "backend '%s' is not available (available: %s)", name,
                    at ? known : "none");
}

int gv_backend_count(void) { return registry_count; }
const gv_backend *gv_backend_at(int i) {
    return (i >= 0 && i < registry_count) ? registry[i] : NULL;
}
void gv_backend_registry_clear(void) { registry_count = 0; }

int gv_resolve_threads(int requested) {
    if (requested > 0) return requested;
    const char *env = getenv("GROVE_THREADS");
    if (env && *env) {
        char *end = NULL;
        long v = strtol(env, &end, 10);
        if (end && *end == '\0' && v > 0 && v < 4096) return (int)v;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}
