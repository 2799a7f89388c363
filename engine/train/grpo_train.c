/* The GRPO training pass of one iteration (grpo.h; ALGORITHMS.md §3 "Trained steps", "Loss",
 * "Optimizer structure", "Invariant: ρ == 1").
 *
 * Units are the iteration's (edge, advantage, weight) triples (credit.h), sorted by (root,
 * parent, child): for terminal-credit chains built here from the kept samples (advantage.h valid)
 * and their T trained steps of step_select.c (timestep_fraction / random_fraction / SDE window),
 * each with its step weight ω (uniform 1 or noise-aware; it multiplies the clipped policy term,
 * not the KL); for trees, branch points and DenseGRPO made by the rollout (credit scheme and
 * pruning). Roots with a unit are shuffled with Philox (seed, TRAIN, iteration, node = inner
 * epoch, SHUFFLE) and split into minibatches of train.minibatch roots; a minibatch is one
 * optimizer step whose loss is the mean over its units. Its units' PARENTS go through the UNet in
 * chunks of <= micro_batch rows — each kept parent's forward computed once, serving all its kept
 * children (ALGORITHMS.md §6; a chain's units each have their own parent, so its chunks are
 * micro_batch units as before) — each chunk one forward of EXACTLY the rollout's shape (rows =
 * mb, or 2·mb with the null rows when train_cfg; tail padded with zero latents and the null
 * prompt), so a unit's velocity is bitwise the rollout's before the first update and ρ == 1. A
 * split child's log-density uses its split_density std; the KL is one term per edge of its
 * parent's mean (a parent's KL gradient sums over its edges).
 * Per chunk:
 *   [β > 0]  v_ref = forward(reference weights); μ_ref = cx·x + cv·v_ref (velocity KL: v_ref)
 *   v = forward(θ) (activations kept), logp = gaussian_step_forward(x_i, v, stored x_{i+1})
 *   KL = kl_forward(μθ, μ_ref, var)  [flow_grpo: var = std²/(−Δ) = s²; gaussian: std²]
 *   loss += grpo_objective_forward(logp, logp_old, A, 1, KL; norm = units of the minibatch)
 *   backward: dlogp, dkl → kl_backward → dv += cv·dμ; gaussian_step_backward → dv;
 *   cfg_combine_backward → gv_unet_backward into params.grads (+=).
 * Shards (grpo.h, data parallel): each of this rank's shards runs the minibatch's roots it owns
 * (in shuffled order) into zeroed gradients; the per-shard statistics are gathered and combined,
 * and the shard gradients summed, in shard order (dist.h) — with one shard, the plain loop.
 * Then grad norm + clip, the non-finite guard (skip, count, stop after train.max_skips in a row),
 * AdamW at the scheduled lr (optimizer steps), EMA every ema.every steps.
 * Test hook: GROVE_TEST_GRPO_NAN_FROM_ITER=<k> poisons every gradient from iteration k on (the
 * guard test). Deliberately not here: rollouts, rewards, checkpoints, metrics. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "grove/dist.h"
#include "grove/grpo.h"
#include "grove/optim.h"
#include "grove/rng.h"

static gv_status dev_zalloc(const gv_backend *be, size_t bytes, void **out) {
    GV_TRY(be->alloc(bytes ? bytes : 4, out));
    return be->memset_zero(*out, bytes ? bytes : 4);
}

/* ---- the fixed-shape training forward --------------------------------------------------------- */

gv_status gv_grpo_stage_create(gv_grpo_stage *st, gv_ctx *c, const gv_unet *unet, int mb, int cfg) {
    memset(st, 0, sizeof *st);
    const gv_backend *be = c->backend;
    st->mb = mb;
    st->rows = cfg ? 2 * mb : mb;
    st->L = unet->cfg.max_prompt_len;
    st->D = (int64_t)unet->cfg.in_channels * unet->cfg.height * unet->cfg.width;
    const size_t R = (size_t)st->rows, img = (size_t)st->D * sizeof(float);
    GV_TRY(dev_zalloc(be, R * img, (void **)&st->x));
    GV_TRY(dev_zalloc(be, R * img, (void **)&st->v));
    GV_TRY(dev_zalloc(be, R * img, (void **)&st->dv));
    GV_TRY(dev_zalloc(be, R * sizeof(float), (void **)&st->sigma));
    GV_TRY(dev_zalloc(be, R * (size_t)st->L * sizeof(int32_t), (void **)&st->ids));
    st->sigma_host = calloc(R, sizeof(float));
    st->ids_host = calloc(R * (size_t)st->L, sizeof(int32_t));
    if (!st->sigma_host || !st->ids_host) return GV_ERROR(GV_ERR_OOM, "grpo: stage host buffers");
    gv_arena_init(&st->arena, be, "grpo training activations");
    return GV_OK;
}

