/* The gallery's tables (gallery.h): scores.csv (one row per image), win_rates.csv (one row per
 * prompt, model and reward) and manifest.json (what was rendered, from what, by which grove).
 * Each file is written whole and renamed into place (gv_rundir_write_atomic). Not here: the page. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gallery_internal.h"
#include "grove/rewards.h"
#include "grove/rng.h"
#include "grove/rundir.h"
#include "grove/version.h"

gv_status gallery_fmt(char *out, size_t n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    const int k = vsnprintf(out, n, fmt, ap);
    va_end(ap);
    if (k < 0 || (size_t)k >= n)
        return GV_ERROR(GV_ERR_INVALID, "gallery: text too long: %.60s...", out);
    return GV_OK;
}

/* An in-memory FILE whose text goes to `path` atomically. */
typedef struct text_out {
    char *buf;
    size_t len;
    FILE *f;
} text_out;

static gv_status text_begin(text_out *t) {
    memset(t, 0, sizeof *t);
    t->f = open_memstream(&t->buf, &t->len);
    if (!t->f) return GV_ERROR(GV_ERR_OOM, "gallery: cannot open a memory stream");
    return GV_OK;
}

static gv_status text_commit(text_out *t, const char *dir, const char *name) {
    const int bad = ferror(t->f);
    fclose(t->f);
    gv_status s = GV_OK;
    if (bad) s = GV_ERROR(GV_ERR_OOM, "gallery: out of memory writing %s", name);
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (s == GV_OK) s = gv_rundir_write_atomic(path, t->buf ? t->buf : "");
    free(t->buf);
    return s;
}

