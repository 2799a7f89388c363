/* Gold-judge evaluation (see evaluate.h): a fixed-micro-batch classifier runner, the accuracy /
 * gold-probability / FCD statistics, and checkpoint evaluation (sample round robin over the eval
 * prompts, score against the dataset's test split). Tensors are touched through ops and explicit
 * copies only (DESIGN.md §3); the statistics are host arithmetic on copied values. */
#include "grove/evaluate.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "grove/denoiser.h"
#include "grove/frechet.h"
#include "grove/image_model.h"
#include "grove/paths.h"

static gv_status host_alloc(size_t bytes, void **out) {
    *out = calloc(1, bytes ? bytes : 1);
    if (!*out) return GV_ERROR(GV_ERR_OOM, "evaluate: cannot allocate %zu host bytes", bytes);
    return GV_OK;
}

/* ---- the judge ------------------------------------------------------------------------------- */

static gv_status judge_forward(gv_judge *j, gv_ctx *c) {
    gv_arena_reset(&j->arena);
    return gv_classifier_forward(j->m, c, &j->arena, j->theta, j->micro_batch, j->x_stage,
                                 j->logits, &j->saved);
}

gv_status gv_judge_create(gv_judge *j, gv_ctx *c, const gv_classifier *m, const float *theta,
                          int micro_batch) {
    memset(j, 0, sizeof *j);
    if (!m || !theta || micro_batch < 1)
        return GV_ERROR(GV_ERR_INVALID, "judge: need a classifier, parameters and micro_batch "
                        ">= 1 (got %d)", micro_batch);
    const gv_backend *be = c->backend;
    j->m = m;
    j->theta = theta;
    j->backend = be;
    j->micro_batch = micro_batch;
    j->D = (int64_t)m->cfg.in_channels * m->cfg.height * m->cfg.width;
    j->F = m->cfg.features;
    j->K = m->cfg.classes;
    const size_t mb = (size_t)micro_batch, img = mb * (size_t)j->D * sizeof(float);
    const size_t kb = mb * (size_t)j->K * sizeof(float);
    gv_status s;
    if ((s = be->alloc(img, (void **)&j->p_stage)) != GV_OK ||
        (s = be->alloc(img, (void **)&j->x_stage)) != GV_OK ||
        (s = be->alloc(img, (void **)&j->ones)) != GV_OK ||
        (s = be->alloc(kb, (void **)&j->logits)) != GV_OK ||
        (s = be->alloc(kb, (void **)&j->probs)) != GV_OK ||
        (s = host_alloc(kb, (void **)&j->probs_host)) != GV_OK ||
        (s = host_alloc(mb * (size_t)j->F * sizeof(float), (void **)&j->feat_host)) != GV_OK ||
        (s = be->memset_zero(j->p_stage, img)) != GV_OK) {
        gv_judge_free(j);
        return s;
    }
    float *ones = NULL;
    s = host_alloc(img, (void **)&ones);
    if (s == GV_OK) {
        for (size_t i = 0; i < mb * (size_t)j->D; ++i) ones[i] = 1.0f;
        s = be->copy_from_host(j->ones, ones, img);
    }
    free(ones);
    if (s == GV_OK) {
        gv_arena_init(&j->arena, be, "judge activations");
        gv_arena_measure_begin(&j->arena);
        s = judge_forward(j, c);
        size_t peak = gv_arena_measure_end(&j->arena);
        if (s == GV_OK) s = gv_arena_reserve(&j->arena, peak);
    }
    if (s != GV_OK) gv_judge_free(j);
    return s;
}

void gv_judge_free(gv_judge *j) {
    if (!j) return;
    if (j->backend) {
        void *bufs[] = {j->p_stage, j->x_stage, j->ones, j->logits, j->probs};
        for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; ++i)
            if (bufs[i]) j->backend->free(bufs[i]);
        gv_arena_release(&j->arena);
    }
    free(j->probs_host);
    free(j->feat_host);
    memset(j, 0, sizeof *j);
}

