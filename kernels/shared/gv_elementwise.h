/* Per-element arithmetic of the elementwise ops, shared by host and device (GV_HD).
 *
 * The CUDA kernels in kernels/cuda/elementwise_cuda.cu are launch loops around these functions;
 * tests/cpu/test_hd_arith.c compiles the same functions on the host and compares them with the CPU
 * reference kernels (the specification), so the arithmetic is tested on every machine and only the
 * launch glue needs a GPU. Every expression is contraction-free (see gv_math.h); exp is gv_hd_expf,
 * not libm's or CUDA's, so host and device produce the same bits.
 *
 * Deliberately not here: loops, memory, anything that knows about a backend. */
#ifndef GROVE_GV_ELEMENTWISE_H
#define GROVE_GV_ELEMENTWISE_H

#include "gv_math.h"

/* sigmoid(x) = 1 / (1 + exp(-x)) */
GV_HD float gv_hd_sigmoid(float x) { return 1.0f / (1.0f + gv_hd_expf(-x)); }

/* silu(x) = x * sigmoid(x), computed as x / (1 + exp(-x)) (one rounding fewer). */
GV_HD float gv_hd_silu(float x) { return x / (1.0f + gv_hd_expf(-x)); }

/* d silu / dx = s * (1 + x * (1 - s)), s = sigmoid(x). */
GV_HD float gv_hd_silu_grad(float x) {
    float s = gv_hd_sigmoid(x);
    return s * (1.0f + x * (1.0f - s));
}

/* silu_backward's per-element update (the += gradient rule): dx + dy * silu'(x). */
GV_HD float gv_hd_silu_backward(float dx, float dy, float x) {
    return dx + dy * gv_hd_silu_grad(x);
}

/* y = alpha * x + beta * y: two roundings for the products, one for the sum. beta == 0 still reads
 * y (0 * NaN is NaN), exactly as the formula in ops.h says. */
GV_HD float gv_hd_axpby(float alpha, float x, float beta, float y) { return alpha * x + beta * y; }

/* y = alpha * x */
GV_HD float gv_hd_scale(float alpha, float x) { return alpha * x; }

/* y = a + b */
GV_HD float gv_hd_add(float a, float b) { return a + b; }

#endif
