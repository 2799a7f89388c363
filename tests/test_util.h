/* Helpers shared by the Criterion tests in tests/cpu: CPU contexts, a seeded LCG for test data,
 * device buffers on the CPU backend, and tiny model configurations and exported model files. Each
 * helper asserts on failure (the test stops there). Header-only: every test is its own executable;
 * a test keeps its own LCG state so its numbers stay its own. Not for the op harness (tests/ops),
 * which has its own table-driven machinery. */
#ifndef GROVE_TESTS_TEST_UTIL_H
#define GROVE_TESTS_TEST_UTIL_H

#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "grove/image_model.h"
#include "grove/kernels_cpu.h"

/* ---- contexts and data ------------------------------------------------------------------------ */

static inline gv_ctx *tu_make_ctx(int threads, int use_fast) {
    gv_ctx *ctx = NULL;
    cr_assert_eq(grove_backend_cpu()->ctx_create(
                     &(gv_ctx_options){.threads = threads, .use_fast = use_fast}, &ctx),
                 GV_OK, "%s", gv_last_error());
    return ctx;
}

/* Uniform in [0, 1) from a 64-bit LCG; the caller owns the state. */
static inline float tu_rand_unit(uint64_t *state) {
    *state = *state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(*state >> 40) / (double)(1ull << 24));
}
/* Uniform in [-1, 1). */
static inline float tu_rand_sym(uint64_t *state) { return tu_rand_unit(state) * 2.0f - 1.0f; }

/* ---- device buffers on the CPU backend -------------------------------------------------------- */

/* n zeroed floats. */
static inline float *tu_dev_floats(int64_t n) {
    void *p = NULL;
    cr_assert_eq(grove_backend_cpu()->alloc((size_t)n * sizeof(float), &p), GV_OK);
    cr_assert_eq(grove_backend_cpu()->memset_zero(p, (size_t)n * sizeof(float)), GV_OK);
    return p;
}
static inline void tu_put(void *dst, const void *src, size_t bytes) {
    cr_assert_eq(grove_backend_cpu()->copy_from_host(dst, src, bytes), GV_OK);
}
static inline void tu_get(void *dst, const void *src, size_t bytes) {
    cr_assert_eq(grove_backend_cpu()->copy_to_host(dst, src, bytes), GV_OK);
}

/* ---- tiny models ------------------------------------------------------------------------------ */

/* An 8x8 UNet with 7 prompt words and 3-token prompts: channels 8/16, one mid block, random output
   layer (zero_init_out 0). */
static inline gv_unet_config tu_tiny_unet_config(void) {
    gv_unet_config c = gv_unet_config_s(7, 3);
    c.height = c.width = 8;
    c.channels[0] = 8;
    c.channels[1] = 16;
    c.mid_blocks = 1;
    c.emb_dim = 16;
    c.time_dim = 8;
    c.groups = 4;
    c.zero_init_out = 0;
    return c;
}

/* mkdtemp("/tmp/grove-test-<name>-XXXXXX") into dir. */
static inline void tu_make_tmpdir(char *dir, size_t len, const char *name) {
    snprintf(dir, len, "/tmp/grove-test-%s-XXXXXX", name);
    cr_assert(mkdtemp(dir));
}

/* Export a tiny 28x28 MNIST UNet (channels 8/8, one mid block, the shipped prompt vocabulary)
   initialised from `seed` to `path`; its parameter hash in hex into hash (17 bytes) unless NULL. */
static inline void tu_export_tiny_unet(const char *path, uint32_t seed, char *hash) {
    char vpath[4096];
    snprintf(vpath, sizeof vpath, "%s/configs/prompts/mnist-vocab.txt", GROVE_SOURCE_DIR);
    FILE *f = fopen(vpath, "r");
    cr_assert(f);
    static char vocab[65536];
    size_t len = fread(vocab, 1, sizeof vocab - 1, f);
    fclose(f);
    vocab[len] = '\0';
    gv_vocab v;
    cr_assert_eq(gv_vocab_load(vpath, &v), GV_OK);
    gv_unet_config uc = gv_unet_config_s(v.n + 1, 8);
    gv_vocab_free(&v);
    uc.channels[0] = 8;
    uc.channels[1] = 8;
    uc.mid_blocks = 1;
    uc.emb_dim = 16;
    uc.time_dim = 8;
    uc.groups = 4;
    uc.zero_init_out = 0;
    gv_image_model u;
    cr_assert_eq(gv_image_model_create(&u, GV_MODEL_UNET, &uc, grove_backend_cpu(), 0), GV_OK,
                 "%s", gv_last_error());
    snprintf(u.dataset, sizeof u.dataset, "mnist");
    cr_assert_eq(gv_image_model_set_vocab(&u, vocab, vpath), GV_OK, "%s", gv_last_error());
    cr_assert_eq(gv_params_initialize(&u.params, seed), GV_OK);
    cr_assert_eq(gv_image_model_save_export(&u, u.params.values, NULL, path), GV_OK, "%s",
                 gv_last_error());
    if (hash) {
        uint64_t h = 0;
        cr_assert_eq(gv_params_hash(&u.params, &h), GV_OK);
        snprintf(hash, 17, "%016llx", (unsigned long long)h);
    }
    gv_image_model_free(&u);
}

#endif
