/* Policy log-prob estimators for masked-diffusion GRPO (grove/mdm_grpo.h, ALGORITHMS.md §10): the
 * view draw (masks + coefficients), ℓ̂ and its gradient w.r.t. the logits, token aggregation
 * weights, the model's log-prob forward/backward over a measured arena, and the clipped objective
 * with the k3 KL through the shared grpo_objective ops. The trajectory estimator's views are the
 * rollout's own canvases, rebuilt from the sampler record (no draw). The softmax arithmetic is fp64
 * on the host (T·V per view is small), as in samplers/masked.c; a device op for it is left to the
 * CUDA issue.
 * Not here: rollouts, rewards, advantages, the run loop. */
#include "grove/mdm_grpo.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "grove/ops.h"
#include "grove/rng.h"

const char *const gv_mdm_estimator_names[GV_MDM_EST_COUNT + 1] = {"diffu_grpo", "coupled",
                                                                  "coupled_pair", "single_mask", "trajectory",
                                                                  NULL};
const char *const gv_mdm_aggregation_names[GV_MDM_AGG_COUNT + 1] = {"sequence", "token", "balanced",
                                                                    NULL};

int gv_mdm_estimator_views(int estimator, int steps) {
    switch (estimator) {
    case GV_MDM_EST_COUPLED: return 3;
    case GV_MDM_EST_COUPLED_PAIR: return 2;
    case GV_MDM_EST_TRAJECTORY: return steps;
    default: return 1;
    }
}

/* trajectory: view k = the canvas at the start of sampler step k (completion positions with
   commit_step < k show their token, the rest [MASK]); the token committed at step k counts in view k
   with coefficient 1. */
static gv_status trajectory_views(const gv_mdm_view_args *a, const int32_t *tokens,
                                  const uint8_t *completion, int32_t *ids, float *coef, float *t_out) {
    const int N = a->N, T = a->T, K = a->steps;
    if (K < 1 || K > GV_MDM_MAX_VIEWS || !a->commit_step)
        return GV_ERROR(GV_ERR_INVALID, "mdm views: trajectory needs the rollout's commit steps and "
                        "1..%d sampler steps (got %d%s)", GV_MDM_MAX_VIEWS, K,
                        a->commit_step ? "" : ", no record");
    for (int n = 0; n < N; ++n) {
        const int32_t *tok = tokens + (int64_t)n * T, *cs = a->commit_step + (int64_t)n * T;
        const uint8_t *comp = completion + (int64_t)n * T;
        t_out[n] = NAN;
        for (int p = 0; p < T; ++p)
            if (comp[p] && (cs[p] < 0 || cs[p] >= K))
                return GV_ERROR(GV_ERR_INVALID, "mdm views: sequence %d position %d: commit step %d "
                                "outside [0, %d) (a position the sampler never committed?)", n, p,
                                (int)cs[p], K);
        for (int k = 0; k < K; ++k) {
            int32_t *id = ids + ((int64_t)n * K + k) * T;
            float *c = coef + ((int64_t)n * K + k) * T;
            for (int p = 0; p < T; ++p) {
                const int shown = !comp[p] || cs[p] < k;
                id[p] = shown ? tok[p] : a->mask_id;
                /* the commit, or with the order every draw of the step */
                c[p] = comp[p] && (a->order ? cs[p] >= k : cs[p] == k) ? 1.0f : 0.0f;
            }
        }
    }
    return GV_OK;
}

