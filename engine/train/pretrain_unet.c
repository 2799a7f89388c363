/* The UNet's pretraining step (ALGORITHMS.md §1, rectified flow): for each image of the
 * micro-batch, x0 = 2p − 1, a random training prompt of its class (or the null prompt with
 * probability train.prompt_dropout), σ ~ uniform(0,1) or sigmoid(N(0,1)), ε ~ N(0,1),
 *     x_σ = (1−σ)·x0 + σ·ε,   target v = ε − x0,   loss = mean (v_θ(x_σ, σ, c) − v)²
 * Every random number is Philox at (seed, stream, iteration = step, slot = row in the step's whole
 * batch, j->slot0 + row in the shard), so a resumed run draws exactly the same batch, and so does
 * any split of the batch into shards and ranks. The batch is prepared on the host (data
 * preparation) and copied to the device; the loss is the mse op, read back with one copy.
 * Not here: the optimizer, the data order, checkpoints (pretrain.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grove/denoiser.h"
#include "grove/image.h"
#include "grove/pretrain.h"
#include "grove/rng.h"

static gv_status read_text(const char *path, char **out) {
    FILE *f = fopen(path, "rb");
    if (!f) return GV_ERROR(GV_ERR_IO, "%s: cannot open", path);
    size_t cap = 4096, len = 0;
    char *s = malloc(cap);
    size_t got;
    while (s && (got = fread(s + len, 1, cap - len - 1, f)) > 0) {
        len += got;
        if (len + 1 == cap) {
            char *t = realloc(s, cap *= 2);
            if (!t) free(s);
            s = t;
        }
    }
    int err = ferror(f);
    fclose(f);
    if (!s) return GV_ERROR(GV_ERR_OOM, "%s: out of memory", path);
    if (err) {
        free(s);
        return GV_ERROR(GV_ERR_IO, "%s: read failed", path);
    }
    s[len] = 0;
    *out = s;
    return GV_OK;
}

/* x, sigma, ids (backend) from rows of `split`; randomness at (stream, iteration, slot0 + i). */
static gv_status prepare_batch(gv_pretrain_job *j, const gv_dataset_split *split,
                               const int64_t *rows, int nb, uint32_t stream, uint32_t iteration,
                               uint32_t slot0, double dropout) {
    const gv_pretrain_config *cfg = j->cfg;
    const int L = j->model.unet.cfg.max_prompt_len;
    const int64_t D = j->D;
    GV_TRY(gv_dataset_batch_to_model(split, rows, nb, j->hx));
    uint32_t key[2];
    gv_rng_key(j->seed, stream, key);
    for (int i = 0; i < nb; ++i) {
        gv_rng_addr a = {.iteration = iteration, .slot = slot0 + (uint32_t)i};
        uint32_t hi[3];
        /* prompt: dropout uniform at element 0, choice word at element 1 */
        a.purpose = GV_RNG_PURPOSE_DROPOUT;
        GV_TRY(gv_rng_addr_pack(&a, hi));
        int label = split->labels[rows[i]];
        int32_t *ids = j->hids + (int64_t)i * L;
        for (int t = 0; t < L; ++t) ids[t] = -1;
        if (dropout > 0 && gv_rng_uniform_at(key, hi, 0) < dropout) {
            ids[0] = j->model.null_id;
        } else {
            int n = j->class_prompt_count[label];
            int64_t p = j->class_prompts[(int64_t)label * j->class_prompts_max +
                                         gv_rng_u32_at(key, hi, 1) % (uint32_t)n];
            const int T = j->prompts.max_words;
            for (int t = 0; t < j->prompts.n_words[p]; ++t) ids[t] = j->prompts.word_ids[p * T + t];
        }
        /* sigma */
        a.purpose = GV_RNG_PURPOSE_TIMESTEP;
        GV_TRY(gv_rng_addr_pack(&a, hi));
        float s = cfg->train.sigma_sampling == GV_SIGMA_UNIFORM
                      ? gv_rng_uniform_at(key, hi, 0)
                      : 1.0f / (1.0f + expf(-gv_rng_normal_at(key, hi, 0)));
        j->hsigma[i] = s;
        /* eps into the target row, then x_sigma and v = eps - x0 (ALGORITHMS.md §1) */
        a.purpose = GV_RNG_PURPOSE_LATENT;
        gv_philox_args pa;
        GV_TRY(gv_rng_args(j->seed, stream, &a, 0, D, &pa));
        float *x = j->hx + (int64_t)i * D, *v = j->htarget + (int64_t)i * D;
        GV_TRY(gv_rng_normal_fill_host(v, &pa));
        for (int64_t e = 0; e < D; ++e) {
            float x0 = x[e], eps = v[e];
            x[e] = (1.0f - s) * x0 + s * eps;
            v[e] = eps - x0;
        }
    }
    const gv_backend *be = j->be;
    GV_TRY(be->copy_from_host(j->x, j->hx, (size_t)nb * D * sizeof(float)));
    GV_TRY(be->copy_from_host(j->target, j->htarget, (size_t)nb * D * sizeof(float)));
    GV_TRY(be->copy_from_host(j->sigma, j->hsigma, (size_t)nb * sizeof(float)));
    return be->copy_from_host(j->ids, j->hids, (size_t)nb * L * sizeof(int32_t));
}

