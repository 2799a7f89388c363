/* `grove gallery`: resolve the run and its models, render every (prompt, seed, model) image from
 * one x_T per seed with the ODE sampler, score it with the run's training and eval rewards
 * (gv_grpo_rewards_create: the same instances `grove train` builds), measure diversity in the gold
 * judge's features, write the PNGs, then hand the tables and the page to their writers
 * (gallery.h). Tensors are touched through the denoiser, the judge and backend copies only.
 * Not here: the CSV / manifest writers (gallery_write.c) and the page (gallery_page.c). */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "gallery_internal.h"
#include "grove/checkpoint.h"
#include "grove/denoiser.h"
#include "grove/evaluate.h"
#include "grove/grpo.h"
#include "grove/image.h"
#include "grove/image_model.h"
#include "grove/paths.h"
#include "grove/rewards.h"
#include "grove/rng.h"
#include "grove/rundir.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static gv_status alloc0(size_t bytes, void *out) {
    void *p = calloc(1, bytes ? bytes : 1);
    if (!p) return GV_ERROR(GV_ERR_OOM, "gallery: cannot allocate %zu bytes", bytes);
    *(void **)out = p;
    return GV_OK;
}

static void say(const gv_gallery_options *o, const char *fmt, const char *a, double x) {
    if (!o || !o->progress) return;
    fprintf(o->progress, fmt, a, x);
    fflush(o->progress);
}

/* ---- the run and its models ------------------------------------------------------------------ */

static gv_status load_run(gallery_data *g) {
    snprintf(g->run_dir, sizeof g->run_dir, "%s", g->cfg->run);
    char path[4200];
    snprintf(path, sizeof path, "%s/config.yaml", g->run_dir);
    if (!gv_rundir_exists(path))
        return GV_ERROR(GV_ERR_IO, "%s: no run here (config.yaml missing; `grove train` writes it)",
                        g->run_dir);
    GV_TRY(gv_rundir_slurp(path, &g->run_yaml));
    GV_TRY(gv_run_config_load_resolved(g->run_yaml, path, &g->run));
    const gv_gallery_config *c = g->cfg;
    g->steps = c->sampler.steps > 0 ? c->sampler.steps : g->run.sampler.steps;
    g->shift = c->sampler.shift > 0 ? c->sampler.shift : g->run.sampler.shift;
    g->guidance = c->sampler.guidance >= 0 ? c->sampler.guidance : g->run.sampler.guidance;
    g->noise_kind = g->run.sampler.noise.kind;
    g->noise_level = g->run.sampler.noise.level;
    if (*c->out) snprintf(g->out_dir, sizeof g->out_dir, "%s", c->out);
    else GV_TRY(gallery_fmt(g->out_dir, sizeof g->out_dir, "%s/gallery", g->run_dir));
    if (*c->title) snprintf(g->title, sizeof g->title, "%s", c->title);
    else snprintf(g->title, sizeof g->title, "%s gallery", g->run.run.name);
    return GV_OK;
}

static int cmp_i64(const void *a, const void *b) {
    const int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The k of the run's iter-<k>.h5 files: *ks (malloc'd, ascending). */
static gv_status list_iterations(const char *dir, int64_t **ks, int *n) {
    *ks = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) return GV_ERROR(GV_ERR_IO, "%s: cannot list the run directory", dir);
    int cap = 0;
    gv_status s = GV_OK;
    for (struct dirent *e; s == GV_OK && (e = readdir(d));) {
        long long k = -1;
        char tail[8] = "";
        if (sscanf(e->d_name, "iter-%lld%7s", &k, tail) != 2 || strcmp(tail, ".h5") || k < 0)
            continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            int64_t *grown = realloc(*ks, (size_t)cap * sizeof **ks);
            if (!grown) s = GV_ERROR(GV_ERR_OOM, "gallery: out of memory");
            else *ks = grown;
        }
        if (s == GV_OK) (*ks)[(*n)++] = k;
    }
    closedir(d);
    if (s == GV_OK && *n) qsort(*ks, (size_t)*n, sizeof **ks, cmp_i64);
    return s;
}

