/* The built-in rewards (DESIGN.md §7) and their registry table: image statistics (ink, contrast,
 * symmetry), JPEG size at quality 95 (stb_image_write, written to memory), the classifier's
 * probability of the prompt's class (or its floored log), and the Sudoku score of a token batch. Host arithmetic in
 * fp64; the classifier runs through ops in fixed micro-batches. Deliberately not here: instance lifecycle and name lookup (registry.c),
 * plugins, weighting (advantage.c). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "grove/rewards.h"
#include "grove/sudoku.h"

/* The only stb_image_write implementation in grove; static, so no symbol can clash. */
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#endif
#include <stb/stb_image_write.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

#define GV_JPEG_QUALITY 95 /* DESIGN.md §7, as DDPO / Flow-GRPO */

static int64_t image_numel(const gv_reward_images *b) {
    return (int64_t)b->channels * b->height * b->width;
}

/* ---- image statistics (DESIGN.md §7) ---------------------------------------------------------- */

/* ink = mean(p) */
static gv_status score_ink(gv_reward *r, gv_ctx *ctx, const gv_reward_images *b, float *scores,
                           uint8_t *status) {
    (void)r, (void)ctx;
    const int64_t m = image_numel(b);
    for (int i = 0; i < b->n; ++i) {
        const float *p = b->pixels + (int64_t)i * m;
        double s = 0.0;
        for (int64_t e = 0; e < m; ++e) s += p[e];
        scores[i] = (float)(s / (double)m);
        status[i] = GV_REWARD_ITEM_OK;
    }
    return GV_OK;
}

/* contrast = std(p), population */
static gv_status score_contrast(gv_reward *r, gv_ctx *ctx, const gv_reward_images *b,
                                float *scores, uint8_t *status) {
    (void)r, (void)ctx;
    const int64_t m = image_numel(b);
    for (int i = 0; i < b->n; ++i) {
        const float *p = b->pixels + (int64_t)i * m;
        double s = 0.0, ss = 0.0;
        for (int64_t e = 0; e < m; ++e) s += p[e];
        const double mean = s / (double)m;
        for (int64_t e = 0; e < m; ++e) ss += (p[e] - mean) * (p[e] - mean);
        scores[i] = (float)sqrt(ss / (double)m);
        status[i] = GV_REWARD_ITEM_OK;
    }
    return GV_OK;
}

/* symmetry = 1 - mean |p(c, y, x) - p(c, y, W-1-x)| */
static gv_status score_symmetry(gv_reward *r, gv_ctx *ctx, const gv_reward_images *b,
                                float *scores, uint8_t *status) {
    (void)r, (void)ctx;
    const int64_t m = image_numel(b);
    const int W = b->width, rows = b->channels * b->height;
    for (int i = 0; i < b->n; ++i) {
        const float *p = b->pixels + (int64_t)i * m;
        double s = 0.0;
        for (int y = 0; y < rows; ++y)
            for (int x = 0; x < W; ++x)
                s += fabs((double)p[(int64_t)y * W + x] - (double)p[(int64_t)y * W + (W - 1 - x)]);
        scores[i] = (float)(1.0 - s / (double)m);
        status[i] = GV_REWARD_ITEM_OK;
    }
    return GV_OK;
}

/* ---- JPEG size (DESIGN.md §7) ------------------------------------------------------------------ */

typedef struct jpeg_counter {
    int64_t bytes;
} jpeg_counter;

static void count_bytes(void *context, void *data, int size) {
    (void)data;
    ((jpeg_counter *)context)->bytes += size;
}

gv_status gv_reward_jpeg_bytes(const gv_reward_images *b, int i, int quality, int64_t *bytes) {
    const int H = b->height, W = b->width, C = b->channels;
    const int64_t plane = (int64_t)H * W;
    unsigned char *gray = malloc((size_t)plane);
    if (!gray) return GV_ERROR(GV_ERR_OOM, "jpeg reward: cannot allocate a %dx%d image", H, W);
    const float *p = b->pixels + (int64_t)i * C * plane;
    for (int64_t e = 0; e < plane; ++e) {
        double v = 0.0;
        for (int c = 0; c < C; ++c) v += p[(int64_t)c * plane + e];
        v /= C;
        v = v < 0.0 ? 0.0 : v > 1.0 ? 1.0 : v; /* NaN stays NaN: caught below */
        gray[e] = (unsigned char)(isfinite(v) ? lround(v * 255.0) : 0);
    }
    jpeg_counter counter = {0};
    int ok = stbi_write_jpg_to_func(count_bytes, &counter, W, H, 1, gray, quality);
    free(gray);
    if (!ok || counter.bytes <= 0)
        return GV_ERROR(GV_ERR_BACKEND, "jpeg reward: stb_image_write failed on image %d (%dx%d)",
                        i, W, H);
    *bytes = counter.bytes;
    return GV_OK;
}

