/* A neural reward model as a plugin built on libgrove's public API (DESIGN.md §2, §7): it opens a
 * classifier checkpoint with gv_image_model_load and runs its forward through grove's op table
 * (gv_judge: fixed micro-batches on the CPU backend) — no network code of its own. This is how a
 * third party ships a learned reward on grove's kernels.
 * Score: P(class | image) for config `class: k`, else the classifier's confidence max_c P(c | image).
 * Config: {checkpoint: path (default <grove root>/models/weights/mnist-classifier.h5; relative
 * paths are relative to the current directory), class: -1, micro_batch: 32, threads: 1}.
 * Build (CMake does it): cc -shared -fPIC classifier_reward.c -I... -lgrove.
 * Deliberately not here: prompt parsing (the built-in `classifier` reward reads the prompt's class). */
#include <grove/reward.h>

#include "../plugin_config.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grove/evaluate.h"
#include "grove/image_model.h"
#include "grove/kernels_cpu.h"
#include "grove/paths.h"

typedef struct neural_reward {
    gv_image_model model;
    gv_ctx *ctx;
    gv_judge judge;
    int judge_ok, cls;
    float *probs;     /* (cap, K) host */
    int cap;
} neural_reward;

static void destroy(void *state) {
    neural_reward *r = state;
    if (!r) return;
    if (r->judge_ok) gv_judge_free(&r->judge);
    gv_image_model_free(&r->model);
    if (r->ctx) r->ctx->backend->ctx_destroy(r->ctx);
    free(r->probs);
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
    r->cls = -1; /* -1: the class of each sample's prompt */
    if (plugin_config_value(config, "class", buf, sizeof buf)) {
        char *end;
        const long c = strtol(buf, &end, 10);
        if (end == buf || *end || c < -1 || c > 1000000) {
            snprintf(err, err_len, "class '%s': expected -1 (the prompt's class) or a class index",
                     buf);
            return free(r), 1;
        }
        r->cls = (int)c;
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

static int score(void *state, const grove_reward_batch *b, float *scores, uint8_t *status,
                 char *err, size_t err_len) {
    neural_reward *r = state;
    const gv_classifier_config *c = &r->model.classifier.cfg;
    if (b->channels != c->in_channels || b->height != c->height || b->width != c->width)
        return snprintf(err, err_len, "images %dx%dx%d, the classifier takes %dx%dx%d",
                        b->channels, b->height, b->width, c->in_channels, c->height, c->width), 1;
    const int K = c->classes;
    if (b->n > r->cap) {
        float *p = realloc(r->probs, (size_t)b->n * (size_t)K * sizeof(float));
        if (!p) return snprintf(err, err_len, "out of memory"), 1;
        r->probs = p, r->cap = b->n;
    }
    if (gv_judge_run(&r->judge, r->ctx, b->images, 0, b->n, r->probs, NULL) != GV_OK)
        return snprintf(err, err_len, "forward: %s", gv_last_error()), 1;
    for (int i = 0; i < b->n; ++i) {
        const float *p = r->probs + (long)i * K;
        float best = p[0];
        for (int k = 1; k < K; ++k) best = p[k] > best ? p[k] : best;
        scores[i] = r->cls >= 0 ? p[r->cls] : best;
        status[i] = isfinite(scores[i]) ? GROVE_REWARD_OK : GROVE_REWARD_FAILED;
    }
    return 0;
}

GROVE_REWARD_EXPORT const grove_reward_plugin *grove_reward_plugin_v1(void) {
    static const grove_reward_plugin plugin = {
        .abi_version = GROVE_REWARD_ABI_VERSION, .struct_size = sizeof(grove_reward_plugin),
        .name = "classifier_reward", .version = "1.0",
        .flags = GROVE_REWARD_DETERMINISTIC, .kinds = GROVE_SAMPLES_IMAGE,
        .create = create, .score = score, .destroy = destroy};
    return &plugin;
}
