/* Sudoku puzzles for the masked-diffusion LM (grove/sudoku.h): a bitmask backtracking solver that
 * counts solutions up to a limit (most-constrained cell first), the seeded generator (random full
 * grid, then uniqueness-preserving blanking), tokenization, the reward's score of a filled grid and
 * the fixed plans of the sudoku4 / sudoku9 dataset kinds with their split by seed.
 *
 * Every random number is Philox at key (seed, GV_RNG_STREAM_DATA), address (iteration = puzzle
 * index, purpose GV_RNG_PURPOSE_SHUFFLE), consumed in order; the seeds differ from MNIST's split
 * seed, so no address is shared. This file does not write HDF5 (dataset.c does). */
#include "grove/sudoku.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grove/rng.h"

/* ---- geometry --------------------------------------------------------------------------------- */

int gv_sudoku_side_ok(int S) { return S == 4 || S == 9; }

static int box_side(int S) { return S == 4 ? 2 : 3; }
static int box_of(int S, int r, int c) { return (r / box_side(S)) * box_side(S) + c / box_side(S); }

/* ---- solver ------------------------------------------------------------------------------------ */

typedef struct solver {
    int S, T;
    uint8_t g[GV_SUDOKU_MAX_CELLS];
    uint16_t row[GV_SUDOKU_MAX_SIDE], col[GV_SUDOKU_MAX_SIDE], box[GV_SUDOKU_MAX_SIDE];
    int limit, found;
    uint8_t first[GV_SUDOKU_MAX_CELLS];
    /* randomized fill: candidate order from the RNG when rng_key != NULL */
    const uint32_t *rng_key;
    const uint32_t *rng_ctr;
    uint64_t *rng_next;
} solver;

static int popcount16(unsigned v) {
    int n = 0;
    for (; v; v &= v - 1) ++n;
    return n;
}

/* Load a grid; 0 when two givens clash. */
static int solver_load(solver *sv, const uint8_t *grid, int S) {
    memset(sv, 0, sizeof *sv);
    sv->S = S;
    sv->T = S * S;
    for (int i = 0; i < sv->T; ++i) {
        int d = grid[i];
        sv->g[i] = (uint8_t)d;
        if (!d) continue;
        if (d > S) return 0;
        int r = i / S, c = i % S, b = box_of(S, r, c);
        uint16_t bit = (uint16_t)(1u << d);
        if ((sv->row[r] | sv->col[c] | sv->box[b]) & bit) return 0;
        sv->row[r] |= bit, sv->col[c] |= bit, sv->box[b] |= bit;
    }
    return 1;
}

static void solve(solver *sv) {
    const int S = sv->S;
    const unsigned all = ((1u << (S + 1)) - 2u); /* bits 1..S */
    int best = -1, best_n = S + 1;
    unsigned best_cand = 0;
    for (int i = 0; i < sv->T; ++i) {
        if (sv->g[i]) continue;
        int r = i / S, c = i % S;
        unsigned cand = all & ~(unsigned)(sv->row[r] | sv->col[c] | sv->box[box_of(S, r, c)]);
        int n = popcount16(cand);
        if (n < best_n) {
            best = i, best_n = n, best_cand = cand;
            if (n <= 1) break;
        }
    }
    if (best < 0) { /* complete */
        if (sv->found++ == 0) memcpy(sv->first, sv->g, (size_t)sv->T);
        return;
    }
    if (best_n == 0) return;
    int digits[GV_SUDOKU_MAX_SIDE], nd = 0;
    for (int d = 1; d <= S; ++d)
        if (best_cand & (1u << d)) digits[nd++] = d;
    if (sv->rng_key) /* Fisher-Yates over the candidates */
        for (int k = nd - 1; k > 0; --k) {
            int j = (int)(gv_rng_u32_at(sv->rng_key, sv->rng_ctr, (*sv->rng_next)++) % (uint32_t)(k + 1));
            int t = digits[k];
            digits[k] = digits[j], digits[j] = t;
        }
    const int r = best / S, c = best % S, b = box_of(S, r, c);
    for (int k = 0; k < nd && sv->found < sv->limit; ++k) {
        uint16_t bit = (uint16_t)(1u << digits[k]);
        sv->g[best] = (uint8_t)digits[k];
        sv->row[r] |= bit, sv->col[c] |= bit, sv->box[b] |= bit;
        solve(sv);
        sv->row[r] &= (uint16_t)~bit, sv->col[c] &= (uint16_t)~bit, sv->box[b] &= (uint16_t)~bit;
    }
    sv->g[best] = 0;
}

int gv_sudoku_count_solutions(const uint8_t *grid, int S, int limit, uint8_t *solution) {
    if (!gv_sudoku_side_ok(S) || limit < 1) return 0;
    solver sv;
    if (!solver_load(&sv, grid, S)) return 0;
    sv.limit = limit;
    solve(&sv);
    if (solution && sv.found) memcpy(solution, sv.first, (size_t)sv.T);
    return sv.found;
}

