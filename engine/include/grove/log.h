/* Run logging: the metrics.jsonl writer (metrics.c) and the progress bar (progress.c).
 *
 * metrics.jsonl holds one JSON object per line (DESIGN.md §3, "Logging"; ALGORITHMS.md §3,
 * "Logged"). A record is built field by field, keys in insertion order, nested objects allowed:
 *
 *     gv_metrics_begin(m);
 *     gv_metrics_i64(m, "iteration", 12);
 *     gv_metrics_object(m, "reward");
 *       gv_metrics_object(m, "classifier");
 *         gv_metrics_f32(m, "raw_mean", 0.41f);
 *       gv_metrics_end_object(m);
 *     gv_metrics_end_object(m);
 *     GV_TRY(gv_metrics_end(m));   -> {"iteration":12,"reward":{"classifier":{"raw_mean":0.41}}}
 *
 * Numbers: gv_metrics_f32 prints the shortest decimal (at most 9 significant digits) that reads
 * back as the same float; gv_metrics_f64 the shortest (at most 17) that reads back as the same
 * double. So 0.1f prints "0.1", never "0.100000001", and every value round-trips exactly. Printing
 * assumes the C locale (grove never calls setlocale). Non-finite values are not JSON numbers: by
 * default they are written as null; with `nonfinite_as_string` as the strings "NaN", "Infinity",
 * "-Infinity" (Python's float() parses them). Strings are escaped by gv_json_escape.
 *
 * The field functions never fail on their own: misuse (a field outside a record, unbalanced
 * objects, nesting deeper than GV_METRICS_MAX_DEPTH) or a failed allocation is remembered and
 * reported by gv_metrics_end, which then writes nothing. */
#ifndef GROVE_LOG_H
#define GROVE_LOG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "grove/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- JSON ------------------------------------------------------------------------------------ */

/* Escape `src` as the inside of a JSON string (no surrounding quotes): '"', '\\' and control
   characters (\n, \t, \r, \b, \f, else \u00XX) are escaped, DEL as \u007f; invalid UTF-8 bytes
   become \ufffd. Writes at most cap-1 bytes plus a NUL into dst (dst may be NULL when cap is 0)
   and returns the full escaped length, like snprintf. */
size_t gv_json_escape(char *dst, size_t cap, const char *src);

/* ---- metrics.jsonl --------------------------------------------------------------------------- */

#define GV_METRICS_MAX_DEPTH 8

typedef struct gv_metrics {
    FILE *f;
    char *path;
    int owns_file;
    int fsync_each;          /* 1: fsync after every record (default 0: fflush only)      */
    int nonfinite_as_string; /* 0: NaN/Inf -> null; 1: -> "NaN", "Infinity", "-Infinity" */
    /* the record being built */
    char *buf;
    size_t len, cap;
    int depth;                           /* 0: no record; 1: top level; 2+: nested */
    int has_field[GV_METRICS_MAX_DEPTH + 1];
    gv_status error;                     /* first misuse / OOM since begin        */
    char error_msg[160];
} gv_metrics;

/* Open `path` for writing (append = 1 keeps existing records, as on resume). */
gv_status gv_metrics_open(gv_metrics *m, const char *path, int append);
/* Write to an already open stream (not closed by gv_metrics_close); `name` is used in messages. */
void gv_metrics_open_stream(gv_metrics *m, FILE *f, const char *name);
gv_status gv_metrics_close(gv_metrics *m);

void gv_metrics_begin(gv_metrics *m);
void gv_metrics_i64(gv_metrics *m, const char *key, int64_t v);
void gv_metrics_f32(gv_metrics *m, const char *key, float v);
void gv_metrics_f64(gv_metrics *m, const char *key, double v);
void gv_metrics_str(gv_metrics *m, const char *key, const char *v);
void gv_metrics_bool(gv_metrics *m, const char *key, int v);
void gv_metrics_null(gv_metrics *m, const char *key);
/* A float array as a JSON array (per-step values such as psi). */
void gv_metrics_f32s(gv_metrics *m, const char *key, const float *v, int64_t n);
void gv_metrics_object(gv_metrics *m, const char *key);
void gv_metrics_end_object(gv_metrics *m);
/* Close the record and write it as one line, then fflush (and fsync when fsync_each). Reports any
   misuse or I/O error naming the file. */
gv_status gv_metrics_end(gv_metrics *m);

/* ---- progress bar ---------------------------------------------------------------------------- */

/* Seconds on some monotonic clock. */
typedef double (*gv_clock_fn)(void *user);

typedef enum gv_progress_mode {
    GV_PROGRESS_AUTO = 0, /* redrawn bar when isatty(out), else plain lines */
    GV_PROGRESS_PLAIN,
    GV_PROGRESS_TTY
} gv_progress_mode;

/* Every field's zero value means its default, so `(gv_progress_options){0}` is the usual call. */
typedef struct gv_progress_options {
    FILE *out;              /* NULL: stderr                                                    */
    gv_progress_mode mode;
    int columns;            /* TTY line width limit; 0: the terminal's width when it tells     */
    int bar_width;          /* 0: 20                                                           */
    double redraw_seconds;  /* TTY: minimum time between redraws; 0: 0.1 (at most 10/s)       */
    int64_t every_items;    /* plain: a line every N items (0: off)                            */
    double every_seconds;   /* plain: a line every T seconds (0: off); both 0: every 30 s      */
    const char *unit;       /* NULL: "it"                                                      */
    gv_clock_fn clock;      /* NULL: CLOCK_MONOTONIC                                           */
    void *clock_user;
} gv_progress_options;

typedef struct gv_progress {
    gv_progress_options o;
    char label[64];
    int64_t total;           /* <= 0: unknown (no bar, no ETA) */
    int64_t done;
    double t_start, t_last_draw;
    int64_t last_line_done;  /* plain mode */
    double last_line_t;
    int drawn_len;           /* TTY: length of the line on screen */
    int tty;
    int drawn;
    char extra[256];
} gv_progress;

/* Start a bar for `total` items; `label` (may be NULL or "") prefixes every line; `opt` may be
   NULL (all defaults). Draws nothing yet. */
void gv_progress_begin(gv_progress *p, const char *label, int64_t total,
                       const gv_progress_options *opt);
/* `done` items finished so far; `extra_fmt` (printf, may be NULL) is caller text appended to the
   line ("reward 0.41 kl 0.002"). Redraws (TTY) or prints a line (plain) when due. */
void gv_progress_update(gv_progress *p, int64_t done, const char *extra_fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* Erase the TTY line so other output can be printed; the next update redraws. No-op when plain. */
void gv_progress_clear(gv_progress *p);
/* Final line with the total time: "100/100 it 1.8 it/s done in 0:55 reward 0.41" + newline. */
void gv_progress_finish(gv_progress *p);

/* "0:35", "12:05", "1:02:05" (negative -> "0:00"). Returns buf. */
char *gv_format_duration(double seconds, char *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif
