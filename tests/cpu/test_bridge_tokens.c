/* Token batches through the subprocess bridge (rewards/plugins/bridge/bridge.c, README "Bridge
 * protocol (v1)"), with real python3 children:
 *   sudoku      the example child rewards/plugins/bridge/sudoku_reward.py scores 4x4 hand cases to
 *               their hand values and to the built-in `sudoku` reward bit for bit (a broken
 *               reference FAILS its item in both; a second valid solution gets the +1 with a
 *               fraction below 1, where float32's rounding order shows), and generated 9x9 puzzles
 *               with random corruptions bit for bit like the built-in;
 *   kinds       the child's hello decides: an image-only child sent a token batch, and the token
 *               child sent an image batch, each fail with one line naming both kinds (and the
 *               child still scores its own kind afterwards), also when a restarted child narrows
 *               its kinds; a hello naming no kind grove sends is refused at create;
 *               bridge_judge.so (image only) does not load for token batches, and its compare
 *               refuses them when called directly;
 *   round trip  tests/plugins/bridge_child.py echo re-dumps each request as python parsed it:
 *               read back with the bridge's own JSON reader (json.c compiled in, as
 *               test_bridge_json.c does), every field equals the batch (tokens, texts with escapes
 *               and UTF-8, null entries, prompt_tokens, reference_tokens or null, mask_id, groups,
 *               metadata) in the documented key order; a batch of reward ABI v1 revision 1 (a
 *               smaller struct_size, bridge.so called directly) carries no prompt_tokens,
 *               reference_tokens or mask_id; an image request keeps its keys and order.
 * Not here: reward-check on a token batch through the bridge (test_sudoku_plugin.c), training with
 * it (test_mdm_train.c), the bridge's failure handling (test_plugins.c). */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../rewards/plugins/bridge/json.c"
#include "grove/reward.h"
#include "grove/rewards.h"
#include "grove/rundir.h"
#include "grove/sudoku.h"
#include "mdm_test_util.h"

static const char *bridge_path(const char *so) {
    static char path[1024];
    snprintf(path, sizeof path, "%s/plugins/%s", GROVE_BINARY_DIR, so);
    return path;
}

/* The plugin table of <build>/plugins/<so>, dlopen()ed here (the handle in *handle). */
static const grove_reward_plugin *open_table(const char *so, void **handle) {
    *handle = dlopen(bridge_path(so), RTLD_NOW | RTLD_LOCAL);
    cr_assert_not_null(*handle, "%s", dlerror());
    void *sym = dlsym(*handle, "grove_reward_plugin_v1");
    cr_assert_not_null(sym);
    const grove_reward_plugin *(*get)(void);
    memcpy(&get, &sym, sizeof get); /* POSIX: dlsym result to a function pointer */
    return get();
}

/* bridge.so (or `so`) running `python3 <source>/<script> <args>` for batches of `kind`. */
static gv_status open_child(gv_reward *r, const char *so, const char *script, const char *args,
                            uint32_t kind) {
    char config[2048];
    snprintf(config, sizeof config, "command=python3 '%s/%s'%s%s\ntimeout_s=20\nretries=0\n",
             GROVE_SOURCE_DIR, script, *args ? " " : "", args);
    return gv_reward_load_plugin(r, bridge_path(so), config, 1.0, kind);
}

/* bridge.so with tests/plugins/bridge_child.py in a mode that keeps state across its restarts in
   `state` (/tmp/grove-test-bridge-<mode>-<pid>, removed first), retries 1. */
static void open_stateful_child(gv_reward *r, const char *mode, uint32_t kind, char *state, size_t cap) {
    snprintf(state, cap, "/tmp/grove-test-bridge-%s-%d", mode, (int)getpid());
    remove(state);
    char config[2048];
    snprintf(config, sizeof config, "command=python3 '%s/tests/plugins/bridge_child.py' %s '%s'\nretries=1\n",
             GROVE_SOURCE_DIR, mode, state);
    cr_assert_eq(gv_reward_load_plugin(r, bridge_path("bridge.so"), config, 1.0, kind), GV_OK, "%s",
                 gv_last_error());
}

