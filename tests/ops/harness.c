/* The op harness engine: every check of harness.h, written once and driven by the specs.
 *
 * Host side: a case becomes an `hcase` (layout + generated host inputs + the projection r).
 * Backend side: an `hdev` holds one context's copies of every tensor and gradient, reached only
 * through backend->alloc / copy_from_host / copy_to_host / memset_zero (never dereferenced), so the
 * checks run unchanged on a device backend. Deliberately not here: anything op-specific (specs_*.c)
 * and Criterion (test_ops_main.c). */
#include "harness.h"

#include "grove/kernels_cpu.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define GV_H_NMB 4          /* micro-batch size of the batch-invariance check        */
#define GV_H_FD_MAX 40      /* elements perturbed per gradient tensor                 */
#define GV_H_SENTINEL_RTOL 1e-5
#define GV_H_NULLGRAD_RTOL 1e-6

/* ---- small host utilities -------------------------------------------------------------------- */

static void *xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) {
        fprintf(stderr, "op harness: out of host memory (%zu x %zu bytes)\n", n, size);
        abort();
    }
    return p;
}

typedef struct hrng {
    uint64_t s;
} hrng;

static uint64_t hrng_next(hrng *r) { /* splitmix64 */
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static double hrng_uniform(hrng *r) { return (double)(hrng_next(r) >> 11) * 0x1.0p-53; }
static double hrng_normal(hrng *r) {
    double u = hrng_uniform(r), v = hrng_uniform(r);
    return sqrt(-2.0 * log(u + 0x1.0p-60)) * cos(6.283185307179586 * v);
}
static hrng hrng_for(const char *name, int case_i, int salt) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a of the name, then the numbers */
    for (const char *p = name; *p; ++p) h = (h ^ (unsigned char)*p) * 1099511628211ull;
    h = (h ^ (uint64_t)case_i) * 1099511628211ull;
    h = (h ^ (uint64_t)salt) * 1099511628211ull;
    return (hrng){h};
}

static size_t dtype_size(gv_h_dtype d) { return d == GV_H_U8 ? 1 : 4; }
static int is_input(gv_h_role r) { return r == GV_H_IN || r == GV_H_INOUT; }
static int is_output(gv_h_role r) { return r != GV_H_IN; }

static double rms_f(const float *x, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s += (double)x[i] * x[i];
    return n ? sqrt(s / (double)n) : 0.0;
}

/* ---- comparison ------------------------------------------------------------------------------ */

/* Element i passes when |got - want| <= atol + rtol * max(|got|, |want|); NaN never passes. `rel`
   is |got - want| / (atol / rtol + max(|got|, |want|)), so a pass means rel <= rtol. */
typedef struct cmp {
    int64_t bad, first;
    double max_abs, max_rel, got, want;
} cmp;

static cmp compare(const double *got, const double *want, int64_t n, double rtol, double atol) {
    cmp m = {0, -1, 0, 0, 0, 0};
    for (int64_t i = 0; i < n; ++i) {
        double a = got[i], e = want[i], d = fabs(a - e);
        double big = fmax(fabs(a), fabs(e));
        double rel = d / (atol / rtol + big + 1e-300);
        int ok = d <= atol + rtol * big;
        if (!(a == a) || !(e == e)) ok = 0, d = rel = INFINITY;
        if (d > m.max_abs) m.max_abs = d;
        if (rel > m.max_rel) m.max_rel = rel;
        if (!ok && m.bad++ == 0) m.first = i, m.got = a, m.want = e;
    }
    return m;
}

/* Prints a failed comparison; returns 1 if it failed. `index` maps position -> tensor index. */
static int cmp_report(FILE *log, const cmp *m, const char *check, const char *op,
                      const gv_h_case *c, const char *tensor, const int64_t *index,
                      const char *got_name, const char *want_name) {
    if (m->bad == 0) return 0;
    fprintf(log,
            "FAIL %s %s case '%s' tensor %s: %lld bad, max abs %.3e, max rel %.3e; first bad "
            "index %lld: %s %.9g vs %s %.9g\n",
            check, op, c->label, tensor, (long long)m->bad, m->max_abs, m->max_rel,
            (long long)(index ? index[m->first] : m->first), got_name, m->got, want_name, m->want);
    return 1;
}

