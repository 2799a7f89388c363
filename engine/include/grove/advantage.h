/* Terminal-reward advantages with per-prompt statistics (ALGORITHMS.md §3, Reward and Advantage).
 *
 * Input: per sample, one raw value per reward component (n_samples x n_rewards), per-item status,
 * the component weights, and the prompt (group) id of each sample. Output: per-sample advantage and
 * validity, the counts the metrics log, and per-reward raw / normalized statistics.
 *
 * Rules (recomputed from scratch each call; nothing carries over):
 *   mask      a sample is masked when a component with weight != 0 is FAILED or non-finite
 *             (weight-0 components are logged only and never mask). Statistics use the unmasked
 *             ("valid") samples only.
 *   groups    samples sharing a prompt id form a group. A group with fewer than 2 valid samples
 *             yields no training units (n_groups_small). When every group holds exactly one
 *             sample (group size 1) the whole batch is one pooled group: a plain global z-score.
 *   value     sum_then_normalize: r = sum_k w_k r_k, then A = (r - mean_g r)/(std + eps);
 *             normalize_then_sum: A = sum_k w_k (r_k - mean_g r_k)/(std_k + eps), no
 *             re-normalization of the sum.
 *   std       global_std: population std over all valid samples of the batch (Flow-GRPO's
 *             default); else the population std of the sample's group. unbiased_std: the same
 *             with n - 1 (ALGORITHMS.md §6, §8). eps: 1e-4 (Flow-GRPO) or
 *             1e-8 (DanceGRPO's preset), a parameter.
 *   clip      A is clamped to +-adv_clip (adv_clip <= 0: no clamp), after the sum.
 *   zero      a kept group whose advantages are all exactly zero (e.g. identical rewards) is
 *             dropped (n_groups_zero); deviations of a group with identical values are exactly 0.
 * Pure host code: these are tiny vectors the trainer copies to the host anyway. Deliberately not
 * here: dense / per-step / tree credit assignment (their own files) and reward evaluation. */
#ifndef GROVE_ADVANTAGE_H
#define GROVE_ADVANTAGE_H

#include <stdint.h>

#include "grove/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum gv_adv_mode {
    GV_ADV_SUM_THEN_NORMALIZE = 0, /* same order as gv_rewards_mode (run_config.h) */
    GV_ADV_NORMALIZE_THEN_SUM = 1
} gv_adv_mode;

typedef struct gv_advantage_opts {
    int mode;        /* gv_adv_mode                                    */
    int global_std;  /* 1: batch std; 0: group std                     */
    double std_eps;  /* 1e-4 (Flow-GRPO) or 1e-8 (DanceGRPO)           */
    double adv_clip; /* 5; <= 0 disables the clamp                     */
    int unbiased_std; /* 1: std with n - 1 (Pref-GRPO §8, BranchGRPO §6); 0: population */
    int center;       /* gv_adv_center: how a value becomes an advantage (0: the z-score)  */
} gv_advantage_opts;

/* Masked-diffusion GRPO (ALGORITHMS.md §10) centres without a std: d1 uses r - mean_g, DiffuCoder
   the leave-one-out r_i - mean_{j!=i} r_j (std, std_eps and unbiased_std are then unused). */
typedef enum gv_adv_center {
    GV_ADV_CENTER_ZSCORE = 0,
    GV_ADV_CENTER_MEAN = 1,
    GV_ADV_CENTER_LEAVE_ONE_OUT = 2
} gv_adv_center;

/* Flow-GRPO's defaults: sum_then_normalize, global std, eps 1e-4, clip 5. */
gv_advantage_opts gv_advantage_opts_default(void);

typedef struct gv_advantage_input {
    int n_samples, n_rewards;
    const float *rewards;   /* (n_samples, n_rewards) raw component values            */
    const uint8_t *status;  /* (n_samples, n_rewards) 0 ok, 1 FAILED; NULL: all ok     */
    const double *weights;  /* (n_rewards)                                             */
    const int32_t *prompt;  /* (n_samples) group id (the prompt slot)                  */
} gv_advantage_input;

typedef struct gv_reward_moments {
    double raw_mean, raw_std;   /* of r_k over valid samples (population std)            */
    double norm_mean, norm_std; /* of the normalized (r_k - mean_g)/(std + eps), valid
                                   samples of kept groups                               */
} gv_reward_moments;

typedef struct gv_advantage_result {
    int n_valid;         /* samples that yield training units                           */
    int n_masked;        /* samples masked (FAILED / non-finite weighted component)     */
    int n_groups;        /* distinct prompt ids (1 in the pooled group-size-1 case)     */
    int n_groups_small;  /* groups dropped for < 2 valid samples                        */
    int n_groups_zero;   /* groups dropped because every advantage is zero              */
    int n_clipped;       /* valid samples whose advantage was clamped                   */
    double adv_mean, adv_std, adv_min, adv_max; /* over valid samples (0 when none)     */
    double reward_mean, reward_std; /* of the weighted sum over unmasked samples        */
} gv_advantage_result;

/* advantage (n_samples) and valid (n_samples, 1 = trains) are caller buffers; invalid samples get
   advantage 0. per_reward (n_rewards) may be NULL. GV_ERR_INVALID for bad sizes or options. */
gv_status gv_advantage_compute(const gv_advantage_input *in, const gv_advantage_opts *opts,
                               float *advantage, uint8_t *valid, gv_reward_moments *per_reward,
                               gv_advantage_result *res);

#ifdef __cplusplus
}
#endif
#endif
