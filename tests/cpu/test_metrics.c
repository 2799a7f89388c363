/* Tests of the metrics.jsonl writer and the JSON escaper (log.h): exact lines, key order, nested
 * objects, escaping of quotes, backslashes, newlines, control characters and bad UTF-8, NaN/Inf as
 * null or strings, shortest round-trip numbers, misuse reported by gv_metrics_end, append mode,
 * and a small JSON syntax checker run over every line written. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "grove/log.h"

/* ---- a minimal JSON syntax checker (RFC 8259 grammar, no semantics) ------------------------- */

static const char *js_value(const char *s, int depth);

static const char *js_ws(const char *s) {
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') ++s;
    return s;
}

static const char *js_string(const char *s) {
    if (*s++ != '"') return NULL;
    while (*s != '"') {
        unsigned char c = (unsigned char)*s;
        if (c == '\0' || c < 0x20) return NULL;
        if (c == '\\') {
            ++s;
            if (*s == 'u') {
                for (int i = 1; i <= 4; ++i)
                    if (!strchr("0123456789abcdefABCDEF", s[i]) || !s[i]) return NULL;
                s += 5;
                continue;
            }
            if (!*s || !strchr("\"\\/bfnrt", *s)) return NULL;
        }
        ++s;
    }
    return s + 1;
}

static const char *js_number(const char *s) {
    if (*s == '-') ++s;
    if (*s == '0')
        ++s;
    else if (*s >= '1' && *s <= '9')
        while (*s >= '0' && *s <= '9') ++s;
    else
        return NULL;
    if (*s == '.') {
        ++s;
        if (!(*s >= '0' && *s <= '9')) return NULL;
        while (*s >= '0' && *s <= '9') ++s;
    }
    if (*s == 'e' || *s == 'E') {
        ++s;
        if (*s == '+' || *s == '-') ++s;
        if (!(*s >= '0' && *s <= '9')) return NULL;
        while (*s >= '0' && *s <= '9') ++s;
    }
    return s;
}

static const char *js_container(const char *s, int depth, char close, int keyed) {
    s = js_ws(s + 1);
    if (*s == close) return s + 1;
    for (;;) {
        if (keyed) {
            if (!(s = js_string(js_ws(s)))) return NULL;
            s = js_ws(s);
            if (*s++ != ':') return NULL;
        }
        if (!(s = js_value(s, depth + 1))) return NULL;
        s = js_ws(s);
        if (*s == close) return s + 1;
        if (*s++ != ',') return NULL;
    }
}

static const char *js_value(const char *s, int depth) {
    if (depth > 32) return NULL;
    s = js_ws(s);
    if (*s == '{') return js_container(s, depth, '}', 1);
    if (*s == '[') return js_container(s, depth, ']', 0);
    if (*s == '"') return js_string(s);
    if (!strncmp(s, "true", 4)) return s + 4;
    if (!strncmp(s, "false", 5)) return s + 5;
    if (!strncmp(s, "null", 4)) return s + 4;
    return js_number(s);
}

/* 1 when `line` is exactly one JSON object followed by "\n". */
static int is_json_object_line(const char *line) {
    if (js_ws(line)[0] != '{') return 0;
    const char *end = js_value(line, 0);
    return end && strcmp(end, "\n") == 0;
}

Test(json_checker, rejects_what_it_should) {
    cr_assert(is_json_object_line("{\"a\":1,\"b\":[1,2.5e-3,null],\"c\":{\"d\":\"x\\n\"}}\n"));
    cr_assert(!is_json_object_line("{\"a\":NaN}\n"));
    cr_assert(!is_json_object_line("{\"a\":1,}\n"));
    cr_assert(!is_json_object_line("{\"a\":\"line\nbreak\"}\n"));
    cr_assert(!is_json_object_line("{\"a\":1}{\"b\":2}\n"));
    cr_assert(!is_json_object_line("{\"a\":01}\n"));
    cr_assert(!is_json_object_line("{\"a\":\"\\x\"}\n"));
}

