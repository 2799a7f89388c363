/* The masked-diffusion sampler (masked.h, ALGORITHMS.md §10): canvas state, blocks, per-step
 * knobs and their validation, CFG rows, the hook, and the record; the per-step arithmetic (the
 * categorical draw at temperature τ_s, Gumbel-perturbed confidence at τ_r, the top-c commit, the
 * hook's features) is the masked_select / masked_features ops of the backend the sampler runs on.
 * Not here: the network (the callback), any trainer logic, the op kernels (kernels/cpu/
 * masked_kernels.c, kernels/shared/gv_masked_items.h). */
#include "masked.h"

#include <stdlib.h>
#include <string.h>

#include "grove/kernels_cpu.h"
#include "gv_masked_items.h"

const char *const gv_knob_names[GV_KNOB_COUNT] = {"r", "tau_s", "tau_r", "w"};

/* ALGORITHMS.md §10, hand-made defaults at block step j of s */
float gv_masked_default_knob(int knob, int j, int s) {
    switch (knob) {
    case GV_KNOB_R: return 1.0f / (float)(s - j);
    case GV_KNOB_TAU_S: return 1.0f;
    case GV_KNOB_TAU_R: return 1.0f - (float)j / (float)s;
    default: return 1.0f; /* w */
    }
}

/* commit values of the canvas (the masked_select op's contract: -1 prompt, else completion) */
#define COMMIT_PROMPT (-1)
#define COMMIT_PENDING (-2)

#define DEV_ALIGN 256 /* each device buffer starts at a multiple of this */

static size_t round_up(size_t b) { return (b + DEV_ALIGN - 1) / DEV_ALIGN * DEV_ALIGN; }

/* Backend buffers of one sampler call, carved from `dev` in this order. */
typedef struct masked_dev {
    int32_t *tokens;  /* (rows_max, T): rows N..2N-1 are the CFG null rows when with_cfg */
    int32_t *commit;  /* (N, T) COMMIT_PROMPT / COMMIT_PENDING / the committing step      */
    float *logp;      /* (N, T) record                                                  */
    float *stats;     /* (N, GV_MASKED_STATS) of the current step                        */
    float *knobs;     /* (N, GV_MASKED_KNOBS) the step's knobs                           */
    float *feat;      /* (N, 2) the hook's features                                      */
    float *logits;    /* (rows_max, T, V)                                                */
} masked_dev;

static size_t dev_layout(const gv_masked_config *c, int with_cfg, char *base, masked_dev *d) {
    const size_t rows = (size_t)c->N * (with_cfg ? 2 : 1), N = (size_t)c->N, T = (size_t)c->T;
    const size_t sizes[7] = {rows * T * sizeof(int32_t), N * T * sizeof(int32_t),
                             N * T * sizeof(float),
                             N * GV_MASKED_STATS * sizeof(float),
                             N * GV_MASKED_KNOBS * sizeof(float), N * 2 * sizeof(float),
                             rows * T * (size_t)c->V * sizeof(float)};
    void **slot[7] = {(void **)&d->tokens, (void **)&d->commit, (void **)&d->logp,
                      (void **)&d->stats, (void **)&d->knobs, (void **)&d->feat,
                      (void **)&d->logits};
    size_t off = 0;
    for (int i = 0; i < 7; ++i) {
        if (base) *slot[i] = base + off;
        off += round_up(sizes[i]);
    }
    return off;
}

/* Host scratch: kn (N, GV_KNOB_COUNT), the hook's features (2N) floats; a staging area for the
   canvas upload ((rows_max + N) T int32) and a step's stats (N GV_MASKED_STATS floats). Neither
   this nor the device layout depends on the step count (callers size scratch from N, T, V). */
typedef struct masked_host {
    float *kn, *feat_frac, *feat_conf;
    void *stage;
} masked_host;

