/* Token batches for reward plugins (reward ABI v1 revision 2, rewards/plugin.c) through the example
 * plugin rewards/plugins/sudoku/sudoku_constraints.c, dlopen()ed from <build>/plugins:
 *   hand cases   4x4 grids whose scores are worked out by hand in the comments: the plugin's
 *                `reference` mode equals the built-in `sudoku` reward and the hand value, its
 *                `constraints` mode (units holding 1..S) equals its own hand value;
 *   texts        grove's decoded text (gv_sudoku_text_from_tokens) reads back in input=text mode
 *                to the same scores; a malformed text FAILS only its item;
 *   9x9          generated puzzles with random corruptions: reference mode == built-in, bit for bit;
 *   kinds        a tokens-only plugin refuses to load for image batches; an image-only plugin
 *                (ink_target, built against revision 1's fields only) refuses a token batch with
 *                one GV_ERR_PLUGIN line, and still scores images.
 *   reward-check `grove reward-check sudoku_constraints.so --dataset sudoku9` builds a token batch:
 *                in reference mode the printed mean is the hand count of its
 *                constructed completions (puzzle i: the blanks q with q mod 4 < i mod 4 wrong);
 *                so is bridge.so's with the python child rewards/plugins/bridge/sudoku_reward.py.
 * Not here: the loader's other errors (test_plugins.c) and the bridge's token requests
 * (test_bridge_tokens.c). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "grove/dataset.h"
#include "grove/paths.h"
#include "grove/reward.h"
#include "grove/rewards.h"
#include "grove/sudoku.h"
#include "mdm_test_util.h"

static const char *plugin_path(const char *name) {
    static char path[2][1024];
    static int k;
    char *p = path[k++ % 2];
    snprintf(p, 1024, "%s/plugins/%s.so", GROVE_BINARY_DIR, name);
    return p;
}

/* The 4x4 solution
 *   1 2 3 4 / 3 4 1 2 / 2 1 4 3 / 4 3 2 1
 * and its puzzle with 6 blanks at (0,0) (0,3) (1,1) (2,2) (3,0) (3,3). */
static const uint8_t solution4[16] = {1, 2, 3, 4, 3, 4, 1, 2, 2, 1, 4, 3, 4, 3, 2, 1};
static const int blanks4[6] = {0, 3, 5, 10, 12, 15};

enum { CASES = 4 };
/* Hand values per case: built-in / reference mode, constraints mode (12 units: 4 rows, 4 columns,
   4 boxes). */
static const float hand_builtin[CASES] = {
    2.0f,        /* A solved: 6/6 blanks + 1                                                     */
    4.0f / 6.0f, /* B (0,0)=4 (0,3)=1 swapped: 4/6 blanks right; columns 0, 3 and boxes 0, 1 break */
    5.0f / 6.0f, /* C (2,2) left [MASK]: 5/6 blanks; row 2, column 2, box 3 break                  */
    4.0f / 6.0f, /* D digits 1<->2 relabelled everywhere: (0,0) and (3,3) wrong, givens changed    */
};
static const float hand_constraints[CASES] = {
    2.0f,          /* A: 12/12 + 1                                                               */
    8.0f / 12.0f,  /* B: 12 - 4 units                                                            */
    9.0f / 12.0f,  /* C: 12 - 3 units                                                            */
    1.0f,          /* D: every unit holds, but givens were changed: no bonus                     */
};

/* tokens (CASES, 16), prompt (CASES, 16), reference (CASES, 16) of the four hand cases. */
static void hand_batch(int32_t *tok, int32_t *prompt, int32_t *ref) {
    uint8_t puzzle[16], filled[CASES][16];
    memcpy(puzzle, solution4, 16);
    for (int k = 0; k < 6; ++k) puzzle[blanks4[k]] = 0;
    for (int c = 0; c < CASES; ++c) memcpy(filled[c], solution4, 16);
    filled[1][0] = 4, filled[1][3] = 1;
    filled[2][10] = 0;
    for (int i = 0; i < 16; ++i) filled[3][i] = solution4[i] == 1 ? 2 : solution4[i] == 2 ? 1 : solution4[i];
    for (int c = 0; c < CASES; ++c) {
        gv_sudoku_tokens_from_grid(filled[c], 4, tok + c * 16);
        gv_sudoku_tokens_from_grid(puzzle, 4, prompt + c * 16);
        gv_sudoku_tokens_from_grid(solution4, 4, ref + c * 16);
    }
}

static void load(gv_reward *r, const char *config) {
    cr_assert_eq(gv_reward_load_plugin(r, plugin_path("sudoku_constraints"), config, 1.0,
                                       GROVE_SAMPLES_TOKENS), GV_OK, "%s", gv_last_error());
}

