/* index.html of a gallery (gallery.h): one self-contained file — inline CSS and JS (embedded from
 * gallery/assets at build time), inline SVG plots, every image as a data: URI of its PNG file (text
 * chunks included) — so it opens offline from file:// and can be mailed as one file.
 *
 * The static HTML already reads without JS: the model summary, the training curves from
 * metrics.jsonl, the training noise schedule (per-step noise std from gv_step_coeffs; ψ(i) when
 * the run's last.h5 holds one), and one grid per prompt (rows = seeds, columns = models, every
 * row from the same x_T) with a score badge per image. page.js adds the reward selector, sorting
 * by reward gain / diversity loss, click-to-enlarge and the labelling mode, from the JSON block
 * `gallery-data` written here. Not here: sampling or scoring (gallery_render.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gallery_assets.h"
#include "gallery_internal.h"
#include "grove/grpo.h"
#include "grove/rewards.h"
#include "grove/rundir.h"
#include "grove/version.h"
#include "samplers/schedule.h"

static const char *const series_colors[] = {"#2f6fb0", "#c2571a", "#6a3d9a", "#2a8a55",
                                            "#b0304a", "#7a7a20"};

static void html_put(FILE *f, const char *s) {
    for (; *s; ++s) switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
}

static void base64_put(FILE *f, const unsigned char *b, size_t n) {
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        const unsigned v = (unsigned)b[i] << 16 | (i + 1 < n ? (unsigned)b[i + 1] << 8 : 0) |
                           (i + 2 < n ? b[i + 2] : 0);
        fputc(t[v >> 18 & 63], f);
        fputc(t[v >> 12 & 63], f);
        fputc(i + 1 < n ? t[v >> 6 & 63] : '=', f);
        fputc(i + 2 < n ? t[v & 63] : '=', f);
    }
}

static gv_status put_image_uri(FILE *f, const gallery_data *g, int64_t i) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", g->out_dir, g->files[i]);
    FILE *in = fopen(path, "rb");
    if (!in) return GV_ERROR(GV_ERR_IO, "%s: cannot read the image back", path);
    unsigned char buf[1 << 16];
    const size_t n = fread(buf, 1, sizeof buf, in);
    const int big = !feof(in);
    fclose(in);
    if (big) return GV_ERROR(GV_ERR_INVALID, "%s: over 64 KiB, too large to inline", path);
    fputs("data:image/png;base64,", f);
    base64_put(f, buf, n);
    return GV_OK;
}

static void num(FILE *f, double v, const char *fmt) {
    if (isfinite(v)) fprintf(f, fmt, v);
    else fputs("—", f);
}

/* A JSON string inside <script>: '<' written as \u003c, so no "</script>" can end the block. */
static void json_put_script(FILE *f, const char *s) {
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    if (!m) return;
    gallery_json_put(m, s);
    fclose(m);
    for (const char *c = buf; c && *c; ++c)
        if (*c == '<') fputs("\\u003c", f);
        else fputc(*c, f);
    free(buf);
}

static void json_num(FILE *f, double v) {
    if (isfinite(v)) fprintf(f, "%.6g", v);
    else fputs("null", f);
}

/* ---- curves from metrics.jsonl ---------------------------------------------------------------- */

typedef struct series {
    const char *title, *note, *path, *path2; /* path2: summed with path (clip fractions)  */
    double *x, *y;
    int n;
} series;

static void series_add(series *s, double x, double y) {
    s->x[s->n] = x;
    s->y[s->n] = y;
    s->n++;
}