/* sign * kB of the quality-95 JPEG; an encoder failure or a non-finite pixel marks the item. */
static gv_status score_jpeg(const gv_reward_images *b, double sign, float *scores,
                            uint8_t *status) {
    const int64_t m = image_numel(b);
    for (int i = 0; i < b->n; ++i) {
        int finite = 1;
        for (int64_t e = 0; e < m && finite; ++e) finite = isfinite(b->pixels[(int64_t)i * m + e]);
        int64_t bytes = 0;
        if (!finite || gv_reward_jpeg_bytes(b, i, GV_JPEG_QUALITY, &bytes) != GV_OK) {
            gv_clear_error();
            scores[i] = 0.0f;
            status[i] = GV_REWARD_ITEM_FAILED;
            continue;
        }
        scores[i] = (float)(sign * (double)bytes / 1000.0);
        status[i] = GV_REWARD_ITEM_OK;
    }
    return GV_OK;
}

static gv_status score_jpeg_compressibility(gv_reward *r, gv_ctx *ctx, const gv_reward_images *b,
                                            float *scores, uint8_t *status) {
    (void)r, (void)ctx;
    return score_jpeg(b, -1.0, scores, status);
}

static gv_status score_jpeg_incompressibility(gv_reward *r, gv_ctx *ctx,
                                              const gv_reward_images *b, float *scores,
                                              uint8_t *status) {
    (void)r, (void)ctx;
    return score_jpeg(b, 1.0, scores, status);
}

/* ---- classifier (DESIGN.md §7: probability of the prompt's class) ------------------------------
   score prob: p = softmax(z)[label]; score log_prob: max(log p, log 1e-4), so one hopeless sample
   weighs at most -9.21 in its group's statistics; score correct: 1 when the label is the top class
   (the first largest logit, as the eval's accuracy counts a tie), else 0, so samples that are
   already right are not ranked among themselves. */

static gv_status score_classifier(gv_reward *r, gv_ctx *ctx, const gv_reward_images *b,
                                  float *scores, uint8_t *status) {
    gv_reward_classifier *k = &r->clf;
    const gv_classifier *m = &k->model->classifier;
    const int mb = k->micro_batch, classes = m->cfg.classes;
    const int64_t per = image_numel(b);
    const gv_backend *be = ctx->backend;
    for (int start = 0; start < b->n; start += mb) {
        const int rows = b->n - start < mb ? b->n - start : mb;
        /* ALGORITHMS.md §1: the model sees x = 2p - 1; padding rows are zero images. */
        for (int64_t e = 0; e < (int64_t)mb * per; ++e) {
            int64_t src = (int64_t)start * per + e;
            k->host_x[e] = e < (int64_t)rows * per ? 2.0f * b->pixels[src] - 1.0f : 0.0f;
        }
        GV_TRY(be->copy_from_host(k->x, k->host_x, (size_t)mb * (size_t)per * sizeof(float)));
        gv_arena_reset_to(&k->arena, k->mark);
        gv_classifier_saved saved;
        GV_TRY(gv_classifier_forward(m, ctx, &k->arena, gv_image_model_theta(k->model), mb, k->x,
                                     k->logits, &saved));
        GV_TRY(be->copy_to_host(k->host_logits, k->logits,
                                (size_t)mb * (size_t)classes * sizeof(float)));
        for (int j = 0; j < rows; ++j) {
            const int i = start + j;
            const float *z = k->host_logits + (int64_t)j * classes;
            const int32_t label = b->labels ? b->labels[i] : -1;
            double zmax = -INFINITY;
            int finite = 1, top = 0; /* top: the first class with the largest logit */
            for (int c = 0; c < classes; ++c) {
                finite &= isfinite(z[c]) != 0;
                if (z[c] > zmax) zmax = z[c], top = c;
            }
            if (label < 0 || label >= classes || !finite) {
                scores[i] = 0.0f;
                status[i] = GV_REWARD_ITEM_FAILED;
                continue;
            }
            status[i] = GV_REWARD_ITEM_OK;
            if (k->score == GV_CLASSIFIER_SCORE_CORRECT) {
                scores[i] = top == label ? 1.0f : 0.0f;
                continue;
            }
            double denom = 0.0; /* softmax in fp64, max-shifted */
            for (int c = 0; c < classes; ++c) denom += exp((double)z[c] - zmax);
            if (k->score == GV_CLASSIFIER_SCORE_LOG_PROB) { /* log-sum-exp, floored */
                const double lp = (double)z[label] - zmax - log(denom);
                const double floor_lp = log(GV_CLASSIFIER_LOG_PROB_FLOOR);
                scores[i] = (float)(lp > floor_lp ? lp : floor_lp);
            } else
                scores[i] = (float)(exp((double)z[label] - zmax) / denom);
        }
    }
    return GV_OK;
}

