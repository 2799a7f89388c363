/* Tests of gold-judge evaluation (engine/train/evaluate.c) and of `grove sample` / `grove eval`:
 * gold_prob and accuracy against a classifier whose head gives known logits; the micro-batched,
 * padded judge against one plain full-batch forward (host and device inputs); FCD on the REAL
 * MNIST test images (identical sets give 0, a 4-pixel shift is far larger than a half/half split);
 * gv_eval_checkpoint end to end on tiny exported models; `grove sample` writes a PNG with the
 * expected text chunks and identical bytes twice; `grove eval` prints one JSON line. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "grove/evaluate.h"
#include "grove/image.h"
#include "grove/image_model.h"
#include "grove/kernels_cpu.h"
#include "test_util.h"

static const gv_backend *be(void) { return grove_backend_cpu(); }

static uint64_t lcg_state = 0x853C49E6748FEA9Bull;
static gv_ctx *make_ctx(int use_fast) { return tu_make_ctx(2, use_fast); }

/* A small classifier (w 4, F 16) with initialised weights plus 0.2·U(-1,1). */
static void small_classifier(gv_image_model *m, uint32_t seed) {
    gv_classifier_config cc = gv_classifier_config_default(4);
    cc.features = 16;
    cr_assert_eq(gv_image_model_create(m, GV_MODEL_CLASSIFIER, &cc, be(), 0), GV_OK, "%s",
                 gv_last_error());
    snprintf(m->dataset, sizeof m->dataset, "mnist");
    cr_assert_eq(gv_params_initialize(&m->params, seed), GV_OK);
    float *h = malloc((size_t)m->params.total * sizeof(float));
    cr_assert(h);
    cr_assert_eq(be()->copy_to_host(h, m->params.values, (size_t)m->params.total * 4), GV_OK);
    for (int64_t i = 0; i < m->params.total; ++i) h[i] += 0.4f * tu_rand_unit(&lcg_state) - 0.2f;
    cr_assert_eq(be()->copy_from_host(m->params.values, h, (size_t)m->params.total * 4), GV_OK);
    free(h);
}

static void set_param(gv_image_model *m, const char *name, const float *host) {
    gv_param *p = gv_params_find(&m->params, name);
    cr_assert(p, "no parameter %s", name);
    cr_assert_eq(be()->copy_from_host(p->value, host, (size_t)p->numel * sizeof(float)), GV_OK);
}

Test(eval, gold_prob_and_accuracy_from_known_logits) {
    gv_ctx *c = make_ctx(1);
    gv_image_model m;
    small_classifier(&m, 5);
    /* head weight 0, bias b: every image's logits are exactly b */
    float w0[10 * 16] = {0}, b[10] = {0.5f, -1.0f, 2.0f, 0.0f, 1.0f, -0.5f, 0.25f, 1.5f, -2.0f, 0.75f};
    set_param(&m, "classifier.head.weight", w0);
    set_param(&m, "classifier.head.bias", b);
    enum { N = 5 };
    static float p[N * 784];
    for (int i = 0; i < N * 784; ++i) p[i] = tu_rand_unit(&lcg_state);
    const int32_t labels[N] = {2, 7, 2, 0, 9};
    double z = 0.0;
    for (int k = 0; k < 10; ++k) z += exp((double)b[k]);
    double want_prob = 0.0;
    for (int i = 0; i < N; ++i) want_prob += exp((double)b[labels[i]]) / z / N;
    gv_judge j;
    cr_assert_eq(gv_judge_create(&j, c, &m.classifier, gv_image_model_theta(&m), 2), GV_OK, "%s",
                 gv_last_error());
    float ref[3 * 16];
    for (int i = 0; i < 3 * 16; ++i) ref[i] = tu_rand_unit(&lcg_state);
    gv_eval_result r;
    cr_assert_eq(gv_eval_images(&j, c, p, 0, N, labels, ref, 3, &r), GV_OK, "%s", gv_last_error());
    cr_assert_eq(r.n, N);
    cr_assert_float_eq(r.classifier_accuracy, 2.0 / 5.0, 1e-12, "argmax is class 2: %g",
                       r.classifier_accuracy);
    cr_assert_float_eq(r.gold_prob, want_prob, 1e-6, "gold_prob %g, want %g", r.gold_prob,
                       want_prob);
    cr_assert(isfinite(r.fcd) && r.fcd > 0.0);
    gv_judge_free(&j);
    gv_image_model_free(&m);
    be()->ctx_destroy(c);
}