/* DESIGN.md §3 arenas: one forward + backward measured, reserved once. */
static gv_status stage_measure(gv_grpo_stage *st, gv_ctx *c, const gv_unet *unet,
                               const float *theta, float *dtheta) {
    gv_arena_measure_begin(&st->arena);
    gv_status s = gv_unet_forward(unet, c, &st->arena, theta, st->rows, st->x, st->sigma, st->ids,
                                  st->v, &st->saved);
    if (s == GV_OK)
        s = gv_unet_backward(unet, c, &st->arena, theta, dtheta, &st->saved, st->dv, NULL);
    size_t peak = gv_arena_measure_end(&st->arena);
    GV_TRY(s);
    return gv_arena_reserve(&st->arena, peak);
}

void gv_grpo_stage_free(gv_grpo_stage *st, const gv_backend *be) {
    void *dev[] = {st->x, st->v, st->dv, st->sigma, st->ids};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; ++i)
        if (dev[i]) be->free(dev[i]);
    gv_arena_release(&st->arena);
    free(st->sigma_host);
    free(st->ids_host);
    memset(st, 0, sizeof *st);
}

/* A chunk's forward rows: one per kept parent (ALGORITHMS.md §6 reuse: its forward serves all
   its kept children) — the root's sample (prompt ids), the parent's step and latent offset. */
typedef struct row { int32_t sample, step; int64_t x; } row;
/* A chunk's units: one trained edge parent -> child (credit.h triple), its forward row, the
   latent offsets of x_i and x_{i+1}, and the std multiplier of its log-density (split_density). */
typedef struct unit {
    int32_t row, child, step;
    float adv, weight, logp_scale;
    int64_t x, x_next;
} unit;

typedef struct chunk_acc { /* host sums over a minibatch's chunks (of one shard, or combined) */
    double loss, ratio_sum, ratio_min, ratio_max, above, below, approx_kl, kl;
    int64_t units, nfe;
} chunk_acc;

/* v_out (n, D) = the (CFG-combined) velocity of the n rows under `theta`, through one forward of
   the rollout's row layout (denoiser.c stage_ids / padding); activations stay in the arena. */
static gv_status stage_forward(gv_grpo_job *j, const float *theta, const row *u, int n,
                               float *v_out) {
    gv_grpo_stage *st = &j->stage;
    const gv_backend *be = j->be;
    const int mb = st->mb, L = st->L, cfg = st->rows != mb;
    const size_t img = (size_t)st->D * sizeof(float);
    for (int r = 0; r < st->rows; ++r) {
        int32_t *row = st->ids_host + (size_t)r * L;
        if (r < n) {
            memcpy(row, j->sample_ids + (int64_t)u[r].sample * L, (size_t)L * sizeof(int32_t));
            st->sigma_host[r] = j->sigmas[u[r].step];
        } else {
            row[0] = j->model.null_id;
            for (int k = 1; k < L; ++k) row[k] = -1;
            st->sigma_host[r] = r >= mb && r - mb < n ? j->sigmas[u[r - mb].step] : 1.0f;
        }
    }
    GV_TRY(be->copy_from_host(st->ids, st->ids_host, (size_t)st->rows * L * sizeof(int32_t)));
    GV_TRY(be->copy_from_host(st->sigma, st->sigma_host, (size_t)st->rows * sizeof(float)));
    for (int r = 0; r < n; ++r)
        GV_TRY(be->copy(st->x + (int64_t)r * st->D, j->latents + u[r].x, img));
    if (n < mb) GV_TRY(be->memset_zero(st->x + (int64_t)n * st->D, (size_t)(mb - n) * img));
    if (cfg) GV_TRY(be->copy(st->x + (int64_t)mb * st->D, st->x, (size_t)mb * img));
    gv_arena_reset(&st->arena);
    GV_TRY(gv_unet_forward(&j->model.unet, j->ctx, &st->arena, theta, st->rows, st->x, st->sigma,
                           st->ids, st->v, &st->saved));
    gv_ew_dims e = {.n = (int64_t)n * st->D};
    if (cfg) /* ALGORITHMS.md §1 CFG: v = v_null + w·(v_cond − v_null) */
        return be->ops->cfg_combine(j->ctx, v_out, st->v, st->v + (int64_t)mb * st->D, j->guidance, &e);
    return be->copy(v_out, st->v, (size_t)n * img);
}

