/* grove reward-check PLUGIN.so [--config FILE] [-n N] [--dataset mnist|fashion|sudoku4|sudoku9]
 * Validates a reward plugin before a run depends on it (DESIGN.md §1, §7): loads it exactly as
 * `grove train` does (every loader error is one line and a non-zero exit), prints its name, version,
 * ABI version, struct size, flags and kinds, scores a REAL batch — the first N test images of the
 * dataset with prompts made from their labels ("a handwritten seven"), groups of 8 — and prints the
 * time per image and the score distribution (failed / non-finite items counted, never averaged).
 * A plugin that claims DETERMINISTIC is scored twice and must return bitwise-equal scores and
 * statuses; a pairwise judge is checked through compare (win rates within each group, plus
 * p(a, b) + p(b, a) ≈ 1 as a consistency figure). --config FILE is a YAML mapping handed to create
 * flattened to path=value lines, as a config's `rewards[].config:` is.
 * Token batches (--dataset sudoku4 | sudoku9, for a plugin of kind tokens): the first N held-out puzzles as the Sudoku trainer sends them (tokens,
 * prompt_tokens = the starting canvas, reference_tokens = the solution, texts and prompts = the
 * grids as text, groups of 8), the completions being the solution with a known share of the blanks
 * wrong — none for puzzle i with i mod 4 == 0, else the blanks q with q mod 4 < i mod 4 — so the
 * scores spread from unsolved to solved.
 * Deliberately not here: training (grove train). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "grove/config.h"
#include "grove/dataset.h"
#include "grove/paths.h"
#include "grove/reward.h"
#include "grove/rewards.h"
#include "grove/sudoku.h"

#define CHECK_GROUP 8

/* --config FILE: the mapping, bound through the config machinery into flattened lines. */
typedef struct check_config { gv_cfg_map config; } check_config;
static const gv_field check_fields[] = {
    {.key = "config", .type = GV_CFG_MAP, .offset = offsetof(check_config, config),
     .help = "the plugin's config mapping"}};
static const gv_schema check_schema = {"check_config", sizeof(check_config), check_fields, 1, NULL};

static gv_status load_plugin_config(const char *path, check_config *out) {
    memset(out, 0, sizeof *out);
    if (!path) return GV_OK;
    FILE *f = fopen(path, "rb");
    if (!f) return GV_ERROR(GV_ERR_IO, "--config %s: cannot open", path);
    /* the file is the mapping itself: indent it under one "config:" key */
    size_t cap = 4096, len = 0;
    char *text = malloc(cap), line[4096];
    if (!text) return fclose(f), GV_ERROR(GV_ERR_OOM, "--config %s", path);
    len = (size_t)snprintf(text, cap, "config:\n");
    while (fgets(line, sizeof line, f)) {
        const size_t n = strlen(line);
        if (len + n + 4 > cap) {
            char *t = realloc(text, cap = 2 * (cap + n));
            if (!t) return free(text), fclose(f), GV_ERROR(GV_ERR_OOM, "--config %s", path);
            text = t;
        }
        len += (size_t)snprintf(text + len, cap - len, "  %s", line);
    }
    fclose(f);
    gv_config_request req = {.schema = &check_schema, .path = path, .text = text};
    gv_status s = gv_config_load(&req, out, NULL);
    free(text);
    return s;
}

static const char *class_word(const char *dataset, int label, char words[][32]) {
    (void)dataset;
    return label >= 0 && label < 10 && words[label][0] ? words[label] : "thing";
}

/* Class words from the dataset's vocabulary file (first word of each label). */
static void read_class_words(const char *dataset, char words[][32]) {
    char rel[256], path[4096], line[256];
    snprintf(rel, sizeof rel, "configs/prompts/%s-vocab.txt", dataset);
    if (gv_root_path(rel, path, sizeof path) != GV_OK) return;
    FILE *f = fopen(path, "r");
    if (!f) return;
    while (fgets(line, sizeof line, f)) {
        char w[32];
        int label;
        if (line[0] != '#' && sscanf(line, "%31s %d", w, &label) == 2 && label >= 0 && label < 10 &&
            !words[label][0])
            snprintf(words[label], 32, "%s", w);
    }
    fclose(f);
}