static void write_curves(FILE *f, const gallery_data *g) {
    char path[4200], eval_path[128], eval_title[160];
    snprintf(path, sizeof path, "%s/metrics.jsonl", g->run_dir);
    char *text = NULL;
    if (!gv_rundir_exists(path) || gv_rundir_slurp(path, &text) != GV_OK) {
        fputs("<p class=\"note\">No metrics.jsonl in the run directory: no curves.</p>", f);
        return;
    }
    int lines = 1;
    for (const char *c = text; *c; ++c) lines += *c == '\n';
    if (g->run.n_eval_rewards > 0) {
        const char *key = g->rewards[g->run.n_rewards].key + strlen("eval."); /* metrics key */
        snprintf(eval_path, sizeof eval_path, "eval/%s", key);
        snprintf(eval_title, sizeof eval_title, "eval %s", key);
    } else {
        snprintf(eval_path, sizeof eval_path, "eval/none");
        snprintf(eval_title, sizeof eval_title, "eval reward");
    }
    series ss[] = {
        {"train reward", "batch mean", "reward_mean", NULL, NULL, NULL, 0},
        {eval_title, "held-out", eval_path, NULL, NULL, NULL, 0},
        {"KL to the base", "", "kl", NULL, NULL, NULL, 0},
        {"clip fraction", "above + below", "clip_frac_above", "clip_frac_below", NULL, NULL, 0},
        {"masked fraction", "failed rewards", "masked_fraction", NULL, NULL, NULL, 0},
    };
    const int NS = (int)(sizeof ss / sizeof ss[0]);
    int ok = 1;
    for (int k = 0; k < NS; ++k) {
        ss[k].x = malloc((size_t)lines * sizeof(double));
        ss[k].y = malloc((size_t)lines * sizeof(double));
        ok &= ss[k].x && ss[k].y;
    }
    int line_no = 0, bad = 0;
    for (char *line = text; ok && line && *line;) {
        char *next = strchr(line, '\n');
        if (next) *next++ = '\0';
        ++line_no;
        gallery_json *j = NULL;
        double it, v, v2;
        if (*line && gallery_json_parse(line, path, &j) == GV_OK) {
            if (gallery_json_number(j, "iteration", &it))
                for (int k = 0; k < NS; ++k)
                    if (gallery_json_number(j, ss[k].path, &v)) {
                        if (ss[k].path2 && gallery_json_number(j, ss[k].path2, &v2)) v += v2;
                        series_add(&ss[k], it, v);
                    }
            gallery_json_free(j);
        } else if (*line) {
            bad++;
        }
        line = next;
    }
    fputs("<div class=\"plots\">", f);
    for (int k = 0; ok && k < NS; ++k)
        gallery_svg_plot(f, ss[k].title, ss[k].note, ss[k].x, ss[k].y, ss[k].n,
                         series_colors[k % 6]);
    fputs("</div>", f);
    if (bad) fprintf(f, "<p class=\"note\">%d unreadable line(s) in metrics.jsonl skipped.</p>", bad);
    for (int k = 0; k < NS; ++k) {
        free(ss[k].x);
        free(ss[k].y);
    }
    free(text);
}

/* The run's training noise: per-step std of its SDE schedule (ALGORITHMS.md §2) and ψ(i). */
static void write_noise(FILE *f, const gallery_data *g) {
    static const char *const kinds[] = {"flow_grpo", "constant", "calibrated", "cps", "exact",
                                        "ode"};
    const int N = g->run.sampler.steps;
    float sigmas[GV_SAMPLER_MAX_STEPS + 1];
    double x[GV_SAMPLER_MAX_STEPS], std[GV_SAMPLER_MAX_STEPS], sig[GV_SAMPLER_MAX_STEPS];
    gv_noise_spec spec = {.kind = (gv_noise_kind)g->noise_kind, .level = g->noise_level,
                          .psi = g->psi, .n_psi = g->n_psi};
    char note[96];
    snprintf(note, sizeof note, "%s %g", kinds[g->noise_kind % 6], g->noise_level);
    int n = 0;
    if (gv_schedule_sigmas(N, g->run.sampler.shift, sigmas) == GV_OK)
        for (int i = 0; i < N; ++i) {
            gv_step_args a;
            int is_sde = 0;
            if (gv_step_coeffs(&spec, sigmas, N, i, &a, &is_sde) != GV_OK) break;
            x[n] = i;
            std[n] = a.std;
            sig[n] = sigmas[i];
            n++;
        }
    fputs("<div class=\"plots\">", f);
    gallery_svg_plot(f, "SDE noise std / step", note, x, std, n, series_colors[3]);
    gallery_svg_plot(f, "σ at step i", "shift", x, sig, n, series_colors[0]);
    if (g->psi) {
        double px[256], py[256];
        for (int i = 0; i < g->n_psi; ++i) px[i] = i, py[i] = g->psi[i];
        gallery_svg_plot(f, "calibrated ψ(i)", "last.h5", px, py, g->n_psi, series_colors[4]);
    }
    fputs("</div>", f);
    if (n < N)
        fprintf(f, "<p class=\"note\">The %s schedule needs a ψ table this run's last.h5 does not "
                "hold: no per-step std.</p>", kinds[g->noise_kind % 6]);
    else
        fputs("<p class=\"note\">The gallery itself samples with the ODE (no noise); these are "
              "the SDE steps the run was trained with. The last step is always deterministic.</p>",
              f);
}