/* out = v_theta(x, sigma, ids); scalars[0] = mse(out, target); *loss (host) = that. */
static gv_status forward_loss(gv_pretrain_job *j, const float *theta, int nb, float *loss) {
    gv_arena_reset(&j->arena);
    GV_TRY(gv_unet_forward(&j->model.unet, j->ctx, &j->arena, theta, nb, j->x, j->sigma, j->ids,
                           j->out, &j->unet_saved));
    gv_ew_dims d = {.n = (int64_t)nb * j->D};
    GV_TRY(j->be->ops->mse_forward(j->ctx, j->scalars, j->out, j->target, &d));
    return j->be->copy_to_host(loss, j->scalars, sizeof *loss);
}

static gv_status measure_pass(gv_pretrain_job *j) {
    const gv_params *ps = &j->model.params;
    GV_TRY(gv_unet_forward(&j->model.unet, j->ctx, &j->arena, ps->values, j->B, j->x, j->sigma,
                           j->ids, j->out, &j->unet_saved));
    return gv_unet_backward(&j->model.unet, j->ctx, &j->arena, ps->values, ps->grads,
                            &j->unet_saved, j->dout, NULL);
}

static gv_status unet_setup(gv_pretrain_job *j) {
    const gv_pretrain_config *cfg = j->cfg;
    GV_TRY(gv_prompts_load(cfg->data.prompts, cfg->data.vocab, &j->prompts));
    GV_TRY(read_text(cfg->data.vocab, &j->vocab_text));
    gv_unet_config u = gv_pretrain_unet_config(cfg, j->prompts.vocab.n + 1);
    u.in_channels = j->data.c;
    u.height = j->data.h;
    u.width = j->data.w;
    if (j->prompts.max_words > u.max_prompt_len)
        return GV_ERROR(GV_ERR_CONFIG, "%s: a prompt has %d words but model.unet.max_prompt_len is %d",
                        cfg->data.prompts, j->prompts.max_words, u.max_prompt_len);
    if (j->prompts.vocab.n_classes > j->data.n_classes)
        return GV_ERROR(GV_ERR_CONFIG, "%s: labels up to %d but the dataset has %d classes",
                        cfg->data.vocab, j->prompts.vocab.n_classes - 1, j->data.n_classes);
    GV_TRY(gv_image_model_create(&j->model, GV_MODEL_UNET, &u, j->be, 1));
    GV_TRY(gv_image_model_set_vocab(&j->model, j->vocab_text, cfg->data.vocab));
    /* prompts by class */
    const int K = j->data.n_classes;
    GV_TRY(gv_pretrain_host_alloc((size_t)K * sizeof(int), (void **)&j->class_prompt_count));
    j->class_prompts_max = (int)j->prompts.n;
    GV_TRY(gv_pretrain_host_alloc((size_t)K * (size_t)j->prompts.n * sizeof(int64_t),
                                  (void **)&j->class_prompts));
    for (int64_t p = 0; p < j->prompts.n; ++p) {
        int c = j->prompts.labels[p];
        j->class_prompts[(int64_t)c * j->class_prompts_max + j->class_prompt_count[c]++] = p;
    }
    for (int c = 0; c < K; ++c)
        if (j->class_prompt_count[c] == 0)
            return GV_ERROR(GV_ERR_CONFIG, "%s: no prompt for class %d (%s)", cfg->data.prompts, c,
                            j->data.class_names[c]);
    /* buffers */
    const int B = j->B, L = u.max_prompt_len;
    const size_t bd = (size_t)B * (size_t)j->D * sizeof(float);
    GV_TRY(gv_pretrain_dev_alloc(j, bd, (void **)&j->x));
    GV_TRY(gv_pretrain_dev_alloc(j, bd, (void **)&j->target));
    GV_TRY(gv_pretrain_dev_alloc(j, bd, (void **)&j->out));
    GV_TRY(gv_pretrain_dev_alloc(j, bd, (void **)&j->dout));
    GV_TRY(gv_pretrain_dev_alloc(j, (size_t)B * sizeof(float), (void **)&j->sigma));
    GV_TRY(gv_pretrain_dev_alloc(j, (size_t)B * L * sizeof(int32_t), (void **)&j->ids));
    GV_TRY(gv_pretrain_host_alloc(bd, (void **)&j->hx));
    GV_TRY(gv_pretrain_host_alloc(bd, (void **)&j->htarget));
    GV_TRY(gv_pretrain_host_alloc((size_t)B * sizeof(float), (void **)&j->hsigma));
    GV_TRY(gv_pretrain_host_alloc((size_t)B * L * sizeof(int32_t), (void **)&j->hids));
    return gv_pretrain_measure_arena(j, measure_pass);
}

