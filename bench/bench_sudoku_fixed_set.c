/* bench_sudoku_fixed_set: writes a small generated Sudoku dataset (.h5, the format of data/sudoku*.h5)
 * for the "does θ-training learn at all?" check of bench/mdm/README.md (issue #8): with N training
 * puzzles from the generator's train stream (blanks spread evenly over its range) and a training
 * config restricted to one blank count (data.blanks_min = blanks_max), every iteration rolls out the
 * SAME few puzzles, so a rising rollout reward is learning, not the drawn puzzles' difficulty.
 * Prints the number of training puzzles per blank count. Not here: the training or the analysis
 * (grove train, the README's commands); the test split is 1 puzzle per level (unused there).
 *
 * usage: bench_sudoku_fixed_set OUT.h5 [N 400] [S 9 | 4] */
#include <stdio.h>
#include <stdlib.h>

#include "grove/dataset.h"
#include "grove/sudoku.h"

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s OUT.h5 [N 400] [S 9 | 4]\n", argv[0]);
        return 2;
    }
    const long n = argc > 2 ? strtol(argv[2], NULL, 10) : 400;
    const int S = argc > 3 ? atoi(argv[3]) : 9;
    if (n < 1 || (S != 4 && S != 9)) {
        fprintf(stderr, "%s: N must be >= 1 and S 4 or 9 (got %ld, %d)\n", argv[0], n, S);
        return 2;
    }
    gv_dataset ds;
    if (gv_dataset_from_sudoku(S == 9 ? GV_DATASET_SUDOKU9 : GV_DATASET_SUDOKU4, n, 1, &ds) != GV_OK) {
        fprintf(stderr, "%s\n", gv_last_error());
        return 1;
    }
    int count[82] = {0};
    for (int64_t r = 0; r < ds.train.n; ++r) count[gv_sudoku_blanks(gv_sudoku_puzzle(&ds.train, r), S)]++;
    printf("blanks,train_puzzles\n");
    for (int b = 0; b <= S * S; ++b)
        if (count[b]) printf("%d,%d\n", b, count[b]);
    const gv_status s = gv_dataset_save(&ds, argv[1]);
    gv_dataset_free(&ds);
    if (s != GV_OK) {
        fprintf(stderr, "%s\n", gv_last_error());
        return 1;
    }
    return 0;
}
