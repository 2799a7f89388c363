/* Shared set-up of the masked-diffusion trainer tests (tests/cpu/test_mdm_*.c): a generated 4x4
 * Sudoku dataset and a tiny random-init mdt (1 layer, width 16) exported as a checkpoint, the two
 * files a tiny `grove train` config points at, a reader of a checkpoint group's tensors, and a batch
 * of generated 9x9 completions for the Sudoku reward tests (test_sudoku_plugin.c,
 * test_bridge_tokens.c). Header-only: each test executable includes it once.
 * Deliberately not here: the configs (each test writes the keys it is about). */
#ifndef GROVE_TESTS_MDM_TEST_UTIL_H
#define GROVE_TESTS_MDM_TEST_UTIL_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grove/checkpoint.h"
#include "grove/dataset.h"
#include "grove/image_model.h"
#include "grove/kernels_cpu.h"
#include "grove/sudoku.h"

/* data: gv_dataset_from_sudoku(GV_DATASET_SUDOKU4, n_train, test_per_level) saved as HDF5 (its
   train split checked to hold n_train puzzles); ckpt: the tiny mdt, parameters from seed 3. */
static inline void mdm_write_tiny_task(const char *data, const char *ckpt, int64_t n_train,
                                       int test_per_level) {
    gv_dataset ds;
    cr_assert_eq(gv_dataset_from_sudoku(GV_DATASET_SUDOKU4, n_train, test_per_level, &ds), GV_OK,
                 "%s", gv_last_error());
    cr_assert_eq(ds.train.n, n_train, "%lld training puzzles", (long long)ds.train.n);
    cr_assert_eq(gv_dataset_save(&ds, data), GV_OK, "%s", gv_last_error());
    gv_dataset_free(&ds);
    gv_mdt_config mc = {.vocab_size = GV_SUDOKU_VOCAB(4), .seq_len = 16, .layers = 1, .width = 16,
                        .heads = 2, .mlp_mult = 2, .norm_eps = 1e-5f, .zero_init_out = 0};
    gv_image_model m;
    cr_assert_eq(gv_image_model_create(&m, GV_MODEL_MDT, &mc, grove_backend_cpu(), 0), GV_OK);
    snprintf(m.dataset, sizeof m.dataset, "sudoku4");
    cr_assert_eq(gv_params_initialize(&m.params, 3), GV_OK);
    cr_assert_eq(gv_image_model_save_export(&m, m.params.values, NULL, ckpt), GV_OK, "%s",
                 gv_last_error());
    gv_image_model_free(&m);
}

/* Every tensor of `group` in the checkpoint at `path`, concatenated in listing order (*n floats;
   the caller frees): two runs' groups compare with one memcmp. */
static inline float *mdm_read_group(const char *path, const char *group, int64_t *n) {
    gv_ckpt_reader *r = NULL;
    cr_assert_eq(gv_ckpt_open(path, &r), GV_OK, "%s", gv_last_error());
    char **names = NULL;
    int count = 0;
    cr_assert_eq(gv_ckpt_list(r, group, &names, &count), GV_OK, "%s", gv_last_error());
    cr_assert(count > 0, "%s: nothing in %s", path, group);
    float *all = NULL;
    *n = 0;
    for (int i = 0; i < count; ++i) {
        gv_shape sh;
        cr_assert_eq(gv_ckpt_tensor_shape(r, group, names[i], &sh), GV_OK, "%s", gv_last_error());
        int64_t numel = 1;
        for (int d = 0; d < sh.rank; ++d) numel *= sh.d[d];
        all = realloc(all, (size_t)(*n + numel) * sizeof(float));
        cr_assert_eq(gv_ckpt_read_tensor(r, group, names[i], &sh, all + *n), GV_OK, "%s",
                     gv_last_error());
        *n += numel;
    }
    gv_ckpt_names_free(names, count);
    gv_ckpt_close(r);
    return all;
}

/* n generated 9x9 puzzles (gv_sudoku_generate with `seed`, puzzle i at blanks_lo + i % blanks_span)
   as a token batch: tok = the solution with i % wrong_mod cells overwritten by an LCG from lcg0
   (a digit, or 0 = left blank), prompt = the puzzle, ref = the solution; each (n, 81). */
static inline void mdm_sudoku9_batch(int n, uint32_t seed, int blanks_lo, int blanks_span, int wrong_mod,
                                     uint64_t lcg0, int32_t *tok, int32_t *prompt, int32_t *ref) {
    uint64_t lcg = lcg0;
    for (int i = 0; i < n; ++i) {
        uint8_t puzzle[81], solution[81], filled[81];
        cr_assert(gv_sudoku_generate(9, seed, (uint32_t)i, blanks_lo + i % blanks_span, puzzle, solution) > 0);
        memcpy(filled, solution, 81);
        for (int k = 0; k < i % wrong_mod; ++k) {
            lcg = lcg * 6364136223846793005ull + 1442695040888963407ull;
            filled[(lcg >> 33) % 81] = (uint8_t)((lcg >> 20) % 10);
        }
        gv_sudoku_tokens_from_grid(filled, 9, tok + i * 81);
        gv_sudoku_tokens_from_grid(puzzle, 9, prompt + i * 81);
        gv_sudoku_tokens_from_grid(solution, 9, ref + i * 81);
    }
}

#endif
