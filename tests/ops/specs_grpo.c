/* Harness specs: the GRPO loss ops (grpo_objective, kl; ALGORITHMS.md §3, Loss and KL).
 *
 * grpo_objective's loss is piecewise in logp: finite differences are only meaningful away from the
 * clip boundaries rho = 1 +- eps. The cases therefore place every ratio on one known side: logp and
 * logp_old are both U[0.5, 1.5), so logp - logp_old lies in (-1, 1) plus the case's shift of logp:
 *   - eps 2:   the range is (1-2, 1+2) = (-1, 3), log 3 = 1.0986 > 1 + h: nothing is clipped;
 *   - shift +3, eps 0.05: logp - logp_old in (2, 4), every rho > 1.05 (clipped for A > 0, the
 *     gradient is zero there and -A rho elsewhere);
 *   - shift -3, eps 0.05: every rho < 0.95 (clipped for A < 0).
 * Advantages are N(0, 1), so both signs occur in every case. The hand-computed mixed case (some
 * units inside, some outside the range) is tests/cpu/test_grpo_loss.c.
 *
 * The args structs live in the layout's dims union bytes (memcpy), as in specs_sampler.c. */
#include <math.h>
#include <string.h>

#include "harness.h"

_Static_assert(sizeof(gv_grpo_args) <= sizeof(((gv_h_layout *)0)->dims),
               "gv_grpo_args must fit the layout's dims union");
_Static_assert(sizeof(gv_kl_args) <= sizeof(((gv_h_layout *)0)->dims),
               "gv_kl_args must fit the layout's dims union");

/* ---- grpo_objective: v = {U, with_kl}, p = {clip_eps, norm, beta, logp shift} ----------------- */
enum { OLOGP, OOLD, OADV, OW, OKL, OLOSS, OSTATS, ORATIO };
static const gv_h_tensor objective_tensors[] = {
    [OLOGP] = {"logp", GV_H_IN, GV_H_F32, GV_H_POSITIVE, GV_H_DIFF},
    [OOLD] = {"logp_old", GV_H_IN, GV_H_F32, GV_H_POSITIVE, 0},
    [OADV] = {"adv", GV_H_IN, GV_H_F32, GV_H_NORMAL, 0},
    [OW] = {"weight", GV_H_IN, GV_H_F32, GV_H_WEIGHT, 0},
    [OKL] = {"kl", GV_H_IN, GV_H_F32, GV_H_POSITIVE, GV_H_DIFF},
    [OLOSS] = {"loss", GV_H_OUT, GV_H_F32, GV_H_NONE, 0},
    [OSTATS] = {"stats", GV_H_SAVED, GV_H_F32, GV_H_NONE, 0},
    [ORATIO] = {"ratio", GV_H_SAVED, GV_H_F32, GV_H_NONE, 0},
};
static const gv_h_case objective_cases[] = {
    {"U1 unclipped", {1, 0}, {2.0, 1.0, 0.0, 0.0}},
    {"U9 unclipped kl", {9, 1}, {2.0, 9.0, 0.04, 0.0}},
    {"U7 all above", {7, 0}, {0.05, 4.0, 0.0, 3.0}},
    {"U13 all below kl", {13, 1}, {0.05, 13.0, 0.5, -3.0}},
};
static gv_grpo_args objective_args_of(const gv_h_layout *L) {
    gv_grpo_args a;
    memcpy(&a, &L->dims, sizeof a);
    return a;
}
static void objective_layout(const gv_h_case *c, gv_h_layout *L) {
    gv_grpo_args a = {.U = c->v[0], .clip_eps = (float)c->p[0], .norm = (float)c->p[1],
                      .beta = (float)c->p[2]};
    memcpy(&L->dims, &a, sizeof a);
    L->numel[OLOGP] = L->numel[OOLD] = L->numel[OADV] = L->numel[OW] = L->numel[ORATIO] = a.U;
    L->numel[OKL] = c->v[1] ? a.U : 0;
    L->numel[OLOSS] = 1;
    L->numel[OSTATS] = GV_GRPO_STATS;
    L->shift[OLOGP] = (float)c->p[3];
}
static gv_status objective_forward(gv_ctx *c, void *const *t, const gv_h_layout *L) {
    gv_grpo_args a = objective_args_of(L);
    return c->backend->ops->grpo_objective_forward(c, t[OLOSS], t[OSTATS], t[ORATIO], t[OLOGP],
                                                   t[OOLD], t[OADV], t[OW], t[OKL], &a);
}
static gv_status objective_backward(gv_ctx *c, float *const *g, void *const *t,
                                    const gv_h_layout *L) {
    gv_grpo_args a = objective_args_of(L);
    return c->backend->ops->grpo_objective_backward(c, g[OLOGP], g[OKL], g[OLOSS], t[ORATIO],
                                                    t[OADV], t[OW], &a);
}
/* ALGORITHMS.md §3, Loss, in fp64 from the float inputs. */
static void objective_reference(const gv_h_layout *L, const void *const *in, double *const *e) {
    gv_grpo_args a = objective_args_of(L);
    const float *lp = in[OLOGP], *old = in[OOLD], *adv = in[OADV], *w = in[OW], *kl = in[OKL];
    double eps = a.clip_eps, policy = 0, kls = 0, rsum = 0, sq = 0, rmin = INFINITY,
           rmax = -INFINITY, above = 0, below = 0;
    for (int u = 0; u < a.U; ++u) {
        double dl = (double)lp[u] - old[u], r = exp(dl);
        double cr = fmin(fmax(r, 1.0 - eps), 1.0 + eps);
        policy += w[u] * fmax(-adv[u] * r, -adv[u] * cr);
        kls += kl ? kl[u] : 0.0;
        rsum += r;
        sq += dl * dl;
        rmin = fmin(rmin, r);
        rmax = fmax(rmax, r);
        above += r > 1.0 + eps;
        below += r < 1.0 - eps;
        e[ORATIO][u] = r;
    }
    e[OLOSS][0] = (policy + (kl ? a.beta * kls : 0.0)) / a.norm;
    double *s = e[OSTATS];
    s[GV_GRPO_STAT_RATIO_MEAN] = rsum / a.U;
    s[GV_GRPO_STAT_RATIO_MIN] = rmin;
    s[GV_GRPO_STAT_RATIO_MAX] = rmax;
    s[GV_GRPO_STAT_CLIP_ABOVE] = above / a.U;
    s[GV_GRPO_STAT_CLIP_BELOW] = below / a.U;
    s[GV_GRPO_STAT_APPROX_KL] = 0.5 * sq / a.U;
    s[GV_GRPO_STAT_KL_MEAN] = kls / a.U;
    s[GV_GRPO_STAT_POLICY_LOSS] = policy / a.norm;
}
static const gv_op_spec grpo_objective = {
    .name = "grpo_objective", .fwd_op = GV_OP_grpo_objective_forward,
    .bwd_op = GV_OP_grpo_objective_backward, .ntensors = GV_H_COUNT(objective_tensors),
    .tensors = objective_tensors, .ncases = GV_H_COUNT(objective_cases),
    .cases = objective_cases, .n_arg = -1, .layout = objective_layout,
    .run_forward = objective_forward, .run_backward = objective_backward,
    .reference = objective_reference, .fd_h = 1e-3,
};
GV_SPEC_FOR(grpo_objective_forward, grpo_objective);
GV_SPEC_FOR(grpo_objective_backward, grpo_objective);

