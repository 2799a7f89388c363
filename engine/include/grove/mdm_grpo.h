/* GRPO for masked-diffusion language models (ALGORITHMS.md §10, "Policy log-probs for the ratio"):
 * the per-token policy log-prob estimators, their stored views, token aggregation, and the clipped
 * objective + k3 KL on top of the shared grpo_objective ops (ALGORITHMS.md §3, Loss).
 *
 * Estimators (completion tokens only; ℓ^v_p = log softmax_{v ≠ [MASK]}(logits of view v at p)[token_p],
 * the sampler's own distribution at τ_s = 1):
 *   diffu_grpo    (Ref: d1) 1 view: every completion position masked, each prompt position masked
 *                 with probability prompt_mask (0.15); ℓ̂_p = ℓ⁰_p.
 *   coupled       (Ref: DiffuCoder) t ~ U(t_lo, t_hi) per group, u ~ U(0,1)^T per sequence; views V0
 *                 (all completion masked), V1 (completion with u < t masked), V2 (u ≥ t masked);
 *                 ℓ̂_p = ½ (ℓ⁰_p + (u_p < t ? ℓ¹_p / t : ℓ²_p / (1 − t))).
 *   coupled_pair  V1 and V2 only: ℓ̂_p = ½ (u_p < t ? ℓ¹_p / t : ℓ²_p / (1 − t)).
 *   single_mask   V1 only: ℓ̂_p = (u_p < t ? ℓ¹_p / t : 0) (the variance baseline).
 *   trajectory    (Ref: TraceRL; grove's definition) one view per sampler step k = 0..K−1, built
 *                 from the rollout's record (samplers/masked.h: commit_step per position): view k
 *                 is the canvas at the START of step k — prompt + every completion position with
 *                 commit_step < k, the rest [MASK] — and ℓ̂_p = ℓ^{k_p}_p with k_p = commit_step[p]:
 *                 each token scored in the state the sampler committed it from. No randomness (every
 *                 inner epoch has the same views). It is the sampler's log p at τ_s = 1 (the default
 *                 schedule); under another τ_s (Co-GRPO) it is not, so the trainer refuses that pair.
 * A draw is stored as the view inputs (ids) and the coefficient of every (view, position) in ℓ̂,
 * so logp_old, the reference and every training forward of an inner epoch read the SAME masks.
 * Randomness: Philox (seed, stream) at (iteration, node = draw, slot = slot0 + group / sample):
 * purpose TIMESTEP element 0 (t, per group), purpose MASK_UNIFORM element p (u_p, per sequence).
 *
 * Aggregation (Ref: Balanced Aggregation) gives each completion token a weight; the weights of a
 * minibatch sum to 1 over its valid sequences:
 *   sequence  1 / (n_seq · m_i)            token     1 / Σ_i m_i
 *   balanced  (n_+ / n_seq) / tokens_+ for sequences with A ≥ 0, (n_− / n_seq) / tokens_− for A < 0.
 * Deliberately not here: rollouts, rewards, advantages (grove/advantage.h), the run loop
 * (engine/train/mdm_grpo_loop.c) and the schedule policy of Co-GRPO. */
#ifndef GROVE_MDM_GRPO_H
#define GROVE_MDM_GRPO_H

#include <stdint.h>

#include "grove/arena.h"
#include "grove/backend.h"
#include "grove/image_model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum gv_mdm_estimator {
    GV_MDM_EST_DIFFU_GRPO = 0,
    GV_MDM_EST_COUPLED,
    GV_MDM_EST_COUPLED_PAIR,
    GV_MDM_EST_SINGLE_MASK,
    GV_MDM_EST_TRAJECTORY,
    GV_MDM_EST_COUNT
} gv_mdm_estimator;
extern const char *const gv_mdm_estimator_names[GV_MDM_EST_COUNT + 1]; /* NULL-terminated */

typedef enum gv_mdm_aggregation {
    GV_MDM_AGG_SEQUENCE = 0,
    GV_MDM_AGG_TOKEN,
    GV_MDM_AGG_BALANCED,
    GV_MDM_AGG_COUNT
} gv_mdm_aggregation;
extern const char *const gv_mdm_aggregation_names[GV_MDM_AGG_COUNT + 1];

