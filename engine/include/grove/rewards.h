/* Built-in rewards (DESIGN.md §7): a registry table resolved by name, and reward instances.
 *
 * Built in (gv_builtin_rewards, one row per gv_builtin_reward_id):
 *   ink                     mean(p)
 *   contrast                std(p) (population)
 *   symmetry                1 - mean |p - mirror_lr(p)|
 *   jpeg_compressibility    -kB of the image as 8-bit gray JPEG at quality 95 (stb_image_write;
 *                           1 kB = 1000 bytes, as DDPO / Flow-GRPO)
 *   jpeg_incompressibility  +kB of the same JPEG
 *   classifier              softmax probability of the sample's label under a classifier model
 *                           (gv_image_model of kind classifier), run through ops in fixed
 *                           micro-batches (tail padded), on x = 2p - 1 (ALGORITHMS.md §1);
 *                           with score log_prob (gv_reward_set_score) max(log p, log 1e-4)
 *   sudoku                  fraction of the puzzle's blanks filled with the solution's digit, + 1
 *                           when the grid is solved (ALGORITHMS.md §10; range [0, 2]); a TOKEN
 *                           batch (tokens, prompt = the starting canvas, reference = the solution)
 * Images come on the host, (n, c, h, w) with p in [0, 1]; statistics rewards are over all
 * elements; a multi-channel image is made gray for JPEG by the channel mean. A per-item status of
 * GV_REWARD_ITEM_FAILED (JPEG encoder failure, a missing or out-of-range label, non-finite logits)
 * masks the sample in the advantage (advantage.h); it is never a silent zero.
 * Plugins (rewards/plugin.c) are another kind of gv_reward behind the SAME create / score /
 * destroy calls: gv_reward_load_plugin opens a shared object speaking the ABI of
 * rewards/include/grove/reward.h; gv_reward_score then converts the batch and calls it (a token
 * batch goes out as GROVE_SAMPLES_TOKENS with tokens, texts, prompt_tokens, reference_tokens and
 * mask_id; it needs a plugin loaded with kind GROVE_SAMPLES_TOKENS). A plugin's
 * score error returns GV_ERR_PLUGIN (the caller masks that batch and counts it, grpo.h). Pairwise
 * plugins also have gv_reward_compare and the Pref-GRPO win rate (rewards/pairwise.c).
 * Deliberately not here: the bundled example plugins (rewards/plugins), reward weighting and
 * normalization (advantage.h). */
#ifndef GROVE_REWARDS_H
#define GROVE_REWARDS_H

#include <stdint.h>

#include "grove/arena.h"
#include "grove/backend.h"
#include "grove/image_model.h"
#include "grove/status.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { GV_REWARD_ITEM_OK = 0, GV_REWARD_ITEM_FAILED = 1 };

typedef enum gv_builtin_reward_id {
    GV_REWARD_INK = 0,
    GV_REWARD_CONTRAST,
    GV_REWARD_SYMMETRY,
    GV_REWARD_JPEG_COMPRESSIBILITY,
    GV_REWARD_JPEG_INCOMPRESSIBILITY,
    GV_REWARD_CLASSIFIER,
    GV_REWARD_SUDOKU,
    GV_BUILTIN_REWARD_COUNT
} gv_builtin_reward_id;

/* A batch of host images, or of token sequences (masked-diffusion LM), to score. */
typedef struct gv_reward_images {
    int n, channels, height, width;
    const float *pixels;   /* host (n, c, h, w), p in [0, 1]                       */
    const int32_t *labels; /* host (n), class of each sample's prompt; NULL if none */
    /* For plugins (built-ins ignore them); NULL: "" prompts, group i per sample, no metadata. */
    const char *const *prompts;  /* host (n) prompt strings                                */
    const int32_t *groups;       /* host (n) group ids (samples of one prompt group share) */
    const char *const *metadata; /* host (n) JSON objects, or NULL                         */
    /* token batches (pixels NULL): */
    int seq_len;              /* T                                                        */
    const int32_t *tokens;    /* host (n, T) the sampled sequences                        */
    const int32_t *prompt;    /* host (n, T) the starting canvas (mask_id = completion)   */
    const int32_t *reference; /* host (n, T) the reference completion (Sudoku: solution)  */
    int32_t mask_id;
    const char *const *texts; /* host (n) decoded completions for plugins, or NULL
                                 (Sudoku: gv_sudoku_text; prompts then hold the puzzles')  */
} gv_reward_images;