int gv_sudoku_is_solved(const uint8_t *grid, int S) {
    if (!gv_sudoku_side_ok(S)) return 0;
    for (int i = 0; i < S * S; ++i)
        if (grid[i] < 1 || grid[i] > S) return 0;
    solver sv;
    return solver_load(&sv, grid, S); /* full and no clash == valid */
}

int gv_sudoku_blanks(const uint8_t *puzzle, int S) {
    int n = 0;
    for (int i = 0; i < S * S; ++i) n += puzzle[i] == 0;
    return n;
}

/* ---- generator --------------------------------------------------------------------------------- */

int gv_sudoku_generate(int S, uint32_t seed, uint32_t index, int blanks, uint8_t *puzzle,
                       uint8_t *solution) {
    if (!gv_sudoku_side_ok(S) || blanks < 0 || blanks > S * S) return -1;
    const int T = S * S;
    uint32_t key[2], ctr[3];
    gv_rng_key(seed, GV_RNG_STREAM_DATA, key);
    const gv_rng_addr addr = {.iteration = index, .purpose = GV_RNG_PURPOSE_SHUFFLE};
    if (gv_rng_addr_pack(&addr, ctr) != GV_OK) return -1;
    uint64_t next = 0;
    /* a random full grid: the solver with a shuffled candidate order, first solution */
    solver sv;
    uint8_t empty[GV_SUDOKU_MAX_CELLS] = {0};
    solver_load(&sv, empty, S);
    sv.limit = 1;
    sv.rng_key = key, sv.rng_ctr = ctr, sv.rng_next = &next;
    solve(&sv);
    memcpy(solution, sv.first, (size_t)T);
    memcpy(puzzle, solution, (size_t)T);
    /* blank cells in a random order while the solution stays unique */
    int order[GV_SUDOKU_MAX_CELLS];
    for (int i = 0; i < T; ++i) order[i] = i;
    for (int k = T - 1; k > 0; --k) {
        int j = (int)(gv_rng_u32_at(key, ctr, next++) % (uint32_t)(k + 1));
        int t = order[k];
        order[k] = order[j], order[j] = t;
    }
    int done = 0;
    for (int k = 0; k < T && done < blanks; ++k) {
        const int cell = order[k];
        const uint8_t keep = puzzle[cell];
        puzzle[cell] = 0;
        if (gv_sudoku_count_solutions(puzzle, S, 2, NULL) == 1) ++done;
        else puzzle[cell] = keep;
    }
    return done;
}

/* ---- tokens and score ------------------------------------------------------------------------- */

void gv_sudoku_tokens_from_grid(const uint8_t *grid, int S, int32_t *tokens) {
    for (int i = 0; i < S * S; ++i)
        tokens[i] = (grid[i] >= 1 && grid[i] <= S) ? (int32_t)grid[i] - 1 : GV_SUDOKU_MASK(S);
}

void gv_sudoku_grid_from_tokens(const int32_t *tokens, int S, uint8_t *grid) {
    for (int i = 0; i < S * S; ++i)
        grid[i] = (tokens[i] >= 0 && tokens[i] < S) ? (uint8_t)(tokens[i] + 1) : 0;
}

void gv_sudoku_text_from_tokens(const int32_t *tokens, int S, char *text) {
    char *c = text;
    for (int r = 0; r < S; ++r) {
        for (int k = 0; k < S; ++k) {
            const int32_t id = tokens[r * S + k];
            *c++ = (id >= 0 && id < S) ? (char)('1' + id) : '.';
        }
        if (r + 1 < S) *c++ = '\n';
    }
    *c = '\0';
}

/* ALGORITHMS.md §10, Sudoku reward: fraction of blanks correct, + 1 when solved. */
float gv_sudoku_score(const uint8_t *puzzle, const uint8_t *solution, const uint8_t *filled, int S) {
    int blanks = 0, correct = 0, givens_kept = 1;
    for (int i = 0; i < S * S; ++i) {
        if (puzzle[i] == 0) {
            ++blanks;
            correct += filled[i] == solution[i];
        } else if (filled[i] != puzzle[i]) {
            givens_kept = 0;
        }
    }
    float frac = blanks ? (float)correct / (float)blanks : 1.0f;
    return frac + ((givens_kept && gv_sudoku_is_solved(filled, S)) ? 1.0f : 0.0f);
}

/* ---- the dataset kinds ------------------------------------------------------------------------ */

static const gv_sudoku_plan plan_4 = {.S = 4, .n_train = 20000, .train_blanks_min = 4,
                                      .train_blanks_max = 12, .test_blanks_first = 6,
                                      .test_blanks_step = 2, .test_levels = 3,
                                      .test_per_level = 512};
static const gv_sudoku_plan plan_9 = {.S = 9, .n_train = 100000, .train_blanks_min = 10,
                                      .train_blanks_max = 58, .test_blanks_first = 15,
                                      .test_blanks_step = 5, .test_levels = 9,
                                      .test_per_level = 512};

const gv_sudoku_plan *gv_sudoku_plan_of(gv_dataset_kind kind) {
    return kind == GV_DATASET_SUDOKU4 ? &plan_4 : kind == GV_DATASET_SUDOKU9 ? &plan_9 : NULL;
}

