/* Sudoku generator, solver, tokens and score (grove/sudoku.h, data/sudoku.c) against independent
 * truth: a brute-force solution counter for 4x4 grids, the uniqueness and givens invariants of every
 * generated puzzle, determinism for a seed, the disjoint split by seed, the dataset file round trip
 * and hand-computed rewards. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "grove/sudoku.h"
#include "test_util.h"

/* 1 when digit d at `cell` clashes with no other filled cell of its row, column or 2x2 box. */
static int fits_4(const uint8_t *g, int cell, int d) {
    for (int i = 0; i < 16; ++i) {
        if (i == cell || g[i] != d) continue;
        int same_row = i / 4 == cell / 4, same_col = i % 4 == cell % 4;
        int same_box = (i / 8 == cell / 8) && ((i % 4) / 2 == (cell % 4) / 2);
        if (same_row || same_col || same_box) return 0;
    }
    return 1;
}

/* Cell-order enumeration of every completion of a 4x4 grid, pruned by the plain clash test above
   and checked in full by gv_sudoku_is_solved: independent of the solver's bitmasks and cell choice. */
static int brute_count_4(uint8_t *g, int cell) {
    if (cell == 16) return gv_sudoku_is_solved(g, 4);
    if (g[cell]) return fits_4(g, cell, g[cell]) ? brute_count_4(g, cell + 1) : 0;
    int n = 0;
    for (int d = 1; d <= 4; ++d) {
        if (!fits_4(g, cell, d)) continue;
        g[cell] = (uint8_t)d;
        n += brute_count_4(g, cell + 1);
    }
    g[cell] = 0;
    return n;
}

Test(sudoku, is_solved_checks_rows_columns_and_boxes) {
    uint8_t g[16] = {1, 2, 3, 4, 3, 4, 1, 2, 2, 1, 4, 3, 4, 3, 2, 1};
    cr_assert(gv_sudoku_is_solved(g, 4));
    uint8_t h[16];
    memcpy(h, g, 16);
    h[0] = 2, h[1] = 1; /* row still fine, columns 0/1 now clash with row 2 */
    cr_assert(!gv_sudoku_is_solved(h, 4));
    /* rows and columns valid but boxes not: a Latin square that is no Sudoku */
    uint8_t latin[16] = {1, 2, 3, 4, 2, 3, 4, 1, 3, 4, 1, 2, 4, 1, 2, 3};
    cr_assert(!gv_sudoku_is_solved(latin, 4));
    memcpy(h, g, 16);
    h[5] = 0;
    cr_assert(!gv_sudoku_is_solved(h, 4));
}

Test(sudoku, solver_count_matches_brute_force_on_4x4) {
    uint64_t st = 7;
    for (int trial = 0; trial < 200; ++trial) {
        uint8_t g[16] = {0}, sol[16];
        int givens = 2 + (int)(tu_rand_unit(&st) * 8);
        for (int k = 0; k < givens; ++k)
            g[(int)(tu_rand_unit(&st) * 16)] = (uint8_t)(1 + (int)(tu_rand_unit(&st) * 4));
        uint8_t copy[16];
        memcpy(copy, g, 16);
        int brute = brute_count_4(copy, 0);
        int full = gv_sudoku_count_solutions(g, 4, 1000, sol);
        cr_assert_eq(full, brute, "trial %d: solver %d, brute force %d", trial, full, brute);
        cr_assert_eq(gv_sudoku_count_solutions(g, 4, 2, NULL), brute < 2 ? brute : 2);
        if (full) {
            cr_assert(gv_sudoku_is_solved(sol, 4));
            for (int i = 0; i < 16; ++i) cr_assert(!g[i] || g[i] == sol[i]);
        }
    }
    uint8_t empty[16] = {0};
    cr_assert_eq(gv_sudoku_count_solutions(empty, 4, 1000, NULL), 288); /* known: 288 4x4 grids */
}

static void check_puzzle(const uint8_t *p, const uint8_t *s, int S, int blanks) {
    cr_assert_eq(gv_sudoku_blanks(p, S), blanks);
    cr_assert(gv_sudoku_is_solved(s, S));
    uint8_t found[GV_SUDOKU_MAX_CELLS];
    cr_assert_eq(gv_sudoku_count_solutions(p, S, 2, found), 1, "puzzle without a unique solution");
    cr_assert_eq(memcmp(found, s, (size_t)(S * S)), 0, "the unique solution is not the stored one");
    for (int i = 0; i < S * S; ++i) cr_assert(!p[i] || p[i] == s[i], "given %d disagrees", i);
}

