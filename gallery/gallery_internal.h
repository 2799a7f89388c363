/* What the gallery's files share (gallery.h is the public side): the rendered and scored gallery
 * as plain host arrays, and the writers of its outputs. Index of image (prompt p, model m, seed s):
 * (p·M + m)·S + s. Not here: sampling and scoring (gallery_render.c) or the page's JS
 * (assets/page.js). */
#ifndef GROVE_GALLERY_INTERNAL_H
#define GROVE_GALLERY_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "grove/gallery.h"
#include "grove/run_config.h"

typedef struct gallery_model {
    char key[64];        /* base | middle | best | last | iter-<k> | file               */
    char label[64];      /* column heading                                             */
    char path[4096];
    char hash[17];       /* /meta model_hash of the file                               */
    int64_t iteration;   /* /state iteration of a run checkpoint; -1 for the base / unknown */
} gallery_model;

typedef struct gallery_reward {
    char key[96];        /* "train.classifier", "eval.classifier": CSV and page keys    */
    char label[96];      /* "classifier (train)", "classifier[gold] (eval)"             */
    int eval;            /* 0: a training reward, 1: an eval reward                    */
} gallery_reward;

typedef struct gallery_data {
    const gv_gallery_config *cfg;
    gv_run_config run;           /* the run's resolved config.yaml                       */
    char *run_yaml;              /* its text                                             */
    char run_dir[4096], out_dir[4096], title[256];
    int P, S, M, R;              /* prompts, seeds, models, reward columns (train + eval) */
    char **prompts;              /* (P) prompt text (owned array of the prompt file)      */
    int n_prompt_lines;
    int32_t *labels;             /* (P) class of each prompt                             */
    uint32_t *seeds;             /* (S)                                                  */
    gallery_model *models;       /* (M)                                                  */
    gallery_reward *rewards;     /* (R)                                                  */
    int steps;
    double shift, guidance;
    int64_t D;                   /* elements per image                                   */
    int C, H, W;
    float *scores;               /* (P, M, S, R)                                         */
    uint8_t *status;             /* (P, M, S, R) GV_REWARD_ITEM_*                        */
    float *diversity;            /* (P, M) mean pairwise feature distance over seeds     */
    float *mean;                 /* (P, M, R) over unmasked seeds                        */
    float *win;                  /* (P, M, R) vs model 0: P(r_m > r_0), ties 1/2; NaN m=0 */
    float *gain;                 /* (P, M, R) mean(r_m − r_0) over seeds both unmasked   */
    double *all_mean, *all_win, *all_gain; /* (M, R) over every (prompt, seed)          */
    double *all_div;             /* (M) mean diversity over prompts                      */
    char (*files)[64];           /* (P, M, S) "images/p03-s0001-last.png"                */
    /* the training noise schedule (for the page's panel) */
    int noise_kind;              /* gv_noise_kind of the run                             */
    double noise_level;
    float *psi;                  /* calibrated ψ(i) from last.h5 /state psi, or NULL     */
    int n_psi;
    double seconds_sampling, seconds_scoring;
    int64_t nfe;
} gallery_data;

static inline int64_t gallery_idx(const gallery_data *g, int p, int m, int s) {
    return ((int64_t)p * g->M + m) * g->S + s;
}

/* gallery_write.c: scores.csv, win_rates.csv, manifest.json. */
gv_status gallery_write_tables(const gallery_data *g, const gv_gallery_options *o);
/* gallery_page.c: index.html. */
gv_status gallery_write_page(const gallery_data *g, const char *path);

/* gallery_svg.c: a small-multiple line plot as inline SVG appended to `f`. x (n), y (n) with NaN
   gaps; `title` above it; `ylabel` unit note. */
void gallery_svg_plot(FILE *f, const char *title, const char *note, const double *x,
                      const double *y, int n, const char *color);

/* gallery_json.c: JSON reading through libfyaml (JSON is YAML 1.2 flow). */
typedef struct gallery_json gallery_json;
/* Parse one JSON text; errors name `where` (e.g. "file:line"). */
gv_status gallery_json_parse(const char *text, const char *where, gallery_json **out);
void gallery_json_free(gallery_json *j);
/* The number at a '/'-separated path ("eval/classifier"): 1 when present and numeric. */
int gallery_json_number(gallery_json *j, const char *path, double *out);
/* The string at `path` (malloc'd copy into *out): 1 when present and a scalar. */
int gallery_json_string(gallery_json *j, const char *path, char **out);

/* snprintf that reports truncation: GV_ERR_INVALID "gallery: text too long: <start>" (paths). */
gv_status gallery_fmt(char *out, size_t n, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* JSON string escaping into a FILE, quotes included. */
void gallery_json_put(FILE *f, const char *s);

#endif