/* ---- page parts ------------------------------------------------------------------------------- */

static void write_summary(FILE *f, const gallery_data *g) {
    fputs("<table class=\"summary\"><thead><tr><th>model</th><th>checkpoint</th><th>iteration</th>",
          f);
    for (int r = 0; r < g->R; ++r) {
        fputs("<th>", f);
        html_put(f, g->rewards[r].label);
        fprintf(f, "<br><small>mean · win vs %s</small></th>", g->models[0].label);
    }
    fputs("<th>diversity<br><small>feature distance across seeds</small></th></tr></thead><tbody>",
          f);
    for (int m = 0; m < g->M; ++m) {
        fputs("<tr><th>", f);
        html_put(f, g->models[m].label);
        fprintf(f, "</th><td><code>%s</code></td><td>", g->models[m].hash);
        if (g->models[m].iteration >= 0) fprintf(f, "%lld", (long long)g->models[m].iteration);
        else fputs("base", f);
        fputs("</td>", f);
        for (int r = 0; r < g->R; ++r) {
            fputs("<td>", f);
            num(f, g->all_mean[m * g->R + r], "%.3f");
            if (m > 0) {
                const double w = g->all_win[m * g->R + r];
                fprintf(f, " · <span class=\"%s\">", w > 0.5 ? "up" : w < 0.5 ? "down" : "");
                num(f, 100 * w, "%.0f%%");
                fputs("</span>", f);
            }
            fputs("</td>", f);
        }
        fputs("<td>", f);
        num(f, g->all_div[m], "%.2f");
        if (m > 0 && g->all_div[0] > 0) {
            const double rel = g->all_div[m] / g->all_div[0] - 1;
            fprintf(f, " <span class=\"%s\">(%+.0f%%)</span>", rel < -0.1 ? "down" : "", 100 * rel);
        }
        fputs("</td></tr>", f);
    }
    fputs("</tbody></table>", f);
}

static gv_status write_prompt(FILE *f, const gallery_data *g, int p) {
    fprintf(f, "<article class=\"prompt\" id=\"prompt-%d\" data-p=\"%d\"><h3><span class=\"pi\">"
            "%d</span> ", p, p, p + 1);
    html_put(f, g->prompts[p]);
    fprintf(f, " <span class=\"lab\">class %d</span></h3><table class=\"g\"><thead><tr>"
            "<th class=\"sd\">seed</th>", g->labels[p]);
    for (int m = 0; m < g->M; ++m) {
        fputs("<th>", f);
        html_put(f, g->models[m].label);
        fputs("</th>", f);
    }
    fputs("</tr><tr class=\"st\"><td></td>", f);
    for (int m = 0; m < g->M; ++m) {
        /* page.js rewrites these for the selected reward; this is the first reward's view */
        fprintf(f, "<td data-m=\"%d\"><span class=\"w\">", m);
        if (m > 0 && g->R > 0) num(f, 100 * g->win[((int64_t)p * g->M + m) * g->R], "win %.0f%%");
        fputs("</span><span class=\"d\">", f);
        const float d0 = g->diversity[p * g->M], dm = g->diversity[p * g->M + m];
        if (m > 0 && d0 > 0) fprintf(f, "div %+.0f%%", 100.0 * (dm / d0 - 1));
        else num(f, dm, "div %.1f");
        fputs("</span></td>", f);
    }
    fputs("</tr></thead><tbody>", f);
    for (int s = 0; s < g->S; ++s) {
        fprintf(f, "<tr><th class=\"sd\">%u</th>", g->seeds[s]);
        for (int m = 0; m < g->M; ++m) {
            const int64_t i = gallery_idx(g, p, m, s);
            fprintf(f, "<td><figure><img class=\"cell\" id=\"i-%lld\" data-i=\"%lld\" alt=\"",
                    (long long)i, (long long)i);
            html_put(f, g->models[m].label);
            fprintf(f, ", seed %u\" src=\"", g->seeds[s]);
            GV_TRY(put_image_uri(f, g, i));
            fprintf(f, "\"><figcaption class=\"b\" data-i=\"%lld\">", (long long)i);
            if (g->R > 0 && g->status[i * g->R] == GV_REWARD_ITEM_OK)
                fprintf(f, "%.2f", g->scores[i * g->R]);
            else if (g->R > 0) fputs("failed", f);
            fputs("</figcaption></figure></td>", f);
        }
        fputs("</tr>", f);
    }
    fputs("</tbody></table></article>", f);
    return GV_OK;
}

