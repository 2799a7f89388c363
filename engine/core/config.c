/* Config loading: reads the layers (preset, task file, its overrides, --set), enforces preset
 * ownership (ALGORITHMS.md §9), merges them into one tree and binds it (config_bind.c).
 * See config.h for the layer order and the error format. */
#include "config_tree.h"

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *gv_cfg_origin_name(gv_cfg_origin o) {
    static const char *const names[GV_ORIGIN_COUNT] = {
        [GV_ORIGIN_DEFAULT] = "default", [GV_ORIGIN_PRESET] = "preset",
        [GV_ORIGIN_CONFIG] = "config",   [GV_ORIGIN_OVERRIDE] = "override",
        [GV_ORIGIN_SET] = "--set"};
    return ((int)o >= 0 && o < GV_ORIGIN_COUNT) ? names[o] : "unknown";
}

gv_cfg_origin gv_config_origin_of(const gv_config_result *res, const char *key) {
    for (int i = 0; res && i < res->n; ++i)
        if (strcmp(res->keys[i], key) == 0) return res->origins[i];
    return GV_ORIGIN_DEFAULT;
}

void gv_config_result_free(gv_config_result *res) {
    if (!res) return;
    for (int i = 0; i < res->n; ++i) free(res->keys[i]);
    free(res->keys);
    free(res->origins);
    free(res->preset);
    free(res->preset_path);
    *res = (gv_config_result){0};
}

/* ---- load state ------------------------------------------------------------------------------ */

typedef struct load_ctx {
    const gv_config_request *req;
    char *file_dir;    /* absolute directory of the task file               */
    char *preset_file; /* the preset file read                               */
    char *preset_dir;  /* its absolute directory                             */
    char *preset_name;
    char *override_prefix;
    gv_csrc preset_src, config_src, override_src;
    gv_csrc *set_srcs; /* one per --set                                      */
} load_ctx;

static void load_ctx_free(load_ctx *c) {
    free(c->file_dir);
    free(c->preset_file);
    free(c->preset_dir);
    free(c->preset_name);
    free(c->override_prefix);
    for (int i = 0; c->set_srcs && i < c->req->nsets; ++i) free((char *)c->set_srcs[i].set_key);
    free(c->set_srcs);
}

/* Absolute directory of `path` (cwd-relative when `path` is relative). */
static char *abs_dir(const char *path) {
    char cwd[PATH_MAX];
    const char *slash = strrchr(path, '/');
    size_t dlen = slash ? (size_t)(slash - path) : 0;
    if (slash && dlen == 0) return strdup("/");
    if (path[0] == '/') return strndup(path, dlen);
    if (!getcwd(cwd, sizeof cwd)) return NULL;
    size_t cap = strlen(cwd) + dlen + 2;
    char *out = malloc(cap);
    if (out) snprintf(out, cap, "%s%s%.*s", cwd, dlen ? "/" : "", (int)dlen, path);
    return out;
}

/* ---- preset ownership (ALGORITHMS.md §9) ------------------------------------------------------ */

typedef enum { OWN_TASK, OWN_PRESET, OWN_OVERRIDES } own_rule;

/* Walk `n` along `s`: the task file may not set owned fields; the preset file and the overrides
   may set only owned fields. Unknown keys are left to the binder. */
static gv_status check_owned(const gv_schema *s, const gv_cnode *n, const char *prefix,
                             own_rule rule, const char *preset) {
    for (int i = 0; n && n->kind == GV_CN_MAP && i < n->n; ++i) {
        const gv_field *f = gv_schema_field(s, n->keys[i]);
        const gv_cnode *v = n->vals[i];
        if (!f) continue;
        char key[512];
        gv_key_join(key, sizeof key, prefix, f->key);
        const char *file = v->src->file;
        int line = n->key_lines[i];
        const char *pre = v->src->key_prefix ? v->src->key_prefix : "";
        if (f->flags & GV_CFG_OWNED) {
            if (rule == OWN_TASK && v->src->kind == GV_ORIGIN_CONFIG)
                return GV_ERROR(GV_ERR_CONFIG,
                                "%s:%d: %s: set by preset '%s'; change it under "
                                "algorithm.overrides or with --set",
                                file, line, key, preset);
            continue;
        }
        if (f->type == GV_CFG_STRUCT && v->kind == GV_CN_MAP) {
            GV_TRY(check_owned(f->sub, v, key, rule, preset));
            continue;
        }
        if (rule == OWN_PRESET)
            return GV_ERROR(GV_ERR_CONFIG,
                            "%s:%d: %s: not an algorithm key; a preset may only set keys the "
                            "preset owns",
                            file, line, key);
        if (rule == OWN_OVERRIDES && v->src->kind == GV_ORIGIN_OVERRIDE)
            return GV_ERROR(GV_ERR_CONFIG,
                            "%s:%d: %s%s: not set by the preset; set it at the top level instead",
                            file, line, pre, key);
    }
    return GV_OK;
}

