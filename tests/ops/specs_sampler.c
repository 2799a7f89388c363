/* Harness specs: the sampler ops (gaussian_step, euler_step, cfg_combine; ALGORITHMS.md §1–2).
 *
 * gaussian_step is checked in its recompute mode (eps NULL, x_next a stored sample): there logp is
 * a function of v, so the finite-difference check of gaussian_step_backward applies, and the fp64
 * reference, batch invariance and parity cover the forward. The sampling mode (eps given) and its
 * bitwise agreement with the recompute mode are tested in tests/cpu/test_sampler.c.
 *
 * gv_h_layout's dims union has no gv_step_args member (tests/ops/harness.h is shared); the step
 * arguments are stored in the union's bytes with memcpy and read back the same way. */
#include <math.h>
#include <string.h>

#include "harness.h"

_Static_assert(sizeof(gv_step_args) <= sizeof(((gv_h_layout *)0)->dims),
               "gv_step_args must fit the layout's dims union");

static void put_step_args(gv_h_layout *L, const gv_step_args *a) {
    memcpy(&L->dims, a, sizeof *a);
}
static gv_step_args step_args_of(const gv_h_layout *L) {
    gv_step_args a;
    memcpy(&a, &L->dims, sizeof a);
    return a;
}

/* ---- gaussian_step: v = {N, D, logp_kind}, p = {cx, cv, std} ---------------------------------- */
enum { GX, GVEL, GXN, GLOGP };
static const gv_h_tensor gaussian_tensors[] = {
    [GX] = {"x", GV_H_IN, GV_H_F32, GV_H_NORMAL, GV_H_PER_SAMPLE},
    [GVEL] = {"v", GV_H_IN, GV_H_F32, GV_H_NORMAL, GV_H_DIFF | GV_H_PER_SAMPLE},
    [GXN] = {"x_next", GV_H_IN, GV_H_F32, GV_H_NORMAL, GV_H_PER_SAMPLE},
    [GLOGP] = {"logp", GV_H_OUT, GV_H_F32, GV_H_NONE, GV_H_PER_SAMPLE},
};
static const gv_h_case gaussian_cases[] = {
    {"N1 D1 gaussian", {1, 1, GV_LOGP_GAUSSIAN}, {0.98, -0.05, 0.5}},
    {"N3 D37 gaussian", {3, 37, GV_LOGP_GAUSSIAN}, {1.02, -0.12, 0.3}},
    {"N2 D5 cps", {2, 5, GV_LOGP_CPS}, {0.4, -0.6, 0.8}},
};
static void gaussian_layout(const gv_h_case *c, gv_h_layout *L) {
    gv_step_args a = {.N = c->v[0], .D = c->v[1], .cx = (float)c->p[0], .cv = (float)c->p[1],
                      .std = (float)c->p[2], .delta = 0.0f, .logp_kind = c->v[2]};
    put_step_args(L, &a);
    L->numel[GX] = L->numel[GVEL] = L->numel[GXN] = (int64_t)a.N * a.D;
    L->numel[GLOGP] = a.N;
}
static gv_status gaussian_forward(gv_ctx *c, void *const *t, const gv_h_layout *L) {
    gv_step_args a = step_args_of(L);
    return c->backend->ops->gaussian_step_forward(c, t[GXN], t[GLOGP], t[GX], t[GVEL], NULL, &a);
}
static gv_status gaussian_backward(gv_ctx *c, float *const *g, void *const *t,
                                   const gv_h_layout *L) {
    gv_step_args a = step_args_of(L);
    return c->backend->ops->gaussian_step_backward(c, g[GVEL], g[GLOGP], t[GX], t[GVEL], t[GXN],
                                                   &a);
}
/* ALGORITHMS.md §2, log-probability of a transition: mean over D, in fp64 from the float inputs. */
static void gaussian_reference(const gv_h_layout *L, const void *const *in, double *const *e) {
    gv_step_args a = step_args_of(L);
    const float *x = in[GX], *v = in[GVEL], *xn = in[GXN];
    for (int n = 0; n < a.N; ++n) {
        double sum = 0;
        for (int64_t d = 0; d < a.D; ++d) {
            int64_t i = n * a.D + d;
            double r = (double)xn[i] - ((double)a.cx * x[i] + (double)a.cv * v[i]);
            sum += a.logp_kind == GV_LOGP_CPS
                       ? -r * r
                       : -r * r / (2.0 * a.std * a.std) - log((double)a.std) -
                             0.5 * log(2.0 * 3.14159265358979323846);
        }
        e[GLOGP][n] = sum / (double)a.D;
    }
}
static const gv_op_spec gaussian_step = {
    .name = "gaussian_step", .fwd_op = GV_OP_gaussian_step_forward,
    .bwd_op = GV_OP_gaussian_step_backward, .ntensors = GV_H_COUNT(gaussian_tensors),
    .tensors = gaussian_tensors, .ncases = GV_H_COUNT(gaussian_cases), .cases = gaussian_cases,
    .n_arg = 0, .layout = gaussian_layout, .run_forward = gaussian_forward,
    .run_backward = gaussian_backward, .reference = gaussian_reference,
};
GV_SPEC_FOR(gaussian_step_forward, gaussian_step);
GV_SPEC_FOR(gaussian_step_backward, gaussian_step);