static void to_double(double *dst, const float *src, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dst[i] = src[i];
}

/* ---- host case data -------------------------------------------------------------------------- */

typedef struct hcase {
    const gv_op_spec *s;
    const gv_h_case *c;
    gv_h_layout L;
    int N;                      /* batch size (per-sample specs), else 1 */
    void *in[GV_H_MAX_TENSORS]; /* host values of every input tensor     */
    float *dy;                  /* projection r of the OUT tensor        */
} hcase;

static int out_index(const gv_op_spec *s) {
    for (int i = 0; i < s->ntensors; ++i)
        if (s->tensors[i].role == GV_H_OUT) return i;
    return -1;
}
static size_t tbytes(const hcase *h, int i) {
    return (size_t)h->L.numel[i] * dtype_size(h->s->tensors[i].dtype);
}

static void gen_fill(const hcase *h, int i, void *dst, hrng *r) {
    const gv_h_tensor *t = &h->s->tensors[i];
    int64_t n = h->L.numel[i], row = (t->flags & GV_H_PER_SAMPLE) ? n / h->N : n;
    for (int64_t j = 0; j < n; ++j) {
        double u = hrng_uniform(r);
        switch (t->gen) {
        case GV_H_NORMAL: ((float *)dst)[j] = (float)hrng_normal(r); break;
        case GV_H_POSITIVE: ((float *)dst)[j] = (float)(0.5 + u); break;
        case GV_H_WEIGHT: ((float *)dst)[j] = u < 0.25 ? 0.0f : (float)hrng_uniform(r); break;
        case GV_H_IDS:
        case GV_H_IDS_PAD:
            ((int32_t *)dst)[j] = (t->gen == GV_H_IDS_PAD && (u < 0.25 || (h->N > 1 && j >= n - row)))
                                      ? -1
                                      : (int32_t)(hrng_next(r) % (uint64_t)h->L.id_hi[i]);
            break;
        case GV_H_MASK:
            ((uint8_t *)dst)[j] = (h->N > 1 && j >= n - row) ? 0 : (u < 0.33 ? 0 : 1);
            break;
        case GV_H_NONE: break;
        }
        if (t->dtype == GV_H_F32) ((float *)dst)[j] += h->L.shift[i];
    }
}

/* Lays out case c (batch size overridden by n_override > 0) and generates its inputs. */
static void hcase_make(hcase *h, const gv_op_spec *s, const gv_h_case *c, int n_override,
                       hrng *r) {
    memset(h, 0, sizeof *h);
    h->s = s;
    h->c = c;
    gv_h_case cc = *c;
    if (s->n_arg >= 0 && n_override > 0) cc.v[s->n_arg] = n_override;
    h->N = s->n_arg >= 0 ? cc.v[s->n_arg] : 1;
    s->layout(&cc, &h->L);
    for (int i = 0; i < s->ntensors; ++i) {
        if (!is_input(s->tensors[i].role) || h->L.numel[i] == 0) continue; /* NULL tensor */
        h->in[i] = xcalloc(tbytes(h, i), 1);
        gen_fill(h, i, h->in[i], r);
    }
    int o = out_index(s);
    if (o >= 0) {
        h->dy = xcalloc((size_t)h->L.numel[o], sizeof(float));
        for (int64_t j = 0; j < h->L.numel[o]; ++j) h->dy[j] = (float)hrng_normal(r);
    }
}

static void hcase_free(hcase *h) {
    for (int i = 0; i < GV_H_MAX_TENSORS; ++i) free(h->in[i]);
    free(h->dy);
}

/* ---- one context's copy of a case ------------------------------------------------------------ */