typedef struct gv_reward gv_reward;

/* Fill scores (n) and status (n, GV_REWARD_ITEM_*). A non-OK return fails the whole batch. */
typedef gv_status (*gv_reward_score_fn)(gv_reward *r, gv_ctx *ctx, const gv_reward_images *b,
                                        float *scores, uint8_t *status);

typedef struct gv_builtin_reward {
    const char *name;       /* config name (`builtin:` in rewards)          */
    const char *help;       /* one line for listings                       */
    int needs_classifier;   /* 1: created with a classifier model          */
    gv_reward_score_fn score;
} gv_builtin_reward;

/* The registry, indexed by gv_builtin_reward_id (rewards/builtin.c). */
extern const gv_builtin_reward gv_builtin_rewards[GV_BUILTIN_REWARD_COUNT];

/* Resolve a name by scanning the table; GV_ERR_CONFIG naming the known rewards when absent. */
gv_status gv_builtin_reward_find(const char *name, gv_builtin_reward_id *id);

/* What the `classifier` reward returns for p = softmax(logits)[label] (a reward entry's `score:`).
   log_prob is floored at log(GV_CLASSIFIER_LOG_PROB_FLOOR) = -9.21; correct is 1 when the
   prompt's class is the top class (the first largest logit on a tie, as the eval's accuracy), else 0. */
typedef enum gv_classifier_score {
    GV_CLASSIFIER_SCORE_PROB = 0, /* p (the default)                        */
    GV_CLASSIFIER_SCORE_LOG_PROB, /* max(log p, log 1e-4), log-sum-exp in fp64 */
    GV_CLASSIFIER_SCORE_CORRECT   /* 1[label == first argmax_c z_c]          */
} gv_classifier_score;
#define GV_CLASSIFIER_LOG_PROB_FLOOR 1e-4

/* Classifier state of a `classifier` reward (backend buffers in its own arena). */
typedef struct gv_reward_classifier {
    const gv_image_model *model; /* borrowed; kind GV_MODEL_CLASSIFIER       */
    gv_classifier_score score;   /* p, floored log p or 0/1 (gv_reward_set_score) */
    int micro_batch;             /* rows per forward (tail padded)           */
    gv_arena arena;              /* input, logits and activations            */
    float *x, *logits;           /* backend (micro_batch, c, h, w), (micro_batch, classes) */
    size_t mark;                 /* arena mark after x and logits            */
    float *host_x, *host_logits; /* host copies of one micro-batch           */
} gv_reward_classifier;

typedef struct gv_reward_plugin_instance gv_reward_plugin_instance; /* rewards/plugin.c */

struct gv_reward {
    gv_builtin_reward_id id;     /* GV_BUILTIN_REWARD_COUNT for a plugin     */
    const char *name;            /* gv_builtin_rewards[id].name, or the plugin's name */
    double weight;
    gv_reward_classifier clf;    /* used by `classifier` only                */
    gv_reward_plugin_instance *plugin; /* non-NULL: a plugin reward           */
    int failures_in_a_row;       /* plugin batches failed consecutively (grpo.h policy) */
    int64_t failed_batches;      /* plugin batches failed in total           */
};

/* An instance of built-in `name` with `weight`. `classifier` needs `model` (a loaded classifier)
   and micro_batch > 0; it sizes its arena with a measure pass on ctx. The others ignore model. */
gv_status gv_reward_create(gv_reward *r, const char *name, double weight,
                           const gv_image_model *model, int micro_batch, gv_ctx *ctx);
