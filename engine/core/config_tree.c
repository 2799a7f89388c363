/* The config document tree (config_tree.h): libfyaml parsing with captured diagnostics, `--set`
 * edits, layer merging, and the two renderings of an opaque map. No schema knowledge here. */
#include "config_tree.h"

#include <errno.h>
#include <libfyaml.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- string builder -------------------------------------------------------------------------- */

void gv_sb_put(gv_sb *sb, const char *s, size_t len) {
    if (sb->oom) return;
    if (sb->n + len + 1 > sb->cap) {
        size_t cap = sb->cap ? sb->cap : 256;
        while (cap < sb->n + len + 1) cap *= 2;
        char *p = realloc(sb->p, cap);
        if (!p) {
            sb->oom = true;
            return;
        }
        sb->p = p;
        sb->cap = cap;
    }
    memcpy(sb->p + sb->n, s, len);
    sb->n += len;
    sb->p[sb->n] = '\0';
}

void gv_sb_puts(gv_sb *sb, const char *s) { gv_sb_put(sb, s, strlen(s)); }

void gv_sb_printf(gv_sb *sb, const char *fmt, ...) {
    /* Measure first, then format into the buffer itself: no length limit. */
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (len < 0) {
        sb->oom = true;
        return;
    }
    char *buf = malloc((size_t)len + 1);
    if (!buf) {
        sb->oom = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(buf, (size_t)len + 1, fmt, ap);
    va_end(ap);
    gv_sb_put(sb, buf, (size_t)len);
    free(buf);
}

char *gv_sb_take(gv_sb *sb) {
    if (sb->oom) {
        free(sb->p);
        *sb = (gv_sb){0};
        return NULL;
    }
    char *p = sb->p ? sb->p : strdup("");
    *sb = (gv_sb){0};
    return p;
}

/* ---- nodes ----------------------------------------------------------------------------------- */

gv_cnode *gv_cnode_new(gv_cnode_kind kind, const gv_csrc *src, int line) {
    gv_cnode *n = calloc(1, sizeof *n);
    if (!n) return NULL;
    n->kind = kind;
    n->src = src;
    n->line = line;
    return n;
}

gv_cnode *gv_cnode_scalar(const char *text, bool plain, const gv_csrc *src, int line) {
    gv_cnode *n = gv_cnode_new(GV_CN_SCALAR, src, line);
    if (!n) return NULL;
    n->text = strdup(text);
    n->plain = plain;
    if (!n->text) {
        free(n);
        return NULL;
    }
    return n;
}

void gv_cnode_free(gv_cnode *n) {
    if (!n) return;
    for (int i = 0; i < n->n; ++i) {
        gv_cnode_free(n->vals[i]);
        if (n->keys) free(n->keys[i]);
    }
    free(n->keys);
    free(n->key_lines);
    free(n->vals);
    free(n->text);
    free(n);
}

gv_cnode *gv_cnode_copy(const gv_cnode *n) {
    gv_cnode *c = n->kind == GV_CN_SCALAR ? gv_cnode_scalar(n->text, n->plain, n->src, n->line)
                                          : gv_cnode_new(n->kind, n->src, n->line);
    for (int i = 0; c && i < n->n; ++i) {
        gv_cnode *v = gv_cnode_copy(n->vals[i]);
        gv_status st = !v                  ? GV_ERR_OOM
                       : n->kind == GV_CN_MAP ? gv_cnode_put(c, n->keys[i], n->key_lines[i], v)
                                           : gv_cnode_push(c, v);
        if (st != GV_OK) {
            gv_cnode_free(c);
            return NULL;
        }
    }
    return c;
}

bool gv_cnode_is_null(const gv_cnode *n) {
    if (!n) return true;
    if (n->kind != GV_CN_SCALAR || !n->plain) return false;
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
    for (size_t i = 0; i < sizeof nulls / sizeof nulls[0]; ++i)
        if (strcmp(n->text, nulls[i]) == 0) return true;
    return false;
}

int gv_cnode_find(const gv_cnode *map, const char *key) {
    if (!map || map->kind != GV_CN_MAP) return -1;
    for (int i = 0; i < map->n; ++i)
        if (strcmp(map->keys[i], key) == 0) return i;
    return -1;
}

static gv_status grow(gv_cnode *c) {
    if (c->n < c->cap) return GV_OK;
    int cap = c->cap ? 2 * c->cap : 8;
    gv_cnode **vals = realloc(c->vals, (size_t)cap * sizeof *vals);
    if (!vals) return GV_ERROR(GV_ERR_OOM, "config: out of memory");
    c->vals = vals;
    if (c->kind == GV_CN_MAP) {
        char **keys = realloc(c->keys, (size_t)cap * sizeof *keys);
        if (!keys) return GV_ERROR(GV_ERR_OOM, "config: out of memory");
        c->keys = keys;
        int *lines = realloc(c->key_lines, (size_t)cap * sizeof *lines);
        if (!lines) return GV_ERROR(GV_ERR_OOM, "config: out of memory");
        c->key_lines = lines;
    }
    c->cap = cap;
    return GV_OK;
}

gv_status gv_cnode_put(gv_cnode *map, const char *key, int key_line, gv_cnode *val) {
    int i = gv_cnode_find(map, key);
    if (i >= 0) {
        gv_cnode_free(map->vals[i]);
        map->vals[i] = val;
        map->key_lines[i] = key_line;
        return GV_OK;
    }
    char *k = strdup(key);
    if (!k || grow(map) != GV_OK) {
        free(k);
        gv_cnode_free(val);
        return GV_ERROR(GV_ERR_OOM, "config: out of memory");
    }
    map->keys[map->n] = k;
    map->key_lines[map->n] = key_line;
    map->vals[map->n++] = val;
    return GV_OK;
}

gv_status gv_cnode_push(gv_cnode *seq, gv_cnode *val) {
    if (grow(seq) != GV_OK) {
        gv_cnode_free(val);
        return GV_ERR_OOM;
    }
    seq->vals[seq->n++] = val;
    return GV_OK;
}

gv_cnode *gv_cnode_take(gv_cnode *map, const char *key) {
    int i = gv_cnode_find(map, key);
    if (i < 0) return NULL;
    gv_cnode *v = map->vals[i];
    free(map->keys[i]);
    memmove(map->keys + i, map->keys + i + 1, (size_t)(map->n - i - 1) * sizeof *map->keys);
    memmove(map->key_lines + i, map->key_lines + i + 1,
            (size_t)(map->n - i - 1) * sizeof *map->key_lines);
    memmove(map->vals + i, map->vals + i + 1, (size_t)(map->n - i - 1) * sizeof *map->vals);
    map->n--;
    return v;
}

gv_cnode *gv_cnode_at(gv_cnode *root, const char *dotted) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", dotted);
    gv_cnode *cur = root;
    for (char *save = NULL, *seg = strtok_r(buf, ".", &save); seg;
         seg = strtok_r(NULL, ".", &save)) {
        int i = gv_cnode_find(cur, seg);
        if (i < 0) return NULL;
        cur = cur->vals[i];
    }
    return cur;
}