typedef struct hdev {
    gv_ctx *ctx;
    const hcase *h;
    void *t[GV_H_MAX_TENSORS];
    float *g[GV_H_MAX_TENSORS];
} hdev;

static gv_status dev_alloc(hdev *d, size_t bytes, void **out) {
    *out = NULL;
    return bytes ? d->ctx->backend->alloc(bytes, out) : GV_OK;
}

static void dev_close(hdev *d) {
    for (int i = 0; i < GV_H_MAX_TENSORS; ++i) {
        if (d->t[i]) d->ctx->backend->free(d->t[i]);
        if (d->g[i]) d->ctx->backend->free(d->g[i]);
    }
    memset(d, 0, sizeof *d);
}

static gv_status dev_open(hdev *d, gv_ctx *ctx, const hcase *h) {
    memset(d, 0, sizeof *d);
    d->ctx = ctx;
    d->h = h;
    for (int i = 0; i < h->s->ntensors; ++i) {
        const gv_h_tensor *t = &h->s->tensors[i];
        gv_status st = dev_alloc(d, tbytes(h, i), &d->t[i]);
        if (st == GV_OK && (t->flags & GV_H_DIFF || t->role == GV_H_OUT))
            st = dev_alloc(d, tbytes(h, i), (void **)&d->g[i]);
        if (st != GV_OK) {
            dev_close(d);
            return st;
        }
    }
    return GV_OK;
}

static gv_status dev_put(hdev *d, void *dst, const void *src, size_t bytes) {
    return bytes ? d->ctx->backend->copy_from_host(dst, src, bytes) : GV_OK;
}
static gv_status dev_get(hdev *d, void *dst, const void *src, size_t bytes) {
    return bytes ? d->ctx->backend->copy_to_host(dst, src, bytes) : GV_OK;
}

/* Uploads the inputs (`in` overrides h->in where non-NULL), fills pure outputs with NaN so an
   element the kernel never writes shows up, and runs the forward. */
static gv_status dev_forward(hdev *d, void *const *in) {
    const hcase *h = d->h;
    for (int i = 0; i < h->s->ntensors; ++i) {
        const gv_h_role role = h->s->tensors[i].role;
        if (is_input(role)) {
            GV_TRY(dev_put(d, d->t[i], in && in[i] ? in[i] : h->in[i], tbytes(h, i)));
        } else if (h->L.numel[i]) {
            float *nan = xcalloc((size_t)h->L.numel[i], sizeof(float));
            for (int64_t j = 0; j < h->L.numel[i]; ++j) nan[j] = NAN;
            gv_status st = dev_put(d, d->t[i], nan, tbytes(h, i));
            free(nan);
            GV_TRY(st);
        }
    }
    GV_TRY(h->s->run_forward(d->ctx, d->t, &h->L));
    return d->ctx->backend->synchronize();
}

/* Forward, then backward with dy = r into the gradients in `want` (bit i: gradient of tensor i;
   the others are passed as NULL), each starting from init[i] (NULL: zero). */
static gv_status dev_backward(hdev *d, const float *const *init, unsigned want) {
    const hcase *h = d->h;
    float *g[GV_H_MAX_TENSORS] = {0};
    GV_TRY(dev_forward(d, NULL));
    for (int i = 0; i < h->s->ntensors; ++i) {
        if (!d->g[i]) continue;
        if (h->s->tensors[i].role == GV_H_OUT) {
            GV_TRY(dev_put(d, d->g[i], h->dy, tbytes(h, i)));
            g[i] = d->g[i];
        } else if (want & (1u << i)) {
            if (init && init[i]) GV_TRY(dev_put(d, d->g[i], init[i], tbytes(h, i)));
            else if (tbytes(h, i)) GV_TRY(d->ctx->backend->memset_zero(d->g[i], tbytes(h, i)));
            g[i] = d->g[i];
        }
    }
    GV_TRY(h->s->run_backward(d->ctx, g, d->t, &h->L));
    return d->ctx->backend->synchronize();
}