static gv_status resolve_model(gallery_data *g, const gv_gallery_model_spec *spec, int index,
                               gallery_model *m) {
    memset(m, 0, sizeof *m);
    m->iteration = -1;
    const char *name = spec->name;
    if (spec->path && *spec->path) {
        snprintf(m->path, sizeof m->path, "%s", spec->path);
        const char *base = strrchr(spec->path, '/');
        snprintf(m->key, sizeof m->key, "%.40s", base ? base + 1 : spec->path);
        char *dot = strstr(m->key, ".h5");
        if (dot) *dot = '\0';
    } else if (strcmp(name, "base") == 0) {
        snprintf(m->path, sizeof m->path, "%s", g->run.model.checkpoint);
        snprintf(m->key, sizeof m->key, "base");
    } else if (strcmp(name, "best") == 0 || strcmp(name, "last") == 0) {
        GV_TRY(gallery_fmt(m->path, sizeof m->path, "%s/%s.h5", g->run_dir, name));
        snprintf(m->key, sizeof m->key, "%s", name);
    } else if (strcmp(name, "middle") == 0) {
        int64_t *ks = NULL;
        int n = 0;
        GV_TRY(list_iterations(g->run_dir, &ks, &n));
        if (n == 0) {
            free(ks);
            return GV_ERROR(GV_ERR_CONFIG, "models[%d]: middle: %s has no iter-<k>.h5 checkpoints",
                            index, g->run_dir);
        }
        const double half = 0.5 * g->run.train.iterations;
        int best = 0;
        for (int i = 1; i < n; ++i)
            if (fabs((double)ks[i] - half) < fabs((double)ks[best] - half)) best = i;
        gv_status s = gallery_fmt(m->path, sizeof m->path, "%s/iter-%lld.h5", g->run_dir,
                                  (long long)ks[best]);
        snprintf(m->key, sizeof m->key, "iter-%lld", (long long)ks[best]);
        free(ks);
        GV_TRY(s);
    } else { /* iter-<k> (the schema checked the prefix) */
        char *end = NULL;
        long long k = strtoll(name + 5, &end, 10);
        if (end == name + 5 || *end || k < 0)
            return GV_ERROR(GV_ERR_CONFIG, "models[%d]: name %s: expected iter-<k>", index, name);
        GV_TRY(gallery_fmt(m->path, sizeof m->path, "%s/iter-%lld.h5", g->run_dir, k));
        snprintf(m->key, sizeof m->key, "iter-%lld", k);
    }
    if (spec->label && *spec->label) snprintf(m->label, sizeof m->label, "%s", spec->label);
    else snprintf(m->label, sizeof m->label, "%s", m->key);
    if (!gv_rundir_exists(m->path))
        return GV_ERROR(GV_ERR_IO, "models[%d] (%s): %s does not exist", index, m->label, m->path);
    gv_ckpt_reader *r = NULL;
    GV_TRY(gv_ckpt_open(m->path, &r));
    char *hash = NULL;
    gv_status s = gv_ckpt_get_str(r, GV_CKPT_META, "model_hash", &hash);
    if (s == GV_OK) snprintf(m->hash, sizeof m->hash, "%s", hash);
    free(hash);
    if (s == GV_OK && gv_ckpt_has_key(r, GV_CKPT_STATE, "iteration"))
        s = gv_ckpt_get_i64(r, GV_CKPT_STATE, "iteration", &m->iteration);
    gv_ckpt_close(r);
    return s;
}

