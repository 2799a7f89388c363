/* Shared helpers of the `grove train` system tests (tests/cpu/test_grpo*.c): a tiny exported UNet
 * (channels 8/8, random init) and a tiny gold classifier in a temp dir, runs of
 * tests/data/align/tiny.yaml with --set edits, metrics.jsonl lookups, timing-free metrics, run
 * hashes and rollouts-dump tensors. Header-only (static functions): each test executable
 * includes it once. */
#ifndef GROVE_TESTS_GRPO_TEST_UTIL_H
#define GROVE_TESTS_GRPO_TEST_UTIL_H

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grove/checkpoint.h"
#include "grove/grpo.h"
#include "grove/kernels_cpu.h"
#include "test_util.h"

static inline const gv_backend *be(void) { return grove_backend_cpu(); }
static char tmpdir[256], unet_path[512], gold_path[512];

static inline void write_models(void) {
    tu_make_tmpdir(tmpdir, sizeof tmpdir, "grpo");
    sprintf(unet_path, "%s/unet.h5", tmpdir);
    sprintf(gold_path, "%s/gold.h5", tmpdir);
    tu_export_tiny_unet(unet_path, 9, NULL);
    gv_classifier_config cc = gv_classifier_config_default(4);
    cc.features = 16;
    gv_image_model g;
    cr_assert_eq(gv_image_model_create(&g, GV_MODEL_CLASSIFIER, &cc, be(), 0), GV_OK);
    snprintf(g.dataset, sizeof g.dataset, "mnist");
    cr_assert_eq(gv_params_initialize(&g.params, 10), GV_OK);
    cr_assert_eq(gv_image_model_save_export(&g, g.params.values, NULL, gold_path), GV_OK, "%s",
                 gv_last_error());
    gv_image_model_free(&g);
}

static inline void remove_tree(void) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    cr_assert_eq(system(cmd), 0);
}

/* Load tests/data/align/tiny.yaml with the temp models, run.dir = <tmp>/<run>, and `extra` sets. */
static inline void load_cfg(gv_run_config *cfg, const char *run, const char *const *extra, int nextra) {
    static char s_model[600], s_dir[600], s_eval[900];
    snprintf(s_model, sizeof s_model, "model.checkpoint=%s", unet_path);
    snprintf(s_dir, sizeof s_dir, "run.dir=%s/%s", tmpdir, run);
    snprintf(s_eval, sizeof s_eval,
             "eval_rewards=[{builtin: classifier, model: %s}, {builtin: ink}]", gold_path);
    const char *sets[16] = {s_model, s_dir, s_eval};
    int n = 3;
    for (int i = 0; i < nextra; ++i) sets[n++] = extra[i];
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/data/align/tiny.yaml", GROVE_SOURCE_DIR);
    cr_assert_eq(gv_run_config_load(path, sets, n, NULL, cfg, NULL), GV_OK, "%s", gv_last_error());
}

static inline gv_status run(const char *name, const char *const *extra, int nextra, int64_t stop_after,
                     gv_grpo_result *res) {
    gv_run_config cfg;
    load_cfg(&cfg, name, extra, nextra);
    gv_grpo_options opt = {.backend = be(), .stop_after = stop_after, .result = res};
    gv_status s = gv_grpo_run(&cfg, &opt);
    gv_run_config_free(&cfg);
    return s;
}

static inline char *slurp_run(const char *run, const char *file) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s/%s", tmpdir, run, file);
    char *text = NULL;
    cr_assert_eq(gv_rundir_slurp(path, &text), GV_OK, "%s", gv_last_error());
    return text;
}

/* The n-th (0-based) numeric value of "key": in the text, NaN when absent; with eval_only, only
   the eval records count. */
static inline double metric_in(const char *text, const char *key, int nth, int eval_only) {
    char pat[128];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    for (const char *p = text; (p = strstr(p, pat)); p += strlen(pat)) {
        const char *bol = p;
        while (bol > text && bol[-1] != '\n') --bol;
        const char *v = p + strlen(pat);
        if ((*v != '-' && (*v < '0' || *v > '9')) || (eval_only && strncmp(bol, "{\"iteration\":", 13) == 0 &&
                                                     !strstr(bol, "\"eval\"")))
            continue;
        if (eval_only && strstr(bol, "\"eval\"") > p) continue;
        if (nth-- == 0) return strtod(v, NULL);
    }
    return NAN;
}
static inline double metric(const char *text, const char *key, int nth) { return metric_in(text, key, nth, 0); }

/* The metrics text without the timing fields (samples_per_s, wall_s are last in every record). */
static inline void strip_timing(char *text) {
    char *out = text;
    for (char *p = text; *p;) {
        char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        char *cut = strstr(p, ",\"samples_per_s\":");
        if (!cut || cut > p + len) cut = strstr(p, ",\"wall_s\":");
        size_t keep = cut && cut < p + len ? (size_t)(cut - p) : len;
        memmove(out, p, keep);
        out += keep;
        *out++ = '\n';
        p += len + (eol ? 1 : 0);
    }
    *out = 0;
}

/* hash (17 bytes) = the /meta model_hash of <root>/<run>/last.h5. */
static inline void last_hash_in(const char *root, const char *run, char *hash) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s/last.h5", root, run);
    gv_ckpt_reader *r = NULL;
    cr_assert_eq(gv_ckpt_open(path, &r), GV_OK, "%s", gv_last_error());
    char *h = NULL;
    cr_assert_eq(gv_ckpt_get_str(r, GV_CKPT_META, "model_hash", &h), GV_OK);
    snprintf(hash, 17, "%s", h);
    free(h);
    gv_ckpt_close(r);
}

/* the same under this suite's tmpdir */
static inline void last_hash(const char *run, char *hash) { last_hash_in(tmpdir, run, hash); }

/* A float32 tensor `name` of a rollouts-<k>.h5 dump's /steps group (caller frees). */
static inline float *read_steps(gv_ckpt_reader *r, const char *name, int rank, const int64_t *dims) {
    gv_shape sh = gv_shape_make(rank, dims);
    float *h = malloc((size_t)gv_shape_numel(&sh) * sizeof(float));
    cr_assert_eq(gv_ckpt_read_tensor(r, "steps", name, &sh, h), GV_OK, "%s", gv_last_error());
    return h;
}

#endif