static void open_sudoku_child(gv_reward *r) {
    cr_assert_eq(open_child(r, "bridge.so", "rewards/plugins/bridge/sudoku_reward.py", "",
                            GROVE_SAMPLES_TOKENS), GV_OK, "%s", gv_last_error());
}

/* ---- the example child against the built-in ---------------------------------------------------- */

/* The 4x4 solution 1 2 3 4 / 3 4 1 2 / 2 1 4 3 / 4 3 2 1 and its puzzle with 5 blanks at cells
   0, 5, 6, 10, 15. Case F has another puzzle: only cells 1, 7, 8, 13 given, so it also has the
   solution 3 2 1 4 / 1 4 3 2 / 2 1 4 3 / 4 3 2 1 (cells 0, 2, 4, 6 swapped 1 <-> 3). */
static const uint8_t solution4[16] = {1, 2, 3, 4, 3, 4, 1, 2, 2, 1, 4, 3, 4, 3, 2, 1};
static const int blanks4[5] = {0, 5, 6, 10, 15};
enum { CASES = 7 };
/* Hand values of the built-in `sudoku` reward; case E's reference is broken, so E fails. */
static const float hand[CASES] = {
    2.0f,        /* A solved: 5/5 blanks + 1                                                     */
    3.0f / 5.0f, /* B blanks 5 and 6 (4, 1) swapped: 3/5 blanks, column 1 breaks                 */
    4.0f / 5.0f, /* C cell 10 left [MASK]: 4/5 blanks, not a solution                             */
    4.0f / 5.0f, /* D cell 15 right, but the given at cell 1 overwritten: 4/5 (cell 0 wrong too)   */
    0.0f,        /* E the reference has two 1s in row 0: FAILED                                   */
    /* F the other solution: 8/12 blanks equal the reference, and it is a valid grid keeping the
       givens: + 1. In float32, (float)(8/12) + 1 rounds differently from 8/12 + 1 rounded once:
       the child must add in float32 to match. */
    8.0f / 12.0f + 1.0f,
    /* G F's other solution again, but cell 0 is given as 1 there: a valid grid that changes a given,
       so no bonus — 8 of the 11 blanks (2, 4, 6 wrong) */
    8.0f / 11.0f,
};

static void hand_batch(int32_t *tok, int32_t *prompt, int32_t *ref) {
    uint8_t puzzle[CASES][16], filled[CASES][16], reference[CASES][16];
    for (int c = 0; c < CASES; ++c) {
        memcpy(puzzle[c], solution4, 16), memcpy(filled[c], solution4, 16);
        memcpy(reference[c], solution4, 16);
        for (int k = 0; k < 5; ++k) puzzle[c][blanks4[k]] = 0;
    }
    filled[1][5] = 1, filled[1][6] = 4;   /* B: 4 1 swapped */
    filled[2][10] = 0;                    /* C: left blank  */
    filled[3][0] = 2, filled[3][1] = 1;   /* D: blank 0 wrong, given 1 changed */
    reference[4][1] = 1;                  /* E: row 0 = 1 1 3 4 */
    for (int k = 0; k < 16; ++k) puzzle[5][k] = k == 1 || k == 7 || k == 8 || k == 13 ? solution4[k] : 0;
    filled[5][0] = 3, filled[5][2] = 1, filled[5][4] = 1, filled[5][6] = 3; /* F */
    memcpy(puzzle[6], puzzle[5], 16), memcpy(filled[6], filled[5], 16);     /* G */
    puzzle[6][0] = solution4[0];
    for (int c = 0; c < CASES; ++c) {
        gv_sudoku_tokens_from_grid(filled[c], 4, tok + c * 16);
        gv_sudoku_tokens_from_grid(puzzle[c], 4, prompt + c * 16);
        gv_sudoku_tokens_from_grid(reference[c], 4, ref + c * 16);
    }
}

