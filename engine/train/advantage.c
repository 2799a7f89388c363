/* Terminal-reward advantages with per-prompt statistics (see advantage.h; ALGORITHMS.md §3,
 * Reward and Advantage). Host code over tiny vectors: group statistics are found by scanning the
 * batch for the sample's prompt id (O(n^2 k), no allocation), in a fixed order, in fp64. */
#include "grove/advantage.h"

#include <math.h>
#include <stddef.h>

#define GV_COMBINED (-1) /* component index of the weighted sum */

gv_advantage_opts gv_advantage_opts_default(void) {
    return (gv_advantage_opts){.mode = GV_ADV_SUM_THEN_NORMALIZE, .global_std = 1,
                               .std_eps = 1e-4, .adv_clip = 5.0};
}

static int component_ok(const gv_advantage_input *in, int i, int k) {
    size_t e = (size_t)i * (size_t)in->n_rewards + (size_t)k;
    return (!in->status || in->status[e] == 0) && isfinite(in->rewards[e]);
}

/* ALGORITHMS.md §3, Reward: masked when any weighted component is FAILED or non-finite. */
static int sample_masked(const gv_advantage_input *in, int i) {
    for (int k = 0; k < in->n_rewards; ++k)
        if (in->weights[k] != 0.0 && !component_ok(in, i, k)) return 1;
    return 0;
}

/* r_k of sample i, or the weighted sum r = sum_k w_k r_k (k == GV_COMBINED). */
static double value_of(const gv_advantage_input *in, int i, int k) {
    const float *r = in->rewards + (size_t)i * (size_t)in->n_rewards;
    if (k != GV_COMBINED) return (double)r[k];
    double s = 0.0;
    for (int c = 0; c < in->n_rewards; ++c)
        if (in->weights[c] != 0.0) s += in->weights[c] * (double)r[c];
    return s;
}

/* Sample j counts in the statistics of component k: unmasked, and k itself usable. */
static int counts_for(const gv_advantage_input *in, int j, int k) {
    return !sample_masked(in, j) && (k == GV_COMBINED || component_ok(in, j, k));
}

typedef struct moments {
    double mean, sd;
    int n, identical; /* identical: every counted value of the group is equal */
} moments;

/* Population mean / std of component k over the counted samples of `i`'s group (pooled: the
   whole batch), or over the whole batch (all == 1). */
static moments moments_of(const gv_advantage_input *in, int i, int k, int pooled, int all) {
    moments m = {0.0, 0.0, 0, 1};
    double sum = 0.0, first = 0.0;
    for (int j = 0; j < in->n_samples; ++j) {
        if (!(all || pooled || in->prompt[j] == in->prompt[i]) || !counts_for(in, j, k)) continue;
        double v = value_of(in, j, k);
        if (m.n == 0) first = v;
        if (v != first) m.identical = 0;
        sum += v;
        m.n++;
    }
    if (m.n == 0) return m;
    m.mean = sum / m.n;
    double ss = 0.0;
    for (int j = 0; j < in->n_samples; ++j) {
        if (!(all || pooled || in->prompt[j] == in->prompt[i]) || !counts_for(in, j, k)) continue;
        double d = value_of(in, j, k) - m.mean;
        ss += d * d;
    }
    m.sd = sqrt(ss / m.n);
    return m;
}

/* (r_k(i) - mean_g) / (std + eps) with the opts' std rule; exactly 0 when the group's values are
   identical (ALGORITHMS.md §3, Advantage). */
static double normalized(const gv_advantage_input *in, const gv_advantage_opts *o, int i, int k,
                         int pooled) {
    moments g = moments_of(in, i, k, pooled, 0);
    if (g.identical) return 0.0;
    /* ALGORITHMS.md §10: d1 centres only; DiffuCoder's leave-one-out r_i - mean_{j!=i} r_j =
       n (r_i - mean) / (n - 1) */
    if (o->center == GV_ADV_CENTER_MEAN) return value_of(in, i, k) - g.mean;
    if (o->center == GV_ADV_CENTER_LEAVE_ONE_OUT)
        return g.n > 1 ? (value_of(in, i, k) - g.mean) * g.n / (g.n - 1) : 0.0;
    moments sm = o->global_std ? moments_of(in, i, k, pooled, 1) : g;
    double sd = sm.sd;
    if (o->unbiased_std && sm.n > 1) sd *= sqrt((double)sm.n / (sm.n - 1)); /* §6, §8 */
    return (value_of(in, i, k) - g.mean) / (sd + o->std_eps);
}

static int first_of_group(const gv_advantage_input *in, int i, int pooled) {
    if (pooled) return i == 0;
    for (int j = 0; j < i; ++j)
        if (in->prompt[j] == in->prompt[i]) return 0;
    return 1;
}

static int same_group(const gv_advantage_input *in, int i, int j, int pooled) {
    return pooled || in->prompt[i] == in->prompt[j];
}

static void mean_std(double sum, double sumsq, int n, double *mean, double *sd) {
    *mean = n ? sum / n : 0.0;
    double var = n ? sumsq / n - *mean * *mean : 0.0;
    *sd = var > 0.0 ? sqrt(var) : 0.0;
}