static gv_status unet_loss_and_grad(gv_pretrain_job *j, int64_t step, const int64_t *rows,
                                    float *loss) {
    GV_TRY(prepare_batch(j, &j->data.train, rows, j->B, GV_RNG_STREAM_PRETRAIN, (uint32_t)step,
                         (uint32_t)j->slot0, j->cfg->train.prompt_dropout));
    GV_TRY(forward_loss(j, j->model.params.values, j->B, loss));
    if (!isfinite(*loss)) return GV_OK;
    const gv_backend *be = j->be;
    gv_ew_dims d = {.n = (int64_t)j->B * j->D};
    GV_TRY(be->memset_zero(j->dout, (size_t)d.n * sizeof(float)));
    GV_TRY(be->ops->mse_backward(j->ctx, j->dout, NULL, j->scalars + 1, j->out, j->target, &d));
    GV_TRY(gv_unet_backward(&j->model.unet, j->ctx, &j->arena, j->model.params.values,
                            j->model.params.grads, &j->unet_saved, j->dout, NULL));
    return GV_OK;
}

/* Mean flow loss over the first eval.loss_images test images, fixed noise (stream EVAL), the first
   prompt of each class, no dropout: comparable across evals and runs. */
static gv_status unet_eval(gv_pretrain_job *j, const float *theta, gv_pretrain_eval *out) {
    const gv_dataset_split *test = &j->data.test;
    int64_t n = j->cfg->eval.loss_images < test->n ? j->cfg->eval.loss_images : test->n;
    double sum = 0.0;
    for (int64_t start = 0; start < n; start += j->B) {
        int nb = (int)(n - start < j->B ? n - start : j->B);
        for (int i = 0; i < nb; ++i) j->hrows[i] = start + i;
        GV_TRY(prepare_batch(j, test, j->hrows, nb, GV_RNG_STREAM_EVAL, 0, (uint32_t)start, 0.0));
        float l;
        GV_TRY(forward_loss(j, theta, nb, &l));
        sum += (double)l * nb;
    }
    out->images = n;
    out->loss = n > 0 ? (float)(sum / (double)n) : NAN;
    out->accuracy = NAN;
    return GV_OK;
}

const gv_pretrain_kind gv_pretrain_unet_kind = {
    .name = "unet", .setup = unet_setup, .loss_and_grad = unet_loss_and_grad, .eval = unet_eval};

/* ---- sample grid ------------------------------------------------------------------------------ */

#define GRID_GUIDANCE 3.0f   /* CFG of the grids: shows whether the prompt conditioning is learnt */
#define GRID_MICRO_BATCH 16
#define GRID_PAD 2

