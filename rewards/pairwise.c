/* Pref-GRPO's win-rate reward (ALGORITHMS.md §8) over any pairwise judge (a plugin with compare).
 *
 * Within each group of G samples every unordered pair (i, j), i < j, is judged once — all pairs of
 * the batch go to the judge in ONE compare call (a = the first samples, b = the second), and with
 * both_orders a second call with a and b swapped: s_ij = (p(i,j) + 1 − p(j,i)) / 2, cancelling
 * position bias. Hard judgements threshold each order's p at 0.5 (a tie is 0.5). A failed judgement
 * (FAILED, non-finite or out of [0, 1], or a failed compare call) counts 0.5 and is counted as
 * imputed; when every compare call of the batch failed the batch fails (GV_ERR_PLUGIN, counted by
 * the failure policy like a failed score call). s_ji = 1 − s_ij and
 * win_i = Σ_j s_ij / (G − 1). The group z-score that follows is advantage.h's job.
 * Staging lives in the plugin instance's grow-only scratch (plugin_internal.h): no allocation per
 * step once the batch size has been seen.
 * Deliberately not here: the z-score, the plugin ABI (plugin.c), the failure policy (engine/train). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grove/rewards.h"
#include "plugin_internal.h"

/* The batch's pair staging, carved from the plugin instance's grow-only scratch block
   (plugin_internal.h): one allocation per larger batch, none per step. */
typedef struct pair_batch {
    int *gsize;              /* (n) pairs each sample is in      */
    double *sum;             /* (n) Σ_j s_ij                     */
    int32_t *first, *second; /* (pairs) sample indices           */
    float *a, *b;            /* (pairs, D) images of first / second */
    const char **pa, **pb;   /* (pairs) prompts                  */
    int32_t *ga, *gb;        /* (pairs) groups                   */
    float *p_ab, *p_ba;      /* (pairs)                          */
    uint8_t *st_ab, *st_ba;  /* (pairs)                          */
} pair_batch;

#define PAIR_ALIGN 16 /* every array starts on this boundary of the (malloc-aligned) block */

/* Lay out q over `base` (NULL: only measure); the block's size in bytes. */
static size_t pair_layout(pair_batch *q, char *base, int n, size_t pairs, size_t D) {
    size_t off = 0;
#define PAIR_ARRAY(field, count)                                                               \
    do {                                                                                       \
        if (base) q->field = (void *)(base + off);                                             \
        off += ((count) * sizeof *q->field + PAIR_ALIGN - 1) / PAIR_ALIGN * PAIR_ALIGN;        \
    } while (0)
    PAIR_ARRAY(gsize, (size_t)n);
    PAIR_ARRAY(sum, (size_t)n);
    PAIR_ARRAY(first, pairs);
    PAIR_ARRAY(second, pairs);
    PAIR_ARRAY(a, pairs * D);
    PAIR_ARRAY(b, pairs * D);
    PAIR_ARRAY(pa, pairs);
    PAIR_ARRAY(pb, pairs);
    PAIR_ARRAY(ga, pairs);
    PAIR_ARRAY(gb, pairs);
    PAIR_ARRAY(p_ab, pairs);
    PAIR_ARRAY(p_ba, pairs);
    PAIR_ARRAY(st_ab, pairs);
    PAIR_ARRAY(st_ba, pairs);
#undef PAIR_ARRAY
    return off;
}

static int32_t group_of(const gv_reward_images *b, int i) { return b->groups ? b->groups[i] : 0; }

/* Judgement of one order: p in [0, 1] or -1 when it failed. */
static double judged(float p, uint8_t st) {
    return st == GV_REWARD_ITEM_OK && isfinite(p) && p >= 0.0f && p <= 1.0f ? (double)p : -1.0;
}

