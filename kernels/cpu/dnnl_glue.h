/* oneDNN fast paths of the CPU backend: the interface between the op entry points (conv2d.c,
 * linear.c) and the oneDNN glue (dnnl_glue.c: state, primitive cache, conv2d and matmul primitives).
 *
 * The entry points validate arguments and dispatch here only when ctx->use_fast is set and the state
 * exists, so these functions assume valid dims. They follow the op table's rules: forwards write,
 * backwards ADD (+=) into every non-NULL gradient. This header deliberately exposes no oneDNN type, so
 * tests can include it without the oneDNN headers (tests/cpu/test_dnnl.c). Not a public header. */
#ifndef GROVE_DNNL_GLUE_H
#define GROVE_DNNL_GLUE_H

#include "grove/backend.h"

struct gv_dnnl_state;

gv_status gv_dnnl_conv2d_forward(gv_ctx *c, float *y, const float *x, const float *w,
                                 const float *b, const gv_conv2d_dims *d);
gv_status gv_dnnl_conv2d_backward(gv_ctx *c, float *dx, float *dw, float *db, const float *dy,
                                  const float *x, const float *w, const gv_conv2d_dims *d);

/* One (possibly batched) product on the oneDNN matmul primitive:
 *   y (B,M,N) {=, +=} op(a) (B,M,K) . op(b) (B,K,N) [+ bias (N), forward only]
 * where op(a) reads a stored as (B,K,M) when a_trans, op(b) reads b stored as (B,N,K) when b_trans.
 * accumulate = 0 writes y; 1 adds into y through arena scratch (the backward += rule). */
typedef struct gv_dnnl_matmul_args {
    int B, M, K, N;
    int a_trans, b_trans;
    int accumulate;
} gv_dnnl_matmul_args;
gv_status gv_dnnl_matmul(gv_ctx *c, float *y, const float *a, const float *b, const float *bias,
                         const gv_dnnl_matmul_args *m);

/* ---- test and benchmark hooks ---------------------------------------------------------------- */

typedef struct gv_dnnl_cache_stats {
    int entries;  /* primitives held (one per op kind x shape)           */
    long created; /* primitives created since the state was made         */
    long reused;  /* calls served by an already created primitive        */
} gv_dnnl_cache_stats;

/* Zeroes when the context has no oneDNN state (use_fast == 0). */
void gv_dnnl_cache_stats_get(gv_ctx *c, gv_dnnl_cache_stats *out);

/* The implementation oneDNN chose for the most recently created primitive ("brg:avx512_core"),
   for benchmarks; "" when none. */
const char *gv_dnnl_last_impl(gv_ctx *c);

#endif