/* ψ(i) of a calibrated run, when its last checkpoint carries one (/state psi). */
static void read_psi(gallery_data *g) {
    char path[4200];
    snprintf(path, sizeof path, "%s/last.h5", g->run_dir);
    gv_ckpt_reader *r = NULL;
    if (!gv_rundir_exists(path) || gv_ckpt_open(path, &r) != GV_OK) return;
    int64_t n = 0;
    if (gv_ckpt_has_key(r, GV_CKPT_STATE, "psi") &&
        gv_ckpt_get_len(r, GV_CKPT_STATE, "psi", &n) == GV_OK && n > 0 && n <= 256) {
        g->psi = malloc((size_t)n * sizeof(float));
        if (g->psi && gv_ckpt_get_f32s(r, GV_CKPT_STATE, "psi", g->psi, n) == GV_OK)
            g->n_psi = (int)n;
        else {
            free(g->psi);
            g->psi = NULL;
        }
    }
    gv_ckpt_close(r);
}

/* ---- rewards ---------------------------------------------------------------------------------- */

static void reward_column(const gv_reward_spec *spec, const gv_reward *all, int k, int eval,
                          gallery_reward *out) {
    char key[64];
    gv_grpo_reward_key(all, k, key, sizeof key);
    const char *model = spec->model && *spec->model && strcmp(spec->model, "reward") ? spec->model
                                                                                       : NULL;
    const char *slash = model ? strrchr(model, '/') : NULL;
    snprintf(out->key, sizeof out->key, "%s.%s", eval ? "eval" : "train", key);
    if (model)
        (void)gallery_fmt(out->label, sizeof out->label, "%s[%.40s] (%s)", key,
                          slash ? slash + 1 : model, eval ? "eval" : "train");
    else snprintf(out->label, sizeof out->label, "%s (%s)", key, eval ? "eval" : "train");
    out->eval = eval;
}

/* ---- statistics ------------------------------------------------------------------------------- */

/* ALGORITHMS-free bookkeeping: means over unmasked seeds, win rate vs model 0 (ties count 1/2),
   mean gain, over each prompt and over everything. */
static void compute_stats(gallery_data *g) {
    const int P = g->P, M = g->M, S = g->S, R = g->R;
    for (int m = 0; m < M; ++m)
        for (int r = 0; r < R; ++r) {
            double all_sum = 0, all_w = 0, all_g = 0;
            int all_n = 0, all_pairs = 0;
            for (int p = 0; p < P; ++p) {
                double sum = 0, w = 0, gain = 0;
                int n = 0, pairs = 0;
                for (int s = 0; s < S; ++s) {
                    const int64_t i = gallery_idx(g, p, m, s) * R + r;
                    const int64_t i0 = gallery_idx(g, p, 0, s) * R + r;
                    const int ok = g->status[i] == GV_REWARD_ITEM_OK && isfinite(g->scores[i]);
                    const int ok0 = g->status[i0] == GV_REWARD_ITEM_OK && isfinite(g->scores[i0]);
                    if (ok) sum += g->scores[i], n++;
                    if (ok && ok0) {
                        const double d = (double)g->scores[i] - (double)g->scores[i0];
                        w += d > 0 ? 1.0 : d == 0 ? 0.5 : 0.0;
                        gain += d;
                        pairs++;
                    }
                }
                const int64_t o = ((int64_t)p * M + m) * R + r;
                g->mean[o] = n ? (float)(sum / n) : NAN;
                g->win[o] = m > 0 && pairs ? (float)(w / pairs) : NAN;
                g->gain[o] = pairs ? (float)(gain / pairs) : NAN;
                all_sum += sum, all_n += n, all_w += w, all_g += gain, all_pairs += pairs;
            }
            g->all_mean[m * R + r] = all_n ? all_sum / all_n : NAN;
            g->all_win[m * R + r] = m > 0 && all_pairs ? all_w / all_pairs : NAN;
            g->all_gain[m * R + r] = all_pairs ? all_g / all_pairs : NAN;
        }
    for (int m = 0; m < M; ++m) {
        double sum = 0;
        for (int p = 0; p < P; ++p) sum += g->diversity[p * M + m];
        g->all_div[m] = sum / P;
    }
}

