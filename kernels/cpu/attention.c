/* Reference multi-head self-attention core (no projections): forward and backward.
 *
 * q, k, v, y (N, T, D); head h uses columns [h*Dh, (h+1)*Dh), Dh = D/H; probs (N, H, T, T) saved.
 * Forward, per sample n, head h, query i (Vaswani et al. 2017, eq. 1):
 *     s_ij = (q_i . k_j) / sqrt(Dh)          for keys j with key_mask[n,j] != 0 (or no mask)
 *     P_ij = exp(s_ij - max_j s) / sum_j exp(s_ij - max_j s),   P_ij = 0 for masked keys
 *     y_i  = sum_j P_ij v_j
 * A query whose keys are all masked gets P_i. = 0 and y_i = 0.
 * Backward through the saved P, adding into dq, dk, dv (any may be NULL):
 *     dP_ij = dy_i . v_j,   dS_ij = P_ij (dP_ij - sum_k P_ik dP_ik)
 *     dq_i += sum_j dS_ij k_j / sqrt(Dh),   dk_j += sum_i dS_ij q_i / sqrt(Dh)
 *     dv_j += sum_i P_ij dy_i
 * Masked keys have P = 0, hence dS = 0: they receive no gradient. Work is parallel over (n, h);
 * each (n, h) owns disjoint columns of every output, so results do not depend on the thread count.
 * dP_ij is computed twice per query (once for the row sum, once for dS) rather than stored, so the
 * kernel needs no scratch. Dot products accumulate in fp64.
 * Fast path (ctx->use_fast, T·Dh <= FAST_MAX_ELEMS): the same math in fp32 with each (n, h)'s K and V
 * copied into contiguous (and transposed) local tiles so the inner loops are unit-stride `omp simd`
 * loops; exp in fp32. It is tested against this reference by the op harness (parity, 1e-4).
 * Deliberately not here: q/k/v/output projections (linear), causal masks, dropout. */
#include <math.h>

#include "cpu_backend.h"

static gv_status check_attention(const char *op, const gv_attention_dims *d) {
    if (d->N <= 0) return GV_ERROR(GV_ERR_INVALID, "%s: N = %d must be positive", op, d->N);
    if (d->T <= 0) return GV_ERROR(GV_ERR_INVALID, "%s: T = %d must be positive", op, d->T);
    if (d->D <= 0) return GV_ERROR(GV_ERR_INVALID, "%s: D = %d must be positive", op, d->D);
    if (d->H <= 0 || d->D % d->H != 0)
        return GV_ERROR(GV_ERR_INVALID, "%s: H = %d must be positive and divide D = %d", op, d->H,
                        d->D);
    return GV_OK;
}

/* fp64 dot product of two head slices of width Dh. */
static inline double head_dot(const float *a, const float *b, int Dh) {
    double s = 0.0;
    for (int e = 0; e < Dh; ++e) s += (double)a[e] * b[e];
    return s;
}

/* ---- fast path -------------------------------------------------------------------------------- */

#define FAST_MAX_ELEMS 8192 /* T * Dh of the local tiles (6 tiles of 32 KB per thread at most) */

static void attention_forward_fast(gv_ctx *c, float *y, float *probs, const float *q, const float *k,
                                   const float *v, const uint8_t *key_mask, const gv_attention_dims *d) {
    const int T = d->T, D = d->D, H = d->H, Dh = D / H;
    const float scale = (float)(1.0 / sqrt((double)Dh));
    const int64_t NH = (int64_t)d->N * H;
#pragma omp parallel for num_threads(c->threads) schedule(static)
    for (int64_t nh = 0; nh < NH; ++nh) {
        const int64_t n = nh / H, col = (int64_t)(nh % H) * Dh;
        const uint8_t *mask = key_mask ? key_mask + n * T : NULL;
        float kt[FAST_MAX_ELEMS], vh[FAST_MAX_ELEMS], acc[512];
        for (int j = 0; j < T; ++j)
            for (int e = 0; e < Dh; ++e) {
                kt[(int64_t)e * T + j] = k[(n * T + j) * D + col + e]; /* K^T (Dh, T) */
                vh[(int64_t)j * Dh + e] = v[(n * T + j) * D + col + e]; /* V (T, Dh)  */
            }
        for (int i = 0; i < T; ++i) {
            const float *qi = q + (n * T + i) * D + col;
            float *p = probs + (nh * T + i) * T;
            for (int j = 0; j < T; ++j) p[j] = 0.0f;
            for (int e = 0; e < Dh; ++e) {
                const float qe = qi[e];
                const float *kr = kt + (int64_t)e * T;
#pragma omp simd
                for (int j = 0; j < T; ++j) p[j] += qe * kr[j];
            }
            float smax = -INFINITY;
            for (int j = 0; j < T; ++j)
                if ((!mask || mask[j]) && p[j] * scale > smax) smax = p[j] * scale;
            float sum = 0.0f;
            for (int j = 0; j < T; ++j) {
                p[j] = (mask && !mask[j]) || smax == -INFINITY ? 0.0f : expf(p[j] * scale - smax);
                sum += p[j];
            }
            const float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
            for (int e = 0; e < Dh; ++e) acc[e] = 0.0f;
            for (int j = 0; j < T; ++j) {
                p[j] *= inv;
                const float pj = p[j];
                const float *vr = vh + (int64_t)j * Dh;
#pragma omp simd
                for (int e = 0; e < Dh; ++e) acc[e] += pj * vr[e];
            }
            float *yi = y + (n * T + i) * D + col;
            for (int e = 0; e < Dh; ++e) yi[e] = acc[e];
        }
    }
}