gv_status gv_reward_win_rate(gv_reward *r, gv_ctx *ctx, const gv_reward_images *b,
                             const gv_win_rate_options *o, float *win, uint8_t *status,
                             int64_t *judged_out, int64_t *imputed_out) {
    const int n = b->n;
    const int64_t D = (int64_t)b->channels * b->height * b->width;
    *judged_out = *imputed_out = 0;
    if (!gv_reward_is_pairwise(r))
        return GV_ERROR(GV_ERR_CONFIG, "reward '%s': reward_transform win_rate needs a pairwise "
                        "judge (a plugin with flag PAIRWISE and compare)", r->name);
    /* group sizes and the pair list */
    int64_t pairs = 0;
    for (int i = 0; i < n; ++i)
        for (int j = i + 1; j < n; ++j) pairs += group_of(b, i) == group_of(b, j);
    pair_batch q = {0};
    const size_t bytes = pair_layout(&q, NULL, n, (size_t)pairs, (size_t)D);
    char *block = gv_reward_plugin_scratch(r, bytes > 0 ? bytes : PAIR_ALIGN);
    if (!block) return GV_ERROR(GV_ERR_OOM, "win rate: %d samples, %lld pairs", n, (long long)pairs);
    pair_layout(&q, block, n, (size_t)pairs, (size_t)D);
    int *const gsize = q.gsize;
    double *const sum = q.sum;
    memset(gsize, 0, (size_t)n * sizeof *gsize);
    memset(sum, 0, (size_t)n * sizeof *sum);
    for (int i = 0; i < n; ++i)
        for (int j = i + 1; j < n; ++j)
            if (group_of(b, i) == group_of(b, j)) ++gsize[i], ++gsize[j];
    gv_status s = GV_OK;
    if (s == GV_OK && pairs > 0) {
        int64_t k = 0;
        for (int i = 0; i < n; ++i)
            for (int j = i + 1; j < n; ++j) {
                if (group_of(b, i) != group_of(b, j)) continue;
                q.first[k] = i, q.second[k] = j;
                memcpy(q.a + k * D, b->pixels + (int64_t)i * D, (size_t)D * sizeof(float));
                memcpy(q.b + k * D, b->pixels + (int64_t)j * D, (size_t)D * sizeof(float));
                q.pa[k] = b->prompts ? b->prompts[i] : "";
                q.pb[k] = b->prompts ? b->prompts[j] : "";
                q.ga[k] = q.gb[k] = group_of(b, i);
                ++k;
            }
        const gv_reward_images ia = {.n = (int)pairs, .channels = b->channels,
                                     .height = b->height, .width = b->width, .pixels = q.a,
                                     .prompts = q.pa, .groups = q.ga},
                               ib = {.n = (int)pairs, .channels = b->channels,
                                     .height = b->height, .width = b->width, .pixels = q.b,
                                     .prompts = q.pb, .groups = q.gb};
        /* a failed call: every judgement of that order failed (imputed below), not the run —
           unless EVERY call of the batch failed: then there is no judgement at all, and the batch
           fails (GV_ERR_PLUGIN, the last call's message) so the failure policy counts it instead
           of a batch of 0.5s that carries no signal */
        const int calls = o->both_orders ? 2 : 1;
        int failed_calls = 0;
        char last_err[1024] = "";
        for (int c = 0; s == GV_OK && c < calls; ++c) {
            if (gv_reward_compare(r, ctx, c ? &ib : &ia, c ? &ia : &ib, c ? q.p_ba : q.p_ab,
                                  c ? q.st_ba : q.st_ab) == GV_OK)
                continue;
            if (gv_last_status() != GV_ERR_PLUGIN) {
                s = gv_last_status();
                break;
            }
            snprintf(last_err, sizeof last_err, "%s", gv_last_error());
            gv_clear_error();
            ++failed_calls;
        }
        if (s == GV_OK && failed_calls == calls)
            s = GV_ERROR(GV_ERR_PLUGIN, "win rate: every compare call of the batch failed (%d of "
                         "%d); last: %s", failed_calls, calls, last_err);
        for (int64_t e = 0; s == GV_OK && e < pairs; ++e) {
            /* each order: thresholded when hard; a failed judgement is 0.5, counted as imputed */
            double sij = 0.0;
            const int orders = o->both_orders ? 2 : 1;
            for (int ord = 0; ord < orders; ++ord) {
                double p = ord == 0 ? judged(q.p_ab[e], q.st_ab[e]) : judged(q.p_ba[e], q.st_ba[e]);
                if (p < 0.0) p = 0.5, ++*imputed_out;
                else if (o->hard) p = p > 0.5 ? 1.0 : p < 0.5 ? 0.0 : 0.5;
                sij += ord == 0 ? p : 1.0 - p; /* (b, a) judged: first wins with 1 - p */
            }
            sij /= orders;
            *judged_out += orders;
            sum[q.first[e]] += sij;
            sum[q.second[e]] += 1.0 - sij;
        }
    }
    if (s == GV_OK)
        for (int i = 0; i < n; ++i) { /* ALGORITHMS.md §8: r_i = Σ_j s_ij / (G − 1) */
            status[i] = gsize[i] > 0 ? GV_REWARD_ITEM_OK : GV_REWARD_ITEM_FAILED;
            win[i] = gsize[i] > 0 ? (float)(sum[i] / gsize[i]) : NAN;
        }
    else
        for (int i = 0; i < n; ++i) status[i] = GV_REWARD_ITEM_FAILED, win[i] = NAN;
    return s;
}
