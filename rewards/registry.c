/* Built-in reward lookup and instances (DESIGN.md §7; the table itself is rewards/builtin.c).
 * Names resolve by scanning the table, never by a chain of comparisons (STYLE.md 12). A
 * `classifier` instance owns an arena sized by a measure pass at creation, so scoring allocates
 * nothing on the backend. A plugin instance (r->plugin) is dispatched to rewards/plugin.c here, so
 * every caller of gv_reward_score / gv_reward_destroy gets plugins for free. Deliberately not here:
 * the scorers (builtin.c) and the plugin loader (plugin.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grove/rewards.h"

gv_status gv_builtin_reward_find(const char *name, gv_builtin_reward_id *id) {
    for (int i = 0; i < GV_BUILTIN_REWARD_COUNT; ++i)
        if (gv_builtin_rewards[i].name && strcmp(gv_builtin_rewards[i].name, name) == 0) {
            *id = (gv_builtin_reward_id)i;
            return GV_OK;
        }
    char known[256] = "";
    for (int i = 0; i < GV_BUILTIN_REWARD_COUNT; ++i) {
        size_t used = strlen(known);
        snprintf(known + used, sizeof known - used, "%s%s", i ? ", " : "",
                 gv_builtin_rewards[i].name ? gv_builtin_rewards[i].name : "?");
    }
    return GV_ERROR(GV_ERR_CONFIG, "unknown built-in reward '%s' (known: %s)", name, known);
}

static gv_status classifier_open(gv_reward_classifier *k, const gv_image_model *model,
                                 int micro_batch, gv_ctx *ctx) {
    if (!model || model->kind != GV_MODEL_CLASSIFIER)
        return GV_ERROR(GV_ERR_CONFIG, "reward 'classifier' needs a classifier model");
    if (micro_batch <= 0)
        return GV_ERROR(GV_ERR_INVALID, "reward 'classifier': micro_batch %d must be positive",
                        micro_batch);
    const gv_classifier_config *cfg = &model->classifier.cfg;
    const size_t nx = (size_t)micro_batch * (size_t)cfg->in_channels * (size_t)cfg->height *
                      (size_t)cfg->width;
    const size_t nl = (size_t)micro_batch * (size_t)cfg->classes;
    k->model = model;
    k->micro_batch = micro_batch;
    gv_arena_init(&k->arena, ctx->backend, "classifier reward");
    /* Measure pass: the same allocation sequence as one scored micro-batch. */
    gv_classifier_saved saved;
    gv_arena_measure_begin(&k->arena);
    GV_TRY(gv_arena_floats(&k->arena, nx, &k->x));
    GV_TRY(gv_arena_floats(&k->arena, nl, &k->logits));
    GV_TRY(gv_classifier_forward(&model->classifier, ctx, &k->arena, gv_image_model_theta(model),
                                 micro_batch, k->x, k->logits, &saved));
    GV_TRY(gv_arena_reserve(&k->arena, gv_arena_measure_end(&k->arena)));
    GV_TRY(gv_arena_floats(&k->arena, nx, &k->x));
    GV_TRY(gv_arena_floats(&k->arena, nl, &k->logits));
    k->mark = gv_arena_mark(&k->arena);
    k->host_x = malloc(nx * sizeof(float));
    k->host_logits = malloc(nl * sizeof(float));
    if (!k->host_x || !k->host_logits)
        return GV_ERROR(GV_ERR_OOM, "reward 'classifier': cannot allocate host buffers");
    return GV_OK;
}

gv_status gv_reward_create(gv_reward *r, const char *name, double weight,
                           const gv_image_model *model, int micro_batch, gv_ctx *ctx) {
    memset(r, 0, sizeof *r);
    gv_builtin_reward_id id;
    GV_TRY(gv_builtin_reward_find(name, &id));
    r->id = id;
    r->name = gv_builtin_rewards[id].name;
    r->weight = weight;
    if (gv_builtin_rewards[id].needs_classifier) {
        gv_status st = classifier_open(&r->clf, model, micro_batch, ctx);
        if (st != GV_OK) {
            gv_reward_destroy(r);
            return st;
        }
    }
    return GV_OK;
}

gv_status gv_reward_set_score(gv_reward *r, gv_classifier_score score) {
    if (score != GV_CLASSIFIER_SCORE_PROB &&
        (r->plugin || r->id >= GV_BUILTIN_REWARD_COUNT ||
         !gv_builtin_rewards[r->id].needs_classifier))
        return GV_ERROR(GV_ERR_CONFIG, "reward '%s': 'score' applies to the classifier reward only",
                        r->name ? r->name : "?");
    if (score != GV_CLASSIFIER_SCORE_PROB && score != GV_CLASSIFIER_SCORE_LOG_PROB &&
        score != GV_CLASSIFIER_SCORE_CORRECT)
        return GV_ERROR(GV_ERR_CONFIG, "reward '%s': unknown score %d", r->name, (int)score);
    r->clf.score = score;
    return GV_OK;
}

void gv_reward_destroy(gv_reward *r) {
    if (r->plugin) gv_reward_plugin_close(r);
    if (r->clf.model) gv_arena_release(&r->clf.arena);
    free(r->clf.host_x);
    free(r->clf.host_logits);
    memset(&r->clf, 0, sizeof r->clf);
}

gv_status gv_reward_score(gv_reward *r, gv_ctx *ctx, const gv_reward_images *b, float *scores,
                          uint8_t *status) {
    if (b->tokens) {
        if (b->n <= 0 || b->seq_len <= 0)
            return GV_ERROR(GV_ERR_INVALID, "reward '%s': bad token batch (%d x %d)", r->name, b->n,
                            b->seq_len);
    } else if (b->n <= 0 || b->channels <= 0 || b->height <= 0 || b->width <= 0 || !b->pixels)
        return GV_ERROR(GV_ERR_INVALID, "reward '%s': bad batch (%d x %d x %d x %d)", r->name,
                        b->n, b->channels, b->height, b->width);
    if (r->plugin) return gv_reward_plugin_score(r, b, scores, status);
    if (gv_builtin_rewards[r->id].needs_classifier) {
        const gv_classifier_config *cfg = &r->clf.model->classifier.cfg;
        if (b->channels != cfg->in_channels || b->height != cfg->height || b->width != cfg->width)
            return GV_ERROR(GV_ERR_INVALID,
                            "reward '%s': images %dx%dx%d, the classifier takes %dx%dx%d",
                            r->name, b->channels, b->height, b->width, cfg->in_channels,
                            cfg->height, cfg->width);
    }
    return gv_builtin_rewards[r->id].score(r, ctx, b, scores, status);
}