/* ---- libfyaml -> tree ------------------------------------------------------------------------ */

static int token_line(struct fy_node *fn) {
    struct fy_token *t = fn ? fy_node_get_scalar_token(fn) : NULL;
    const struct fy_mark *m = t ? fy_token_start_mark(t) : NULL;
    return m ? m->line + 1 : 0;
}

static gv_status convert(struct fy_node *fn, const char *label, const gv_csrc *src, int line_hint,
                         gv_cnode **out) {
    *out = NULL;
    if (!fn) return (*out = gv_cnode_scalar("", true, src, line_hint)) ? GV_OK : GV_ERR_OOM;
    switch (fy_node_get_type(fn)) {
    case FYNT_SCALAR: {
        size_t len = 0;
        const char *s = fy_node_get_scalar(fn, &len);
        char *text = strndup(s ? s : "", len);
        if (!text) return GV_ERROR(GV_ERR_OOM, "config: out of memory");
        int line = token_line(fn);
        *out = gv_cnode_scalar(text, fy_node_get_style(fn) == FYNS_PLAIN, src,
                               line ? line : line_hint);
        free(text);
        return *out ? GV_OK : GV_ERROR(GV_ERR_OOM, "config: out of memory");
    }
    case FYNT_SEQUENCE: {
        gv_cnode *seq = gv_cnode_new(GV_CN_SEQ, src, line_hint);
        if (!seq) return GV_ERROR(GV_ERR_OOM, "config: out of memory");
        void *it = NULL;
        for (struct fy_node *item; (item = fy_node_sequence_iterate(fn, &it));) {
            gv_cnode *c;
            gv_status st = convert(item, label, src, line_hint, &c);
            if (st == GV_OK) st = gv_cnode_push(seq, c);
            if (st != GV_OK) {
                gv_cnode_free(seq);
                return st;
            }
            if (c->kind == GV_CN_MAP && c->n > 0) c->line = c->key_lines[0];
            else if (c->kind == GV_CN_SCALAR) line_hint = c->line;
        }
        *out = seq;
        return GV_OK;
    }
    case FYNT_MAPPING: {
        gv_cnode *map = gv_cnode_new(GV_CN_MAP, src, line_hint);
        if (!map) return GV_ERROR(GV_ERR_OOM, "config: out of memory");
        void *it = NULL;
        for (struct fy_node_pair *p; (p = fy_node_mapping_iterate(fn, &it));) {
            struct fy_node *k = fy_node_pair_key(p);
            int kline = token_line(k);
            if (!kline) kline = line_hint;
            if (!k || fy_node_get_type(k) != FYNT_SCALAR) {
                gv_cnode_free(map);
                return GV_ERROR(GV_ERR_CONFIG, "%s:%d: keys must be scalars", label, kline);
            }
            size_t len = 0;
            const char *ks = fy_node_get_scalar(k, &len);
            char *key = strndup(ks ? ks : "", len);
            gv_cnode *v = NULL;
            gv_status st = key ? convert(fy_node_pair_value(p), label, src, kline, &v)
                               : GV_ERROR(GV_ERR_OOM, "config: out of memory");
            if (st == GV_OK) st = gv_cnode_put(map, key, kline, v);
            free(key);
            if (st != GV_OK) {
                gv_cnode_free(map);
                return st;
            }
        }
        *out = map;
        return GV_OK;
    }
    default:
        return GV_ERROR(GV_ERR_CONFIG, "%s:%d: unsupported YAML node", label, line_hint);
    }
}