/* Mean pairwise Euclidean distance of the S feature rows (S, F). */
static float mean_pairwise_distance(const float *feat, int S, int F) {
    double sum = 0;
    int pairs = 0;
    for (int a = 0; a < S; ++a)
        for (int b = a + 1; b < S; ++b) {
            double d2 = 0;
            for (int f = 0; f < F; ++f) {
                const double d = (double)feat[a * F + f] - (double)feat[b * F + f];
                d2 += d * d;
            }
            sum += sqrt(d2);
            pairs++;
        }
    return pairs ? (float)(sum / pairs) : 0.0f;
}

/* ---- images ---------------------------------------------------------------------------------- */

static void shell_quote(char *out, size_t n, const char *s) {
    size_t k = 0;
    if (k + 1 < n) out[k++] = '\'';
    for (; *s && k + 5 < n; ++s) {
        if (*s == '\'') {
            memcpy(out + k, "'\\''", 4);
            k += 4;
        } else out[k++] = *s;
    }
    if (k + 1 < n) out[k++] = '\'';
    out[k] = '\0';
}

static gv_status write_png(gallery_data *g, int p, int m, int s, const float *img,
                           uint8_t *pixels) {
    const gallery_model *md = &g->models[m];
    char *file = g->files[gallery_idx(g, p, m, s)];
    snprintf(file, 64, "images/p%02d-s%04u-m%d.png", p, g->seeds[s], m);
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", g->out_dir, file);
    int gh = 0, gw = 0;
    GV_TRY(gv_image_grid(img, 1, g->C, g->H, g->W, 1, 0, pixels, &gh, &gw));
    char seed[24], steps[16], cfg[32], shift[32], noise[96], it[24], cmd[4600], q1[4400], q2[600];
    snprintf(seed, sizeof seed, "%u", g->seeds[s]);
    snprintf(steps, sizeof steps, "%d", g->steps);
    snprintf(cfg, sizeof cfg, "%g", g->guidance);
    snprintf(shift, sizeof shift, "%g", g->shift);
    snprintf(noise, sizeof noise, "philox key (%u, eval stream %d), iteration 0, slot 0, latent",
             g->seeds[s], GV_RNG_STREAM_EVAL);
    snprintf(it, sizeof it, "%lld", (long long)md->iteration);
    shell_quote(q1, sizeof q1, md->path);
    shell_quote(q2, sizeof q2, g->prompts[p]);
    (void)gallery_fmt(cmd, sizeof cmd, "grove sample --ckpt %s --prompt %s -n 1 --seed %u --steps %d "
             "--guidance %g --shift %g%s --out x.png", q1, q2, g->seeds[s], g->steps, g->guidance,
             g->shift, g->cfg->weights == GV_GALLERY_WEIGHTS_RAW ? " --raw" : "");
    enum { FIXED = 12 };
    gv_png_text texts[FIXED + 32];
    char values[32][32], keys[32][112];
    int n = 0;
    texts[n++] = (gv_png_text){"prompt", g->prompts[p]};
    texts[n++] = (gv_png_text){"seed", seed};
    texts[n++] = (gv_png_text){"steps", steps};
    texts[n++] = (gv_png_text){"sampler", "euler-ode"};
    texts[n++] = (gv_png_text){"cfg", cfg};
    texts[n++] = (gv_png_text){"shift", shift};
    texts[n++] = (gv_png_text){"model", md->label};
    texts[n++] = (gv_png_text){"checkpoint", md->hash};
    texts[n++] = (gv_png_text){"iteration", it};
    texts[n++] = (gv_png_text){"weights", g->cfg->weights == GV_GALLERY_WEIGHTS_RAW ? "raw" : "ema"};
    texts[n++] = (gv_png_text){"noise", noise};
    texts[n++] = (gv_png_text){"reproduce", cmd};
    for (int r = 0; r < g->R && r < 32; ++r) {
        const int64_t i = gallery_idx(g, p, m, s) * g->R + r;
        snprintf(keys[r], sizeof keys[r], "score %s", g->rewards[r].key);
        if (g->status[i] == GV_REWARD_ITEM_OK) snprintf(values[r], sizeof values[r], "%.6g",
                                                        g->scores[i]);
        else snprintf(values[r], sizeof values[r], "failed");
        texts[n++] = (gv_png_text){keys[r], values[r]};
    }
    return gv_png_write(path, pixels, gh, gw, g->C, texts, n);
}