/* Preset file for `name`: a path (has '/' or ends in .yaml) relative to the task file, else
   <preset_dir>/<name>.yaml. Unknown names list the presets that exist. */
static gv_status find_preset(load_ctx *c, const char *name, const gv_cnode *at) {
    size_t len = strlen(name);
    bool is_path = strchr(name, '/') || (len > 5 && strcmp(name + len - 5, ".yaml") == 0);
    size_t cap = len + 600 + (c->req->path ? strlen(c->req->path) : 0);
    if (!(c->preset_file = malloc(cap))) return GV_ERROR(GV_ERR_OOM, "config: out of memory");
    const char *slash = c->req->path ? strrchr(c->req->path, '/') : NULL;
    if (is_path && name[0] != '/' && slash) /* next to the task file, named as the user did */
        snprintf(c->preset_file, cap, "%.*s/%s", (int)(slash - c->req->path), c->req->path, name);
    else if (is_path)
        snprintf(c->preset_file, cap, "%s", name);
    else if (c->req->preset_dir)
        snprintf(c->preset_file, cap, "%s/%s.yaml", c->req->preset_dir, name);
    else
        return GV_ERROR(GV_ERR_INTERNAL, "config: no preset directory to find '%s' in", name);
    if (is_path || access(c->preset_file, R_OK) == 0) return GV_OK;

    char avail[400] = "";
    size_t used = 0;
    DIR *d = opendir(c->req->preset_dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        size_t l = strlen(e->d_name);
        if (l > 5 && strcmp(e->d_name + l - 5, ".yaml") == 0 && used < sizeof avail)
            used += (size_t)snprintf(avail + used, sizeof avail - used, "%s%.*s",
                                     used ? ", " : "", (int)(l - 5), e->d_name);
    }
    bool had_dir = d != NULL;
    if (d) closedir(d);
    char where[600];
    if (at && at->src->file)
        snprintf(where, sizeof where, "%s:%d: %s", at->src->file, at->line, c->req->preset_key);
    else if (at && at->src->set_key)
        snprintf(where, sizeof where, "--set %s", at->src->set_key);
    else /* the schema default */
        snprintf(where, sizeof where, "%s: %s", c->req->path ? c->req->path : "config",
                 c->req->preset_key);
    if (!had_dir && !is_path)
        return GV_ERROR(GV_ERR_CONFIG, "%s: preset '%s': no preset directory %s (set "
                        "GROVE_PRESET_DIR)", where, name, c->req->preset_dir);
    return GV_ERROR(GV_ERR_CONFIG, "%s: unknown preset '%s' (no %s; available: %s)", where, name,
                    c->preset_file, used ? avail : "none");
}

/* Schema default of a dotted key (the preset key), or NULL. */
static const char *schema_default(const gv_schema *s, const char *dotted) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", dotted);
    const gv_field *f = NULL;
    for (char *save = NULL, *seg = strtok_r(buf, ".", &save); seg;
         seg = strtok_r(NULL, ".", &save)) {
        if (!s || !(f = gv_schema_field(s, seg))) return NULL;
        s = f->sub;
    }
    return f ? f->def : NULL;
}

/* Reads the preset (when the request asks for one), checks ownership everywhere and merges the
   layers into one tree in *out. Takes `task` (the task file + --set edits). */