gv_status gv_mdm_views_draw(const gv_mdm_view_args *a, const int32_t *tokens, const uint8_t *completion,
                            const int32_t *group, int32_t *ids, float *coef, float *t_out) {
    const int N = a->N, T = a->T, e = a->estimator;
    if (N < 1 || T < 1 || e < 0 || e >= GV_MDM_EST_COUNT)
        return GV_ERROR(GV_ERR_INVALID, "mdm views: N %d, T %d, estimator %d", N, T, e);
    if (e == GV_MDM_EST_TRAJECTORY) return trajectory_views(a, tokens, completion, ids, coef, t_out);
    if (e != GV_MDM_EST_DIFFU_GRPO && !(a->t_lo > 0.0f && a->t_lo <= a->t_hi && a->t_hi < 1.0f))
        return GV_ERROR(GV_ERR_INVALID, "mdm views: t range [%g, %g] must lie in (0, 1)",
                        (double)a->t_lo, (double)a->t_hi);
    const int views = gv_mdm_estimator_views(e, 0);
    uint32_t key[2];
    gv_rng_key(a->seed, a->stream, key);
    for (int n = 0; n < N; ++n) {
        const int32_t *tok = tokens + (int64_t)n * T;
        const uint8_t *comp = completion + (int64_t)n * T;
        uint32_t cu[3], ct[3];
        const uint32_t g = group ? (uint32_t)group[n] : (uint32_t)n;
        GV_TRY(gv_rng_addr_pack(&(gv_rng_addr){.iteration = a->iteration, .slot = a->slot0 + (uint32_t)n,
                                               .node = a->draw, .purpose = GV_RNG_PURPOSE_MASK_UNIFORM}, cu));
        GV_TRY(gv_rng_addr_pack(&(gv_rng_addr){.iteration = a->iteration, .slot = a->slot0 + g,
                                               .node = a->draw, .purpose = GV_RNG_PURPOSE_TIMESTEP}, ct));
        double t = NAN;
        if (e != GV_MDM_EST_DIFFU_GRPO)
            t = (double)a->t_lo + (double)(a->t_hi - a->t_lo) * gv_rng_uniform_at(key, ct, 0);
        t_out[n] = (float)t;
        const float tf = (float)t; /* the stored t: coefficients use exactly this value */
        for (int v = 0; v < views; ++v) {
            int32_t *id = ids + ((int64_t)n * views + v) * T;
            float *c = coef + ((int64_t)n * views + v) * T;
            for (int p = 0; p < T; ++p) {
                id[p] = tok[p];
                c[p] = 0.0f;
                const double u = gv_rng_uniform_at(key, cu, (uint64_t)p);
                if (!comp[p]) {
                    if (e == GV_MDM_EST_DIFFU_GRPO && u < (double)a->prompt_mask) id[p] = a->mask_id;
                    continue;
                }
                const int in_v1 = u < (double)tf;
                /* which view this is: diffu_grpo V0; coupled V0, V1, V2; pair V1, V2; single V1 */
                const int kind = e == GV_MDM_EST_COUPLED ? v : e == GV_MDM_EST_COUPLED_PAIR ? v + 1
                               : e == GV_MDM_EST_SINGLE_MASK ? 1 : 0;
                const int masked = kind == 0 || (kind == 1 && in_v1) || (kind == 2 && !in_v1);
                if (!masked) continue;
                id[p] = a->mask_id;
                switch (e) {
                case GV_MDM_EST_DIFFU_GRPO: c[p] = 1.0f; break;
                case GV_MDM_EST_COUPLED:
                    c[p] = kind == 0 ? 0.5f : kind == 1 ? 0.5f / tf : 0.5f / (1.0f - tf);
                    break;
                case GV_MDM_EST_COUPLED_PAIR: c[p] = kind == 1 ? 0.5f / tf : 0.5f / (1.0f - tf); break;
                default: c[p] = 1.0f / tf; break;
                }
            }
        }
    }
    return GV_OK;
}

/* log-sum-exp over the non-[MASK] logits of one position */
static double lse_no_mask(const float *l, int V, int32_t mask_id) {
    double mx = -INFINITY, z = 0.0;
    for (int v = 0; v < V; ++v)
        if (v != mask_id && l[v] > mx) mx = l[v];
    for (int v = 0; v < V; ++v)
        if (v != mask_id) z += exp((double)l[v] - mx);
    return mx + log(z);
}

