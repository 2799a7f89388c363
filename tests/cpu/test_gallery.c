/* `grove gallery` (gallery/gallery_*.c) on a real tiny run: a 4-iteration Flow-GRPO run of a tiny 28x28
 * UNet (tests/data/align/tiny.yaml), then its gallery with three columns — base, last, and the base
 * file again under another label. Checked against independent truths: a column of the same file
 * gives identical pixels, a win rate of exactly 1/2 and a gain of 0 (same noise); the base image
 * of (prompt, seed s) equals gv_generate of one sample with seed s (`grove sample`); the PNG's
 * `ink` score equals the mean of its own pixels; the diversity equals the one recomputed from the
 * PNGs with the gold classifier; every file and row is there; a calibrated run's ψ(i) is drawn
 * when its last.h5 holds one. Also: config and CLI errors
 * name file, line and key, and --summarize on a hand-written preferences file gives hand-computed
 * win rates and Wilson intervals. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "grove/denoiser.h"
#include "grove/checkpoint.h"
#include "grove/evaluate.h"
#include "grove/gallery.h"
#include "grove/grpo.h"
#include "grove/image.h"
#include "grove/kernels_cpu.h"
#include "grove/rundir.h"
#include "grpo_test_util.h"

/* Tiny models and a finished 4-iteration run in <tmp>/run. */
static void make_run(void) {
    write_models();
    char s_model[600], s_dir[600], s_eval[900], path[4096];
    snprintf(s_model, sizeof s_model, "model.checkpoint=%s", unet_path);
    snprintf(s_dir, sizeof s_dir, "run.dir=%s/run", tmpdir);
    snprintf(s_eval, sizeof s_eval,
             "eval_rewards=[{builtin: classifier, model: %s}, {builtin: ink}]", gold_path);
    const char *sets[] = {s_model, s_dir, s_eval};
    snprintf(path, sizeof path, "%s/tests/data/align/tiny.yaml", GROVE_SOURCE_DIR);
    gv_run_config cfg;
    cr_assert_eq(gv_run_config_load(path, sets, 3, NULL, &cfg, NULL), GV_OK, "%s", gv_last_error());
    gv_grpo_result res;
    cr_assert_eq(gv_grpo_run(&cfg, &(gv_grpo_options){.backend = be(), .result = &res}), GV_OK,
                 "%s", gv_last_error());
    gv_run_config_free(&cfg);
}

static int count_lines(const char *text) {
    int n = 0;
    for (; *text; ++text) n += *text == '\n';
    return n;
}

static int count_substr(const char *text, const char *needle) {
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle)) ++n;
    return n;
}

static void read_png(const char *out, int p, unsigned seed, int m, gv_png_image *img) {
    char path[1024];
    snprintf(path, sizeof path, "%s/images/p%02d-s%04u-m%d.png", out, p, seed, m);
    cr_assert_eq(gv_png_read(path, img), GV_OK, "%s", gv_last_error());
}

