/* Scoring a batch under the failure policy and the reward_failures streak (grove/reward_outcome.h),
 * for both trainers. Not here: which batches a trainer scores, or the gathers across ranks. */
#include <stdio.h>

#include "grove/reward_outcome.h"

gv_status gv_reward_score_outcome(gv_reward *r, gv_ctx *ctx, const gv_reward_images *b,
                                  const gv_win_rate_options *win, float *scores, uint8_t *status,
                                  int64_t *judged, int64_t *imputed, gv_reward_outcome *o) {
    gv_status s;
    if (win && gv_reward_is_pairwise(r)) {
        int64_t jd = 0, im = 0;
        s = gv_reward_win_rate(r, ctx, b, win, scores, status, &jd, &im);
        if (judged) *judged += jd;
        if (imputed) *imputed += im;
    } else {
        s = gv_reward_score(r, ctx, b, scores, status);
    }
    o->n = b->n;
    o->outcome = 1;
    o->message[0] = '\0';
    if (s == GV_OK || !r->plugin || s != GV_ERR_PLUGIN) return s;
    for (int i = 0; i < b->n; ++i) status[i] = GV_REWARD_ITEM_FAILED;
    r->failed_batches++;
    o->outcome = 2;
    snprintf(o->message, sizeof o->message, "%s", gv_last_error());
    gv_clear_error();
    return GV_OK;
}

gv_status gv_reward_outcome_streak(gv_reward *r, int max_consecutive, const gv_reward_outcome *o,
                                   int quiet) {
    if (o->outcome == 0) return GV_OK;
    if (o->outcome == 1) {
        r->failures_in_a_row = 0;
        return GV_OK;
    }
    const int limit = max_consecutive > 0 ? max_consecutive : 1;
    if (++r->failures_in_a_row >= limit)
        return GV_ERROR(GV_ERR_PLUGIN, "%d consecutive failed batches of reward '%s' "
                        "(reward_failures.max_consecutive %d); last: %s", r->failures_in_a_row,
                        r->name, max_consecutive, o->message);
    if (!quiet)
        fprintf(stderr, "grove: %s (batch of %d masked; %d in a row)\n", o->message, o->n,
                r->failures_in_a_row);
    return GV_OK;
}
