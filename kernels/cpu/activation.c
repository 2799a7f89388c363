/* Reference SiLU and GELU (tanh approximation) kernels: forward and backward, elementwise.
 *
 *   silu(x)  = x * s(x),             s(x) = 1 / (1 + exp(-x))
 *   silu'(x) = s(x) * (1 + x * (1 - s(x)))
 *   gelu(x)  = 0.5 x (1 + tanh(u)),  u = sqrt(2/pi) (x + 0.044715 x^3)   (Hendrycks & Gimpel 2016)
 *   gelu'(x) = 0.5 (1 + tanh(u)) + 0.5 x (1 - tanh(u)^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2)
 * The per-element functions are static inline float arithmetic so they can move verbatim into a
 * GV_HD header in kernels/shared for the CUDA module. Backward adds into dx (ops.h).
 * Fast path (ctx->use_fast): GELU's tanh as 1 - 2 / (1 + exp(2u)) with expf (glibc's tanhf is
 * several times slower than expf); tested against the reference by the op harness (parity).
 * Deliberately not here: the exact erf GELU, fused bias/norm variants. */
#include <math.h>

#include "cpu_backend.h"

#define GV_GELU_K 0.7978845608028654f /* sqrt(2/pi) */
#define GV_GELU_C 0.044715f
/* Below this many elements the loops run on one thread (the fork costs more than it saves). */
#define GV_ACT_PARALLEL_MIN 16384

static inline float silu_value(float x) { return x / (1.0f + expf(-x)); }

static inline float silu_grad(float x) {
    const float s = 1.0f / (1.0f + expf(-x));
    return s * (1.0f + x * (1.0f - s));
}

static inline float gelu_value(float x) {
    const float u = GV_GELU_K * (x + GV_GELU_C * x * x * x);
    return 0.5f * x * (1.0f + tanhf(u));
}

static inline float gelu_grad(float x) {
    const float u = GV_GELU_K * (x + GV_GELU_C * x * x * x);
    const float t = tanhf(u);
    const float du = GV_GELU_K * (1.0f + 3.0f * GV_GELU_C * x * x); /* du/dx */
    return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * du;
}

/* tanh(u) = 1 - 2 / (1 + e^{2u}): exact limits +-1 when e^{2u} overflows / underflows */
static inline float tanh_fast(float u) { return 1.0f - 2.0f / (1.0f + expf(2.0f * u)); }

static inline float gelu_value_fast(float x) {
    const float u = GV_GELU_K * (x + GV_GELU_C * x * x * x);
    return 0.5f * x * (1.0f + tanh_fast(u));
}

static inline float gelu_grad_fast(float x) {
    const float u = GV_GELU_K * (x + GV_GELU_C * x * x * x);
    const float t = tanh_fast(u);
    const float du = GV_GELU_K * (1.0f + 3.0f * GV_GELU_C * x * x);
    return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * du;
}

static gv_status check_n(const char *op, const gv_ew_dims *d) {
    if (d->n <= 0)
        return GV_ERROR(GV_ERR_INVALID, "%s: n = %lld must be positive", op, (long long)d->n);
    return GV_OK;
}

gv_status gv_cpu_silu_forward(gv_ctx *c, float *y, const float *x, const gv_ew_dims *d) {
    GV_TRY(check_n("silu_forward", d));
#pragma omp parallel for num_threads(c->threads) if (d->n >= GV_ACT_PARALLEL_MIN)
    for (int64_t i = 0; i < d->n; ++i) y[i] = silu_value(x[i]);
    return GV_OK;
}

gv_status gv_cpu_silu_backward(gv_ctx *c, float *dx, const float *dy, const float *x,
                               const gv_ew_dims *d) {
    GV_TRY(check_n("silu_backward", d));
    if (!dx) return GV_OK;
#pragma omp parallel for num_threads(c->threads) if (d->n >= GV_ACT_PARALLEL_MIN)
    for (int64_t i = 0; i < d->n; ++i) dx[i] += dy[i] * silu_grad(x[i]);
    return GV_OK;
}

gv_status gv_cpu_gelu_forward(gv_ctx *c, float *y, const float *x, const gv_ew_dims *d) {
    GV_TRY(check_n("gelu_forward", d));
    if (c->use_fast) {
#pragma omp parallel for num_threads(c->threads) if (d->n >= GV_ACT_PARALLEL_MIN)
        for (int64_t i = 0; i < d->n; ++i) y[i] = gelu_value_fast(x[i]);
        return GV_OK;
    }
#pragma omp parallel for num_threads(c->threads) if (d->n >= GV_ACT_PARALLEL_MIN)
    for (int64_t i = 0; i < d->n; ++i) y[i] = gelu_value(x[i]);
    return GV_OK;
}

gv_status gv_cpu_gelu_backward(gv_ctx *c, float *dx, const float *dy, const float *x,
                               const gv_ew_dims *d) {
    GV_TRY(check_n("gelu_backward", d));
    if (!dx) return GV_OK;
    if (c->use_fast) {
#pragma omp parallel for num_threads(c->threads) if (d->n >= GV_ACT_PARALLEL_MIN)
        for (int64_t i = 0; i < d->n; ++i) dx[i] += dy[i] * gelu_grad_fast(x[i]);
        return GV_OK;
    }
#pragma omp parallel for num_threads(c->threads) if (d->n >= GV_ACT_PARALLEL_MIN)
    for (int64_t i = 0; i < d->n; ++i) dx[i] += dy[i] * gelu_grad(x[i]);
    return GV_OK;
}
