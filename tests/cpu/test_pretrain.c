/* Tests of `grove pretrain` (engine/train/pretrain*.c, engine/core/image_model.c) on real MNIST
 * with tiny models (tests/data/pretrain/): the flow loss and the classifier loss fall; stopping
 * and resuming is bit-identical to running straight (parameters, EMA and metrics lines except
 * timing); a changed config is refused naming the key (and accepted with force, or when only
 * train.steps changed); the exported model loads back with its kind, vocabulary and EMA weights. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "grove/image_model.h"
#include "grove/kernels_cpu.h"
#include "grove/image.h"
#include "grove/pretrain.h"
#include "grove/rundir.h"

#define FIXTURES GROVE_SOURCE_DIR "/tests/data/pretrain/"

static char tmp_root[256];

static void make_tmp(void) {
    snprintf(tmp_root, sizeof tmp_root, "/tmp/grove-test-pretrain-XXXXXX");
    cr_assert(mkdtemp(tmp_root));
}
static void remove_tmp(void) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_root);
    cr_assert_eq(system(cmd), 0);
}

/* Load a fixture with run.dir = <tmp>/<dir> (+ export when given) and extra --set edits. */
static void load(const char *fixture, const char *dir, const char *export_name,
                 const char *extra, gv_pretrain_config *cfg) {
    char set_dir[512], set_export[512];
    snprintf(set_dir, sizeof set_dir, "run.dir=%s/%s", tmp_root, dir);
    snprintf(set_export, sizeof set_export, "export=%s/%s", tmp_root, export_name ? export_name : "");
    const char *sets[3] = {set_dir};
    int n = 1;
    if (export_name) sets[n++] = set_export;
    if (extra) sets[n++] = extra;
    cr_assert_eq(gv_pretrain_config_load(fixture, sets, n, cfg, NULL), GV_OK, "%s", gv_last_error());
}

static gv_status run(const gv_pretrain_config *cfg, int64_t stop_after, int force,
                     gv_pretrain_result *res) {
    gv_pretrain_options opt = {.stop_after = stop_after, .force = force,
                               .backend = grove_backend_cpu(), .result = res};
    return gv_pretrain_run(cfg, &opt);
}

static char *slurp(const char *path) {
    char *s = NULL;
    cr_assert_eq(gv_rundir_slurp(path, &s), GV_OK, "%s", gv_last_error());
    return s;
}

/* The metrics file's records without the timing fields (samples_per_s, wall_s end every record). */
static char *metrics_without_timing(const char *dir) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s/metrics.jsonl", tmp_root, dir);
    char *s = slurp(path), *out = calloc(1, strlen(s) + 1), *o = out;
    for (char *line = strtok(s, "\n"); line; line = strtok(NULL, "\n")) {
        char *cut = strstr(line, ",\"samples_per_s\"");
        if (!cut) cut = strstr(line, ",\"wall_s\"");
        size_t n = cut ? (size_t)(cut - line) : strlen(line);
        memcpy(o, line, n);
        o += n;
        *o++ = '\n';
    }
    free(s);
    return out;
}

/* Losses of the step records, in order. */
static int losses(const char *dir, float *out, int cap) {
    char *m = metrics_without_timing(dir);
    int n = 0;
    for (char *line = strtok(m, "\n"); line && n < cap; line = strtok(NULL, "\n")) {
        char *l = strstr(line, "\"loss\":");
        if (l && !strstr(line, "\"eval\"")) out[n++] = strtof(l + 7, NULL);
    }
    free(m);
    return n;
}

static float mean(const float *v, int n) {
    double s = 0;
    for (int i = 0; i < n; ++i) s += v[i];
    return (float)(s / n);
}

static float *host_copy(const gv_image_model *m) {
    size_t bytes = (size_t)m->params.total * sizeof(float);
    float *h = malloc(bytes);
    cr_assert(h);
    cr_assert_eq(m->params.backend->copy_to_host(h, m->params.values, bytes), GV_OK);
    return h;
}

TestSuite(pretrain, .init = make_tmp, .fini = remove_tmp, .timeout = 60);