/* The key text at (line, col) of `text`, for "duplicate key 'run'". */
static void key_at(const char *text, size_t len, int line, int col, char *out, size_t cap) {
    out[0] = '\0';
    size_t i = 0;
    for (int l = 1; l < line && i < len; ++i)
        if (text[i] == '\n') ++l;
    i += (size_t)(col > 0 ? col - 1 : 0);
    size_t o = 0;
    while (i < len && o + 1 < cap && text[i] != ':' && text[i] != '\n' && text[i] != ',' &&
           text[i] != '}')
        out[o++] = text[i++];
    while (o > 0 && (out[o - 1] == ' ' || out[o - 1] == '\t')) --o;
    out[o] = '\0';
}

gv_status gv_cnode_parse(const char *text, size_t len, const char *label, const gv_csrc *src,
                         gv_cnode **out) {
    *out = NULL;
    struct fy_diag_cfg dcfg;
    fy_diag_cfg_default(&dcfg);
    dcfg.fp = NULL;
    dcfg.output_fn = NULL;
    dcfg.colorize = false;
    struct fy_diag *diag = fy_diag_create(&dcfg);
    if (!diag) return GV_ERROR(GV_ERR_OOM, "%s: cannot create the YAML diagnostics", label);
    fy_diag_set_collect_errors(diag, true);
    /* fy_document_build_from_string does not copy its input: hand it a private copy it owns. */
    char *copy = malloc(len + 1);
    if (!copy) {
        fy_diag_destroy(diag);
        return GV_ERROR(GV_ERR_OOM, "config: out of memory");
    }
    memcpy(copy, text, len);
    copy[len] = '\0';
    struct fy_parse_cfg pcfg = {.flags = FYPCF_RESOLVE_DOCUMENT | FYPCF_QUIET, .diag = diag};
    struct fy_document *doc = fy_document_build_from_malloc_string(&pcfg, copy, len);
    gv_status st = GV_OK;
    void *it = NULL;
    struct fy_diag_error *e = fy_diag_errors_iterate(diag, &it);
    if (!doc || fy_diag_got_error(diag)) {
        if (e && e->line > 0) {
            char key[128] = "";
            if (e->msg && strcmp(e->msg, "duplicate key") == 0)
                key_at(text, len, e->line, e->column, key, sizeof key);
            st = GV_ERROR(GV_ERR_CONFIG, "%s:%d:%d: %s%s%s%s", label, e->line, e->column,
                          e->msg ? e->msg : "invalid YAML", key[0] ? " '" : "", key,
                          key[0] ? "'" : "");
        } else {
            st = GV_ERROR(GV_ERR_CONFIG, "%s: invalid YAML%s%s", label, e && e->msg ? ": " : "",
                          e && e->msg ? e->msg : "");
        }
    } else if (fy_document_root(doc)) {
        st = convert(fy_document_root(doc), label, src, 1, out);
    }
    fy_document_destroy(doc);
    fy_diag_destroy(diag);
    return st;
}