/* The token scored at (sequence n, view v, position p): the sequence's own, or with an order the
   step's draw except at the commit view (-1: the step drew nothing there, e.g. another block's
   position; such a position is not scored in that view). */
static int32_t scored_token(const gv_mdm_order *o, int views, int T, int n, int v, int p,
                            const int32_t *tokens) {
    const int64_t i = (int64_t)n * T + p;
    if (!o || o->commit_step[i] == v) return tokens[i];
    return o->drawn[((int64_t)n * views + v) * T + p];
}

/* Candidate q's score s_q = ℓ_kq / τ in the choice of the unit at place `place` of step k (its draw
   in *x), or NAN when q is not among the candidates left then (not a candidate of view k, or
   committed at k before that place). */
static double choice_score(const gv_mdm_order *o, int views, int T, int V, int32_t mask_id,
                           const float *logits, const int32_t *tokens, const float *coef, int n,
                           int k, int place, int q, double tau, int32_t *x) {
    const int64_t row = (int64_t)n * views + k, iq = (int64_t)n * T + q;
    *x = scored_token(o, views, T, n, k, q, tokens);
    if (coef[row * T + q] == 0.0f || *x < 0 || (o->commit_step[iq] == k && o->commit_rank[iq] < place))
        return NAN;
    const float *l = logits + (row * T + q) * V;
    return ((double)l[*x] - lse_no_mask(l, V, mask_id)) / tau;
}

/* The commit order's choice factor of unit (n, p) (gv_mdm_order): for a completion position
   committed at step k with place i, R = the step's candidates (coef != 0 in view k) less those
   committed before it. Returns 0 without an order, for a unit not scored at its commit view, or
   when the step has no choice (all candidates committed, or τ_k = 0); else *k_out, *tau, the unit's
   own score *sp and the max-shifted Σ_R exp(s_j − *mx), for the factor *sp − (*mx + log Σ). */
static int choice_set(const gv_mdm_order *o, int views, int T, int V, int32_t mask_id,
                      const float *logits, const int32_t *tokens, const float *coef, int n, int p,
                      int *k_out, double *tau, double *sp, double *mx, double *sum) {
    if (!o) return 0;
    const int64_t i = (int64_t)n * T + p;
    const int k = o->commit_step[i], place = o->commit_rank[i];
    if (k < 0 || k >= views || coef[((int64_t)n * views + k) * T + p] == 0.0f) return 0;
    const int64_t row = (int64_t)n * views + k;
    *tau = (double)o->tau_r[row];
    int m = 0, c = 0;
    for (int q = 0; q < T; ++q)
        if (coef[row * T + q] != 0.0f && scored_token(o, views, T, n, k, q, tokens) >= 0)
            ++m, c += o->commit_step[(int64_t)n * T + q] == k;
    if (!(*tau > 0.0) || c >= m) return 0;
    *k_out = k;
    *mx = -INFINITY;
    for (int pass = 0; pass < 2; ++pass) {
        *sum = 0.0;
        for (int q = 0; q < T; ++q) {
            int32_t x;
            const double s = choice_score(o, views, T, V, mask_id, logits, tokens, coef, n, k, place,
                                          q, *tau, &x);
            if (isnan(s)) continue;
            if (q == p) *sp = s;
            if (pass == 0) *mx = s > *mx ? s : *mx;
            else *sum += exp(s - *mx);
        }
    }
    return 1;
}

void gv_mdm_estimate(int N, int views, int T, int V, int32_t mask_id, const float *logits,
                     const int32_t *tokens, const float *coef, const gv_mdm_order *order, float *ell) {
    for (int n = 0; n < N; ++n)
        for (int p = 0; p < T; ++p) {
            double s = 0.0;
            for (int v = 0; v < views; ++v) {
                const int64_t row = (int64_t)n * views + v;
                const float c = coef[row * T + p];
                if (c == 0.0f) continue;
                const float *l = logits + (row * T + p) * V;
                const int32_t x = scored_token(order, views, T, n, v, p, tokens);
                if (x < 0) continue;
                s += (double)c * ((double)l[x] - lse_no_mask(l, V, mask_id));
            }
            int k;
            double tau, sp, mx, sum;
            if (choice_set(order, views, T, V, mask_id, logits, tokens, coef, n, p, &k, &tau, &sp, &mx, &sum))
                s += sp - (mx + log(sum));
            ell[(int64_t)n * T + p] = (float)s;
        }
}