Test(sudoku_plugin, hand_cases_match_builtin_and_hand_values) {
    int32_t tok[CASES * 16], prompt[CASES * 16], ref[CASES * 16];
    hand_batch(tok, prompt, ref);
    char text[CASES][GV_SUDOKU_TEXT_BYTES(4)], ptext[CASES][GV_SUDOKU_TEXT_BYTES(4)];
    const char *texts[CASES], *prompts[CASES];
    for (int c = 0; c < CASES; ++c) {
        gv_sudoku_text_from_tokens(tok + c * 16, 4, text[c]);
        gv_sudoku_text_from_tokens(prompt + c * 16, 4, ptext[c]);
        texts[c] = text[c], prompts[c] = ptext[c];
    }
    cr_assert_str_eq(text[2], "1234\n3412\n21.3\n4321"); /* the decoded text, by hand */
    cr_assert_str_eq(ptext[0], ".23.\n3.12\n21.3\n.32.");
    const gv_reward_images b = {.n = CASES, .seq_len = 16, .tokens = tok, .prompt = prompt,
                                .reference = ref, .mask_id = GV_SUDOKU_MASK(4), .texts = texts,
                                .prompts = prompts};
    gv_reward builtin, refmode, cons, cons_text, ref_text;
    cr_assert_eq(gv_reward_create(&builtin, "sudoku", 1.0, NULL, 0, NULL), GV_OK);
    load(&refmode, "mode=reference\n");
    load(&cons, "");
    load(&cons_text, "input=text\n");
    load(&ref_text, "mode=reference\ninput=text\n");
    gv_reward *all[] = {&builtin, &refmode, &cons, &cons_text, &ref_text};
    float v[5][CASES];
    uint8_t st[5][CASES];
    for (int k = 0; k < 5; ++k) {
        cr_assert_eq(gv_reward_score(all[k], NULL, &b, v[k], st[k]), GV_OK, "%s", gv_last_error());
        for (int c = 0; c < CASES; ++c) cr_assert_eq(st[k][c], GV_REWARD_ITEM_OK, "reward %d case %d", k, c);
    }
    for (int c = 0; c < CASES; ++c) {
        cr_assert_float_eq(v[0][c], hand_builtin[c], 1e-6, "builtin case %d: %g", c, v[0][c]);
        cr_assert_eq(v[1][c], v[0][c], "reference mode case %d: %g vs builtin %g", c, v[1][c], v[0][c]);
        cr_assert_eq(v[4][c], v[0][c], "reference mode from text, case %d", c);
        cr_assert_float_eq(v[2][c], hand_constraints[c], 1e-6, "constraints case %d: %g", c, v[2][c]);
        cr_assert_eq(v[3][c], v[2][c], "constraints from text, case %d", c);
    }
    /* a malformed text fails only its own item */
    texts[1] = "12x4\n3412\n2143\n4321";
    cr_assert_eq(gv_reward_score(&cons_text, NULL, &b, v[3], st[3]), GV_OK);
    cr_assert_eq(st[3][1], GV_REWARD_ITEM_FAILED);
    cr_assert_eq(st[3][0], GV_REWARD_ITEM_OK);
    cr_assert_eq(v[3][0], 2.0f);
    for (int k = 0; k < 5; ++k) gv_reward_destroy(all[k]);
}

Test(sudoku_plugin, reference_mode_equals_builtin_on_9x9) {
    enum { N = 24 };
    int32_t tok[N * 81], prompt[N * 81], ref[N * 81];
    mdm_sudoku9_batch(N, 11u, 30, 10, 5, 7, tok, prompt, ref); /* i % 5 cells overwritten */
    const gv_reward_images b = {.n = N, .seq_len = 81, .tokens = tok, .prompt = prompt,
                                .reference = ref, .mask_id = GV_SUDOKU_MASK(9)};
    gv_reward builtin, refmode, cons;
    cr_assert_eq(gv_reward_create(&builtin, "sudoku", 1.0, NULL, 0, NULL), GV_OK);
    load(&refmode, "mode=reference\n");
    load(&cons, "mode=constraints\n");
    float a[N], p[N], c[N];
    uint8_t sa[N], sp[N], sc[N];
    cr_assert_eq(gv_reward_score(&builtin, NULL, &b, a, sa), GV_OK);
    cr_assert_eq(gv_reward_score(&refmode, NULL, &b, p, sp), GV_OK, "%s", gv_last_error());
    cr_assert_eq(gv_reward_score(&cons, NULL, &b, c, sc), GV_OK);
    int solved = 0;
    for (int i = 0; i < N; ++i) {
        cr_assert_eq(p[i], a[i], "puzzle %d: plugin %g, builtin %g", i, p[i], a[i]);
        /* solved under one <=> solved under the other (the bonus is the same rule) */
        cr_assert_eq(c[i] > 1.5f, a[i] > 1.5f, "puzzle %d: constraints %g, builtin %g", i, c[i], a[i]);
        solved += a[i] > 1.5f;
    }
    cr_assert(solved > 0 && solved < N, "the corruptions leave some solved, some not (%d)", solved);
    gv_reward_destroy(&builtin);
    gv_reward_destroy(&refmode);
    gv_reward_destroy(&cons);
}

