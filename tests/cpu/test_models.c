/* Tests of models/layers, models/unet and models/classifier: end-to-end central finite-difference
 * gradient checks of tiny configurations (reference kernels and oneDNN), the unet-s preset's size,
 * FLOPs and zero-initialised output, batch invariance of a fixed micro-batch (bitwise), and the
 * measure pass that sizes the activation arena exactly. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/classifier/classifier.h"
#include "models/mdt/mdt.h"
#include "models/unet/unet.h"
#include "grove/kernels_cpu.h"
#include "test_util.h"

/* ---- helpers --------------------------------------------------------------------------------- */

static const gv_backend *be(void) { return grove_backend_cpu(); }

static gv_ctx *make_ctx(int use_fast) { return tu_make_ctx(2, use_fast); }

static uint64_t lcg_state = 0x9E3779B97F4A7C15ull;
static void put_random(float *dst, int64_t n, float scale, float offset) {
    float *h = malloc((size_t)n * sizeof(float));
    cr_assert(h);
    for (int64_t i = 0; i < n; ++i) h[i] = offset + scale * tu_rand_sym(&lcg_state);
    tu_put(dst, h, (size_t)n * sizeof(float));
    free(h);
}

/* Initialise, then perturb every parameter (so biases, norms and a zero-initialised output layer
   carry gradient signal everywhere): value += 0.2 * U(-1, 1). */
static void params_randomize(gv_params *ps, uint32_t seed) {
    cr_assert_eq(gv_params_initialize(ps, seed), GV_OK, "%s", gv_last_error());
    float *h = malloc((size_t)ps->total * sizeof(float));
    cr_assert(h);
    tu_get(h, ps->values, (size_t)ps->total * sizeof(float));
    for (int64_t i = 0; i < ps->total; ++i) h[i] += 0.2f * tu_rand_sym(&lcg_state);
    tu_put(ps->values, h, (size_t)ps->total * sizeof(float));
    free(h);
}

/* ---- finite differences ---------------------------------------------------------------------- */

/* A model under test: loss(fix) = <r, out> in fp64 after a forward at the current values. */
typedef double (*loss_fn)(void *fix);

typedef struct fd_stats {
    int checked, bad;
    double worst_rel;
} fd_stats;

#define FD_EPS 1e-2f
#define FD_REL 2e-2
#define FD_ABS 2e-4

/* Central difference at one element of backend memory `at`, against `analytic`. */
static void fd_one(fd_stats *st, void *fix, loss_fn loss, float *at, double analytic,
                   const char *what, int64_t idx) {
    float v0;
    tu_get(&v0, at, sizeof v0);
    float vp = v0 + FD_EPS, vm = v0 - FD_EPS;
    tu_put(at, &vp, sizeof vp);
    double lp = loss(fix);
    tu_put(at, &vm, sizeof vm);
    double lm = loss(fix);
    tu_put(at, &v0, sizeof v0);
    double fd = (lp - lm) / ((double)vp - (double)vm);
    double err = fabs(fd - analytic), mag = fmax(fabs(fd), fabs(analytic));
    st->checked++;
    if (mag > 0 && err / mag > st->worst_rel && err > FD_ABS) st->worst_rel = err / mag;
    if (err > FD_REL * mag + FD_ABS) {
        st->bad++;
        cr_log_error("%s[%lld]: analytic %.6g, finite difference %.6g", what, (long long)idx,
                     analytic, fd);
    }
}

/* k random elements of parameter `name` (host copy of all gradients in `grads`). */
static void fd_param(fd_stats *st, gv_params *ps, void *fix, loss_fn loss, const float *grads,
                     const char *name, int k, int64_t row_lo, int64_t row_hi) {
    gv_param *p = gv_params_find(ps, name);
    cr_assert(p, "parameter '%s' not declared", name);
    /* rows [row_lo, row_hi) of the first dimension; row_hi 0 = all */
    int64_t row = p->numel / p->shape.d[0];
    if (row_hi == 0) row_hi = p->shape.d[0];
    for (int i = 0; i < k; ++i) {
        int64_t span = (row_hi - row_lo) * row;
        int64_t e = row_lo * row + (int64_t)((tu_rand_sym(&lcg_state) * 0.5f + 0.5f) * (float)span) % span;
        fd_one(st, fix, loss, p->value + e, grads[p->offset + e], name, e);
    }
}