/* eval.samples images per class (one row per class, the class's first training prompt) from the
   EMA weights with the deterministic Euler sampler and fixed seeds, so grids of successive evals
   differ only by the model: <run_dir>/samples-<step>.png (DESIGN.md §1 "sample grids"). */
gv_status gv_pretrain_unet_sample_grid(const gv_pretrain_job *j, int64_t step,
                                       const char *run_dir) {
    const gv_unet_config *uc = &j->model.unet.cfg;
    const int classes = j->model.vocab.n_classes, per = j->cfg->eval.samples;
    const int n = classes * per, L = uc->max_prompt_len, T = j->prompts.max_words;
    const int64_t D = j->D;
    int32_t *ids = malloc((size_t)n * (size_t)L * sizeof *ids);      /* (n, L) host */
    float *p = malloc((size_t)n * (size_t)D * sizeof *p);            /* (n, D) host */
    float *x = NULL;                                                  /* (n, D) device */
    uint8_t *pixels = NULL;
    gv_denoiser d;
    int have_d = 0;
    gv_status s = ids && p ? GV_OK : GV_ERROR(GV_ERR_OOM, "sample grid: host buffers");
    for (int c = 0; s == GV_OK && c < classes; ++c) {
        if (j->class_prompt_count[c] == 0) {
            s = GV_ERROR(GV_ERR_INVALID, "sample grid: class %d has no training prompt", c);
            break;
        }
        const int32_t *words = j->prompts.word_ids + j->class_prompts[(int64_t)c * j->class_prompts_max] * T;
        for (int k = 0; k < per; ++k)
            for (int t = 0; t < L; ++t) ids[((int64_t)c * per + k) * L + t] = t < T ? words[t] : -1;
    }
    if (s == GV_OK) s = j->be->alloc((size_t)n * (size_t)D * sizeof(float), (void **)&x);
    gv_denoiser_options dopt = {.micro_batch = GRID_MICRO_BATCH, .guidance = GRID_GUIDANCE,
                                .null_id = j->model.null_id};
    if (s == GV_OK) s = gv_denoiser_create(&d, j->ctx, &j->model.unet, j->model.params.ema, &dopt);
    have_d = s == GV_OK;
    gv_generate_options o = gv_generate_defaults();
    o.seed = j->seed;
    if (s == GV_OK) s = gv_generate(&d, j->ctx, n, ids, &o, x, p, NULL);
    int h = 0, w = 0;
    if (s == GV_OK) s = gv_image_grid(p, n, uc->in_channels, uc->height, uc->width, per, GRID_PAD,
                                      NULL, &h, &w);
    if (s == GV_OK && !(pixels = malloc((size_t)h * (size_t)w * (size_t)uc->in_channels)))
        s = GV_ERROR(GV_ERR_OOM, "sample grid: %d x %d pixels", h, w);
    if (s == GV_OK) s = gv_image_grid(p, n, uc->in_channels, uc->height, uc->width, per, GRID_PAD,
                                      pixels, &h, &w);
    char path[4200], step_text[32], steps_text[16], seed_text[16], cfg_text[16];
    snprintf(path, sizeof path, "%s/samples-%06lld.png", run_dir, (long long)step);
    snprintf(step_text, sizeof step_text, "%lld", (long long)step);
    snprintf(steps_text, sizeof steps_text, "%d", o.steps);
    snprintf(seed_text, sizeof seed_text, "%u", o.seed);
    snprintf(cfg_text, sizeof cfg_text, "%g", (double)GRID_GUIDANCE);
    const gv_png_text texts[] = {{"prompt", "one row per class: its first training prompt"},
                                 {"step", step_text}, {"weights", "ema"},
                                 {"sampler", "euler-ode"}, {"steps", steps_text},
                                 {"seed", seed_text}, {"cfg", cfg_text}};
    if (s == GV_OK)
        s = gv_png_write(path, pixels, h, w, uc->in_channels, texts,
                         (int)(sizeof texts / sizeof texts[0]));
    if (have_d) gv_denoiser_free(&d);
    if (x) j->be->free(x);
    free(pixels);
    free(p);
    free(ids);
    return s;
}
