/* An example TOKEN-batch reward plugin (DESIGN.md §7, reward ABI v1 revision 2): scores Sudoku
 * completions of a masked-diffusion model from the batch's tokens or decoded texts, with nothing but
 * rewards/include/grove/reward.h and plugin_config.h.
 *
 * config (flattened `config:` lines):
 *   mode=constraints  (default) reference-free: the fraction of the 3·S units (rows, columns, boxes)
 *                     that hold every digit 1..S exactly once, + 1 when all of them do and every
 *                     given of the puzzle is kept. Range [0, 2]; a solved grid scores 2, as under
 *                     the built-in `sudoku` reward.
 *   mode=reference    the built-in `sudoku` reward (ALGORITHMS.md §10) recomputed from the batch:
 *                     the fraction of the puzzle's blanks equal to the reference (the solution) +
 *                     1 when the grid is a valid solution that keeps every given.
 *   input=tokens      (default) grids from tokens / prompt_tokens / reference_tokens (id d-1 for
 *                     digit d, anything outside 0..S-1 is a blank);
 *   input=text        grids from texts (the completion) and prompts (the puzzle): S lines of S
 *                     characters '1'..'9' or '.', as grove writes them; the reference (mode
 *                     reference) still comes from reference_tokens. A malformed text FAILS that
 *                     item (masked, never a silent zero).
 * S comes from the batch length (16: 4x4, 81: 9x9) or, for text, from the first line's length.
 * Build: cc -shared -fPIC -O2 -I<grove>/rewards/include sudoku_constraints.c -o sudoku_constraints.so
 * Deliberately not here: any solver (mode constraints needs none; mode reference is given the
 * solution), and images (kinds = tokens only). */
#include <grove/reward.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../plugin_config.h"

#define MAX_SIDE 9
#define MAX_CELLS (MAX_SIDE * MAX_SIDE)

typedef struct { int reference, text; } sudoku_plugin;

static int create(const char *config, void **state, char *err, size_t err_len) {
    char mode[32] = "constraints", input[32] = "tokens";
    plugin_config_value(config, "mode", mode, sizeof mode);
    plugin_config_value(config, "input", input, sizeof input);
    if (strcmp(mode, "constraints") && strcmp(mode, "reference"))
        return snprintf(err, err_len, "mode: '%s' is not constraints | reference", mode), 1;
    if (strcmp(input, "tokens") && strcmp(input, "text"))
        return snprintf(err, err_len, "input: '%s' is not tokens | text", input), 1;
    sudoku_plugin *s = malloc(sizeof *s);
    if (!s) return snprintf(err, err_len, "out of memory"), 1;
    s->reference = strcmp(mode, "reference") == 0;
    s->text = strcmp(input, "text") == 0;
    *state = s;
    return 0;
}

static void grid_from_tokens(const int32_t *tok, int S, unsigned char *g) {
    for (int i = 0; i < S * S; ++i) g[i] = (tok[i] >= 0 && tok[i] < S) ? (unsigned char)(tok[i] + 1) : 0;
}

/* S lines of S characters '1'..'0'+S or '.', joined by '\n' (a trailing '\n' is allowed); 0 when
   the text is anything else. */
static int grid_from_text(const char *t, int S, unsigned char *g) {
    if (!t) return 0;
    for (int r = 0; r < S; ++r) {
        for (int k = 0; k < S; ++k, ++t) {
            if (*t == '.') g[r * S + k] = 0;
            else if (*t >= '1' && *t < '1' + S) g[r * S + k] = (unsigned char)(*t - '0');
            else return 0;
        }
        if (*t == '\n') ++t;
        else if (r + 1 < S || *t) return 0;
    }
    return *t == '\0';
}

static int side_of_text(const char *t) {
    if (!t) return 0;
    const size_t len = strcspn(t, "\n");
    return len == 4 || len == 9 ? (int)len : 0;
}

