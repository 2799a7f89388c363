/* Parameter tables <-> checkpoints: /params, /optim/{m,v}, /ema from a gv_params (checkpoint.h).
 *
 * Values travel through one host buffer with backend->copy_to_host / copy_from_host, never by
 * dereferencing parameter memory (DESIGN.md §3, device-agnostic rule), so the same code saves a
 * CPU or a CUDA table. Loading validates every name and shape of every group it loads before it
 * overwrites anything. This file does not decide when or what a training run saves. */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grove/checkpoint.h"
#include "grove/params.h"

/* One checkpoint group per flat buffer: which view of a gv_param it holds. */
typedef enum { PART_VALUES, PART_OPTIM, PART_EMA } part_kind;
static const struct {
    const char *group;
    size_t view; /* offsetof(gv_param, <view>) */
    part_kind kind;
} parts[] = {
    {GV_CKPT_PARAMS, offsetof(gv_param, value), PART_VALUES},
    {GV_CKPT_OPTIM_M, offsetof(gv_param, adam_m), PART_OPTIM},
    {GV_CKPT_OPTIM_V, offsetof(gv_param, adam_v), PART_OPTIM},
    {GV_CKPT_EMA, offsetof(gv_param, ema), PART_EMA},
};
#define NPARTS ((int)(sizeof parts / sizeof parts[0]))

/* The flat buffer of gv_params behind each part, in the order of `parts`. */
static const size_t flat_offset[] = {offsetof(gv_params, values), offsetof(gv_params, adam_m),
                                     offsetof(gv_params, adam_v), offsetof(gv_params, ema)};

static int part_selected(int i, int with_optim, int with_ema) {
    return parts[i].kind == PART_VALUES || (parts[i].kind == PART_OPTIM && with_optim) ||
           (parts[i].kind == PART_EMA && with_ema);
}

static float *param_view(const gv_param *p, int part) {
    return *(float *const *)((const char *)p + parts[part].view);
}

/* Checks shared by save and load; *buf receives a host buffer for the largest parameter. */
static gv_status prepare(const gv_params *ps, int with_ema, const char *what, const char *file,
                         float **buf) {
    *buf = NULL;
    if (!ps->allocated || !ps->backend)
        return GV_ERROR(GV_ERR_INVALID, "%s: %s an unallocated parameter table", file, what);
    if (with_ema && !ps->ema)
        return GV_ERROR(GV_ERR_INVALID, "%s: %s EMA, but the parameter table has no EMA buffer",
                        file, what);
    int64_t max_numel = 1;
    for (int i = 0; i < ps->count; ++i)
        if (ps->items[i].numel > max_numel) max_numel = ps->items[i].numel;
    *buf = malloc((size_t)max_numel * sizeof(float));
    if (!*buf)
        return GV_ERROR(GV_ERR_OOM, "%s: cannot allocate %lld floats of host staging", file,
                        (long long)max_numel);
    return GV_OK;
}

gv_status gv_params_save(gv_ckpt_writer *w, const gv_params *ps, int with_optim, int with_ema) {
    const char *file = gv_ckpt_writer_temp_path(w);
    float *buf;
    GV_TRY(prepare(ps, with_ema, "saving", file, &buf));
    gv_status s = GV_OK;
    for (int part = 0; part < NPARTS && s == GV_OK; ++part) {
        if (!part_selected(part, with_optim, with_ema)) continue;
        for (int i = 0; i < ps->count && s == GV_OK; ++i) {
            const gv_param *p = &ps->items[i];
            s = ps->backend->copy_to_host(buf, param_view(p, part),
                                          (size_t)p->numel * sizeof(float));
            if (s == GV_OK) s = gv_ckpt_write_tensor(w, parts[part].group, p->name, &p->shape, buf);
        }
    }
    free(buf);
    GV_TRY(s);
    uint64_t hash;
    GV_TRY(gv_params_hash(ps, &hash));
    char hex[17];
    snprintf(hex, sizeof hex, "%016" PRIx64, hash);
    GV_TRY(gv_ckpt_put_str(w, GV_CKPT_META, "model_hash", hex));
    return gv_ckpt_put_i64(w, GV_CKPT_META, "param_count", ps->count);
}

/* Appends ", name" to a bounded one-line list; counts what did not fit. */
static void list_add(char *list, size_t len, int *shown, int *total, const char *name) {
    enum { MAX_SHOWN = 4 };
    if (*shown < MAX_SHOWN) {
        size_t at = strlen(list);
        snprintf(list + at, len - at, "%s%s", *shown ? ", " : "", name);
        (*shown)++;
    }
    (*total)++;
}

static int in_table(const gv_params *ps, const char *name) {
    for (int i = 0; i < ps->count; ++i)
        if (strcmp(ps->items[i].name, name) == 0) return 1;
    return 0;
}