static gv_status layer(load_ctx *c, gv_cnode *task, gv_cnode **out) {
    const gv_config_request *req = c->req;
    *out = task;
    if (req->resolved || !req->preset_key) return GV_OK;

    gv_cnode *pn = gv_cnode_at(task, req->preset_key);
    const char *name = schema_default(req->schema, req->preset_key);
    if (pn && pn->kind == GV_CN_SCALAR && !gv_cnode_is_null(pn)) name = pn->text;
    if (!name || !*name) return GV_OK;
    if (!(c->preset_name = strdup(name))) return GV_ERROR(GV_ERR_OOM, "config: out of memory");
    c->config_src.preset = c->override_src.preset = c->preset_name;
    GV_TRY(check_owned(req->schema, task, "", OWN_TASK, c->preset_name));

    GV_TRY(find_preset(c, c->preset_name, pn));
    if (!(c->preset_dir = abs_dir(c->preset_file)))
        return GV_ERROR(GV_ERR_OOM, "config: out of memory");
    c->preset_src = (gv_csrc){.kind = GV_ORIGIN_PRESET, .file = c->preset_file,
                              .base_dir = c->preset_dir, .preset = c->preset_name};
    gv_cnode *preset = NULL;
    GV_TRY(gv_cnode_parse_file(c->preset_file, NULL, &c->preset_src, &preset));
    gv_status st = check_owned(req->schema, preset, "", OWN_PRESET, c->preset_name);

    /* The overrides mapping stays in the task tree (the dump shows it); a copy merges at the root. */
    gv_cnode *ov = req->overrides_key ? gv_cnode_at(task, req->overrides_key) : NULL;
    gv_cnode *ov_copy = NULL;
    if (st == GV_OK && ov && ov->kind == GV_CN_MAP) {
        if (!(ov_copy = gv_cnode_copy(ov))) st = GV_ERROR(GV_ERR_OOM, "config: out of memory");
        else st = check_owned(req->schema, ov_copy, "", OWN_OVERRIDES, c->preset_name);
    }
    if (st != GV_OK) {
        gv_cnode_free(preset);
        gv_cnode_free(ov_copy);
        return st;
    }
    gv_cnode_merge(preset, task, false);
    if (ov_copy) gv_cnode_merge(preset, ov_copy, true);
    *out = preset;
    return GV_OK;
}

/* Mark a subtree as coming from `src` (the overrides mapping's nodes). */
static void set_src(gv_cnode *n, const gv_csrc *from, const gv_csrc *to) {
    if (!n) return;
    if (n->src == from) n->src = to;
    for (int i = 0; i < n->n; ++i) set_src(n->vals[i], from, to);
}

gv_status gv_config_load(const gv_config_request *req, void *out, gv_config_result *res) {
    memset(out, 0, req->schema->size);
    if (res) *res = (gv_config_result){0};
    load_ctx c = {.req = req};
    gv_cnode *task = NULL, *merged = NULL;
    gv_status st = GV_OK;

    if (req->path && !(c.file_dir = abs_dir(req->path)))
        st = GV_ERROR(GV_ERR_OOM, "config: out of memory");
    c.config_src = (gv_csrc){.kind = GV_ORIGIN_CONFIG, .file = req->path, .base_dir = c.file_dir};
    if (st == GV_OK && req->overrides_key) {
        size_t l = strlen(req->overrides_key) + 2;
        if ((c.override_prefix = malloc(l))) snprintf(c.override_prefix, l, "%s.", req->overrides_key);
        else st = GV_ERROR(GV_ERR_OOM, "config: out of memory");
    }
    c.override_src = c.config_src;
    c.override_src.kind = GV_ORIGIN_OVERRIDE;
    c.override_src.key_prefix = c.override_prefix;
    if (st == GV_OK && req->nsets > 0 &&
        !(c.set_srcs = calloc((size_t)req->nsets, sizeof *c.set_srcs)))
        st = GV_ERROR(GV_ERR_OOM, "config: out of memory");

    if (st == GV_OK) {
        if (req->path || req->text)
            st = gv_cnode_parse_file(req->path ? req->path : "config", req->text, &c.config_src,
                                     &task);
        else if (!(task = gv_cnode_new(GV_CN_MAP, &c.config_src, 0)))
            st = GV_ERROR(GV_ERR_OOM, "config: out of memory");
    }
    /* The overrides mapping's nodes are "override", not "config". */
    if (st == GV_OK && req->overrides_key && !req->resolved)
        set_src(gv_cnode_at(task, req->overrides_key), &c.config_src, &c.override_src);
    for (int i = 0; st == GV_OK && i < req->nsets; ++i) {
        c.set_srcs[i] = (gv_csrc){.kind = GV_ORIGIN_SET};
        st = gv_cnode_apply_set(task, req->sets[i], &c.set_srcs[i]);
    }
    if (st == GV_OK) {
        st = layer(&c, task, &merged);
        if (st == GV_OK) task = NULL; /* now `merged`, or consumed by the merge */
        else merged = NULL;
    }
    if (st == GV_OK) st = gv_config_bind(req->schema, merged, req->path, out, res);
    if (st == GV_OK && res && c.preset_name) {
        res->preset = strdup(c.preset_name);
        res->preset_path = strdup(c.preset_file);
        if (!res->preset || !res->preset_path) st = GV_ERROR(GV_ERR_OOM, "config: out of memory");
    }
    gv_cnode_free(merged);
    gv_cnode_free(task);
    load_ctx_free(&c);
    if (st != GV_OK) {
        gv_config_free(req->schema, out);
        if (res) gv_config_result_free(res);
    }
    return st;
}