/* True when the text has nothing but blanks, comments and document markers. */
static bool blank_yaml(const char *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r')) ++i;
        bool skip = i >= len || s[i] == '\n' || s[i] == '#' ||
                    (len - i >= 3 && (memcmp(s + i, "---", 3) == 0 || memcmp(s + i, "...", 3) == 0));
        if (!skip) return false;
        while (i < len && s[i] != '\n') ++i;
        ++i;
    }
    return true;
}

gv_status gv_cnode_parse_file(const char *path, const char *text, const gv_csrc *src,
                              gv_cnode **out) {
    *out = NULL;
    char *buf = NULL;
    size_t len = 0;
    if (text) {
        len = strlen(text);
    } else {
        FILE *f = fopen(path, "rb");
        if (!f) return GV_ERROR(GV_ERR_IO, "%s: cannot read config: %s", path, strerror(errno));
        gv_sb sb = {0};
        char chunk[8192];
        size_t got;
        while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) gv_sb_put(&sb, chunk, got);
        int err = ferror(f) ? errno : 0;
        fclose(f);
        len = sb.n;
        buf = gv_sb_take(&sb);
        if (!buf) return GV_ERROR(GV_ERR_OOM, "%s: out of memory", path);
        if (err) {
            free(buf);
            return GV_ERROR(GV_ERR_IO, "%s: cannot read config: %s", path, strerror(err));
        }
        text = buf;
    }
    gv_status st = GV_OK;
    if (blank_yaml(text, len)) st = GV_ERROR(GV_ERR_CONFIG, "%s: empty config file", path);
    if (st == GV_OK) st = gv_cnode_parse(text, len, path, src, out);
    free(buf);
    if (st == GV_OK && (!*out || (*out)->kind != GV_CN_MAP)) {
        int line = *out ? (*out)->line : 1;
        gv_cnode_free(*out);
        *out = NULL;
        st = GV_ERROR(GV_ERR_CONFIG, "%s:%d: the top level must be a mapping of keys", path,
                      line ? line : 1);
    }
    return st;
}

/* ---- --set ----------------------------------------------------------------------------------- */

static bool parse_index(const char *s, int *out) {
    if (!*s) return false;
    long v = 0;
    for (const char *p = s; *p; ++p) {
        if (*p < '0' || *p > '9' || v > 1000000) return false;
        v = v * 10 + (*p - '0');
    }
    *out = (int)v;
    return true;
}