Test(pretrain, unet_loss_falls_and_export_round_trips) {
    gv_pretrain_config cfg;
    load(FIXTURES "tiny-unet.yaml", "unet", "unet.h5", NULL, &cfg);
    gv_pretrain_result res;
    cr_assert_eq(run(&cfg, 0, 0, &res), GV_OK, "%s", gv_last_error());
    cr_assert(res.finished && res.step == 40);
    cr_assert(isfinite(res.eval_loss) && isnan(res.eval_accuracy));
    float l[64];
    int n = losses("unet", l, 64);
    cr_assert_eq(n, 40);
    float first = mean(l, 8), last = mean(l + 32, 8);
    cr_assert(last < 0.8f * first, "flow loss did not fall: first 8 steps %.4f, last 8 %.4f", first, last);

    /* the export holds the run's EMA weights, its kind, vocabulary and architecture */
    char path[512];
    snprintf(path, sizeof path, "%s/unet.h5", tmp_root);
    gv_image_model ex, run_ema;
    cr_assert_eq(gv_image_model_load(path, grove_backend_cpu(), 1, &ex), GV_OK, "%s", gv_last_error());
    snprintf(path, sizeof path, "%s/unet/last.h5", tmp_root);
    cr_assert_eq(gv_image_model_load(path, grove_backend_cpu(), 1, &run_ema), GV_OK, "%s",
                 gv_last_error());
    cr_assert_eq(ex.kind, GV_MODEL_UNET);
    cr_assert_eq(ex.params.ema, NULL, "an export has no /ema");
    cr_assert_str_eq(ex.dataset, "mnist");
    cr_assert_eq(ex.vocab.n, run_ema.vocab.n);
    cr_assert_eq(ex.null_id, ex.vocab.n);
    cr_assert_eq(ex.unet.cfg.vocab_size, ex.vocab.n + 1);
    cr_assert_eq(ex.unet.cfg.channels[0], 8);
    cr_assert_eq(ex.unet.cfg.levels, 1);
    cr_assert_eq(ex.params.total, run_ema.params.total);
    float *a = host_copy(&ex), *b = host_copy(&run_ema);
    cr_assert_eq(memcmp(a, b, (size_t)ex.params.total * sizeof(float)), 0,
                 "exported weights differ from the run's EMA");
    free(a);
    free(b);
    int32_t ids[8];
    int label = -1;
    cr_assert_eq(gv_image_model_encode_prompt(&ex, "a seven", ids, &label), GV_OK, "%s", gv_last_error());
    cr_assert_eq(label, 7);
    cr_assert_eq(ids[0], gv_vocab_find(&ex.vocab, "a"));
    cr_assert_eq(ids[2], -1);
    cr_assert_neq(gv_image_model_encode_prompt(&ex, "a zebra", ids, &label), GV_OK);
    cr_assert(strstr(gv_last_error(), "zebra"), "%s", gv_last_error());
    gv_image_model_free(&ex);
    gv_image_model_free(&run_ema);
    gv_pretrain_config_free(&cfg);
}

Test(pretrain, resume_is_bit_identical) {
    gv_pretrain_config cfg;
    gv_pretrain_result res;
    load(FIXTURES "tiny-unet.yaml", "straight", NULL, "train.steps=6", &cfg);
    cr_assert_eq(run(&cfg, 0, 0, &res), GV_OK, "%s", gv_last_error());
    gv_pretrain_config_free(&cfg);
    /* 3 steps (checkpoint.every 2: last.h5 at step 2, then at the stop), then resume to 6 */
    load(FIXTURES "tiny-unet.yaml", "resumed", NULL, "train.steps=6", &cfg);
    cr_assert_eq(run(&cfg, 3, 0, &res), GV_OK, "%s", gv_last_error());
    cr_assert(!res.finished && res.step == 3);
    cr_assert_eq(run(&cfg, 0, 0, &res), GV_OK, "%s", gv_last_error());
    cr_assert(res.finished && res.resumed && res.step == 6);
    gv_pretrain_config_free(&cfg);

    const char *dirs[2] = {"straight", "resumed"};
    gv_image_model m[2][2]; /* [run][raw, ema] */
    for (int r = 0; r < 2; ++r)
        for (int e = 0; e < 2; ++e) {
            char path[512];
            snprintf(path, sizeof path, "%s/%s/last.h5", tmp_root, dirs[r]);
            cr_assert_eq(gv_image_model_load(path, grove_backend_cpu(), e, &m[r][e]), GV_OK, "%s",
                         gv_last_error());
        }
    cr_assert_str_eq(m[0][0].hash, m[1][0].hash, "parameter hashes differ after resume");
    float *a = host_copy(&m[0][1]), *b = host_copy(&m[1][1]);
    cr_assert_eq(memcmp(a, b, (size_t)m[0][1].params.total * sizeof(float)), 0, "EMA differs after resume");
    free(a);
    free(b);
    for (int r = 0; r < 2; ++r)
        for (int e = 0; e < 2; ++e) gv_image_model_free(&m[r][e]);
    char *ma = metrics_without_timing("straight"), *mb = metrics_without_timing("resumed");
    cr_assert_str_eq(ma, mb, "metrics differ after resume");
    free(ma);
    free(mb);
}