void gv_reward_destroy(gv_reward *r);
/* Choose what a `classifier` reward returns (default GV_CLASSIFIER_SCORE_PROB, set by create).
   GV_ERR_CONFIG when r is not a classifier reward and `score` is not PROB. */
gv_status gv_reward_set_score(gv_reward *r, gv_classifier_score score);
/* scores (b->n), status (b->n): see gv_reward_score_fn. Checks the batch geometry. */
gv_status gv_reward_score(gv_reward *r, gv_ctx *ctx, const gv_reward_images *b, float *scores,
                          uint8_t *status);

/* ---- plugins (rewards/plugin.c; the ABI is rewards/include/grove/reward.h) ------------------- */

/* Open the plugin at `path` (dlopen RTLD_NOW | RTLD_LOCAL), check its ABI version, struct size and
   that its kinds include `kind` (GROVE_SAMPLES_IMAGE / _TOKENS), and create its state from `config`
   (flattened "path=value" lines, "" when none). Each failure is one GV_ERR_PLUGIN line naming the
   file: missing file, not a shared object (dlerror verbatim), missing symbol, another ABI version
   (both named), a too-small table, an unsupported kind, create failing (the plugin's message). */
gv_status gv_reward_load_plugin(gv_reward *r, const char *path, const char *config, double weight,
                                uint32_t kind);

/* What reward-check prints. */
typedef struct gv_reward_plugin_info {
    const char *path, *name, *version;
    uint32_t abi_version, struct_size, flags, kinds;
} gv_reward_plugin_info;
/* GV_ERR_INVALID when r is not a plugin. */
gv_status gv_reward_plugin_describe(const gv_reward *r, gv_reward_plugin_info *out);
/* 1 when r is a plugin with GROVE_REWARD_PAIRWISE and a compare function. */
int gv_reward_is_pairwise(const gv_reward *r);
/* 1 when r can score single samples (a built-in, or a plugin with `score`). */
int gv_reward_can_score(const gv_reward *r);

/* p_first (n) = P(a's sample i beats b's sample i) and status (n) through the plugin's compare.
   a and b have the same n and geometry. GV_ERR_PLUGIN when compare returns an error. */
gv_status gv_reward_compare(gv_reward *r, gv_ctx *ctx, const gv_reward_images *a,
                            const gv_reward_images *b, float *p_first, uint8_t *status);

/* Pref-GRPO win rates (ALGORITHMS.md §8, rewards/pairwise.c): within each group (b->groups; NULL =
   one group) every unordered pair (i, j) is judged once (both_orders: also (j, i), and
   s_ij = (p(i,j) + 1 - p(j,i)) / 2); each p is used as is (soft) or as [p > 0.5] + 0.5 [p == 0.5]
   (hard); a failed judgement (FAILED status, non-finite p, or a failed compare call) counts 0.5
   and is counted in *imputed. win[i] = sum_j s_ij / (G_i - 1); status[i] FAILED when its group has one
   sample. *judged counts the judgements (pairs x orders). */
typedef struct gv_win_rate_options {
    int hard;        /* threshold p at 0.5                                 */
    int both_orders; /* judge (a, b) and (b, a)                            */
} gv_win_rate_options;
gv_status gv_reward_win_rate(gv_reward *r, gv_ctx *ctx, const gv_reward_images *b,
                             const gv_win_rate_options *o, float *win, uint8_t *status,
                             int64_t *judged, int64_t *imputed);

/* Internal to rewards/: plugin lifecycle behind gv_reward_score / gv_reward_destroy. */
gv_status gv_reward_plugin_score(gv_reward *r, const gv_reward_images *b, float *scores,
                                 uint8_t *status);
void gv_reward_plugin_close(gv_reward *r);

/* JPEG size in bytes of image i of `b` as 8-bit gray at `quality` (exposed for tests and the
   gallery); GV_ERR_BACKEND when the encoder fails. */
gv_status gv_reward_jpeg_bytes(const gv_reward_images *b, int i, int quality, int64_t *bytes);

#ifdef __cplusplus
}
#endif
#endif