/* ---- rendering -------------------------------------------------------------------------------- */

typedef struct render_state {
    gv_image_model model, gold;
    gv_denoiser den;
    gv_judge judge;
    int judge_ready;
    gv_reward *train, *eval;
    gv_image_model *train_models, *eval_models;
    int32_t *ids;          /* (P·S, L)                       */
    float *x_T;            /* host (P·S, D)                  */
    float *x;              /* backend (P·S, D)               */
    float *p;              /* host (P·S, D)                  */
    float *feat;           /* host (P·S, F)                  */
    float *tmp_scores;     /* (P·S)                          */
    uint8_t *tmp_status;
    uint8_t *pixels;
} render_state;

static gv_status score_rewards(gallery_data *g, render_state *st, gv_ctx *c, int m,
                               gv_reward *list, int count, int first_col) {
    const int n = g->P * g->S;
    gv_reward_images b = {.n = n, .channels = g->C, .height = g->H, .width = g->W,
                          .pixels = st->p, .labels = NULL};
    int32_t *labels = NULL;
    GV_TRY(alloc0((size_t)n * sizeof *labels, &labels));
    for (int i = 0; i < n; ++i) labels[i] = g->labels[i / g->S];
    b.labels = labels;
    gv_status s = GV_OK;
    for (int k = 0; s == GV_OK && k < count; ++k) {
        if (gv_reward_can_score(&list[k])) {
            s = gv_reward_score(&list[k], c, &b, st->tmp_scores, st->tmp_status);
        } else { /* a pairwise judge (compare only) has no per-image score: shown as masked */
            for (int i = 0; i < n; ++i) {
                st->tmp_scores[i] = NAN;
                st->tmp_status[i] = GV_REWARD_ITEM_FAILED;
            }
        }
        for (int i = 0; s == GV_OK && i < n; ++i) {
            const int64_t o = gallery_idx(g, i / g->S, m, i % g->S) * g->R + first_col + k;
            g->scores[o] = st->tmp_scores[i];
            g->status[o] = st->tmp_status[i];
        }
    }
    free(labels);
    return s;
}