/* Each eval of a UNet run writes a sample grid: one row per class, eval.samples columns. */
Test(pretrain, unet_eval_writes_a_sample_grid) {
    gv_pretrain_config cfg;
    load(FIXTURES "tiny-unet.yaml", "grid", NULL, "eval={every: 5, samples: 3, loss_images: 16}",
         &cfg);
    cfg.train.steps = 6;
    gv_pretrain_result res;
    cr_assert_eq(run(&cfg, 0, 0, &res), GV_OK, "%s", gv_last_error());
    char path[512];
    snprintf(path, sizeof path, "%s/grid/samples-000005.png", tmp_root);
    gv_png_image img;
    cr_assert_eq(gv_png_read(path, &img), GV_OK, "%s", gv_last_error());
    const int classes = 10, per = 3, pad = 2, side = 28;
    cr_assert_eq(img.w, per * side + (per + 1) * pad);
    cr_assert_eq(img.h, classes * side + (classes + 1) * pad);
    cr_assert_str_eq(gv_png_text_get(&img, "weights"), "ema");
    cr_assert_str_eq(gv_png_text_get(&img, "step"), "5");
    gv_png_image_free(&img);
    gv_pretrain_config_free(&cfg);
}

Test(pretrain, changed_config_is_refused) {
    gv_pretrain_config cfg;
    gv_pretrain_result res;
    load(FIXTURES "tiny-unet.yaml", "changed", NULL, "train.steps=8", &cfg);
    cr_assert_eq(run(&cfg, 2, 0, &res), GV_OK, "%s", gv_last_error());
    gv_pretrain_config_free(&cfg);
    load(FIXTURES "tiny-unet.yaml", "changed", NULL, "train.lr=0.5", &cfg);
    cr_assert_eq(run(&cfg, 0, 0, &res), GV_ERR_CONFIG);
    cr_assert(strstr(gv_last_error(), "train.lr"), "%s", gv_last_error());
    cr_assert(run(&cfg, 1, 1, &res) == GV_OK && res.resumed && res.step == 3, "%s", gv_last_error());
    gv_pretrain_config_free(&cfg);
    /* only train.steps differs from the (forced) run config: resumes without force */
    load(FIXTURES "tiny-unet.yaml", "changed", NULL, "train.lr=0.5", &cfg);
    cfg.train.steps = 6;
    cr_assert_eq(run(&cfg, 0, 0, &res), GV_OK, "%s", gv_last_error());
    cr_assert(res.resumed && res.finished && res.step == 6);
    gv_pretrain_config_free(&cfg);
}

Test(pretrain, classifier_loss_falls) {
    gv_pretrain_config cfg;
    load(FIXTURES "tiny-classifier.yaml", "cls", "cls.h5", NULL, &cfg);
    gv_pretrain_result res;
    cr_assert_eq(run(&cfg, 0, 0, &res), GV_OK, "%s", gv_last_error());
    float l[64];
    int n = losses("cls", l, 64);
    cr_assert_eq(n, 40);
    float first = mean(l, 8), last = mean(l + 32, 8);
    cr_assert(last < 0.7f * first, "classifier loss did not fall: %.4f -> %.4f", first, last);
    cr_assert(res.eval_accuracy > 0.3f && res.eval_accuracy <= 1.0f, "accuracy %f", res.eval_accuracy);
    char path[512];
    snprintf(path, sizeof path, "%s/cls.h5", tmp_root);
    gv_image_model m;
    cr_assert_eq(gv_image_model_load(path, grove_backend_cpu(), 0, &m), GV_OK, "%s", gv_last_error());
    cr_assert_eq(m.kind, GV_MODEL_CLASSIFIER);
    cr_assert_eq(m.classifier.cfg.width_mult, 4);
    cr_assert_eq(m.classifier.cfg.classes, 10);
    gv_image_model_free(&m);
    gv_pretrain_config_free(&cfg);
}

/* ---- the masked-diffusion transformer on 4x4 Sudoku (pretrain_mdt.c) ------------------------- */