Test(sudoku_plugin, batch_kinds) {
    gv_reward r;
    cr_assert_eq(gv_reward_load_plugin(&r, plugin_path("sudoku_constraints"), "", 1.0,
                                       GROVE_SAMPLES_IMAGE), GV_ERR_PLUGIN);
    cr_assert(strstr(gv_last_error(), "accepts tokens batches, grove needs image batches"), "%s",
              gv_last_error());
    /* an image-only plugin: loads and scores images as before, refuses a token batch */
    cr_assert_eq(gv_reward_load_plugin(&r, plugin_path("ink_target"), "target=0.5\n", 1.0,
                                       GROVE_SAMPLES_IMAGE), GV_OK, "%s", gv_last_error());
    const float px[4] = {0.0f, 0.25f, 0.5f, 1.0f};
    float v[1];
    uint8_t st[1];
    const gv_reward_images img = {.n = 1, .channels = 1, .height = 2, .width = 2, .pixels = px};
    cr_assert_eq(gv_reward_score(&r, NULL, &img, v, st), GV_OK, "%s", gv_last_error());
    cr_assert_float_eq(v[0], -fabsf(0.4375f - 0.5f), 1e-6); /* mean 1.75 / 4 */
    int32_t tok[16] = {0};
    const gv_reward_images b = {.n = 1, .seq_len = 16, .tokens = tok, .prompt = tok, .mask_id = 4};
    cr_assert_eq(gv_reward_score(&r, NULL, &b, v, st), GV_ERR_PLUGIN);
    cr_assert(strstr(gv_last_error(), "a token batch, but the plugin accepts only image batches"),
              "%s", gv_last_error());
    cr_assert_null(strchr(gv_last_error(), '\n'));
    gv_reward_destroy(&r);
}

/* reward-check's token batch, by hand: 8 puzzles of the first test level (b blanks each); puzzle
   i has the blanks q < b with q mod 4 < i mod 4 filled wrong, so in reference mode it scores 2
   (i mod 4 == 0: solved) or 1 - wrong_i / b (a wrong digit breaks the grid: no +1). */
Test(sudoku_plugin, reward_check_scores_a_token_batch) {
    char data[4096];
    cr_assert_eq(gv_root_path("data/sudoku9.h5", data, sizeof data), GV_OK, "%s", gv_last_error());
    /* the file reward-check reads (generated here on a fresh clone, ~17 s, as reward-check would) */
    cr_assert_eq(gv_dataset_ensure(GV_DATASET_SUDOKU9, data, NULL, NULL), GV_OK, "%s", gv_last_error());
    gv_dataset ds;
    cr_assert_eq(gv_dataset_load_as(data, GV_DATASET_SUDOKU9, &ds), GV_OK, "%s", gv_last_error());
    double want = 0.0;
    for (int i = 0; i < 8; ++i) {
        const int b = gv_sudoku_blanks(gv_sudoku_puzzle(&ds.test, i), 9);
        int wrong = 0;
        for (int q = 0; q < b; ++q) wrong += q % 4 < i % 4;
        want += (wrong ? 1.0 - (double)wrong / b : 2.0) / 8.0;
    }
    gv_dataset_free(&ds);
    /* the C plugin, and the python child of the subprocess bridge (rewards/plugins/bridge/
       sudoku_reward.py) recomputing the same reward */
    const struct { const char *so, *config; int deterministic; } cases[] = {
        {"sudoku_constraints", "mode: reference\n", 1},
        {"bridge", "command: \"python3 '" GROVE_SOURCE_DIR "/rewards/plugins/bridge/sudoku_reward.py'\"\n", 0}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; ++c) {
        char cfg[512], out[512], cmd[2048];
        snprintf(cfg, sizeof cfg, "/tmp/grove-reward-check-%d.yaml", (int)getpid());
        snprintf(out, sizeof out, "/tmp/grove-reward-check-%d.out", (int)getpid());
        FILE *f = fopen(cfg, "w");
        cr_assert(f);
        fputs(cases[c].config, f);
        fclose(f);
        snprintf(cmd, sizeof cmd, "'%s/grove' reward-check %s -n 8 --dataset sudoku9 --config %s >%s 2>&1",
                 GROVE_BINARY_DIR, plugin_path(cases[c].so), cfg, out);
        const int rc = system(cmd);
        f = fopen(out, "r");
        cr_assert(f);
        char text[8192] = "";
        const size_t n = fread(text, 1, sizeof text - 1, f);
        text[n] = 0;
        fclose(f);
        remove(cfg);
        remove(out);
        cr_assert_eq(rc, 0, "%s: %s", cases[c].so, text);
        cr_assert(strstr(text, "batch:   8 sudoku9 test puzzles (token batch, T = 81)"), "%s", text);
        cr_assert(strstr(text, "scores: 8 scored, 0 failed"), "%s", text);
        cr_assert(!cases[c].deterministic || strstr(text, "determinism: scored twice, bitwise equal"),
                  "%s", text);
        const char *m = strstr(text, "  mean ");
        cr_assert(m, "%s", text);
        const double mean = strtod(m + 7, NULL);
        cr_assert(fabs(mean - want) < 1e-5, "%s: printed mean %.6g, by hand %.6g\n%s", cases[c].so,
                  mean, want, text);
    }
    cr_assert(want > 0.5 && want < 2.0, "a spread batch: %g", want);
}