static gv_status render_model(gallery_data *g, render_state *st, gv_ctx *c, int m,
                              const gv_gallery_options *o) {
    const gv_backend *be = c->backend;
    const gallery_model *md = &g->models[m];
    const int use_ema = g->cfg->weights == GV_GALLERY_WEIGHTS_EMA;
    GV_TRY(gv_image_model_load(md->path, be, use_ema, &st->model));
    if (st->model.kind != GV_MODEL_UNET)
        return GV_ERROR(GV_ERR_INVALID, "%s: not a UNet checkpoint", md->path);
    const gv_unet_config *uc = &st->model.unet.cfg;
    if ((int64_t)uc->in_channels * uc->height * uc->width != g->D)
        return GV_ERROR(GV_ERR_INVALID, "%s: %dx%dx%d images, the first model draws %lld elements",
                        md->path, uc->in_channels, uc->height, uc->width, (long long)g->D);
    const int n = g->P * g->S, L = uc->max_prompt_len;
    free(st->ids);
    GV_TRY(alloc0((size_t)n * (size_t)L * sizeof(int32_t), &st->ids));
    for (int p = 0; p < g->P; ++p) {
        int label = -1;
        gv_status s = gv_image_model_encode_prompt(&st->model, g->prompts[p],
                                                   st->ids + (int64_t)p * g->S * L, &label);
        if (s != GV_OK) return gv_error_prefix("%s (%s): ", md->path, md->label), s;
        g->labels[p] = label;
        for (int k = 1; k < g->S; ++k)
            memcpy(st->ids + ((int64_t)p * g->S + k) * L, st->ids + (int64_t)p * g->S * L,
                   (size_t)L * sizeof(int32_t));
    }
    GV_TRY(gv_denoiser_create(&st->den, c, &st->model.unet, gv_image_model_theta(&st->model),
                              &(gv_denoiser_options){.micro_batch = g->cfg->micro_batch,
                                                     .guidance = (float)g->guidance,
                                                     .null_id = st->model.null_id}));
    /* the same x_T for every model: copied, never redrawn */
    GV_TRY(be->copy_from_host(st->x, st->x_T, (size_t)n * (size_t)g->D * sizeof(float)));
    gv_generate_options go = gv_generate_defaults();
    go.steps = g->steps;
    go.shift = g->shift;
    go.latents_given = 1;
    int64_t nfe = 0;
    double t0 = now_s();
    GV_TRY(gv_generate(&st->den, c, n, st->ids, &go, st->x, st->p, &nfe));
    g->seconds_sampling += now_s() - t0;
    g->nfe += nfe;
    t0 = now_s();
    const int Rt = g->run.n_rewards;
    GV_TRY(score_rewards(g, st, c, m, st->train, Rt, 0));
    GV_TRY(score_rewards(g, st, c, m, st->eval, g->run.n_eval_rewards, Rt));
    GV_TRY(gv_judge_run(&st->judge, c, st->p, 0, n, NULL, st->feat));
    const int F = st->judge.F;
    for (int p = 0; p < g->P; ++p)
        g->diversity[p * g->M + m] =
            mean_pairwise_distance(st->feat + (int64_t)p * g->S * F, g->S, F);
    g->seconds_scoring += now_s() - t0;
    for (int p = 0; p < g->P; ++p)
        for (int s = 0; s < g->S; ++s)
            GV_TRY(write_png(g, p, m, s, st->p + ((int64_t)p * g->S + s) * g->D, st->pixels));
    gv_denoiser_free(&st->den);
    gv_image_model_free(&st->model);
    say(o, "gallery: %-10s done (%.1f s so far)\n", md->label,
        g->seconds_sampling + g->seconds_scoring);
    return GV_OK;
}