/* Forward views per sequence: 1, 3, 2, 1, and `steps` (the sampler's step count) for trajectory. */
int gv_mdm_estimator_views(int estimator, int steps);
#define GV_MDM_MAX_VIEWS 256 /* > the largest sampler step count a config allows (255) */

typedef struct gv_mdm_view_args {
    int N, T;
    int32_t mask_id;
    int estimator;         /* gv_mdm_estimator                              */
    float prompt_mask;     /* diffu_grpo: 0.15                              */
    float t_lo, t_hi;      /* coupled*: t ~ U(t_lo, t_hi), 0 < t_lo <= t_hi < 1 */
    uint32_t seed, stream; /* Philox key                                    */
    uint32_t iteration;    /* address iteration                             */
    uint32_t draw;         /* address node: the inner epoch                 */
    uint32_t slot0;        /* slot of sample 0 / group 0                    */
    int steps;             /* trajectory: the rollout's sampler steps K     */
    const int32_t *commit_step; /* trajectory: (N, T) the sampler record's commit step per position
                                   (-1 or anything for prompt positions; [0, K) for completion) */
    int order;             /* trajectory with the commit order (gv_mdm_order): view k scores every
                              completion position still masked at step k, not only its commits */
} gv_mdm_view_args;

/* Draw the views of N sequences. tokens (N, T) the finished canvases; completion (N, T) 1 = a
   completion position; group (N) group ids (t is shared by a group; may be NULL: one group per
   sample). Outputs: ids (N, views, T), coef (N, views, T), t (N) (NAN for diffu_grpo and trajectory).
   trajectory: GV_ERR_INVALID when a completion position's commit step is outside [0, steps). */
gv_status gv_mdm_views_draw(const gv_mdm_view_args *a, const int32_t *tokens, const uint8_t *completion,
                            const int32_t *group, int32_t *ids, float *coef, float *t);

/* The trajectory policy's commit order (`algorithm.order_logp`, ALGORITHMS.md §10 as amended in
 * bench/mdm/README.md): at sampler step k every block position q still masked draws a token x_q^k
 * (ℓ_kq = its log-prob at τ_s 1), and the step commits the c_k with the highest ℓ_kq + τ_k·Gumbel —
 * a Plackett–Luce draw without replacement with scores s_q = ℓ_kq / τ_k. The rollout's probability
 * is therefore Π_k [Π_q p(x_q^k) · Π_i exp(s_σi) / Σ_{j not yet chosen} exp(s_j)] (σ the commit
 * order), and scoring only the committed tokens (plain `trajectory`) leaves out the discarded draws
 * and the choice, both of which depend on θ. With an order, view k scores every candidate's draw
 * (coef 1 where the views say so) and adds the choice's factors: factor i goes to unit σ_i. A step
 * that commits all its candidates (or has τ_k = 0) has no choice to score. Rows n as the caller's. */
typedef struct gv_mdm_order {
    const int32_t *drawn;       /* (N, views, T) x_q^k (the sampler record's `drawn`)             */
    const int32_t *commit_rank; /* (N, T) σ: place in the step's order (record `commit_rank`)     */
    const int32_t *commit_step; /* (N, T) the step of each commit (record `commit_step`)          */
    const float *tau_r;         /* (N, views) τ_k (record `tau_r`)                                */
} gv_mdm_order;

/* ℓ̂ (N, T) = Σ_v coef[n,v,p] · ℓ^v_p from logits (N, views, T, V) [host]; fp64 inside. With an
   order (else NULL): ℓ^v_p scores drawn[n,v,p] except at p's commit view (tokens[n,p]), plus the
   choice factors above. */
void gv_mdm_estimate(int N, int views, int T, int V, int32_t mask_id, const float *logits,
                     const int32_t *tokens, const float *coef, const gv_mdm_order *order, float *ell);
/* dlogits (N, views, T, V) = d(Σ_p dell[n,p] ℓ̂[n,p]) / dlogits, overwritten. */
void gv_mdm_estimate_backward(int N, int views, int T, int V, int32_t mask_id, const float *logits,
                              const int32_t *tokens, const float *coef, const gv_mdm_order *order,
                              const float *dell, float *dlogits);