Test(gallery, same_noise_columns_scores_and_files, .init = make_run, .fini = remove_tree,
     .timeout = 240) {
    enum { P = 2, S = 3, M = 3, FIRST_SEED = 5 };
    char s_run[700], s_out[700], s_gold[700], s_models[900], out[600];
    snprintf(out, sizeof out, "%s/g", tmpdir);
    snprintf(s_run, sizeof s_run, "run=%s/run", tmpdir);
    snprintf(s_out, sizeof s_out, "out=%s", out);
    snprintf(s_gold, sizeof s_gold, "gold=%s", gold_path);
    snprintf(s_models, sizeof s_models,
             "models=[{name: base}, {name: last}, {path: %s, label: again}]", unet_path);
    const char *sets[] = {s_run, s_out, s_gold, s_models, "prompt_count=2", "seeds=3",
                          "first_seed=5", "micro_batch=4", "device=cpu"};
    gv_gallery_config cfg;
    cr_assert_eq(gv_gallery_config_load(NULL, sets, 9, &cfg, NULL), GV_OK, "%s", gv_last_error());
    gv_ctx *ctx = tu_make_ctx(1, 1);
    gv_gallery_result res;
    cr_assert_eq(gv_gallery_run(&cfg, ctx, &(gv_gallery_options){.command = "test"}, &res), GV_OK,
                 "%s", gv_last_error());
    cr_assert_eq(res.images, P * S * M);
    cr_assert_eq(res.rewards, 3, "ink (train) + classifier and ink (eval)");

    /* the reference image: `grove sample` of one image with seed s, the run's 4 steps, shift 3 */
    gv_image_model base;
    cr_assert_eq(gv_image_model_load(unet_path, be(), 1, &base), GV_OK, "%s", gv_last_error());
    gv_denoiser den;
    cr_assert_eq(gv_denoiser_create(&den, ctx, &base.unet, gv_image_model_theta(&base),
                                    &(gv_denoiser_options){.micro_batch = 4, .guidance = 1.0f,
                                                           .null_id = base.null_id}),
                 GV_OK);
    char **prompts = NULL;
    int n_prompts = 0;
    char ppath[4096];
    snprintf(ppath, sizeof ppath, "%s/configs/prompts/mnist-eval.txt", GROVE_SOURCE_DIR);
    cr_assert_eq(gv_eval_prompts_read(ppath, &prompts, &n_prompts), GV_OK);
    const int D = 28 * 28;
    float *x = tu_dev_floats(D), p_ref[28 * 28];
    int32_t ids[16];
    int label;
    for (int p = 0; p < P; ++p)
        for (int s = 0; s < S; ++s) {
            const unsigned seed = FIRST_SEED + s;
            gv_png_image a, b;
            read_png(out, p, seed, 0, &a);
            read_png(out, p, seed, 2, &b);
            cr_assert_eq(a.w * a.h, D);
            cr_assert(memcmp(a.pixels, b.pixels, (size_t)D) == 0,
                      "the same checkpoint from the same noise gives the same image (p %d s %u)",
                      p, seed);
            cr_assert_eq(gv_image_model_encode_prompt(&base, prompts[p], ids, &label), GV_OK);
            gv_generate_options go = gv_generate_defaults();
            go.steps = 4;
            go.shift = 3.0;
            go.seed = seed;
            cr_assert_eq(gv_generate(&den, ctx, 1, ids, &go, x, p_ref, NULL), GV_OK);
            for (int i = 0; i < D; ++i)
                cr_assert_eq(a.pixels[i], (uint8_t)lroundf(p_ref[i] * 255.0f),
                             "p %d seed %u pixel %d: gallery %d, grove sample %ld", p, seed, i,
                             a.pixels[i], lroundf(p_ref[i] * 255.0f));
            /* text chunks: prompt, seed, checkpoint hash, and ink = mean(p) of these pixels */
            cr_assert_str_eq(gv_png_text_get(&a, "prompt"), prompts[p]);
            cr_assert_eq(atoi(gv_png_text_get(&a, "seed")), (int)seed);
            cr_assert_str_eq(gv_png_text_get(&a, "checkpoint"), base.hash);
            const char *ink = gv_png_text_get(&a, "score eval.ink");
            cr_assert(ink);
            double mean = 0;
            for (int i = 0; i < D; ++i) mean += a.pixels[i] / 255.0;
            mean /= D;
            cr_assert(fabs(atof(ink) - mean) <= 0.5 / 255 + 1e-6, "ink %s vs mean %f", ink, mean);
            gv_png_image_free(&a);
            gv_png_image_free(&b);
        }
    be()->free(x);
    gv_eval_prompts_free(prompts, n_prompts);
    gv_denoiser_free(&den);
    gv_image_model_free(&base);

    /* tables: one row per image; the duplicate column ties the base: win 0.5, gain 0 */
    char path[1024], *text = NULL;
    snprintf(path, sizeof path, "%s/scores.csv", out);
    cr_assert_eq(gv_rundir_slurp(path, &text), GV_OK);
    cr_assert_eq(count_lines(text), 1 + P * S * M);
    cr_assert(strstr(text, ",train.ink,eval.classifier,eval.ink\n"), "%.200s", text);
    free(text);
    snprintf(path, sizeof path, "%s/win_rates.csv", out);
    cr_assert_eq(gv_rundir_slurp(path, &text), GV_OK);
    cr_assert_eq(count_lines(text), 1 + P * M * 3);
    int again_rows = 0;
    for (const char *l = strchr(text, '\n') + 1; *l; l = strchr(l, '\n') + 1) {
        char model[64] = "", reward[64] = "";
        double mean, gain, win, div;
        int pi;
        char prompt[128], hash[32];
        if (sscanf(l, "%d,%127[^,],%63[^,],%31[^,],%63[^,],%lf,%lf,%lf,%lf", &pi, prompt, model,
                   hash, reward, &mean, &gain, &win, &div) == 9 &&
            strcmp(model, "again") == 0) {
            cr_assert_eq(gain, 0.0, "%s", l);
            cr_assert_eq(win, 0.5, "%s", l);
            cr_assert_gt(div, 0.0);
            again_rows++;
        }
    }
    cr_assert_eq(again_rows, P * 3, "every (prompt, reward) row of the duplicate column");
    /* diversity of (prompt 0, base): recomputed from the PNGs' pixels with the gold classifier */
    double div_csv = NAN;
    for (const char *l = strchr(text, '\n') + 1; *l; l = strchr(l, '\n') + 1) {
        char model[64] = "";
        int pi;
        if (sscanf(l, "%d,%*[^,],%63[^,]", &pi, model) == 2 && pi == 0 &&
            strcmp(model, "base") == 0) { /* diversity is the last field of the row */
            const char *c = strchr(l, '\n');
            while (c > l && c[-1] != ',') --c;
            div_csv = atof(c);
            break;
        }
    }
    free(text);
    gv_image_model gold;
    cr_assert_eq(gv_image_model_load(gold_path, be(), 1, &gold), GV_OK, "%s", gv_last_error());
    gv_judge judge;
    cr_assert_eq(gv_judge_create(&judge, ctx, &gold.classifier, gv_image_model_theta(&gold), 4),
                 GV_OK);
    float imgs[S * 28 * 28], feat[S * 64];
    cr_assert_leq(judge.F, 64);
    for (int s = 0; s < S; ++s) {
        gv_png_image a;
        read_png(out, 0, FIRST_SEED + s, 0, &a);
        for (int i = 0; i < D; ++i) imgs[s * D + i] = a.pixels[i] / 255.0f;
        gv_png_image_free(&a);
    }
    cr_assert_eq(gv_judge_run(&judge, ctx, imgs, 0, S, NULL, feat), GV_OK);
    double sum = 0;
    for (int a = 0; a < S; ++a)
        for (int b = a + 1; b < S; ++b) {
            double d2 = 0;
            for (int f = 0; f < judge.F; ++f)
                d2 += (feat[a * judge.F + f] - feat[b * judge.F + f]) *
                      (double)(feat[a * judge.F + f] - feat[b * judge.F + f]);
            sum += sqrt(d2);
        }
    const double div_png = sum / (S * (S - 1) / 2);
    cr_assert(fabs(div_csv - div_png) <= 2e-2 * div_png, "diversity %g (csv) vs %g (from PNGs)",
              div_csv, div_png);
    gv_judge_free(&judge);
    gv_image_model_free(&gold);
    snprintf(path, sizeof path, "%s/index.html", out);
    cr_assert_eq(gv_rundir_slurp(path, &text), GV_OK);
    cr_assert_eq(count_substr(text, "<img class=\"cell\""), P * S * M);
    cr_assert_eq(count_substr(text, "src=\"http"), 0, "no network resources");
    cr_assert(strstr(text, "<svg class=\"plot\""));
    cr_assert(!strstr(text, "calibrated ψ(i)"), "no ψ panel for a run without one");
    free(text);
    snprintf(path, sizeof path, "%s/manifest.json", out);
    cr_assert_eq(gv_rundir_slurp(path, &text), GV_OK);
    cr_assert(strstr(text, "\"command\": \"test\""));
    free(text);
    gv_gallery_config_free(&cfg);
    be()->ctx_destroy(ctx);
}

