/* Scoring one batch with one reward under the trainers' failure policy (ALGORITHMS.md §3: a failed
 * reward is masked, never a silent zero; DESIGN.md §7 reward_failures): a plugin whose score call
 * fails as a whole (GV_ERR_PLUGIN) has the batch masked (every status FAILED), counted in
 * r->failed_batches and its message kept in the batch's outcome; the streak of failed batches per
 * reward stops the run at reward_failures.max_consecutive. Shared by the image trainer (rollout.c)
 * and the masked-diffusion trainer (mdm_train.c), which keep one outcome per (shard, reward) and
 * replay the streak in shard order on every rank (dist.h), so whether and where a run stops does
 * not depend on the rank count.
 * Deliberately not here: the rewards themselves (rewards.h), combining them (advantage.h). */
#ifndef GROVE_REWARD_OUTCOME_H
#define GROVE_REWARD_OUTCOME_H

#include <stdint.h>

#include "grove/rewards.h"

#ifdef __cplusplus
extern "C" {
#endif

#define GV_REWARD_OUTCOME_LEN 1024 /* = gv_last_error's buffer (status.c): a message is kept whole */
typedef struct gv_reward_outcome {
    int32_t outcome; /* 0 not scored (empty shard), 1 scored, 2 the plugin batch failed (masked) */
    int32_t n;       /* samples in the batch                                                    */
    char message[GV_REWARD_OUTCOME_LEN]; /* the plugin's error when it failed                   */
} gv_reward_outcome;

/* scores (b->n) and status (b->n) of batch b under r: win != NULL and r pairwise → Pref-GRPO win
   rates (gv_reward_win_rate, its judgement counts added to *judged / *imputed), else
   gv_reward_score. A plugin's GV_ERR_PLUGIN is not an error: the batch is masked (outcome 2);
   any other failure is returned. */
gv_status gv_reward_score_outcome(gv_reward *r, gv_ctx *ctx, const gv_reward_images *b,
                                  const gv_win_rate_options *win, float *scores, uint8_t *status,
                                  int64_t *judged, int64_t *imputed, gv_reward_outcome *o);

/* One batch's outcome into r's streak of failed batches: GV_ERR_PLUGIN naming the reward and the
   last message at max_consecutive failed batches in a row (max_consecutive <= 0 counts as 1), else
   for a masked batch a note on stderr (unless `quiet`: the ranks other than 0, replaying the same
   outcomes). Outcome 0 leaves the streak as it is, 1 resets it. */
gv_status gv_reward_outcome_streak(gv_reward *r, int max_consecutive, const gv_reward_outcome *o,
                                   int quiet);

#ifdef __cplusplus
}
#endif
#endif
