/* The bridge's JSON reader (json.h): recursive descent, depth-limited. */
#include "json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BJ_MAX_DEPTH 32

typedef struct parser {
    const char *p;
    char *err;
    size_t err_len;
    int failed;
} parser;

static void *fail(parser *ps, const char *why) {
    if (!ps->failed) snprintf(ps->err, ps->err_len, "%s", why);
    ps->failed = 1;
    return NULL;
}

static void skip_ws(parser *ps) {
    while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r') ps->p++;
}

static bj_node *node(parser *ps, bj_type t) {
    bj_node *n = calloc(1, sizeof *n);
    if (!n) return fail(ps, "out of memory");
    n->type = t;
    return n;
}

static int push(parser *ps, bj_node *n, bj_node *item, char *key) {
    bj_node **items = realloc(n->items, (size_t)(n->n + 1) * sizeof *items);
    if (!items) return fail(ps, "out of memory"), 0;
    n->items = items;
    if (n->type == BJ_OBJECT) {
        char **keys = realloc(n->keys, (size_t)(n->n + 1) * sizeof *keys);
        if (!keys) return fail(ps, "out of memory"), 0;
        n->keys = keys;
        n->keys[n->n] = key;
    }
    n->items[n->n++] = item;
    return 1;
}

static void put_utf8(char **o, unsigned c) {
    if (c < 0x80) *(*o)++ = (char)c;
    else if (c < 0x800) *(*o)++ = (char)(0xC0 | c >> 6), *(*o)++ = (char)(0x80 | (c & 0x3F));
    else if (c < 0x10000) {
        *(*o)++ = (char)(0xE0 | c >> 12);
        *(*o)++ = (char)(0x80 | ((c >> 6) & 0x3F));
        *(*o)++ = (char)(0x80 | (c & 0x3F));
    } else {
        *(*o)++ = (char)(0xF0 | c >> 18);
        *(*o)++ = (char)(0x80 | ((c >> 12) & 0x3F));
        *(*o)++ = (char)(0x80 | ((c >> 6) & 0x3F));
        *(*o)++ = (char)(0x80 | (c & 0x3F));
    }
}

/* The 4 hex digits at p (all before end) into *v; 0 when fewer than 4 remain or one is not hex. */
static int hex4(const char *p, const char *end, unsigned *v) {
    if (end - p < 4) return 0;
    *v = 0;
    for (int i = 0; i < 4; ++i) {
        const char h = p[i];
        const int d = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10
                      : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
        if (d < 0) return 0;
        *v = *v * 16 + (unsigned)d;
    }
    return 1;
}

/* A string. The scan finds the closing quote first; decoding never reads past it, and every
   escape decodes to no more bytes than it spans (\uXXXX: 6 -> <= 3, a surrogate pair: 12 -> 4),
   so the output fits in the scanned length. \u escapes: exactly 4 hex digits; a high + low
   surrogate pair is one code point (Python's ensure_ascii output); a lone surrogate becomes
   U+FFFD (still valid UTF-8); \u0000 is refused (it would cut the C string short). */
static char *parse_string(parser *ps) {
    if (*ps->p != '"') return fail(ps, "expected a string");
    const char *s = ++ps->p;
    size_t len = 0;
    while (s[len] && s[len] != '"') len += s[len] == '\\' && s[len + 1] ? 2 : 1;
    if (!s[len]) return fail(ps, "unterminated string");
    const char *const end = s + len; /* the closing quote */
    char *out = malloc(len + 1), *o = out;
    if (!out) return fail(ps, "out of memory");
    const char *p = s;
    while (p < end) {
        char c = *p++;
        if ((unsigned char)c < 0x20) return free(out), fail(ps, "control character in a string");
        if (c != '\\') {
            *o++ = c;
            continue;
        }
        c = *p++; /* the scan counted a backslash with its next character: p <= end */
        switch (c) {
        case '"': case '\\': case '/': *o++ = c; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            unsigned v, lo;
            if (!hex4(p, end, &v)) return free(out), fail(ps, "bad \\u escape (needs 4 hex digits)");
            p += 4;
            if (v == 0) return free(out), fail(ps, "\\u0000 in a string");
            if (v >= 0xD800 && v <= 0xDBFF && end - p >= 6 && p[0] == '\\' && p[1] == 'u' &&
                hex4(p + 2, end, &lo) && lo >= 0xDC00 && lo <= 0xDFFF) {
                v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
                p += 6;
            } else if (v >= 0xD800 && v <= 0xDFFF) {
                v = 0xFFFD; /* a lone surrogate has no UTF-8 form */
            }
            put_utf8(&o, v);
            break;
        }
        default: return free(out), fail(ps, "bad escape in a string");
        }
    }
    ps->p = end + 1;
    *o = '\0';
    return out;
}