/* dlogits[row, p] (+)= g · (onehot(tok) − softmax(l)) over the non-[MASK] classes: added with an
   order (several units reach one view's position), else set (one unit per (view, position), so
   the result is bit for bit what it was before orders existed, signed zeros included) */
static void add_logp_grad(const float *l, float *d, int V, int32_t mask_id, int32_t tok, double g,
                          int add) {
    const double lse = lse_no_mask(l, V, mask_id);
    for (int q = 0; q < V; ++q)
        if (q != mask_id) {
            const float v = (float)(g * ((q == tok) - exp((double)l[q] - lse)));
            d[q] = add ? d[q] + v : v;
        }
}

void gv_mdm_estimate_backward(int N, int views, int T, int V, int32_t mask_id, const float *logits,
                              const int32_t *tokens, const float *coef, const gv_mdm_order *order,
                              const float *dell, float *dlogits) {
    memset(dlogits, 0, (size_t)N * views * T * V * sizeof(float));
    for (int n = 0; n < N; ++n)
        for (int p = 0; p < T; ++p) {
            const double gp = (double)dell[(int64_t)n * T + p];
            if (gp == 0.0) continue;
            for (int v = 0; v < views; ++v) {
                const int64_t row = (int64_t)n * views + v;
                const double g = (double)coef[row * T + p] * gp;
                const int32_t x = scored_token(order, views, T, n, v, p, tokens);
                if (g == 0.0 || x < 0) continue;
                add_logp_grad(logits + (row * T + p) * V, dlogits + (row * T + p) * V, V, mask_id, x, g,
                              order != NULL);
            }
            int k;
            double tau, sp, mx, sum;
            if (!choice_set(order, views, T, V, mask_id, logits, tokens, coef, n, p, &k, &tau, &sp, &mx, &sum))
                continue;
            /* d(s_p − LSE_R s)/dℓ_kj = ([j = p] − π_j) / τ, π = softmax over R */
            const int64_t row = (int64_t)n * views + k;
            const int place = order->commit_rank[(int64_t)n * T + p];
            add_logp_grad(logits + (row * T + p) * V, dlogits + (row * T + p) * V, V, mask_id,
                          tokens[(int64_t)n * T + p], gp / tau, 1);
            for (int q = 0; q < T; ++q) {
                int32_t x;
                const double s = choice_score(order, views, T, V, mask_id, logits, tokens, coef, n, k,
                                              place, q, tau, &x);
                if (isnan(s)) continue;
                add_logp_grad(logits + (row * T + q) * V, dlogits + (row * T + q) * V, V, mask_id, x,
                              -gp * exp(s - mx) / sum / tau, 1);
            }
        }
}

void gv_mdm_cell_advantages(int N, int T, int G, const int32_t *tokens, const int32_t *solution,
                            const uint8_t *completion, const uint8_t *valid, float *adv) {
    for (int g0 = 0; g0 < N; g0 += G)
        for (int p = 0; p < T; ++p) {
            int members = 0, right = 0;
            for (int n = g0; n < g0 + G && n < N; ++n) {
                const int64_t i = (int64_t)n * T + p;
                if (!valid[n] || !completion[i]) continue;
                ++members;
                right += tokens[i] == solution[i];
            }
            const double mean = members ? (double)right / members : 0.0;
            for (int n = g0; n < g0 + G && n < N; ++n) {
                const int64_t i = (int64_t)n * T + p;
                adv[i] = valid[n] && completion[i] ? (float)((tokens[i] == solution[i]) - mean) : 0.0f;
            }
        }
}