gv_status gv_cnode_apply_set(gv_cnode *root, const char *assignment, gv_csrc *src) {
    const char *eq = strchr(assignment, '=');
    if (!eq || eq == assignment)
        return GV_ERROR(GV_ERR_CONFIG, "--set %s: expected key.path=value", assignment);
    char *key = strndup(assignment, (size_t)(eq - assignment));
    if (!key) return GV_ERROR(GV_ERR_OOM, "config: out of memory");
    src->set_key = key; /* owned by the caller from here on (freed with the source) */
    const char *value = eq + 1;
    gv_cnode *val = NULL;
    char label[300];
    snprintf(label, sizeof label, "--set %s", key);
    GV_TRY(gv_cnode_parse(value, strlen(value), label, src, &val));
    if (!val) val = gv_cnode_scalar("", true, src, 0);
    if (!val) return GV_ERROR(GV_ERR_OOM, "config: out of memory");

    gv_cnode *cur = root;
    char *path = strdup(key);
    if (!path) {
        gv_cnode_free(val);
        return GV_ERROR(GV_ERR_OOM, "config: out of memory");
    }
    gv_status st = GV_OK;
    char *seg = path;
    for (;;) {
        char *dot = strchr(seg, '.');
        if (dot) *dot = '\0';
        if (!*seg) {
            st = GV_ERROR(GV_ERR_CONFIG, "--set %s: empty key component", key);
            break;
        }
        int idx = -1;
        if (cur->kind == GV_CN_SEQ) {
            if (!parse_index(seg, &idx) || idx >= cur->n) {
                st = GV_ERROR(GV_ERR_CONFIG, "--set %s: '%s' is not an index of a list of %d", key,
                              seg, cur->n);
                break;
            }
        } else if (cur->kind != GV_CN_MAP) {
            st = GV_ERROR(GV_ERR_CONFIG, "--set %s: '%.*s' is a value, not a mapping", key,
                          (int)(seg - path - 1), path);
            break;
        }
        if (!dot) { /* last component: replace or add */
            if (idx >= 0) {
                gv_cnode_free(cur->vals[idx]);
                cur->vals[idx] = val;
            } else {
                st = gv_cnode_put(cur, seg, 0, val);
            }
            val = NULL;
            break;
        }
        if (idx >= 0) {
            cur = cur->vals[idx];
        } else {
            int i = gv_cnode_find(cur, seg);
            if (i < 0 || gv_cnode_is_null(cur->vals[i])) {
                gv_cnode *m = gv_cnode_new(GV_CN_MAP, src, 0);
                if (!m || (st = gv_cnode_put(cur, seg, 0, m)) != GV_OK) {
                    st = GV_ERROR(GV_ERR_OOM, "config: out of memory");
                    break;
                }
                i = gv_cnode_find(cur, seg);
            }
            cur = cur->vals[i];
        }
        seg = dot + 1;
    }
    gv_cnode_free(val);
    free(path);
    return st;
}

/* ---- merging --------------------------------------------------------------------------------- */

static bool from_set(const gv_cnode *n) {
    if (!n) return false;
    if (n->src && n->src->kind == GV_ORIGIN_SET) return true;
    for (int i = 0; i < n->n; ++i)
        if (from_set(n->vals[i])) return true;
    return false;
}

void gv_cnode_merge(gv_cnode *dst, gv_cnode *top, bool keep_set) {
    for (int i = 0; i < top->n; ++i) {
        gv_cnode *v = top->vals[i];
        top->vals[i] = NULL;
        int j = gv_cnode_find(dst, top->keys[i]);
        if (j >= 0 && dst->vals[j]->kind == GV_CN_MAP && v->kind == GV_CN_MAP) {
            gv_cnode_merge(dst->vals[j], v, keep_set);
        } else if (j >= 0 && keep_set && from_set(dst->vals[j])) {
            gv_cnode_free(v);
        } else {
            gv_cnode_put(dst, top->keys[i], top->key_lines[i], v);
        }
    }
    gv_cnode_free(top);
}

void gv_key_join(char *dst, size_t cap, const char *prefix, const char *key) {
    int n = snprintf(dst, cap, "%s%s%s", prefix, *prefix ? "." : "", key);
    (void)n;
}

void gv_key_index(char *dst, size_t cap, const char *prefix, int index) {
    int n = snprintf(dst, cap, "%s%s%d", prefix, *prefix ? "." : "", index);
    (void)n;
}

