/* Human win rates from a preferences.jsonl the gallery page exported (gallery.h): judgements are
 * grouped by the unordered pair of models (label + checkpoint hash), counted from the side of the
 * model whose label sorts first, and given a 95% Wilson interval. Not here: the page that writes
 * the file (assets/page.js). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gallery_internal.h"
#include "grove/rundir.h"

typedef struct side {
    char model[64], ckpt[17];
} side;

static gv_status read_side(gallery_json *j, const char *which, const char *where, side *out) {
    char path[32], *model = NULL, *ckpt = NULL;
    snprintf(path, sizeof path, "%s/model", which);
    if (!gallery_json_string(j, path, &model))
        return GV_ERROR(GV_ERR_FORMAT, "%s: missing \"%s\": {\"model\": ...}", where, which);
    snprintf(path, sizeof path, "%s/checkpoint", which);
    if (!gallery_json_string(j, path, &ckpt)) {
        free(model);
        return GV_ERROR(GV_ERR_FORMAT, "%s: missing \"%s\": {\"checkpoint\": ...}", where, which);
    }
    snprintf(out->model, sizeof out->model, "%s", model);
    snprintf(out->ckpt, sizeof out->ckpt, "%s", ckpt);
    free(model);
    free(ckpt);
    return GV_OK;
}

/* The pair's entry (created when new); NULL on OOM. */
static gv_gallery_pair_summary *pair_of(gv_gallery_summary *s, const side *x, const side *y,
                                        int *cap) {
    for (int i = 0; i < s->n_pairs; ++i) {
        gv_gallery_pair_summary *e = &s->pairs[i];
        if (!strcmp(e->first, x->model) && !strcmp(e->first_ckpt, x->ckpt) &&
            !strcmp(e->second, y->model) && !strcmp(e->second_ckpt, y->ckpt))
            return e;
    }
    if (s->n_pairs == *cap) {
        *cap = *cap ? 2 * *cap : 8;
        gv_gallery_pair_summary *grown = realloc(s->pairs, (size_t)*cap * sizeof *grown);
        if (!grown) return NULL;
        s->pairs = grown;
    }
    gv_gallery_pair_summary *e = &s->pairs[s->n_pairs++];
    memset(e, 0, sizeof *e);
    snprintf(e->first, sizeof e->first, "%s", x->model);
    snprintf(e->first_ckpt, sizeof e->first_ckpt, "%s", x->ckpt);
    snprintf(e->second, sizeof e->second, "%s", y->model);
    snprintf(e->second_ckpt, sizeof e->second_ckpt, "%s", y->ckpt);
    return e;
}

static int side_cmp(const side *a, const side *b) {
    const int c = strcmp(a->model, b->model);
    return c ? c : strcmp(a->ckpt, b->ckpt);
}

static int pair_cmp(const void *pa, const void *pb) {
    const gv_gallery_pair_summary *a = pa, *b = pb;
    int c = strcmp(a->first, b->first);
    if (!c) c = strcmp(a->second, b->second);
    if (!c) c = strcmp(a->first_ckpt, b->first_ckpt);
    return c ? c : strcmp(a->second_ckpt, b->second_ckpt);
}

/* One line: validated, then counted. */
static gv_status count_line(gv_gallery_summary *s, const char *line, const char *where, int *cap) {
    gallery_json *j = NULL;
    GV_TRY(gallery_json_parse(line, where, &j));
    side a, b;
    char *choice = NULL, *prompt = NULL;
    double seed;
    gv_status st = GV_OK;
    if (!gallery_json_string(j, "prompt", &prompt))
        st = GV_ERROR(GV_ERR_FORMAT, "%s: missing \"prompt\"", where);
    else if (!gallery_json_number(j, "seed", &seed))
        st = GV_ERROR(GV_ERR_FORMAT, "%s: missing numeric \"seed\"", where);
    else if ((st = read_side(j, "a", where, &a)) == GV_OK &&
             (st = read_side(j, "b", where, &b)) == GV_OK) {
        if (!gallery_json_string(j, "choice", &choice) ||
            (strcmp(choice, "a") && strcmp(choice, "b") && strcmp(choice, "tie")))
            st = GV_ERROR(GV_ERR_FORMAT, "%s: \"choice\" must be \"a\", \"b\" or \"tie\"", where);
        else if (side_cmp(&a, &b) == 0)
            st = GV_ERROR(GV_ERR_FORMAT, "%s: \"a\" and \"b\" are the same model (%s)", where,
                          a.model);
    }
    if (st == GV_OK) {
        const int swap = side_cmp(&a, &b) > 0; /* count from the side that sorts first */
        gv_gallery_pair_summary *e = swap ? pair_of(s, &b, &a, cap) : pair_of(s, &a, &b, cap);
        if (!e) st = GV_ERROR(GV_ERR_OOM, "%s: out of memory", where);
        else {
            e->n++;
            if (!strcmp(choice, "tie")) e->ties++;
            else if (!strcmp(choice, swap ? "b" : "a")) e->wins++;
            else e->losses++;
            s->judgements++;
        }
    }
    free(choice);
    free(prompt);
    gallery_json_free(j);
    return st;
}