/* The order record's host memory (gv_masked_record.drawn / commit_rank / tau_r: the step's draw
   redone on the host), allocated by the call that asks for the record, so other callers' scratch
   sizes are unchanged. */
typedef struct masked_order {
    float *logits;     /* (rows_max, T, V) */
    int32_t *tok;      /* (N, T)           */
    double *dr;        /* (N, T, GV_HD_MASKED_DRAW) */
} masked_order;

static size_t host_layout(const gv_masked_config *c, int with_cfg, char *base, masked_host *h) {
    const size_t rows = (size_t)c->N * (with_cfg ? 2 : 1), N = (size_t)c->N, T = (size_t)c->T;
    const size_t knob_bytes = N * (GV_KNOB_COUNT + 2) * sizeof(float);
    size_t stage = (rows + N) * T * sizeof(int32_t);
    const size_t stats = N * GV_MASKED_STATS * sizeof(float);
    if (stats > stage) stage = stats;
    if (base) {
        h->kn = (float *)base;
        h->feat_frac = h->kn + N * GV_KNOB_COUNT;
        h->feat_conf = h->feat_frac + N;
        h->stage = base + round_up(knob_bytes);
    }
    return round_up(knob_bytes) + stage;
}

size_t gv_masked_device_bytes(const gv_masked_config *c, int with_cfg) {
    return dev_layout(c, with_cfg, NULL, NULL);
}
size_t gv_masked_host_bytes(const gv_masked_config *c, int with_cfg) {
    return host_layout(c, with_cfg, NULL, NULL);
}
/* gv_masked_sample: both parts in one host block (CPU backend memory is host memory). */
size_t gv_masked_scratch_bytes(const gv_masked_config *c, int with_cfg) {
    return DEV_ALIGN + gv_masked_device_bytes(c, with_cfg) + gv_masked_host_bytes(c, with_cfg);
}

static float knob_at(const gv_masked_knobs *k, int knob, int n, int step, int steps, int j, int s) {
    if (k && k->v[knob]) return k->v[knob][(int64_t)n * steps + step];
    if (k && k->fixed_mask >> knob & 1u) return k->fixed[knob];
    return gv_masked_default_knob(knob, j, s);
}

static gv_status check_config(const gv_masked_config *c) {
    const int N = c->N, T = c->T, V = c->V, steps = c->steps, B = c->blocks;
    if (N < 1 || T < 1 || V < 2 || c->mask_id < 0 || c->mask_id >= V || steps < 1 ||
        steps > GV_MASKED_MAX_STEPS || B < 1 || steps % B)
        return GV_ERROR(GV_ERR_INVALID, "masked sampler: bad geometry N=%d T=%d V=%d mask_id=%d "
                        "steps=%d (1..%d) blocks=%d (must divide steps)", N, T, V, (int)c->mask_id,
                        steps, GV_MASKED_MAX_STEPS, B);
    return GV_OK;
}

static int uses_cfg(const gv_masked_config *c, const gv_masked_knobs *knobs) {
    int with_cfg = 0;
    if (knobs && knobs->v[GV_KNOB_W])
        for (int64_t i = 0; i < (int64_t)c->N * c->steps; ++i)
            with_cfg |= knobs->v[GV_KNOB_W][i] != 1.0f;
    return with_cfg;
}

/* The canvas into backend memory: tokens (+ null rows) and the commit state. */
static gv_status upload_canvas(const gv_backend *be, const gv_masked_config *c, int with_cfg,
                               const int32_t *tokens, const masked_dev *d, int32_t *stage) {
    const int64_t NT = (int64_t)c->N * c->T;
    int32_t *commit = stage + (with_cfg ? 2 : 1) * NT;
    memcpy(stage, tokens, (size_t)NT * sizeof(int32_t));
    for (int64_t i = 0; i < NT; ++i) {
        commit[i] = tokens[i] == c->mask_id ? COMMIT_PENDING : COMMIT_PROMPT;
        if (with_cfg) /* the null prompt: every prompt position masked */
            stage[NT + i] = commit[i] == COMMIT_PROMPT ? c->mask_id : tokens[i];
    }
    GV_TRY(be->copy_from_host(d->tokens, stage, (size_t)(with_cfg ? 2 : 1) * NT * sizeof(int32_t)));
    return be->copy_from_host(d->commit, commit, (size_t)NT * sizeof(int32_t));
}