static double seconds_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_float(const void *a, const void *b) {
    const float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* "n ok, failed, mean, std, min, p10, median, p90, max" of the OK finite values. */
static void print_distribution(const char *what, const float *v, const uint8_t *st, int n) {
    float *ok = malloc((size_t)n * sizeof *ok);
    int m = 0;
    double sum = 0.0, sumsq = 0.0;
    for (int i = 0; ok && i < n; ++i)
        if (st[i] == GV_REWARD_ITEM_OK && isfinite(v[i]))
            ok[m++] = v[i], sum += v[i], sumsq += (double)v[i] * v[i];
    printf("%s: %d scored, %d failed (masked in training)\n", what, m, n - m);
    if (m > 0) {
        qsort(ok, (size_t)m, sizeof *ok, cmp_float);
        const double mean = sum / m, var = m > 1 ? (sumsq - sum * sum / m) / (m - 1) : 0.0;
        printf("  mean %.6g  std %.6g  min %.6g  p10 %.6g  median %.6g  p90 %.6g  max %.6g\n", mean,
               sqrt(var > 0 ? var : 0), ok[0], ok[m / 10], ok[m / 2], ok[(9 * m) / 10], ok[m - 1]);
        if (ok[0] == ok[m - 1])
            printf("  note: every score is equal: no signal for GRPO on this batch\n");
    }
    free(ok);
}

static void print_flags(uint32_t flags, uint32_t kinds) {
    printf("flags:   0x%x%s%s%s\n", flags, flags & GROVE_REWARD_PAIRWISE ? " PAIRWISE" : "",
           flags & GROVE_REWARD_DETERMINISTIC ? " DETERMINISTIC" : "",
           flags & GROVE_REWARD_THREAD_SAFE ? " THREAD_SAFE" : "");
    printf("kinds:   0x%x%s%s\n", kinds, kinds & GROVE_SAMPLES_IMAGE ? " image" : "",
           kinds & GROVE_SAMPLES_TOKENS ? " tokens" : "");
}

typedef struct check_batch {
    gv_dataset ds;
    int32_t *tokens, *canvas, *solution; /* token batches (n, T)                            */
    char *text;                          /* (2n, GV_SUDOKU_TEXT_BYTES): completions, puzzles */
    const char **texts, **puzzles;
    int T;
    float *pixels;
    int32_t *labels, *groups;
    char **prompts;
    float *scores, *scores2;
    uint8_t *status, *status2;
    int n;
} check_batch;

static void check_batch_free(check_batch *b) {
    gv_dataset_free(&b->ds);
    for (int i = 0; b->prompts && i < b->n; ++i) free(b->prompts[i]);
    void *all[] = {b->pixels, b->labels, b->groups, b->prompts, b->scores, b->scores2, b->status,
                   b->status2, b->tokens, b->canvas, b->solution, b->text, (void *)b->texts,
                   (void *)b->puzzles};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i) free(all[i]);
}

/* The dataset's file under data/ (made when missing, as `grove data` would) into b->ds. */
static gv_status load_dataset(const char *dataset, check_batch *b) {
    gv_dataset_kind kind;
    GV_TRY(gv_dataset_kind_by_name(dataset, &kind));
    char rel[256], path[4096];
    snprintf(rel, sizeof rel, "data/%s.h5", dataset);
    GV_TRY(gv_root_path(rel, path, sizeof path));
    GV_TRY(gv_dataset_ensure(kind, path, NULL, NULL));
    return gv_dataset_load_as(path, kind, &b->ds);
}

static gv_status make_batch(const char *dataset, int n, check_batch *b) {
    GV_TRY(load_dataset(dataset, b));
    if (n > b->ds.test.n) n = (int)b->ds.test.n;
    b->n = n;
    const gv_dataset_split *t = &b->ds.test;
    const size_t per = (size_t)t->c * (size_t)t->h * (size_t)t->w;
    b->pixels = malloc((size_t)n * per * sizeof(float));
    b->labels = malloc((size_t)n * sizeof(int32_t));
    b->groups = malloc((size_t)n * sizeof(int32_t));
    b->prompts = calloc((size_t)n, sizeof(char *));
    b->scores = malloc((size_t)n * sizeof(float));
    b->scores2 = malloc((size_t)n * sizeof(float));
    b->status = malloc((size_t)n);
    b->status2 = malloc((size_t)n);
    int64_t *idx = malloc((size_t)n * sizeof(int64_t));
    if (!b->pixels || !b->labels || !b->groups || !b->prompts || !b->scores || !b->scores2 ||
        !b->status || !b->status2 || !idx)
        return free(idx), GV_ERROR(GV_ERR_OOM, "reward-check: a batch of %d", n);
    char words[10][32] = {{0}};
    read_class_words(dataset, words);
    for (int i = 0; i < n; ++i) {
        idx[i] = i;
        b->labels[i] = t->labels[i];
        b->groups[i] = i / CHECK_GROUP;
        char prompt[128];
        snprintf(prompt, sizeof prompt, strcmp(dataset, "mnist") == 0 ? "a handwritten %s" : "a %s",
                 class_word(dataset, t->labels[i], words));
        b->prompts[i] = strdup(prompt);
        if (!b->prompts[i]) return free(idx), GV_ERROR(GV_ERR_OOM, "reward-check: prompts");
    }
    gv_status s = gv_dataset_batch_to_unit(t, idx, n, b->pixels);
    free(idx);
    return s;
}