Test(gallery, config_errors_name_file_line_and_key) {
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/data/gallery/bad_key.yaml", GROVE_SOURCE_DIR);
    gv_gallery_config cfg;
    cr_assert_neq(gv_gallery_config_load(path, NULL, 0, &cfg, NULL), GV_OK);
    cr_assert(strstr(gv_last_error(), "bad_key.yaml:3") && strstr(gv_last_error(), "seed"), "%s",
              gv_last_error());
    const char *sets[] = {"run=x", "models=[{name: halfway}]"};
    cr_assert_neq(gv_gallery_config_load(NULL, sets, 2, &cfg, NULL), GV_OK);
    cr_assert(strstr(gv_last_error(), "models.0") && strstr(gv_last_error(), "iter-<k>"), "%s",
              gv_last_error());
    const char *one_seed[] = {"run=x", "seeds=1"};
    cr_assert_neq(gv_gallery_config_load(NULL, one_seed, 2, &cfg, NULL), GV_OK);
    cr_assert(strstr(gv_last_error(), "seeds"), "%s", gv_last_error());
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fputs(text, f);
    fclose(f);
}

#define PREF(a, ha, b, hb, choice)                                                                 \
    "{\"prompt\": \"a two\", \"seed\": 3, \"a\": {\"model\": \"" a "\", \"checkpoint\": \"" ha    \
    "\"}, \"b\": {\"model\": \"" b "\", \"checkpoint\": \"" hb "\"}, \"choice\": \"" choice "\"}\n"