Test(eval, micro_batched_judge_matches_one_plain_forward) {
    gv_ctx *c = make_ctx(0);
    gv_image_model m;
    small_classifier(&m, 6);
    enum { N = 7, D = 784, K = 10, F = 16 };
    static float p[N * D], x[N * D], probs[N * K], feat[N * F], probs_dev[N * K], logits[N * K];
    for (int i = 0; i < N * D; ++i) {
        p[i] = tu_rand_unit(&lcg_state);
        x[i] = 2.0f * p[i] - 1.0f;
    }
    /* plain: one N-row forward of x = 2p - 1, softmax on the host */
    gv_arena a;
    gv_arena_init(&a, be(), "plain");
    gv_classifier_saved saved;
    float *xd, *ld, *pd;
    cr_assert_eq(be()->alloc(sizeof x, (void **)&xd), GV_OK);
    cr_assert_eq(be()->alloc(sizeof logits, (void **)&ld), GV_OK);
    cr_assert_eq(be()->alloc(sizeof p, (void **)&pd), GV_OK);
    cr_assert_eq(be()->copy_from_host(xd, x, sizeof x), GV_OK);
    cr_assert_eq(be()->copy_from_host(pd, p, sizeof p), GV_OK);
    gv_arena_measure_begin(&a);
    cr_assert_eq(gv_classifier_forward(&m.classifier, c, &a, gv_image_model_theta(&m), N, xd, ld,
                                       &saved), GV_OK);
    cr_assert_eq(gv_arena_reserve(&a, gv_arena_measure_end(&a)), GV_OK);
    cr_assert_eq(gv_classifier_forward(&m.classifier, c, &a, gv_image_model_theta(&m), N, xd, ld,
                                       &saved), GV_OK);
    static float plain_feat[N * F];
    cr_assert_eq(be()->copy_to_host(logits, ld, sizeof logits), GV_OK);
    cr_assert_eq(be()->copy_to_host(plain_feat, saved.features, sizeof plain_feat), GV_OK);

    gv_judge j;
    cr_assert_eq(gv_judge_create(&j, c, &m.classifier, gv_image_model_theta(&m), 3), GV_OK);
    cr_assert_eq(gv_judge_run(&j, c, p, 0, N, probs, feat), GV_OK, "%s", gv_last_error());
    cr_assert_eq(gv_judge_run(&j, c, pd, 1, N, probs_dev, NULL), GV_OK, "%s", gv_last_error());
    cr_assert_eq(memcmp(probs, probs_dev, sizeof probs), 0, "host and device inputs differ");
    double spread = 0.0;
    for (int i = 0; i < N; ++i) {
        double mx = logits[i * K], z = 0.0;
        for (int k = 1; k < K; ++k) mx = fmax(mx, logits[i * K + k]);
        for (int k = 0; k < K; ++k) z += exp(logits[i * K + k] - mx);
        for (int k = 0; k < K; ++k) {
            double want = exp(logits[i * K + k] - mx) / z;
            cr_assert_float_eq(probs[i * K + k], want, 1e-6, "probs[%d][%d] %g want %g", i, k,
                               probs[i * K + k], want);
            spread = fmax(spread, fabs(want - 0.1));
        }
        for (int f = 0; f < F; ++f)
            cr_assert_float_eq(feat[i * F + f], plain_feat[i * F + f], 1e-6, "feature %d,%d", i, f);
    }
    cr_assert_gt(spread, 1e-3, "uniform probabilities: the comparison is vacuous");
    gv_judge_free(&j);
    gv_arena_release(&a);
    be()->free(xd);
    be()->free(ld);
    be()->free(pd);
    gv_image_model_free(&m);
    be()->ctx_destroy(c);
}