Test(sudoku, generated_puzzles_are_unique_and_deterministic) {
    const int S[2] = {4, 9}, target[2] = {10, 50};
    for (int k = 0; k < 2; ++k)
        for (uint32_t idx = 0; idx < 30; ++idx) {
            uint8_t p[81], s[81], p2[81], s2[81];
            int got = gv_sudoku_generate(S[k], 99, idx, target[k], p, s);
            cr_assert(got > 0 && got <= target[k]);
            check_puzzle(p, s, S[k], got);
            cr_assert_eq(gv_sudoku_generate(S[k], 99, idx, target[k], p2, s2), got);
            cr_assert_eq(memcmp(p, p2, (size_t)(S[k] * S[k])), 0, "not deterministic");
            cr_assert_eq(memcmp(s, s2, (size_t)(S[k] * S[k])), 0);
        }
    uint8_t a[81], b[81], sa[81], sb[81];
    gv_sudoku_generate(9, 99, 0, 40, a, sa);
    gv_sudoku_generate(9, 100, 0, 40, b, sb);
    cr_assert_neq(memcmp(sa, sb, 81), 0, "two seeds gave the same grid");
}

Test(sudoku, dataset_split_is_disjoint_unique_and_round_trips) {
    gv_dataset ds, again;
    cr_assert_eq(gv_dataset_from_sudoku(GV_DATASET_SUDOKU4, 3000, 60, &ds), GV_OK, "%s", gv_last_error());
    const gv_sudoku_plan *pl = gv_sudoku_plan_of(GV_DATASET_SUDOKU4);
    cr_assert_eq(ds.test.n, 60 * pl->test_levels);
    for (int64_t r = 0; r < ds.test.n; ++r) {
        check_puzzle(gv_sudoku_puzzle(&ds.test, r), gv_sudoku_solution(&ds.test, r), 4,
                     pl->test_blanks_first + (int)(r / 60) * pl->test_blanks_step);
        for (int64_t q = 0; q < ds.train.n; ++q)
            cr_assert_neq(memcmp(gv_sudoku_puzzle(&ds.test, r), gv_sudoku_puzzle(&ds.train, q), 16), 0,
                          "test puzzle %lld is train puzzle %lld", (long long)r, (long long)q);
    }
    for (int64_t q = 0; q < ds.train.n; ++q) {
        const uint8_t *p = gv_sudoku_puzzle(&ds.train, q);
        int b = gv_sudoku_blanks(p, 4);
        cr_assert(b >= 1 && b <= pl->train_blanks_max);
        check_puzzle(p, gv_sudoku_solution(&ds.train, q), 4, b);
    }
    char dir[256], path[300];
    tu_make_tmpdir(dir, sizeof dir, "sudoku");
    snprintf(path, sizeof path, "%s/s4.h5", dir);
    cr_assert_eq(gv_dataset_save(&ds, path), GV_OK, "%s", gv_last_error());
    cr_assert_eq(gv_dataset_load_as(path, GV_DATASET_SUDOKU4, &again), GV_OK, "%s", gv_last_error());
    cr_assert_eq(again.n, ds.n);
    cr_assert_eq(memcmp(again.images, ds.images, (size_t)ds.n * 32), 0);
    gv_dataset_free(&again);
    cr_assert_eq(gv_dataset_load_as(path, GV_DATASET_SUDOKU9, &again) != GV_OK, 1);
    unlink(path);
    rmdir(dir);
    gv_dataset_free(&ds);
}

Test(sudoku, tokens_round_trip_and_mark_blanks) {
    uint8_t p[81], s[81], back[81];
    gv_sudoku_generate(9, 5, 3, 30, p, s);
    int32_t tok[81];
    gv_sudoku_tokens_from_grid(p, 9, tok);
    for (int i = 0; i < 81; ++i)
        cr_assert_eq(tok[i], p[i] ? p[i] - 1 : GV_SUDOKU_MASK(9));
    gv_sudoku_grid_from_tokens(tok, 9, back);
    cr_assert_eq(memcmp(back, p, 81), 0);
}

Test(sudoku, score_is_fraction_correct_plus_one_when_solved) {
    uint8_t sol[16] = {1, 2, 3, 4, 3, 4, 1, 2, 2, 1, 4, 3, 4, 3, 2, 1};
    uint8_t puz[16];
    memcpy(puz, sol, 16);
    puz[0] = puz[5] = puz[10] = puz[15] = 0; /* 4 blanks */
    cr_assert_float_eq(gv_sudoku_score(puz, sol, sol, 4), 2.0f, 1e-6f);
    uint8_t f[16];
    memcpy(f, sol, 16);
    f[0] = 2; /* one blank wrong (and the grid invalid) */
    cr_assert_float_eq(gv_sudoku_score(puz, sol, f, 4), 0.75f, 1e-6f);
    memcpy(f, puz, 16); /* nothing filled */
    cr_assert_float_eq(gv_sudoku_score(puz, sol, f, 4), 0.0f, 1e-6f);
    memcpy(f, sol, 16);
    f[1] = 9; /* a given overwritten: blanks right, no bonus */
    cr_assert_float_eq(gv_sudoku_score(puz, sol, f, 4), 1.0f, 1e-6f);
}