/* A small set of puzzles (open addressing on an FNV-1a hash; rows compared byte by byte). */
typedef struct puzzle_set {
    int64_t cap;
    int64_t *slot; /* row + 1, 0 = empty */
    const uint8_t *rows;
    size_t stride;
    int T;
} puzzle_set;

static uint64_t fnv(const uint8_t *p, int n) {
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

static int64_t set_find(const puzzle_set *s, const uint8_t *p, int insert_row) {
    int64_t i = (int64_t)(fnv(p, s->T) % (uint64_t)s->cap);
    for (;; i = (i + 1) % s->cap) {
        if (!s->slot[i]) {
            if (insert_row >= 0) s->slot[i] = insert_row + 1;
            return -1;
        }
        if (memcmp(s->rows + (size_t)(s->slot[i] - 1) * s->stride, p, (size_t)s->T) == 0)
            return s->slot[i] - 1;
    }
}

gv_status gv_dataset_from_sudoku(gv_dataset_kind kind, int64_t n_train_override,
                                 int test_per_level_override, gv_dataset *ds) {
    const gv_sudoku_plan *pl = gv_sudoku_plan_of(kind);
    if (!pl) return GV_ERROR(GV_ERR_INVALID, "sudoku: dataset kind %d is not a Sudoku kind", (int)kind);
    const int S = pl->S, T = S * S;
    const int64_t n_train = n_train_override > 0 ? n_train_override : pl->n_train;
    const int per = test_per_level_override > 0 ? test_per_level_override : pl->test_per_level;
    const int64_t n_test = (int64_t)per * pl->test_levels;
    GV_TRY(gv_dataset_alloc(ds, kind, n_train, n_test, 2, S, S));
    ds->split_seed = GV_SUDOKU_TEST_SEED;
    ds->test_per_class = per;
    ds->n_classes = 1;
    snprintf(ds->class_names[0], GV_DATASET_NAME_MAX, "sudoku");
    snprintf(ds->source, sizeof ds->source, "grove generator (data/sudoku.c), %dx%d, unique solutions",
             S, S);
    snprintf(ds->split, sizeof ds->split,
             "by seed: test %d per blank count %d..%d step %d from seed %u; train %lld with blanks "
             "U[%d,%d] from seed %u, test puzzles skipped",
             per, pl->test_blanks_first,
             pl->test_blanks_first + (pl->test_levels - 1) * pl->test_blanks_step,
             pl->test_blanks_step, GV_SUDOKU_TEST_SEED, (long long)n_train, pl->train_blanks_min,
             pl->train_blanks_max, GV_SUDOKU_TRAIN_SEED);
    const size_t stride = 2 * (size_t)T;
    /* test: exact blank counts; a grid that cannot reach its level is retried with the next index */
    uint32_t index = 0;
    for (int64_t r = 0; r < n_test; ++r) {
        const int target = pl->test_blanks_first + (int)(r / per) * pl->test_blanks_step;
        uint8_t *row = (uint8_t *)ds->test.images + (size_t)r * stride;
        int got;
        do {
            got = gv_sudoku_generate(S, GV_SUDOKU_TEST_SEED, index++, target, row, row + T);
        } while (got != target && index < (1u << 30));
        if (got != target) {
            gv_dataset_free(ds);
            return GV_ERROR(GV_ERR_INTERNAL, "sudoku: cannot reach %d blanks", target);
        }
        ((int32_t *)ds->test.labels)[r] = 0;
        ((int32_t *)ds->test.source_index)[r] = (int32_t)(index - 1);
    }
    puzzle_set set = {.cap = 4 * n_test + 1, .rows = ds->test.images, .stride = stride, .T = T};
    set.slot = calloc((size_t)set.cap, sizeof *set.slot);
    if (!set.slot) {
        gv_dataset_free(ds);
        return GV_ERROR(GV_ERR_OOM, "sudoku: out of memory");
    }
    for (int64_t r = 0; r < n_test; ++r)
        set_find(&set, ds->test.images + (size_t)r * stride, (int)r);
    /* train: targets spread uniformly over the range (a deterministic function of the index) */
    index = 0;
    const int span = pl->train_blanks_max - pl->train_blanks_min + 1;
    for (int64_t r = 0; r < n_train; ++r) {
        uint8_t *row = (uint8_t *)ds->train.images + (size_t)r * stride;
        for (;;) {
            const int target = pl->train_blanks_min + (int)(index % (uint32_t)span);
            gv_sudoku_generate(S, GV_SUDOKU_TRAIN_SEED, index++, target, row, row + T);
            if (set_find(&set, row, -1) < 0) break; /* not a test puzzle */
        }
        ((int32_t *)ds->train.labels)[r] = 0;
        ((int32_t *)ds->train.source_index)[r] = (int32_t)(index - 1);
    }
    free(set.slot);
    return GV_OK;
}

gv_status gv_dataset_prepare_sudoku(gv_dataset_kind kind, const char *out_h5) {
    gv_dataset ds;
    GV_TRY(gv_dataset_from_sudoku(kind, 0, 0, &ds));
    gv_status s = gv_dataset_save(&ds, out_h5);
    gv_dataset_free(&ds);
    return s;
}