gv_status gv_judge_run(gv_judge *j, gv_ctx *c, const float *p, int on_device, int64_t n,
                       float *probs, float *features) {
    if (n < 1 || !p) return GV_ERROR(GV_ERR_INVALID, "judge: need n >= 1 images (got %lld)",
                                     (long long)n);
    const gv_backend *be = j->backend;
    const int mb = j->micro_batch;
    const size_t img = (size_t)j->D * sizeof(float);
    for (int64_t first = 0; first < n; first += mb) {
        const int rows = n - first < mb ? (int)(n - first) : mb;
        const float *src = p + first * j->D;
        GV_TRY(on_device ? be->copy(j->p_stage, src, (size_t)rows * img)
                         : be->copy_from_host(j->p_stage, src, (size_t)rows * img));
        if (rows < mb) /* DESIGN.md §3: padded tail, output ignored */
            GV_TRY(be->memset_zero(j->p_stage + (int64_t)rows * j->D, (size_t)(mb - rows) * img));
        /* x = 2p − 1 (ALGORITHMS.md §1): x_stage = ones, then x_stage = 2·p − 1·x_stage */
        gv_ew_dims e = {.n = (int64_t)mb * j->D};
        GV_TRY(be->copy(j->x_stage, j->ones, (size_t)mb * img));
        GV_TRY(be->ops->axpby(c, j->x_stage, j->p_stage, 2.0f, -1.0f, &e));
        GV_TRY(judge_forward(j, c));
        if (probs) {
            gv_rows_dims rd = {.R = mb, .D = j->K};
            GV_TRY(be->ops->softmax_forward(c, j->probs, j->logits, &rd));
            GV_TRY(be->copy_to_host(probs + first * j->K, j->probs,
                                    (size_t)rows * (size_t)j->K * sizeof(float)));
        }
        if (features)
            GV_TRY(be->copy_to_host(features + first * j->F, j->saved.features,
                                    (size_t)rows * (size_t)j->F * sizeof(float)));
    }
    return GV_OK;
}

gv_status gv_judge_split_features(gv_judge *j, gv_ctx *c, const gv_dataset_split *split,
                                  int64_t n, float **features, int64_t *n_out) {
    *features = NULL;
    if (n <= 0 || n > split->n) n = split->n;
    if ((int64_t)split->c * split->h * split->w != j->D)
        return GV_ERROR(GV_ERR_INVALID, "judge: dataset images are %dx%dx%d, the classifier "
                        "takes %d elements", split->c, split->h, split->w, (int)j->D);
    const int mb = j->micro_batch;
    float *p = NULL, *f = NULL;
    int64_t *idx = NULL;
    gv_status s = host_alloc((size_t)mb * (size_t)j->D * sizeof(float), (void **)&p);
    if (s == GV_OK) s = host_alloc((size_t)n * (size_t)j->F * sizeof(float), (void **)&f);
    if (s == GV_OK) s = host_alloc((size_t)mb * sizeof(int64_t), (void **)&idx);
    for (int64_t first = 0; s == GV_OK && first < n; first += mb) {
        const int64_t rows = n - first < mb ? n - first : mb;
        for (int64_t r = 0; r < rows; ++r) idx[r] = first + r;
        s = gv_dataset_batch_to_unit(split, idx, rows, p);
        if (s == GV_OK) s = gv_judge_run(j, c, p, 0, rows, NULL, f + first * j->F);
    }
    free(p);
    free(idx);
    if (s != GV_OK) {
        free(f);
        return s;
    }
    *features = f;
    *n_out = n;
    return GV_OK;
}

gv_status gv_eval_images(gv_judge *j, gv_ctx *c, const float *p, int on_device, int64_t n,
                         const int32_t *labels, const float *ref, int64_t n_ref,
                         gv_eval_result *out) {
    if (n < 2 || n_ref < 2 || !labels || !ref)
        return GV_ERROR(GV_ERR_INVALID, "eval: need >= 2 images with labels and >= 2 reference "
                        "feature rows (got %lld and %lld)", (long long)n, (long long)n_ref);
    float *probs = NULL, *feat = NULL;
    gv_status s = host_alloc((size_t)n * (size_t)j->K * sizeof(float), (void **)&probs);
    if (s == GV_OK) s = host_alloc((size_t)n * (size_t)j->F * sizeof(float), (void **)&feat);
    if (s == GV_OK) s = gv_judge_run(j, c, p, on_device, n, probs, feat);
    double correct = 0.0, prob_sum = 0.0;
    for (int64_t i = 0; s == GV_OK && i < n; ++i) {
        if (labels[i] < 0 || labels[i] >= j->K) {
            s = GV_ERROR(GV_ERR_INVALID, "eval: label %d of image %lld is outside [0, %d)",
                         labels[i], (long long)i, j->K);
            break;
        }
        const float *row = probs + i * j->K;
        int best = 0;
        for (int k = 1; k < j->K; ++k)
            if (row[k] > row[best]) best = k;
        correct += best == labels[i];
        prob_sum += row[labels[i]];
    }
    double fcd = 0.0;
    if (s == GV_OK) s = gv_frechet_distance_features(feat, (int)n, ref, (int)n_ref, j->F, &fcd);
    free(probs);
    free(feat);
    GV_TRY(s);
    out->n = n;
    out->classifier_accuracy = correct / (double)n;
    out->gold_prob = prob_sum / (double)n;
    out->fcd = fcd;
    return GV_OK;
}