static unsigned diff_mask(const gv_op_spec *s) {
    unsigned m = 0;
    for (int i = 0; i < s->ntensors; ++i)
        if (s->tensors[i].flags & GV_H_DIFF) m |= 1u << i;
    return m;
}

/* Host copies of the outputs (out[i], pure and in-place) and, if grads, of the gradients. */
static gv_status dev_fetch(hdev *d, float **out, float **grads) {
    const hcase *h = d->h;
    for (int i = 0; i < h->s->ntensors; ++i) {
        const gv_h_tensor *t = &h->s->tensors[i];
        if (out && is_output(t->role)) {
            out[i] = xcalloc((size_t)h->L.numel[i], sizeof(float));
            GV_TRY(dev_get(d, out[i], d->t[i], tbytes(h, i)));
            if (t->dtype == GV_H_I32) /* int outputs (tokens) compare as their float values */
                for (int64_t j = 0; j < h->L.numel[i]; ++j) {
                    int32_t v;
                    memcpy(&v, &out[i][j], sizeof v);
                    out[i][j] = (float)v;
                }
        }
        if (grads && (t->flags & GV_H_DIFF)) {
            grads[i] = xcalloc((size_t)h->L.numel[i], sizeof(float));
            GV_TRY(dev_get(d, grads[i], d->g[i], tbytes(h, i)));
        }
    }
    return GV_OK;
}

static void free_all(float **p) {
    for (int i = 0; i < GV_H_MAX_TENSORS; ++i) free(p[i]), p[i] = NULL;
}

/* Set when an op call itself failed (e.g. "not built yet"): the remaining cases are skipped. */
static int g_call_failed;

static int status_fail(FILE *log, const char *check, const char *op, const gv_h_case *c,
                       const char *ctx_name, gv_status st) {
    g_call_failed = 1;
    fprintf(log, "FAIL %s %s case '%s' [%s]: %s: %s\n", check, op, c->label, ctx_name,
            gv_status_name(st), gv_last_error());
    gv_clear_error();
    return 1;
}

static const char *ctx_label(const gv_ctx *c) {
    return c->use_fast ? "fast" : "reference";
}

/* ---- check: finite differences ----------------------------------------------------------- */

static gv_status loss_of(hdev *d, float *y, double *loss) {
    int o = out_index(d->h->s);
    GV_TRY(dev_forward(d, NULL));
    GV_TRY(dev_get(d, y, d->t[o], tbytes(d->h, o)));
    double L = 0;
    for (int64_t j = 0; j < d->h->L.numel[o]; ++j) L += (double)d->h->dy[j] * y[j];
    *loss = L;
    return GV_OK;
}