static void load_mdt(const char *dir, const char *export_name, const char *extra, const char *extra2,
                     gv_pretrain_config *cfg) {
    char set_data[512], set_dir[512], set_export[512];
    snprintf(set_data, sizeof set_data, "data.path=%s/sudoku4.h5", tmp_root);
    snprintf(set_dir, sizeof set_dir, "run.dir=%s/%s", tmp_root, dir);
    snprintf(set_export, sizeof set_export, "export=%s/%s", tmp_root, export_name ? export_name : "");
    const char *sets[5] = {set_data, set_dir};
    int n = 2;
    if (export_name) sets[n++] = set_export;
    if (extra) sets[n++] = extra;
    if (extra2) sets[n++] = extra2;
    cr_assert_eq(gv_pretrain_config_load(FIXTURES "tiny-mdt.yaml", sets, n, cfg, NULL), GV_OK, "%s",
                 gv_last_error());
}

Test(pretrain, mdt_loss_falls_and_export_round_trips) {
    gv_pretrain_config cfg;
    load_mdt("mdt", "mdt.h5", NULL, NULL, &cfg);
    gv_pretrain_result res;
    cr_assert_eq(run(&cfg, 0, 0, &res), GV_OK, "%s", gv_last_error());
    cr_assert(res.finished && res.step == 120);
    cr_assert(isfinite(res.eval_loss) && res.eval_accuracy >= 0.0f && res.eval_accuracy <= 1.0f);
    float l[128];
    cr_assert_eq(losses("mdt", l, 128), 120);
    /* uniform guessing over 4 digits costs ln 4 = 1.386 per masked blank (the 1/t weight and the
       division by the blanks make the expectation exactly that); the constraints must be learned */
    float first = mean(l, 10), last = mean(l + 110, 10);
    cr_assert(first > 1.2f, "first 10 steps %.4f: not near ln 4", first);
    cr_assert(last < 0.8f * first, "masked-diffusion loss did not fall: %.4f -> %.4f", first, last);
    char path[512];
    snprintf(path, sizeof path, "%s/mdt.h5", tmp_root);
    gv_image_model ex;
    cr_assert_eq(gv_image_model_load(path, grove_backend_cpu(), 1, &ex), GV_OK, "%s", gv_last_error());
    cr_assert_eq(ex.kind, GV_MODEL_MDT);
    cr_assert_str_eq(ex.dataset, "sudoku4");
    cr_assert_eq(ex.mdt.cfg.vocab_size, 5);
    cr_assert_eq(ex.mdt.cfg.seq_len, 16);
    cr_assert_eq(ex.mdt.cfg.width, 32);
    cr_assert_eq(ex.mdt.cfg.layers, 2);
    gv_image_model_free(&ex);
    gv_pretrain_config_free(&cfg);
}

Test(pretrain, mdt_resume_is_bit_identical) {
    gv_pretrain_config cfg;
    gv_pretrain_result res;
    load_mdt("straight", NULL, "train.steps=6", "checkpoint.every=2", &cfg);
    cr_assert_eq(run(&cfg, 0, 0, &res), GV_OK, "%s", gv_last_error());
    gv_pretrain_config_free(&cfg);
    load_mdt("resumed", NULL, "train.steps=6", "checkpoint.every=2", &cfg);
    cr_assert_eq(run(&cfg, 3, 0, &res), GV_OK, "%s", gv_last_error());
    cr_assert_eq(run(&cfg, 0, 0, &res), GV_OK, "%s", gv_last_error());
    cr_assert(res.finished && res.resumed && res.step == 6);
    gv_pretrain_config_free(&cfg);
    gv_image_model m[2];
    const char *dirs[2] = {"straight", "resumed"};
    for (int r = 0; r < 2; ++r) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s/last.h5", tmp_root, dirs[r]);
        cr_assert_eq(gv_image_model_load(path, grove_backend_cpu(), 0, &m[r]), GV_OK, "%s", gv_last_error());
    }
    cr_assert_str_eq(m[0].hash, m[1].hash, "parameter hashes differ after resume");
    for (int r = 0; r < 2; ++r) gv_image_model_free(&m[r]);
    char *ma = metrics_without_timing("straight"), *mb = metrics_without_timing("resumed");
    cr_assert_str_eq(ma, mb, "metrics differ after resume");
    free(ma);
    free(mb);
}

Test(pretrain, mdt_needs_a_sudoku_dataset) {
    gv_pretrain_config cfg;
    char set[64] = "data.dataset=mnist";
    const char *sets[1] = {set};
    cr_assert_neq(gv_pretrain_config_load(FIXTURES "tiny-mdt.yaml", sets, 1, &cfg, NULL), GV_OK);
    cr_assert(strstr(gv_last_error(), "mdt"), "%s", gv_last_error());
}