/* ---- map renderings -------------------------------------------------------------------------- */

static void flatten(gv_sb *sb, const gv_cnode *n, const char *prefix) {
    if (n->kind == GV_CN_SCALAR) {
        if (gv_cnode_is_null(n)) return;
        gv_sb_printf(sb, "%s=", prefix);
        for (const char *p = n->text; *p; ++p) {
            if (*p == '\n') gv_sb_puts(sb, "\\n");
            else gv_sb_put(sb, p, 1);
        }
        gv_sb_puts(sb, "\n");
        return;
    }
    for (int i = 0; i < n->n; ++i) {
        char sub[512];
        if (n->kind == GV_CN_MAP) gv_key_join(sub, sizeof sub, prefix, n->keys[i]);
        else gv_key_index(sub, sizeof sub, prefix, i);
        flatten(sb, n->vals[i], sub);
    }
}

char *gv_cnode_flatten(const gv_cnode *n) {
    gv_sb sb = {0};
    if (n) flatten(&sb, n, "");
    return gv_sb_take(&sb);
}

/* Characters that never need quoting in block or flow context (first one not '-' or '.'). */
static bool safe_chars(const char *s) {
    bool ok = *s != '\0' && *s != '-' && *s != '.';
    for (const char *p = s; *p && ok; ++p)
        ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
             *p == '_' || *p == '.' || *p == '/' || *p == '-' || *p == '+';
    return ok;
}

/* Plain only when YAML reads it back as this same string (not null, bool or number). */
void gv_yaml_scalar(gv_sb *sb, const char *s) {
    static const char *const reserved[] = {"~", "null", "Null", "NULL", "true", "True", "TRUE",
                                           "false", "False", "FALSE", "yes", "Yes", "no", "No",
                                           "on", "On", "off", "Off", ".inf", ".nan", "-.inf"};
    bool plain = safe_chars(s);
    for (size_t i = 0; plain && i < sizeof reserved / sizeof reserved[0]; ++i)
        if (strcmp(s, reserved[i]) == 0) plain = false;
    if (plain) {
        char *end;
        strtod(s, &end);
        if (*end == '\0') plain = false;
    }
    if (plain) {
        gv_sb_puts(sb, s);
        return;
    }
    gv_sb_puts(sb, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; ++p) {
        if (*p == '"' || *p == '\\') gv_sb_printf(sb, "\\%c", *p);
        else if (*p == '\n') gv_sb_puts(sb, "\\n");
        else if (*p == '\t') gv_sb_puts(sb, "\\t");
        else if (*p < 0x20) gv_sb_printf(sb, "\\x%02x", *p);
        else gv_sb_put(sb, (const char *)p, 1);
    }
    gv_sb_puts(sb, "\"");
}

static void flow(gv_sb *sb, const gv_cnode *n) {
    if (n->kind == GV_CN_SCALAR) {
        /* A plain scalar keeps its YAML type (number, bool) when its text is safe to repeat. */
        if (gv_cnode_is_null(n)) gv_sb_puts(sb, "null");
        else if (n->plain && (safe_chars(n->text) || (n->text[0] == '-' && safe_chars(n->text + 1))))
            gv_sb_puts(sb, n->text);
        else gv_yaml_scalar(sb, n->text);
        return;
    }
    gv_sb_puts(sb, n->kind == GV_CN_MAP ? "{" : "[");
    for (int i = 0; i < n->n; ++i) {
        if (i) gv_sb_puts(sb, ", ");
        if (n->kind == GV_CN_MAP) {
            gv_yaml_scalar(sb, n->keys[i]);
            gv_sb_puts(sb, ": ");
        }
        flow(sb, n->vals[i]);
    }
    gv_sb_puts(sb, n->kind == GV_CN_MAP ? "}" : "]");
}

char *gv_cnode_flow(const gv_cnode *n) {
    gv_sb sb = {0};
    if (n && !gv_cnode_is_null(n)) flow(&sb, n);
    else gv_sb_puts(&sb, "{}");
    return gv_sb_take(&sb);
}