gv_status gv_grpo_train_alloc(gv_grpo_job *j) {
    const gv_backend *be = j->be;
    const size_t mbD = (size_t)j->mb * (size_t)j->D * sizeof(float), mb = (size_t)j->mb * sizeof(float);
    GV_TRY(gv_grpo_stage_create(&j->stage, j->ctx, &j->model.unet, j->mb, j->train_cfg));
    GV_TRY(stage_measure(&j->stage, j->ctx, &j->model.unet, j->model.params.values,
                         j->model.params.grads));
    float **big[] = {&j->u_v, &j->u_mu, &j->u_mu_ref, &j->u_dmu, &j->u_dv};
    for (size_t i = 0; i < sizeof big / sizeof big[0]; ++i) GV_TRY(dev_zalloc(be, mbD, (void **)big[i]));
    /* units per chunk: micro_batch rows x the children a parent can have (credit.h edges) */
    const int per_row = !j->tree_mode ? 1 : j->topo.K + 1;
    j->unit_cap = j->mb * per_row;
    const size_t ub = (size_t)j->unit_cap * sizeof(float);
    float **small[] = {&j->u_logp, &j->u_logp_old, &j->u_adv, &j->u_weight, &j->u_kl,
                       &j->u_ratio, &j->u_dlogp, &j->u_dkl};
    for (size_t i = 0; i < sizeof small / sizeof small[0]; ++i) GV_TRY(dev_zalloc(be, ub, (void **)small[i]));
    float **per_rows[] = {&j->u_var, &j->u_kl_row, &j->u_dkl_row};
    for (size_t i = 0; i < sizeof per_rows / sizeof per_rows[0]; ++i) GV_TRY(dev_zalloc(be, mb, (void **)per_rows[i]));
    GV_TRY(dev_zalloc(be, GV_GRPO_STATS * sizeof(float), (void **)&j->u_stats));
    GV_TRY(dev_zalloc(be, sizeof(float), (void **)&j->u_loss));
    GV_TRY(dev_zalloc(be, sizeof(float), (void **)&j->u_one));
    const float one = 1.0f;
    GV_TRY(be->copy_from_host(j->u_one, &one, sizeof one));
    j->h_unit = calloc((size_t)j->unit_cap, sizeof(float));
    j->unit_args = calloc((size_t)j->unit_cap, sizeof(gv_step_args));
    j->chunk_rows = calloc((size_t)j->mb, sizeof(row));
    j->chunk_units = calloc((size_t)j->unit_cap, sizeof(unit));
    j->root_first = calloc((size_t)j->S + 1, sizeof(int32_t));
    if (!j->unit_args || !j->chunk_rows || !j->chunk_units || !j->root_first)
        return GV_ERROR(GV_ERR_OOM, "grpo: training unit buffers");
    if (!j->tree_mode) { /* chains: the triples are built from the trained steps each iteration */
        j->credit.capacity = j->S * j->N; /* every edge of the chains (credit.h's bound) */
        j->credit.edges = calloc((size_t)j->credit.capacity, sizeof(gv_credit_edge));
        if (!j->credit.edges) return GV_ERROR(GV_ERR_OOM, "grpo: training edges");
    }
    /* data parallel (grpo.h): one gradient buffer per local shard (one shard in all: the
       gradients themselves) and the per-shard statistics */
    const int nloc = j->shard_hi - j->shard_lo;
    j->shard_grads = calloc((size_t)nloc, sizeof *j->shard_grads);
    j->shard_acc = calloc((size_t)j->shards, sizeof(chunk_acc));
    if (!j->shard_grads || !j->shard_acc) return GV_ERROR(GV_ERR_OOM, "grpo: shard buffers");
    for (int k = 0; k < nloc; ++k) {
        if (j->shards == 1) j->shard_grads[k] = j->model.params.grads;
        else GV_TRY(dev_zalloc(be, (size_t)j->model.params.total * sizeof(float),
                               (void **)&j->shard_grads[k]));
    }
    j->roots = calloc((size_t)j->S, sizeof(int32_t));
    j->trained = calloc((size_t)j->S * (size_t)(j->T > 0 ? j->T : 1), sizeof(int32_t));
    j->step_w = calloc((size_t)j->S * (size_t)(j->T > 0 ? j->T : 1), sizeof(float));
    if (!j->h_unit || !j->roots || !j->trained || !j->step_w) return GV_ERROR(GV_ERR_OOM, "grpo: training host buffers");
    return GV_OK;
}

/* ---- one chunk -------------------------------------------------------------------------------- */

static int kl_active(const gv_run_config *cfg) {
    return cfg->kl.kind != GV_KL_NONE && cfg->kl.beta > 0.0;
}