static bj_node *parse_value(parser *ps, int depth);

static bj_node *parse_container(parser *ps, int depth, int object) {
    bj_node *n = node(ps, object ? BJ_OBJECT : BJ_ARRAY);
    if (!n) return NULL;
    ps->p++;
    skip_ws(ps);
    if (*ps->p == (object ? '}' : ']')) {
        ps->p++;
        return n;
    }
    for (;;) {
        char *key = NULL;
        skip_ws(ps);
        if (object) {
            if (!(key = parse_string(ps))) return bj_free(n), NULL;
            skip_ws(ps);
            if (*ps->p++ != ':') return free(key), bj_free(n), fail(ps, "expected ':'");
        }
        bj_node *item = parse_value(ps, depth + 1);
        if (!item || !push(ps, n, item, key)) return free(key), bj_free(item), bj_free(n), NULL;
        skip_ws(ps);
        if (*ps->p == ',') {
            ps->p++;
            continue;
        }
        if (*ps->p == (object ? '}' : ']')) {
            ps->p++;
            return n;
        }
        return bj_free(n), fail(ps, object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static bj_node *parse_value(parser *ps, int depth) {
    if (depth > BJ_MAX_DEPTH) return fail(ps, "nested too deeply");
    skip_ws(ps);
    const char c = *ps->p;
    if (c == '{' || c == '[') return parse_container(ps, depth, c == '{');
    if (c == '"') {
        char *s = parse_string(ps);
        if (!s) return NULL;
        bj_node *n = node(ps, BJ_STRING);
        if (!n) return free(s), NULL;
        n->string = s;
        return n;
    }
    static const struct { const char *word; bj_type t; double v; } words[] = {
        {"true", BJ_BOOL, 1}, {"false", BJ_BOOL, 0}, {"null", BJ_NULL, 0},
        {"NaN", BJ_NUMBER, NAN}, {"Infinity", BJ_NUMBER, INFINITY},
        {"-Infinity", BJ_NUMBER, -INFINITY}};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; ++i)
        if (strncmp(ps->p, words[i].word, strlen(words[i].word)) == 0) {
            ps->p += strlen(words[i].word);
            bj_node *n = node(ps, words[i].t);
            if (n) n->number = words[i].v;
            return n;
        }
    if (c == '-' || (c >= '0' && c <= '9')) {
        char *end;
        const double v = strtod(ps->p, &end);
        if (end == ps->p) return fail(ps, "bad number");
        ps->p = end;
        bj_node *n = node(ps, BJ_NUMBER);
        if (n) n->number = v;
        return n;
    }
    return fail(ps, c ? "unexpected character" : "unexpected end of line");
}

bj_node *bj_parse(const char *text, char *err, size_t err_len) {
    parser ps = {.p = text, .err = err, .err_len = err_len};
    bj_node *n = parse_value(&ps, 0);
    if (!n) return NULL;
    skip_ws(&ps);
    if (*ps.p) return bj_free(n), fail(&ps, "trailing characters after the value");
    return n;
}

void bj_free(bj_node *n) {
    if (!n) return;
    for (int i = 0; i < n->n; ++i) {
        bj_free(n->items[i]);
        if (n->keys) free(n->keys[i]);
    }
    free(n->items);
    free(n->keys);
    free(n->string);
    free(n);
}

const bj_node *bj_get(const bj_node *obj, const char *key) {
    if (!obj || obj->type != BJ_OBJECT) return NULL;
    for (int i = 0; i < obj->n; ++i)
        if (strcmp(obj->keys[i], key) == 0) return obj->items[i];
    return NULL;
}