/* ---- euler_step: v = {N, D}, p = {delta} ------------------------------------------------------ */
enum { EX, EVEL, EXN };
static const gv_h_tensor euler_tensors[] = {
    [EX] = {"x", GV_H_IN, GV_H_F32, GV_H_NORMAL, GV_H_PER_SAMPLE},
    [EVEL] = {"v", GV_H_IN, GV_H_F32, GV_H_NORMAL, GV_H_PER_SAMPLE},
    [EXN] = {"x_next", GV_H_OUT, GV_H_F32, GV_H_NONE, GV_H_PER_SAMPLE},
};
static const gv_h_case euler_cases[] = {
    {"N1 D1", {1, 1}, {-0.25}},
    {"N3 D37", {3, 37}, {-0.035714}},
    {"N2 D6", {2, 6}, {-1.0}},
};
static void euler_layout(const gv_h_case *c, gv_h_layout *L) {
    gv_step_args a = {.N = c->v[0], .D = c->v[1], .cx = 1.0f, .cv = (float)c->p[0], .std = 0.0f,
                      .delta = (float)c->p[0], .logp_kind = GV_LOGP_GAUSSIAN};
    put_step_args(L, &a);
    for (int i = 0; i < 3; ++i) L->numel[i] = (int64_t)a.N * a.D;
}
static gv_status euler_forward(gv_ctx *c, void *const *t, const gv_h_layout *L) {
    gv_step_args a = step_args_of(L);
    return c->backend->ops->euler_step(c, t[EXN], t[EX], t[EVEL], &a);
}
static void euler_reference(const gv_h_layout *L, const void *const *in, double *const *e) {
    gv_step_args a = step_args_of(L);
    const float *x = in[EX], *v = in[EVEL];
    for (int64_t i = 0; i < L->numel[EXN]; ++i) e[EXN][i] = (double)x[i] + (double)a.delta * v[i];
}
static const gv_op_spec euler_step = {
    .name = "euler_step", .fwd_op = GV_OP_euler_step, .bwd_op = -1,
    .ntensors = GV_H_COUNT(euler_tensors), .tensors = euler_tensors,
    .ncases = GV_H_COUNT(euler_cases), .cases = euler_cases, .n_arg = 0,
    .layout = euler_layout, .run_forward = euler_forward, .reference = euler_reference,
};
GV_SPEC_FOR(euler_step, euler_step);

/* ---- cfg_combine: v = {N, elements per sample}, p = {w} --------------------------------------- */
enum { CCOND, CNULL, CV };
static const gv_h_tensor cfg_tensors[] = {
    [CCOND] = {"v_cond", GV_H_IN, GV_H_F32, GV_H_NORMAL, GV_H_DIFF | GV_H_PER_SAMPLE},
    [CNULL] = {"v_null", GV_H_IN, GV_H_F32, GV_H_NORMAL, GV_H_DIFF | GV_H_PER_SAMPLE},
    [CV] = {"v", GV_H_OUT, GV_H_F32, GV_H_NONE, GV_H_PER_SAMPLE},
};
static const gv_h_case cfg_cases[] = {
    {"N1 x1 w4.5", {1, 1}, {4.5}},
    {"N3 x37 w1", {3, 37}, {1.0}},
    {"N2 x5 w0.3", {2, 5}, {0.3}},
};
static void cfg_layout(const gv_h_case *c, gv_h_layout *L) {
    L->dims.ew.n = (int64_t)c->v[0] * c->v[1];
    for (int i = 0; i < 3; ++i) L->numel[i] = L->dims.ew.n;
    L->alpha = (float)c->p[0];
}
static gv_status cfg_forward(gv_ctx *c, void *const *t, const gv_h_layout *L) {
    return c->backend->ops->cfg_combine(c, t[CV], t[CCOND], t[CNULL], L->alpha, &L->dims.ew);
}
static gv_status cfg_backward(gv_ctx *c, float *const *g, void *const *t, const gv_h_layout *L) {
    (void)t;
    return c->backend->ops->cfg_combine_backward(c, g[CCOND], g[CNULL], g[CV], L->alpha,
                                                 &L->dims.ew);
}
/* ALGORITHMS.md §1, CFG. */
static void cfg_reference(const gv_h_layout *L, const void *const *in, double *const *e) {
    const float *vc = in[CCOND], *vn = in[CNULL];
    for (int64_t i = 0; i < L->dims.ew.n; ++i)
        e[CV][i] = (double)vn[i] + (double)L->alpha * ((double)vc[i] - vn[i]);
}
static const gv_op_spec cfg_combine = {
    .name = "cfg_combine", .fwd_op = GV_OP_cfg_combine, .bwd_op = GV_OP_cfg_combine_backward,
    .ntensors = GV_H_COUNT(cfg_tensors), .tensors = cfg_tensors,
    .ncases = GV_H_COUNT(cfg_cases), .cases = cfg_cases, .n_arg = 0, .layout = cfg_layout,
    .run_forward = cfg_forward, .run_backward = cfg_backward, .reference = cfg_reference,
};
GV_SPEC_FOR(cfg_combine, cfg_combine);
GV_SPEC_FOR(cfg_combine_backward, cfg_combine);