static gv_status copy_unit_values(gv_grpo_job *j, float *dst, int n, float (*value)(gv_grpo_job *, const unit *),
                                  const unit *u) {
    for (int k = 0; k < n; ++k) j->h_unit[k] = value(j, &u[k]);
    return j->be->copy_from_host(dst, j->h_unit, (size_t)n * sizeof(float));
}
static float unit_logp_old(gv_grpo_job *j, const unit *u) { return j->tree.nodes[u->child].logp_old; }
static float unit_adv(gv_grpo_job *j, const unit *u) { (void)j; return u->adv; }
static float unit_weight(gv_grpo_job *j, const unit *u) { (void)j; return u->weight; }

/* The SDE coefficients of a trained step (chains: step_select.c's, which are the schedule's
   inside the SDE steps; trees: the schedule's, std x the edge's density multiplier). */
static gv_status trained_coeffs(const gv_grpo_job *j, int step, float logp_scale, gv_step_args *a) {
    if (j->tree_mode) return gv_grpo_sde_coeffs(j, step, logp_scale, a);
    int sde = 0;
    GV_TRY(gv_grpo_step_coeffs(j, step, a, &sde));
    if (!sde) return GV_ERROR(GV_ERR_INTERNAL, "grpo: trained step %d is not an SDE step", step);
    return GV_OK;
}
/* KL variance of a row (ALGORITHMS.md §3): flow_grpo s² = std²/(−Δ); gaussian std² (the step's
   schedule std; a split's lambda does not enter). */
static float row_var(gv_grpo_job *j, const row *r) {
    gv_step_args a;
    if (trained_coeffs(j, r->step, 1.0f, &a) != GV_OK) return NAN;
    const double var = (double)a.std * a.std;
    return (float)(j->cfg->kl.kind == GV_KL_FLOW_GRPO ? var / -(double)a.delta : var);
}

/* μ (1, D) = cx·x + cv·v of unit u (ALGORITHMS.md §2: every Gaussian mean is linear in x, v). */
static gv_status unit_mean(gv_grpo_job *j, float *mu, const float *x, const float *v,
                           const gv_step_args *a) {
    gv_ew_dims e = {.n = j->D};
    GV_TRY(j->be->ops->scale(j->ctx, mu, v, a->cv, &e));
    return j->be->ops->axpby(j->ctx, mu, x, a->cx, 1.0f, &e);
}

/* One chunk: n_rows parents through one fixed-shape forward, then every unit (edge) reads its
   parent's velocity; the KL is a term per edge of its parent's mean. With one unit per row (chains)
   the per-row buffers are the per-unit ones. */
