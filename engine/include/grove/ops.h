/* The op table: every kernel grove runs, declared once (GROVE_OP_LIST).
 *
 * The X-macro generates the `gv_ops` struct of function pointers, the op names and the checklist the
 * test harness walks (tests/ops/). Models, samplers and the trainer call kernels only through a
 * `const gv_ops *`; backends (kernels/cpu, kernels/cuda) fill the struct.
 *
 * Conventions (STYLE.md 7):
 *   forward  (ctx, out..., saved..., in..., params..., const dims *)
 *   backward (ctx, d_in..., d_params..., d_out, saved/in..., params..., const dims *)
 * - Every pointer is backend memory. Shapes are given in the comments; letters as STYLE.md 8.
 * - Backward kernels ADD into every gradient buffer (+=). Any gradient output may be NULL: that
 *   gradient is not wanted and is not computed.
 * - Per-sample ops never reduce across the batch dimension N, and a sample's result must not
 *   depend on the other rows of the call (DESIGN.md §3, micro-batches).
 * - Reductions (losses, sumsq) are deterministic: the result does not depend on the thread count.
 * - Scalar outputs (losses, sumsq) are one float in backend memory; the host reads them with an
 *   explicit copy. Scalars that the host already knows (lr, alpha) are passed by value.
 *
 * Adding an op: add it to GROVE_OP_LIST, write its CPU reference kernel, and its harness spec in
 * tests/ops/ (the harness refuses to build without one). */
#ifndef GROVE_OPS_H
#define GROVE_OPS_H

#include <stdint.h>

#include "grove/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gv_ctx gv_ctx;

/* ---- dims structs ---------------------------------------------------------------------------- */

typedef struct gv_conv2d_dims {
    int N, C, H, W;  /* input (N, C, H, W)                     */
    int K;           /* output channels                        */
    int R, S;        /* kernel height, width                   */
    int stride, pad; /* same in both spatial dims              */
    int P, Q;        /* output height, width: gv_conv2d_dims_set */
} gv_conv2d_dims;

/* Fill P and Q from the rest; returns 0 if the geometry is invalid. */
static inline int gv_conv2d_dims_set(gv_conv2d_dims *d) {
    if (d->stride <= 0 || d->pad < 0) return 0;
    int hp = d->H + 2 * d->pad - d->R, wp = d->W + 2 * d->pad - d->S;
    if (hp < 0 || wp < 0) return 0;
    d->P = hp / d->stride + 1;
    d->Q = wp / d->stride + 1;
    return 1;
}

typedef struct gv_linear_dims {
    int N;    /* rows                 */
    int Din;  /* input features       */
    int Dout; /* output features      */
} gv_linear_dims;

typedef struct gv_matmul_dims {
    int B;       /* batch of independent products */
    int M, K, N; /* (M, K) x (K, N) -> (M, N)       */
} gv_matmul_dims;

typedef struct gv_groupnorm_dims {
    int N, C;
    int64_t HW; /* spatial size per channel          */
    int G;      /* groups; C % G need not be 0: group g holds channels [g*C/G, (g+1)*C/G) with
                   integer division of the boundaries, i.e. floor(g*C/G) .. floor((g+1)*C/G)  */
    float eps;
} gv_groupnorm_dims;

typedef struct gv_layernorm_dims {
    int64_t N; /* rows */
    int D;     /* normalized width */
    float eps;
} gv_layernorm_dims;

typedef struct gv_ew_dims {
    int64_t n; /* elements */
} gv_ew_dims;

typedef struct gv_rows_dims {
    int64_t R; /* rows    */
    int D;     /* columns */
} gv_rows_dims;

typedef struct gv_attention_dims {
    int N, T; /* batch, tokens                   */
    int D;    /* model width = H * (D / H)       */
    int H;    /* heads; D % H == 0               */
} gv_attention_dims;

typedef struct gv_embedding_dims {
    int N; /* rows looked up                */
    int L; /* ids per row (bag); 1 for embedding */
    int V; /* vocabulary                    */
    int D; /* width                         */
} gv_embedding_dims;

typedef struct gv_time_embedding_dims {
    int N;       /* samples                                    */
    int D;       /* width, even                                */
    float scale; /* argument multiplier: sinusoidal(scale * t) */
} gv_time_embedding_dims;