gv_status gv_advantage_compute(const gv_advantage_input *in, const gv_advantage_opts *o,
                               float *advantage, uint8_t *valid, gv_reward_moments *per_reward,
                               gv_advantage_result *res) {
    if (in->n_samples <= 0 || in->n_rewards <= 0 || !in->rewards || !in->weights || !in->prompt)
        return GV_ERROR(GV_ERR_INVALID, "advantage: %d samples x %d rewards (and rewards, "
                        "weights, prompt ids) required", in->n_samples, in->n_rewards);
    if (o->mode != GV_ADV_SUM_THEN_NORMALIZE && o->mode != GV_ADV_NORMALIZE_THEN_SUM)
        return GV_ERROR(GV_ERR_INVALID, "advantage: unknown rewards mode %d", o->mode);
    if (o->center < GV_ADV_CENTER_ZSCORE || o->center > GV_ADV_CENTER_LEAVE_ONE_OUT)
        return GV_ERROR(GV_ERR_INVALID, "advantage: center %d", o->center);
    if (!(o->std_eps >= 0.0) || !isfinite(o->std_eps))
        return GV_ERROR(GV_ERR_INVALID, "advantage: std eps %g must be >= 0", o->std_eps);
    for (int k = 0; k < in->n_rewards; ++k)
        if (!isfinite(in->weights[k]))
            return GV_ERROR(GV_ERR_INVALID, "advantage: weight of reward %d is not finite", k);
    const int n = in->n_samples;
    *res = (gv_advantage_result){0};

    /* Group size 1 everywhere: one pooled group, a plain global z-score. */
    int pooled = 1;
    for (int i = 0; i < n && pooled; ++i) pooled = first_of_group(in, i, 0);

    /* Masking, and groups with fewer than 2 valid samples. */
    for (int i = 0; i < n; ++i) {
        int masked = sample_masked(in, i);
        res->n_masked += masked;
        int group_valid = 0;
        for (int j = 0; j < n; ++j) group_valid += same_group(in, i, j, pooled) && !sample_masked(in, j);
        valid[i] = (uint8_t)(!masked && group_valid >= 2);
        if (first_of_group(in, i, pooled)) {
            res->n_groups++;
            res->n_groups_small += group_valid < 2;
        }
    }

    /* ALGORITHMS.md §3, Advantage: the value, then the clamp. */
    for (int i = 0; i < n; ++i) {
        double A = 0.0;
        if (valid[i]) {
            if (o->mode == GV_ADV_SUM_THEN_NORMALIZE) {
                A = normalized(in, o, i, GV_COMBINED, pooled);
            } else {
                for (int k = 0; k < in->n_rewards; ++k)
                    if (in->weights[k] != 0.0) A += in->weights[k] * normalized(in, o, i, k, pooled);
            }
            if (o->adv_clip > 0.0 && fabs(A) > o->adv_clip) {
                A = A > 0.0 ? o->adv_clip : -o->adv_clip;
                res->n_clipped++;
            }
        }
        advantage[i] = (float)A;
    }

    /* Groups whose advantages are all zero are dropped (counted once per group, at its first
       member, valid or not). */
    for (int i = 0; i < n; ++i) {
        if (!first_of_group(in, i, pooled)) continue;
        int kept = 0, all_zero = 1;
        for (int j = 0; j < n; ++j) {
            if (!valid[j] || !same_group(in, i, j, pooled)) continue;
            kept = 1;
            if (advantage[j] != 0.0f) all_zero = 0;
        }
        if (!kept || !all_zero) continue;
        res->n_groups_zero++;
        for (int j = 0; j < n; ++j)
            if (same_group(in, i, j, pooled)) valid[j] = 0;
    }

    /* Metrics. */
    double s = 0, ss = 0, rs = 0, rss = 0;
    int nr = 0;
    res->adv_min = res->adv_max = 0.0;
    for (int i = 0; i < n; ++i) {
        if (!valid[i]) advantage[i] = 0.0f;
        if (!sample_masked(in, i)) {
            double r = value_of(in, i, GV_COMBINED);
            rs += r, rss += r * r, nr++;
        }
        if (!valid[i]) continue;
        double a = advantage[i];
        if (res->n_valid == 0 || a < res->adv_min) res->adv_min = a;
        if (res->n_valid == 0 || a > res->adv_max) res->adv_max = a;
        s += a, ss += a * a;
        res->n_valid++;
    }
    mean_std(s, ss, res->n_valid, &res->adv_mean, &res->adv_std);
    mean_std(rs, rss, nr, &res->reward_mean, &res->reward_std);
    if (per_reward) {
        for (int k = 0; k < in->n_rewards; ++k) {
            double a = 0, aa = 0, z = 0, zz = 0;
            int na = 0, nz = 0;
            for (int i = 0; i < n; ++i) {
                if (counts_for(in, i, k)) {
                    double v = value_of(in, i, k);
                    a += v, aa += v * v, na++;
                }
                if (valid[i] && component_ok(in, i, k)) {
                    double v = normalized(in, o, i, k, pooled);
                    z += v, zz += v * v, nz++;
                }
            }
            gv_reward_moments *m = &per_reward[k];
            mean_std(a, aa, na, &m->raw_mean, &m->raw_std);
            mean_std(z, zz, nz, &m->norm_mean, &m->norm_std);
        }
    }
    return GV_OK;
}