#define HB "0000000000000001"
#define HL "00000000000000ff"

Test(gallery, summarize_hand_counted_preferences) {
    char dir[256], path[512];
    tu_make_tmpdir(dir, sizeof dir, "prefs");
    snprintf(path, sizeof path, "%s/preferences.jsonl", dir);
    /* base vs last: last preferred 3 times (twice as b, once as a), base once, one tie;
       base vs best: best preferred once. */
    write_file(path, PREF("base", HB, "last", HL, "b") PREF("base", HB, "last", HL, "b")
                     PREF("last", HL, "base", HB, "a") PREF("base", HB, "last", HL, "a")
                     "\n" PREF("last", HL, "base", HB, "tie")
                     PREF("best", "00000000000000aa", "base", HB, "a"));
    gv_gallery_summary s;
    cr_assert_eq(gv_gallery_summarize(path, &s), GV_OK, "%s", gv_last_error());
    cr_assert_eq(s.judgements, 6);
    cr_assert_eq(s.skipped_lines, 1);
    cr_assert_eq(s.n_pairs, 2);
    /* sorted by label: "base" vs "best" first, then "base" vs "last" */
    const gv_gallery_pair_summary *bb = &s.pairs[0], *bl = &s.pairs[1];
    cr_assert_str_eq(bb->first, "base");
    cr_assert_str_eq(bb->second, "best");
    cr_assert_eq(bb->n, 1);
    cr_assert_eq(bb->losses, 1);
    cr_assert_eq(bb->win_rate, 0.0);
    cr_assert_str_eq(bl->second, "last");
    cr_assert_str_eq(bl->second_ckpt, HL);
    cr_assert_eq(bl->n, 5);
    cr_assert_eq(bl->wins, 1);
    cr_assert_eq(bl->ties, 1);
    cr_assert_eq(bl->losses, 3);
    cr_assert_float_eq(bl->win_rate, 0.3, 1e-12);
    /* Wilson, z = 1.96, p = 0.3, n = 5: by hand 0.07258 .. 0.70121 */
    cr_assert_float_eq(bl->lo, 0.07258, 1e-4);
    cr_assert_float_eq(bl->hi, 0.70121, 1e-4);
    gv_gallery_summary_free(&s);

    write_file(path, PREF("base", HB, "last", HL, "b") PREF("base", HB, "last", HL, "left"));
    cr_assert_neq(gv_gallery_summarize(path, &s), GV_OK);
    cr_assert(strstr(gv_last_error(), "preferences.jsonl:2") && strstr(gv_last_error(), "choice"),
              "%s", gv_last_error());
    write_file(path, "{\"prompt\": \"a two\", \"seed\": \n");
    cr_assert_neq(gv_gallery_summarize(path, &s), GV_OK);
    cr_assert(strstr(gv_last_error(), "preferences.jsonl:1"), "%s", gv_last_error());
    write_file(path, "\n");
    cr_assert_neq(gv_gallery_summarize(path, &s), GV_OK);
    cr_assert(strstr(gv_last_error(), "no judgements"), "%s", gv_last_error());
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

/* A calibrated run whose last.h5 carries ψ(i) (/state psi): the page draws it and the per-step
   noise std; the same run without the table says it cannot. */
static void write_last_with_psi(const char *run, const float *psi, int n) {
    char path[1024];
    snprintf(path, sizeof path, "%s/last.h5", run);
    gv_image_model m;
    cr_assert_eq(gv_image_model_load(path, be(), 0, &m), GV_OK, "%s", gv_last_error());
    gv_ckpt_writer *w = NULL;
    cr_assert_eq(gv_ckpt_writer_begin(path, &w), GV_OK);
    cr_assert_eq(gv_image_model_put_meta(w, &m), GV_OK);
    cr_assert_eq(gv_params_save(w, &m.params, 0, 0), GV_OK);
    if (n) cr_assert_eq(gv_ckpt_put_f32s(w, GV_CKPT_STATE, "psi", psi, n), GV_OK);
    cr_assert_eq(gv_ckpt_writer_commit(w), GV_OK, "%s", gv_last_error());
    gv_image_model_free(&m);
}

static char *gallery_page_of(const char *run, const char *out) {
    char s_run[700], s_out[700], s_gold[700], path[800];
    snprintf(s_run, sizeof s_run, "run=%s", run);
    snprintf(s_out, sizeof s_out, "out=%s", out);
    snprintf(s_gold, sizeof s_gold, "gold=%s", gold_path);
    const char *sets[] = {s_run, s_out, s_gold, "models=[{name: base}, {name: last}]",
                          "prompt_count=1", "seeds=2", "micro_batch=4", "device=cpu"};
    gv_gallery_config cfg;
    cr_assert_eq(gv_gallery_config_load(NULL, sets, 8, &cfg, NULL), GV_OK, "%s", gv_last_error());
    gv_ctx *ctx = tu_make_ctx(1, 1);
    gv_gallery_result res;
    cr_assert_eq(gv_gallery_run(&cfg, ctx, &(gv_gallery_options){0}, &res), GV_OK, "%s",
                 gv_last_error());
    gv_gallery_config_free(&cfg);
    be()->ctx_destroy(ctx);
    snprintf(path, sizeof path, "%s/index.html", out);
    char *text = NULL;
    cr_assert_eq(gv_rundir_slurp(path, &text), GV_OK);
    return text;
}

Test(gallery, calibrated_psi_panel, .init = make_run, .fini = remove_tree, .timeout = 120) {
    char run[600], path[700], out[700], *yaml = NULL;
    snprintf(run, sizeof run, "%s/run", tmpdir);
    snprintf(path, sizeof path, "%s/config.yaml", run);
    cr_assert_eq(gv_rundir_slurp(path, &yaml), GV_OK);
    char *kind = strstr(yaml, "    kind: flow_grpo\n");
    cr_assert(kind, "%s", yaml);
    char *edited = malloc(strlen(yaml) + 16);
    sprintf(edited, "%.*s    kind: calibrated\n%s", (int)(kind - yaml), yaml,
            kind + strlen("    kind: flow_grpo\n"));
    cr_assert_eq(gv_rundir_write_atomic(path, edited), GV_OK);
    free(edited);
    free(yaml);
    const float psi[4] = {0.9f, 0.6f, 0.3f, 0.0f};
    write_last_with_psi(run, psi, 4);
    snprintf(out, sizeof out, "%s/g-psi", tmpdir);
    char *page = gallery_page_of(run, out);
    cr_assert(strstr(page, "calibrated ψ(i)"), "the ψ panel is drawn");
    cr_assert(strstr(page, "calibrated 0.7"), "the noise panel names the calibrated schedule");
    cr_assert(!strstr(page, "needs a ψ table"), "with ψ the std per step is drawn");
    free(page);
    write_last_with_psi(run, NULL, 0);
    snprintf(out, sizeof out, "%s/g-nopsi", tmpdir);
    page = gallery_page_of(run, out);
    cr_assert(!strstr(page, "calibrated ψ(i)"));
    cr_assert(strstr(page, "needs a ψ table"), "without ψ the page says why there is no std");
    free(page);
}

/* The CLI as a user meets it: usage errors, config errors with file:line, --summarize. */
static int run_grove(const char *args, char *out, size_t cap) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s/grove' %s 2>&1", GROVE_SOURCE_DIR, GROVE_BINARY_DIR,
             args);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    const int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