Test(eval, fcd_on_real_mnist_test_images) {
    char path[4096];
    snprintf(path, sizeof path, "%s/data/mnist.h5", GROVE_SOURCE_DIR);
    cr_assert_eq(gv_dataset_ensure(GV_DATASET_MNIST, path, NULL, NULL), GV_OK, "%s",
                 gv_last_error());
    gv_dataset ds;
    cr_assert_eq(gv_dataset_load_as(path, GV_DATASET_MNIST, &ds), GV_OK, "%s", gv_last_error());
    gv_ctx *c = make_ctx(1);
    gv_image_model m;
    small_classifier(&m, 7);
    gv_judge j;
    cr_assert_eq(gv_judge_create(&j, c, &m.classifier, gv_image_model_theta(&m), 50), GV_OK);
    float *ref = NULL;
    int64_t n = 0;
    cr_assert_eq(gv_judge_split_features(&j, c, &ds.test, 0, &ref, &n), GV_OK, "%s",
                 gv_last_error());
    cr_assert_eq(n, ds.test.n);
    /* the test images themselves, and the same images shifted 4 pixels right */
    float *p = malloc((size_t)n * 784 * sizeof(float)), *shifted = calloc((size_t)n * 784, 4);
    int64_t *idx = malloc((size_t)n * sizeof(int64_t));
    cr_assert(p && shifted && idx);
    for (int64_t i = 0; i < n; ++i) idx[i] = i;
    cr_assert_eq(gv_dataset_batch_to_unit(&ds.test, idx, n, p), GV_OK);
    for (int64_t i = 0; i < n; ++i)
        for (int y = 0; y < 28; ++y)
            for (int x = 4; x < 28; ++x) shifted[i * 784 + y * 28 + x] = p[i * 784 + y * 28 + x - 4];
    gv_eval_result same, half, moved;
    cr_assert_eq(gv_eval_images(&j, c, p, 0, n, ds.test.labels, ref, n, &same), GV_OK, "%s",
                 gv_last_error());
    cr_assert_eq(gv_eval_images(&j, c, p, 0, n / 2, ds.test.labels, ref + (n / 2) * 16, n - n / 2,
                                &half), GV_OK);
    cr_assert_eq(gv_eval_images(&j, c, shifted, 0, n, ds.test.labels, ref, n, &moved), GV_OK);
    cr_log_info("fcd: same %g, half/half %g, shifted %g", same.fcd, half.fcd, moved.fcd);
    cr_assert_lt(same.fcd, 1e-6 * (1.0 + moved.fcd), "identical sets: fcd %g", same.fcd);
    cr_assert_gt(half.fcd, 0.0);
    cr_assert_gt(moved.fcd, 3.0 * half.fcd, "shift %g vs split %g", moved.fcd, half.fcd);
    free(p);
    free(shifted);
    free(idx);
    free(ref);
    gv_judge_free(&j);
    gv_image_model_free(&m);
    be()->ctx_destroy(c);
    gv_dataset_free(&ds);
}

/* ---- exported tiny models: gv_eval_checkpoint and the CLI ------------------------------------- */

static char tmpdir[256];

static void write_models(char *unet_path, char *gold_path, char *hash) {
    tu_make_tmpdir(tmpdir, sizeof tmpdir, "eval");
    sprintf(unet_path, "%s/unet.h5", tmpdir);
    sprintf(gold_path, "%s/gold.h5", tmpdir);
    tu_export_tiny_unet(unet_path, 9, hash);
    gv_image_model g;
    small_classifier(&g, 10);
    cr_assert_eq(gv_image_model_save_export(&g, g.params.values, NULL, gold_path), GV_OK, "%s",
                 gv_last_error());
    gv_image_model_free(&g);
}

static void remove_models(const char *a, const char *b) {
    unlink(a);
    unlink(b);
    rmdir(tmpdir);
}

Test(eval, checkpoint_end_to_end) {
    char unet[512], gold[512], hash[17], prompts[4096];
    write_models(unet, gold, hash);
    snprintf(prompts, sizeof prompts, "%s/configs/prompts/mnist-eval.txt", GROVE_SOURCE_DIR);
    gv_ctx *c = make_ctx(1);
    gv_eval_options o = {.checkpoint = unet, .gold = gold, .prompts = prompts, .n = 6, .steps = 2,
                         .shift = 3.0, .guidance = 1.5, .seed = 3, .micro_batch = 4,
                         .use_ema = 1, .max_reference = 100};
    gv_eval_record r, r2;
    cr_assert_eq(gv_eval_checkpoint(c, &o, &r), GV_OK, "%s", gv_last_error());
    cr_assert_str_eq(r.checkpoint, hash);
    cr_assert_eq(r.n, 6);
    cr_assert_eq(r.nfe, 6 * 2 * 2, "nfe %lld", (long long)r.nfe);
    cr_assert(r.result.classifier_accuracy >= 0.0 && r.result.classifier_accuracy <= 1.0);
    cr_assert(r.result.gold_prob > 0.0 && r.result.gold_prob < 1.0);
    cr_assert(isfinite(r.result.fcd) && r.result.fcd > 0.0);
    cr_assert_eq(gv_eval_checkpoint(c, &o, &r2), GV_OK);
    cr_assert_eq(r.result.fcd, r2.result.fcd, "eval is not deterministic");
    cr_assert_eq(r.result.gold_prob, r2.result.gold_prob);
    o.checkpoint = gold; /* a classifier is not a UNet */
    cr_assert_neq(gv_eval_checkpoint(c, &o, &r2), GV_OK);
    cr_assert(strstr(gv_last_error(), "not a UNet"), "%s", gv_last_error());
    be()->ctx_destroy(c);
    remove_models(unet, gold);
}

