/* metrics.jsonl: one JSON object per line, built field by field (see log.h for the number and
 * non-finite rules), plus the JSON string escaper.
 *
 * A record is assembled in memory and written with one fwrite, so a crash never leaves half a
 * record followed by a newer one on the same line. This file does not decide which metrics exist
 * (engine/train does) and has no reader. */
#include "grove/log.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- JSON string escaping ------------------------------------------------------------------- */

static void emit(char *dst, size_t cap, size_t *n, const char *s, size_t k) {
    for (size_t i = 0; i < k; ++i, ++*n)
        if (*n + 1 < cap) dst[*n] = s[i];
}

/* Length of the valid UTF-8 sequence starting at s (2..4), or 0 when it is not one. */
static int utf8_seq_len(const unsigned char *s) {
    unsigned char b = s[0];
    int len;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (b >= 0xC2 && b <= 0xDF)
        len = 2;
    else if (b >= 0xE0 && b <= 0xEF) {
        len = 3;
        if (b == 0xE0) lo = 0xA0;
        if (b == 0xED) hi = 0x9F; /* no UTF-16 surrogates */
    } else if (b >= 0xF0 && b <= 0xF4) {
        len = 4;
        if (b == 0xF0) lo = 0x90;
        if (b == 0xF4) hi = 0x8F;
    } else
        return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    for (int i = 2; i < len; ++i)
        if (s[i] < 0x80 || s[i] > 0xBF) return 0;
    return len;
}

size_t gv_json_escape(char *dst, size_t cap, const char *src) {
    size_t n = 0;
    const unsigned char *s = (const unsigned char *)(src ? src : "");
    while (*s) {
        unsigned char c = *s;
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            emit(dst, cap, &n, esc, 2);
        } else if (c < 0x20 || c == 0x7f) {
            const char *named = c == '\n' ? "\\n" : c == '\t' ? "\\t" : c == '\r' ? "\\r"
                              : c == '\b' ? "\\b" : c == '\f' ? "\\f" : NULL;
            if (named)
                emit(dst, cap, &n, named, 2);
            else {
                snprintf(esc, sizeof esc, "\\u%04x", c);
                emit(dst, cap, &n, esc, 6);
            }
        } else if (c < 0x80) {
            emit(dst, cap, &n, (const char *)s, 1);
        } else {
            int len = utf8_seq_len(s);
            if (len) {
                emit(dst, cap, &n, (const char *)s, (size_t)len);
                s += len;
                continue;
            }
            emit(dst, cap, &n, "\\ufffd", 6);
        }
        ++s;
    }
    if (cap) dst[n < cap ? n : cap - 1] = '\0';
    return n;
}

/* ---- numbers -------------------------------------------------------------------------------- */

/* The shortest %.<p>g, p in [min_p, max_p], that reads back as v (as a float when is_float). */
static void format_shortest(char *buf, size_t len, double v, int min_p, int max_p, int is_float) {
    for (int p = min_p; p <= max_p; ++p) {
        snprintf(buf, len, "%.*g", p, v);
        if (is_float ? strtof(buf, NULL) == (float)v : strtod(buf, NULL) == v) return;
    }
}

/* ---- the record buffer ---------------------------------------------------------------------- */

static void misuse(gv_metrics *m, gv_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static void misuse(gv_metrics *m, gv_status s, const char *fmt, ...) {
    if (m->error != GV_OK) return;
    m->error = s;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->error_msg, sizeof m->error_msg, fmt, ap);
    va_end(ap);
}

static int reserve(gv_metrics *m, size_t extra) {
    if (m->len + extra + 1 <= m->cap) return 1;
    size_t cap = m->cap ? m->cap : 512;
    while (cap < m->len + extra + 1) cap *= 2;
    char *b = realloc(m->buf, cap);
    if (!b) {
        misuse(m, GV_ERR_OOM, "out of memory building a record of %zu bytes", cap);
        return 0;
    }
    m->buf = b;
    m->cap = cap;
    return 1;
}

static void append(gv_metrics *m, const char *s, size_t k) {
    if (m->error != GV_OK || !reserve(m, k)) return;
    memcpy(m->buf + m->len, s, k);
    m->len += k;
    m->buf[m->len] = '\0';
}

static void append_str(gv_metrics *m, const char *s) { append(m, s, strlen(s)); }

/* A quoted, escaped JSON string. */
static void append_quoted(gv_metrics *m, const char *s) {
    size_t k = gv_json_escape(NULL, 0, s);
    append(m, "\"", 1);
    if (m->error != GV_OK || !reserve(m, k)) return;
    gv_json_escape(m->buf + m->len, k + 1, s);
    m->len += k;
    append(m, "\"", 1);
}

/* Separator and "key": for the next field of the innermost open object. */
static int field(gv_metrics *m, const char *key) {
    if (m->error != GV_OK) return 0;
    if (m->depth < 1) {
        misuse(m, GV_ERR_INTERNAL, "field '%s' outside a record (missing gv_metrics_begin)",
               key ? key : "(null)");
        return 0;
    }
    if (m->has_field[m->depth]) append(m, ",", 1);
    m->has_field[m->depth] = 1;
    append_quoted(m, key ? key : "");
    append(m, ":", 1);
    return m->error == GV_OK;
}

static void append_number(gv_metrics *m, double v, int is_float) {
    char buf[40];
    if (isnan(v) || isinf(v)) {
        if (!m->nonfinite_as_string)
            append_str(m, "null");
        else
            append_str(m, isnan(v) ? "\"NaN\"" : v > 0 ? "\"Infinity\"" : "\"-Infinity\"");
        return;
    }
    if (is_float)
        format_shortest(buf, sizeof buf, v, 6, 9, 1);
    else
        format_shortest(buf, sizeof buf, v, 15, 17, 0);
    append_str(m, buf);
}

