/* The subprocess bridge's JSON reader (rewards/plugins/bridge/json.c, compiled into this test: the
 * bridge is a plugin, not part of libgrove). Strings: simple escapes, \uXXXX to UTF-8 (expected
 * bytes written out by hand from the code points), surrogate pairs as one 4-byte code point (what
 * Python's json.dumps writes with ensure_ascii), a lone surrogate as U+FFFD; malformed escapes
 * (short, non-hex, a closing quote or the end of the text inside \uXXXX, \u0000) are refused with a
 * reason instead of reading or writing past the string — every input is a heap copy of its exact
 * size, so a build with -fsanitize=address catches any overrun. Also numbers / NaN, nesting depth
 * and trailing garbage. Deliberately not here: the child protocol (test_plugins.c). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../../rewards/plugins/bridge/json.c"

/* A heap copy of exactly strlen + 1 bytes (ASan sees any read past it). */
static char *copy_of(const char *s) {
    const size_t n = strlen(s) + 1;
    char *c = malloc(n);
    cr_assert_not_null(c);
    return memcpy(c, s, n);
}

/* Parse a heap copy of `text` (exact size) into a tree; NULL with the reason in err. */
static bj_node *parse_copy(const char *text, char *err, size_t err_len) {
    char *copy = copy_of(text);
    err[0] = '\0';
    bj_node *n = bj_parse(copy, err, err_len);
    free(copy);
    return n;
}

/* The decoded value of {"k": <literal>} (malloc'd), or NULL with err set. */
static char *decode(const char *literal, char *err, size_t err_len) {
    char text[8192];
    snprintf(text, sizeof text, "{\"k\": %s}", literal);
    bj_node *n = parse_copy(text, err, err_len);
    if (!n) return NULL;
    const bj_node *k = bj_get(n, "k");
    cr_assert(k && k->type == BJ_STRING, "%s", literal);
    char *s = copy_of(k->string);
    bj_free(n);
    return s;
}

static void expect_string(const char *literal, const char *bytes) {
    char err[128];
    char *s = decode(literal, err, sizeof err);
    cr_assert_not_null(s, "%s: %s", literal, err);
    cr_assert_str_eq(s, bytes, "%s", literal);
    free(s);
}

static void expect_refused(const char *literal, const char *reason) {
    char err[128];
    char *s = decode(literal, err, sizeof err);
    cr_assert_null(s, "%s was accepted as \"%s\"", literal, s ? s : "");
    cr_assert(strstr(err, reason), "%s: %s (expected '%s')", literal, err, reason);
}

Test(bridge_json, escapes_decode_to_utf8) {
    expect_string("\"plain\"", "plain");
    expect_string("\"\"", "");
    expect_string("\"q\\\" b\\\\ s\\/ \\b\\f\\n\\r\\t\"", "q\" b\\ s/ \b\f\n\r\t");
    expect_string("\"\\u0041\\u007a\"", "Az");                          /* 1 byte each    */
    expect_string("\"a\\u00e9b\"", "a\xC3\xA9" "b");                    /* U+00E9: 2 bytes */
    expect_string("\"\\u20AC\"", "\xE2\x82\xAC");                       /* U+20AC: 3 bytes */
    expect_string("\"\\ud83d\\ude00!\"", "\xF0\x9F\x98\x80!");          /* U+1F600: 4 bytes */
    expect_string("\"\\uDBFF\\uDFFF\"", "\xF4\x8F\xBF\xBF");            /* U+10FFFF        */
    expect_string("\"\\ud800x\"", "\xEF\xBF\xBDx");                     /* lone high -> FFFD */
    expect_string("\"\\udc00\"", "\xEF\xBF\xBD");                       /* lone low -> FFFD  */
    expect_string("\"\\ud800\\u0041\"", "\xEF\xBF\xBD" "A");            /* high + non-low    */
    expect_string("\"caf\xC3\xA9\"", "caf\xC3\xA9");                    /* raw UTF-8 copied  */
    /* a long run of 3-byte escapes (6 characters -> 3 bytes each) */
    char lit[6 * 1000 + 3], want[3 * 1000 + 1];
    lit[0] = '"';
    for (int i = 0; i < 1000; ++i) {
        memcpy(lit + 1 + 6 * i, "\\u20ac", 6);
        memcpy(want + 3 * i, "\xE2\x82\xAC", 3);
    }
    lit[6001] = '"', lit[6002] = '\0', want[3000] = '\0';
    expect_string(lit, want);
}