/* Names of /<group> must be exactly the declared ones, with the declared shapes. */
static gv_status validate_group(gv_ckpt_reader *r, const gv_params *ps, const char *group) {
    char **names;
    int count;
    GV_TRY(gv_ckpt_list(r, group, &names, &count));
    char missing[512] = "", extra[512] = "";
    int n_missing = 0, n_extra = 0, shown_missing = 0, shown_extra = 0;
    for (int i = 0; i < count; ++i)
        if (!in_table(ps, names[i]))
            list_add(extra, sizeof extra, &shown_extra, &n_extra, names[i]);
    gv_ckpt_names_free(names, count);
    for (int i = 0; i < ps->count; ++i)
        if (!gv_ckpt_has_tensor(r, group, ps->items[i].name))
            list_add(missing, sizeof missing, &shown_missing, &n_missing, ps->items[i].name);
    if (n_missing || n_extra)
        return GV_ERROR(GV_ERR_FORMAT,
                        "%s: /%s does not match the model: %d missing (%s%s), %d unexpected "
                        "(%s%s)",
                        gv_ckpt_path(r), group, n_missing, missing,
                        n_missing > shown_missing ? ", ..." : "", n_extra, extra,
                        n_extra > shown_extra ? ", ..." : "");
    for (int i = 0; i < ps->count; ++i) {
        const gv_param *p = &ps->items[i];
        gv_shape found;
        GV_TRY(gv_ckpt_tensor_shape(r, group, p->name, &found));
        if (!gv_shape_equal(&found, &p->shape)) {
            char e[128], f[128];
            return GV_ERROR(GV_ERR_FORMAT, "%s: /%s/%s: expected shape %s, found %s",
                            gv_ckpt_path(r), group, p->name, gv_shape_str(&p->shape, e, sizeof e),
                            gv_shape_str(&found, f, sizeof f));
        }
    }
    return GV_OK;
}

/* `values` is a host copy of the /params flat buffer as it would be loaded. */
static gv_status check_hash(gv_ckpt_reader *r, const gv_params *ps, const float *values) {
    if (!gv_ckpt_has_key(r, GV_CKPT_META, "model_hash")) return GV_OK;
    char *stored;
    GV_TRY(gv_ckpt_get_str(r, GV_CKPT_META, "model_hash", &stored));
    uint64_t hash;
    gv_status s = gv_params_hash_host(ps, values, &hash);
    char hex[17];
    snprintf(hex, sizeof hex, "%016" PRIx64, hash);
    if (s == GV_OK && strcmp(stored, hex) != 0)
        s = GV_ERROR(GV_ERR_FORMAT,
                     "%s: loaded parameters hash to %s but /meta model_hash is %s (corrupt file?)",
                     gv_ckpt_path(r), hex, stored);
    free(stored);
    return s;
}

gv_status gv_params_load(gv_ckpt_reader *r, gv_params *ps, int with_optim, int with_ema) {
    for (int part = 0; part < NPARTS; ++part)
        if (part_selected(part, with_optim, with_ema))
            GV_TRY(validate_group(r, ps, parts[part].group));
    float *buf;
    GV_TRY(prepare(ps, with_ema, "loading into", gv_ckpt_path(r), &buf));
    free(buf);
    /* Stage every selected group as a host copy of its flat buffer, check the model hash, and only
       then overwrite the table: a read error or a hash mismatch leaves it untouched. */
    float *staged[NPARTS] = {0};
    size_t bytes = (size_t)ps->total * sizeof(float);
    gv_status s = GV_OK;
    for (int part = 0; part < NPARTS && s == GV_OK; ++part) {
        if (!part_selected(part, with_optim, with_ema)) continue;
        staged[part] = calloc(ps->total > 0 ? (size_t)ps->total : 1, sizeof(float));
        if (!staged[part]) {
            s = GV_ERROR(GV_ERR_OOM, "%s: cannot allocate %zu bytes of host staging",
                         gv_ckpt_path(r), bytes);
            break;
        }
        for (int i = 0; i < ps->count && s == GV_OK; ++i) {
            const gv_param *p = &ps->items[i];
            s = gv_ckpt_read_tensor(r, parts[part].group, p->name, &p->shape,
                                    staged[part] + p->offset);
        }
    }
    if (s == GV_OK) s = check_hash(r, ps, staged[0]);
    for (int part = 0; part < NPARTS && s == GV_OK; ++part) {
        if (!staged[part]) continue;
        float *dst = *(float **)((char *)ps + flat_offset[part]);
        s = ps->backend->copy_from_host(dst, staged[part], bytes);
    }
    for (int part = 0; part < NPARTS; ++part) free(staged[part]);
    return s;
}
