/* Co-GRPO's schedule policy π_φ (grove/mdm_schedule.h, ALGORITHMS.md §10): features, the tiny MLP
 * (forward and hand-written backward in double on the host: 10 -> H -> K), Gaussian actions and
 * log-densities, the sampler hook, the clipped φ update through AdamW (grove/optim.h) and the CSV
 * export. Not here: the θ phase, the model term of the joint log-prob, checkpoint files. */
#include "grove/mdm_schedule.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "grove/kernels_cpu.h"
#include "grove/optim.h"

#define R_CAP 1e-3
#define LOG_2PI 1.8378770664093453

float gv_schedule_sigma(int64_t iteration, int64_t decay) {
    if (decay <= 0) return 0.1f;
    const double f = iteration >= decay ? 1.0 : (double)iteration / (double)decay;
    return (float)(0.6 + (0.1 - 0.6) * f);
}

double gv_schedule_squash(int knob, double x) {
    if (knob == GV_KNOB_R) {
        double y = 1.0 / (1.0 + exp(-x));
        return y < R_CAP ? R_CAP : y > 1.0 - R_CAP ? 1.0 - R_CAP : y;
    }
    return x > 30.0 ? x : log1p(exp(x)); /* softplus */
}

double gv_schedule_unsquash(int knob, double y) {
    if (knob == GV_KNOB_R) {
        if (y < R_CAP) y = R_CAP;
        if (y > 1.0 - R_CAP) y = 1.0 - R_CAP;
        return log(y / (1.0 - y));
    }
    return y > 30.0 ? y : log(expm1(y));
}

/* 1 when knob q has an action at block step j of s (r and τ_r do nothing at a block's last step) */
static int has_action(int q, int j, int s) {
    return !((q == GV_KNOB_R || q == GV_KNOB_TAU_R) && j == s - 1);
}

static void features(int j, int s, float frac, float conf, double *x) {
    const double u = (double)j / (double)s;
    for (int i = 0; i < GV_SCHEDULE_EMBED / 2; ++i) {
        x[2 * i] = sin(3.141592653589793 * (double)(1 << i) * u);
        x[2 * i + 1] = cos(3.141592653589793 * (double)(1 << i) * u);
    }
    x[GV_SCHEDULE_EMBED] = frac;
    x[GV_SCHEDULE_EMBED + 1] = conf;
}

/* μ (K) and the hidden activations h (H) of input x */
static void forward(const gv_schedule *p, const double *x, double *h, double *mu) {
    const int H = p->cfg.hidden, K = p->K;
    const float *w1 = p->phi.items[0].value, *b1 = p->phi.items[1].value;
    const float *w2 = p->phi.items[2].value, *b2 = p->phi.items[3].value;
    for (int i = 0; i < H; ++i) {
        double a = b1[i];
        for (int d = 0; d < GV_SCHEDULE_IN; ++d) a += (double)w1[i * GV_SCHEDULE_IN + d] * x[d];
        h[i] = tanh(a);
    }
    for (int q = 0; q < K; ++q) {
        double a = b2[q];
        for (int i = 0; i < H; ++i) a += (double)w2[q * H + i] * h[i];
        mu[q] = a;
    }
}

gv_status gv_schedule_create(const gv_schedule_config *cfg, gv_schedule *out) {
    memset(out, 0, sizeof *out);
    if (cfg->steps < 1 || cfg->blocks < 1 || cfg->steps % cfg->blocks || cfg->hidden < 1 || cfg->hidden > 256)
        return GV_ERROR(GV_ERR_INVALID, "schedule policy: steps %d, blocks %d (must divide), hidden %d "
                        "(1..256)", cfg->steps, cfg->blocks, cfg->hidden);
    out->cfg = *cfg;
    for (int q = 0; q < GV_KNOB_COUNT; ++q)
        if (cfg->learned[q]) out->knob_of[out->K++] = q;
    if (out->K == 0) return GV_ERROR(GV_ERR_INVALID, "schedule policy: no learned knob");
    const gv_backend *be = grove_backend_cpu();
    gv_params_init(&out->phi, be);
    const int H = cfg->hidden, K = out->K;
    gv_status s = gv_params_declare(&out->phi, "w1", (gv_shape){2, {H, GV_SCHEDULE_IN}}, GV_INIT_NORMAL,
                                    (float)(1.0 / sqrt((double)GV_SCHEDULE_IN)), 0, NULL);
    if (s == GV_OK) s = gv_params_declare(&out->phi, "b1", (gv_shape){1, {H}}, GV_INIT_ZEROS, 0.0f, 0, NULL);
    if (s == GV_OK) s = gv_params_declare(&out->phi, "w2", (gv_shape){2, {K, H}}, GV_INIT_ZEROS, 0.0f, 0, NULL);
    if (s == GV_OK) s = gv_params_declare(&out->phi, "b2", (gv_shape){1, {K}}, GV_INIT_ZEROS, 0.0f, 0, NULL);
    if (s == GV_OK) s = gv_params_allocate(&out->phi, 0);
    if (s == GV_OK) s = gv_params_initialize(&out->phi, cfg->seed);
    if (s == GV_OK) s = be->ctx_create(&(gv_ctx_options){.threads = 1}, &out->ctx);
    if (s != GV_OK) gv_schedule_free(out);
    return s;
}