static void write_data(FILE *f, const gallery_data *g) {
    /* JSON inside <script type="application/json">: strings go through json_put_script */
    fputs("<script type=\"application/json\" id=\"gallery-data\">{\"title\":", f);
    json_put_script(f, g->title);
    fprintf(f, ",\"grove\":\"%s\",\"P\":%d,\"S\":%d,\"M\":%d,\"R\":%d,\"prompts\":[", GROVE_VERSION,
            g->P, g->S, g->M, g->R);
    for (int p = 0; p < g->P; ++p) {
        fputs(p ? "," : "", f);
        json_put_script(f, g->prompts[p]);
    }
    fputs("],\"seeds\":[", f);
    for (int s = 0; s < g->S; ++s) fprintf(f, "%s%u", s ? "," : "", g->seeds[s]);
    fputs("],\"models\":[", f);
    for (int m = 0; m < g->M; ++m) {
        fputs(m ? ",{\"label\":" : "{\"label\":", f);
        json_put_script(f, g->models[m].label);
        fprintf(f, ",\"checkpoint\":\"%s\",\"iteration\":%lld}", g->models[m].hash,
                (long long)g->models[m].iteration);
    }
    fputs("],\"rewards\":[", f);
    for (int r = 0; r < g->R; ++r) {
        fputs(r ? ",{\"key\":" : "{\"key\":", f);
        json_put_script(f, g->rewards[r].key);
        fputs(",\"label\":", f);
        json_put_script(f, g->rewards[r].label);
        fprintf(f, ",\"eval\":%s}", g->rewards[r].eval ? "true" : "false");
    }
    const int64_t images = (int64_t)g->P * g->M * g->S;
    fputs("],\"scores\":[", f);
    for (int64_t k = 0; k < images * g->R; ++k) {
        fputs(k ? "," : "", f);
        json_num(f, g->status[k] == GV_REWARD_ITEM_OK ? (double)g->scores[k] : NAN);
    }
    fputs("],\"diversity\":[", f);
    for (int k = 0; k < g->P * g->M; ++k) {
        fputs(k ? "," : "", f);
        json_num(f, g->diversity[k]);
    }
    const float *arrays[] = {g->mean, g->gain, g->win};
    const char *names[] = {"mean", "gain", "win"};
    for (int a = 0; a < 3; ++a) {
        fprintf(f, "],\"%s\":[", names[a]);
        for (int64_t k = 0; k < (int64_t)g->P * g->M * g->R; ++k) {
            fputs(k ? "," : "", f);
            json_num(f, arrays[a][k]);
        }
    }
    fputs("]}</script>", f);
}