/* ---- prompts --------------------------------------------------------------------------------- */

void gv_eval_prompts_free(char **lines, int count) {
    if (!lines) return;
    for (int i = 0; i < count; ++i) free(lines[i]);
    free(lines);
}

gv_status gv_eval_prompts_read(const char *path, char ***lines, int *count) {
    *lines = NULL;
    *count = 0;
    FILE *f = fopen(path, "r");
    if (!f) return GV_ERROR(GV_ERR_IO, "%s: cannot open the prompt file", path);
    char buf[1024];
    char **out = NULL;
    int n = 0, cap = 0;
    gv_status s = GV_OK;
    while (s == GV_OK && fgets(buf, sizeof buf, f)) {
        char *b = buf, *e = buf + strlen(buf);
        while (*b && isspace((unsigned char)*b)) ++b;
        while (e > b && isspace((unsigned char)e[-1])) *--e = '\0';
        if (!*b || *b == '#') continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            char **grown = realloc(out, (size_t)cap * sizeof *out);
            if (!grown) { s = GV_ERROR(GV_ERR_OOM, "%s: out of memory", path); break; }
            out = grown;
        }
        if (!(out[n] = strdup(b))) { s = GV_ERROR(GV_ERR_OOM, "%s: out of memory", path); break; }
        ++n;
    }
    if (s == GV_OK && ferror(f)) s = GV_ERROR(GV_ERR_IO, "%s: read error", path);
    fclose(f);
    if (s == GV_OK && n == 0) s = GV_ERROR(GV_ERR_INVALID, "%s: no prompts", path);
    if (s != GV_OK) {
        gv_eval_prompts_free(out, n);
        return s;
    }
    *lines = out;
    *count = n;
    return GV_OK;
}

/* ---- checkpoints ----------------------------------------------------------------------------- */

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Round robin: sample i gets prompt i mod P (ids (n, L), labels (n)). */
static gv_status encode_round_robin(const gv_image_model *m, char **prompts, int P, int n,
                                    int32_t *ids, int32_t *labels) {
    const int L = m->unet.cfg.max_prompt_len;
    for (int i = 0; i < n; ++i) {
        int label = -1;
        if (i < P) {
            GV_TRY(gv_image_model_encode_prompt(m, prompts[i], ids + (size_t)i * L, &label));
        } else {
            memcpy(ids + (size_t)i * L, ids + (size_t)(i % P) * L, (size_t)L * sizeof(int32_t));
            label = labels[i % P];
        }
        labels[i] = label;
    }
    return GV_OK;
}

typedef struct eval_state {
    gv_image_model unet, gold;
    gv_dataset ds;
    char **prompts;
    int n_prompts;
    int32_t *ids, *labels;
    float *x, *ref;
    gv_denoiser den;
    gv_judge judge;
} eval_state;

static void eval_state_free(eval_state *st, const gv_backend *be) {
    gv_judge_free(&st->judge);
    gv_denoiser_free(&st->den);
    if (st->x) be->free(st->x);
    free(st->ref);
    free(st->ids);
    free(st->labels);
    gv_eval_prompts_free(st->prompts, st->n_prompts);
    gv_dataset_free(&st->ds);
    gv_image_model_free(&st->gold);
    gv_image_model_free(&st->unet);
}