void gv_schedule_free(gv_schedule *p) {
    if (p->ctx) p->phi.backend->ctx_destroy(p->ctx);
    if (p->phi.allocated || p->phi.items) gv_params_free(&p->phi);
    free(p->feat), free(p->act), free(p->acted), free(p->logp_old);
    memset(p, 0, sizeof *p);
}

gv_status gv_schedule_begin(gv_schedule *p, int N, int64_t iteration, int mean_only) {
    if (N < 1 || iteration < 0 || iteration > (int64_t)UINT32_MAX)
        return GV_ERROR(GV_ERR_INVALID, "schedule policy: %d samples at iteration %lld", N, (long long)iteration);
    const int S = p->cfg.steps, K = p->K;
    if (N > p->cap) {
        free(p->feat), free(p->act), free(p->acted), free(p->logp_old);
        p->feat = calloc((size_t)N * S * 2, sizeof(float));
        p->act = calloc((size_t)N * S * K, sizeof(float));
        p->acted = calloc((size_t)N * S * K, 1);
        p->logp_old = calloc((size_t)N * S, sizeof(double));
        p->cap = N;
        if (!p->feat || !p->act || !p->acted || !p->logp_old) {
            p->cap = 0;
            return GV_ERROR(GV_ERR_OOM, "schedule policy: rollout record of %d samples", N);
        }
    }
    memset(p->acted, 0, (size_t)N * S * K);
    p->N = N;
    p->mean_only = mean_only;
    p->iteration = (uint32_t)iteration;
    p->sigma = gv_schedule_sigma(iteration, p->cfg.sigma_decay_iterations);
    return GV_OK;
}

static double unit_logp(const gv_schedule *p, int64_t u, const double *mu) {
    double lp = 0.0;
    const double sg = p->sigma;
    for (int q = 0; q < p->K; ++q) {
        if (!p->acted[u * p->K + q]) continue;
        const double z = ((double)p->act[u * p->K + q] - mu[q]) / sg;
        lp += -0.5 * z * z - log(sg) - 0.5 * LOG_2PI;
    }
    return lp;
}

gv_status gv_schedule_hook(void *user, const gv_masked_config *c, int step, int j, int s,
                           const float *masked_frac, const float *mean_conf, float *knobs) {
    gv_schedule *p = user;
    const int S = p->cfg.steps, K = p->K;
    if (c->steps != S || s != S / p->cfg.blocks)
        return GV_ERROR(GV_ERR_INVALID, "schedule policy: made for %d steps in %d blocks, sampler has %d "
                        "steps of %d per block", S, p->cfg.blocks, c->steps, s);
    uint32_t key[2];
    gv_rng_key(p->cfg.seed, GV_RNG_STREAM_SAMPLER, key);
    double x[GV_SCHEDULE_IN], h[256], mu[GV_KNOB_COUNT];
    for (int n = 0; n < c->N; ++n) {
        const int slot = (int)c->slot0 + n;
        if (slot >= p->N)
            return GV_ERROR(GV_ERR_INVALID, "schedule policy: sample %d of a rollout of %d", slot, p->N);
        const int64_t u = (int64_t)slot * S + step;
        p->feat[u * 2] = masked_frac[n];
        p->feat[u * 2 + 1] = mean_conf[n];
        features(j, s, masked_frac[n], mean_conf[n], x);
        forward(p, x, h, mu);
        uint32_t ctr[3];
        gv_rng_addr a = {.iteration = p->iteration, .slot = (uint32_t)slot, .step = (uint32_t)step,
                         .purpose = GV_RNG_PURPOSE_SCHEDULE};
        GV_TRY(gv_rng_addr_pack(&a, ctr));
        for (int i = 0; i < K; ++i) {
            const int q = p->knob_of[i];
            if (!has_action(q, j, s)) continue;
            const double act = p->mean_only ? mu[i] : mu[i] + (double)p->sigma * gv_rng_normal_at(key, ctr, (uint64_t)q);
            p->act[u * K + i] = (float)act;
            p->acted[u * K + i] = 1;
            const double bias = gv_schedule_unsquash(q, gv_masked_default_knob(q, j, s));
            knobs[n * GV_KNOB_COUNT + q] = (float)gv_schedule_squash(q, (double)(float)act + bias);
        }
        p->logp_old[u] = unit_logp(p, u, mu);
    }
    return GV_OK;
}