typedef struct gv_upsample_dims {
    int N, C, H, W; /* input; output (N, C, H*f, W*f) */
    int f;          /* integer factor */
} gv_upsample_dims;

typedef struct gv_concat_dims {
    int N;
    int Ca, Cb; /* channels of the two parts */
    int64_t HW; /* trailing size per channel */
} gv_concat_dims;

typedef struct gv_channel_dims {
    int N, C;
    int64_t HW;
} gv_channel_dims;

typedef struct gv_xent_dims {
    int64_t R;  /* rows (tokens) */
    int V;      /* classes       */
    float norm; /* loss = sum_r w_r * CE_r / norm */
} gv_xent_dims;

typedef struct gv_adamw_args {
    int64_t n;
    float lr, beta1, beta2, eps, weight_decay;
    float bias_corr1; /* 1 - beta1^t, computed on the host */
    float bias_corr2; /* 1 - beta2^t                       */
} gv_adamw_args;

typedef struct gv_philox_args {
    int64_t n;          /* normals to write                                      */
    uint32_t key[2];    /* (seed, stream)                                        */
    uint32_t ctr_hi[3]; /* counter words 1..3 (see rng.h for the address layout) */
    uint64_t offset;    /* element index of out[0] within this counter address   */
} gv_philox_args;

/* One sampler step (ALGORITHMS.md §2): every Gaussian schedule's mean is linear in x and v,
   mu = cx*x + cv*v, with host-computed scalars (samplers/schedule.c, gv_step_coeffs). */
enum { GV_LOGP_GAUSSIAN = 0, /* mean_d[-(x'-mu)^2/(2 std^2) - log std - log(2 pi)/2] */
       GV_LOGP_CPS = 1 };    /* mean_d[-(x'-mu)^2] (no constants)                    */

typedef struct gv_step_args {
    int N;          /* samples                                      */
    int64_t D;      /* elements per sample                          */
    float cx, cv;   /* mean coefficients: mu = cx*x + cv*v          */
    float std;      /* noise std (> 0 for a stochastic step)        */
    float delta;    /* sigma_{i+1} - sigma_i (< 0): euler_step       */
    int logp_kind;  /* GV_LOGP_*                                    */
} gv_step_args;

/* The clipped GRPO objective (ALGORITHMS.md §3, Loss). Every per-unit array has U entries: the
   trainer fills adv and weight (host-known A_u, omega_u) and passes the recomputed logp. */
typedef struct gv_grpo_args {
    int U;          /* trained units ((sample, step) pairs / kept edges) in this call    */
    float clip_eps; /* epsilon of clip(rho, 1 - eps, 1 + eps)                              */
    float norm;     /* loss divisor (> 0), e.g. the minibatch's unit count                */
    float beta;     /* KL coefficient; used only when kl != NULL                          */
} gv_grpo_args;

/* stats (GV_GRPO_STATS floats) of grpo_objective_forward, each over the U units. */
enum {
    GV_GRPO_STAT_RATIO_MEAN = 0,
    GV_GRPO_STAT_RATIO_MIN,
    GV_GRPO_STAT_RATIO_MAX,
    GV_GRPO_STAT_CLIP_ABOVE,  /* fraction of units with rho > 1 + eps                  */
    GV_GRPO_STAT_CLIP_BELOW,  /* fraction of units with rho < 1 - eps                  */
    GV_GRPO_STAT_APPROX_KL,   /* 1/2 mean_u (logp - logp_old)^2                        */
    GV_GRPO_STAT_KL_MEAN,     /* mean_u kl_u (0 without kl)                            */
    GV_GRPO_STAT_POLICY_LOSS, /* sum_u w_u L_u / norm (the loss without the KL term)   */
    GV_GRPO_STATS
};

/* Per-unit KL (ALGORITHMS.md §3, kl.kind): flow_grpo and gaussian share one formula and differ
   only in the variance the trainer passes (s^2 vs std^2); velocity has none. */
enum { GV_KL_OP_SCALED = 0, GV_KL_OP_VELOCITY = 1 };

typedef struct gv_kl_args {
    int U;      /* units                                                 */
    int64_t D;  /* elements per unit                                     */
    int kind;   /* GV_KL_OP_*                                            */
    float var;  /* variance for every unit when the var array is NULL    */
} gv_kl_args;

