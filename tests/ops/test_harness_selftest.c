/* Self-test of the op harness: every check must be able to fail.
 *
 * A wrapped CPU backend replaces one op at a time by a faulty variant (wrong sign, overwriting
 * instead of +=, a 3% error, a row that leaks into another, a fast path that disagrees, a gradient
 * that needs its neighbour, an element never written) and the harness must report the check meant
 * to catch it. The faulty kernels read and write tensors directly: this file only ever wraps the
 * CPU backend, whose memory is host memory. Not here: the checks of the real kernels (test_ops_main.c). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "grove/kernels_cpu.h"
#include "harness.h"

static const gv_ops *real(void) { return grove_backend_cpu()->ops; }

/* dx = dy-path result, overwriting instead of adding (breaks the += rule). */
static gv_status silu_backward_overwrites(gv_ctx *c, float *dx, const float *dy, const float *x,
                                          const gv_ew_dims *d) {
    if (dx) memset(dx, 0, (size_t)d->n * sizeof(float));
    return real()->silu_backward(c, dx, dy, x, d);
}

/* The gradient with the wrong sign. */
static gv_status softmax_backward_wrong_sign(gv_ctx *c, float *dx, const float *dy,
                                             const float *y, const gv_rows_dims *d) {
    int64_t n = d->R * d->D;
    float *neg = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; ++i) neg[i] = -dy[i];
    gv_status s = real()->softmax_backward(c, dx, neg, y, d);
    free(neg);
    return s;
}

/* dx 3% too large (a stand-in for a missing small term); += still respected. */
static gv_status layernorm_backward_3pct(gv_ctx *c, float *dx, float *dgamma, float *dbeta,
                                         const float *dy, const float *x, const float *mean,
                                         const float *rstd, const float *gamma,
                                         const gv_layernorm_dims *d) {
    int64_t n = d->N * d->D;
    float *tmp = calloc((size_t)n, sizeof(float));
    gv_status s = real()->layernorm_backward(c, dx ? tmp : NULL, dgamma, dbeta, dy, x, mean, rstd,
                                             gamma, d);
    for (int64_t i = 0; dx && i < n; ++i) dx[i] += 1.03f * tmp[i];
    free(tmp);
    return s;
}

/* Every output element picks up a trace of the first row's input: not batch invariant. */
static gv_status add_channel_forward_leaks(gv_ctx *c, float *y, const float *x, const float *e,
                                           const gv_channel_dims *d) {
    GV_TRY(real()->add_channel_forward(c, y, x, e, d));
    int64_t n = (int64_t)d->N * d->C * d->HW;
    for (int64_t i = 0; i < n; ++i) y[i] += 1e-6f * x[0];
    return GV_OK;
}

/* A forward off by 1e-3 relative (the fp64 reference must see it). */
static gv_status gelu_forward_off(gv_ctx *c, float *y, const float *x, const gv_ew_dims *d) {
    GV_TRY(real()->gelu_forward(c, y, x, d));
    for (int64_t i = 0; i < d->n; ++i) y[i] *= 1.001f;
    return GV_OK;
}

/* The fast path disagrees with the reference in one element. */
static gv_status conv2d_forward_fast_differs(gv_ctx *c, float *y, const float *x, const float *w,
                                             const float *b, const gv_conv2d_dims *d) {
    GV_TRY(real()->conv2d_forward(c, y, x, w, b, d));
    if (c->use_fast) y[0] += 1e-2f * (fabsf(y[0]) + 1.0f);
    return GV_OK;
}

/* dw is only computed when db is wanted too. */
static gv_status linear_backward_needs_db(gv_ctx *c, float *dx, float *dw, float *db,
                                          const float *dy, const float *x, const float *w,
                                          const gv_linear_dims *d) {
    return real()->linear_backward(c, dx, db ? dw : NULL, db, dy, x, w, d);
}

/* The last output element is never written. */
static gv_status upsample_forward_short(gv_ctx *c, float *y, const float *x,
                                        const gv_upsample_dims *d) {
    int64_t n = (int64_t)d->N * d->C * d->H * d->W * d->f * d->f;
    float last = y[n - 1];
    GV_TRY(real()->upsample_nearest_forward(c, y, x, d));
    y[n - 1] = last;
    return GV_OK;
}

static void install_silu(gv_ops *o) { o->silu_backward = silu_backward_overwrites; }
static void install_softmax(gv_ops *o) { o->softmax_backward = softmax_backward_wrong_sign; }
static void install_layernorm(gv_ops *o) { o->layernorm_backward = layernorm_backward_3pct; }
static void install_add_channel(gv_ops *o) { o->add_channel_forward = add_channel_forward_leaks; }
static void install_gelu(gv_ops *o) { o->gelu_forward = gelu_forward_off; }
static void install_conv2d(gv_ops *o) { o->conv2d_forward = conv2d_forward_fast_differs; }
static void install_linear(gv_ops *o) { o->linear_backward = linear_backward_needs_db; }
static void install_upsample(gv_ops *o) { o->upsample_nearest_forward = upsample_forward_short; }

typedef struct gv_mutant {
    const char *what;
    int op;                    /* the op whose checks run       */
    void (*install)(gv_ops *); /* puts the faulty kernel in place */
    const char *expect;        /* the report line that must appear */
} gv_mutant;

static const gv_mutant mutants[] = {
    {"= instead of +=", GV_OP_silu_backward, install_silu, "FAIL sentinel silu_backward"},
    {"wrong sign", GV_OP_softmax_backward, install_softmax, "FAIL fd softmax_backward"},
    {"3% gradient error", GV_OP_layernorm_backward, install_layernorm, "FAIL fd layernorm_backward"},
    {"row leak", GV_OP_add_channel_forward, install_add_channel, "FAIL batch add_channel_forward"},
    {"1e-3 forward error", GV_OP_gelu_forward, install_gelu, "FAIL ref gelu_forward"},
    {"fast path differs", GV_OP_conv2d_forward, install_conv2d, "FAIL parity conv2d_forward"},
    {"NULL db drops dw", GV_OP_linear_backward, install_linear, "FAIL nullgrad linear_backward"},
    {"element not written", GV_OP_upsample_nearest_forward, install_upsample,
     "FAIL ref upsample_nearest_forward"},
};

Test(harness, detects_faulty_kernels, .timeout = 120) {
    for (size_t m = 0; m < sizeof mutants / sizeof mutants[0]; ++m) {
        gv_ops ops = *real();
        mutants[m].install(&ops);
        gv_backend be = *grove_backend_cpu();
        be.ops = &ops;
        be.name = "selftest: faulty kernel, FAIL expected";
        FILE *log = tmpfile();
        cr_assert(log, "tmpfile");
        gv_h_report rep;
        int failures = gv_harness_check_op_on(&be, mutants[m].op, log, &rep);
        long len = ftell(log);
        char *text = calloc((size_t)len + 1, 1);
        rewind(log);
        size_t got = fread(text, 1, (size_t)len, log);
        text[got] = 0;
        fclose(log);
        cr_expect(failures > 0 && strstr(text, mutants[m].expect),
                  "mutant '%s' of %s not caught as '%s' (%d failures); harness said:\n%s",
                  mutants[m].what, gv_op_names[mutants[m].op], mutants[m].expect, failures, text);
        free(text);
    }
}
