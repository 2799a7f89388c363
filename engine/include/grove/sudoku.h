/* Sudoku: the masked-diffusion LM's task (DESIGN.md §6, ALGORITHMS.md §10) — solver, generator,
 * tokenization and the checks the `sudoku` reward and the solve rate use.
 *
 * Grids are S x S bytes in row-major order (S = 4 with 2x2 boxes, or 9 with 3x3 boxes): 0 = blank,
 * 1..S = a digit. A puzzle is generated from a Philox address (seed, puzzle index): a random full
 * grid (randomized backtracking), then cells are blanked in a random order, each blanking kept only
 * when the puzzle still has exactly one solution (gv_sudoku_count_solutions with limit 2), until the
 * target number of blanks is reached — the difficulty. Same (seed, index, target) -> same puzzle.
 *
 * Tokens: the model sees a sequence of T = S*S tokens, id = digit - 1 for a digit (0..S-1) and
 * GV_SUDOKU_MASK(S) = S for a blank / [MASK]; the vocabulary is V = S + 1. No row separators: the
 * transformer has a learned embedding per position, so rows are already distinguishable; the
 * layout stays "cells in place" (§10: givens are prompt positions, blanks completion positions).
 *
 * On disk a Sudoku set is a grove dataset file (dataset.h) of kind sudoku4 / sudoku9 whose "images"
 * are (N, 2, S, S) bytes: channel 0 the puzzle, channel 1 its solution; label 0 (one class
 * "sudoku"); source_index = the puzzle's generation index. The split (data/sudoku.c) is by seed: the
 * test puzzles come from GV_SUDOKU_TEST_SEED at fixed blank counts (test_per_class each), the train
 * puzzles from GV_SUDOKU_TRAIN_SEED with blank counts spread over a range, and a train puzzle equal
 * to a test puzzle is skipped, so the splits are disjoint.
 * Deliberately not here: the HDF5 file code (dataset.c), the model, the sampler, the reward. */
#ifndef GROVE_SUDOKU_H
#define GROVE_SUDOKU_H

#include <stddef.h>
#include <stdint.h>

#include "grove/dataset.h"
#include "grove/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define GV_SUDOKU_MAX_SIDE 9
#define GV_SUDOKU_MAX_CELLS (GV_SUDOKU_MAX_SIDE * GV_SUDOKU_MAX_SIDE)
#define GV_SUDOKU_MASK(S) (S)          /* the [MASK] / blank token id            */
#define GV_SUDOKU_VOCAB(S) ((S) + 1)   /* V: S digits + [MASK]                   */

#define GV_SUDOKU_TRAIN_SEED 20260801u
#define GV_SUDOKU_TEST_SEED 20260802u

/* 1 for S in {4, 9} (the box side is sqrt(S)). */
int gv_sudoku_side_ok(int S);

/* Solutions of `grid` (S*S, 0 = blank) counted up to `limit` (>= 1); the first one found is
   written to `solution` (S*S) when it is not NULL and the count is >= 1. A grid whose givens
   already clash has 0 solutions. */
int gv_sudoku_count_solutions(const uint8_t *grid, int S, int limit, uint8_t *solution);

/* 1 when `grid` (S*S) is a complete valid solution: every row, column and box holds 1..S. */
int gv_sudoku_is_solved(const uint8_t *grid, int S);

/* A puzzle with exactly one solution from (seed, index): `puzzle` and `solution` (S*S). Blanks
   cells until `blanks` are blank or no further cell can be blanked; returns the blanks reached
   (<= blanks), or -1 for a bad S / blanks. */
int gv_sudoku_generate(int S, uint32_t seed, uint32_t index, int blanks, uint8_t *puzzle,
                       uint8_t *solution);

/* Tokens (T = S*S) <-> grids. tokens_from_grid: digit d -> d-1, blank -> GV_SUDOKU_MASK(S).
   grid_from_tokens: id in [0, S) -> id+1, anything else -> 0 (blank). */
void gv_sudoku_tokens_from_grid(const uint8_t *grid, int S, int32_t *tokens);
void gv_sudoku_grid_from_tokens(const int32_t *tokens, int S, uint8_t *grid);
/* The text of a token grid, as reward plugins receive it (grove/reward.h texts and prompts): S
   lines of S characters, '1'..'9' for a digit and '.' for anything else ([MASK]), joined by '\n',
   NUL-terminated: text holds GV_SUDOKU_TEXT_BYTES(S). */
#define GV_SUDOKU_TEXT_BYTES(S) ((S) * ((S) + 1))
void gv_sudoku_text_from_tokens(const int32_t *tokens, int S, char *text);

/* The `sudoku` reward of one filled grid (ALGORITHMS.md §10): the fraction of the puzzle's blanks
   whose filled digit equals the solution's, plus 1 when `filled` is a valid solution that keeps
   every given. Range [0, 2]. A puzzle without blanks scores 1 (+1 when solved). */
float gv_sudoku_score(const uint8_t *puzzle, const uint8_t *solution, const uint8_t *filled, int S);

/* The fixed generation plan of a Sudoku dataset kind. */
typedef struct gv_sudoku_plan {
    int S;
    int64_t n_train;
    int train_blanks_min, train_blanks_max;  /* train targets: uniform over this range          */
    int test_blanks_first, test_blanks_step; /* test levels: first + k*step, k < test_levels    */
    int test_levels;
    int test_per_level;
} gv_sudoku_plan;

/* The plan of GV_DATASET_SUDOKU4 / GV_DATASET_SUDOKU9; NULL for any other kind. */
const gv_sudoku_plan *gv_sudoku_plan_of(gv_dataset_kind kind);

/* Generate a whole dataset from a plan (train then test, as described above). n_train_override
   > 0 replaces plan->n_train (tests); test_per_level_override likewise. */
gv_status gv_dataset_from_sudoku(gv_dataset_kind kind, int64_t n_train_override,
                                 int test_per_level_override, gv_dataset *ds);

/* Views into a Sudoku dataset row: puzzle / solution bytes (S*S each). */
static inline const uint8_t *gv_sudoku_puzzle(const gv_dataset_split *sp, int64_t row) {
    return sp->images + (size_t)row * 2 * (size_t)sp->h * (size_t)sp->w;
}
static inline const uint8_t *gv_sudoku_solution(const gv_dataset_split *sp, int64_t row) {
    return gv_sudoku_puzzle(sp, row) + (size_t)sp->h * (size_t)sp->w;
}
/* Blanks of a puzzle. */
int gv_sudoku_blanks(const uint8_t *puzzle, int S);

#ifdef __cplusplus
}
#endif
#endif