static int check_fd(gv_ctx *ctx, const hcase *h, FILE *log, double *worst) {
    const gv_op_spec *s = h->s;
    const char *op = gv_op_names[s->bwd_op];
    double step = s->fd_h > 0 ? s->fd_h : 1e-2, rtol = s->fd_rtol > 0 ? s->fd_rtol : 1e-2;
    double atol_rel = s->fd_atol > 0 ? s->fd_atol : 1e-3;
    int fails = 0, o = out_index(s);
    hdev d;
    gv_status st = dev_open(&d, ctx, h);
    float *grads[GV_H_MAX_TENSORS] = {0};
    if (st == GV_OK) st = dev_backward(&d, NULL, diff_mask(s));
    if (st == GV_OK) st = dev_fetch(&d, NULL, grads);
    if (st != GV_OK) {
        free_all(grads);
        dev_close(&d);
        return status_fail(log, "fd", op, h->c, ctx_label(ctx), st);
    }
    float *y = xcalloc((size_t)h->L.numel[o], sizeof(float));
    hrng r = hrng_for(s->name, 7, 11);
    for (int i = 0; i < s->ntensors && st == GV_OK; ++i) {
        int64_t n = h->L.numel[i];
        if (!(s->tensors[i].flags & GV_H_DIFF) || n == 0) continue;
        int64_t m = n <= GV_H_FD_MAX ? n : GV_H_FD_MAX, idx[GV_H_FD_MAX];
        double ana[GV_H_FD_MAX], num[GV_H_FD_MAX];
        float *x = h->in[i];
        for (int64_t k = 0; k < m && st == GV_OK; ++k) {
            idx[k] = n <= GV_H_FD_MAX ? k : k == 0 ? 0 : k == 1 ? n - 1 : (int64_t)(hrng_next(&r) % (uint64_t)n);
            float x0 = x[idx[k]];
            float xp = (float)(x0 + step), xm = (float)(x0 - step);
            double lp = 0, lm = 0;
            x[idx[k]] = xp;
            st = loss_of(&d, y, &lp);
            x[idx[k]] = xm;
            if (st == GV_OK) st = loss_of(&d, y, &lm);
            x[idx[k]] = x0;
            num[k] = (lp - lm) / ((double)xp - (double)xm);
            ana[k] = grads[i][idx[k]];
        }
        if (st != GV_OK) break;
        double atol = atol_rel * fmax(1.0, rms_f(grads[i], n));
        cmp c = compare(ana, num, m, rtol, atol);
        char name[64];
        snprintf(name, sizeof name, "d%s", s->tensors[i].name);
        fails += cmp_report(log, &c, "fd", op, h->c, name, idx, "analytic", "numeric");
        if (c.max_rel > *worst) *worst = c.max_rel;
    }
    if (st != GV_OK) fails += status_fail(log, "fd", op, h->c, ctx_label(ctx), st);
    free(y);
    free_all(grads);
    dev_close(&d);
    return fails;
}

/* ---- check: the += rule, and NULL gradients -------------------------------------------------- */

static int check_accumulate(gv_ctx *ctx, const hcase *h, FILE *log, double *worst) {
    const gv_op_spec *s = h->s;
    const char *op = gv_op_names[s->bwd_op];
    unsigned all = diff_mask(s);
    float *g0[GV_H_MAX_TENSORS] = {0}, *g1[GV_H_MAX_TENSORS] = {0}, *sent[GV_H_MAX_TENSORS] = {0};
    int fails = 0;
    hdev d;
    gv_status st = dev_open(&d, ctx, h);
    if (st == GV_OK) st = dev_backward(&d, NULL, all);
    if (st == GV_OK) st = dev_fetch(&d, NULL, g0);
    for (int i = 0; i < s->ntensors; ++i) {
        if (!(all & (1u << i))) continue;
        sent[i] = xcalloc((size_t)h->L.numel[i] + 1, sizeof(float));
        for (int64_t j = 0; j < h->L.numel[i]; ++j) sent[i][j] = 0.5f + 0.001f * (float)(j % 97);
    }
    if (st == GV_OK) st = dev_backward(&d, (const float *const *)sent, all);
    if (st == GV_OK) st = dev_fetch(&d, NULL, g1);
    for (int i = 0; i < s->ntensors && st == GV_OK; ++i) {
        int64_t n = h->L.numel[i];
        if (!(all & (1u << i)) || n == 0) continue;
        double *got = xcalloc((size_t)n, sizeof(double)), *want = xcalloc((size_t)n, sizeof(double));
        char name[64];
        snprintf(name, sizeof name, "d%s (%s)", s->tensors[i].name, ctx_label(ctx));
        for (int64_t j = 0; j < n; ++j) got[j] = g1[i][j], want[j] = (double)sent[i][j] + g0[i][j];
        cmp c = compare(got, want, n, GV_H_SENTINEL_RTOL, 1e-7);
        fails += cmp_report(log, &c, "sentinel", op, h->c, name, NULL, "got", "sentinel+grad");
        if (c.max_rel > *worst) *worst = c.max_rel;
        /* Only this gradient wanted: the others NULL. */
        if (all != (1u << i)) {
            st = dev_backward(&d, NULL, 1u << i);
            if (st == GV_OK) st = dev_get(&d, g1[i], d.g[i], tbytes(h, i));
            if (st == GV_OK) {
                to_double(got, g1[i], n);
                to_double(want, g0[i], n);
                c = compare(got, want, n, GV_H_NULLGRAD_RTOL, 1e-7);
                fails += cmp_report(log, &c, "nullgrad", op, h->c, name, NULL, "alone", "all");
            }
        }
        free(got);
        free(want);
    }
    if (st != GV_OK) fails += status_fail(log, "sentinel", op, h->c, ctx_label(ctx), st);
    free_all(g0);
    free_all(g1);
    free_all(sent);
    dev_close(&d);
    return fails;
}

