/* The UNet denoiser adapter and gv_generate (see denoiser.h): fixed-shape, padded micro-batches,
 * CFG rows in the same forward, Philox initial noise addressed per sample. Tensors are touched only
 * through ops and explicit backend copies (DESIGN.md §3). */
#include "grove/denoiser.h"

#include <stdlib.h>
#include <string.h>

#include "grove/rng.h"

static gv_status host_alloc(size_t bytes, void **out) {
    *out = calloc(1, bytes ? bytes : 1);
    if (!*out) return GV_ERROR(GV_ERR_OOM, "denoiser: cannot allocate %zu host bytes", bytes);
    return GV_OK;
}

static gv_status dev_alloc(const gv_backend *be, size_t bytes, void **out) {
    GV_TRY(be->alloc(bytes, out));
    return be->memset_zero(*out, bytes);
}

/* One R-row forward of the staged rows into v_stage (also the measure pass, where nothing runs). */
static gv_status forward_stage(gv_denoiser *d, gv_ctx *c) {
    gv_arena_reset(&d->arena);
    return gv_unet_forward(d->unet, c, &d->arena, d->theta, d->rows, d->x_stage, d->sigma_stage,
                           d->ids_stage, d->v_stage, &d->saved);
}

gv_status gv_denoiser_create(gv_denoiser *d, gv_ctx *c, const gv_unet *unet, const float *theta,
                             const gv_denoiser_options *opt) {
    memset(d, 0, sizeof *d);
    if (!unet || !theta || !opt || opt->micro_batch < 1 || opt->null_id < 0 ||
        opt->null_id >= unet->cfg.vocab_size)
        return GV_ERROR(GV_ERR_INVALID, "denoiser: need a model, parameters, micro_batch >= 1 "
                        "and a null id in [0, %d) (got micro_batch %d, null id %d)",
                        unet ? unet->cfg.vocab_size : 0, opt ? opt->micro_batch : 0,
                        opt ? opt->null_id : -1);
    d->unet = unet;
    d->theta = theta;
    d->backend = c->backend;
    d->opt = *opt;
    d->rows = opt->guidance == 1.0f ? opt->micro_batch : 2 * opt->micro_batch;
    d->L = unet->cfg.max_prompt_len;
    d->D = (int64_t)unet->cfg.in_channels * unet->cfg.height * unet->cfg.width;
    const size_t R = (size_t)d->rows, img = (size_t)d->D * sizeof(float);
    const gv_backend *be = c->backend;
    gv_status s;
    if ((s = dev_alloc(be, R * img, (void **)&d->x_stage)) != GV_OK ||
        (s = dev_alloc(be, R * img, (void **)&d->v_stage)) != GV_OK ||
        (s = dev_alloc(be, R * sizeof(float), (void **)&d->sigma_stage)) != GV_OK ||
        (s = dev_alloc(be, R * (size_t)d->L * sizeof(int32_t), (void **)&d->ids_stage)) != GV_OK ||
        (s = host_alloc(R * sizeof(float), (void **)&d->sigma_host)) != GV_OK ||
        (s = host_alloc(R * (size_t)d->L * sizeof(int32_t), (void **)&d->ids_host)) != GV_OK) {
        gv_denoiser_free(d);
        return s;
    }
    /* DESIGN.md §3 arenas: measure one forward, reserve exactly that, never allocate again */
    gv_arena_init(&d->arena, be, "denoiser activations");
    gv_arena_measure_begin(&d->arena);
    s = forward_stage(d, c);
    size_t peak = gv_arena_measure_end(&d->arena);
    if (s == GV_OK) s = gv_arena_reserve(&d->arena, peak);
    if (s != GV_OK) gv_denoiser_free(d);
    return s;
}

void gv_denoiser_free(gv_denoiser *d) {
    if (!d) return;
    if (d->backend) {
        void *bufs[] = {d->x_stage, d->v_stage, d->sigma_stage, d->ids_stage, d->gen_v, d->gen_eps};
        for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; ++i)
            if (bufs[i]) d->backend->free(bufs[i]);
        gv_arena_release(&d->arena);
    }
    free(d->sigma_host);
    free(d->ids_host);
    memset(d, 0, sizeof *d);
}

gv_status gv_denoiser_bind(gv_denoiser *d, int n, const int32_t *prompt_ids) {
    if (n < 1 || !prompt_ids)
        return GV_ERROR(GV_ERR_INVALID, "denoiser: bind needs n >= 1 samples and their prompt ids "
                        "(got n = %d)", n);
    d->n = n;
    d->prompt_ids = prompt_ids;
    return GV_OK;
}

/* Host ids rows: [0, rows) the chunk's prompts, the rest (tail padding, and the CFG half) the null
   prompt [null_id, -1, ...] (DESIGN.md §5). */
static void stage_ids(gv_denoiser *d, int first, int rows) {
    const int L = d->L;
    for (int r = 0; r < d->rows; ++r) {
        int32_t *row = d->ids_host + (size_t)r * L;
        if (r < rows) {
            memcpy(row, d->prompt_ids + (size_t)(first + r) * L, (size_t)L * sizeof(int32_t));
        } else {
            row[0] = d->opt.null_id;
            for (int j = 1; j < L; ++j) row[j] = -1;
        }
    }
}

