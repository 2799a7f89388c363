/* The CPU backend without oneDNN (GROVE_ONEDNN=OFF, and libgrove's carried variant for the GPU
 * machine, CMakeLists.txt "oneDNN"): the same entry points as dnnl_glue.c, so conv2d.c, linear.c
 * and backend_cpu.c compile and link unchanged, but no state is ever made. A context asked for
 * fast paths (use_fast = 1) then has impl->dnnl == NULL, and conv2d/linear/matmul run their
 * reference kernels: the results are the reference kernels' bits.
 *
 * Deliberately not here: any other fast path. The conv/matmul entry points only reach
 * gv_dnnl_conv2d_* / gv_dnnl_matmul when a state exists, so those report a bug if called. */
#include <string.h>

#include "cpu_backend.h"
#include "dnnl_glue.h"

gv_status gv_dnnl_state_create(gv_ctx *c, struct gv_dnnl_state **out) {
    (void)c;
    *out = NULL; /* no state: the op entry points take the reference kernels */
    return GV_OK;
}

void gv_dnnl_state_destroy(struct gv_dnnl_state *s) { (void)s; }

static gv_status not_built(const char *what) {
    return GV_ERROR(GV_ERR_INTERNAL, "%s: this libgrove is built without oneDNN (GROVE_ONEDNN=OFF); "
                                     "the reference kernel should have been called",
                    what);
}

gv_status gv_dnnl_conv2d_forward(gv_ctx *c, float *y, const float *x, const float *w,
                                 const float *b, const gv_conv2d_dims *d) {
    (void)c, (void)y, (void)x, (void)w, (void)b, (void)d;
    return not_built("conv2d_forward");
}

gv_status gv_dnnl_conv2d_backward(gv_ctx *c, float *dx, float *dw, float *db, const float *dy,
                                  const float *x, const float *w, const gv_conv2d_dims *d) {
    (void)c, (void)dx, (void)dw, (void)db, (void)dy, (void)x, (void)w, (void)d;
    return not_built("conv2d_backward");
}

gv_status gv_dnnl_matmul(gv_ctx *c, float *y, const float *a, const float *b, const float *bias,
                         const gv_dnnl_matmul_args *m) {
    (void)c, (void)y, (void)a, (void)b, (void)bias, (void)m;
    return not_built("matmul");
}

void gv_dnnl_cache_stats_get(gv_ctx *c, gv_dnnl_cache_stats *out) {
    (void)c;
    memset(out, 0, sizeof *out);
}

const char *gv_dnnl_last_impl(gv_ctx *c) {
    (void)c;
    return "";
}

const char *gv_dnnl_describe(void) { return "no oneDNN (libgrove built without it)"; }