/* ---- check: forward against the spec's fp64 reference -------------------------------------- */

static int check_reference(gv_ctx *ctx, const hcase *h, FILE *log, double *worst) {
    const gv_op_spec *s = h->s;
    const char *op = gv_op_names[s->fwd_op];
    double rtol = s->ref_rtol > 0 ? s->ref_rtol : 1e-5;
    double *expect[GV_H_MAX_TENSORS] = {0};
    float *out[GV_H_MAX_TENSORS] = {0};
    int fails = 0;
    for (int i = 0; i < s->ntensors; ++i)
        if (is_output(s->tensors[i].role))
            expect[i] = xcalloc((size_t)h->L.numel[i], sizeof(double));
    s->reference(&h->L, (const void *const *)h->in, expect);
    hdev d;
    gv_status st = dev_open(&d, ctx, h);
    if (st == GV_OK) st = dev_forward(&d, NULL);
    if (st == GV_OK) st = dev_fetch(&d, out, NULL);
    for (int i = 0; i < s->ntensors && st == GV_OK; ++i) {
        int64_t n = h->L.numel[i];
        if (!expect[i] || n == 0) continue;
        double *got = xcalloc((size_t)n, sizeof(double)), ss = 0;
        to_double(got, out[i], n);
        for (int64_t j = 0; j < n; ++j) ss += expect[i][j] * expect[i][j];
        cmp c = compare(got, expect[i], n, rtol, rtol * sqrt(ss / (double)n));
        fails += cmp_report(log, &c, "ref", op, h->c, s->tensors[i].name, NULL, "got", "fp64");
        if (c.max_rel > *worst) *worst = c.max_rel;
        free(got);
    }
    if (st != GV_OK) fails += status_fail(log, "ref", op, h->c, ctx_label(ctx), st);
    for (int i = 0; i < GV_H_MAX_TENSORS; ++i) free(expect[i]);
    free_all(out);
    dev_close(&d);
    return fails;
}

/* ---- check: parity of two contexts ----------------------------------------------------------- */

static gv_status parity_run(gv_ctx *ctx, const hcase *h, int backward, float **out, float **g) {
    hdev d;
    GV_TRY(dev_open(&d, ctx, h));
    gv_status st = backward ? dev_backward(&d, NULL, diff_mask(h->s)) : dev_forward(&d, NULL);
    if (st == GV_OK) st = dev_fetch(&d, out, backward ? g : NULL);
    dev_close(&d);
    return st;
}

static int parity_compare(FILE *log, const hcase *h, const char *op, const char *what,
                          const float *a, const float *b, int64_t n, double rtol, double *worst) {
    double *x = xcalloc((size_t)n, sizeof(double)), *y = xcalloc((size_t)n, sizeof(double));
    to_double(x, a, n);
    to_double(y, b, n);
    cmp c = compare(y, x, n, rtol, rtol * rms_f(a, n));
    int f = cmp_report(log, &c, "parity", op, h->c, what, NULL, "b", "a");
    if (c.max_rel > *worst) *worst = c.max_rel;
    free(x);
    free(y);
    return f;
}

