/* A neural reward model as a plugin built on libgrove's public API (DESIGN.md §2, §7): it opens a
 * classifier checkpoint with gv_image_model_load and runs its forward through grove's op table
 * (gv_judge: fixed micro-batches on the CPU backend) — no network code of its own. This is how a
 * third party ships a learned reward on grove's kernels.
 * Score f(image): P(class | image) for config `class: k`; P(prompt's class | image) for `class:
 * prompt` (the prompt's class word looked up in the vocabulary `vocab`, as grove's own prompts are);
 * else (`class: -1`) the classifier's confidence max_c P(c | image).
 * Built a second time with GROVE_CLASSIFIER_JUDGE as classifier_judge.so: a pairwise judge for
 * Pref-GRPO (PAIRWISE, compare only) whose P(a better than b) = sigmoid((f(a) - f(b)) / temperature);
 * its `class` defaults to `prompt`.
 * Config: {checkpoint: path (default <grove root>/models/weights/mnist-classifier.h5; relative
 * paths are relative to the current directory), class: -1 | k | prompt, vocab: path (default
 * <grove root>/configs/prompts/mnist-vocab.txt), temperature: 0.05 (judge), micro_batch: 32,
 * threads: 1}.
 * Build (CMake does it): cc -shared -fPIC classifier_reward.c -I... -lgrove.
 * Deliberately not here: prompt templates (only the class word of a prompt matters). */
#include <grove/reward.h>

#include "../plugin_config.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grove/dataset.h"
#include "grove/evaluate.h"
#include "grove/image_model.h"
#include "grove/kernels_cpu.h"
#include "grove/paths.h"

typedef struct neural_reward {
    gv_image_model model;
    gv_ctx *ctx;
    gv_judge judge;
    int judge_ok, cls;  /* cls: a class index, -1 = confidence, CLASS_OF_PROMPT */
    gv_vocab vocab;     /* loaded for CLASS_OF_PROMPT */
    double temperature; /* judge only */
    float *probs;       /* (cap, K) host */
    float *f;           /* (cap) host: the judge's f(b) */
    int cap;
} neural_reward;

#define CLASS_OF_PROMPT (-2)

static void destroy(void *state) {
    neural_reward *r = state;
    if (!r) return;
    if (r->judge_ok) gv_judge_free(&r->judge);
    gv_image_model_free(&r->model);
    gv_vocab_free(&r->vocab);
    if (r->ctx) r->ctx->backend->ctx_destroy(r->ctx);
    free(r->probs);
    free(r->f);
    free(r);
}

static int fail(neural_reward *r, char *err, size_t err_len, const char *what) {
    snprintf(err, err_len, "%s: %s", what, gv_last_error());
    destroy(r);
    return 1;
}

static int create(const char *config, void **state, char *err, size_t err_len) {
    neural_reward *r = calloc(1, sizeof *r);
    if (!r) return snprintf(err, err_len, "out of memory"), 1;
    char path[4096], buf[64];
    if (!plugin_config_value(config, "checkpoint", path, sizeof path) &&
        gv_root_path("models/weights/mnist-classifier.h5", path, sizeof path) != GV_OK)
        return fail(r, err, err_len, "checkpoint");
#ifdef GROVE_CLASSIFIER_JUDGE
    r->cls = CLASS_OF_PROMPT;
#else
    r->cls = -1;
#endif
    r->temperature = 0.05;
    if (plugin_config_value(config, "temperature", buf, sizeof buf)) r->temperature = strtod(buf, NULL);
    if (!(r->temperature > 0.0)) {
        snprintf(err, err_len, "temperature: expected a positive number");
        return free(r), 1;
    }
    if (plugin_config_value(config, "class", buf, sizeof buf) && strcmp(buf, "prompt") == 0) {
        r->cls = CLASS_OF_PROMPT;
    } else if (plugin_config_value(config, "class", buf, sizeof buf)) {
        char *end;
        const long c = strtol(buf, &end, 10);
        if (end == buf || *end || c < -1 || c > 1000000) {
            snprintf(err, err_len, "class '%s': expected -1 (confidence), prompt or a class index",
                     buf);
            return free(r), 1;
        }
        r->cls = (int)c;
    }
    if (r->cls == CLASS_OF_PROMPT) {
        char vocab[4096];
        if (!plugin_config_value(config, "vocab", vocab, sizeof vocab) &&
            gv_root_path("configs/prompts/mnist-vocab.txt", vocab, sizeof vocab) != GV_OK)
            return fail(r, err, err_len, "vocab");
        if (gv_vocab_load(vocab, &r->vocab) != GV_OK) return fail(r, err, err_len, "vocab");
    }
    const int mb = plugin_config_value(config, "micro_batch", buf, sizeof buf) ? atoi(buf) : 32;
    const int threads = plugin_config_value(config, "threads", buf, sizeof buf) ? atoi(buf) : 1;
    const gv_backend *be = grove_backend_cpu();
    if (be->ctx_create(&(gv_ctx_options){.threads = threads, .use_fast = 1}, &r->ctx) != GV_OK)
        return fail(r, err, err_len, "context");
    if (gv_image_model_load(path, be, 0, &r->model) != GV_OK) return fail(r, err, err_len, path);
    if (r->model.kind != GV_MODEL_CLASSIFIER) {
        snprintf(err, err_len, "%s: a %s, not a classifier", path,
                 gv_model_kind_name(r->model.kind));
        return destroy(r), 1;
    }
    if (r->cls >= r->model.classifier.cfg.classes) {
        snprintf(err, err_len, "class %d: the classifier has %d classes", r->cls,
                 r->model.classifier.cfg.classes);
        return destroy(r), 1;
    }
    if (mb < 1 || gv_judge_create(&r->judge, r->ctx, &r->model.classifier,
                                  gv_image_model_theta(&r->model), mb) != GV_OK)
        return fail(r, err, err_len, "classifier forward");
    r->judge_ok = 1;
    *state = r;
    return 0;
}