/* One step of the masked-diffusion sampler (ALGORITHMS.md §10, samplers/masked.h) over N samples
   of T positions, V classes. A position is PROMPT where commit == -1, else COMPLETION; a completion
   position is still masked while its token == mask_id. The completion positions of a sample, in
   position order, form `blocks` blocks of ceil(m / blocks); only the masked positions of block
   `block` are drawn and compete for commits. */
typedef struct gv_masked_args {
    int N, T, V;
    int32_t mask_id;    /* in [0, V): never sampled                                        */
    int blocks, block;  /* block count (>= 1) and the block this step decodes              */
    int step;           /* global step k: the value written into commit, the RNG step      */
    int last;           /* 1: the block's last step (every masked position commits)        */
    uint32_t key[2];    /* Philox (seed, stream)                                            */
    uint32_t ctr_hi[3]; /* counter words 1..3 of sample 0 (rng.h); sample n adds n to the  */
                        /* slot field (the host checks slot0 + N - 1 fits)                  */
    int stats_stride;   /* floats from one sample's stats to the next (>= 3)               */
} gv_masked_args;

/* stats of masked_select, per sample (3 floats at stats + n * stats_stride). */
enum { GV_MASKED_STAT_COMMITS = 0, /* positions committed this step                       */
       GV_MASKED_STAT_MASKED_FRAC, /* completion fraction masked at the step's start      */
       GV_MASKED_STAT_MEAN_CONF,   /* mean max-probability at tau_s over the drawn ones   */
       GV_MASKED_STATS };

/* knobs of masked_select, per sample (GV_MASKED_KNOBS floats): the same order as the sampler's
   gv_masked_knobs (r, tau_s, tau_r, w); validated by the caller. */
enum { GV_MASKED_KNOBS = 4 };

/* ---- the list -------------------------------------------------------------------------------- */

