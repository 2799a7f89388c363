/* The progress bar every command shows (DESIGN.md §1): a redrawn line on a TTY, plain periodic
 * lines otherwise (log files, CI).
 *
 *   TTY:   "\r[#######.............] 37/100 it  1.8 it/s  ETA 0:35  reward 0.41 kl 0.002"
 *   plain: "37/100 it 1.8 it/s ETA 0:35 reward 0.41"
 *   final: "100/100 it 1.8 it/s done in 0:55 reward 0.41"
 *
 * The rate is the average since gv_progress_begin (below 1 item/s it is shown as s/it); the ETA is
 * the remaining items at that rate. Output stream, clock and TTY detection are injectable (log.h)
 * so tests get exact text. This file does not compute the caller's extra text (rewards, KL). */
#include "grove/log.h"

#include <stdarg.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define GV_PROGRESS_DEFAULT_BAR 20
#define GV_PROGRESS_DEFAULT_REDRAW 0.1
#define GV_PROGRESS_DEFAULT_EVERY_SECONDS 30.0

static double monotonic_seconds(void *user) {
    (void)user;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double now(const gv_progress *p) { return p->o.clock(p->o.clock_user); }

char *gv_format_duration(double seconds, char *buf, size_t len) {
    long long s = seconds > 0 ? (long long)(seconds + 0.5) : 0;
    long long h = s / 3600, m = (s % 3600) / 60, sec = s % 60;
    if (h > 0)
        snprintf(buf, len, "%lld:%02lld:%02lld", h, m, sec);
    else
        snprintf(buf, len, "%lld:%02lld", m, sec);
    return buf;
}

void gv_progress_begin(gv_progress *p, const char *label, int64_t total,
                       const gv_progress_options *opt) {
    memset(p, 0, sizeof *p);
    if (opt) p->o = *opt;
    if (!p->o.out) p->o.out = stderr;
    if (p->o.bar_width <= 0) p->o.bar_width = GV_PROGRESS_DEFAULT_BAR;
    if (p->o.redraw_seconds <= 0) p->o.redraw_seconds = GV_PROGRESS_DEFAULT_REDRAW;
    if (p->o.every_items <= 0 && p->o.every_seconds <= 0)
        p->o.every_seconds = GV_PROGRESS_DEFAULT_EVERY_SECONDS;
    if (!p->o.unit) p->o.unit = "it";
    if (!p->o.clock) p->o.clock = monotonic_seconds;
    int fd = fileno(p->o.out);
    int real_tty = fd >= 0 && isatty(fd);
    p->tty = p->o.mode == GV_PROGRESS_TTY || (p->o.mode == GV_PROGRESS_AUTO && real_tty);
    if (p->tty && p->o.columns <= 0 && real_tty) {
        struct winsize ws;
        if (ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) p->o.columns = ws.ws_col;
    }
    snprintf(p->label, sizeof p->label, "%s", label ? label : "");
    p->total = total;
    p->t_start = now(p);
    p->last_line_t = p->t_start;
}

/* Appends printf text at *at, never past len. */
static void put(char *buf, size_t len, size_t *at, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
static void put(char *buf, size_t len, size_t *at, const char *fmt, ...) {
    if (*at >= len) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *at, len - *at, fmt, ap);
    va_end(ap);
    if (n > 0) *at = *at + (size_t)n < len ? *at + (size_t)n : len - 1;
}

/* The line without "\r" or "\n". TTY lines carry the bar and use two-space separators. */
static void build_line(const gv_progress *p, double t, int final, char *buf, size_t len) {
    const char *sep = p->tty ? "  " : " ";
    size_t at = 0;
    buf[0] = '\0';
    if (p->label[0]) put(buf, len, &at, "%s ", p->label);
    if (p->tty && p->total > 0) {
        int64_t filled = p->done >= p->total ? p->o.bar_width
                         : p->done <= 0      ? 0
                                             : p->done * p->o.bar_width / p->total;
        put(buf, len, &at, "[");
        for (int i = 0; i < p->o.bar_width; ++i) put(buf, len, &at, "%c", i < filled ? '#' : '.');
        put(buf, len, &at, "] ");
    }
    if (p->total > 0)
        put(buf, len, &at, "%lld/%lld %s", (long long)p->done, (long long)p->total, p->o.unit);
    else
        put(buf, len, &at, "%lld %s", (long long)p->done, p->o.unit);

    double elapsed = t - p->t_start;
    double rate = elapsed > 0 && p->done > 0 ? (double)p->done / elapsed : 0;
    if (rate <= 0)
        put(buf, len, &at, "%s? %s/s", sep, p->o.unit);
    else if (rate >= 100)
        put(buf, len, &at, "%s%.0f %s/s", sep, rate, p->o.unit);
    else if (rate >= 1)
        put(buf, len, &at, "%s%.1f %s/s", sep, rate, p->o.unit);
    else
        put(buf, len, &at, "%s%.1f s/%s", sep, 1.0 / rate, p->o.unit);

    char d[32];
    if (final)
        put(buf, len, &at, "%sdone in %s", sep, gv_format_duration(elapsed, d, sizeof d));
    else if (p->total > 0 && rate > 0)
        put(buf, len, &at, "%sETA %s", sep,
            gv_format_duration((double)(p->total - p->done) / rate, d, sizeof d));
    else if (p->total > 0)
        put(buf, len, &at, "%sETA ?", sep);
    if (p->extra[0]) put(buf, len, &at, "%s%s", sep, p->extra);
    /* A wrapped line cannot be redrawn with "\r": keep it inside the terminal. */
    if (p->tty && p->o.columns > 1 && at > (size_t)p->o.columns - 1) buf[p->o.columns - 1] = '\0';
}

/* TTY: "\r" + line, padded with blanks over what the previous line left on screen. */
static void draw(gv_progress *p, double t, int final) {
    char line[512];
    build_line(p, t, final, line, sizeof line);
    int n = (int)strlen(line);
    if (p->tty) {
        int pad = p->drawn_len > n ? p->drawn_len - n : 0;
        fprintf(p->o.out, "\r%s%*s%s", line, pad, "", final ? "\n" : "");
        p->drawn_len = final ? 0 : n;
        p->drawn = !final;
        p->t_last_draw = t;
    } else {
        fprintf(p->o.out, "%s\n", line);
        p->last_line_done = p->done;
        p->last_line_t = t;
    }
    fflush(p->o.out);
}

void gv_progress_update(gv_progress *p, int64_t done, const char *extra_fmt, ...) {
    p->done = done;
    if (extra_fmt) {
        va_list ap;
        va_start(ap, extra_fmt);
        vsnprintf(p->extra, sizeof p->extra, extra_fmt, ap);
        va_end(ap);
    }
    double t = now(p);
    int due;
    if (p->tty)
        due = !p->drawn || t - p->t_last_draw >= p->o.redraw_seconds ||
              (p->total > 0 && done >= p->total);
    else
        due = (p->o.every_items > 0 && done - p->last_line_done >= p->o.every_items) ||
              (p->o.every_seconds > 0 && t - p->last_line_t >= p->o.every_seconds);
    if (due) draw(p, t, 0);
}

void gv_progress_clear(gv_progress *p) {
    if (!p->tty || !p->drawn) return;
    fprintf(p->o.out, "\r%*s\r", p->drawn_len, "");
    fflush(p->o.out);
    p->drawn_len = 0;
    p->drawn = 0;
}

void gv_progress_finish(gv_progress *p) { draw(p, now(p), 1); }