gv_status gv_gallery_summarize(const char *path, gv_gallery_summary *out) {
    memset(out, 0, sizeof *out);
    char *text = NULL;
    if (!gv_rundir_exists(path)) return GV_ERROR(GV_ERR_IO, "%s: no such file", path);
    GV_TRY(gv_rundir_slurp(path, &text));
    int cap = 0, line_no = 0;
    gv_status s = GV_OK;
    for (char *line = text; s == GV_OK && line && *line;) {
        char *next = strchr(line, '\n');
        if (next) *next++ = '\0';
        ++line_no;
        size_t len = strlen(line);
        while (len && (line[len - 1] == '\r' || line[len - 1] == ' ')) line[--len] = '\0';
        if (!len) out->skipped_lines++;
        else {
            char where[4200];
            snprintf(where, sizeof where, "%s:%d", path, line_no);
            s = count_line(out, line, where, &cap);
        }
        line = next;
    }
    free(text);
    if (s == GV_OK && out->judgements == 0)
        s = GV_ERROR(GV_ERR_FORMAT, "%s: no judgements (label some pairs in the page first)", path);
    if (s != GV_OK) {
        gv_gallery_summary_free(out);
        return s;
    }
    for (int i = 0; i < out->n_pairs; ++i) {
        gv_gallery_pair_summary *e = &out->pairs[i];
        /* win rate with ties as half a win; 95% Wilson score interval (z = 1.96) */
        const double n = e->n, p = (e->wins + 0.5 * e->ties) / n, z = 1.959963984540054;
        const double den = 1 + z * z / n, mid = (p + z * z / (2 * n)) / den;
        const double half = z * sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den;
        e->win_rate = p;
        e->lo = fmax(0.0, mid - half);
        e->hi = fmin(1.0, mid + half);
    }
    qsort(out->pairs, (size_t)out->n_pairs, sizeof *out->pairs, pair_cmp);
    return GV_OK;
}

void gv_gallery_summary_free(gv_gallery_summary *s) {
    if (!s) return;
    free(s->pairs);
    memset(s, 0, sizeof *s);
}

void gv_gallery_summary_print(const gv_gallery_summary *s, const char *path, FILE *out) {
    fprintf(out, "%s: %d human judgements\n", path, s->judgements);
    fprintf(out, "%-28s %5s %5s %5s %5s  %-8s %s\n", "model A vs model B", "n", "A", "ties", "B",
            "A wins", "95% interval");
    for (int i = 0; i < s->n_pairs; ++i) {
        const gv_gallery_pair_summary *e = &s->pairs[i];
        char name[160];
        snprintf(name, sizeof name, "%s vs %s", e->first, e->second);
        fprintf(out, "%-28s %5d %5d %5d %5d  %-8.3f [%.3f, %.3f]\n", name, e->n, e->wins, e->ties,
                e->losses, e->win_rate, e->lo, e->hi);
    }
    fputs("(A wins = (A preferred + ties / 2) / n; checkpoints: ", out);
    for (int i = 0; i < s->n_pairs; ++i)
        fprintf(out, "%s%s=%s, %s=%s", i ? "; " : "", s->pairs[i].first, s->pairs[i].first_ckpt,
                s->pairs[i].second, s->pairs[i].second_ckpt);
    fputs(")\n", out);
}