/* RFC 4180 field: quoted when it holds a comma, quote or newline. */
static void csv_field(FILE *f, const char *s) {
    if (!strpbrk(s, ",\"\n\r")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; ++s) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void csv_number(FILE *f, double v) {
    if (isfinite(v)) fprintf(f, ",%.9g", v);
    else fputs(",", f); /* empty = not available (masked, or the reference column) */
}

static void json_number(FILE *f, double v) {
    if (isfinite(v)) fprintf(f, "%.9g", v);
    else fputs("null", f);
}

gv_status gallery_write_tables(const gallery_data *g, const gv_gallery_options *o) {
    text_out t;
    /* scores.csv */
    GV_TRY(text_begin(&t));
    fputs("prompt_index,prompt,label,seed,model,checkpoint,iteration,file", t.f);
    for (int r = 0; r < g->R; ++r) fprintf(t.f, ",%s", g->rewards[r].key);
    fputs("\n", t.f);
    for (int p = 0; p < g->P; ++p)
        for (int m = 0; m < g->M; ++m)
            for (int s = 0; s < g->S; ++s) {
                const int64_t i = gallery_idx(g, p, m, s);
                fprintf(t.f, "%d,", p);
                csv_field(t.f, g->prompts[p]);
                fprintf(t.f, ",%d,%u,", g->labels[p], g->seeds[s]);
                csv_field(t.f, g->models[m].label);
                fprintf(t.f, ",%s,%lld,%s", g->models[m].hash, (long long)g->models[m].iteration,
                        g->files[i]);
                for (int r = 0; r < g->R; ++r)
                    csv_number(t.f, g->status[i * g->R + r] == GV_REWARD_ITEM_OK
                                        ? (double)g->scores[i * g->R + r] : NAN);
                fputs("\n", t.f);
            }
    GV_TRY(text_commit(&t, g->out_dir, "scores.csv"));

    /* win_rates.csv */
    GV_TRY(text_begin(&t));
    fputs("prompt_index,prompt,model,checkpoint,reward,mean,gain_vs_first,win_rate_vs_first,"
          "diversity\n", t.f);
    for (int p = 0; p < g->P; ++p)
        for (int m = 0; m < g->M; ++m)
            for (int r = 0; r < g->R; ++r) {
                const int64_t k = ((int64_t)p * g->M + m) * g->R + r;
                fprintf(t.f, "%d,", p);
                csv_field(t.f, g->prompts[p]);
                fputc(',', t.f);
                csv_field(t.f, g->models[m].label);
                fprintf(t.f, ",%s,%s", g->models[m].hash, g->rewards[r].key);
                csv_number(t.f, g->mean[k]);
                csv_number(t.f, g->gain[k]);
                csv_number(t.f, g->win[k]);
                csv_number(t.f, g->diversity[p * g->M + m]);
                fputs("\n", t.f);
            }
    GV_TRY(text_commit(&t, g->out_dir, "win_rates.csv"));

    /* manifest.json */
    char *cfg_yaml = NULL;
    GV_TRY(gv_gallery_config_dump(g->cfg, NULL, &cfg_yaml));
    gv_status begun = text_begin(&t);
    if (begun != GV_OK) {
        free(cfg_yaml);
        return begun;
    }
    fputs("{\n  \"grove_version\": ", t.f);
    gallery_json_put(t.f, GROVE_VERSION);
    fputs(",\n  \"git_commit\": ", t.f);
    gallery_json_put(t.f, GROVE_GIT_COMMIT);
    fputs(",\n  \"command\": ", t.f);
    gallery_json_put(t.f, o && o->command ? o->command : "");
    fputs(",\n  \"run\": ", t.f);
    gallery_json_put(t.f, g->run_dir);
    fprintf(t.f, ",\n  \"prompts\": %d, \"seeds\": %d, \"models\": %d, \"images\": %d,\n", g->P,
            g->S, g->M, g->P * g->S * g->M);
    fprintf(t.f, "  \"sampler\": {\"kind\": \"euler-ode\", \"steps\": %d, \"shift\": %.9g, "
            "\"guidance\": %.9g, \"weights\": \"%s\"},\n", g->steps, g->shift, g->guidance,
            g->cfg->weights == GV_GALLERY_WEIGHTS_RAW ? "raw" : "ema");
    fprintf(t.f, "  \"noise\": \"x_T of seed s: philox key (s, stream %d), iteration 0, slot 0, "
            "latent; the same for every prompt and model\",\n", GV_RNG_STREAM_EVAL);
    fputs("  \"checkpoints\": [", t.f);
    for (int m = 0; m < g->M; ++m) {
        fprintf(t.f, "%s\n    {\"label\": ", m ? "," : "");
        gallery_json_put(t.f, g->models[m].label);
        fputs(", \"name\": ", t.f);
        gallery_json_put(t.f, g->models[m].key);
        fputs(", \"path\": ", t.f);
        gallery_json_put(t.f, g->models[m].path);
        fprintf(t.f, ", \"hash\": \"%s\", \"iteration\": %lld, \"mean_diversity\": ",
                g->models[m].hash, (long long)g->models[m].iteration);
        json_number(t.f, g->all_div[m]);
        fputs(", \"rewards\": {", t.f);
        for (int r = 0; r < g->R; ++r) {
            fprintf(t.f, "%s\"%s\": {\"mean\": ", r ? ", " : "", g->rewards[r].key);
            json_number(t.f, g->all_mean[m * g->R + r]);
            fputs(", \"win_rate_vs_first\": ", t.f);
            json_number(t.f, g->all_win[m * g->R + r]);
            fputs(", \"gain_vs_first\": ", t.f);
            json_number(t.f, g->all_gain[m * g->R + r]);
            fputs("}", t.f);
        }
        fputs("}}", t.f);
    }
    fprintf(t.f, "\n  ],\n  \"seconds_sampling\": %.3f, \"seconds_scoring\": %.3f, \"nfe\": %lld,\n",
            g->seconds_sampling, g->seconds_scoring, (long long)g->nfe);
    fputs("  \"gallery_config\": ", t.f);
    gallery_json_put(t.f, cfg_yaml);
    fputs(",\n  \"run_config\": ", t.f);
    gallery_json_put(t.f, g->run_yaml);
    fputs("\n}\n", t.f);
    free(cfg_yaml);
    return text_commit(&t, g->out_dir, "manifest.json");
}