gv_status gv_denoiser_call(void *user, gv_ctx *c, const float *x, float sigma, float *v_out) {
    gv_denoiser *d = user;
    if (!d->prompt_ids)
        return GV_ERROR(GV_ERR_INVALID, "denoiser: called before gv_denoiser_bind");
    const gv_backend *be = d->backend;
    const int mb = d->opt.micro_batch, cfg = d->rows != mb;
    const size_t img = (size_t)d->D * sizeof(float);
    for (int r = 0; r < d->rows; ++r) d->sigma_host[r] = sigma;
    GV_TRY(be->copy_from_host(d->sigma_stage, d->sigma_host, (size_t)d->rows * sizeof(float)));
    for (int first = 0; first < d->n; first += mb) {
        const int rows = d->n - first < mb ? d->n - first : mb;
        stage_ids(d, first, rows);
        GV_TRY(be->copy_from_host(d->ids_stage, d->ids_host,
                                  (size_t)d->rows * (size_t)d->L * sizeof(int32_t)));
        GV_TRY(be->copy(d->x_stage, x + (int64_t)first * d->D, (size_t)rows * img));
        if (rows < mb) /* DESIGN.md §3: the tail is padded with zeros, its output ignored */
            GV_TRY(be->memset_zero(d->x_stage + (int64_t)rows * d->D, (size_t)(mb - rows) * img));
        if (cfg) /* the null rows see the same latents */
            GV_TRY(be->copy(d->x_stage + (int64_t)mb * d->D, d->x_stage, (size_t)mb * img));
        GV_TRY(forward_stage(d, c));
        float *out = v_out + (int64_t)first * d->D;
        if (cfg) {
            /* ALGORITHMS.md §1 CFG: v = v_null + w·(v_cond − v_null) */
            gv_ew_dims e = {.n = (int64_t)rows * d->D};
            GV_TRY(be->ops->cfg_combine(c, out, d->v_stage, d->v_stage + (int64_t)mb * d->D,
                                        d->opt.guidance, &e));
        } else {
            GV_TRY(be->copy(out, d->v_stage, (size_t)rows * img));
        }
        d->nfe += (int64_t)rows * (cfg ? 2 : 1);
    }
    return GV_OK;
}

gv_generate_options gv_generate_defaults(void) {
    return (gv_generate_options){.steps = 20, .shift = 3.0, .noise = {.kind = GV_NOISE_ODE},
                                 .seed = 0, .stream = GV_RNG_STREAM_EVAL, .iteration = 0};
}

/* x_T: sample i's D normals at (iteration, slot = i, purpose LATENT), elements 0..D-1. */
static gv_status fill_latents(gv_ctx *c, const gv_generate_options *o, int n, int64_t D,
                              float *x) {
    for (int i = 0; i < n; ++i) {
        gv_rng_addr addr = {.iteration = o->iteration, .slot = (uint32_t)i,
                            .purpose = GV_RNG_PURPOSE_LATENT};
        gv_philox_args pa;
        GV_TRY(gv_rng_args(o->seed, o->stream, &addr, 0, D, &pa));
        GV_TRY(c->backend->ops->philox_normal_fill(c, x + (int64_t)i * D, &pa));
    }
    return GV_OK;
}

static int noise_has_sde(const gv_noise_spec *s) {
    return s->kind != GV_NOISE_ODE && (s->kind == GV_NOISE_CALIBRATED || s->level != 0.0);
}

gv_status gv_generate(gv_denoiser *d, gv_ctx *c, int n, const int32_t *prompt_ids,
                      const gv_generate_options *o, float *x, float *p_host, int64_t *nfe) {
    if (!x || !o) return GV_ERROR(GV_ERR_INVALID, "generate: x and options are required");
    const int64_t D = d->D;
    const gv_backend *be = c->backend;
    GV_TRY(gv_denoiser_bind(d, n, prompt_ids));
    if (!o->latents_given) GV_TRY(fill_latents(c, o, n, D, x));
    const size_t bytes = (size_t)n * (size_t)D * sizeof(float);
    gv_status s = GV_OK;
    if (bytes > d->gen_bytes) { /* the first call (or a larger n): grow, then never again */
        if (d->gen_v) be->free(d->gen_v);
        if (d->gen_eps) be->free(d->gen_eps);
        d->gen_v = d->gen_eps = NULL;
        d->gen_bytes = 0;
        s = be->alloc(bytes, (void **)&d->gen_v);
        if (s == GV_OK) s = be->alloc(bytes, (void **)&d->gen_eps);
        if (s == GV_OK) d->gen_bytes = bytes;
    }
    gv_sampler_scratch scratch = {.v = d->gen_v, .eps = noise_has_sde(&o->noise) ? d->gen_eps : NULL};
    const int64_t nfe0 = d->nfe;
    if (s == GV_OK) {
        gv_sampler_rng rng = {.seed = o->seed, .stream = o->stream,
                              .addr = {.iteration = o->iteration,
                                       .purpose = GV_RNG_PURPOSE_STEP_NOISE},
                              .sample_offset = 0};
        s = gv_sample_trajectory(c, &o->noise, o->steps, o->shift, gv_denoiser_call, d, n, D, x,
                                 NULL, &rng, &scratch);
    }
    GV_TRY(s);
    if (nfe) *nfe = d->nfe - nfe0;
    if (p_host) {
        /* ALGORITHMS.md §1: p = clamp((x + 1)/2, 0, 1), on the host copy */
        GV_TRY(be->copy_to_host(p_host, x, bytes));
        for (int64_t i = 0; i < (int64_t)n * D; ++i) {
            float p = (p_host[i] + 1.0f) * 0.5f;
            p_host[i] = p < 0.0f ? 0.0f : (p > 1.0f ? 1.0f : p);
        }
    }
    return GV_OK;
}