static gv_status run_chunk(gv_grpo_job *j, const row *rw, int n_rows, const unit *u, int n,
                           int64_t norm, int poison, chunk_acc *acc, int64_t *nfe) {
    const gv_run_config *cfg = j->cfg;
    const gv_backend *be = j->be;
    const gv_ops *ops = be->ops;
    gv_ctx *c = j->ctx;
    const int64_t D = j->D;
    const int kl = kl_active(cfg), velocity_kl = cfg->kl.kind == GV_KL_VELOCITY;
    int identity = n == n_rows;
    for (int k = 0; k < n && identity; ++k) identity = u[k].row == k;
    gv_step_args *a = j->unit_args, ar[1024]; /* per unit; per row (the step's, unscaled) */
    if (n > j->unit_cap || n_rows > (int)(sizeof ar / sizeof ar[0]))
        return GV_ERROR(GV_ERR_INVALID, "grpo: chunk of %d units / %d rows too large", n, n_rows);
    for (int k = 0; k < n; ++k) {
        GV_TRY(trained_coeffs(j, u[k].step, u[k].logp_scale, &a[k]));
        a[k].N = 1;
        a[k].D = D;
    }
    for (int r = 0; r < n_rows; ++r) {
        GV_TRY(trained_coeffs(j, rw[r].step, 1.0f, &ar[r]));
        ar[r].N = 1;
        ar[r].D = D;
    }
    const int per_forward = n_rows * (j->train_cfg ? 2 : 1);
    if (kl) { /* the frozen reference (ALGORITHMS.md §3, KL) */
        GV_TRY(stage_forward(j, j->base.params.values, rw, n_rows, j->u_mu_ref));
        if (!velocity_kl)
            for (int r = 0; r < n_rows; ++r) {
                float *m = j->u_mu_ref + r * D;
                GV_TRY(unit_mean(j, m, j->latents + rw[r].x, m, &ar[r]));
            }
        *nfe += per_forward;
    }
    GV_TRY(stage_forward(j, j->model.params.values, rw, n_rows, j->u_v));
    *nfe += per_forward;
    /* logp of the stored x_{i+1} (recompute mode: eps NULL) */
    for (int k = 0; k < n; ++k)
        GV_TRY(ops->gaussian_step_forward(c, (float *)(j->latents + u[k].x_next), j->u_logp + k,
                                          j->latents + u[k].x, j->u_v + u[k].row * D, NULL, &a[k]));
    GV_TRY(copy_unit_values(j, j->u_logp_old, n, unit_logp_old, u));
    GV_TRY(copy_unit_values(j, j->u_adv, n, unit_adv, u));
    GV_TRY(copy_unit_values(j, j->u_weight, n, unit_weight, u));
    gv_kl_args ka = {.U = n_rows, .D = D, .kind = velocity_kl ? GV_KL_OP_VELOCITY : GV_KL_OP_SCALED};
    const float *theta_side = j->u_v;
    float *kl_rows = identity ? j->u_kl : j->u_kl_row, *dkl_rows = identity ? j->u_dkl : j->u_dkl_row;
    if (kl) {
        if (!velocity_kl) {
            for (int r = 0; r < n_rows; ++r)
                GV_TRY(unit_mean(j, j->u_mu + r * D, j->latents + rw[r].x, j->u_v + r * D, &ar[r]));
            theta_side = j->u_mu;
            for (int r = 0; r < n_rows; ++r) j->h_unit[r] = row_var(j, &rw[r]);
            GV_TRY(be->copy_from_host(j->u_var, j->h_unit, (size_t)n_rows * sizeof(float)));
        }
        GV_TRY(ops->kl_forward(c, kl_rows, theta_side, j->u_mu_ref, velocity_kl ? NULL : j->u_var, &ka));
        if (!identity) /* each edge carries its parent's KL */
            for (int k = 0; k < n; ++k) GV_TRY(be->copy(j->u_kl + k, kl_rows + u[k].row, sizeof(float)));
    }
    /* ALGORITHMS.md §3 Loss: max(−Aρ, −A·clip(ρ, 1−ε, 1+ε)) + β·KL, mean over the minibatch */
    gv_grpo_args ga = {.U = n, .clip_eps = (float)cfg->train.clip_range, .norm = (float)norm,
                       .beta = (float)cfg->kl.beta};
    GV_TRY(ops->grpo_objective_forward(c, j->u_loss, j->u_stats, j->u_ratio, j->u_logp,
                                       j->u_logp_old, j->u_adv, j->u_weight, kl ? j->u_kl : NULL, &ga));
    float stats[GV_GRPO_STATS], loss;
    GV_TRY(be->copy_to_host(stats, j->u_stats, sizeof stats));
    GV_TRY(be->copy_to_host(&loss, j->u_loss, sizeof loss));
    acc->loss += loss;
    acc->ratio_sum += (double)stats[GV_GRPO_STAT_RATIO_MEAN] * n;
    acc->ratio_min = fmin(acc->ratio_min, stats[GV_GRPO_STAT_RATIO_MIN]);
    acc->ratio_max = fmax(acc->ratio_max, stats[GV_GRPO_STAT_RATIO_MAX]);
    acc->above += (double)stats[GV_GRPO_STAT_CLIP_ABOVE] * n;
    acc->below += (double)stats[GV_GRPO_STAT_CLIP_BELOW] * n;
    acc->approx_kl += (double)stats[GV_GRPO_STAT_APPROX_KL] * n;
    acc->kl += (double)stats[GV_GRPO_STAT_KL_MEAN] * n;
    acc->units += n;
    /* backward, every buffer += (DESIGN.md §3) */
    const size_t rD = (size_t)n_rows * (size_t)D * sizeof(float), nb = (size_t)n * sizeof(float);
    GV_TRY(be->memset_zero(j->u_dlogp, nb));
    GV_TRY(be->memset_zero(j->u_dkl, nb));
    GV_TRY(ops->grpo_objective_backward(c, j->u_dlogp, kl ? j->u_dkl : NULL, j->u_one, j->u_ratio,
                                        j->u_adv, j->u_weight, &ga));
    float *dv = j->u_dv; /* (n_rows, D) gradient of the combined velocities */
    GV_TRY(be->memset_zero(dv, rD));
    if (kl) {
        if (!identity) { /* a parent's KL gradient sums over its edges */
            const gv_ew_dims one = {.n = 1};
            GV_TRY(be->memset_zero(dkl_rows, (size_t)n_rows * sizeof(float)));
            for (int k = 0; k < n; ++k)
                GV_TRY(ops->axpby(c, dkl_rows + u[k].row, j->u_dkl + k, 1.0f, 1.0f, &one));
        }
        GV_TRY(be->memset_zero(j->u_dmu, rD));
        GV_TRY(ops->kl_backward(c, j->u_dmu, dkl_rows, theta_side, j->u_mu_ref,
                                velocity_kl ? NULL : j->u_var, &ka));
        for (int r = 0; r < n_rows; ++r) { /* dv += (∂μ/∂v = cv)·dμ, or dμ itself for the velocity KL */
            gv_ew_dims e = {.n = D};
            GV_TRY(ops->axpby(c, dv + r * D, j->u_dmu + r * D, velocity_kl ? 1.0f : ar[r].cv, 1.0f, &e));
        }
    }
    for (int k = 0; k < n; ++k) /* += into the parent's row: one forward serves all its children */
        GV_TRY(ops->gaussian_step_backward(c, dv + u[k].row * D, j->u_dlogp + k, j->latents + u[k].x,
                                           j->u_v + u[k].row * D, j->latents + u[k].x_next, &a[k]));
    gv_grpo_stage *st = &j->stage;
    GV_TRY(be->memset_zero(st->dv, (size_t)st->rows * (size_t)D * sizeof(float)));
    if (st->rows != st->mb) {
        gv_ew_dims e = {.n = (int64_t)n_rows * D};
        GV_TRY(ops->cfg_combine_backward(c, st->dv, st->dv + (int64_t)st->mb * D, dv, j->guidance, &e));
    } else {
        GV_TRY(be->copy(st->dv, dv, rD));
    }
    GV_TRY(gv_unet_backward(&j->model.unet, c, &st->arena, j->model.params.values,
                            j->model.params.grads, &st->saved, st->dv, NULL));
    if (poison) { /* test hook: every gradient becomes NaN */
        gv_ew_dims e = {.n = j->model.params.total};
        GV_TRY(ops->scale(c, j->model.params.grads, j->model.params.grads, NAN, &e));
    }
    return GV_OK;
}