static void fd_input(fd_stats *st, void *fix, loss_fn loss, float *x, const float *dx_host,
                     int64_t n, int k) {
    for (int i = 0; i < k; ++i) {
        int64_t e = (int64_t)((tu_rand_sym(&lcg_state) * 0.5f + 0.5f) * (float)n) % n;
        fd_one(st, fix, loss, x + e, dx_host[e], "dx", e);
    }
}

static double dot_host(const float *dev, const float *r, int64_t n) {
    float *h = malloc((size_t)n * sizeof(float));
    cr_assert(h);
    tu_get(h, dev, (size_t)n * sizeof(float));
    double s = 0.0;
    for (int64_t i = 0; i < n; ++i) s += (double)r[i] * (double)h[i];
    free(h);
    return s;
}

/* ---- UNet fixture ---------------------------------------------------------------------------- */

typedef struct unet_fix {
    gv_ctx *ctx;
    gv_params ps;
    gv_unet m;
    gv_unet_saved saved;
    gv_arena arena;
    int N;
    int64_t nx;       /* N * C * H * W */
    float *x, *sigma; /* (N, C, H, W), (N) */
    int32_t *ids;     /* (N, L) */
    float *v, *dv, *dx;
    float *r; /* host (nx): the loss weights */
} unet_fix;

static gv_status unet_fwd(unet_fix *f) {
    gv_arena_reset(&f->arena);
    return gv_unet_forward(&f->m, f->ctx, &f->arena, f->ps.values, f->N, f->x, f->sigma, f->ids,
                           f->v, &f->saved);
}
static gv_status unet_bwd(unet_fix *f) {
    return gv_unet_backward(&f->m, f->ctx, &f->arena, f->ps.values, f->ps.grads, &f->saved, f->dv,
                            f->dx);
}

static double unet_loss(void *p) {
    unet_fix *f = p;
    cr_assert_eq(unet_fwd(f), GV_OK, "%s", gv_last_error());
    return dot_host(f->v, f->r, f->nx);
}

/* Declares, randomises and sizes the arena by a measure pass of forward + backward. */
static void unet_setup(unet_fix *f, const gv_unet_config *cfg, int N, int use_fast,
                       const int32_t *ids_host) {
    memset(f, 0, sizeof *f);
    f->ctx = make_ctx(use_fast);
    f->N = N;
    gv_params_init(&f->ps, be());
    cr_assert_eq(gv_unet_declare(&f->m, cfg, &f->ps, "unet"), GV_OK, "%s", gv_last_error());
    cr_assert_eq(gv_params_allocate(&f->ps, 0), GV_OK);
    f->nx = (int64_t)N * cfg->in_channels * cfg->height * cfg->width;
    f->x = tu_dev_floats(f->nx);
    f->v = tu_dev_floats(f->nx);
    f->dv = tu_dev_floats(f->nx);
    f->dx = tu_dev_floats(f->nx);
    f->sigma = tu_dev_floats(N);
    f->ids = (int32_t *)tu_dev_floats((int64_t)N * cfg->max_prompt_len);
    tu_put(f->ids, ids_host, (size_t)N * cfg->max_prompt_len * sizeof(int32_t));
    put_random(f->x, f->nx, 1.0f, 0.0f);
    put_random(f->sigma, N, 0.45f, 0.5f);
    f->r = malloc((size_t)f->nx * sizeof(float));
    cr_assert(f->r);
    for (int64_t i = 0; i < f->nx; ++i) f->r[i] = tu_rand_sym(&lcg_state);
    tu_put(f->dv, f->r, (size_t)f->nx * sizeof(float));
    gv_arena_init(&f->arena, be(), "activations");
    gv_arena_measure_begin(&f->arena);
    cr_assert_eq(unet_fwd(f), GV_OK, "%s", gv_last_error());
    cr_assert_eq(unet_bwd(f), GV_OK, "%s", gv_last_error());
    size_t peak = gv_arena_measure_end(&f->arena);
    cr_assert_eq(gv_arena_reserve(&f->arena, peak), GV_OK);
}