int gv_harness_parity(gv_ctx *a, gv_ctx *b, int op, double rtol, FILE *log, double *worst_rel) {
    const gv_op_spec *s = gv_harness_spec(op);
    int backward = op == s->bwd_op, fails = 0;
    double worst = 0;
    for (int ci = 0; ci < s->ncases; ++ci) {
        hcase h;
        hrng r = hrng_for(s->name, ci, 3);
        hcase_make(&h, s, &s->cases[ci], 0, &r);
        float *oa[GV_H_MAX_TENSORS] = {0}, *ob[GV_H_MAX_TENSORS] = {0};
        float *ga[GV_H_MAX_TENSORS] = {0}, *gb[GV_H_MAX_TENSORS] = {0};
        gv_status st = parity_run(a, &h, backward, oa, ga);
        if (st != GV_OK) fails += status_fail(log, "parity", gv_op_names[op], h.c, "a", st);
        gv_status st2 = st == GV_OK ? parity_run(b, &h, backward, ob, gb) : st;
        if (st == GV_OK && st2 != GV_OK)
            fails += status_fail(log, "parity", gv_op_names[op], h.c, "b", st2);
        for (int i = 0; i < s->ntensors && st == GV_OK && st2 == GV_OK; ++i) {
            char name[64];
            if (oa[i]) fails += parity_compare(log, &h, gv_op_names[op], s->tensors[i].name, oa[i],
                                               ob[i], h.L.numel[i], rtol, &worst);
            snprintf(name, sizeof name, "d%s", s->tensors[i].name);
            if (ga[i]) fails += parity_compare(log, &h, gv_op_names[op], name, ga[i], gb[i],
                                               h.L.numel[i], rtol, &worst);
        }
        free_all(oa);
        free_all(ob);
        free_all(ga);
        free_all(gb);
        hcase_free(&h);
        if (st != GV_OK || st2 != GV_OK) break;
    }
    if (worst_rel) *worst_rel = worst;
    return fails;
}

/* ---- check: batch invariance of per-sample forwards ------------------------------------------ */

/* A sample (row 2 of a random micro-batch) must give bitwise the same outputs as the only real
   row of a zero-padded micro-batch (row 0), as row 0 of another random micro-batch, and in place. */
static int check_batch(gv_ctx *ctx, const gv_op_spec *s, int ci, FILE *log, int *ncmp) {
    const char *op = gv_op_names[s->fwd_op];
    enum { SRC = 2 };
    hcase h, other;
    hrng r = hrng_for(s->name, ci, 5);
    hcase_make(&h, s, &s->cases[ci], GV_H_NMB, &r);
    hcase_make(&other, s, &s->cases[ci], GV_H_NMB, &r);
    void *padded[GV_H_MAX_TENSORS] = {0}, *mixed[GV_H_MAX_TENSORS] = {0};
    for (int i = 0; i < s->ntensors; ++i) {
        if (!h.in[i] || !(s->tensors[i].flags & GV_H_PER_SAMPLE)) continue;
        size_t row = tbytes(&h, i) / GV_H_NMB;
        padded[i] = xcalloc(tbytes(&h, i), 1);
        mixed[i] = xcalloc(tbytes(&h, i), 1);
        memcpy(mixed[i], other.in[i], tbytes(&h, i));
        memcpy(padded[i], (char *)h.in[i] + SRC * row, row);
        memcpy(mixed[i], (char *)h.in[i] + SRC * row, row);
    }
    void *const *inputs[3] = {NULL, padded, mixed};
    int rows[3] = {SRC, 0, 0}, fails = 0;
    const char *names[3] = {"in place", "zero-padded", "random neighbours"};
    float *out[3][GV_H_MAX_TENSORS] = {{0}};
    hdev d;
    gv_status st = dev_open(&d, ctx, &h);
    for (int k = 0; k < 3 && st == GV_OK; ++k) {
        st = dev_forward(&d, inputs[k]);
        if (st == GV_OK) st = dev_fetch(&d, out[k], NULL);
    }
    for (int i = 0; i < s->ntensors && st == GV_OK; ++i) {
        if (!out[0][i] || !(s->tensors[i].flags & GV_H_PER_SAMPLE) || !h.L.numel[i]) continue;
        int64_t row = h.L.numel[i] / GV_H_NMB;
        const float *ref = out[0][i] + rows[0] * row;
        for (int k = 1; k < 3; ++k) {
            const float *got = out[k][i] + rows[k] * row;
            ++*ncmp;
            if (memcmp(ref, got, (size_t)row * sizeof(float)) == 0) continue;
            int64_t j = 0;
            while (j < row && memcmp(&ref[j], &got[j], sizeof(float)) == 0) ++j;
            fprintf(log,
                    "FAIL batch %s case '%s' [%s] tensor %s: sample differs %s (row %d) vs in "
                    "place (row %d), micro-batch %d; first differing element %lld: %.9g vs %.9g\n",
                    op, s->cases[ci].label, ctx_label(ctx), s->tensors[i].name, names[k],
                    rows[k], rows[0], GV_H_NMB, (long long)j, got[j], ref[j]);
            ++fails;
        }
    }
    if (st != GV_OK) fails += status_fail(log, "batch", op, &s->cases[ci], ctx_label(ctx), st);
    for (int k = 0; k < 3; ++k) free_all(out[k]);
    for (int i = 0; i < GV_H_MAX_TENSORS; ++i) free(padded[i]), free(mixed[i]);
    dev_close(&d);
    hcase_free(&h);
    hcase_free(&other);
    return fails;
}

