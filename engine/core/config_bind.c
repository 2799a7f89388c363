/* Binding a merged config tree into typed structs through a schema (config.h), with per-value
 * origins. Every error is one line: "<file>:<line>: <dotted.key>: <cause>" or "--set <key>: ...".
 * Layering and file reading live in config.c; the dump in config_dump.c. */
#include "config_tree.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KEY_MAX 512

typedef struct bind_ctx {
    const char *file;       /* the task file, for "required key is missing"           */
    gv_config_result *res;  /* may be NULL                                             */
    gv_csrc default_src;    /* origin of schema defaults                               */
} bind_ctx;

/* ---- messages -------------------------------------------------------------------------------- */

static gv_status bind_errorv(const gv_csrc *src, int line, const char *key, const char *fmt,
                             va_list ap) {
    char cause[600];
    vsnprintf(cause, sizeof cause, fmt, ap);
    char full[KEY_MAX + 64];
    snprintf(full, sizeof full, "%s%s", src && src->key_prefix ? src->key_prefix : "", key);
    if (!src || src->kind == GV_ORIGIN_DEFAULT)
        return GV_ERROR(GV_ERR_INTERNAL, "schema default of %s: %s", full, cause);
    if (!src->file) { /* --set */
        if (strcmp(full, src->set_key) == 0)
            return GV_ERROR(GV_ERR_CONFIG, "--set %s: %s", full, cause);
        return GV_ERROR(GV_ERR_CONFIG, "--set %s: %s: %s", src->set_key, full, cause);
    }
    if (line > 0) return GV_ERROR(GV_ERR_CONFIG, "%s:%d: %s: %s", src->file, line, full, cause);
    return GV_ERROR(GV_ERR_CONFIG, "%s: %s: %s", src->file, full, cause);
}