static void attention_backward_fast(gv_ctx *c, float *dq, float *dk, float *dv, const float *dy,
                                    const float *q, const float *k, const float *v,
                                    const float *probs, const gv_attention_dims *d) {
    const int T = d->T, D = d->D, H = d->H, Dh = D / H;
    const float scale = (float)(1.0 / sqrt((double)Dh));
    const int64_t NH = (int64_t)d->N * H;
#pragma omp parallel for num_threads(c->threads) schedule(static)
    for (int64_t nh = 0; nh < NH; ++nh) {
        const int64_t n = nh / H, col = (int64_t)(nh % H) * Dh;
        float kh[FAST_MAX_ELEMS], vt[FAST_MAX_ELEMS], dkh[FAST_MAX_ELEMS], dvh[FAST_MAX_ELEMS];
        float dP[FAST_MAX_ELEMS], acc[512];
        for (int j = 0; j < T; ++j)
            for (int e = 0; e < Dh; ++e) {
                kh[(int64_t)j * Dh + e] = k[(n * T + j) * D + col + e]; /* K (T, Dh)   */
                vt[(int64_t)e * T + j] = v[(n * T + j) * D + col + e];  /* V^T (Dh, T) */
                dkh[(int64_t)j * Dh + e] = dvh[(int64_t)j * Dh + e] = 0.0f;
            }
        for (int i = 0; i < T; ++i) {
            const float *p = probs + (nh * T + i) * T;
            const float *dyi = dy + (n * T + i) * D + col;
            const float *qi = q + (n * T + i) * D + col;
            for (int j = 0; j < T; ++j) {
                const float pj = p[j];
                float *dvr = dvh + (int64_t)j * Dh;
#pragma omp simd
                for (int e = 0; e < Dh; ++e) dvr[e] += pj * dyi[e];
            }
            if (!dq && !dk) continue;
            for (int j = 0; j < T; ++j) dP[j] = 0.0f; /* dP_j = dy_i . v_j */
            for (int e = 0; e < Dh; ++e) {
                const float g = dyi[e];
                const float *vr = vt + (int64_t)e * T;
#pragma omp simd
                for (int j = 0; j < T; ++j) dP[j] += g * vr[j];
            }
            float row_dot = 0.0f;
            for (int j = 0; j < T; ++j) row_dot += p[j] * dP[j];
            for (int e = 0; e < Dh; ++e) acc[e] = 0.0f;
            for (int j = 0; j < T; ++j) {
                if (p[j] == 0.0f) continue;
                const float dS = p[j] * (dP[j] - row_dot) * scale;
                const float *kr = kh + (int64_t)j * Dh;
                float *dkr = dkh + (int64_t)j * Dh;
#pragma omp simd
                for (int e = 0; e < Dh; ++e) {
                    acc[e] += dS * kr[e];
                    dkr[e] += dS * qi[e];
                }
            }
            if (dq) {
                float *dqi = dq + (n * T + i) * D + col;
                for (int e = 0; e < Dh; ++e) dqi[e] += acc[e];
            }
        }
        for (int j = 0; j < T; ++j)
            for (int e = 0; e < Dh; ++e) {
                if (dk) dk[(n * T + j) * D + col + e] += dkh[(int64_t)j * Dh + e];
                if (dv) dv[(n * T + j) * D + col + e] += dvh[(int64_t)j * Dh + e];
            }
    }
}

static int use_fast_path(const gv_ctx *c, const gv_attention_dims *d) {
    const int Dh = d->D / d->H;
    return c->use_fast && (int64_t)d->T * Dh <= FAST_MAX_ELEMS && Dh <= 512 && d->T <= FAST_MAX_ELEMS;
}

/* ---- reference ------------------------------------------------------------------------------- */