#define GROVE_OP_LIST(X)                                                                           \
    /* y (N,K,P,Q) = conv(x (N,C,H,W), w (K,C,R,S)) + b (K) [b may be NULL] */                     \
    X(conv2d_forward, (gv_ctx * c, float *y, const float *x, const float *w, const float *b,      \
                       const gv_conv2d_dims *d))                                                   \
    X(conv2d_backward, (gv_ctx * c, float *dx, float *dw, float *db, const float *dy,             \
                        const float *x, const float *w, const gv_conv2d_dims *d))                  \
    /* y (N,Dout) = x (N,Din) . w^T (w: (Dout,Din)) + b (Dout) [b may be NULL] */                 \
    X(linear_forward, (gv_ctx * c, float *y, const float *x, const float *w, const float *b,      \
                       const gv_linear_dims *d))                                                   \
    X(linear_backward, (gv_ctx * c, float *dx, float *dw, float *db, const float *dy,             \
                        const float *x, const float *w, const gv_linear_dims *d))                  \
    /* y (B,M,N) = a (B,M,K) . b (B,K,N) */                                                        \
    X(matmul_forward, (gv_ctx * c, float *y, const float *a, const float *b,                      \
                       const gv_matmul_dims *d))                                                   \
    X(matmul_backward, (gv_ctx * c, float *da, float *db, const float *dy, const float *a,        \
                        const float *b, const gv_matmul_dims *d))                                  \
    /* y (N,C,HW) = groupnorm(x) * gamma (C) + beta (C); saves mean, rstd (N,G) */                 \
    X(groupnorm_forward, (gv_ctx * c, float *y, float *mean, float *rstd, const float *x,         \
                          const float *gamma, const float *beta, const gv_groupnorm_dims *d))      \
    X(groupnorm_backward, (gv_ctx * c, float *dx, float *dgamma, float *dbeta, const float *dy,   \
                           const float *x, const float *mean, const float *rstd,                  \
                           const float *gamma, const gv_groupnorm_dims *d))                        \
    /* y (N,D) = layernorm(x) * gamma (D) + beta (D); saves mean, rstd (N) */                      \
    X(layernorm_forward, (gv_ctx * c, float *y, float *mean, float *rstd, const float *x,         \
                          const float *gamma, const float *beta, const gv_layernorm_dims *d))      \
    X(layernorm_backward, (gv_ctx * c, float *dx, float *dgamma, float *dbeta, const float *dy,   \
                           const float *x, const float *mean, const float *rstd,                  \
                           const float *gamma, const gv_layernorm_dims *d))                        \
    /* y (n) = x * sigmoid(x) */                                                                   \
    X(silu_forward, (gv_ctx * c, float *y, const float *x, const gv_ew_dims *d))                  \
    X(silu_backward, (gv_ctx * c, float *dx, const float *dy, const float *x, const gv_ew_dims *d)) \
    /* y (n) = gelu(x), tanh approximation */                                                      \
    X(gelu_forward, (gv_ctx * c, float *y, const float *x, const gv_ew_dims *d))                  \
    X(gelu_backward, (gv_ctx * c, float *dx, const float *dy, const float *x, const gv_ew_dims *d)) \
    /* y (R,D) = softmax over D of x (R,D); backward uses the saved output y */                   \
    X(softmax_forward, (gv_ctx * c, float *y, const float *x, const gv_rows_dims *d))             \
    X(softmax_backward, (gv_ctx * c, float *dx, const float *dy, const float *y,                  \
                         const gv_rows_dims *d))                                                   \
    X(log_softmax_forward, (gv_ctx * c, float *y, const float *x, const gv_rows_dims *d))         \
    X(log_softmax_backward, (gv_ctx * c, float *dx, const float *dy, const float *y,              \
                             const gv_rows_dims *d))                                               \
    /* multi-head self-attention core: y (N,T,D) = softmax(q k^T / sqrt(D/H)) v per head;        \
       q, k, v (N,T,D), head h uses columns [h*D/H, (h+1)*D/H); probs (N,H,T,T) saved;             \
       key_mask (N,T) uint8, 1 = attend, 0 = masked key, may be NULL. A query whose keys are all   \
       masked gets zero output. */                                                                 \
    X(attention_forward, (gv_ctx * c, float *y, float *probs, const float *q, const float *k,     \
                          const float *v, const uint8_t *key_mask, const gv_attention_dims *d))    \
    X(attention_backward, (gv_ctx * c, float *dq, float *dk, float *dv, const float *dy,          \
                           const float *q, const float *k, const float *v, const float *probs,    \
                           const uint8_t *key_mask, const gv_attention_dims *d))                   \
    /* y (N,D) = table (V,D)[ids (N)]  (L must be 1) */                                            \
    X(embedding_forward, (gv_ctx * c, float *y, const int32_t *ids, const float *table,           \
                          const gv_embedding_dims *d))                                             \
    X(embedding_backward, (gv_ctx * c, float *dtable, const float *dy, const int32_t *ids,        \
                           const gv_embedding_dims *d))                                            \
    /* y (N,D) = mean over the valid ids (>= 0) of ids (N,L) of table rows; -1 pads; no valid id   \
       gives a zero row */                                                                         \
    X(embedding_bag_forward, (gv_ctx * c, float *y, const int32_t *ids, const float *table,       \
                              const gv_embedding_dims *d))                                         \
    X(embedding_bag_backward, (gv_ctx * c, float *dtable, const float *dy, const int32_t *ids,    \
                               const gv_embedding_dims *d))                                        \
    /* y (N,D): y[n,j] = sin(a), y[n,D/2+j] = cos(a), a = scale*t[n]*exp(-ln(10000)*j/(D/2)),     \
       j < D/2; t (N). No backward (t is not differentiated). */                                   \
    X(time_embedding_forward, (gv_ctx * c, float *y, const float *t,                              \
                               const gv_time_embedding_dims *d))                                   \
    /* y (N,C,H*f,W*f) = nearest upsample of x (N,C,H,W) */                                        \
    X(upsample_nearest_forward, (gv_ctx * c, float *y, const float *x,                            \
                                 const gv_upsample_dims *d))                                       \
    X(upsample_nearest_backward, (gv_ctx * c, float *dx, const float *dy,                         \
                                  const gv_upsample_dims *d))                                      \
    /* y (N,Ca+Cb,HW) = concat over channels of a (N,Ca,HW), b (N,Cb,HW); backward = split */      \
    X(concat_forward, (gv_ctx * c, float *y, const float *a, const float *b,                      \
                       const gv_concat_dims *d))                                                   \
    X(concat_backward, (gv_ctx * c, float *da, float *db, const float *dy,                        \
                        const gv_concat_dims *d))                                                  \
    /* y (N,C,HW) = x (N,C,HW) + e (N,C) broadcast over HW (time/prompt embedding into a block) */ \
    X(add_channel_forward, (gv_ctx * c, float *y, const float *x, const float *e,                 \
                            const gv_channel_dims *d))                                             \
    X(add_channel_backward, (gv_ctx * c, float *dx, float *de, const float *dy,                   \
                             const gv_channel_dims *d))                                            \
    /* elementwise, n elements; outputs may alias inputs */                                        \
    X(add, (gv_ctx * c, float *y, const float *a, const float *b, const gv_ew_dims *d))           \
    X(scale, (gv_ctx * c, float *y, const float *x, float alpha, const gv_ew_dims *d))            \
    X(axpby, (gv_ctx * c, float *y, const float *x, float alpha, float beta,                      \
              const gv_ew_dims *d)) /* y = alpha*x + beta*y */                                     \
    /* loss (1) = mean((a - b)^2) over n; backward: da += dloss*2(a-b)/n, db -= the same */       \
    X(mse_forward, (gv_ctx * c, float *loss, const float *a, const float *b, const gv_ew_dims *d)) \
    X(mse_backward, (gv_ctx * c, float *da, float *db, const float *dloss, const float *a,        \
                     const float *b, const gv_ew_dims *d))                                         \
    /* loss (1) = sum_r w_r * (-log softmax(logits_r)[target_r]) / norm; logits (R,V), targets (R) \
       int32, w (R) (0 masks a row); saves lse (R) = logsumexp of each row */                      \
    X(cross_entropy_forward, (gv_ctx * c, float *loss, float *lse, const float *logits,           \
                              const int32_t *targets, const float *w, const gv_xent_dims *d))      \
    X(cross_entropy_backward, (gv_ctx * c, float *dlogits, const float *dloss,                    \
                               const float *logits, const float *lse, const int32_t *targets,     \
                               const float *w, const gv_xent_dims *d))                             \
    /* decoupled AdamW over n elements of p, g, m, v (see gv_adamw_args) */                        \
    X(adamw_step, (gv_ctx * c, float *p, float *m, float *v, const float *g,                      \
                   const gv_adamw_args *a))                                                        \
    /* out (1) = sum of x^2 over n, accumulated in fp64 in fixed blocks */                         \
    X(sumsq, (gv_ctx * c, float *out, const float *x, const gv_ew_dims *d))                       \
    /* out (n) = standard normals at Philox address (key, ctr_hi, offset + i), bitwise equal to    \
       gv_rng_normal_at() on the host */                                                           \
    X(philox_normal_fill, (gv_ctx * c, float *out, const gv_philox_args *a))                      \
    /* sampler step (ALGORITHMS.md §2), x, v, eps, x_next (N,D), logp (N): mu = cx*x + cv*v;       \
       eps != NULL: x_next = mu + std*eps (may alias x); eps == NULL: x_next is the stored sample  \
       (an input) and only logp is written. logp = per-sample mean over D of the log-density     \
       (logp_kind), accumulated in fp64 in element order; logp may be NULL. Both modes give the  \
       same logp bits for the same x_next. Backward: dv += dlogp * d logp / dv through mu only. */ \
    X(gaussian_step_forward, (gv_ctx * c, float *x_next, float *logp, const float *x,             \
                              const float *v, const float *eps, const gv_step_args *a))           \
    X(gaussian_step_backward, (gv_ctx * c, float *dv, const float *dlogp, const float *x,         \
                               const float *v, const float *x_next, const gv_step_args *a))       \
    /* ODE (Euler) step: x_next (N,D) = x + delta*v; x_next may alias x. Forward only. */          \
    X(euler_step, (gv_ctx * c, float *x_next, const float *x, const float *v,                     \
                   const gv_step_args *a))                                                         \
    /* CFG: v (n) = v_null + w*(v_cond - v_null); backward adds (w, 1-w) times dv */               \
    X(cfg_combine, (gv_ctx * c, float *v, const float *v_cond, const float *v_null, float w,      \
                    const gv_ew_dims *d))                                                          \
    X(cfg_combine_backward, (gv_ctx * c, float *dv_cond, float *dv_null, const float *dv,         \
                             float w, const gv_ew_dims *d))                                        \
    /* clipped GRPO objective (ALGORITHMS.md §3, Loss) over U units, see gv_grpo_args:            \
       ratio (U) saved = exp(logp - logp_old); loss (1) = (sum_u w_u L_u + beta sum_u kl_u) / norm,\
       L_u = max(-A rho, -A clip(rho, 1-eps, 1+eps)); stats (GV_GRPO_STATS) as GV_GRPO_STAT_*;   \
       logp, logp_old, adv, weight (U); kl (U) per-unit KL or NULL (no KL term). Reduces over U in \
       fp64, in unit order. Backward: dlogp += dloss w_u (-A rho)/norm where the unclipped term   \
       is active (0 where the clip is), dkl += dloss beta / norm; either may be NULL. */          \
    X(grpo_objective_forward, (gv_ctx * c, float *loss, float *stats, float *ratio,               \
                               const float *logp, const float *logp_old, const float *adv,        \
                               const float *weight, const float *kl, const gv_grpo_args *a))      \
    X(grpo_objective_backward, (gv_ctx * c, float *dlogp, float *dkl, const float *dloss,         \
                                const float *ratio, const float *adv, const float *weight,        \
                                const gv_grpo_args *a))                                            \
    /* per-unit KL to the reference model (ALGORITHMS.md §3, KL), mu_theta, mu_ref (U,D), kl (U): \
       GV_KL_OP_SCALED: kl_u = mean_d (mu_theta - mu_ref)^2 / (2 var_u)  [flow_grpo: var = s^2;   \
       gaussian: var = std^2]; GV_KL_OP_VELOCITY: kl_u = mean_d (v_theta - v_ref)^2. var (U) per   \
       unit, or NULL: a->var for every unit. fp64 sum over D in element order per unit.           \
       Backward: dmu_theta += dkl_u * d kl_u / d mu_theta (the reference is frozen). */           \
    X(kl_forward, (gv_ctx * c, float *kl, const float *mu_theta, const float *mu_ref,             \
                   const float *var, const gv_kl_args *a))                                         \
    X(kl_backward, (gv_ctx * c, float *dmu_theta, const float *dkl, const float *mu_theta,        \
                    const float *mu_ref, const float *var, const gv_kl_args *a))                   \
    /* masked-diffusion sampler step (ALGORITHMS.md §10, see gv_masked_args), tokens, commit,     \
       logp, null_tokens (N,T), logits, logits_null (N,T,V), knobs (N,GV_MASKED_KNOBS). Per masked \
       position p of the block: l = (l_null + w (l_cond - l_null)) / tau_s ([MASK] dropped; no    \
       logits_null: l_cond / tau_s), token by inverse CDF of uniform element 2p, confidence =    \
       log p(token) + tau_r * Gumbel(uniform element 2p+1); the c = max(1, floor(r m' + 0.5))   \
       most confident (all at the last step; c <= m'), ties to the lower position, commit: token, \
       commit = step, logp = log p(token) (logp may be NULL). stats as GV_MASKED_STAT_*.           \
       null_tokens (may be NULL) = the CFG null rows after the commits: mask_id at prompt         \
       positions, else the token. fp64 softmax; per-sample. Forward only. */                      \
    X(masked_select, (gv_ctx * c, int32_t *tokens, int32_t *commit, float *logp, float *stats,    \
                      int32_t *null_tokens, const float *logits, const float *logits_null,        \
                      const float *knobs, const gv_masked_args *a))                                \
    /* the schedule hook's pooled features (samplers/masked.h) of the state before a step:        \
       feat (N,2) = (completion fraction still masked, mean over the block's masked positions of  \
       the max-probability of softmax(l_cond) at tau = 1, [MASK] dropped; 0 when none). */        \
    X(masked_features, (gv_ctx * c, float *feat, const int32_t *tokens, const int32_t *commit,    \
                        const float *logits, const gv_masked_args *a))

/* The struct of function pointers. */
typedef struct gv_ops {
#define GV_OP_FIELD_(name, args) gv_status(*name) args;
    GROVE_OP_LIST(GV_OP_FIELD_)
#undef GV_OP_FIELD_
} gv_ops;

/* Op indices, in list order, and the count. */
enum {
#define GV_OP_ENUM_(name, args) GV_OP_##name,
    GROVE_OP_LIST(GV_OP_ENUM_)
#undef GV_OP_ENUM_
    GV_OP_COUNT
};

/* Op names in list order (gv_op_names[GV_OP_conv2d_forward] == "conv2d_forward"). */
extern const char *const gv_op_names[GV_OP_COUNT];

/* 1 when the table has op i (checklists, gv_backend_validate). */
int gv_ops_has(const gv_ops *ops, int i);

#ifdef __cplusplus
}
#endif
#endif