Test(gallery, cli_errors_and_summarize) {
    static char out[16384];
    cr_assert_eq(run_grove("gallery", out, sizeof out), 2, "%s", out);
    cr_assert(strstr(out, "give a CONFIG or --run DIR"), "%s", out);
    cr_assert_eq(run_grove("gallery tests/data/gallery/bad_key.yaml", out, sizeof out), 1, "%s",
                 out);
    cr_assert(strstr(out, "bad_key.yaml:3") && strstr(out, "seed"), "%s", out);
    cr_assert_eq(run_grove("gallery --run /nonexistent/run", out, sizeof out), 1, "%s", out);
    cr_assert(strstr(out, "/nonexistent/run: no run here"), "%s", out);
    cr_assert_eq(run_grove("gallery --summarize x.jsonl --run y", out, sizeof out), 2, "%s", out);
    char dir[256], path[512], args[700];
    tu_make_tmpdir(dir, sizeof dir, "prefs-cli");
    snprintf(path, sizeof path, "%s/p.jsonl", dir);
    write_file(path, PREF("base", HB, "last", HL, "b") PREF("last", HL, "base", HB, "tie"));
    snprintf(args, sizeof args, "gallery --summarize '%s'", path);
    cr_assert_eq(run_grove(args, out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "2 human judgements"), "%s", out);
    cr_assert(strstr(out, "base vs last                     2     0     1     1  0.250"), "%s", out);
    snprintf(args, sizeof args, "rm -rf '%s'", dir);
    cr_assert_eq(system(args), 0);
}