static int is_sudoku(const char *dataset) {
    return strcmp(dataset, "sudoku4") == 0 || strcmp(dataset, "sudoku9") == 0;
}

/* The token batch of a Sudoku dataset (the top of this file); b->ds holds the puzzles. */
static gv_status make_token_batch(const char *dataset, int n, check_batch *b) {
    GV_TRY(load_dataset(dataset, b));
    const gv_dataset_split *t = &b->ds.test;
    if (n > t->n) n = (int)t->n;
    const int S = b->ds.h, T = S * S;
    const size_t tb = GV_SUDOKU_TEXT_BYTES(S);
    b->n = n;
    b->T = T;
    b->tokens = malloc((size_t)n * T * sizeof(int32_t));
    b->canvas = malloc((size_t)n * T * sizeof(int32_t));
    b->solution = malloc((size_t)n * T * sizeof(int32_t));
    b->text = malloc(2 * (size_t)n * tb);
    b->texts = malloc((size_t)n * sizeof(char *));
    b->puzzles = malloc((size_t)n * sizeof(char *));
    b->groups = malloc((size_t)n * sizeof(int32_t));
    b->scores = malloc((size_t)n * sizeof(float));
    b->scores2 = malloc((size_t)n * sizeof(float));
    b->status = malloc((size_t)n);
    b->status2 = malloc((size_t)n);
    if (!b->tokens || !b->canvas || !b->solution || !b->text || !b->texts || !b->puzzles ||
        !b->groups || !b->scores || !b->scores2 || !b->status || !b->status2)
        return GV_ERROR(GV_ERR_OOM, "reward-check: a batch of %d puzzles", n);
    for (int i = 0; i < n; ++i) {
        const uint8_t *puz = gv_sudoku_puzzle(t, i), *sol = gv_sudoku_solution(t, i);
        uint8_t filled[GV_SUDOKU_MAX_CELLS];
        for (int c = 0, q = 0; c < T; ++c) {
            filled[c] = sol[c];
            if (puz[c] == 0 && q++ % 4 < i % 4) filled[c] = (uint8_t)(sol[c] % S + 1); /* wrong */
        }
        gv_sudoku_tokens_from_grid(filled, S, b->tokens + (int64_t)i * T);
        gv_sudoku_tokens_from_grid(puz, S, b->canvas + (int64_t)i * T);
        gv_sudoku_tokens_from_grid(sol, S, b->solution + (int64_t)i * T);
        b->texts[i] = b->text + (size_t)i * tb;
        b->puzzles[i] = b->text + ((size_t)n + i) * tb;
        gv_sudoku_text_from_tokens(b->tokens + (int64_t)i * T, S, (char *)b->texts[i]);
        gv_sudoku_text_from_tokens(b->canvas + (int64_t)i * T, S, (char *)b->puzzles[i]);
        b->groups[i] = i / CHECK_GROUP;
    }
    return GV_OK;
}