Test(bridge_json, malformed_escapes_are_refused) {
    /* the reviewer's overflow: a closing quote inside \uXXXX, then more text up to a later quote */
    char lit[600];
    snprintf(lit, sizeof lit, "\"\\u000\" %s\"", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
             "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    char err[128];
    cr_assert_null(parse_copy(lit, err, sizeof err), "%s", lit);
    cr_assert_null(decode("\"\\u000\"", err, sizeof err));
    cr_assert(strstr(err, "bad \\u escape"), "%s", err);
    expect_refused("\"\\u0\"", "bad \\u escape");
    expect_refused("\"\\u\"", "bad \\u escape");
    expect_refused("\"\\u00g0\"", "bad \\u escape");
    expect_refused("\"\\u 041\"", "bad \\u escape");
    expect_refused("\"\\u0000\"", "\\u0000");
    expect_refused("\"\\x41\"", "bad escape");
    expect_refused("\"tab\there\"", "control character");
    /* the text ends inside an escape or a string: bj_parse sees the NUL, never reads past it */
    const char *cut[] = {"\"\\u00", "\"\\u", "\"\\", "\"abc", "{\"k\": \"\\ud83d\\ude0"};
    for (size_t i = 0; i < sizeof cut / sizeof cut[0]; ++i) {
        cr_assert_null(parse_copy(cut[i], err, sizeof err), "%s", cut[i]);
        cr_assert(err[0], "%s: no reason", cut[i]);
    }
    /* a surrogate pair cut by the closing quote: the high half alone, then the rest is refused */
    expect_refused("\"\\ud83d\\ude0\"", "bad \\u escape");
}

Test(bridge_json, values_and_structure) {
    char err[128];
    bj_node *n = parse_copy(" {\"id\": 7, \"scores\": [0.5, -1e-3, NaN, Infinity, -Infinity, null],"
                            " \"ok\": true, \"name\": \"x\"} \n", err, sizeof err);
    cr_assert_not_null(n, "%s", err);
    cr_assert_eq(bj_get(n, "id")->number, 7.0);
    const bj_node *s = bj_get(n, "scores");
    cr_assert(s && s->type == BJ_ARRAY && s->n == 6);
    cr_assert_eq(s->items[0]->number, 0.5);
    cr_assert_eq(s->items[1]->number, -1e-3);
    cr_assert(isnan(s->items[2]->number));
    cr_assert(isinf(s->items[3]->number) && s->items[3]->number > 0);
    cr_assert(isinf(s->items[4]->number) && s->items[4]->number < 0);
    cr_assert_eq(s->items[5]->type, BJ_NULL);
    cr_assert_eq(bj_get(n, "ok")->type, BJ_BOOL);
    cr_assert_null(bj_get(n, "missing"));
    bj_free(n);
    cr_assert_null(parse_copy("{\"a\": 1} x", err, sizeof err));
    cr_assert(strstr(err, "trailing"), "%s", err);
    cr_assert_null(parse_copy("{\"a\" 1}", err, sizeof err));
    cr_assert(strstr(err, "expected ':'"), "%s", err);
    char deep[200] = "";
    for (int i = 0; i < 40; ++i) strcat(deep, "[");
    cr_assert_null(parse_copy(deep, err, sizeof err));
    cr_assert(strstr(err, "nested too deeply"), "%s", err);
}