gv_status gv_mdm_token_weights(int agg, int N, int T, const uint8_t *completion, const float *adv,
                               const uint8_t *valid, float *w) {
    if (agg < 0 || agg >= GV_MDM_AGG_COUNT) return GV_ERROR(GV_ERR_INVALID, "aggregation %d", agg);
    int nseq = 0, npos = 0, nneg = 0;
    int64_t tok = 0, tpos = 0, tneg = 0;
    for (int n = 0; n < N; ++n) {
        if (valid && !valid[n]) continue;
        int m = 0;
        for (int p = 0; p < T; ++p) m += completion[(int64_t)n * T + p] != 0;
        if (!m) continue;
        ++nseq;
        tok += m;
        if (adv[n] >= 0.0f) ++npos, tpos += m;
        else ++nneg, tneg += m;
    }
    for (int n = 0; n < N; ++n) {
        int m = 0;
        for (int p = 0; p < T; ++p) m += completion[(int64_t)n * T + p] != 0;
        double wn = 0.0;
        if (m && (!valid || valid[n]) && nseq) {
            if (agg == GV_MDM_AGG_SEQUENCE) wn = 1.0 / ((double)nseq * m);
            else if (agg == GV_MDM_AGG_TOKEN) wn = 1.0 / (double)tok;
            else if (adv[n] >= 0.0f) wn = ((double)npos / nseq) / (double)tpos;
            else wn = ((double)nneg / nseq) / (double)tneg;
        }
        for (int p = 0; p < T; ++p) w[(int64_t)n * T + p] = completion[(int64_t)n * T + p] ? (float)wn : 0.0f;
    }
    return GV_OK;
}

/* ---- the model's log-probs ---------------------------------------------------------------- */

static gv_status policy_buffers(gv_mdm_policy *p) {
    const size_t rows = (size_t)p->max_seq * p->views, units = (size_t)p->max_seq * p->T;
    const size_t nl = rows * p->T * p->V;
    GV_TRY(gv_arena_alloc(&p->arena, rows * p->T * sizeof(int32_t), (void **)&p->ids));
    GV_TRY(gv_arena_floats(&p->arena, nl, &p->logits));
    GV_TRY(gv_arena_floats(&p->arena, nl, &p->dlogits));
    float **u[] = {&p->u_logp, &p->u_old, &p->u_adv, &p->u_w, &p->u_kl, &p->u_ratio, &p->u_dlogp, &p->u_dkl};
    for (size_t i = 0; i < sizeof u / sizeof u[0]; ++i) GV_TRY(gv_arena_floats(&p->arena, units, u[i]));
    return gv_arena_floats(&p->arena, 4 + GV_GRPO_STATS, &p->u_scalars);
}

gv_status gv_mdm_policy_init(gv_mdm_policy *p, const gv_image_model *model, gv_ctx *ctx, int max_seq,
                             int views, int32_t mask_id) {
    memset(p, 0, sizeof *p);
    if (model->kind != GV_MODEL_MDT)
        return GV_ERROR(GV_ERR_INVALID, "%s: a %s is not a masked-diffusion model (mdt)",
                        model->path[0] ? model->path : "model", gv_model_kind_name(model->kind));
    if (max_seq < 1 || views < 1 || views > GV_MDM_MAX_VIEWS)
        return GV_ERROR(GV_ERR_INVALID, "mdm policy: %d sequences x %d views", max_seq, views);
    p->model = model;
    p->ctx = ctx;
    p->max_seq = max_seq;
    p->views = views;
    p->T = model->mdt.cfg.seq_len;
    p->V = model->mdt.cfg.vocab_size;
    p->mask_id = mask_id;
    const size_t rows = (size_t)max_seq * views, nl = rows * p->T * p->V;
    p->hlogits = malloc(nl * sizeof(float));
    p->hdlogits = malloc(nl * sizeof(float));
    p->h_units = malloc((size_t)6 * max_seq * p->T * sizeof(float));
    p->last_tokens = malloc((size_t)max_seq * p->T * sizeof(int32_t));
    if (!p->hlogits || !p->hdlogits || !p->h_units || !p->last_tokens) {
        gv_mdm_policy_free(p);
        return GV_ERROR(GV_ERR_OOM, "mdm policy: out of host memory");
    }
    gv_arena_init(&p->arena, ctx->backend, "masked-diffusion policy activations");
    gv_arena_measure_begin(&p->arena);
    GV_TRY(policy_buffers(p));
    GV_TRY(gv_mdt_forward(&model->mdt, ctx, &p->arena, model->params.values, (int)rows, p->ids,
                          p->logits, &p->saved));
    GV_TRY(gv_mdt_backward(&model->mdt, ctx, &p->arena, model->params.values, model->params.grads,
                           &p->saved, p->dlogits));
    GV_TRY(gv_arena_reserve(&p->arena, gv_arena_measure_end(&p->arena)));
    GV_TRY(policy_buffers(p));
    p->mark = gv_arena_mark(&p->arena);
    return GV_OK;
}