/* ---- kl: v = {U, D, kind, per-unit var array}, p = {var scalar} -------------------------------- */
enum { KTH, KREF, KVAR, KOUT };
static const gv_h_tensor kl_tensors[] = {
    [KTH] = {"mu_theta", GV_H_IN, GV_H_F32, GV_H_NORMAL, GV_H_DIFF | GV_H_PER_SAMPLE},
    [KREF] = {"mu_ref", GV_H_IN, GV_H_F32, GV_H_NORMAL, GV_H_PER_SAMPLE},
    [KVAR] = {"var", GV_H_IN, GV_H_F32, GV_H_POSITIVE, GV_H_PER_SAMPLE},
    [KOUT] = {"kl", GV_H_OUT, GV_H_F32, GV_H_NONE, GV_H_PER_SAMPLE},
};
static const gv_h_case kl_cases[] = {
    {"U1 D1 flow_grpo var array", {1, 1, GV_KL_OP_SCALED, 1}, {0.0}},
    {"U3 D37 gaussian var scalar", {3, 37, GV_KL_OP_SCALED, 0}, {0.09}},
    {"U4 D5 velocity", {4, 5, GV_KL_OP_VELOCITY, 0}, {0.0}},
};
static gv_kl_args kl_args_of(const gv_h_layout *L) {
    gv_kl_args a;
    memcpy(&a, &L->dims, sizeof a);
    return a;
}
static void kl_layout(const gv_h_case *c, gv_h_layout *L) {
    gv_kl_args a = {.U = c->v[0], .D = c->v[1], .kind = c->v[2], .var = (float)c->p[0]};
    memcpy(&L->dims, &a, sizeof a);
    L->numel[KTH] = L->numel[KREF] = (int64_t)a.U * a.D;
    L->numel[KVAR] = c->v[3] ? a.U : 0;
    L->numel[KOUT] = a.U;
}
static gv_status kl_forward(gv_ctx *c, void *const *t, const gv_h_layout *L) {
    gv_kl_args a = kl_args_of(L);
    return c->backend->ops->kl_forward(c, t[KOUT], t[KTH], t[KREF], t[KVAR], &a);
}
static gv_status kl_backward(gv_ctx *c, float *const *g, void *const *t, const gv_h_layout *L) {
    gv_kl_args a = kl_args_of(L);
    return c->backend->ops->kl_backward(c, g[KTH], g[KOUT], t[KTH], t[KREF], t[KVAR], &a);
}
/* ALGORITHMS.md §3, KL. */
static void kl_reference(const gv_h_layout *L, const void *const *in, double *const *e) {
    gv_kl_args a = kl_args_of(L);
    const float *th = in[KTH], *ref = in[KREF], *var = in[KVAR];
    for (int u = 0; u < a.U; ++u) {
        double s = 0;
        for (int64_t d = 0; d < a.D; ++d) {
            double diff = (double)th[u * a.D + d] - ref[u * a.D + d];
            s += diff * diff;
        }
        double v = var ? var[u] : a.var;
        e[KOUT][u] = a.kind == GV_KL_OP_VELOCITY ? s / a.D : s / a.D / (2.0 * v);
    }
}
static const gv_op_spec kl_spec = {
    .name = "kl", .fwd_op = GV_OP_kl_forward, .bwd_op = GV_OP_kl_backward,
    .ntensors = GV_H_COUNT(kl_tensors), .tensors = kl_tensors, .ncases = GV_H_COUNT(kl_cases),
    .cases = kl_cases, .n_arg = 0, .layout = kl_layout, .run_forward = kl_forward,
    .run_backward = kl_backward, .reference = kl_reference,
};
GV_SPEC_FOR(kl_forward, kl_spec);
GV_SPEC_FOR(kl_backward, kl_spec);