static void unet_teardown(unet_fix *f) {
    float *bufs[] = {f->x, f->v, f->dv, f->dx, f->sigma, (float *)f->ids};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; ++i) be()->free(bufs[i]);
    free(f->r);
    gv_arena_release(&f->arena);
    gv_params_free(&f->ps);
    be()->ctx_destroy(f->ctx);
}

static void unet_gradcheck(int use_fast) {
    gv_unet_config cfg = tu_tiny_unet_config();
    /* row 0 uses words 1, 4, 2; row 1 is the null prompt (word 6); words 0, 3, 5 are unused */
    const int32_t ids[2 * 3] = {1, 4, 2, 6, -1, -1};
    unet_fix f;
    unet_setup(&f, &cfg, 2, use_fast, ids);
    params_randomize(&f.ps, 11);
    cr_assert_eq(gv_params_zero_grads(&f.ps), GV_OK);
    cr_assert_eq(unet_fwd(&f), GV_OK, "%s", gv_last_error());
    cr_assert_eq(unet_bwd(&f), GV_OK, "%s", gv_last_error());
    float *grads = malloc((size_t)f.ps.total * sizeof(float));
    float *dx = malloc((size_t)f.nx * sizeof(float));
    cr_assert(grads && dx);
    tu_get(grads, f.ps.grads, (size_t)f.ps.total * sizeof(float));
    tu_get(dx, f.dx, (size_t)f.nx * sizeof(float));
    /* unused vocabulary rows get exactly zero gradient */
    gv_param *table = gv_params_find(&f.ps, "unet.prompt.weight");
    cr_assert(table);
    const int D = cfg.emb_dim;
    for (int e = 0; e < D; ++e) {
        cr_assert_eq(grads[table->offset + 0 * D + e], 0.0f, "unused word 0 has a gradient");
        cr_assert_eq(grads[table->offset + 3 * D + e], 0.0f, "unused word 3 has a gradient");
    }
    fd_stats st = {0};
    const char *names[] = {"unet.in.conv.weight",         "unet.in.conv.bias",
                           "unet.down.0.res.norm1.weight", "unet.down.0.res.conv1.weight",
                           "unet.down.0.res.emb.weight",   "unet.down.1.res.skip.weight",
                           "unet.down.1.downsample.weight", "unet.mid.0.res.conv2.weight",
                           "unet.up.1.res.conv1.weight",   "unet.up.0.res.norm2.bias",
                           "unet.up.0.res.skip.weight",    "unet.time.lin1.weight",
                           "unet.time.lin2.bias",          "unet.out.norm.weight",
                           "unet.out.conv.weight",         "unet.out.conv.bias"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; ++i)
        fd_param(&st, &f.ps, &f, unet_loss, grads, names[i], 3, 0, 0);
    /* prompt rows actually used: 1, 2, 4 (row 0 of the batch) and 6 (<null>, row 1) */
    fd_param(&st, &f.ps, &f, unet_loss, grads, "unet.prompt.weight", 2, 1, 3);
    fd_param(&st, &f.ps, &f, unet_loss, grads, "unet.prompt.weight", 2, 4, 5);
    fd_param(&st, &f.ps, &f, unet_loss, grads, "unet.prompt.weight", 2, 6, 7);
    fd_input(&st, &f, unet_loss, f.x, dx, f.nx, 8);
    cr_log_info("unet gradcheck (use_fast %d): %d checked, %d bad, worst rel %.3g", use_fast,
                st.checked, st.bad, st.worst_rel);
    cr_assert_geq(st.checked, 40);
    cr_assert_eq(st.bad, 0, "%d of %d gradient entries disagree with finite differences", st.bad,
                 st.checked);
    free(grads);
    free(dx);
    unet_teardown(&f);
}