void gv_schedule_mean_knobs(gv_schedule *p, const gv_masked_knobs *held, int k, float frac,
                            float conf, float *knobs) {
    const int s = p->cfg.steps / p->cfg.blocks, j = k % s;
    double x[GV_SCHEDULE_IN], h[256], mu[GV_KNOB_COUNT];
    features(j, s, frac, conf, x);
    forward(p, x, h, mu);
    for (int q = 0; q < GV_KNOB_COUNT; ++q)
        knobs[q] = held && held->fixed_mask >> q & 1u ? held->fixed[q] : gv_masked_default_knob(q, j, s);
    for (int i = 0; i < p->K; ++i) { /* a learned knob is never fixed (mdm_setup.c refuses it) */
        const int q = p->knob_of[i];
        if (!has_action(q, j, s)) continue;
        const double bias = gv_schedule_unsquash(q, gv_masked_default_knob(q, j, s));
        knobs[q] = (float)gv_schedule_squash(q, (double)(float)mu[i] + bias);
    }
}

void gv_schedule_rollout_mean_knobs(gv_schedule *p, const gv_masked_knobs *held, int k,
                                    float *frac, float *conf, float *knobs) {
    const int S = p->cfg.steps;
    double fr = 0.0, cf = 0.0;
    for (int n = 0; n < p->N; ++n) {
        fr += p->feat[((int64_t)n * S + k) * 2];
        cf += p->feat[((int64_t)n * S + k) * 2 + 1];
    }
    if (p->N) fr /= p->N, cf /= p->N;
    *frac = (float)fr, *conf = (float)cf;
    gv_schedule_mean_knobs(p, held, k, *frac, *conf, knobs);
}

double gv_schedule_logp(gv_schedule *p, int n, int k) {
    const int s = p->cfg.steps / p->cfg.blocks;
    const int64_t u = (int64_t)n * p->cfg.steps + k;
    double x[GV_SCHEDULE_IN], h[256], mu[GV_KNOB_COUNT];
    features(k % s, s, p->feat[u * 2], p->feat[u * 2 + 1], x);
    forward(p, x, h, mu);
    return unit_logp(p, u, mu);
}

int64_t gv_schedule_units(const gv_schedule *p, int n0, int n1) {
    const int S = p->cfg.steps, K = p->K;
    int64_t units = 0;
    for (int64_t u = (int64_t)n0 * S; u < (int64_t)n1 * S; ++u) {
        int any = 0;
        for (int i = 0; i < K; ++i) any |= p->acted[u * K + i];
        units += any;
    }
    return units;
}

gv_status gv_schedule_loss(gv_schedule *p, const float *adv, double *loss, double *mean_ratio) {
    const int64_t units = gv_schedule_units(p, 0, p->N);
    double L = 0.0, rsum = 0.0;
    GV_TRY(gv_schedule_loss_part(p, adv, 0, p->N, units, &L, &rsum));
    if (loss) *loss = units ? L / (double)units : 0.0;
    if (mean_ratio) *mean_ratio = units ? rsum / (double)units : 1.0;
    p->last_units = units;
    return GV_OK;
}