/* ---- the iteration ---------------------------------------------------------------------------- */

/* Fisher–Yates of the kept roots at (seed, TRAIN, iteration, node = epoch, SHUFFLE). */
static gv_status shuffle_roots(gv_grpo_job *j, uint32_t iteration, int epoch, int *count) {
    int n = 0;
    for (int s = 0; s < j->S; ++s) /* roots with a trained edge (chains: the kept samples) */
        if (j->root_first[s + 1] > j->root_first[s]) j->roots[n++] = s;
    uint32_t key[2], hi[3];
    gv_rng_key(j->seed, GV_RNG_STREAM_TRAIN, key);
    gv_rng_addr addr = {.iteration = iteration, .node = (uint32_t)epoch,
                        .purpose = GV_RNG_PURPOSE_SHUFFLE};
    GV_TRY(gv_rng_addr_pack(&addr, hi));
    for (int i = n - 1; i > 0; --i) {
        int k = (int)(gv_rng_u32_at(key, hi, (uint64_t)i) % (uint32_t)(i + 1));
        int32_t t = j->roots[i];
        j->roots[i] = j->roots[k];
        j->roots[k] = t;
    }
    *count = n;
    return GV_OK;
}

/* Shard sh's part of a minibatch (grpo.h, data parallel): the minibatch's roots it owns, in
   shuffled order, their edges in (root, parent, child) order: a new parent opens a row; a chunk is
   flushed when micro_batch rows are full (chains: every micro_batch units, as the rollout). The
   gradient accumulates (+=) into params.grads; the statistics into acc. */
static gv_status shard_part(gv_grpo_job *j, int sh, const int32_t *roots, int m, int64_t norm,
                            int poison, chunk_acc *acc) {
    row *rw = j->chunk_rows;
    unit *un = j->chunk_units;
    int n_rows = 0, n = 0;
    int32_t parent = -1;
    for (int r = 0; r < m; ++r) {
        if (j->root_shard[roots[r]] != sh) continue;
        for (int32_t e = j->root_first[roots[r]]; e < j->root_first[roots[r] + 1]; ++e) {
            const gv_credit_edge *ce = &j->credit.edges[e];
            if (ce->parent != parent) {
                if (n_rows == j->mb) {
                    GV_TRY(run_chunk(j, rw, n_rows, un, n, norm, poison, acc, &acc->nfe));
                    n_rows = n = 0;
                }
                const gv_tree_node *pn = &j->tree.nodes[ce->parent];
                rw[n_rows++] = (row){.sample = ce->root, .step = ce->step, .x = pn->latent};
                parent = ce->parent;
            }
            if (n == j->unit_cap)
                return GV_ERROR(GV_ERR_INTERNAL, "grpo: more than %d units per chunk", j->unit_cap);
            const gv_tree_node *cn = &j->tree.nodes[ce->child];
            float noise = 1.0f, logp_scale = 1.0f;
            if (j->tree_mode) gv_topology_edge_scales(&j->topo, cn, &noise, &logp_scale);
            un[n++] = (unit){.row = n_rows - 1, .child = ce->child, .step = ce->step,
                             .adv = ce->advantage, .weight = ce->weight, .logp_scale = logp_scale,
                             .x = j->tree.nodes[ce->parent].latent, .x_next = cn->latent};
        }
    }
    if (n > 0) GV_TRY(run_chunk(j, rw, n_rows, un, n, norm, poison, acc, &acc->nfe));
    return GV_OK;
}