Test(unet, finite_difference_gradients_reference) { unet_gradcheck(0); }
Test(unet, finite_difference_gradients_onednn) { unet_gradcheck(1); }

/* ---- classifier ------------------------------------------------------------------------------ */

typedef struct clf_fix {
    gv_ctx *ctx;
    gv_params ps;
    gv_classifier m;
    gv_classifier_saved saved;
    gv_arena arena;
    int N;
    int64_t nx, nl;
    float *x, *logits, *dlogits, *dx;
    float *r; /* host (nl) */
} clf_fix;

static double clf_loss(void *p) {
    clf_fix *f = p;
    gv_arena_reset(&f->arena);
    cr_assert_eq(gv_classifier_forward(&f->m, f->ctx, &f->arena, f->ps.values, f->N, f->x,
                                       f->logits, &f->saved),
                 GV_OK, "%s", gv_last_error());
    return dot_host(f->logits, f->r, f->nl);
}

Test(classifier, finite_difference_gradients) {
    clf_fix f = {0};
    f.ctx = make_ctx(0);
    f.N = 2;
    gv_classifier_config cfg = gv_classifier_config_default(4);
    cfg.height = cfg.width = 8;
    cfg.features = 8;
    cfg.classes = 3;
    cfg.groups = 2;
    gv_params_init(&f.ps, be());
    cr_assert_eq(gv_classifier_declare(&f.m, &cfg, &f.ps, "classifier"), GV_OK, "%s",
                 gv_last_error());
    cr_assert_eq(gv_params_allocate(&f.ps, 0), GV_OK);
    params_randomize(&f.ps, 5);
    f.nx = (int64_t)f.N * 8 * 8;
    f.nl = (int64_t)f.N * cfg.classes;
    f.x = tu_dev_floats(f.nx);
    f.dx = tu_dev_floats(f.nx);
    f.logits = tu_dev_floats(f.nl);
    f.dlogits = tu_dev_floats(f.nl);
    put_random(f.x, f.nx, 1.0f, 0.0f);
    f.r = malloc((size_t)f.nl * sizeof(float));
    for (int64_t i = 0; i < f.nl; ++i) f.r[i] = tu_rand_sym(&lcg_state);
    tu_put(f.dlogits, f.r, (size_t)f.nl * sizeof(float));
    gv_arena_init(&f.arena, be(), "classifier");
    gv_arena_measure_begin(&f.arena);
    cr_assert_eq(gv_classifier_forward(&f.m, f.ctx, &f.arena, f.ps.values, f.N, f.x, f.logits,
                                       &f.saved),
                 GV_OK);
    cr_assert_eq(gv_classifier_backward(&f.m, f.ctx, &f.arena, f.ps.values, f.ps.grads, &f.saved,
                                        f.dlogits, f.dx),
                 GV_OK);
    cr_assert_eq(gv_arena_reserve(&f.arena, gv_arena_measure_end(&f.arena)), GV_OK);
    clf_loss(&f);
    cr_assert_eq(gv_classifier_backward(&f.m, f.ctx, &f.arena, f.ps.values, f.ps.grads, &f.saved,
                                        f.dlogits, f.dx),
                 GV_OK, "%s", gv_last_error());
    float *grads = malloc((size_t)f.ps.total * sizeof(float));
    float *dx = malloc((size_t)f.nx * sizeof(float));
    tu_get(grads, f.ps.grads, (size_t)f.ps.total * sizeof(float));
    tu_get(dx, f.dx, (size_t)f.nx * sizeof(float));
    fd_stats st = {0};
    const char *names[] = {"classifier.conv0.weight", "classifier.norm0.bias",
                           "classifier.conv1.weight", "classifier.norm1.weight",
                           "classifier.conv2.weight", "classifier.conv2.bias",
                           "classifier.fc.weight",    "classifier.head.weight",
                           "classifier.head.bias"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; ++i)
        fd_param(&st, &f.ps, &f, clf_loss, grads, names[i], 4, 0, 0);
    fd_input(&st, &f, clf_loss, f.x, dx, f.nx, 8);
    cr_log_info("classifier gradcheck: %d checked, %d bad, worst rel %.3g", st.checked, st.bad,
                st.worst_rel);
    cr_assert_geq(st.checked, 40);
    cr_assert_eq(st.bad, 0, "%d of %d gradient entries disagree", st.bad, st.checked);
    /* the penultimate features are exposed and have the declared width */
    cr_assert_eq(f.m.fc.Dout, 8);
    cr_assert(f.saved.features != NULL);
    free(grads);
    free(dx);
    free(f.r);
    float *bufs[] = {f.x, f.dx, f.logits, f.dlogits};
    for (int i = 0; i < 4; ++i) be()->free(bufs[i]);
    gv_arena_release(&f.arena);
    gv_params_free(&f.ps);
    be()->ctx_destroy(f.ctx);
}