static gv_status gallery_build(gallery_data *g, render_state *st, gv_ctx *c,
                               const gv_gallery_options *o) {
    const gv_gallery_config *cfg = g->cfg;
    const gv_backend *be = c->backend;
    GV_TRY(load_run(g));
    read_psi(g);
    /* prompts */
    const char *prompt_file = *cfg->prompts ? cfg->prompts : g->run.data.eval_prompts;
    if (!prompt_file || !*prompt_file)
        return GV_ERROR(GV_ERR_CONFIG, "prompts: empty and the run has no data.eval_prompts");
    GV_TRY(gv_eval_prompts_read(prompt_file, &g->prompts, &g->n_prompt_lines));
    g->P = cfg->prompt_count > 0 && cfg->prompt_count < g->n_prompt_lines ? cfg->prompt_count
                                                                           : g->n_prompt_lines;
    g->S = cfg->seeds;
    g->M = cfg->n_models;
    if (g->P * g->S > (1 << GV_RNG_SLOT_BITS))
        return GV_ERROR(GV_ERR_CONFIG, "%d prompts x %d seeds: at most %d images per model", g->P,
                        g->S, 1 << GV_RNG_SLOT_BITS);
    GV_TRY(alloc0((size_t)g->M * sizeof *g->models, &g->models));
    for (int m = 0; m < g->M; ++m) GV_TRY(resolve_model(g, &cfg->models[m], m, &g->models[m]));
    GV_TRY(alloc0((size_t)g->S * sizeof *g->seeds, &g->seeds));
    for (int s = 0; s < g->S; ++s) g->seeds[s] = (uint32_t)(cfg->first_seed + s);
    GV_TRY(alloc0((size_t)g->P * sizeof *g->labels, &g->labels));

    /* the geometry, the dataset and the gold judge from the first model */
    GV_TRY(gv_image_model_load(g->models[0].path, be, 0, &st->model));
    if (st->model.kind != GV_MODEL_UNET)
        return GV_ERROR(GV_ERR_INVALID, "%s: not a UNet checkpoint", g->models[0].path);
    const gv_unet_config *uc = &st->model.unet.cfg;
    g->C = uc->in_channels, g->H = uc->height, g->W = uc->width;
    g->D = (int64_t)g->C * g->H * g->W;
    char dataset[16];
    snprintf(dataset, sizeof dataset, "%s", st->model.dataset);
    gv_image_model_free(&st->model);
    char gold[4096];
    if (*cfg->gold) snprintf(gold, sizeof gold, "%s", cfg->gold);
    else {
        char rel[256];
        snprintf(rel, sizeof rel, "models/weights/%s-classifier-gold.h5", dataset);
        GV_TRY(gv_root_path(rel, gold, sizeof gold));
    }
    GV_TRY(gv_image_model_load(gold, be, 1, &st->gold));
    if (st->gold.kind != GV_MODEL_CLASSIFIER)
        return GV_ERROR(GV_ERR_INVALID, "gold: %s is not a classifier", gold);
    GV_TRY(gv_judge_create(&st->judge, c, &st->gold.classifier, gv_image_model_theta(&st->gold),
                           cfg->micro_batch));
    st->judge_ready = 1;

    /* rewards: the run's own instances (training, then eval) */
    GV_TRY(gv_grpo_rewards_create(c, dataset, cfg->micro_batch, g->run.rewards, g->run.n_rewards,
                                  "rewards", &st->train, &st->train_models));
    GV_TRY(gv_grpo_rewards_create(c, dataset, cfg->micro_batch, g->run.eval_rewards,
                                  g->run.n_eval_rewards, "eval_rewards", &st->eval,
                                  &st->eval_models));
    g->R = g->run.n_rewards + g->run.n_eval_rewards;
    GV_TRY(alloc0((size_t)(g->R ? g->R : 1) * sizeof *g->rewards, &g->rewards));
    for (int k = 0; k < g->run.n_rewards; ++k)
        reward_column(&g->run.rewards[k], st->train, k, 0, &g->rewards[k]);
    for (int k = 0; k < g->run.n_eval_rewards; ++k)
        reward_column(&g->run.eval_rewards[k], st->eval, k, 1,
                      &g->rewards[g->run.n_rewards + k]);

    /* buffers */
    const int64_t n = (int64_t)g->P * g->S, images = n * g->M, R = g->R ? g->R : 1;
    GV_TRY(alloc0((size_t)(images * R) * sizeof(float), &g->scores));
    GV_TRY(alloc0((size_t)(images * R), &g->status));
    GV_TRY(alloc0((size_t)(g->P * g->M) * sizeof(float), &g->diversity));
    GV_TRY(alloc0((size_t)(g->P * g->M * R) * sizeof(float), &g->mean));
    GV_TRY(alloc0((size_t)(g->P * g->M * R) * sizeof(float), &g->win));
    GV_TRY(alloc0((size_t)(g->P * g->M * R) * sizeof(float), &g->gain));
    GV_TRY(alloc0((size_t)(g->M * R) * sizeof(double), &g->all_mean));
    GV_TRY(alloc0((size_t)(g->M * R) * sizeof(double), &g->all_win));
    GV_TRY(alloc0((size_t)(g->M * R) * sizeof(double), &g->all_gain));
    GV_TRY(alloc0((size_t)g->M * sizeof(double), &g->all_div));
    GV_TRY(alloc0((size_t)images * sizeof *g->files, &g->files));
    GV_TRY(alloc0((size_t)(n * g->D) * sizeof(float), &st->x_T));
    GV_TRY(alloc0((size_t)(n * g->D) * sizeof(float), &st->p));
    GV_TRY(alloc0((size_t)(n * st->judge.F) * sizeof(float), &st->feat));
    GV_TRY(alloc0((size_t)n * sizeof(float), &st->tmp_scores));
    GV_TRY(alloc0((size_t)n, &st->tmp_status));
    GV_TRY(alloc0((size_t)g->D, &st->pixels));
    GV_TRY(be->alloc((size_t)(n * g->D) * sizeof(float), (void **)&st->x));

    /* x_T: once per seed, shared by every prompt and every model (gallery.h) */
    for (int s = 0; s < g->S; ++s) {
        gv_rng_addr addr = {.iteration = 0, .slot = 0, .purpose = GV_RNG_PURPOSE_LATENT};
        gv_philox_args pa;
        GV_TRY(gv_rng_args(g->seeds[s], GV_RNG_STREAM_EVAL, &addr, 0, g->D, &pa));
        GV_TRY(gv_rng_normal_fill_host(st->x_T + (int64_t)s * g->D, &pa));
        for (int p = 1; p < g->P; ++p)
            memcpy(st->x_T + ((int64_t)p * g->S + s) * g->D, st->x_T + (int64_t)s * g->D,
                   (size_t)g->D * sizeof(float));
    }

    char images_dir[4200];
    snprintf(images_dir, sizeof images_dir, "%s/images", g->out_dir);
    GV_TRY(gv_rundir_mkdir_p(images_dir));
    for (int m = 0; m < g->M; ++m) GV_TRY(render_model(g, st, c, m, o));
    compute_stats(g);
    return GV_OK;
}