static void read_file(const char *path, char **buf, size_t *len) {
    FILE *f = fopen(path, "rb");
    cr_assert(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    *buf = malloc(*len + 1);
    cr_assert(*buf && fread(*buf, 1, *len, f) == *len);
    (*buf)[*len] = '\0';
    fclose(f);
}

Test(eval, grove_sample_and_eval_commands) {
    char unet[512], gold[512], hash[17], cmd[8192], out1[600], out2[600], json[600];
    write_models(unet, gold, hash);
    snprintf(out1, sizeof out1, "%s/a.png", tmpdir);
    snprintf(out2, sizeof out2, "%s/b.png", tmpdir);
    snprintf(json, sizeof json, "%s/eval.json", tmpdir);
    const char *args = "--prompt \"the handwritten seven\" -n 5 --seed 4 --steps 3 --guidance 2";
    snprintf(cmd, sizeof cmd, "GROVE_THREADS=2 %s/grove sample --ckpt %s %s --out %s >/dev/null",
             GROVE_BINARY_DIR, unet, args, out1);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    snprintf(cmd, sizeof cmd, "GROVE_THREADS=2 %s/grove sample --ckpt %s %s --out %s >/dev/null",
             GROVE_BINARY_DIR, unet, args, out2);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    char *a, *b;
    size_t la, lb;
    read_file(out1, &a, &la);
    read_file(out2, &b, &lb);
    cr_assert(la == lb && memcmp(a, b, la) == 0, "same seed, different PNG bytes");
    free(a);
    free(b);
    gv_png_image img;
    cr_assert_eq(gv_png_read(out1, &img), GV_OK, "%s", gv_last_error());
    /* 5 images -> 3 columns, 2 rows of 28x28 with 2-pixel padding */
    cr_assert_eq(img.w, 3 * 28 + 4 * 2);
    cr_assert_eq(img.h, 2 * 28 + 3 * 2);
    const char *keys[][2] = {{"prompt", "the handwritten seven"}, {"seed", "4"}, {"steps", "3"},
                             {"sampler", "euler-ode"}, {"cfg", "2"}, {"shift", "3"},
                             {"checkpoint", hash}};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; ++i) {
        const char *v = gv_png_text_get(&img, keys[i][0]);
        cr_assert(v && !strcmp(v, keys[i][1]), "text %s = %s, want %s", keys[i][0],
                  v ? v : "(none)", keys[i][1]);
    }
    gv_png_image_free(&img);

    snprintf(cmd, sizeof cmd,
             "GROVE_THREADS=2 %s/grove eval %s/configs/align/mnist-flowgrpo.yaml --ckpt %s "
             "--gold %s -n 4 --steps 2 --seed 1 --device cpu --set run.micro_batch=4 > %s",
             GROVE_BINARY_DIR, GROVE_SOURCE_DIR, unet, gold, json);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    char *text;
    size_t lt;
    read_file(json, &text, &lt);
    char want[64];
    snprintf(want, sizeof want, "{\"checkpoint\": \"%s\", \"n\": 4, \"steps\": 2,", hash);
    cr_assert(!strncmp(text, want, strlen(want)), "eval printed: %s", text);
    cr_assert(strstr(text, "\"nfe\": 8,") && strstr(text, "\"fcd\": ") &&
              strstr(text, "\"gold_prob\": ") && strstr(text, "\"seconds\": "), "%s", text);
    cr_assert_eq(strchr(text, '\n'), text + lt - 1, "not exactly one line: %s", text);
    free(text);
    unlink(out1);
    unlink(out2);
    unlink(json);
    remove_models(unet, gold);
}