Test(bridge_tokens, sudoku_child_hand_cases_equal_the_builtin) {
    int32_t tok[CASES * 16], prompt[CASES * 16], ref[CASES * 16];
    hand_batch(tok, prompt, ref);
    const int32_t groups[CASES] = {0, 0, 1, 1, 1, 2, 2};
    const gv_reward_images b = {.n = CASES, .seq_len = 16, .tokens = tok, .prompt = prompt,
                                .reference = ref, .mask_id = GV_SUDOKU_MASK(4), .groups = groups};
    gv_reward builtin, child;
    cr_assert_eq(gv_reward_create(&builtin, "sudoku", 1.0, NULL, 0, NULL), GV_OK, "%s", gv_last_error());
    open_sudoku_child(&child);
    float vb[CASES], vc[CASES];
    uint8_t sb[CASES], sc[CASES];
    cr_assert_eq(gv_reward_score(&builtin, NULL, &b, vb, sb), GV_OK, "%s", gv_last_error());
    cr_assert_eq(gv_reward_score(&child, NULL, &b, vc, sc), GV_OK, "%s", gv_last_error());
    for (int c = 0; c < CASES; ++c) {
        const uint8_t want = c == 4 ? GV_REWARD_ITEM_FAILED : GV_REWARD_ITEM_OK;
        cr_assert_eq(sb[c], want, "builtin case %d", c);
        cr_assert_eq(sc[c], want, "child case %d", c);
        if (want != GV_REWARD_ITEM_OK) continue;
        cr_assert_float_eq(vb[c], hand[c], 1e-6, "builtin case %d: %.9g", c, vb[c]);
        cr_assert_eq(vc[c], vb[c], "case %d: child %.9g, builtin %.9g", c, vc[c], vb[c]);
    }
    /* a batch the built-in refuses (mask_id not S) fails the child's batch too, with its message */
    gv_reward_images bad = b;
    bad.mask_id = 7;
    cr_assert_neq(gv_reward_score(&builtin, NULL, &bad, vb, sb), GV_OK);
    cr_assert_eq(gv_reward_score(&child, NULL, &bad, vc, sc), GV_ERR_PLUGIN);
    cr_assert(strstr(gv_last_error(), "[MASK] = S (got length 16, mask_id 7"), "%s", gv_last_error());
    for (int c = 0; c < CASES; ++c) cr_assert_eq(sc[c], GV_REWARD_ITEM_FAILED);
    gv_reward_destroy(&builtin);
    gv_reward_destroy(&child);
}

Test(bridge_tokens, sudoku_child_equals_the_builtin_on_9x9) {
    enum { N = 40 };
    int32_t tok[N * 81], prompt[N * 81], ref[N * 81];
    mdm_sudoku9_batch(N, 13u, 20, 30, 4, 11, tok, prompt, ref); /* i % 4 cells overwritten */
    const gv_reward_images b = {.n = N, .seq_len = 81, .tokens = tok, .prompt = prompt,
                                .reference = ref, .mask_id = GV_SUDOKU_MASK(9)};
    gv_reward builtin, child;
    cr_assert_eq(gv_reward_create(&builtin, "sudoku", 1.0, NULL, 0, NULL), GV_OK);
    open_sudoku_child(&child);
    float a[N], c[N];
    uint8_t sa[N], sc[N];
    cr_assert_eq(gv_reward_score(&builtin, NULL, &b, a, sa), GV_OK, "%s", gv_last_error());
    cr_assert_eq(gv_reward_score(&child, NULL, &b, c, sc), GV_OK, "%s", gv_last_error());
    int solved = 0, fractional = 0;
    for (int i = 0; i < N; ++i) {
        cr_assert_eq(sa[i], GV_REWARD_ITEM_OK);
        cr_assert_eq(sc[i], GV_REWARD_ITEM_OK, "puzzle %d", i);
        cr_assert_eq(c[i], a[i], "puzzle %d: child %.9g, builtin %.9g", i, c[i], a[i]);
        solved += a[i] > 1.5f;
        fractional += a[i] != floorf(a[i]); /* scores the float32 rounding matters for */
    }
    cr_assert(solved > 0 && solved < N, "the corruptions leave some solved, some not (%d)", solved);
    cr_assert(fractional > 0, "no fractional scores to compare");
    gv_reward_destroy(&builtin);
    gv_reward_destroy(&child);
}