/* ---- public API ----------------------------------------------------------------------------- */

static void metrics_reset(gv_metrics *m) {
    m->len = 0;
    if (m->buf) m->buf[0] = '\0';
    m->depth = 0;
    m->error = GV_OK;
    m->error_msg[0] = '\0';
}

void gv_metrics_open_stream(gv_metrics *m, FILE *f, const char *name) {
    memset(m, 0, sizeof *m);
    m->f = f;
    m->owns_file = 0;
    size_t n = strlen(name ? name : "") + 1;
    m->path = malloc(n);
    if (m->path) memcpy(m->path, name ? name : "", n);
}

gv_status gv_metrics_open(gv_metrics *m, const char *path, int append_mode) {
    memset(m, 0, sizeof *m);
    FILE *f = fopen(path, append_mode ? "a+" : "w");
    if (!f)
        return GV_ERROR(GV_ERR_IO, "%s: cannot open metrics log (%s)", path, strerror(errno));
    /* A record cut short by a crash must not swallow the next one: end its line. */
    int unterminated = append_mode && fseek(f, -1, SEEK_END) == 0 && fgetc(f) != '\n';
    if (fseek(f, 0, SEEK_END) != 0 || (unterminated && (fputc('\n', f) == EOF || fflush(f) != 0))) {
        int err = errno;
        fclose(f);
        return GV_ERROR(GV_ERR_IO, "%s: cannot append to metrics log (%s)", path, strerror(err));
    }
    gv_metrics_open_stream(m, f, path);
    m->owns_file = 1;
    if (!m->path) {
        fclose(f);
        m->f = NULL;
        return GV_ERROR(GV_ERR_OOM, "%s: out of memory", path);
    }
    return GV_OK;
}

gv_status gv_metrics_close(gv_metrics *m) {
    gv_status s = GV_OK;
    if (m->f && m->owns_file && fclose(m->f) != 0)
        s = GV_ERROR(GV_ERR_IO, "%s: cannot close metrics log (%s)", m->path ? m->path : "",
                     strerror(errno));
    free(m->buf);
    free(m->path);
    memset(m, 0, sizeof *m);
    return s;
}

void gv_metrics_begin(gv_metrics *m) {
    metrics_reset(m);
    m->depth = 1;
    m->has_field[1] = 0;
    append(m, "{", 1);
}

void gv_metrics_i64(gv_metrics *m, const char *key, int64_t v) {
    if (!field(m, key)) return;
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", (long long)v);
    append_str(m, buf);
}

void gv_metrics_f32(gv_metrics *m, const char *key, float v) {
    if (field(m, key)) append_number(m, v, 1);
}

void gv_metrics_f64(gv_metrics *m, const char *key, double v) {
    if (field(m, key)) append_number(m, v, 0);
}

void gv_metrics_str(gv_metrics *m, const char *key, const char *v) {
    if (!field(m, key)) return;
    if (v)
        append_quoted(m, v);
    else
        append_str(m, "null");
}

void gv_metrics_bool(gv_metrics *m, const char *key, int v) {
    if (field(m, key)) append_str(m, v ? "true" : "false");
}

void gv_metrics_null(gv_metrics *m, const char *key) {
    if (field(m, key)) append_str(m, "null");
}

void gv_metrics_f32s(gv_metrics *m, const char *key, const float *v, int64_t n) {
    if (!field(m, key)) return;
    append(m, "[", 1);
    for (int64_t i = 0; i < n; ++i) {
        if (i) append(m, ",", 1);
        append_number(m, v[i], 1);
    }
    append(m, "]", 1);
}

void gv_metrics_object(gv_metrics *m, const char *key) {
    if (!field(m, key)) return;
    if (m->depth >= GV_METRICS_MAX_DEPTH) {
        misuse(m, GV_ERR_INTERNAL, "object '%s' nested deeper than %d", key ? key : "",
               GV_METRICS_MAX_DEPTH);
        return;
    }
    m->depth++;
    m->has_field[m->depth] = 0;
    append(m, "{", 1);
}

void gv_metrics_end_object(gv_metrics *m) {
    if (m->error != GV_OK) return;
    if (m->depth < 2) {
        misuse(m, GV_ERR_INTERNAL, "gv_metrics_end_object without an open object");
        return;
    }
    m->depth--;
    append(m, "}", 1);
}

gv_status gv_metrics_end(gv_metrics *m) {
    const char *path = m->path ? m->path : "metrics";
    if (m->depth == 0)
        misuse(m, GV_ERR_INTERNAL, "gv_metrics_end without gv_metrics_begin");
    else if (m->depth > 1)
        misuse(m, GV_ERR_INTERNAL, "record ended with %d unclosed object(s)", m->depth - 1);
    append(m, "}\n", 2);
    if (m->error != GV_OK) {
        gv_status s = GV_ERROR(m->error, "%s: metrics record not written: %s", path, m->error_msg);
        metrics_reset(m);
        return s;
    }
    gv_status s = GV_OK;
    if (!m->f || fwrite(m->buf, 1, m->len, m->f) != m->len || fflush(m->f) != 0)
        s = GV_ERROR(GV_ERR_IO, "%s: cannot write metrics record (%s)", path, strerror(errno));
    else if (m->fsync_each && fsync(fileno(m->f)) != 0)
        s = GV_ERROR(GV_ERR_IO, "%s: fsync failed (%s)", path, strerror(errno));
    metrics_reset(m);
    return s;
}