/* The final canvas and the per-position records back into host memory. */
static gv_status download(const gv_backend *be, const gv_masked_config *c, const masked_dev *d,
                          int32_t *tokens, gv_masked_record *rec) {
    const int64_t NT = (int64_t)c->N * c->T;
    GV_TRY(be->copy_to_host(tokens, d->tokens, (size_t)NT * sizeof(int32_t)));
    if (!rec) return GV_OK;
    /* every completion position is committed by its block's last step: commit == commit_step */
    if (rec->commit_step)
        GV_TRY(be->copy_to_host(rec->commit_step, d->commit, (size_t)NT * sizeof(int32_t)));
    if (rec->logp) GV_TRY(be->copy_to_host(rec->logp, d->logp, (size_t)NT * sizeof(float)));
    return GV_OK;
}

/* The per-step records of step k (only when the caller asked for them: one copy of 3N floats). */
static gv_status record_step(const gv_backend *be, const gv_masked_config *c, const masked_dev *d,
                             gv_masked_record *rec, int k, float *stage) {
    if (!rec || (!rec->commits && !rec->masked_frac && !rec->mean_conf)) return GV_OK;
    GV_TRY(be->copy_to_host(stage, d->stats, (size_t)c->N * GV_MASKED_STATS * sizeof(float)));
    for (int n = 0; n < c->N; ++n) {
        const float *st = stage + (int64_t)n * GV_MASKED_STATS;
        const int64_t i = (int64_t)n * c->steps + k;
        if (rec->commits) rec->commits[i] = (int32_t)st[GV_MASKED_STAT_COMMITS];
        if (rec->masked_frac) rec->masked_frac[i] = st[GV_MASKED_STAT_MASKED_FRAC];
        if (rec->mean_conf) rec->mean_conf[i] = st[GV_MASKED_STAT_MEAN_CONF];
    }
    return GV_OK;
}

/* The step's knobs into h->kn: buffer/defaults, then the hook (which sees the features of the
   current state, computed on the device), then the range check. */
static gv_status step_knobs(gv_ctx *ctx, const gv_masked_config *c, const gv_masked_knobs *knobs,
                            int k, int j, int s, const gv_masked_args *a, const masked_dev *d,
                            const masked_host *h) {
    const int N = c->N, steps = c->steps;
    float *kn = h->kn;
    for (int n = 0; n < N; ++n)
        for (int q = 0; q < GV_KNOB_COUNT; ++q)
            kn[(int64_t)n * GV_KNOB_COUNT + q] = knob_at(knobs, q, n, k, steps, j, s);
    if (knobs && knobs->step_fn) {
        float *feat = h->stage;
        GV_TRY(ctx->backend->ops->masked_features(ctx, d->feat, d->tokens, d->commit, d->logits, a));
        GV_TRY(ctx->backend->copy_to_host(feat, d->feat, (size_t)N * 2 * sizeof(float)));
        for (int n = 0; n < N; ++n) h->feat_frac[n] = feat[2 * n], h->feat_conf[n] = feat[2 * n + 1];
        GV_TRY(knobs->step_fn(knobs->step_user, c, k, j, s, h->feat_frac, h->feat_conf, kn));
        for (int n = 0; n < N; ++n)
            if (kn[(int64_t)n * GV_KNOB_COUNT + GV_KNOB_W] != knob_at(knobs, GV_KNOB_W, n, k, steps, j, s))
                return GV_ERROR(GV_ERR_INVALID, "masked sampler: the step hook changed w of sample "
                                "%d at step %d (w is decided before the logits)", n, k);
    }
    for (int n = 0; n < N; ++n) {
        const float r = kn[(int64_t)n * GV_KNOB_COUNT + GV_KNOB_R];
        const float tau_s = kn[(int64_t)n * GV_KNOB_COUNT + GV_KNOB_TAU_S];
        const float tau_r = kn[(int64_t)n * GV_KNOB_COUNT + GV_KNOB_TAU_R];
        const float w = kn[(int64_t)n * GV_KNOB_COUNT + GV_KNOB_W];
        if (!(r > 0.0f && r <= 1.0f) || !(tau_s > 0.0f) || !(tau_r >= 0.0f) || !(w >= 0.0f))
            return GV_ERROR(GV_ERR_INVALID, "masked sampler: sample %d step %d: knobs r=%g "
                            "tau_s=%g tau_r=%g w=%g out of range", n, k, (double)r,
                            (double)tau_s, (double)tau_r, (double)w);
    }
    return ctx->backend->copy_from_host(d->knobs, kn, (size_t)N * GV_MASKED_KNOBS * sizeof(float));
}