/* ---- one op: every check that applies ---------------------------------------------------- */

int gv_harness_check_op(int op, FILE *log, gv_h_report *rep) {
    return gv_harness_check_op_on(grove_backend_cpu(), op, log, rep);
}

int gv_harness_check_op_on(const gv_backend *be, int op, FILE *log, gv_h_report *rep) {
    const gv_op_spec *s = gv_harness_spec(op);
    gv_h_report R = {0};
    gv_ctx *ref = NULL, *fast = NULL;
    gv_ctx_options oref = {1, 0, 0}, ofast = {2, 1, 0};
    gv_status st = be->ctx_create(&oref, &ref);
    if (st == GV_OK) st = be->ctx_create(&ofast, &fast);
    if (st != GV_OK) {
        fprintf(log, "FAIL %s: cannot create a %s context: %s\n", gv_op_names[op], be->name,
                gv_last_error());
        R.failures = 1;
    } else {
        ref->backend = fast->backend = be; /* `be` may wrap another backend's contexts */
    }
    int backward = op == s->bwd_op;
    g_call_failed = R.failures;
    for (int ci = 0; ci < s->ncases && !g_call_failed; ++ci) {
        hcase h;
        hrng r = hrng_for(s->name, ci, 1);
        hcase_make(&h, s, &s->cases[ci], 0, &r);
        ++R.cases;
        if (backward) {
            R.failures += check_fd(ref, &h, log, &R.fd_rel);
            R.failures += check_accumulate(ref, &h, log, &R.sentinel_rel);
            R.failures += check_accumulate(fast, &h, log, &R.sentinel_rel);
        } else {
            if (s->reference) R.failures += check_reference(ref, &h, log, &R.ref_rel);
            if (s->n_arg >= 0) {
                R.failures += check_batch(ref, s, ci, log, &R.batch_cmp);
                R.failures += check_batch(fast, s, ci, log, &R.batch_cmp);
            }
        }
        hcase_free(&h);
    }
    if (!g_call_failed)
        R.failures += gv_harness_parity(ref, fast, op, 1e-4, log, &R.parity_rel);
    if (ref) ref->backend->ctx_destroy(ref);
    if (fast) fast->backend->ctx_destroy(fast);
    printf("[ops %s] %-26s cases %d", be->name, gv_op_names[op], R.cases);
    if (backward) printf("  fd %.1e  sentinel %.1e", R.fd_rel, R.sentinel_rel);
    else if (s->reference) printf("  ref %.1e", R.ref_rel);
    if (!backward && s->n_arg >= 0) printf("  batch %d bitwise", R.batch_cmp);
    printf("  parity %.1e  %s\n", R.parity_rel, R.failures ? "FAIL" : "ok");
    fflush(stdout);
    if (rep) *rep = R;
    return R.failures;
}
