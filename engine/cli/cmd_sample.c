/* grove sample --ckpt FILE --prompt TEXT [-n N] --out FILE [--seed S] [--steps N] [--guidance W]
 *              [--shift S] [--raw] [--device KIND]
 * Samples n images of one prompt with the deterministic Euler ODE sampler and writes them as a PNG
 * grid with text chunks (prompt, seed, steps, sampler, cfg, shift, checkpoint). Defaults: n 16,
 * seed 0, steps 20, shift 3.0 (the shifted schedule of ALGORITHMS.md §1, the same shift as the
 * task configs), guidance 1.0 (no CFG), EMA weights. Every forward has GV_SAMPLE_MICRO_BATCH samples
 * (padded), so image i does not depend on n, and the same arguments give identical bytes.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "grove/backend.h"
#include "grove/denoiser.h"
#include "grove/image.h"
#include "grove/image_model.h"

#define GV_SAMPLE_MICRO_BATCH 16
#define GV_SAMPLE_GRID_PAD 2

/* ---- grove sample ----------------------------------------------------------------------------- */

typedef struct sample_args {
    const char *ckpt, *prompt, *out, *device;
    long n, seed, steps;
    double guidance, shift;
    int raw;
} sample_args;

static gv_status sample_parse(const gv_command *cmd, const gv_cli_args *args, sample_args *a) {
    *a = (sample_args){.n = 16, .seed = 0, .steps = 20, .guidance = 1.0, .shift = 3.0};
    a->ckpt = gv_cli_option_value(cmd, args, "ckpt");
    a->prompt = gv_cli_option_value(cmd, args, "prompt");
    a->out = gv_cli_option_value(cmd, args, "out");
    a->device = gv_cli_option_value(cmd, args, "device");
    a->raw = gv_cli_option_value(cmd, args, "raw") != NULL;
    if (!a->ckpt || !a->prompt || !a->out)
        return GV_ERROR(GV_ERR_INVALID, "--ckpt, --prompt and --out are required");
    const char *v;
    if ((v = gv_cli_option_value(cmd, args, "n")))
        GV_TRY(gv_cli_parse_long("n", v, 1, 4096, &a->n));
    if ((v = gv_cli_option_value(cmd, args, "seed")))
        GV_TRY(gv_cli_parse_long("seed", v, 0, 4294967295L, &a->seed));
    if ((v = gv_cli_option_value(cmd, args, "steps")))
        GV_TRY(gv_cli_parse_long("steps", v, 1, GV_SAMPLER_MAX_STEPS, &a->steps));
    if ((v = gv_cli_option_value(cmd, args, "guidance")))
        GV_TRY(gv_cli_parse_double("guidance", v, 0.0, 100.0, &a->guidance));
    if ((v = gv_cli_option_value(cmd, args, "shift")))
        GV_TRY(gv_cli_parse_double("shift", v, 1e-3, 1e3, &a->shift));
    return GV_OK;
}

/* Sample, lay out and write; everything allocated here is released by the caller's frees. */
static gv_status sample_run(const sample_args *a, gv_ctx *c, gv_image_model *m, gv_denoiser *d,
                            float **x, float **p, int32_t **ids, uint8_t **pixels) {
    const gv_backend *be = c->backend;
    GV_TRY(gv_image_model_load(a->ckpt, be, !a->raw, m));
    if (m->kind != GV_MODEL_UNET)
        return GV_ERROR(GV_ERR_INVALID, "%s: not a UNet checkpoint", a->ckpt);
    const gv_unet_config *uc = &m->unet.cfg;
    const int n = (int)a->n, L = uc->max_prompt_len;
    const int64_t D = (int64_t)uc->in_channels * uc->height * uc->width;
    if (!(*ids = malloc((size_t)n * (size_t)L * sizeof(int32_t))) ||
        !(*p = malloc((size_t)n * (size_t)D * sizeof(float))))
        return GV_ERROR(GV_ERR_OOM, "sample: out of memory for %d images", n);
    int label = -1;
    GV_TRY(gv_image_model_encode_prompt(m, a->prompt, *ids, &label));
    for (int i = 1; i < n; ++i) memcpy(*ids + (size_t)i * L, *ids, (size_t)L * sizeof(int32_t));
    GV_TRY(be->alloc((size_t)n * (size_t)D * sizeof(float), (void **)x));
    GV_TRY(gv_denoiser_create(d, c, &m->unet, gv_image_model_theta(m),
                              &(gv_denoiser_options){.micro_batch = GV_SAMPLE_MICRO_BATCH,
                                                     .guidance = (float)a->guidance,
                                                     .null_id = m->null_id}));
    gv_generate_options g = gv_generate_defaults();
    g.steps = (int)a->steps;
    g.shift = a->shift;
    g.seed = (uint32_t)a->seed;
    GV_TRY(gv_generate(d, c, n, *ids, &g, *x, *p, NULL));

    int cols = (int)ceil(sqrt((double)n)), gh = 0, gw = 0;
    GV_TRY(gv_image_grid(*p, n, uc->in_channels, uc->height, uc->width, cols, GV_SAMPLE_GRID_PAD,
                         NULL, &gh, &gw));
    if (!(*pixels = malloc((size_t)gh * (size_t)gw * (size_t)uc->in_channels)))
        return GV_ERROR(GV_ERR_OOM, "sample: out of memory for a %dx%d grid", gh, gw);
    GV_TRY(gv_image_grid(*p, n, uc->in_channels, uc->height, uc->width, cols, GV_SAMPLE_GRID_PAD,
                         *pixels, &gh, &gw));
    char seed[32], steps[32], cfg[32], shift[32];
    snprintf(seed, sizeof seed, "%lu", (unsigned long)a->seed);
    snprintf(steps, sizeof steps, "%ld", a->steps);
    snprintf(cfg, sizeof cfg, "%g", a->guidance);
    snprintf(shift, sizeof shift, "%g", a->shift);
    const gv_png_text texts[] = {{"prompt", a->prompt}, {"seed", seed},      {"steps", steps},
                                 {"sampler", "euler-ode"}, {"cfg", cfg},     {"shift", shift},
                                 {"checkpoint", m->hash}};
    return gv_png_write(a->out, *pixels, gh, gw, uc->in_channels, texts,
                        (int)(sizeof texts / sizeof texts[0]));
}

int gv_cmd_sample(const gv_command *cmd, const gv_cli_args *args) {
    sample_args a;
    if (sample_parse(cmd, args, &a) != GV_OK) {
        fprintf(stderr, "grove: %s: %s\n", cmd->name, gv_last_error());
        return GV_EXIT_USAGE;
    }
    gv_ctx *c = NULL;
    if (gv_cli_open_device(a.device, 0, &c) != GV_OK) return gv_cli_fail(cmd);
    gv_image_model m;
    gv_denoiser d;
    memset(&m, 0, sizeof m);
    memset(&d, 0, sizeof d);
    float *x = NULL, *p = NULL;
    int32_t *ids = NULL;
    uint8_t *pixels = NULL;
    gv_status s = sample_run(&a, c, &m, &d, &x, &p, &ids, &pixels);
    if (x) c->backend->free(x);
    free(p);
    free(ids);
    free(pixels);
    gv_denoiser_free(&d);
    gv_image_model_free(&m);
    const gv_backend *be = c->backend;
    be->ctx_destroy(c);
    if (s != GV_OK) return gv_cli_fail(cmd);
    printf("grove sample: wrote %s (%ld images, seed %ld, %ld steps)\n", a.out, a.n, a.seed,
           a.steps);
    return GV_EXIT_OK;
}