/* The order record of step k, part 1 (before the step's commits): the draw of every block position
   still masked, redone on the host by the op's own per-item arithmetic (gv_masked_items.h, equal
   bit for bit to the CPU op) from the step's logits, canvas and knobs. */
static gv_status order_draw(const gv_backend *be, const gv_masked_config *c, int cfg_now,
                            const gv_masked_args *a, const masked_dev *d, const masked_host *h,
                            const masked_order *o) {
    const int64_t NT = (int64_t)c->N * c->T;
    int32_t *tokens = h->stage, *commit = tokens + NT;
    GV_TRY(be->copy_to_host(tokens, d->tokens, (size_t)NT * sizeof(int32_t)));
    GV_TRY(be->copy_to_host(commit, d->commit, (size_t)NT * sizeof(int32_t)));
    GV_TRY(be->copy_to_host(o->logits, d->logits,
                            (size_t)(cfg_now ? 2 : 1) * NT * c->V * sizeof(float)));
    for (int64_t i = 0; i < NT; ++i) o->tok[i] = -1;
    for (int64_t np = 0; np < NT; ++np)
        gv_item_masked_draw(np, o->tok, o->dr, tokens, commit, o->logits,
                            cfg_now ? o->logits + NT * c->V : NULL, h->kn, *a);
    return GV_OK;
}

/* Part 2 (after the commits): the draws into rec->drawn, the committed positions' places in the
   confidence order (the op's sort: higher first, ties to the lower position), the step's τ_r. */
static gv_status order_record(const gv_backend *be, const gv_masked_config *c, int k,
                              const masked_dev *d, const masked_host *h, const masked_order *o,
                              gv_masked_record *rec) {
    const int N = c->N, T = c->T;
    int32_t *commit = h->stage;
    GV_TRY(be->copy_to_host(commit, d->commit, (size_t)N * T * sizeof(int32_t)));
    for (int n = 0; n < N; ++n) {
        const int32_t *cr = commit + (int64_t)n * T, *tk = o->tok + (int64_t)n * T;
        const double *dr = o->dr + (int64_t)n * T * GV_HD_MASKED_DRAW;
        if (rec->tau_r) rec->tau_r[(int64_t)n * c->steps + k] = h->kn[(int64_t)n * GV_KNOB_COUNT + GV_KNOB_TAU_R];
        if (rec->drawn) memcpy(rec->drawn + ((int64_t)n * c->steps + k) * T, tk, (size_t)T * sizeof(int32_t));
        if (!rec->commit_rank) continue;
        for (int p = 0; p < T; ++p) {
            if (cr[p] == -1) rec->commit_rank[(int64_t)n * T + p] = -1;
            if (cr[p] != k || tk[p] < 0) continue;
            const double cp = dr[p * GV_HD_MASKED_DRAW + GV_HD_MASKED_CONF];
            int before = 0;
            for (int q = 0; q < T; ++q) {
                if (q == p || cr[q] != k || tk[q] < 0) continue;
                const double cq = dr[q * GV_HD_MASKED_DRAW + GV_HD_MASKED_CONF];
                before += cq > cp || (cq == cp && q < p);
            }
            rec->commit_rank[(int64_t)n * T + p] = before;
        }
    }
    return GV_OK;
}