/* The class a prompt names: its one word with a class label in the vocabulary, or -1. */
static int prompt_class(const gv_vocab *v, const char *prompt) {
    char word[256];
    int cls = -1;
    for (const char *p = prompt; p && *p;) {
        while (*p == ' ') ++p;
        size_t n = strcspn(p, " ");
        if (n > 0 && n < sizeof word) {
            memcpy(word, p, n), word[n] = 0;
            const int id = gv_vocab_find(v, word);
            if (id >= 0 && v->labels[id] >= 0) cls = v->labels[id];
        }
        p += n;
    }
    return cls;
}

/* f(image) for every sample of b into out; status FAILED where it is not finite or the prompt
   names no class. */
static int features(neural_reward *r, const grove_reward_batch *b, float *out, uint8_t *status,
                    char *err, size_t err_len) {
    const gv_classifier_config *c = &r->model.classifier.cfg;
    if (b->channels != c->in_channels || b->height != c->height || b->width != c->width)
        return snprintf(err, err_len, "images %dx%dx%d, the classifier takes %dx%dx%d",
                        b->channels, b->height, b->width, c->in_channels, c->height, c->width), 1;
    if (r->cls == CLASS_OF_PROMPT && !b->prompts)
        return snprintf(err, err_len, "class: prompt needs the batch's prompts"), 1;
    const int K = c->classes;
    if (b->n > r->cap) {
        float *p = realloc(r->probs, (size_t)b->n * (size_t)K * sizeof(float));
        if (!p) return snprintf(err, err_len, "out of memory"), 1;
        r->probs = p;
        float *f = realloc(r->f, (size_t)b->n * sizeof(float));
        if (!f) return snprintf(err, err_len, "out of memory"), 1;
        r->f = f, r->cap = b->n;
    }
    if (gv_judge_run(&r->judge, r->ctx, b->images, 0, b->n, r->probs, NULL) != GV_OK)
        return snprintf(err, err_len, "forward: %s", gv_last_error()), 1;
    for (int i = 0; i < b->n; ++i) {
        const float *p = r->probs + (long)i * K;
        float best = p[0];
        for (int k = 1; k < K; ++k) best = p[k] > best ? p[k] : best;
        const int cls = r->cls == CLASS_OF_PROMPT ? prompt_class(&r->vocab, b->prompts[i]) : r->cls;
        out[i] = r->cls == -1 ? best : cls >= 0 && cls < K ? p[cls] : NAN;
        status[i] = isfinite(out[i]) ? GROVE_REWARD_OK : GROVE_REWARD_FAILED;
    }
    return 0;
}

#ifndef GROVE_CLASSIFIER_JUDGE
static int score(void *state, const grove_reward_batch *b, float *scores, uint8_t *status,
                 char *err, size_t err_len) {
    return features(state, b, scores, status, err, err_len);
}
#else
static int compare(void *state, const grove_reward_batch *a, const grove_reward_batch *b,
                   float *p_first, uint8_t *status, char *err, size_t err_len) {
    neural_reward *r = state;
    if (a->n != b->n) return snprintf(err, err_len, "batches differ in size"), 1;
    uint8_t *status_b = malloc((size_t)b->n + 1);
    if (!status_b) return snprintf(err, err_len, "out of memory"), 1;
    int rc = features(r, b, p_first, status_b, err, err_len); /* p_first holds f(b) for now */
    if (rc == 0) {
        memcpy(r->f, p_first, (size_t)b->n * sizeof(float)); /* r->f keeps f(b) (features() sized it) */
        rc = features(r, a, p_first, status, err, err_len);
    }
    for (int i = 0; rc == 0 && i < a->n; ++i) {
        if (status[i] != GROVE_REWARD_OK || status_b[i] != GROVE_REWARD_OK) {
            p_first[i] = 0.5f, status[i] = GROVE_REWARD_FAILED;
            continue;
        }
        const double z = ((double)p_first[i] - (double)r->f[i]) / r->temperature;
        p_first[i] = (float)(1.0 / (1.0 + exp(-z)));
    }
    free(status_b);
    return rc;
}
#endif

GROVE_REWARD_EXPORT const grove_reward_plugin *grove_reward_plugin_v1(void) {
    static const grove_reward_plugin plugin = {
        .abi_version = GROVE_REWARD_ABI_VERSION, .struct_size = sizeof(grove_reward_plugin),
#ifdef GROVE_CLASSIFIER_JUDGE
        .name = "classifier_judge", .version = "1.0",
        .flags = GROVE_REWARD_PAIRWISE | GROVE_REWARD_DETERMINISTIC, .kinds = GROVE_SAMPLES_IMAGE,
        .create = create, .compare = compare, .destroy = destroy};
#else
        .name = "classifier_reward", .version = "1.1",
        .flags = GROVE_REWARD_DETERMINISTIC, .kinds = GROVE_SAMPLES_IMAGE,
        .create = create, .score = score, .destroy = destroy};
#endif
    return &plugin;
}