/* ---- helpers -------------------------------------------------------------------------------- */

static char g_path[64];

static void make_file(void) {
    snprintf(g_path, sizeof g_path, "/tmp/grove-metrics-XXXXXX");
    int fd = mkstemp(g_path);
    cr_assert_geq(fd, 0);
    close(fd);
}
static void remove_file(void) { unlink(g_path); }

TestSuite(metrics, .init = make_file, .fini = remove_file);

/* Whole file into a static buffer. */
static const char *slurp(void) {
    static char buf[1 << 16];
    FILE *f = fopen(g_path, "r");
    cr_assert_not_null(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* Every line of the file is a JSON object. */
static void expect_all_lines_json(void) {
    char line[8192];
    FILE *f = fopen(g_path, "r");
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        cr_assert(is_json_object_line(line), "line %d is not a JSON object: %s", n + 1, line);
        n++;
    }
    fclose(f);
    cr_assert_gt(n, 0);
}

/* ---- tests ---------------------------------------------------------------------------------- */

Test(metrics, flat_and_nested_records_in_insertion_order) {
    gv_metrics m;
    cr_assert_eq(gv_metrics_open(&m, g_path, 0), GV_OK);
    gv_metrics_begin(&m);
    gv_metrics_i64(&m, "iteration", 12);
    gv_metrics_object(&m, "reward");
    gv_metrics_object(&m, "classifier");
    gv_metrics_f32(&m, "raw_mean", 0.41f);
    gv_metrics_f32(&m, "raw_std", 0.1f);
    gv_metrics_end_object(&m);
    gv_metrics_object(&m, "aesthetic");
    gv_metrics_end_object(&m);
    gv_metrics_end_object(&m);
    gv_metrics_f64(&m, "wall_time", 0.1 + 0.2);
    gv_metrics_f32(&m, "kl", 2e-3f);
    gv_metrics_i64(&m, "nfe", -9000000000LL);
    gv_metrics_bool(&m, "skipped", 0);
    gv_metrics_null(&m, "eval");
    gv_metrics_f32s(&m, "psi", (const float[]){1.0f, 0.5f, 0.25f}, 3);
    gv_metrics_f32s(&m, "none", NULL, 0);
    cr_assert_eq(gv_metrics_end(&m), GV_OK, "%s", gv_last_error());
    gv_metrics_begin(&m);
    gv_metrics_i64(&m, "iteration", 13);
    cr_assert_eq(gv_metrics_end(&m), GV_OK);
    cr_assert_eq(gv_metrics_close(&m), GV_OK);
    cr_assert_str_eq(slurp(),
                     "{\"iteration\":12,\"reward\":{\"classifier\":{\"raw_mean\":0.41,"
                     "\"raw_std\":0.1},\"aesthetic\":{}},\"wall_time\":0.30000000000000004,"
                     "\"kl\":0.002,\"nfe\":-9000000000,\"skipped\":false,\"eval\":null,"
                     "\"psi\":[1,0.5,0.25],\"none\":[]}\n"
                     "{\"iteration\":13}\n");
    expect_all_lines_json();
}

Test(metrics, strings_are_escaped) {
    gv_metrics m;
    cr_assert_eq(gv_metrics_open(&m, g_path, 0), GV_OK);
    gv_metrics_begin(&m);
    gv_metrics_str(&m, "prompt", "a \"seven\"\\ on\ntwo lines\tand\x01\x1f\x7f end");
    gv_metrics_str(&m, "key \"q\"", "ok");
    gv_metrics_str(&m, "utf8", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8c\xb3");
    gv_metrics_str(&m, "bad", "x\xff\xc3(y\xed\xa0\x80");
    gv_metrics_str(&m, "null", NULL);
    cr_assert_eq(gv_metrics_end(&m), GV_OK);
    cr_assert_eq(gv_metrics_close(&m), GV_OK);
    cr_assert_str_eq(slurp(),
                     "{\"prompt\":\"a \\\"seven\\\"\\\\ on\\ntwo lines\\tand\\u0001\\u001f\\u007f "
                     "end\",\"key \\\"q\\\"\":\"ok\",\"utf8\":\"caf\xc3\xa9 \xe2\x82\xac "
                     "\xf0\x9f\x8c\xb3\",\"bad\":\"x\\ufffd\\ufffd(y\\ufffd\\ufffd\\ufffd\","
                     "\"null\":null}\n");
    expect_all_lines_json();
}

Test(metrics, json_escape_is_bounded_like_snprintf) {
    char small[6];
    size_t n = gv_json_escape(small, sizeof small, "ab\"cd\n");
    cr_assert_eq(n, 8, "the full length is returned");
    cr_assert_str_eq(small, "ab\\\"c");
    cr_assert_eq(gv_json_escape(NULL, 0, "\b\f\r"), 6);
    char buf[32];
    gv_json_escape(buf, sizeof buf, "\b\f\r");
    cr_assert_str_eq(buf, "\\b\\f\\r");
}

Test(metrics, nonfinite_values_are_null_or_strings) {
    gv_metrics m;
    cr_assert_eq(gv_metrics_open(&m, g_path, 0), GV_OK);
    gv_metrics_begin(&m);
    gv_metrics_f64(&m, "nan", NAN);
    gv_metrics_f32(&m, "inf", INFINITY);
    gv_metrics_f64(&m, "ninf", -INFINITY);
    gv_metrics_f32s(&m, "arr", (const float[]){1.0f, NAN}, 2);
    cr_assert_eq(gv_metrics_end(&m), GV_OK);
    m.nonfinite_as_string = 1;
    gv_metrics_begin(&m);
    gv_metrics_f64(&m, "nan", -NAN);
    gv_metrics_f32(&m, "inf", INFINITY);
    gv_metrics_f64(&m, "ninf", -INFINITY);
    cr_assert_eq(gv_metrics_end(&m), GV_OK);
    cr_assert_eq(gv_metrics_close(&m), GV_OK);
    cr_assert_str_eq(slurp(), "{\"nan\":null,\"inf\":null,\"ninf\":null,\"arr\":[1,null]}\n"
                              "{\"nan\":\"NaN\",\"inf\":\"Infinity\",\"ninf\":\"-Infinity\"}\n");
    expect_all_lines_json();
}

Test(metrics, numbers_round_trip_with_the_fewest_digits) {
    const float fs[] = {0.1f, 1.0f / 3.0f, 16777217.0f, 1e-45f, 3.4028235e38f, -0.0f,
                        1.17549435e-38f, 123456.789f, 7.0f};
    const double ds[] = {0.1, 1.0 / 3.0, 5e-324, 1.7976931348623157e308, 2.0, -1e100, 0.3};
    gv_metrics m;
    cr_assert_eq(gv_metrics_open(&m, g_path, 0), GV_OK);
    for (size_t i = 0; i < sizeof fs / sizeof fs[0]; ++i) {
        gv_metrics_begin(&m);
        gv_metrics_f32(&m, "v", fs[i]);
        cr_assert_eq(gv_metrics_end(&m), GV_OK);
    }
    for (size_t i = 0; i < sizeof ds / sizeof ds[0]; ++i) {
        gv_metrics_begin(&m);
        gv_metrics_f64(&m, "v", ds[i]);
        cr_assert_eq(gv_metrics_end(&m), GV_OK);
    }
    cr_assert_eq(gv_metrics_close(&m), GV_OK);
    expect_all_lines_json();
    FILE *f = fopen(g_path, "r");
    char line[256];
    size_t nf = sizeof fs / sizeof fs[0], nd = sizeof ds / sizeof ds[0];
    for (size_t i = 0; i < nf + nd; ++i) {
        cr_assert_not_null(fgets(line, sizeof line, f));
        cr_assert_eq(strncmp(line, "{\"v\":", 5), 0);
        const char *num = line + 5;
        if (i < nf) {
            float back = strtof(num, NULL);
            cr_assert_arr_eq(&back, &fs[i], sizeof back, "float %d does not round-trip: %s",
                             (int)i, line);
        } else {
            double back = strtod(num, NULL);
            cr_assert_arr_eq(&back, &ds[i - nf], sizeof back, "double %d: %s", (int)(i - nf),
                             line);
        }
    }
    fclose(f);
    /* Shortest forms (the first lines): 0.1f is "0.1", 7 is "7", 0.3 (double) is "0.3". */
    const char *all = slurp();
    const char *head = "{\"v\":0.1}\n{\"v\":0.33333334}\n{\"v\":16777216}\n";
    cr_assert(strncmp(all, head, strlen(head)) == 0, "%s", all);
    cr_assert(strstr(all, "{\"v\":-0}\n") && strstr(all, "{\"v\":7}\n") &&
                  strstr(all, "{\"v\":0.3}\n") && strstr(all, "{\"v\":0.3333333333333333}\n"),
              "%s", all);
}

Test(metrics, misuse_is_reported_and_writes_nothing) {
    gv_metrics m;
    cr_assert_eq(gv_metrics_open(&m, g_path, 0), GV_OK);
    gv_metrics_i64(&m, "early", 1);
    gv_metrics_begin(&m); /* begin resets the sticky error of the unstarted record */
    gv_metrics_object(&m, "open");
    gv_metrics_i64(&m, "x", 1);
    cr_assert_eq(gv_metrics_end(&m), GV_ERR_INTERNAL);
    cr_assert(strstr(gv_last_error(), g_path) && strstr(gv_last_error(), "1 unclosed object"),
              "%s", gv_last_error());
    gv_metrics_begin(&m);
    gv_metrics_end_object(&m);
    cr_assert_eq(gv_metrics_end(&m), GV_ERR_INTERNAL);
    cr_assert(strstr(gv_last_error(), "without an open object"), "%s", gv_last_error());
    cr_assert_eq(gv_metrics_end(&m), GV_ERR_INTERNAL, "end without begin");
    gv_metrics_begin(&m);
    for (int i = 0; i < GV_METRICS_MAX_DEPTH + 1; ++i) gv_metrics_object(&m, "deep");
    cr_assert_eq(gv_metrics_end(&m), GV_ERR_INTERNAL);
    cr_assert(strstr(gv_last_error(), "nested deeper"), "%s", gv_last_error());
    gv_metrics_begin(&m);
    gv_metrics_i64(&m, "ok", 1);
    cr_assert_eq(gv_metrics_end(&m), GV_OK, "a good record after bad ones");
    cr_assert_eq(gv_metrics_close(&m), GV_OK);
    cr_assert_str_eq(slurp(), "{\"ok\":1}\n");
}

Test(metrics, append_keeps_records_and_ends_a_cut_line) {
    FILE *f = fopen(g_path, "w");
    fputs("{\"iteration\":1}\n{\"iteration\":2,\"rew", f); /* a crash cut record 2 short */
    fclose(f);
    gv_metrics m;
    cr_assert_eq(gv_metrics_open(&m, g_path, 1), GV_OK);
    m.fsync_each = 1;
    gv_metrics_begin(&m);
    gv_metrics_i64(&m, "iteration", 2);
    cr_assert_eq(gv_metrics_end(&m), GV_OK);
    cr_assert_eq(gv_metrics_close(&m), GV_OK);
    cr_assert_str_eq(slurp(), "{\"iteration\":1}\n{\"iteration\":2,\"rew\n{\"iteration\":2}\n");
    cr_assert_eq(gv_metrics_open(&m, g_path, 1), GV_OK);
    cr_assert_eq(gv_metrics_close(&m), GV_OK);
    cr_assert_str_eq(slurp(), "{\"iteration\":1}\n{\"iteration\":2,\"rew\n{\"iteration\":2}\n",
                     "reopening a clean file adds nothing");
    cr_assert_eq(gv_metrics_open(&m, "/nonexistent-dir/metrics.jsonl", 0), GV_ERR_IO);
    cr_assert(strstr(gv_last_error(), "/nonexistent-dir/metrics.jsonl"));
}