/* ---- unet-s ---------------------------------------------------------------------------------- */

#define S_VOCAB 12
#define S_LEN 4

static void randomize_out_conv(gv_params *ps) {
    gv_param *w = gv_params_find(ps, "unet.out.conv.weight");
    cr_assert(w);
    put_random(w->value, w->numel, 0.05f, 0.0f);
}

Test(unet, preset_s_size_flops_and_forward) {
    gv_unet_config cfg = gv_unet_config_s(S_VOCAB, S_LEN);
    const int32_t ids[2 * S_LEN] = {3, 7, -1, -1, 11, -1, -1, -1};
    unet_fix f;
    unet_setup(&f, &cfg, 2, 1, ids);
    cr_assert_eq(gv_params_initialize(&f.ps, 1), GV_OK);
    const int64_t flops = gv_unet_flops(&f.m);
    cr_log_info("unet-s: %lld parameters (V = %d), %.2f MFLOP per 28x28 forward",
                (long long)f.m.n_params, S_VOCAB, (double)flops / 1e6);
    printf("unet-s: %lld parameters (V = %d: %lld + 128 V), %lld FLOP per 28x28 forward\n",
           (long long)f.m.n_params, S_VOCAB, (long long)(f.m.n_params - 128 * S_VOCAB),
           (long long)flops);
    cr_assert_eq(f.m.n_params - 128 * S_VOCAB, 497185, "architecture drifted from DESIGN.md §5");
    /* by hand from the conv and linear shapes of DESIGN.md §5 (multiply-add = 2) */
    cr_assert_eq(flops, 183273472, "FLOPs %lld", (long long)flops);
    /* zero-initialised output conv: a fresh model predicts exactly v = 0 */
    cr_assert_eq(unet_fwd(&f), GV_OK, "%s", gv_last_error());
    float v[2 * 28 * 28];
    tu_get(v, f.v, sizeof v);
    for (int i = 0; i < 2 * 28 * 28; ++i) cr_assert_eq(v[i], 0.0f, "v[%d] = %g", i, (double)v[i]);
    randomize_out_conv(&f.ps);
    cr_assert_eq(unet_fwd(&f), GV_OK, "%s", gv_last_error());
    tu_get(v, f.v, sizeof v);
    int nonzero = 0;
    for (int i = 0; i < 2 * 28 * 28; ++i) {
        cr_assert(isfinite(v[i]), "v[%d] = %g", i, (double)v[i]);
        nonzero += v[i] != 0.0f;
    }
    cr_assert_gt(nonzero, 2 * 28 * 28 / 2);
    unet_teardown(&f);
}