static gv_status bind_error(const gv_cnode *n, const char *key, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static gv_status bind_error(const gv_cnode *n, const char *key, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    gv_status st = bind_errorv(n->src, n->line, key, fmt, ap);
    va_end(ap);
    return st;
}

/* Levenshtein distance, capped inputs (keys are short). */
static int edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63) return 99;
    int d[64][64];
    for (size_t i = 0; i <= la; ++i) d[i][0] = (int)i;
    for (size_t j = 0; j <= lb; ++j) d[0][j] = (int)j;
    for (size_t i = 1; i <= la; ++i)
        for (size_t j = 1; j <= lb; ++j) {
            int sub = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            int del = d[i - 1][j] + 1, ins = d[i][j - 1] + 1;
            d[i][j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
    return d[la][lb];
}

static const char *closest_key(const gv_schema *s, const char *key) {
    const char *best = NULL;
    int best_d = (int)strlen(key) / 3 + 1;
    if (best_d > 3) best_d = 3;
    for (int i = 0; i < s->nfields; ++i) {
        int d = edit_distance(key, s->fields[i].key);
        if (d <= best_d) {
            best_d = d;
            best = s->fields[i].key;
        }
    }
    return best;
}

const gv_field *gv_schema_field(const gv_schema *s, const char *key) {
    for (int i = 0; i < s->nfields; ++i)
        if (strcmp(s->fields[i].key, key) == 0) return &s->fields[i];
    return NULL;
}

/* ---- origins --------------------------------------------------------------------------------- */

static gv_status record(bind_ctx *c, const char *key, gv_cfg_origin o) {
    gv_config_result *r = c->res;
    if (!r) return GV_OK;
    if (r->n == r->cap) {
        int cap = r->cap ? 2 * r->cap : 64;
        char **keys = realloc(r->keys, (size_t)cap * sizeof *keys);
        if (!keys) return GV_ERROR(GV_ERR_OOM, "config: out of memory");
        r->keys = keys;
        gv_cfg_origin *os = realloc(r->origins, (size_t)cap * sizeof *os);
        if (!os) return GV_ERROR(GV_ERR_OOM, "config: out of memory");
        r->origins = os;
        r->cap = cap;
    }
    if (!(r->keys[r->n] = strdup(key))) return GV_ERROR(GV_ERR_OOM, "config: out of memory");
    r->origins[r->n++] = o;
    return GV_OK;
}

/* ---- paths ----------------------------------------------------------------------------------- */

/* base + "/" + rel (or rel when absolute), with "." and ".." removed lexically. */
static char *resolve_path(const char *base_dir, const char *rel) {
    char cwd[4096];
    if (rel[0] != '/' && !base_dir) {
        if (!getcwd(cwd, sizeof cwd)) return NULL;
        base_dir = cwd;
    }
    size_t cap = strlen(rel) + (base_dir ? strlen(base_dir) : 0) + 3;
    char *joined = malloc(cap), *out = malloc(cap);
    if (!joined || !out) {
        free(joined);
        free(out);
        return NULL;
    }
    if (rel[0] == '/') snprintf(joined, cap, "%s", rel);
    else snprintf(joined, cap, "%s/%s", base_dir, rel);
    size_t n = 0;
    for (char *save = NULL, *seg = strtok_r(joined, "/", &save); seg;
         seg = strtok_r(NULL, "/", &save)) {
        if (strcmp(seg, ".") == 0) continue;
        if (strcmp(seg, "..") == 0) {
            while (n > 0 && out[n - 1] != '/') --n;
            if (n > 0) --n;
            continue;
        }
        out[n++] = '/';
        size_t l = strlen(seg);
        memcpy(out + n, seg, l);
        n += l;
    }
    if (n == 0) out[n++] = '/';
    out[n] = '\0';
    free(joined);
    return out;
}

/* ---- scalars --------------------------------------------------------------------------------- */

static const char *type_word(gv_cfg_type t) {
    static const char *const words[GV_CFG_TYPE_COUNT] = {
        [GV_CFG_BOOL] = "true or false", [GV_CFG_INT] = "an integer", [GV_CFG_I64] = "an integer",
        [GV_CFG_FLOAT] = "a number",     [GV_CFG_STRING] = "a string", [GV_CFG_PATH] = "a path",
        [GV_CFG_ENUM] = "a name",        [GV_CFG_STRUCT] = "a mapping", [GV_CFG_LIST] = "a list",
        [GV_CFG_MAP] = "a mapping",      [GV_CFG_NUMBERS] = "a list of numbers"};
    return words[t];
}

static const char *kind_word(const gv_cnode *n) {
    return n->kind == GV_CN_MAP ? "a mapping" : n->kind == GV_CN_SEQ ? "a list" : "a null";
}

static void fmt_bound(char *buf, size_t cap, double v) {
    if (isinf(v)) snprintf(buf, cap, "%s", v < 0 ? "-inf" : "inf");
    else snprintf(buf, cap, "%.10g", v);
}

static gv_status check_range(const gv_field *f, const gv_cnode *n, const char *key, double v) {
    if (!(f->min < f->max) || (v >= f->min && v <= f->max)) return GV_OK;
    char lo[32], hi[32];
    fmt_bound(lo, sizeof lo, f->min);
    fmt_bound(hi, sizeof hi, f->max);
    return bind_error(n, key, "%s is out of range [%s, %s]", n->text, lo, hi);
}

static gv_status bind_scalar(const gv_field *f, void *p, const gv_cnode *n, const char *key) {
    if (n->kind != GV_CN_SCALAR || (gv_cnode_is_null(n) && f->type != GV_CFG_STRING &&
                                    f->type != GV_CFG_PATH)) {
        if (f->type == GV_CFG_ENUM) goto bad_enum;
        return bind_error(n, key, "expected %s, got %s", type_word(f->type), kind_word(n));
    }
    const char *t = n->text;
    switch (f->type) {
    case GV_CFG_BOOL:
        if (n->plain && strcmp(t, "true") == 0) *(bool *)p = true;
        else if (n->plain && strcmp(t, "false") == 0) *(bool *)p = false;
        else return bind_error(n, key, "expected true or false, got '%s'", t);
        return GV_OK;
    case GV_CFG_INT:
    case GV_CFG_I64: {
        char *end;
        errno = 0;
        long long v = strtoll(t, &end, 10);
        if (!n->plain || !*t || *end || t[0] == ' ' || errno == ERANGE ||
            (f->type == GV_CFG_INT && (v < INT_MIN || v > INT_MAX)))
            return bind_error(n, key, "expected an integer, got '%s'", t);
        GV_TRY(check_range(f, n, key, (double)v));
        if (f->type == GV_CFG_INT) *(int *)p = (int)v;
        else *(int64_t *)p = (int64_t)v;
        return GV_OK;
    }
    case GV_CFG_FLOAT: {
        char *end;
        double v = strtod(t, &end);
        if (!n->plain || !*t || *end || t[0] == ' ')
            return bind_error(n, key, "expected a number, got '%s'", t);
        if (!isfinite(v)) return bind_error(n, key, "expected a finite number, got '%s'", t);
        GV_TRY(check_range(f, n, key, v));
        *(double *)p = v;
        return GV_OK;
    }
    case GV_CFG_STRING:
    case GV_CFG_PATH: {
        const char *s = gv_cnode_is_null(n) ? "" : t;
        char *v = (f->type == GV_CFG_PATH && *s) ? resolve_path(n->src->base_dir, s) : strdup(s);
        if (!v) return GV_ERROR(GV_ERR_OOM, "config: out of memory");
        free(*(char **)p);
        *(char **)p = v;
        return GV_OK;
    }
    case GV_CFG_ENUM:
        for (int i = 0; f->names[i]; ++i)
            if (strcmp(f->names[i], t) == 0) {
                *(int *)p = i;
                return GV_OK;
            }
        goto bad_enum;
    default:
        return GV_ERROR(GV_ERR_INTERNAL, "config: %s: not a scalar type", key);
    }
bad_enum: {
    char names[400] = "";
    size_t used = 0;
    for (int i = 0; f->names[i] && used < sizeof names; ++i)
        used += (size_t)snprintf(names + used, sizeof names - used, "%s%s", i ? ", " : "",
                                 f->names[i]);
    return bind_error(n, key, "expected one of %s; got '%s'", names,
                      n->kind == GV_CN_SCALAR ? n->text : kind_word(n));
}
}

/* ---- structs, lists, maps -------------------------------------------------------------------- */

static gv_status bind_struct(bind_ctx *c, const gv_schema *s, void *obj, const gv_cnode *n,
                             const char *prefix);

static gv_status bind_field(bind_ctx *c, const gv_field *f, void *obj, const gv_cnode *n,
                            const char *key, bool given);

/* The default of `f` as a node (NULL when the field has none). */
static gv_status default_node(bind_ctx *c, const gv_field *f, const char *key, gv_cnode **out) {
    *out = NULL;
    if (!f->def) return GV_OK;
    if (f->def[0] == '[' || f->def[0] == '{') {
        GV_TRY(gv_cnode_parse(f->def, strlen(f->def), key, &c->default_src, out));
        return GV_OK;
    }
    *out = gv_cnode_scalar(f->def, true, &c->default_src, 0);
    return *out ? GV_OK : GV_ERROR(GV_ERR_OOM, "config: out of memory");
}

static gv_status bind_list(bind_ctx *c, const gv_field *f, void *obj, const gv_cnode *n,
                           const char *key) {
    void **items = (void **)((char *)obj + f->offset);
    int *count = (int *)((char *)obj + f->count_offset);
    if (n && n->kind != GV_CN_SEQ && !gv_cnode_is_null(n))
        return bind_error(n, key, "expected a list, got %s", n->kind == GV_CN_MAP ? "a mapping"
                                                                                   : "a scalar");
    int len = (n && n->kind == GV_CN_SEQ) ? n->n : 0;
    if (len > 0 && !(*items = calloc((size_t)len, f->sub->size)))
        return GV_ERROR(GV_ERR_OOM, "config: out of memory");
    for (int i = 0; i < len; ++i) {
        char sub[KEY_MAX];
        gv_key_index(sub, sizeof sub, key, i);
        *count = i + 1; /* so a failure part-way frees what was bound */
        GV_TRY(bind_struct(c, f->sub, (char *)*items + (size_t)i * f->sub->size, n->vals[i], sub));
    }
    *count = len;
    return GV_OK;
}

/* A list of finite numbers, each in [min, max] (the FLOAT rules per item). */
static gv_status bind_numbers(const gv_field *f, void *obj, const gv_cnode *n, const char *key) {
    double **items = (double **)((char *)obj + f->offset);
    int *count = (int *)((char *)obj + f->count_offset);
    if (n && n->kind != GV_CN_SEQ && !gv_cnode_is_null(n))
        return bind_error(n, key, "expected a list of numbers, got %s",
                          n->kind == GV_CN_MAP ? "a mapping" : "a scalar");
    int len = (n && n->kind == GV_CN_SEQ) ? n->n : 0;
    if (len > 0 && !(*items = calloc((size_t)len, sizeof(double))))
        return GV_ERROR(GV_ERR_OOM, "config: out of memory");
    *count = len;
    const gv_field item = {.key = f->key, .type = GV_CFG_FLOAT, .min = f->min, .max = f->max};
    for (int i = 0; i < len; ++i) {
        char sub[KEY_MAX];
        gv_key_index(sub, sizeof sub, key, i);
        GV_TRY(bind_scalar(&item, &(*items)[i], n->vals[i], sub));
    }
    return GV_OK;
}

static gv_status bind_map(const gv_field *f, void *obj, const gv_cnode *n, const char *key) {
    gv_cfg_map *m = (gv_cfg_map *)((char *)obj + f->offset);
    if (n && n->kind != GV_CN_MAP && !gv_cnode_is_null(n))
        return bind_error(n, key, "expected a mapping, got %s",
                          n->kind == GV_CN_SEQ ? "a list" : "a scalar");
    const gv_cnode *body = (n && n->kind == GV_CN_MAP) ? n : NULL;
    m->flat = gv_cnode_flatten(body);
    m->yaml = gv_cnode_flow(body);
    return (m->flat && m->yaml) ? GV_OK : GV_ERROR(GV_ERR_OOM, "config: out of memory");
}

static gv_status bind_field(bind_ctx *c, const gv_field *f, void *obj, const gv_cnode *n,
                            const char *key, bool given) {
    void *p = (char *)obj + f->offset;
    gv_cfg_origin origin = n ? n->src->kind : GV_ORIGIN_DEFAULT;
    switch (f->type) {
    case GV_CFG_STRUCT:
        if (n && n->kind != GV_CN_MAP && !gv_cnode_is_null(n))
            return bind_error(n, key, "expected a mapping, got %s",
                              n->kind == GV_CN_SEQ ? "a list" : "a scalar");
        return bind_struct(c, f->sub, p, (n && n->kind == GV_CN_MAP) ? n : NULL, key);
    case GV_CFG_LIST:
        GV_TRY(bind_list(c, f, obj, n, key));
        if (given && (f->flags & GV_CFG_REQUIRED) && *(int *)((char *)obj + f->count_offset) == 0)
            return bind_error(n, key, "must not be empty");
        return record(c, key, origin);
    case GV_CFG_MAP:
        GV_TRY(bind_map(f, obj, n, key));
        return record(c, key, origin);
    case GV_CFG_NUMBERS:
        GV_TRY(bind_numbers(f, obj, n, key));
        return record(c, key, origin);
    default:
        if (n) GV_TRY(bind_scalar(f, p, n, key));
        else if (f->type == GV_CFG_STRING || f->type == GV_CFG_PATH)
            if (!(*(char **)p = strdup(""))) return GV_ERROR(GV_ERR_OOM, "config: out of memory");
        if (given && (f->flags & GV_CFG_REQUIRED) &&
            (f->type == GV_CFG_STRING || f->type == GV_CFG_PATH) && **(char **)p == '\0')
            return bind_error(n, key, "must not be empty");
        return record(c, key, origin);
    }
}

static gv_status bind_struct(bind_ctx *c, const gv_schema *s, void *obj, const gv_cnode *n,
                             const char *prefix) {
    char key[KEY_MAX];
    if (n && n->kind != GV_CN_MAP)
        return bind_error(n, prefix, "expected a mapping, got %s",
                          n->kind == GV_CN_SEQ ? "a list" : "a scalar");
    for (int i = 0; n && i < n->n; ++i) { /* unknown keys first, in document order */
        if (gv_schema_field(s, n->keys[i])) continue;
        gv_key_join(key, sizeof key, prefix, n->keys[i]);
        const char *near = closest_key(s, n->keys[i]);
        gv_cnode at = {.src = n->vals[i]->src, .line = n->key_lines[i]};
        if (near) return bind_error(&at, key, "unknown key (did you mean '%s'?)", near);
        return bind_error(&at, key, "unknown key");
    }
    for (int i = 0; i < s->nfields; ++i) {
        const gv_field *f = &s->fields[i];
        gv_key_join(key, sizeof key, prefix, f->key);
        int at = gv_cnode_find(n, f->key);
        if (at >= 0) {
            GV_TRY(bind_field(c, f, obj, n->vals[at], key, true));
            continue;
        }
        if (f->flags & GV_CFG_REQUIRED) {
            const char *where = n && n->src && n->src->file ? n->src->file
                                : c->file                   ? c->file
                                                            : "config";
            if (n && n->src && !n->src->file && n->src->set_key)
                return GV_ERROR(GV_ERR_CONFIG, "--set %s: %s: required key is missing",
                                n->src->set_key, key);
            if (n && n->line > 0)
                return GV_ERROR(GV_ERR_CONFIG, "%s:%d: %s: required key is missing", where,
                                n->line, key);
            return GV_ERROR(GV_ERR_CONFIG, "%s: %s: required key is missing", where, key);
        }
        gv_cnode *def = NULL;
        GV_TRY(default_node(c, f, key, &def));
        gv_status st = bind_field(c, f, obj, def, key, false);
        gv_cnode_free(def);
        GV_TRY(st);
    }
    const char *why = s->validate ? s->validate(obj) : NULL;
    if (why) {
        if (n) return bind_error(n, prefix, "%s", why);
        return GV_ERROR(GV_ERR_CONFIG, "%s: %s: %s", c->file ? c->file : "config", prefix, why);
    }
    return GV_OK;
}

gv_status gv_config_bind(const gv_schema *schema, const gv_cnode *root, const char *file,
                         void *out, gv_config_result *res) {
    bind_ctx c = {.file = file, .res = res, .default_src = {.kind = GV_ORIGIN_DEFAULT}};
    return bind_struct(&c, schema, out, root, "");
}