/* One minibatch = one optimizer step (ALGORITHMS.md §3, Optimizer structure): this rank's shard
   parts each into zeroed gradients, the statistics of every shard gathered and combined in shard
   order, the shard gradients summed in shard order (dist.h) into params.grads on every rank. */
static gv_status run_minibatch(gv_grpo_job *j, const int32_t *roots, int m, int poison,
                               gv_grpo_state *st, chunk_acc *acc, gv_grpo_train_stats *out) {
    const gv_run_config *cfg = j->cfg;
    gv_params *ps = &j->model.params;
    int64_t norm = 0; /* units of the whole minibatch (chains: m·T), every shard alike */
    for (int r = 0; r < m; ++r) norm += j->root_first[roots[r] + 1] - j->root_first[roots[r]];
    chunk_acc *accs = j->shard_acc;
    for (int sh = j->shard_lo; sh < j->shard_hi; ++sh) {
        accs[sh] = *acc; /* the caller's initial values */
        GV_TRY(gv_params_zero_grads(ps));
        GV_TRY(shard_part(j, sh, roots, m, norm, poison, &accs[sh]));
        float *mine = j->shard_grads[sh - j->shard_lo];
        if (mine != ps->grads)
            GV_TRY(j->be->copy(mine, ps->grads, (size_t)ps->total * sizeof(float)));
    }
    GV_TRY(gv_dist_allgather("training statistics", accs, sizeof *accs, j->shards, j->shard_lo,
                             j->shard_hi));
    *acc = accs[0];
    for (int sh = 1; sh < j->shards; ++sh) { /* shard order, as the gradients */
        const chunk_acc *b = &accs[sh];
        acc->loss += b->loss;
        acc->ratio_sum += b->ratio_sum;
        acc->ratio_min = fmin(acc->ratio_min, b->ratio_min);
        acc->ratio_max = fmax(acc->ratio_max, b->ratio_max);
        acc->above += b->above;
        acc->below += b->below;
        acc->approx_kl += b->approx_kl;
        acc->kl += b->kl;
        acc->units += b->units;
        acc->nfe += b->nfe;
    }
    out->nfe_train += acc->nfe;
    if (isfinite(acc->loss)) { /* a non-finite loss skips the step on every rank alike */
        const gv_shard_sum sum = {.be = j->be, .ctx = j->ctx, .n = ps->total, .shards = j->shards,
                                  .lo = j->shard_lo, .hi = j->shard_hi,
                                  .local = j->shard_grads, .out = ps->grads};
        GV_TRY(gv_dist_shard_sum(&sum, "gradient sum"));
    }
    float norm_before = NAN;
    int finite = isfinite(acc->loss);
    gv_status s = GV_OK;
    if (finite && cfg->train.grad_clip > 0) {
        s = gv_grad_clip(j->ctx, ps, (float)cfg->train.grad_clip, &norm_before);
        if (s == GV_ERR_NUMERIC) finite = 0, s = GV_OK, gv_clear_error();
    } else if (finite) {
        s = gv_grad_norm(j->ctx, ps, &norm_before);
        finite = isfinite(norm_before);
    }
    GV_TRY(s);
    out->grad_norm = norm_before;
    if (!finite) {
        st->skips_in_a_row++;
        out->steps_skipped++;
        if (cfg->train.max_skips > 0 && st->skips_in_a_row >= cfg->train.max_skips) out->stop_skips = 1;
        return GV_OK;
    }
    st->skips_in_a_row = 0;
    st->opt_step++;
    out->steps_taken++;
    const gv_lr_schedule sched = {.kind = (gv_lr_kind)cfg->train.lr_schedule.kind,
                                  .lr = (float)cfg->train.lr,
                                  .warmup_steps = cfg->train.lr_schedule.warmup_steps,
                                  .total_steps = cfg->train.lr_schedule.total_steps,
                                  .min_lr = (float)cfg->train.lr_schedule.min_lr};
    gv_adamw_config adam = {.lr = sched.lr, .beta1 = (float)cfg->train.adam_beta1,
                            .beta2 = (float)cfg->train.adam_beta2, .eps = 1e-8f,
                            .weight_decay = (float)cfg->train.weight_decay};
    GV_TRY(gv_optim_step(j->ctx, ps, &adam, gv_lr_at(&sched, st->opt_step), st->opt_step));
    if (st->opt_step % cfg->train.ema.every == 0)
        GV_TRY(gv_ema_update(j->ctx, ps, gv_ema_decay_at(st->ema_updates++, (float)cfg->train.ema.decay)));
    return GV_OK;
}