static gv_status eval_run(gv_ctx *c, const gv_eval_options *o, eval_state *st,
                          gv_eval_record *out) {
    const gv_backend *be = c->backend;
    GV_TRY(gv_image_model_load(o->checkpoint, be, o->use_ema, &st->unet));
    if (st->unet.kind != GV_MODEL_UNET)
        return GV_ERROR(GV_ERR_INVALID, "%s: not a UNet checkpoint", o->checkpoint);
    char path[4096];
    const char *gold = o->gold;
    if (!gold) {
        char rel[256];
        snprintf(rel, sizeof rel, "models/weights/%s-classifier-gold.h5", st->unet.dataset);
        GV_TRY(gv_root_path(rel, path, sizeof path));
        gold = path;
    }
    GV_TRY(gv_image_model_load(gold, be, 1, &st->gold));
    if (st->gold.kind != GV_MODEL_CLASSIFIER)
        return GV_ERROR(GV_ERR_INVALID, "%s: not a classifier checkpoint", gold);
    gv_dataset_kind kind;
    GV_TRY(gv_dataset_kind_by_name(st->unet.dataset, &kind));
    char ds_path[4096];
    const char *dsp = o->dataset_path;
    if (!dsp) {
        GV_TRY(gv_root_path(gv_dataset_kind_get(kind)->default_path, ds_path, sizeof ds_path));
        dsp = ds_path;
    }
    GV_TRY(gv_dataset_ensure(kind, dsp, NULL, NULL)); /* prepared on first use */
    GV_TRY(gv_dataset_load_as(dsp, kind, &st->ds));
    GV_TRY(gv_eval_prompts_read(o->prompts, &st->prompts, &st->n_prompts));

    const int n = o->n > 0 ? o->n : o->seeds_per_prompt * st->n_prompts;
    const int L = st->unet.unet.cfg.max_prompt_len;
    const gv_unet_config *uc = &st->unet.unet.cfg;
    const int64_t D = (int64_t)uc->in_channels * uc->height * uc->width;
    if (n < 2 || n > (1 << GV_RNG_SLOT_BITS))
        return GV_ERROR(GV_ERR_INVALID, "eval: n = %d samples, need 2..%d", n,
                        1 << GV_RNG_SLOT_BITS);
    GV_TRY(host_alloc((size_t)n * (size_t)L * sizeof(int32_t), (void **)&st->ids));
    GV_TRY(host_alloc((size_t)n * sizeof(int32_t), (void **)&st->labels));
    GV_TRY(encode_round_robin(&st->unet, st->prompts, st->n_prompts, n, st->ids, st->labels));
    GV_TRY(be->alloc((size_t)n * (size_t)D * sizeof(float), (void **)&st->x));
    GV_TRY(gv_denoiser_create(&st->den, c, &st->unet.unet, gv_image_model_theta(&st->unet),
                              &(gv_denoiser_options){.micro_batch = o->micro_batch,
                                                     .guidance = (float)o->guidance,
                                                     .null_id = st->unet.null_id}));
    GV_TRY(gv_judge_create(&st->judge, c, &st->gold.classifier, gv_image_model_theta(&st->gold),
                           o->micro_batch));
    int64_t n_ref = 0;
    GV_TRY(gv_judge_split_features(&st->judge, c, &st->ds.test, o->max_reference, &st->ref,
                                   &n_ref));

    const double t0 = now_seconds();
    gv_generate_options g = gv_generate_defaults();
    g.steps = o->steps;
    g.shift = o->shift;
    g.seed = o->seed;
    int64_t nfe = 0;
    float *p = NULL; /* (n, D) host: clamp((x + 1)/2, 0, 1), what the judge scores */
    GV_TRY(host_alloc((size_t)n * (size_t)D * sizeof(float), (void **)&p));
    gv_status s = gv_generate(&st->den, c, n, st->ids, &g, st->x, p, &nfe);
    if (s == GV_OK)
        s = gv_eval_images(&st->judge, c, p, 0, n, st->labels, st->ref, n_ref, &out->result);
    free(p);
    GV_TRY(s);
    out->seconds = now_seconds() - t0;
    memcpy(out->checkpoint, st->unet.hash, sizeof out->checkpoint);
    out->checkpoint[sizeof out->checkpoint - 1] = '\0';
    out->n = n;
    out->steps = o->steps;
    out->shift = o->shift;
    out->guidance = o->guidance;
    out->seed = o->seed;
    out->nfe = nfe;
    return GV_OK;
}

gv_status gv_eval_checkpoint(gv_ctx *c, const gv_eval_options *o, gv_eval_record *out) {
    memset(out, 0, sizeof *out);
    if (!o || !o->checkpoint || !o->prompts)
        return GV_ERROR(GV_ERR_INVALID, "eval: a checkpoint and an eval prompt file are required");
    eval_state st;
    memset(&st, 0, sizeof st);
    gv_status s = eval_run(c, o, &st, out);
    eval_state_free(&st, c->backend);
    return s;
}