gv_status gallery_write_page(const gallery_data *g, const char *path) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return GV_ERROR(GV_ERR_OOM, "gallery: cannot open a memory stream");
    fputs("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
          "<meta name=\"generator\" content=\"grove " GROVE_VERSION "\"><title>", f);
    html_put(f, g->title);
    fputs("</title><style>", f);
    fputs(gallery_page_css, f);
    fputs("</style></head><body><header><h1>", f);
    html_put(f, g->title);
    fputs("</h1><p class=\"sub\">", f);
    fprintf(f, "%d prompts × %d seeds × %d models · ODE sampler, %d steps, shift %g, CFG %g, %s "
            "weights · every row starts from the same noise x<sub>T</sub>, so the columns differ "
            "only by the model · run <code>", g->P, g->S, g->M, g->steps, g->shift, g->guidance,
            g->cfg->weights == GV_GALLERY_WEIGHTS_RAW ? "raw" : "EMA");
    html_put(f, g->run_dir);
    fputs("</code></p></header><main>", f);

    fputs("<section id=\"summary\"><h2>Models</h2>", f);
    write_summary(f, g);
    fprintf(f, "<p class=\"note\">Win rate: the share of (prompt, seed) pairs where the model's "
            "image scores higher than %s's from the same noise (ties count half). Diversity: mean "
            "distance between the gold judge's features of a prompt's images across seeds — a "
            "drop means the model draws the same image whatever the noise (mode collapse). "
            "Rewards marked (eval) were not optimised: a train reward that rises while the eval "
            "reward falls is reward hacking.</p></section>", g->models[0].label);

    fputs("<section id=\"curves\"><h2>Training curves <small>metrics.jsonl</small></h2>", f);
    write_curves(f, g);
    write_noise(f, g);
    fputs("</section>", f);

    fputs("<nav id=\"controls\"><label>score <select id=\"reward\"></select></label>"
          "<label>sort prompts <select id=\"sort\"><option value=\"order\">in file order</option>"
          "<option value=\"gain\">by reward gain</option><option value=\"divloss\">by diversity "
          "loss</option></select></label><label>of <select id=\"sortmodel\"></select></label>"
          "<button id=\"label-start\" type=\"button\">Label pairs (L)</button>"
          "<span id=\"label-count\" class=\"note\"></span></nav>", f);

    fputs("<section id=\"labelling\" hidden><h2>Which image fits the prompt better?</h2>"
          "<p class=\"lprompt\" id=\"lprompt\"></p><div class=\"pair\">"
          "<button type=\"button\" class=\"side\" id=\"pick-left\"><img id=\"left-img\" alt=\"left\">"
          "<span>left · ← or 1</span></button>"
          "<button type=\"button\" class=\"side\" id=\"pick-right\"><img id=\"right-img\" "
          "alt=\"right\"><span>right · → or 2</span></button></div><p class=\"lbar\">"
          "<button type=\"button\" id=\"pick-tie\">tie (↓ or 0)</button>"
          "<button type=\"button\" id=\"pick-skip\">skip (S)</button>"
          "<button type=\"button\" id=\"pick-undo\">undo (U)</button>"
          "<button type=\"button\" id=\"label-export\">download preferences.jsonl (D)</button>"
          "<button type=\"button\" id=\"label-stop\">back to the gallery (Esc)</button>"
          "<span id=\"lprogress\" class=\"note\"></span></p><p class=\"note\">Pairs come from the "
          "same prompt and the same noise; which model is on which side is random and hidden. "
          "Summarize the downloaded file with <code>grove gallery --summarize "
          "preferences.jsonl</code>.</p></section>", f);

    fputs("<p class=\"note gridnote\">Each prompt: one column per model, one row per seed — a row "
          "starts from the same noise in every column. Badges: the selected score (green high, red "
          "low); under each heading the win rate against the first column and the diversity "
          "change. Click an image to enlarge it.</p><section id=\"grid\">", f);
    gv_status s = GV_OK;
    for (int p = 0; s == GV_OK && p < g->P; ++p) s = write_prompt(f, g, p);
    fputs("</section></main><div id=\"lightbox\" hidden><figure><img id=\"lb-img\" alt=\"\">"
          "<figcaption id=\"lb-cap\"></figcaption></figure></div>", f);
    write_data(f, g);
    fputs("<script>", f);
    fputs(gallery_page_js, f);
    fputs("</script></body></html>\n", f);
    const int bad = ferror(f);
    fclose(f);
    if (s == GV_OK && bad) s = GV_ERROR(GV_ERR_OOM, "gallery: out of memory writing %s", path);
    if (s == GV_OK) s = gv_rundir_write_atomic(path, buf);
    free(buf);
    return s;
}