_Static_assert((int)GV_MASKED_KNOBS == (int)GV_KNOB_COUNT && GV_KNOB_R == 0 && GV_KNOB_TAU_S == 1 &&
                   GV_KNOB_TAU_R == 2 && GV_KNOB_W == 3,
               "the masked_select op reads the knobs in the sampler's order");

/* One sampler step k: the logits, the step's knobs, the order record's draw (ord, when asked), the
   commits, the records. a: the call's op arguments, completed here for the step. */
static gv_status masked_step(gv_ctx *ctx, const gv_masked_config *c, const gv_masked_knobs *knobs,
                             gv_masked_logits_fn logits_fn, void *user, gv_masked_record *rec,
                             gv_masked_args *a, const masked_dev *d, const masked_host *h,
                             const masked_order *ord, int with_cfg, int k) {
    const gv_backend *be = ctx->backend;
    const int N = c->N, steps = c->steps, s = steps / c->blocks, j = k % s;
    const int64_t NT = (int64_t)N * c->T;
    int cfg_now = 0;
    for (int n = 0; n < N && with_cfg; ++n)
        cfg_now |= knob_at(knobs, GV_KNOB_W, n, k, steps, j, s) != 1.0f;
    GV_TRY(logits_fn(user, cfg_now ? 2 * N : N, d->tokens, d->logits));
    gv_rng_addr addr = c->addr;
    addr.step = (uint32_t)k;
    addr.slot = c->slot0;
    GV_TRY(gv_rng_addr_pack(&addr, a->ctr_hi));
    a->block = k / s;
    a->step = k;
    a->last = j == s - 1;
    GV_TRY(step_knobs(ctx, c, knobs, k, j, s, a, d, h));
    if (ord) GV_TRY(order_draw(be, c, cfg_now, a, d, h, ord));
    GV_TRY(be->ops->masked_select(ctx, d->tokens, d->commit, rec && rec->logp ? d->logp : NULL,
                                  d->stats, with_cfg ? d->tokens + NT : NULL, d->logits,
                                  cfg_now ? d->logits + NT * c->V : NULL, d->knobs, a));
    GV_TRY(record_step(be, c, d, rec, k, h->stage));
    if (ord) GV_TRY(order_record(be, c, k, d, h, ord, rec));
    return GV_OK;
}