static gv_status run_check(const char *plugin, const char *config_text, const char *dataset,
                           int n) {
    gv_reward r;
    const int tokens = is_sudoku(dataset);
    GV_TRY(gv_reward_load_plugin(&r, plugin, config_text, 1.0,
                                 tokens ? GROVE_SAMPLES_TOKENS : GROVE_SAMPLES_IMAGE));
    gv_reward_plugin_info info;
    gv_status s = gv_reward_plugin_describe(&r, &info);
    if (s != GV_OK) return gv_reward_destroy(&r), s;
    printf("plugin:  %s\nname:    %s\nversion: %s\nabi:     v%u (this grove speaks v%u), table %u "
           "bytes\n", info.path, info.name, info.version, info.abi_version,
           GROVE_REWARD_ABI_VERSION, info.struct_size);
    print_flags(info.flags, info.kinds);
    check_batch b;
    memset(&b, 0, sizeof b);
    s = tokens ? make_token_batch(dataset, n, &b) : make_batch(dataset, n, &b);
    if (s == GV_OK) {
        const gv_dataset_split *t = &b.ds.test;
        gv_reward_images img = {.n = b.n, .channels = t->c, .height = t->h, .width = t->w,
                                .pixels = b.pixels, .labels = b.labels,
                                .prompts = (const char *const *)b.prompts, .groups = b.groups};
        if (tokens) {
            img = (gv_reward_images){.n = b.n, .seq_len = b.T, .tokens = b.tokens, .prompt = b.canvas,
                                     .reference = b.solution, .mask_id = GV_SUDOKU_MASK(b.ds.h),
                                     .texts = b.texts, .prompts = b.puzzles, .groups = b.groups};
            printf("batch:   %d %s test puzzles (token batch, T = %d), groups of %d, completions = "
                   "the solution with 0-3 of every 4 blanks wrong\n", b.n, dataset, b.T, CHECK_GROUP);
        } else {
            printf("batch:   %d %s test images %dx%dx%d, groups of %d, prompts like \"%s\"\n", b.n,
                   dataset, t->c, t->h, t->w, CHECK_GROUP, b.prompts[0]);
        }
        const int pairwise_only = !gv_reward_can_score(&r);
        const int deterministic = (info.flags & GROVE_REWARD_DETERMINISTIC) != 0;
        for (int pass = 0; s == GV_OK && pass < (deterministic ? 2 : 1); ++pass) {
            float *sc = pass ? b.scores2 : b.scores;
            uint8_t *st = pass ? b.status2 : b.status;
            int64_t judged = 0, imputed = 0;
            const double t0 = seconds_now();
            if (pairwise_only) {
                const gv_win_rate_options wo = {0};
                s = gv_reward_win_rate(&r, NULL, &img, &wo, sc, st, &judged, &imputed);
            } else {
                s = gv_reward_score(&r, NULL, &img, sc, st);
            }
            const double dt = seconds_now() - t0;
            if (s != GV_OK) break;
            if (pass == 0) {
                if (pairwise_only)
                    printf("time:    %.3f ms per judgement (%lld judgements, %lld failed and "
                           "imputed 0.5)\n", 1e3 * dt / (judged ? judged : 1), (long long)judged,
                           (long long)imputed);
                else
                    printf("time:    %.3f ms per %s (%d in %.3f s)\n", 1e3 * dt / b.n,
                           tokens ? "puzzle" : "image", b.n, dt);
                print_distribution(pairwise_only ? "win rates" : "scores", sc, st, b.n);
            }
        }
        if (s == GV_OK && deterministic) {
            int same = 1;
            for (int i = 0; i < b.n && same; ++i)
                same = b.status[i] == b.status2[i] &&
                       memcmp(&b.scores[i], &b.scores2[i], sizeof(float)) == 0;
            if (!same)
                s = GV_ERROR(GV_ERR_PLUGIN, "reward plugin %s ('%s'): claims DETERMINISTIC but "
                             "scoring the same batch twice gave different results", plugin,
                             info.name);
            else printf("determinism: scored twice, bitwise equal\n");
        } else if (s == GV_OK) {
            printf("determinism: not claimed (not checked)\n");
        }
        if (s == GV_OK && gv_reward_is_pairwise(&r)) { /* p(a, b) + p(b, a) should be 1 */
            const int half = b.n / 2;
            gv_reward_images a = img, c = img;
            a.n = c.n = half;
            if (tokens) {
                c.tokens += (size_t)half * b.T, c.prompt += (size_t)half * b.T;
                c.reference += (size_t)half * b.T, c.texts += half, c.prompts += half;
            } else {
                c.pixels = b.pixels + (size_t)half * t->c * t->h * t->w;
            }
            float *p2 = b.scores2 + half;
            uint8_t *s2 = b.status2 + half;
            s = gv_reward_compare(&r, NULL, &a, &c, b.scores2, b.status2);
            if (s == GV_OK) s = gv_reward_compare(&r, NULL, &c, &a, p2, s2);
            if (s == GV_OK) {
                double dev = 0.0;
                int m = 0;
                for (int i = 0; i < half; ++i)
                    if (b.status2[i] == 0 && s2[i] == 0)
                        dev += fabs(b.scores2[i] + p2[i] - 1.0), ++m;
                printf("compare: %d pairs judged in both orders; mean |p(a,b) + p(b,a) - 1| = %.4g "
                       "(position bias; pairwise.both_orders cancels it)\n", m, m ? dev / m : NAN);
            }
        }
    }
    check_batch_free(&b);
    gv_reward_destroy(&r);
    return s;
}

int gv_cmd_reward_check(const gv_command *cmd, const gv_cli_args *args) {
    const char *dataset = gv_cli_option_value(cmd, args, "dataset");
    const char *nv = gv_cli_option_value(cmd, args, "n");
    long n = 64;
    if (nv && gv_cli_parse_long("n", nv, 2, 10000, &n) != GV_OK) {
        fprintf(stderr, "grove: %s: %s\n", cmd->name, gv_last_error());
        return GV_EXIT_USAGE;
    }
    check_config cc;
    if (load_plugin_config(gv_cli_option_value(cmd, args, "config"), &cc) != GV_OK)
        return gv_cli_fail(cmd);
    const gv_status s = run_check(args->positional[0], cc.config.flat ? cc.config.flat : "",
                                  dataset ? dataset : "mnist", (int)n);
    gv_config_free(&check_schema, &cc);
    if (s != GV_OK) return gv_cli_fail(cmd);
    printf("ok\n");
    return GV_EXIT_OK;
}