/* A sample's output does not depend on its neighbours or its position in the micro-batch. */
Test(unet, batch_invariance_bitwise) {
    enum { N = 4, L = S_LEN, PIX = 28 * 28 };
    gv_unet_config cfg = gv_unet_config_s(S_VOCAB, S_LEN);
    int32_t ids[N * L];
    for (int i = 0; i < N * L; ++i) ids[i] = -1;
    unet_fix f;
    unet_setup(&f, &cfg, N, 1, ids);
    params_randomize(&f.ps, 3);
    /* the sample: image, sigma, prompt */
    float xs[PIX], sig = 0.37f;
    for (int i = 0; i < PIX; ++i) xs[i] = tu_rand_sym(&lcg_state);
    const int32_t ps_ids[L] = {2, 9, 5, -1};
    float x_host[N * PIX], s_host[N], out[3][PIX], vh[N * PIX];
    int32_t id_host[N * L];
    /* placements: {position, neighbours random?} */
    const int pos[3] = {0, 0, 2}, full[3] = {0, 1, 1};
    for (int k = 0; k < 3; ++k) {
        for (int n = 0; n < N; ++n) {
            for (int i = 0; i < PIX; ++i) x_host[n * PIX + i] = full[k] ? tu_rand_sym(&lcg_state) : 0.0f;
            s_host[n] = full[k] ? 0.5f + 0.45f * tu_rand_sym(&lcg_state) : 0.0f;
            for (int l = 0; l < L; ++l) /* neighbours: two words each, else padding */
                id_host[n * L + l] =
                    full[k] && l < 2 ? (int32_t)((n * 5 + l * 3 + k) % S_VOCAB) : -1;
        }
        memcpy(x_host + pos[k] * PIX, xs, sizeof xs);
        s_host[pos[k]] = sig;
        memcpy(id_host + pos[k] * L, ps_ids, sizeof ps_ids);
        tu_put(f.x, x_host, sizeof x_host);
        tu_put(f.sigma, s_host, sizeof s_host);
        tu_put(f.ids, id_host, sizeof id_host);
        cr_assert_eq(unet_fwd(&f), GV_OK, "%s", gv_last_error());
        tu_get(vh, f.v, sizeof vh);
        memcpy(out[k], vh + pos[k] * PIX, sizeof out[k]);
    }
    cr_assert(memcmp(out[0], out[1], sizeof out[0]) == 0, "alone vs in a full batch differ");
    cr_assert(memcmp(out[0], out[2], sizeof out[0]) == 0, "position 0 vs position 2 differ");
    int nonzero = 0;
    for (int i = 0; i < PIX; ++i) nonzero += out[0][i] != 0.0f;
    cr_assert_gt(nonzero, PIX / 2, "the output is trivially zero");
    unet_teardown(&f);
}

/* The measure pass of forward + backward sizes the arena exactly, and runs nothing. */
Test(unet, measure_pass_sizes_the_arena_exactly) {
    gv_unet_config cfg = gv_unet_config_s(S_VOCAB, S_LEN);
    const int32_t ids[2 * S_LEN] = {1, -1, -1, -1, 4, 5, 6, -1};
    unet_fix f;
    unet_setup(&f, &cfg, 2, 1, ids);
    params_randomize(&f.ps, 9);
    const float nan = NAN;
    tu_put(f.v, &nan, sizeof nan);
    gv_arena_measure_begin(&f.arena);
    cr_assert_eq(unet_fwd(&f), GV_OK, "%s", gv_last_error());
    cr_assert_eq(unet_bwd(&f), GV_OK, "%s", gv_last_error());
    const size_t peak = gv_arena_measure_end(&f.arena);
    float v0;
    tu_get(&v0, f.v, sizeof v0);
    cr_assert(isnan(v0), "the measure pass ran an op");
    cr_log_info("unet-s N=2 forward+backward arena peak: %zu bytes", peak);
    cr_assert_gt(peak, 0);
    cr_assert_eq(gv_arena_reserve(&f.arena, peak), GV_OK);
    cr_assert_eq(unet_fwd(&f), GV_OK, "%s", gv_last_error());
    cr_assert_eq(unet_bwd(&f), GV_OK, "%s", gv_last_error());
    cr_assert_eq(f.arena.peak, peak, "real peak %zu vs measured %zu", f.arena.peak, peak);
    cr_assert_eq(gv_arena_reserve(&f.arena, peak - 64), GV_OK);
    gv_status s = unet_fwd(&f);
    if (s == GV_OK) s = unet_bwd(&f);
    cr_assert_eq(s, GV_ERR_OOM, "64 bytes short: status %s", gv_status_name(s));
    unet_teardown(&f);
}