/* ---- kinds ------------------------------------------------------------------------------------- */

Test(bridge_tokens, a_kind_the_child_did_not_announce_is_one_line) {
    int32_t tok[CASES * 16], prompt[CASES * 16], ref[CASES * 16];
    hand_batch(tok, prompt, ref);
    const gv_reward_images tb = {.n = 2, .seq_len = 16, .tokens = tok, .prompt = prompt,
                                 .reference = ref, .mask_id = GV_SUDOKU_MASK(4)};
    const float px[2 * 4] = {0.0f, 1.0f, 1.0f, 1.0f, 0.0f, 0.0f, 0.0f, 1.0f};
    const gv_reward_images ib = {.n = 2, .channels = 1, .height = 2, .width = 2, .pixels = px};
    float v[2];
    uint8_t st[2];
    /* an image-only child: bridge.so loads (its table declares both kinds; create cannot know
       which grove will send), the token batch fails naming both kinds, images still score */
    gv_reward r;
    cr_assert_eq(open_child(&r, "bridge.so", "tests/plugins/bridge_child.py", "ok",
                            GROVE_SAMPLES_TOKENS), GV_OK, "%s", gv_last_error());
    cr_assert_eq(gv_reward_score(&r, NULL, &tb, v, st), GV_ERR_PLUGIN);
    const char *e = gv_last_error();
    cr_assert(strstr(e, "a tokens batch, but the child 'child_ok' announced \"kinds\": [\"image\"] in its "
                     "hello") && !strchr(e, '\n'), "%s", e);
    cr_assert(st[0] == GV_REWARD_ITEM_FAILED && st[1] == GV_REWARD_ITEM_FAILED);
    cr_assert_eq(gv_reward_score(&r, NULL, &ib, v, st), GV_OK, "%s", gv_last_error());
    cr_assert(fabsf(v[0] - 0.75f) < 1e-6f && fabsf(v[1] - 0.25f) < 1e-6f, "%g %g", v[0], v[1]);
    gv_reward_destroy(&r);
    /* the token child: an image batch fails likewise; then tokens score */
    open_sudoku_child(&r);
    cr_assert_eq(gv_reward_score(&r, NULL, &ib, v, st), GV_ERR_PLUGIN);
    e = gv_last_error();
    cr_assert(strstr(e, "an image batch, but the child 'sudoku_py' announced \"kinds\": [\"tokens\"] in its "
                     "hello") && !strchr(e, '\n'), "%s", e);
    cr_assert_eq(gv_reward_score(&r, NULL, &tb, v, st), GV_OK, "%s", gv_last_error());
    cr_assert(v[0] == 2.0f && v[1] == 0.6f, "%g %g", v[0], v[1]);
    gv_reward_destroy(&r);
    /* the kind is checked again after a restart: a child announcing both kinds crashes on its
       first token request, and restarted it announces images only */
    char state[256];
    open_stateful_child(&r, "narrows", GROVE_SAMPLES_TOKENS, state, sizeof state);
    cr_assert_eq(gv_reward_score(&r, NULL, &tb, v, st), GV_ERR_PLUGIN);
    e = gv_last_error();
    cr_assert(strstr(e, "a tokens batch, but the child 'child_narrows' announced \"kinds\": [\"image\"] in "
                     "its hello"), "%s", e);
    cr_assert_eq(access(state, F_OK), 0, "the first child never saw the request");
    gv_reward_destroy(&r);
    remove(state);
    /* a restart whose hello names no known kind fails that batch with the hello's line and leaves
       the kinds alone: the next batch restarts again (a good hello) and scores — it is not refused
       for a kind list the failed hello never set */
    open_stateful_child(&r, "bad_restart", GROVE_SAMPLES_IMAGE, state, sizeof state);
    cr_assert_eq(gv_reward_score(&r, NULL, &ib, v, st), GV_ERR_PLUGIN);
    e = gv_last_error();
    cr_assert(strstr(e, "hello lists neither kind") && !strchr(e, '\n'), "%s", e);
    cr_assert_eq(gv_reward_score(&r, NULL, &ib, v, st), GV_OK, "%s", gv_last_error());
    cr_assert(fabsf(v[0] - 0.75f) < 1e-6f && fabsf(v[1] - 0.25f) < 1e-6f, "%g %g", v[0], v[1]);
    gv_reward_destroy(&r);
    remove(state);
    /* a hello naming no kind grove sends: refused at create */
    cr_assert_eq(open_child(&r, "bridge.so", "tests/plugins/bridge_child.py", "no_kinds",
                            GROVE_SAMPLES_TOKENS), GV_ERR_PLUGIN);
    e = gv_last_error();
    cr_assert(strstr(e, "create failed: bridge: the child's hello lists neither kind grove sends") &&
              strstr(e, "\"kinds\": [\"images\"]") && !strchr(e, '\n'), "%s", e);
    /* the pairwise bridge declares images only: no token judge; called directly, its compare
       refuses token batches with one line too */
    cr_assert_eq(open_child(&r, "bridge_judge.so", "tests/plugins/bridge_child.py", "judge",
                            GROVE_SAMPLES_TOKENS), GV_ERR_PLUGIN);
    cr_assert(strstr(gv_last_error(), "accepts image batches, grove needs tokens batches"), "%s",
              gv_last_error());
    void *h;
    const grove_reward_plugin *t = open_table("bridge_judge.so", &h);
    cr_assert_eq(t->kinds, GROVE_SAMPLES_IMAGE);
    char config[2048];
    snprintf(config, sizeof config, "command=python3 '%s/tests/plugins/bridge_child.py' judge\n",
             GROVE_SOURCE_DIR);
    void *s = NULL;
    char err[512] = "";
    cr_assert_eq(t->create(config, &s, err, sizeof err), 0, "%s", err);
    const grove_reward_batch tok_batch = {.struct_size = sizeof(grove_reward_batch),
                                          .kind = GROVE_SAMPLES_TOKENS, .n = 2, .length = 16,
                                          .tokens = tok, .prompt_tokens = prompt, .mask_id = 4};
    cr_assert_neq(t->compare(s, &tok_batch, &tok_batch, v, st, err, sizeof err), 0);
    cr_assert_str_eq(err, "bridge_judge: compare requests carry image batches only (protocol v1 has "
                     "no pairwise token batches)");
    t->destroy(s);
    dlclose(h);
}

