/* CPU backend internals shared by the kernel files of kernels/cpu (not a public header).
 *
 * Every op of GROVE_OP_LIST has a CPU entry point gv_cpu_<op> with the list's signature. Ops with
 * a oneDNN fast path dispatch on ctx->use_fast inside that entry point; the reference loop nest is
 * always kept (it is the specification, STYLE.md 2). */
#ifndef GROVE_CPU_BACKEND_H
#define GROVE_CPU_BACKEND_H

#include "grove/backend.h"

#define GV_CPU_DECLARE_(name, args) gv_status gv_cpu_##name args;
GROVE_OP_LIST(GV_CPU_DECLARE_)
#undef GV_CPU_DECLARE_

struct gv_dnnl_state; /* kernels/cpu/dnnl_*.c: engine, stream, primitive cache */

typedef struct gv_cpu_impl {
    struct gv_dnnl_state *dnnl; /* NULL when use_fast == 0 */
} gv_cpu_impl;

/* Provided by the oneDNN glue. */
gv_status gv_dnnl_state_create(gv_ctx *c, struct gv_dnnl_state **out);
void gv_dnnl_state_destroy(struct gv_dnnl_state *s);
/* "oneDNN 2.6.3 (jit:avx512_core)" */
const char *gv_dnnl_describe(void);

static inline gv_cpu_impl *gv_cpu_impl_of(gv_ctx *c) { return (gv_cpu_impl *)c->impl; }

#endif