/* ---- masked-diffusion transformer (models/mdt) ----------------------------------------------- */

typedef struct mdt_fix {
    gv_ctx *ctx;
    gv_params ps;
    gv_arena arena;
    gv_mdt m;
    gv_mdt_saved saved;
    int N;
    int64_t nl;      /* N * T * V logits */
    int32_t *ids;    /* (N, T) */
    float *logits, *dlogits;
    float *r;        /* host (nl): the random projection */
} mdt_fix;

static double mdt_loss(void *p) {
    mdt_fix *f = p;
    gv_arena_reset(&f->arena);
    cr_assert_eq(gv_mdt_forward(&f->m, f->ctx, &f->arena, f->ps.values, f->N, f->ids, f->logits,
                                &f->saved), GV_OK, "%s", gv_last_error());
    return dot_host(f->logits, f->r, f->nl);
}

static void mdt_gradcheck(int use_fast) {
    /* V 5 (token 3 unused), T 6, 2 layers, width 8, 2 heads, MLP 2x, random head */
    gv_mdt_config cfg = {.vocab_size = 5, .seq_len = 6, .layers = 2, .width = 8, .heads = 2,
                         .mlp_mult = 2, .norm_eps = 1e-5f, .zero_init_out = 0};
    mdt_fix f;
    memset(&f, 0, sizeof f);
    f.ctx = make_ctx(use_fast);
    f.N = 2;
    gv_params_init(&f.ps, be());
    cr_assert_eq(gv_mdt_declare(&f.m, &cfg, &f.ps, "mdt"), GV_OK, "%s", gv_last_error());
    cr_assert_eq(gv_params_allocate(&f.ps, 0), GV_OK);
    const int32_t ids[2 * 6] = {0, 4, 1, 2, 4, 0, 2, 2, 4, 4, 1, 0};
    f.ids = (int32_t *)tu_dev_floats(12);
    tu_put(f.ids, ids, sizeof ids);
    f.nl = (int64_t)f.N * cfg.seq_len * cfg.vocab_size;
    f.logits = tu_dev_floats(f.nl);
    f.dlogits = tu_dev_floats(f.nl);
    f.r = malloc((size_t)f.nl * sizeof(float));
    cr_assert(f.r);
    for (int64_t i = 0; i < f.nl; ++i) f.r[i] = tu_rand_sym(&lcg_state);
    tu_put(f.dlogits, f.r, (size_t)f.nl * sizeof(float));
    gv_arena_init(&f.arena, be(), "activations");
    gv_arena_measure_begin(&f.arena);
    cr_assert_eq(gv_mdt_forward(&f.m, f.ctx, &f.arena, f.ps.values, f.N, f.ids, f.logits, &f.saved), GV_OK);
    cr_assert_eq(gv_mdt_backward(&f.m, f.ctx, &f.arena, f.ps.values, f.ps.grads, &f.saved, f.dlogits), GV_OK);
    cr_assert_eq(gv_arena_reserve(&f.arena, gv_arena_measure_end(&f.arena)), GV_OK);
    params_randomize(&f.ps, 5);
    cr_assert_eq(gv_params_zero_grads(&f.ps), GV_OK);
    mdt_loss(&f);
    cr_assert_eq(gv_mdt_backward(&f.m, f.ctx, &f.arena, f.ps.values, f.ps.grads, &f.saved, f.dlogits),
                 GV_OK, "%s", gv_last_error());
    float *grads = malloc((size_t)f.ps.total * sizeof(float));
    cr_assert(grads);
    tu_get(grads, f.ps.grads, (size_t)f.ps.total * sizeof(float));
    gv_param *tok = gv_params_find(&f.ps, "mdt.tok_emb.weight");
    cr_assert(tok);
    for (int e = 0; e < cfg.width; ++e)
        cr_assert_eq(grads[tok->offset + 3 * cfg.width + e], 0.0f, "unused token 3 has a gradient");
    fd_stats st = {0};
    const char *names[] = {"mdt.pos_emb.weight",      "mdt.layer0.ln1.weight", "mdt.layer0.ln1.bias",
                           "mdt.layer0.q.weight",     "mdt.layer0.k.weight",   "mdt.layer0.v.bias",
                           "mdt.layer0.o.weight",     "mdt.layer0.ln2.weight", "mdt.layer0.fc1.weight",
                           "mdt.layer0.fc2.bias",     "mdt.layer1.q.bias",     "mdt.layer1.k.weight",
                           "mdt.layer1.fc2.weight",   "mdt.ln_f.weight",       "mdt.ln_f.bias",
                           "mdt.head.weight",         "mdt.head.bias"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; ++i)
        fd_param(&st, &f.ps, &f, mdt_loss, grads, names[i], 3, 0, 0);
    fd_param(&st, &f.ps, &f, mdt_loss, grads, "mdt.tok_emb.weight", 3, 0, 3); /* used rows 0..2 */
    fd_param(&st, &f.ps, &f, mdt_loss, grads, "mdt.tok_emb.weight", 3, 4, 5); /* and 4 ([MASK]) */
    cr_log_info("mdt gradcheck (use_fast %d): %d checked, %d bad, worst rel %.3g", use_fast,
                st.checked, st.bad, st.worst_rel);
    cr_assert_geq(st.checked, 50);
    cr_assert_eq(st.bad, 0, "%d of %d gradient entries disagree with finite differences", st.bad,
                 st.checked);
    free(grads);
    free(f.r);
    float *bufs[] = {(float *)f.ids, f.logits, f.dlogits};
    for (size_t i = 0; i < 3; ++i) be()->free(bufs[i]);
    gv_arena_release(&f.arena);
    gv_params_free(&f.ps);
    be()->ctx_destroy(f.ctx);
}

Test(mdt, finite_difference_gradients_reference) { mdt_gradcheck(0); }
Test(mdt, finite_difference_gradients_onednn) { mdt_gradcheck(1); }

Test(mdt, preset_size_and_zero_head) {
    gv_mdt_config c = gv_mdt_config_s(10, 81);
    gv_params ps;
    gv_params_init(&ps, be());
    gv_mdt m;
    cr_assert_eq(gv_mdt_declare(&m, &c, &ps, "mdt"), GV_OK, "%s", gv_last_error());
    /* embeddings (10 + 81) * 128; per layer 4 LN vectors, 4 (128x128 + 128), 128x512 + 512,
       512x128 + 128; final LN 256; head 128x10 + 10 */
    const int64_t D = 128, F = 512;
    const int64_t per = 4 * D + 4 * (D * D + D) + (D * F + F) + (F * D + D);
    cr_assert_eq(m.n_params, (10 + 81) * D + 4 * per + 2 * D + D * 10 + 10);
    cr_assert_eq(m.cfg.layers, 4);
    cr_assert_eq(m.cfg.heads, 4);
    gv_params_free(&ps);
}