/* ---- the request round trip -------------------------------------------------------------------- */

/* The request the echo child last saw (its STATE_FILE), parsed; the caller frees. */
static bj_node *read_echo(const char *path) {
    char *text = NULL;
    cr_assert_eq(gv_rundir_slurp(path, &text), GV_OK, "%s", gv_last_error());
    char err[128];
    bj_node *n = bj_parse(text, err, sizeof err);
    cr_assert_not_null(n, "%s: %s", err, text);
    free(text);
    return n;
}

static void expect_keys(const bj_node *req, const char *const *keys, int n) {
    cr_assert_eq(req->type, BJ_OBJECT);
    cr_assert_eq(req->n, n, "%d keys, %d expected", req->n, n);
    for (int i = 0; i < n; ++i) cr_assert_str_eq(req->keys[i], keys[i], "key %d", i);
}

static void expect_rows(const bj_node *v, const int32_t *rows, int n, int length) {
    cr_assert(v && v->type == BJ_ARRAY && v->n == n);
    for (int i = 0; i < n; ++i) {
        const bj_node *row = v->items[i];
        cr_assert(row->type == BJ_ARRAY && row->n == length, "row %d", i);
        for (int k = 0; k < length; ++k)
            cr_assert(row->items[k]->type == BJ_NUMBER && row->items[k]->number == rows[i * length + k],
                      "row %d item %d: %g, sent %d", i, k, row->items[k]->number, rows[i * length + k]);
    }
}