gv_status gv_schedule_loss_part(gv_schedule *p, const float *adv, int n0, int n1, int64_t norm,
                                double *loss_sum, double *ratio_sum) {
    if (n0 < 0 || n1 > p->N || n0 > n1)
        return GV_ERROR(GV_ERR_INVALID, "schedule policy: samples [%d, %d) of a rollout of %d", n0, n1, p->N);
    const int S = p->cfg.steps, s = S / p->cfg.blocks, K = p->K, H = p->cfg.hidden;
    const double eps = p->cfg.clip_range, sg2 = (double)p->sigma * p->sigma;
    GV_TRY(gv_params_zero_grads(&p->phi));
    float *gw1 = p->phi.items[0].grad, *gb1 = p->phi.items[1].grad;
    float *gw2 = p->phi.items[2].grad, *gb2 = p->phi.items[3].grad;
    const float *w2 = p->phi.items[2].value;
    /* accumulate in double, then store */
    double *g = calloc((size_t)H * GV_SCHEDULE_IN + H + (size_t)K * H + K, sizeof(double));
    if (!g) return GV_ERROR(GV_ERR_OOM, "schedule policy: gradient scratch");
    double *g_w1 = g, *g_b1 = g_w1 + (size_t)H * GV_SCHEDULE_IN, *g_w2 = g_b1 + H, *g_b2 = g_w2 + (size_t)K * H;
    int64_t units = 0;
    double L = 0.0, rsum = 0.0;
    double x[GV_SCHEDULE_IN], h[256], mu[GV_KNOB_COUNT], dmu[GV_KNOB_COUNT], dh[256];
    for (int n = n0; n < n1; ++n)
        for (int k = 0; k < S; ++k) {
            const int64_t u = (int64_t)n * S + k;
            int any = 0;
            for (int i = 0; i < K; ++i) any |= p->acted[u * K + i];
            if (!any) continue;
            features(k % s, s, p->feat[u * 2], p->feat[u * 2 + 1], x);
            forward(p, x, h, mu);
            const double ratio = exp(unit_logp(p, u, mu) - p->logp_old[u]);
            const double A = adv[n];
            const double clipped = ratio < 1.0 - eps ? 1.0 - eps : ratio > 1.0 + eps ? 1.0 + eps : ratio;
            const double o1 = ratio * A, o2 = clipped * A;
            L += -(o1 < o2 ? o1 : o2);
            rsum += ratio;
            ++units;
            /* d(-min)/dlogπ = -ratio·A when the unclipped term is the min (or the clip is inactive) */
            const int active = o1 <= o2;
            const double dlogp = active ? -ratio * A : 0.0;
            for (int i = 0; i < K; ++i)
                dmu[i] = p->acted[u * K + i] ? dlogp * ((double)p->act[u * K + i] - mu[i]) / sg2 : 0.0;
            for (int i = 0; i < H; ++i) dh[i] = 0.0;
            for (int q = 0; q < K; ++q) {
                g_b2[q] += dmu[q];
                for (int i = 0; i < H; ++i) {
                    g_w2[q * H + i] += dmu[q] * h[i];
                    dh[i] += dmu[q] * (double)w2[q * H + i];
                }
            }
            for (int i = 0; i < H; ++i) {
                const double da = dh[i] * (1.0 - h[i] * h[i]);
                g_b1[i] += da;
                for (int d = 0; d < GV_SCHEDULE_IN; ++d) g_w1[i * GV_SCHEDULE_IN + d] += da * x[d];
            }
        }
    if (units && norm > 0) {
        for (int i = 0; i < H * GV_SCHEDULE_IN; ++i) gw1[i] = (float)(g_w1[i] / (double)norm);
        for (int i = 0; i < H; ++i) gb1[i] = (float)(g_b1[i] / (double)norm);
        for (int i = 0; i < K * H; ++i) gw2[i] = (float)(g_w2[i] / (double)norm);
        for (int i = 0; i < K; ++i) gb2[i] = (float)(g_b2[i] / (double)norm);
    }
    free(g);
    *loss_sum = L;
    *ratio_sum = rsum;
    return GV_OK;
}

gv_status gv_schedule_step(gv_schedule *p) {
    gv_adamw_config ac = GV_ADAMW_CONFIG_DEFAULT;
    ac.lr = p->cfg.lr;
    ac.weight_decay = p->cfg.weight_decay;
    return gv_optim_step(p->ctx, &p->phi, &ac, p->cfg.lr, ++p->adam_t);
}

gv_status gv_schedule_update(gv_schedule *p, const float *adv, double *loss, double *mean_ratio) {
    GV_TRY(gv_schedule_loss(p, adv, loss, mean_ratio));
    if (!p->last_units) return GV_OK;
    return gv_schedule_step(p);
}

gv_status gv_schedule_write_csv(gv_schedule *p, const gv_masked_knobs *held, FILE *f) {
    const int S = p->cfg.steps, s = S / p->cfg.blocks;
    fprintf(f, "step,block_step,masked_frac,mean_conf");
    for (int q = 0; q < GV_KNOB_COUNT; ++q) fprintf(f, ",%s", gv_knob_names[q]);
    fprintf(f, "\n");
    for (int k = 0; k < S; ++k) {
        float fr, cf, kn[GV_KNOB_COUNT];
        gv_schedule_rollout_mean_knobs(p, held, k, &fr, &cf, kn);
        fprintf(f, "%d,%d,%.6f,%.6f", k, k % s, (double)fr, (double)cf);
        for (int q = 0; q < GV_KNOB_COUNT; ++q) fprintf(f, ",%.6g", (double)kn[q]);
        fprintf(f, "\n");
    }
    return ferror(f) ? GV_ERROR(GV_ERR_IO, "schedule policy: writing the schedule CSV failed") : GV_OK;
}