gv_status gv_masked_sample_on(gv_ctx *ctx, const gv_masked_config *c, const gv_masked_knobs *knobs,
                              gv_masked_logits_fn logits_fn, void *user, int32_t *tokens,
                              gv_masked_record *rec, void *dev, size_t dev_bytes, void *scratch,
                              size_t scratch_bytes) {
    GV_TRY(check_config(c));
    const int N = c->N, T = c->T, V = c->V, steps = c->steps, B = c->blocks;
    const int with_cfg = uses_cfg(c, knobs);
    if (!dev || dev_bytes < gv_masked_device_bytes(c, with_cfg))
        return GV_ERROR(GV_ERR_INVALID, "masked sampler: device memory of %zu bytes, %zu needed",
                        dev_bytes, gv_masked_device_bytes(c, with_cfg));
    if (!scratch || scratch_bytes < gv_masked_host_bytes(c, with_cfg))
        return GV_ERROR(GV_ERR_INVALID, "masked sampler: scratch of %zu bytes, %zu needed",
                        scratch_bytes, gv_masked_host_bytes(c, with_cfg));
    /* every sample's address must fit: the op adds n to the slot of row 0 */
    gv_masked_args a = {.N = N, .T = T, .V = V, .mask_id = c->mask_id, .blocks = B,
                        .stats_stride = GV_MASKED_STATS};
    gv_rng_addr last_addr = c->addr;
    last_addr.step = (uint32_t)(steps - 1);
    last_addr.slot = c->slot0 + (uint32_t)(N - 1);
    if (last_addr.slot < c->slot0)
        return GV_ERROR(GV_ERR_INVALID, "masked sampler: slot0 %u + %d samples overflows",
                        c->slot0, N);
    GV_TRY(gv_rng_addr_pack(&last_addr, a.ctr_hi));
    gv_rng_key(c->seed, c->stream, a.key);
    masked_dev d;
    masked_host h;
    dev_layout(c, with_cfg, dev, &d);
    host_layout(c, with_cfg, scratch, &h);
    const gv_backend *be = ctx->backend;
    const int64_t NT = (int64_t)N * T;
    GV_TRY(upload_canvas(be, c, with_cfg, tokens, &d, h.stage));
    if (rec && rec->logp) GV_TRY(be->memset_zero(d.logp, (size_t)NT * sizeof(float)));
    masked_order ord = {0};
    const int order = rec && (rec->drawn || rec->commit_rank || rec->tau_r);
    if (order) {
        ord.logits = malloc((size_t)(with_cfg ? 2 : 1) * NT * V * sizeof(float));
        ord.tok = malloc((size_t)NT * sizeof(int32_t));
        ord.dr = malloc((size_t)NT * GV_HD_MASKED_DRAW * sizeof(double));
    }
    gv_status st = order && !(ord.logits && ord.tok && ord.dr)
                       ? GV_ERROR(GV_ERR_OOM, "masked sampler: no memory for the order record "
                                  "(%d x %d x %d)", N, T, V)
                       : GV_OK;
    for (int k = 0; k < steps && st == GV_OK; ++k)
        st = masked_step(ctx, c, knobs, logits_fn, user, rec, &a, &d, &h, order ? &ord : NULL,
                         with_cfg, k);
    free(ord.logits);
    free(ord.tok);
    free(ord.dr);
    GV_TRY(st);
    return download(be, c, &d, tokens, rec);
}

gv_status gv_masked_sample(const gv_masked_config *c, const gv_masked_knobs *knobs,
                           gv_masked_logits_fn logits_fn, void *user, int32_t *tokens,
                           gv_masked_record *rec, void *scratch, size_t scratch_bytes) {
    GV_TRY(check_config(c));
    const int with_cfg = uses_cfg(c, knobs);
    if (!scratch || scratch_bytes < gv_masked_scratch_bytes(c, with_cfg))
        return GV_ERROR(GV_ERR_INVALID, "masked sampler: scratch of %zu bytes, %zu needed",
                        scratch_bytes, gv_masked_scratch_bytes(c, with_cfg));
    /* the CPU backend's memory is host memory: one block holds the device and the host part */
    char *base = (char *)scratch;
    base += (DEV_ALIGN - (uintptr_t)base % DEV_ALIGN) % DEV_ALIGN;
    const size_t dev_bytes = gv_masked_device_bytes(c, with_cfg);
    /* a private one-thread reference context; its scratch is the op's per-sample work space */
    gv_ctx_options o = {.threads = 1, .use_fast = 0,
                        .scratch_bytes = 4 * (size_t)c->T * sizeof(double) + 4 * GV_ARENA_ALIGN};
    gv_ctx *ctx = NULL;
    GV_TRY(grove_backend_cpu()->ctx_create(&o, &ctx));
    gv_status st = gv_masked_sample_on(ctx, c, knobs, logits_fn, user, tokens, rec, base, dev_bytes,
                                       base + dev_bytes, gv_masked_host_bytes(c, with_cfg));
    grove_backend_cpu()->ctx_destroy(ctx);
    return st;
}