void gv_mdm_policy_free(gv_mdm_policy *p) {
    if (p->model) gv_arena_release(&p->arena);
    free(p->hlogits);
    free(p->hdlogits);
    free(p->h_units);
    free(p->last_tokens);
    memset(p, 0, sizeof *p);
}

gv_status gv_mdm_policy_logp(gv_mdm_policy *p, const float *theta, int n, const int32_t *ids,
                             const int32_t *tokens, const float *coef, const gv_mdm_order *order,
                             float *ell) {
    if (n < 1 || n > p->max_seq)
        return GV_ERROR(GV_ERR_INVALID, "mdm policy: %d sequences (1..%d)", n, p->max_seq);
    const gv_backend *be = p->ctx->backend;
    const int rows = n * p->views;
    const size_t nl = (size_t)rows * p->T * p->V;
    GV_TRY(be->copy_from_host(p->ids, ids, (size_t)rows * p->T * sizeof(int32_t)));
    gv_arena_reset_to(&p->arena, p->mark);
    GV_TRY(gv_mdt_forward(&p->model->mdt, p->ctx, &p->arena, theta, rows, p->ids, p->logits, &p->saved));
    GV_TRY(be->copy_to_host(p->hlogits, p->logits, nl * sizeof(float)));
    gv_mdm_estimate(n, p->views, p->T, p->V, p->mask_id, p->hlogits, tokens, coef, order, ell);
    p->last_order = order ? *order : (gv_mdm_order){0};
    memcpy(p->last_tokens, tokens, (size_t)n * p->T * sizeof(int32_t));
    p->last_coef = coef;
    p->last_n = n;
    return GV_OK;
}

gv_status gv_mdm_policy_backward(gv_mdm_policy *p, const float *theta, float *dtheta, const float *dell) {
    if (!p->last_n) return GV_ERROR(GV_ERR_INVALID, "mdm policy: backward before a forward");
    const int rows = p->last_n * p->views;
    const size_t nl = (size_t)rows * p->T * p->V;
    gv_mdm_estimate_backward(p->last_n, p->views, p->T, p->V, p->mask_id, p->hlogits, p->last_tokens,
                             p->last_coef, p->last_order.drawn ? &p->last_order : NULL, dell,
                             p->hdlogits);
    GV_TRY(p->ctx->backend->copy_from_host(p->dlogits, p->hdlogits, nl * sizeof(float)));
    return gv_mdt_backward(&p->model->mdt, p->ctx, &p->arena, theta, dtheta, &p->saved, p->dlogits);
}