static void expect_strings(const bj_node *v, const char *const *s, int n) {
    cr_assert(v && v->type == BJ_ARRAY && v->n == n);
    for (int i = 0; i < n; ++i) {
        if (!s[i]) {
            cr_assert_eq(v->items[i]->type, BJ_NULL, "item %d", i);
            continue;
        }
        cr_assert_eq(v->items[i]->type, BJ_STRING, "item %d", i);
        cr_assert_str_eq(v->items[i]->string, s[i], "item %d", i);
    }
}

static void expect_number(const bj_node *req, const char *key, double want) {
    const bj_node *v = bj_get(req, key);
    cr_assert(v && v->type == BJ_NUMBER && v->number == want, "%s: %g, sent %g", key,
              v ? v->number : NAN, want);
}

Test(bridge_tokens, token_request_round_trips) {
    enum { N = 3, L = 5 };
    const int32_t tok[N * L] = {0, 1, 2, 3, 4, -1, 7, 2147483647, -2147483647 - 1, 9, 5, 5, 5, 5, 5};
    const int32_t prompt[N * L] = {9, 1, 9, 3, 9, 9, 9, 9, 9, 9, 0, 9, 0, 9, 0};
    const int32_t ref[N * L] = {0, 1, 2, 3, 4, 8, 7, 6, 5, 4, 1, 1, 2, 2, 3};
    const char *texts[N] = {"a \"quoted\" back\\slash", NULL, "line\nbreak\ttab caf\xc3\xa9 \xe2\x88\x9a"};
    const char *prompts[N] = {"", "\x01 control", "p\xc3\xb6"};
    const int32_t groups[N] = {4, 4, 9};
    const char *meta[N] = {"{\"seed\": 12, \"iteration\": 3, \"tag\": \"x\"}", NULL, "{}"};
    char state[256];
    snprintf(state, sizeof state, "/tmp/grove-test-bridge-echo-%d.json", (int)getpid());
    gv_reward r;
    char args[300];
    snprintf(args, sizeof args, "echo '%s'", state);
    cr_assert_eq(open_child(&r, "bridge.so", "tests/plugins/bridge_child.py", args, GROVE_SAMPLES_TOKENS),
                 GV_OK, "%s", gv_last_error());
    float v[N];
    uint8_t st[N];
    static const char *const token_keys[] = {"id", "kind", "n", "length", "tokens", "texts", "prompts",
                                             "prompt_tokens", "reference_tokens", "mask_id", "groups",
                                             "metadata"};
    for (int variant = 0; variant < 2; ++variant) { /* 0: texts, no reference; 1: reference, no texts */
        const gv_reward_images b = {.n = N, .seq_len = L, .tokens = tok, .prompt = prompt,
                                    .reference = variant ? ref : NULL, .mask_id = 9,
                                    .texts = variant ? NULL : texts, .prompts = prompts,
                                    .groups = groups, .metadata = meta};
        cr_assert_eq(gv_reward_score(&r, NULL, &b, v, st), GV_OK, "%s", gv_last_error());
        for (int i = 0; i < N; ++i) cr_assert(st[i] == GV_REWARD_ITEM_OK && v[i] == i + 0.5f);
        bj_node *req = read_echo(state);
        expect_keys(req, token_keys, 12);
        expect_number(req, "id", variant + 1);
        cr_assert_str_eq(bj_get(req, "kind")->string, "tokens");
        expect_number(req, "n", N);
        expect_number(req, "length", L);
        expect_number(req, "mask_id", 9);
        expect_rows(bj_get(req, "tokens"), tok, N, L);
        expect_rows(bj_get(req, "prompt_tokens"), prompt, N, L);
        if (variant) {
            expect_rows(bj_get(req, "reference_tokens"), ref, N, L);
            cr_assert_eq(bj_get(req, "texts")->type, BJ_NULL);
        } else {
            cr_assert_eq(bj_get(req, "reference_tokens")->type, BJ_NULL);
            expect_strings(bj_get(req, "texts"), texts, N);
        }
        expect_strings(bj_get(req, "prompts"), prompts, N);
        const bj_node *g = bj_get(req, "groups"), *m = bj_get(req, "metadata");
        cr_assert(g->type == BJ_ARRAY && g->n == N && m->type == BJ_ARRAY && m->n == N);
        for (int i = 0; i < N; ++i) cr_assert_eq(g->items[i]->number, groups[i]);
        cr_assert(bj_get(m->items[0], "seed")->number == 12 && bj_get(m->items[0], "iteration")->number == 3);
        cr_assert_str_eq(bj_get(m->items[0], "tag")->string, "x");
        cr_assert(m->items[1]->type == BJ_NULL && m->items[2]->type == BJ_OBJECT && m->items[2]->n == 0);
        bj_free(req);
    }
    /* an image request: the same keys in the same order as before token batches existed */
    const float px[N * 4] = {0};
    const gv_reward_images ib = {.n = N, .channels = 1, .height = 2, .width = 2, .pixels = px};
    cr_assert_eq(gv_reward_score(&r, NULL, &ib, v, st), GV_OK, "%s", gv_last_error());
    bj_node *req = read_echo(state);
    static const char *const image_keys[] = {"id", "kind", "n", "c", "h", "w", "images", "prompts",
                                             "groups", "metadata"};
    expect_keys(req, image_keys, 10);
    bj_free(req);
    gv_reward_destroy(&r);

    /* a batch of reward ABI v1 revision 1 (a grove built before prompt_tokens): bridge.so called
       directly, the three fields stay out of the request */
    void *h;
    const grove_reward_plugin *t = open_table("bridge.so", &h);
    cr_assert_eq(t->kinds, GROVE_SAMPLES_IMAGE | GROVE_SAMPLES_TOKENS);
    char config[1024], err[512] = "";
    snprintf(config, sizeof config, "command=python3 '%s/tests/plugins/bridge_child.py' echo '%s'\n",
             GROVE_SOURCE_DIR, state);
    void *s = NULL;
    cr_assert_eq(t->create(config, &s, err, sizeof err), 0, "%s", err);
    const grove_reward_batch old = {.struct_size = (uint32_t)offsetof(grove_reward_batch, prompt_tokens),
                                    .kind = GROVE_SAMPLES_TOKENS, .n = N, .length = L, .tokens = tok,
                                    .texts = texts, .prompts = prompts, .groups = groups};
    cr_assert(!GROVE_REWARD_BATCH_HAS(&old, mask_id));
    cr_assert_eq(t->score(s, &old, v, st, err, sizeof err), 0, "%s", err);
    req = read_echo(state);
    static const char *const rev1_keys[] = {"id", "kind", "n", "length", "tokens", "texts", "prompts",
                                            "groups", "metadata"};
    expect_keys(req, rev1_keys, 9);
    expect_rows(bj_get(req, "tokens"), tok, N, L);
    bj_free(req);
    t->destroy(s);
    dlclose(h);
    remove(state);
}
