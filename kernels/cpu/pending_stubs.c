/* TEMPORARY during parallel development: weak fallbacks so libgrove links while kernels land.
 * Deleted before the foundation issue is closed; any op still missing then is a link error. */
#include "cpu_backend.h"

#define GV_CPU_PENDING_(name, args)                                                                \
    __attribute__((weak)) gv_status gv_cpu_##name args {                                          \
        return GV_ERROR(GV_ERR_UNSUPPORTED, "cpu op '%s' not built yet", #name);                   \
    }
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
GROVE_OP_LIST(GV_CPU_PENDING_)
#pragma GCC diagnostic pop

__attribute__((weak)) gv_status gv_dnnl_state_create(gv_ctx *c, struct gv_dnnl_state **out) {
    (void)c;
    *out = NULL;
    return GV_OK;
}
__attribute__((weak)) void gv_dnnl_state_destroy(struct gv_dnnl_state *s) { (void)s; }
__attribute__((weak)) const char *gv_dnnl_describe(void) { return "oneDNN (pending)"; }
