/* Inline SVG line plots for the gallery page: one small panel per series (title, y range, the line
 * with gaps where a value is missing, dots when the series is sparse, x ticks at its ends). Plain
 * text output, no state. Not here: which series are drawn (gallery_page.c). */
#include <math.h>
#include <stdio.h>

#include "gallery_internal.h"

enum { PLOT_W = 262, PLOT_H = 132, LEFT = 44, RIGHT = 10, TOP = 22, BOTTOM = 22 };

static void fmt_tick(char *buf, size_t n, double v) {
    const double a = fabs(v);
    if (a != 0 && (a < 1e-3 || a >= 1e5)) snprintf(buf, n, "%.1e", v);
    else snprintf(buf, n, "%.3g", v);
}

static void text_put(FILE *f, const char *s) {
    for (; *s; ++s)
        if (*s == '<') fputs("&lt;", f);
        else if (*s == '&') fputs("&amp;", f);
        else fputc(*s, f);
}

void gallery_svg_plot(FILE *f, const char *title, const char *note, const double *x,
                      const double *y, int n, const char *color) {
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    int count = 0;
    for (int i = 0; i < n; ++i) {
        if (!isfinite(x[i]) || !isfinite(y[i])) continue;
        x0 = fmin(x0, x[i]), x1 = fmax(x1, x[i]);
        y0 = fmin(y0, y[i]), y1 = fmax(y1, y[i]);
        count++;
    }
    fprintf(f, "<svg class=\"plot\" viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" "
            "role=\"img\"><title>", PLOT_W, PLOT_H, PLOT_W, PLOT_H);
    text_put(f, title);
    fputs("</title>", f);
    fprintf(f, "<text class=\"pt\" x=\"%d\" y=\"14\">", LEFT);
    text_put(f, title);
    if (note && *note) {
        fputs(" <tspan class=\"pn\">", f);
        text_put(f, note);
        fputs("</tspan>", f);
    }
    fputs("</text>", f);
    const int pw = PLOT_W - LEFT - RIGHT, ph = PLOT_H - TOP - BOTTOM;
    fprintf(f, "<rect class=\"pa\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\"/>", LEFT, TOP, pw,
            ph);
    if (count == 0) {
        fprintf(f, "<text class=\"pn\" x=\"%d\" y=\"%d\">not logged by this run</text></svg>",
                LEFT + 8, TOP + ph / 2);
        return;
    }
    if (x1 == x0) x0 -= 0.5, x1 += 0.5;
    if (y1 == y0) {
        const double d = y0 != 0 ? fabs(y0) * 0.05 : 0.5;
        y0 -= d, y1 += d;
    } else {
        const double pad = 0.06 * (y1 - y0);
        y0 = y0 >= 0 && y0 - pad < 0 ? 0 : y0 - pad; /* a non-negative series keeps a 0 floor */
        y1 += pad;
    }
    char a[32], b[32];
    for (int t = 0; t <= 2; ++t) { /* three y ticks with grid lines */
        const double v = y0 + (y1 - y0) * t / 2.0;
        const double py = TOP + ph - (v - y0) / (y1 - y0) * ph;
        fmt_tick(a, sizeof a, v);
        fprintf(f, "<line class=\"pg\" x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\"/>", LEFT,
                LEFT + pw, py, py);
        fprintf(f, "<text class=\"py\" x=\"%d\" y=\"%.1f\">%s</text>", LEFT - 4, py + 3.5, a);
    }
    fmt_tick(a, sizeof a, x0);
    fmt_tick(b, sizeof b, x1);
    fprintf(f, "<text class=\"px\" x=\"%d\" y=\"%d\">%s</text>", LEFT, PLOT_H - 6, a);
    fprintf(f, "<text class=\"px pxr\" x=\"%d\" y=\"%d\">%s</text>", LEFT + pw, PLOT_H - 6, b);
    /* the line, broken where a value is missing */
    int open = 0;
    for (int i = 0; i < n; ++i) {
        if (!isfinite(x[i]) || !isfinite(y[i])) {
            if (open) fputs("\"/>", f), open = 0;
            continue;
        }
        const double px = LEFT + (x[i] - x0) / (x1 - x0) * pw;
        const double py = TOP + ph - (y[i] - y0) / (y1 - y0) * ph;
        if (!open)
            fprintf(f, "<polyline class=\"pl\" stroke=\"%s\" points=\"", color), open = 1;
        fprintf(f, "%.1f,%.1f ", px, py);
    }
    if (open) fputs("\"/>", f);
    if (count <= 24) /* sparse series (evals): mark the points */
        for (int i = 0; i < n; ++i) {
            if (!isfinite(x[i]) || !isfinite(y[i])) continue;
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.6\" fill=\"%s\"/>",
                    LEFT + (x[i] - x0) / (x1 - x0) * pw, TOP + ph - (y[i] - y0) / (y1 - y0) * ph,
                    color);
        }
    fputs("</svg>", f);
}