static void render_state_free(render_state *st, const gv_backend *be) {
    gv_denoiser_free(&st->den);
    gv_image_model_free(&st->model);
    if (st->judge_ready) gv_judge_free(&st->judge);
    gv_image_model_free(&st->gold); /* the reward instances are freed by gv_gallery_run */
    if (st->x) be->free(st->x);
    free(st->ids);
    free(st->x_T);
    free(st->p);
    free(st->feat);
    free(st->tmp_scores);
    free(st->tmp_status);
    free(st->pixels);
}

static void gallery_data_free(gallery_data *g) {
    gv_eval_prompts_free(g->prompts, g->n_prompt_lines);
    gv_run_config_free(&g->run);
    free(g->run_yaml);
    free(g->labels);
    free(g->seeds);
    free(g->models);
    free(g->rewards);
    free(g->scores);
    free(g->status);
    free(g->diversity);
    free(g->mean);
    free(g->win);
    free(g->gain);
    free(g->all_mean);
    free(g->all_win);
    free(g->all_gain);
    free(g->all_div);
    free(g->files);
    free(g->psi);
}

gv_status gv_gallery_run(const gv_gallery_config *cfg, gv_ctx *c, const gv_gallery_options *o,
                         gv_gallery_result *out) {
    memset(out, 0, sizeof *out);
    if (cfg->n_models < 1) return GV_ERROR(GV_ERR_CONFIG, "models: need at least one model");
    const double t0 = now_s();
    gallery_data g;
    render_state st;
    memset(&g, 0, sizeof g);
    memset(&st, 0, sizeof st);
    g.cfg = cfg;
    gv_status s = gallery_build(&g, &st, c, o);
    /* the reward instances hold their counts in the run config, which g owns */
    if (st.train) {
        gv_grpo_rewards_free(st.train, st.train_models, g.run.n_rewards);
        st.train = NULL, st.train_models = NULL;
    }
    if (st.eval) {
        gv_grpo_rewards_free(st.eval, st.eval_models, g.run.n_eval_rewards);
        st.eval = NULL, st.eval_models = NULL;
    }
    render_state_free(&st, c->backend);
    if (s == GV_OK) s = gallery_write_tables(&g, o);
    char index[4200];
    snprintf(index, sizeof index, "%s/index.html", g.out_dir);
    if (s == GV_OK) s = gallery_write_page(&g, index);
    if (s == GV_OK) {
        snprintf(out->out_dir, sizeof out->out_dir, "%s", g.out_dir);
        s = gallery_fmt(out->index, sizeof out->index, "%s", index);
        out->prompts = g.P, out->seeds = g.S, out->models = g.M, out->rewards = g.R;
        out->images = g.P * g.S * g.M;
        out->seconds = now_s() - t0;
    }
    gallery_data_free(&g);
    return s;
}