gv_status gv_grpo_train_iteration(gv_grpo_job *j, uint32_t iteration, gv_grpo_state *st,
                                  gv_grpo_train_stats *out) {
    memset(out, 0, sizeof *out);
    out->ratio_min = out->ratio_first_min = INFINITY;
    out->ratio_max = out->ratio_first_max = -INFINITY;
    out->grad_norm = NAN;
    const char *hook = getenv("GROVE_TEST_GRPO_NAN_FROM_ITER");
    const int poison = hook && *hook && (int64_t)iteration >= strtoll(hook, NULL, 10);
    const int per_mb = j->cfg->train.minibatch;
    double loss_sum = 0.0, ratio_sum = 0.0;
    int minibatches = 0;
    if (!j->tree_mode && j->cfg->credit.kind == GV_CREDIT_KIND_TERMINAL) {
        /* chains: the triples of the trained steps (step_select.c); dense: rollout.c made them */
        j->credit.n = 0;
        for (int s = 0; s < j->S; ++s) {
            int32_t *steps = j->trained + (int64_t)s * j->T;
            float *w = j->step_w + (int64_t)s * j->T;
            GV_TRY(gv_grpo_trained_steps(j->cfg, &j->step_plan, j->seed, iteration,
                                         j->sample_prompt[s], s % j->G, j->T, steps));
            GV_TRY(gv_grpo_step_weights(j, steps, j->T, w));
            if (!j->valid[s]) continue;
            for (int i = 0; i < j->T; ++i) /* chain node of x_i of sample s: i·S + s */
                j->credit.edges[j->credit.n++] = (gv_credit_edge){
                    .child = (steps[i] + 1) * j->S + s, .parent = steps[i] * j->S + s, .root = s,
                    .step = steps[i], .advantage = j->advantage[s], .weight = w[i]};
        }
    }
    for (int s = 0, e = 0; s <= j->S; ++s) { /* the edges of root s (the list is root-sorted) */
        while (e < j->credit.n && j->credit.edges[e].root < s) ++e;
        j->root_first[s] = e;
    }
    const int trains = j->credit.n > 0;
    for (int epoch = 0; epoch < j->cfg->train.inner_epochs && trains; ++epoch) {
        int n_roots = 0;
        GV_TRY(shuffle_roots(j, iteration, epoch, &n_roots));
        for (int first = 0; first < n_roots; first += per_mb) {
            const int m = n_roots - first < per_mb ? n_roots - first : per_mb;
            chunk_acc acc = {.ratio_min = INFINITY, .ratio_max = -INFINITY};
            GV_TRY(run_minibatch(j, j->roots + first, m, poison, st, &acc, out));
            if (epoch == 0 && first == 0) { /* ρ == 1 self-test: before any update of this iteration */
                out->ratio_first_min = acc.ratio_min;
                out->ratio_first_max = acc.ratio_max;
            }
            loss_sum += acc.loss;
            ratio_sum += acc.ratio_sum;
            out->ratio_min = fmin(out->ratio_min, acc.ratio_min);
            out->ratio_max = fmax(out->ratio_max, acc.ratio_max);
            out->clip_above += acc.above;
            out->clip_below += acc.below;
            out->approx_kl += acc.approx_kl;
            out->kl += acc.kl;
            out->units += acc.units;
            minibatches++;
            if (out->stop_skips) break;
        }
        if (out->stop_skips) break;
    }
    if (out->units > 0) {
        const double u = (double)out->units;
        out->ratio_mean = ratio_sum / u;
        out->clip_above /= u;
        out->clip_below /= u;
        out->approx_kl /= u;
        out->kl /= u;
        out->loss = loss_sum / minibatches;
    } else {
        out->ratio_min = out->ratio_max = out->ratio_first_min = out->ratio_first_max = NAN;
        out->ratio_mean = out->loss = NAN;
    }
    return GV_OK;
}