/* Units (rows, columns, boxes) holding every digit 1..S exactly once. */
static int units_holding(const unsigned char *g, int S) {
    const int B = S == 9 ? 3 : 2;
    int holding = 0;
    for (int u = 0; u < S; ++u)
        for (int kind = 0; kind < 3; ++kind) {
            int seen = 0, ok = 1;
            for (int k = 0; k < S; ++k) {
                const int cell = kind == 0 ? u * S + k
                               : kind == 1 ? k * S + u
                                           : ((u / B) * B + k / B) * S + (u % B) * B + k % B;
                const int d = g[cell];
                if (d < 1 || d > S || (seen >> d) & 1) ok = 0;
                else seen |= 1 << d;
            }
            holding += ok;
        }
    return holding;
}

static int score(void *state, const grove_reward_batch *b, float *scores, uint8_t *status,
                 char *err, size_t err_len) {
    const sudoku_plugin *s = state;
    if (b->kind != GROVE_SAMPLES_TOKENS) return snprintf(err, err_len, "not a token batch"), 1;
    if (!GROVE_REWARD_BATCH_HAS(b, mask_id))
        return snprintf(err, err_len, "this grove's batch has no prompt_tokens (reward ABI v1 "
                        "revision 2 needed)"), 1;
    if (s->reference && !b->reference_tokens)
        return snprintf(err, err_len, "mode=reference needs reference_tokens (the solution)"), 1;
    if (s->text && (!b->texts || !b->prompts))
        return snprintf(err, err_len, "input=text needs texts and prompts"), 1;
    if (!s->text && (!b->tokens || !b->prompt_tokens))
        return snprintf(err, err_len, "input=tokens needs tokens and prompt_tokens"), 1;
    const int S = s->text ? side_of_text(b->texts[0]) : b->length == 16 ? 4 : b->length == 81 ? 9 : 0;
    if (!S || b->length != S * S)
        return snprintf(err, err_len, "not a 4x4 or 9x9 grid (length %d)", (int)b->length), 1;
    for (int i = 0; i < b->n; ++i) {
        unsigned char puzzle[MAX_CELLS], filled[MAX_CELLS], solution[MAX_CELLS];
        const long off = (long)i * b->length;
        status[i] = GROVE_REWARD_FAILED;
        if (s->text) {
            if (!grid_from_text(b->texts[i], S, filled) || !grid_from_text(b->prompts[i], S, puzzle))
                continue;
        } else {
            grid_from_tokens(b->tokens + off, S, filled);
            grid_from_tokens(b->prompt_tokens + off, S, puzzle);
        }
        int givens_kept = 1, blanks = 0, correct = 0;
        if (s->reference) grid_from_tokens(b->reference_tokens + off, S, solution);
        for (int c = 0; c < S * S; ++c) {
            if (puzzle[c]) givens_kept &= filled[c] == puzzle[c];
            else if (s->reference) ++blanks, correct += filled[c] == solution[c];
        }
        const int holding = units_holding(filled, S);
        const float bonus = givens_kept && holding == 3 * S ? 1.0f : 0.0f;
        scores[i] = (s->reference ? (blanks ? (float)correct / (float)blanks : 1.0f)
                                  : (float)holding / (float)(3 * S)) + bonus;
        status[i] = GROVE_REWARD_OK;
    }
    return 0;
}

static void destroy(void *state) { free(state); }

GROVE_REWARD_EXPORT const grove_reward_plugin *grove_reward_plugin_v1(void) {
    static const grove_reward_plugin plugin = {
        .abi_version = GROVE_REWARD_ABI_VERSION, .struct_size = sizeof(grove_reward_plugin),
        .name = "sudoku_constraints", .version = "1.0",
        .flags = GROVE_REWARD_DETERMINISTIC | GROVE_REWARD_THREAD_SAFE,
        .kinds = GROVE_SAMPLES_TOKENS,
        .create = create, .score = score, .destroy = destroy};
    return &plugin;
}