/* Per-token advantages of credit cell (mdm_train.h) for N samples in consecutive groups of G:
   A_np = c_np − mean over the group's valid members of c_·p, c_np = [tokens_np == solution_np], on
   completion cells of valid samples; 0 elsewhere (an invalid sample, a given, a group where the
   valid members agree at p). */
void gv_mdm_cell_advantages(int N, int T, int G, const int32_t *tokens, const int32_t *solution,
                            const uint8_t *completion, const uint8_t *valid, float *adv);

/* Token weights w (N, T) for aggregation `agg` over the sequences with valid[n] (NULL: all);
   adv (N) decides the balanced split. Zero off completion and for invalid sequences. */
gv_status gv_mdm_token_weights(int agg, int N, int T, const uint8_t *completion, const float *adv,
                               const uint8_t *valid, float *w);

/* The model's log-prob machinery for up to max_seq sequences of `views` views each: one arena
   sized by a measure pass (forward + backward), device ids / logits / dlogits, host mirrors, and
   the per-unit buffers of the clipped objective. */
typedef struct gv_mdm_policy {
    const gv_image_model *model; /* kind GV_MODEL_MDT, borrowed */
    gv_ctx *ctx;
    int max_seq, views, T, V;
    int32_t mask_id;
    gv_arena arena;
    size_t mark;
    gv_mdt_saved saved;
    int32_t *ids;          /* backend (max_seq·views, T)          */
    float *logits, *dlogits; /* backend (max_seq·views, T, V)     */
    float *hlogits, *hdlogits; /* host mirrors                    */
    /* objective units (backend, max_seq·T each) */
    float *u_logp, *u_old, *u_adv, *u_w, *u_kl, *u_ratio, *u_dlogp, *u_dkl, *u_scalars;
    float *h_units;        /* host (6·max_seq·T)                   */
    int32_t *last_tokens;  /* host (max_seq, T) inputs of the last forward */
    const float *last_coef;
    gv_mdm_order last_order; /* its order (drawn NULL: none)       */
    int last_n;
} gv_mdm_policy;

gv_status gv_mdm_policy_init(gv_mdm_policy *p, const gv_image_model *model, gv_ctx *ctx, int max_seq,
                             int views, int32_t mask_id);
void gv_mdm_policy_free(gv_mdm_policy *p);
/* ℓ̂ (n, T) [host] of n <= max_seq sequences under weights theta: views ids / coef as drawn; order
   NULL or the commit order of these n rows (kept, with coef, until the backward). */
gv_status gv_mdm_policy_logp(gv_mdm_policy *p, const float *theta, int n, const int32_t *ids,
                             const int32_t *tokens, const float *coef, const gv_mdm_order *order,
                             float *ell);
/* dtheta += d(Σ dell·ℓ̂)/dθ for the inputs of the LAST gv_mdm_policy_logp (its activations). */
gv_status gv_mdm_policy_backward(gv_mdm_policy *p, const float *theta, float *dtheta, const float *dell);

typedef struct gv_mdm_loss_args {
    float clip_eps; /* ε of clip(ρ, 1 − ε, 1 + ε)        */
    float beta;     /* k3 KL coefficient (ref may be NULL when 0) */
    const float *token_adv; /* (n, T) per-token advantages replacing adv (credit cell); NULL: adv */
} gv_mdm_loss_args;

/* The clipped objective over the completion tokens of n sequences (units = tokens with w > 0, in
   order): ρ = exp(ℓ̂ − ℓ̂_old), L = Σ_u w_u max(−A ρ, −A clip(ρ)) + β Σ_u w_u k3_u,
   k3 = exp(ℓ̂_ref − ℓ̂) − (ℓ̂_ref − ℓ̂) − 1 (Ref: DiffuCoder, d1). Host arrays (n, T) ell, old, ref
   (NULL: no KL), w; adv (n). Outputs: dell (n, T) = dL/dℓ̂, *loss, stats (GV_GRPO_STATS) from the
   grpo_objective op, *units. */
gv_status gv_mdm_grpo_loss(gv_mdm_policy *p, int n, const float *ell, const float *old,
                           const float *ref, const float *adv, const float *w,
                           const gv_mdm_loss_args *a, float *dell, float *loss, float *stats,
                           int *units);

#ifdef __cplusplus
}
#endif
#endif
