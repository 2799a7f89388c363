/* The resolved config as YAML (every field, schema order, optional origin comments), its hash,
 * and freeing what a load allocated. The canonical dump (no comments) reloads to the same struct:
 * floats are written with the fewest digits that round-trip. */
#include "config_tree.h"
#include "grove/hash.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_MAX 512

static void put_double(gv_sb *sb, double v) {
    char buf[40];
    for (int prec = 15; prec <= 17; ++prec) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) break;
    }
    /* Keep it reading as a float: 3 -> 3.0 (1e-05 and 0.5 already do). */
    if (!strpbrk(buf, ".eEn")) strcat(buf, ".0");
    gv_sb_puts(sb, buf);
}

static void indent(gv_sb *sb, int n) {
    for (int i = 0; i < n; ++i) gv_sb_put(sb, " ", 1);
}

static void origin_comment(gv_sb *sb, const gv_config_result *res, const char *key) {
    if (res) gv_sb_printf(sb, "  # %s", gv_cfg_origin_name(gv_config_origin_of(res, key)));
    gv_sb_puts(sb, "\n");
}

static void emit_fields(gv_sb *sb, const gv_schema *s, const void *obj, int ind, bool list_item,
                        const char *prefix, const gv_config_result *res) {
    for (int i = 0; i < s->nfields; ++i) {
        const gv_field *f = &s->fields[i];
        const void *p = (const char *)obj + f->offset;
        char key[KEY_MAX];
        gv_key_join(key, sizeof key, prefix, f->key);
        if (list_item && i == 0) {
            indent(sb, ind - 2);
            gv_sb_puts(sb, "- ");
        } else {
            indent(sb, ind);
        }
        gv_sb_printf(sb, "%s:", f->key);
        switch (f->type) {
        case GV_CFG_STRUCT:
            gv_sb_puts(sb, "\n");
            emit_fields(sb, f->sub, p, ind + 2, false, key, res);
            continue;
        case GV_CFG_LIST: {
            const char *items = *(char *const *)p;
            int count = *(const int *)((const char *)obj + f->count_offset);
            gv_sb_puts(sb, count ? "" : " []");
            origin_comment(sb, res, key);
            for (int k = 0; k < count; ++k) {
                char sub[KEY_MAX];
                gv_key_index(sub, sizeof sub, key, k);
                emit_fields(sb, f->sub, items + (size_t)k * f->sub->size, ind + 4, true, sub, res);
            }
            continue;
        }
        case GV_CFG_NUMBERS: {
            const double *v = *(double *const *)p;
            int count = *(const int *)((const char *)obj + f->count_offset);
            gv_sb_puts(sb, " [");
            for (int k = 0; k < count; ++k) {
                if (k) gv_sb_puts(sb, ", ");
                put_double(sb, v[k]);
            }
            gv_sb_puts(sb, "]");
            break;
        }
        case GV_CFG_MAP: {
            const gv_cfg_map *m = p;
            gv_sb_printf(sb, " %s", m->yaml && *m->yaml ? m->yaml : "{}");
            break;
        }
        case GV_CFG_BOOL:
            gv_sb_puts(sb, *(const bool *)p ? " true" : " false");
            break;
        case GV_CFG_INT:
            gv_sb_printf(sb, " %d", *(const int *)p);
            break;
        case GV_CFG_I64:
            gv_sb_printf(sb, " %" PRId64, *(const int64_t *)p);
            break;
        case GV_CFG_FLOAT:
            gv_sb_puts(sb, " ");
            put_double(sb, *(const double *)p);
            break;
        case GV_CFG_STRING:
        case GV_CFG_PATH: {
            const char *v = *(char *const *)p;
            gv_sb_puts(sb, " ");
            gv_yaml_scalar(sb, v ? v : "");
            break;
        }
        case GV_CFG_ENUM: {
            int v = *(const int *)p, n = 0;
            while (f->names[n]) ++n;
            gv_sb_printf(sb, " %s", v >= 0 && v < n ? f->names[v] : "?");
            break;
        }
        default:
            break;
        }
        origin_comment(sb, res, key);
    }
}

gv_status gv_config_dump(const gv_schema *schema, const void *cfg, const gv_config_result *res,
                         char **out) {
    gv_sb sb = {0};
    emit_fields(&sb, schema, cfg, 0, false, "", res);
    *out = gv_sb_take(&sb);
    return *out ? GV_OK : GV_ERROR(GV_ERR_OOM, "config: out of memory while dumping");
}

gv_status gv_config_hash(const gv_schema *schema, const void *cfg, uint64_t *hash) {
    char *text;
    GV_TRY(gv_config_dump(schema, cfg, NULL, &text));
    *hash = gv_fnv1a64(GV_FNV1A64_INIT, text, strlen(text));
    free(text);
    return GV_OK;
}

static void free_fields(const gv_schema *s, void *obj) {
    for (int i = 0; i < s->nfields; ++i) {
        const gv_field *f = &s->fields[i];
        void *p = (char *)obj + f->offset;
        switch (f->type) {
        case GV_CFG_STRING:
        case GV_CFG_PATH:
        case GV_CFG_NUMBERS:
            free(*(void **)p);
            break;
        case GV_CFG_STRUCT:
            free_fields(f->sub, p);
            break;
        case GV_CFG_LIST: {
            char *items = *(char **)p;
            int count = *(int *)((char *)obj + f->count_offset);
            for (int k = 0; items && k < count; ++k) free_fields(f->sub, items + (size_t)k * f->sub->size);
            free(items);
            break;
        }
        case GV_CFG_MAP:
            free(((gv_cfg_map *)p)->flat);
            free(((gv_cfg_map *)p)->yaml);
            break;
        default:
            break;
        }
    }
}

void gv_config_free(const gv_schema *schema, void *cfg) {
    if (!cfg) return;
    free_fields(schema, cfg);
    memset(cfg, 0, schema->size);
}
