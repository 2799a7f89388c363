/* Masked-diffusion models at run time: the mdt as the masked sampler's logits callback (an arena
 * sized once for a fixed number of rows), and the Sudoku evaluation (solve rate, reward) on
 * held-out puzzles with a given schedule (ALGORITHMS.md §10).
 *
 * Deliberately not here: training (engine/train/pretrain_mdt.c), the sampler itself
 * (samplers/masked.h), estimators and the GRPO side (issue #8, later). */
#ifndef GROVE_MDM_H
#define GROVE_MDM_H

#include <stdint.h>

#include "grove/arena.h"
#include "grove/backend.h"
#include "grove/dataset.h"
#include "grove/image_model.h"
#include "samplers/masked.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The model as a gv_masked_logits_fn: rows are run in chunks of max_rows. */
typedef struct gv_mdm_runner {
    const gv_image_model *model; /* kind GV_MODEL_MDT, borrowed          */
    const float *theta;          /* weights (default: model->params.values) */
    gv_ctx *ctx;
    int max_rows;
    gv_arena arena;
    int32_t *ids;                /* backend (max_rows, T)                 */
    float *logits;               /* backend (max_rows, T, V)              */
    size_t mark;
    gv_mdt_saved saved;
    int64_t forwards;            /* rows run so far (NFE counter)         */
    void *sampler_dev;           /* backend memory of the device-side sampler (gv_sudoku_evaluate),
                                    grow-only: a periodic eval allocates once */
    size_t sampler_dev_bytes;
} gv_mdm_runner;

gv_status gv_mdm_runner_init(gv_mdm_runner *r, const gv_image_model *model, gv_ctx *ctx,
                             int max_rows);
void gv_mdm_runner_free(gv_mdm_runner *r);
/* gv_masked_logits_fn over a gv_mdm_runner (user): tokens and logits in host memory (copied to and
   from the runner's backend), for gv_masked_sample. */
gv_status gv_mdm_logits(void *user, int rows, const int32_t *tokens, float *logits);
/* The same with tokens and logits in the runner's backend memory (no copies), for
   gv_masked_sample_on. */
gv_status gv_mdm_logits_device(void *user, int rows, const int32_t *tokens, float *logits);

/* Solve-rate evaluation of Sudoku puzzles `rows` (n) of `split`. */
typedef struct gv_sudoku_eval_options {
    int steps;            /* sampler steps; 0 = the largest blank count of the rows      */
    int batch;            /* puzzles per sampler call                                    */
    uint32_t seed;        /* Philox seed (stream GV_RNG_STREAM_EVAL)                     */
    const gv_masked_knobs *knobs; /* NULL = the hand-made defaults; arrays (n, steps)    */
    uint8_t *solved_each; /* (n) or NULL: 1 where puzzle i was solved (paired comparisons) */
    float *reward_each;   /* (n) or NULL: the `sudoku` reward of puzzle i                  */
} gv_sudoku_eval_options;

typedef struct gv_sudoku_eval_result {
    int64_t n, solved;
    double solve_rate, ci_lo, ci_hi; /* Wilson 95 % interval of the solve rate          */
    double mean_reward;              /* the `sudoku` reward, [0, 2]                       */
    double cell_accuracy;            /* blanks filled correctly / blanks                  */
    int steps;
    int64_t nfe;                     /* model rows run                                    */
    double seconds;
} gv_sudoku_eval_result;

gv_status gv_sudoku_evaluate(gv_mdm_runner *r, const gv_dataset_split *split, const int64_t *rows,
                             int64_t n, const gv_sudoku_eval_options *o, gv_sudoku_eval_result *out);

/* Rows of the test split at exactly `blanks` blanks (a Sudoku test level): *first, *count. */
gv_status gv_sudoku_test_level(const gv_dataset *ds, int blanks, int64_t *first, int64_t *count);

#ifdef __cplusplus
}
#endif
#endif