gv_status gv_cpu_attention_forward(gv_ctx *c, float *y, float *probs, const float *q,
                                   const float *k, const float *v, const uint8_t *key_mask,
                                   const gv_attention_dims *d) {
    GV_TRY(check_attention("attention_forward", d));
    if (!probs) return GV_ERROR(GV_ERR_INVALID, "attention_forward: probs (N,H,T,T) is required");
    if (use_fast_path(c, d)) {
        attention_forward_fast(c, y, probs, q, k, v, key_mask, d);
        return GV_OK;
    }
    const int T = d->T, D = d->D, H = d->H, Dh = D / H;
    const double scale = 1.0 / sqrt((double)Dh);
    const int64_t NH = (int64_t)d->N * H;
#pragma omp parallel for num_threads(c->threads) schedule(static)
    for (int64_t nh = 0; nh < NH; ++nh) {
        const int64_t n = nh / H;
        const int h = (int)(nh % H);
        const uint8_t *mask = key_mask ? key_mask + n * T : NULL;
        for (int i = 0; i < T; ++i) {
            const float *qi = q + (n * T + i) * D + (int64_t)h * Dh;
            float *yi = y + (n * T + i) * D + (int64_t)h * Dh;
            float *p = probs + (nh * T + i) * T; /* row i of P, first holds the scores */
            float smax = -INFINITY;
            int any = 0;
            for (int j = 0; j < T; ++j) {
                if (mask && !mask[j]) continue;
                p[j] = (float)(head_dot(qi, k + (n * T + j) * D + (int64_t)h * Dh, Dh) * scale);
                if (!any || p[j] > smax) smax = p[j];
                any = 1;
            }
            double sum = 0.0;
            for (int j = 0; j < T; ++j)
                if (!mask || mask[j]) sum += exp((double)p[j] - (double)smax);
            for (int j = 0; j < T; ++j)
                p[j] = (mask && !mask[j]) ? 0.0f : (float)(exp((double)p[j] - (double)smax) / sum);
            for (int e = 0; e < Dh; ++e) {
                double acc = 0.0;
                for (int j = 0; j < T; ++j)
                    if (p[j] != 0.0f) acc += (double)p[j] * v[(n * T + j) * D + h * Dh + e];
                yi[e] = any ? (float)acc : 0.0f;
            }
        }
    }
    return GV_OK;
}

gv_status gv_cpu_attention_backward(gv_ctx *c, float *dq, float *dk, float *dv, const float *dy,
                                    const float *q, const float *k, const float *v,
                                    const float *probs, const uint8_t *key_mask,
                                    const gv_attention_dims *d) {
    GV_TRY(check_attention("attention_backward", d));
    (void)key_mask; /* masked keys have P == 0 in the saved probs, which is all backward needs */
    if (!dq && !dk && !dv) return GV_OK;
    if (use_fast_path(c, d)) {
        attention_backward_fast(c, dq, dk, dv, dy, q, k, v, probs, d);
        return GV_OK;
    }
    const int T = d->T, D = d->D, H = d->H, Dh = D / H;
    const double scale = 1.0 / sqrt((double)Dh);
    const int64_t NH = (int64_t)d->N * H;
#pragma omp parallel for num_threads(c->threads) schedule(static)
    for (int64_t nh = 0; nh < NH; ++nh) {
        const int64_t n = nh / H;
        const int64_t col = (int64_t)(nh % H) * Dh;
        for (int i = 0; i < T; ++i) {
            const float *p = probs + (nh * T + i) * T;
            const float *dyi = dy + (n * T + i) * D + col;
            const float *qi = q + (n * T + i) * D + col;
            if (dv)
                for (int j = 0; j < T; ++j) {
                    if (p[j] == 0.0f) continue;
                    float *dvj = dv + (n * T + j) * D + col;
                    for (int e = 0; e < Dh; ++e) dvj[e] += p[j] * dyi[e];
                }
            if (!dq && !dk) continue;
            double row_dot = 0.0; /* sum_k P_ik dP_ik */
            for (int j = 0; j < T; ++j) {
                if (p[j] == 0.0f) continue;
                row_dot += (double)p[j] * head_dot(dyi, v + (n * T + j) * D + col, Dh);
            }
            for (int j = 0; j < T; ++j) {
                if (p[j] == 0.0f) continue;
                const double dP = head_dot(dyi, v + (n * T + j) * D + col, Dh);
                const float dS_scaled = (float)((double)p[j] * (dP - row_dot) * scale);
                const float *kj = k + (n * T + j) * D + col;
                if (dq) {
                    float *dqi = dq + (n * T + i) * D + col;
                    for (int e = 0; e < Dh; ++e) dqi[e] += dS_scaled * kj[e];
                }
                if (dk) {
                    float *dkj = dk + (n * T + j) * D + col;
                    for (int e = 0; e < Dh; ++e) dkj[e] += dS_scaled * qi[e];
                }
            }
        }
    }
    return GV_OK;
}