/* ---- sudoku (ALGORITHMS.md §10) ----------------------------------------------------------------- */

/* A token batch of S x S grids: puzzle = prompt (mask_id = blank), solution = reference. */
static gv_status score_sudoku(gv_reward *r, gv_ctx *ctx, const gv_reward_images *b, float *scores,
                              uint8_t *status) {
    (void)ctx;
    const int T = b->seq_len;
    const int S = T == 16 ? 4 : T == 81 ? 9 : 0;
    if (!b->tokens || !b->prompt || !b->reference || !S || b->mask_id != S)
        return GV_ERROR(GV_ERR_INVALID, "reward '%s': needs a token batch of 4x4 or 9x9 grids with "
                        "tokens, prompt and reference, [MASK] = S (got T = %d, mask_id %d)",
                        r->name, T, (int)b->mask_id);
    for (int i = 0; i < b->n; ++i) {
        uint8_t puzzle[GV_SUDOKU_MAX_CELLS], solution[GV_SUDOKU_MAX_CELLS], filled[GV_SUDOKU_MAX_CELLS];
        gv_sudoku_grid_from_tokens(b->prompt + (int64_t)i * T, S, puzzle);
        gv_sudoku_grid_from_tokens(b->reference + (int64_t)i * T, S, solution);
        gv_sudoku_grid_from_tokens(b->tokens + (int64_t)i * T, S, filled);
        int ok = gv_sudoku_is_solved(solution, S);
        scores[i] = ok ? gv_sudoku_score(puzzle, solution, filled, S) : 0.0f;
        status[i] = ok ? GV_REWARD_ITEM_OK : GV_REWARD_ITEM_FAILED; /* a broken reference */
    }
    return GV_OK;
}

/* ---- the registry table ------------------------------------------------------------------------ */

const gv_builtin_reward gv_builtin_rewards[GV_BUILTIN_REWARD_COUNT] = {
    [GV_REWARD_INK] = {"ink", "mean pixel value p in [0, 1]", 0, score_ink},
    [GV_REWARD_CONTRAST] = {"contrast", "population std of the pixels", 0, score_contrast},
    [GV_REWARD_SYMMETRY] = {"symmetry", "1 - mean |p - mirror_lr(p)|", 0, score_symmetry},
    [GV_REWARD_JPEG_COMPRESSIBILITY] = {"jpeg_compressibility",
                                        "-kB of the gray JPEG at quality 95", 0,
                                        score_jpeg_compressibility},
    [GV_REWARD_JPEG_INCOMPRESSIBILITY] = {"jpeg_incompressibility",
                                          "+kB of the gray JPEG at quality 95", 0,
                                          score_jpeg_incompressibility},
    [GV_REWARD_CLASSIFIER] = {"classifier",
                              "classifier probability of the prompt's class (or its log: score)", 1,
                              score_classifier},
    [GV_REWARD_SUDOKU] = {"sudoku", "fraction of Sudoku blanks correct, +1 when solved (tokens)", 0,
                          score_sudoku},
};