gv_status gv_mdm_grpo_loss(gv_mdm_policy *p, int n, const float *ell, const float *old,
                           const float *ref, const float *adv, const float *w,
                           const gv_mdm_loss_args *a, float *dell, float *loss, float *stats,
                           int *units) {
    if (n < 1 || n > p->max_seq) return GV_ERROR(GV_ERR_INVALID, "mdm loss: %d sequences", n);
    const int T = p->T, cap = p->max_seq * T;
    float *h_logp = p->h_units, *h_old = h_logp + cap, *h_adv = h_old + cap, *h_w = h_adv + cap,
          *h_kl = h_w + cap, *h_d = h_kl + cap;
    int U = 0;
    for (int i = 0; i < n * T; ++i) {
        if (!(w[i] > 0.0f)) continue;
        h_logp[U] = ell[i];
        h_old[U] = old[i];
        h_adv[U] = a->token_adv ? a->token_adv[i] : adv[i / T];
        h_w[U] = w[i];
        /* k3 = exp(Δ) − Δ − 1, Δ = ℓ̂_ref − ℓ̂, times the unit weight so the op's β Σ kl / norm is
           the weighted mean */
        const double d = ref ? (double)ref[i] - (double)ell[i] : 0.0;
        h_kl[U] = ref ? (float)(w[i] * (exp(d) - d - 1.0)) : 0.0f;
        ++U;
    }
    *units = U;
    memset(dell, 0, (size_t)n * T * sizeof(float));
    *loss = 0.0f;
    if (!U) {
        for (int s = 0; s < GV_GRPO_STATS; ++s) stats[s] = 0.0f;
        return GV_OK;
    }
    const gv_backend *be = p->ctx->backend;
    const size_t ub = (size_t)U * sizeof(float);
    GV_TRY(be->copy_from_host(p->u_logp, h_logp, ub));
    GV_TRY(be->copy_from_host(p->u_old, h_old, ub));
    GV_TRY(be->copy_from_host(p->u_adv, h_adv, ub));
    GV_TRY(be->copy_from_host(p->u_w, h_w, ub));
    GV_TRY(be->copy_from_host(p->u_kl, h_kl, ub));
    const int with_kl = ref && a->beta != 0.0f;
    gv_grpo_args g = {.U = U, .clip_eps = a->clip_eps, .norm = 1.0f, .beta = a->beta};
    float *s_loss = p->u_scalars, *s_dloss = p->u_scalars + 1, *s_stats = p->u_scalars + 4;
    GV_TRY(be->ops->grpo_objective_forward(p->ctx, s_loss, s_stats, p->u_ratio, p->u_logp, p->u_old,
                                           p->u_adv, p->u_w, with_kl ? p->u_kl : NULL, &g));
    const float one = 1.0f;
    GV_TRY(be->copy_from_host(s_dloss, &one, sizeof one));
    GV_TRY(be->memset_zero(p->u_dlogp, ub));
    GV_TRY(be->memset_zero(p->u_dkl, ub));
    GV_TRY(be->ops->grpo_objective_backward(p->ctx, p->u_dlogp, with_kl ? p->u_dkl : NULL, s_dloss,
                                            p->u_ratio, p->u_adv, p->u_w, &g));
    GV_TRY(be->copy_to_host(loss, s_loss, sizeof *loss));
    GV_TRY(be->copy_to_host(stats, s_stats, GV_GRPO_STATS * sizeof(float)));
    GV_TRY(be->copy_to_host(h_d, p->u_dlogp, ub));
    float *h_dkl = h_kl; /* reuse: the forward copy is done */
    GV_TRY(be->copy_to_host(h_dkl, p->u_dkl, ub));
    U = 0;
    for (int i = 0; i < n * T; ++i) {
        if (!(w[i] > 0.0f)) continue;
        double g_u = h_d[U];
        if (with_kl) { /* d(w k3)/dℓ̂ = w (1 − exp(ℓ̂_ref − ℓ̂)) */
            const double d = (double)ref[i] - (double)ell[i];
            g_u += (double)h_dkl[U] * w[i] * (1.0 - exp(d));
        }
        dell[i] = (float)g_u;
        ++U;
    }
    return GV_OK;
}
