/* Shared set-up of the masked-diffusion trainer tests (tests/cpu/test_mdm_*.c): a generated 4x4
 * Sudoku dataset and a tiny random-init mdt (1 layer, width 16) exported as a checkpoint, the two
 * files a tiny `grove train` config points at, and a reader of a checkpoint group's tensors. Header-only: each test executable includes it once.
 * Deliberately not here: the configs (each test writes the keys it is about). */
#ifndef GROVE_TESTS_MDM_TEST_UTIL_H
#define GROVE_TESTS_MDM_TEST_UTIL_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

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

#endif
