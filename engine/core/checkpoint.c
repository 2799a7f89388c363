/* HDF5 checkpoints: the atomic writer and the checked reader (see checkpoint.h for the layout).
 *
 * Every HDF5 call is checked. HDF5's own error printing is switched off; a failure becomes one
 * grove message naming the file and the dataset or key, with the innermost HDF5 error description
 * as the reason. This file knows nothing about parameter tables (checkpoint_params.c) or about
 * which values a training run stores in /state. */
#include "grove/checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hdf5.h>

#include "grove/version.h"

struct gv_ckpt_writer {
    char *path;      /* final destination          */
    char *tmp;       /* "<path>.tmp-<pid>"         */
    hid_t file;
    long datasets;   /* dataset writes so far (test hook) */
    long kill_after; /* GROVE_TEST_CKPT_KILL_AFTER: -1 off, 0 = before rename, k > 0 = datasets */
};

struct gv_ckpt_reader {
    char *path;
    hid_t file;
};

static const char *const section_group[GV_CKPT_SECTION_COUNT] = {
    [GV_CKPT_STATE] = "/state",
    [GV_CKPT_META] = "/meta",
};

/* ---- HDF5 error plumbing ------------------------------------------------------------------- */

static void h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

typedef struct {
    char *buf;
    size_t len;
    int taken;
} h5_reason_walk;

static herr_t h5_reason_cb(unsigned n, const H5E_error2_t *e, void *data) {
    (void)n;
    h5_reason_walk *w = data;
    if (!w->taken && e->desc && e->desc[0]) {
        snprintf(w->buf, w->len, "%s", e->desc);
        w->taken = 1;
    }
    return 0;
}

/* The innermost (most specific) description on the current HDF5 error stack. */
static const char *h5_reason(char *buf, size_t len) {
    h5_reason_walk w = {buf, len, 0};
    snprintf(buf, len, "HDF5 error");
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, h5_reason_cb, &w);
    H5Eclear2(H5E_DEFAULT);
    return buf;
}

#define GV_H5_FAIL(file, fmt, ...)                                                                 \
    do {                                                                                           \
        char h5r_[256];                                                                            \
        return GV_ERROR(GV_ERR_IO, "%s: " fmt " (%s)", (file), __VA_ARGS__,                        \
                        h5_reason(h5r_, sizeof h5r_));                                             \
    } while (0)

/* File access: closing the file closes every object still open in it. */
static hid_t strong_close_fapl(void) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl >= 0 && H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) < 0) {
        H5Pclose(fapl);
        return -1;
    }
    return fapl;
}

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* 1 when every component of the absolute `path` exists as a link, else 0. */
static int h5_path_exists(hid_t file, const char *path) {
    char buf[1024];
    if (strlen(path) >= sizeof buf) return 0;
    strcpy(buf, path);
    for (char *p = buf + 1;; ++p) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            htri_t e = H5Lexists(file, buf, H5P_DEFAULT);
            *p = c;
            if (e <= 0) {
                H5Eclear2(H5E_DEFAULT);
                return 0;
            }
            if (c == '\0') return 1;
        }
    }
}

static gv_status tensor_path(char *buf, size_t len, const char *group, const char *name) {
    if (!group || !name || !name[0] || strchr(name, '/'))
        return GV_ERROR(GV_ERR_INVALID, "checkpoint: bad dataset name '%s' in group '%s'",
                        name ? name : "(null)", group ? group : "(null)");
    int n = snprintf(buf, len, "/%s/%s", group[0] == '/' ? group + 1 : group, name);
    if (n < 0 || (size_t)n >= len)
        return GV_ERROR(GV_ERR_INVALID, "checkpoint: dataset name too long: %s/%s", group, name);
    return GV_OK;
}

static gv_status check_key(const char *key) {
    if (!key || !key[0] || strchr(key, '/'))
        return GV_ERROR(GV_ERR_INVALID, "checkpoint: bad key '%s'", key ? key : "(null)");
    return GV_OK;
}

/* ---- writer -------------------------------------------------------------------------------- */

/* Split "<dir>/<base>"; dir "." when there is no slash. */
static void split_path(const char *path, char *dir, size_t dlen, const char **base) {
    const char *slash = strrchr(path, '/');
    if (!slash) {
        snprintf(dir, dlen, ".");
        *base = path;
    } else if (slash == path) {
        snprintf(dir, dlen, "/");
        *base = slash + 1;
    } else {
        snprintf(dir, dlen, "%.*s", (int)(slash - path), path);
        *base = slash + 1;
    }
}

/* Delete "<base>.tmp-<pid>" files next to `path` whose writer process no longer exists. */
static void remove_stale_temps(const char *path) {
    char dir[4096];
    const char *base;
    split_path(path, dir, sizeof dir, &base);
    size_t blen = strlen(base);
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *n = e->d_name;
        if (strncmp(n, base, blen) != 0 || strncmp(n + blen, ".tmp-", 5) != 0) continue;
        const char *digits = n + blen + 5;
        char *end;
        long pid = strtol(digits, &end, 10);
        if (end == digits || *end != '\0' || pid <= 0 || pid == (long)getpid()) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue; /* alive, or not ours to judge */
        char full[4096 + 256];
        snprintf(full, sizeof full, "%s/%s", dir, n);
        unlink(full);
    }
    closedir(d);
}

static long parse_kill_hook(void) {
    const char *v = getenv("GROVE_TEST_CKPT_KILL_AFTER");
    if (!v || !v[0]) return -1;
    if (strcmp(v, "rename") == 0) return 0;
    long k = strtol(v, NULL, 10);
    return k > 0 ? k : -1;
}

static void writer_free(gv_ckpt_writer *w) {
    free(w->path);
    free(w->tmp);
    free(w);
}

gv_status gv_ckpt_writer_begin(const char *path, gv_ckpt_writer **out) {
    *out = NULL;
    h5_quiet();
    gv_ckpt_writer *w = calloc(1, sizeof *w);
    size_t tlen = strlen(path) + 32;
    if (!w || !(w->path = dup_str(path)) || !(w->tmp = malloc(tlen))) {
        if (w) writer_free(w);
        return GV_ERROR(GV_ERR_OOM, "%s: cannot allocate a checkpoint writer", path);
    }
    snprintf(w->tmp, tlen, "%s.tmp-%ld", path, (long)getpid());
    w->kill_after = parse_kill_hook();
    remove_stale_temps(path);

    hid_t fapl = strong_close_fapl();
    if (fapl < 0) {
        writer_free(w);
        return GV_ERROR(GV_ERR_IO, "%s: cannot set up HDF5 file access", path);
    }
    w->file = H5Fcreate(w->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    if (w->file < 0) {
        char r[256];
        gv_status s = GV_ERROR(GV_ERR_IO, "%s: cannot create temp checkpoint %s (%s)", path,
                               w->tmp, h5_reason(r, sizeof r));
        H5Pclose(fapl);
        writer_free(w);
        return s;
    }
    H5Pclose(fapl);
    gv_status s = gv_ckpt_put_i64(w, GV_CKPT_META, "grove_format", GV_CKPT_FORMAT);
    if (s == GV_OK) s = gv_ckpt_put_str(w, GV_CKPT_META, "grove_version", GROVE_VERSION);
    if (s == GV_OK) s = gv_ckpt_put_str(w, GV_CKPT_META, "git_commit", GROVE_GIT_COMMIT);
    if (s != GV_OK) {
        gv_ckpt_writer_abort(w);
        return s;
    }
    *out = w;
    return GV_OK;
}

const char *gv_ckpt_writer_temp_path(const gv_ckpt_writer *w) { return w->tmp; }

static void count_dataset(gv_ckpt_writer *w) {
    w->datasets++;
    if (w->kill_after > 0 && w->datasets >= w->kill_after) raise(SIGKILL);
}

/* Open the group at absolute `gpath`, creating it and its parents as needed. */
static gv_status writer_group(gv_ckpt_writer *w, const char *gpath, hid_t *out) {
    char buf[1024];
    if (snprintf(buf, sizeof buf, "%s", gpath) >= (int)sizeof buf)
        return GV_ERROR(GV_ERR_INVALID, "%s: group path too long: %s", w->path, gpath);
    for (char *p = buf + 1;; ++p) {
        if (*p != '/' && *p != '\0') continue;
        char c = *p;
        *p = '\0';
        htri_t e = H5Lexists(w->file, buf, H5P_DEFAULT);
        if (e < 0) GV_H5_FAIL(w->path, "cannot look up group %s", buf);
        if (e == 0) {
            hid_t g = H5Gcreate2(w->file, buf, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
            if (g < 0) GV_H5_FAIL(w->path, "cannot create group %s", buf);
            H5Gclose(g);
        }
        *p = c;
        if (c == '\0') break;
    }
    *out = H5Gopen2(w->file, gpath, H5P_DEFAULT);
    if (*out < 0) GV_H5_FAIL(w->path, "cannot open group %s", gpath);
    return GV_OK;
}

/* One dataset `name` in `parent` of `rank`/`dims` from host memory of `mem_type`. */
static gv_status write_dataset(gv_ckpt_writer *w, hid_t parent, const char *where,
                               const char *name, hid_t file_type, hid_t mem_type, int rank,
                               const hsize_t *dims, const void *host) {
    htri_t e = H5Lexists(parent, name, H5P_DEFAULT);
    if (e < 0) GV_H5_FAIL(w->path, "cannot look up %s", where);
    if (e > 0) return GV_ERROR(GV_ERR_INVALID, "%s: %s written twice", w->path, where);
    hid_t space = rank == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(rank, dims, NULL);
    if (space < 0) GV_H5_FAIL(w->path, "cannot create the dataspace of %s", where);
    hid_t d = H5Dcreate2(parent, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    const char *doing = "create";
    herr_t rc = d < 0 ? -1 : H5Dwrite(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, host);
    if (rc < 0) {
        char r[256];
        h5_reason(r, sizeof r); /* before any other HDF5 call clears the error stack */
        if (d >= 0) {
            doing = "write";
            H5Dclose(d);
        }
        H5Sclose(space);
        return GV_ERROR(GV_ERR_IO, "%s: cannot %s dataset %s (%s)", w->path, doing, where, r);
    }
    H5Sclose(space);
    if (H5Dclose(d) < 0) GV_H5_FAIL(w->path, "cannot close dataset %s", where);
    count_dataset(w);
    return GV_OK;
}

gv_status gv_ckpt_write_tensor(gv_ckpt_writer *w, const char *group, const char *name,
                               const gv_shape *shape, const float *host) {
    char where[1024], gpath[1024];
    GV_TRY(tensor_path(where, sizeof where, group, name));
    snprintf(gpath, sizeof gpath, "%.*s", (int)(strrchr(where, '/') - where), where);
    if (shape->rank < 0 || shape->rank > GV_MAX_DIMS)
        return GV_ERROR(GV_ERR_INVALID, "%s: %s has rank %d", w->path, where, shape->rank);
    hsize_t dims[GV_MAX_DIMS];
    for (int i = 0; i < shape->rank; ++i) {
        if (shape->d[i] < 0)
            return GV_ERROR(GV_ERR_INVALID, "%s: %s has a negative dimension", w->path, where);
        dims[i] = (hsize_t)shape->d[i];
    }
    hid_t g;
    GV_TRY(writer_group(w, gpath, &g));
    gv_status s = write_dataset(w, g, where, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, shape->rank,
                                dims, host);
    H5Gclose(g);
    return s;
}

/* Scalar attribute `key` of the section group. `value` points at one element of `mem_type`. */
static gv_status put_attr(gv_ckpt_writer *w, const char *gpath, const char *key, hid_t file_type,
                          hid_t mem_type, const void *value) {
    GV_TRY(check_key(key));
    hid_t g;
    GV_TRY(writer_group(w, gpath, &g));
    gv_status s = GV_OK;
    hid_t space = -1, a = -1;
    htri_t e = H5Aexists(g, key);
    if (e != 0) {
        s = e < 0 ? GV_ERROR(GV_ERR_IO, "%s: cannot look up %s attribute '%s'", w->path, gpath, key)
                  : GV_ERROR(GV_ERR_INVALID, "%s: %s key '%s' written twice", w->path, gpath, key);
        goto done;
    }
    char r[256];
    space = H5Screate(H5S_SCALAR);
    if (space >= 0) a = H5Acreate2(g, key, file_type, space, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0 || H5Awrite(a, mem_type, value) < 0)
        s = GV_ERROR(GV_ERR_IO, "%s: cannot write %s attribute '%s' (%s)", w->path, gpath, key,
                     h5_reason(r, sizeof r));
done:
    if (a >= 0) H5Aclose(a);
    if (space >= 0) H5Sclose(space);
    H5Gclose(g);
    return s;
}

/* The file-and-memory type of a variable-length UTF-8 string (h5py reads it as str). */
static hid_t vlen_string_type(void) {
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0) return t;
    if (H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0) {
        H5Tclose(t);
        return -1;
    }
    return t;
}

static gv_status check_section(gv_ckpt_section s) {
    if ((unsigned)s >= GV_CKPT_SECTION_COUNT)
        return GV_ERROR(GV_ERR_INVALID, "checkpoint: unknown section %d", (int)s);
    return GV_OK;
}

gv_status gv_ckpt_put_i64(gv_ckpt_writer *w, gv_ckpt_section s, const char *key, int64_t v) {
    GV_TRY(check_section(s));
    return put_attr(w, section_group[s], key, H5T_STD_I64LE, H5T_NATIVE_INT64, &v);
}

gv_status gv_ckpt_put_f64(gv_ckpt_writer *w, gv_ckpt_section s, const char *key, double v) {
    GV_TRY(check_section(s));
    return put_attr(w, section_group[s], key, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &v);
}

static gv_status put_string(gv_ckpt_writer *w, const char *gpath, const char *key, const char *v) {
    hid_t t = vlen_string_type();
    if (t < 0) GV_H5_FAIL(w->path, "cannot make a string type for '%s'", key);
    gv_status s = put_attr(w, gpath, key, t, t, &v);
    H5Tclose(t);
    return s;
}

gv_status gv_ckpt_put_str(gv_ckpt_writer *w, gv_ckpt_section s, const char *key, const char *v) {
    GV_TRY(check_section(s));
    return put_string(w, section_group[s], key, v ? v : "");
}

gv_status gv_ckpt_put_config(gv_ckpt_writer *w, const char *yaml) {
    return put_string(w, "/config", "yaml", yaml ? yaml : "");
}

static gv_status put_array(gv_ckpt_writer *w, gv_ckpt_section s, const char *key,
                           hid_t file_type, hid_t mem_type, const void *v, int64_t n) {
    GV_TRY(check_section(s));
    GV_TRY(check_key(key));
    if (n < 0) return GV_ERROR(GV_ERR_INVALID, "%s: array '%s' has length %lld", w->path, key,
                               (long long)n);
    char where[1024];
    snprintf(where, sizeof where, "%s/%s", section_group[s], key);
    hid_t g;
    GV_TRY(writer_group(w, section_group[s], &g));
    hsize_t dim = (hsize_t)n;
    gv_status st = write_dataset(w, g, where, key, file_type, mem_type, 1, &dim, v);
    H5Gclose(g);
    return st;
}

gv_status gv_ckpt_put_f32s(gv_ckpt_writer *w, gv_ckpt_section s, const char *key, const float *v,
                           int64_t n) {
    return put_array(w, s, key, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, v, n);
}

gv_status gv_ckpt_put_i64s(gv_ckpt_writer *w, gv_ckpt_section s, const char *key,
                           const int64_t *v, int64_t n) {
    return put_array(w, s, key, H5T_STD_I64LE, H5T_NATIVE_INT64, v, n);
}

static gv_status fsync_path(const char *p, int flags, const char *what, const char *ckpt) {
    int fd = open(p, flags);
    if (fd < 0)
        return GV_ERROR(GV_ERR_IO, "%s: cannot open %s %s for fsync (%s)", ckpt, what, p,
                        strerror(errno));
    int rc = fsync(fd);
    int err = errno;
    close(fd);
    if (rc != 0)
        return GV_ERROR(GV_ERR_IO, "%s: fsync of %s %s failed (%s)", ckpt, what, p, strerror(err));
    return GV_OK;
}

gv_status gv_ckpt_writer_commit(gv_ckpt_writer *w) {
    char r[256];
    gv_status s = GV_OK;
    if (H5Fclose(w->file) < 0)
        s = GV_ERROR(GV_ERR_IO, "%s: cannot close temp checkpoint %s (%s)", w->path, w->tmp,
                     h5_reason(r, sizeof r));
    w->file = -1;
    if (s == GV_OK) s = fsync_path(w->tmp, O_RDONLY, "temp file", w->path);
    if (s == GV_OK && w->kill_after == 0) raise(SIGKILL);
    if (s == GV_OK && rename(w->tmp, w->path) != 0)
        s = GV_ERROR(GV_ERR_IO, "%s: cannot rename %s over it (%s)", w->path, w->tmp,
                     strerror(errno));
    if (s != GV_OK) {
        unlink(w->tmp);
        writer_free(w);
        return s;
    }
    char dir[4096];
    const char *base;
    split_path(w->path, dir, sizeof dir, &base);
    s = fsync_path(dir, O_RDONLY | O_DIRECTORY, "directory", w->path);
    writer_free(w);
    return s;
}

void gv_ckpt_writer_abort(gv_ckpt_writer *w) {
    if (!w) return;
    if (w->file >= 0) {
        H5Fclose(w->file);
        H5Eclear2(H5E_DEFAULT);
    }
    unlink(w->tmp);
    writer_free(w);
}

/* ---- reader -------------------------------------------------------------------------------- */

static gv_status not_a_checkpoint(const char *path, const char *reason) {
    return GV_ERROR(GV_ERR_FORMAT, "%s: not a grove checkpoint (%s)", path, reason);
}

gv_status gv_ckpt_open(const char *path, gv_ckpt_reader **out) {
    *out = NULL;
    h5_quiet();
    struct stat st;
    if (stat(path, &st) != 0)
        return GV_ERROR(GV_ERR_IO, "%s: cannot open checkpoint (%s)", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return not_a_checkpoint(path, "not a regular file");
    htri_t is = H5Fis_hdf5(path);
    H5Eclear2(H5E_DEFAULT);
    if (is <= 0) return not_a_checkpoint(path, st.st_size == 0 ? "empty file" : "not an HDF5 file");

    hid_t fapl = strong_close_fapl();
    if (fapl < 0) return GV_ERROR(GV_ERR_IO, "%s: cannot set up HDF5 file access", path);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    if (f < 0) {
        char r[256], why[320];
        snprintf(why, sizeof why, "truncated or corrupt HDF5: %s", h5_reason(r, sizeof r));
        H5Pclose(fapl);
        return not_a_checkpoint(path, why);
    }
    H5Pclose(fapl);
    gv_ckpt_reader *rd = calloc(1, sizeof *rd);
    if (!rd || !(rd->path = dup_str(path))) {
        free(rd);
        H5Fclose(f);
        return GV_ERROR(GV_ERR_OOM, "%s: cannot allocate a checkpoint reader", path);
    }
    rd->file = f;
    int64_t format = 0;
    gv_status s = GV_OK;
    if (!gv_ckpt_has_key(rd, GV_CKPT_META, "grove_format"))
        s = not_a_checkpoint(path, "HDF5 file without /meta attribute grove_format");
    else if (gv_ckpt_get_i64(rd, GV_CKPT_META, "grove_format", &format) != GV_OK)
        s = not_a_checkpoint(path, "unreadable /meta attribute grove_format");
    else if (format < 1 || format > GV_CKPT_FORMAT)
        s = GV_ERROR(GV_ERR_FORMAT,
                     "%s: checkpoint format %lld is not supported by this grove (format %d)",
                     path, (long long)format, GV_CKPT_FORMAT);
    if (s != GV_OK) {
        gv_ckpt_close(rd);
        return s;
    }
    *out = rd;
    return GV_OK;
}

void gv_ckpt_close(gv_ckpt_reader *r) {
    if (!r) return;
    if (r->file >= 0) H5Fclose(r->file);
    H5Eclear2(H5E_DEFAULT);
    free(r->path);
    free(r);
}

const char *gv_ckpt_path(const gv_ckpt_reader *r) { return r->path; }

int gv_ckpt_has_tensor(gv_ckpt_reader *r, const char *group, const char *name) {
    char where[1024];
    if (tensor_path(where, sizeof where, group, name) != GV_OK) {
        gv_clear_error();
        return 0;
    }
    if (!h5_path_exists(r->file, where)) return 0;
    hid_t d = H5Dopen2(r->file, where, H5P_DEFAULT);
    if (d < 0) {
        H5Eclear2(H5E_DEFAULT);
        return 0;
    }
    H5Dclose(d);
    return 1;
}

/* Open dataset `where` (absolute); missing -> GV_ERR_FORMAT naming it. */
static gv_status open_dataset(gv_ckpt_reader *r, const char *where, hid_t *out) {
    if (!h5_path_exists(r->file, where))
        return GV_ERROR(GV_ERR_FORMAT, "%s: missing dataset %s", r->path, where);
    *out = H5Dopen2(r->file, where, H5P_DEFAULT);
    if (*out < 0) {
        char rs[256];
        return GV_ERROR(GV_ERR_FORMAT, "%s: %s is not a readable dataset (%s)", r->path, where,
                        h5_reason(rs, sizeof rs));
    }
    return GV_OK;
}

/* Shape of an open dataset. */
static gv_status dataset_shape(gv_ckpt_reader *r, hid_t d, const char *where, gv_shape *out) {
    hid_t space = H5Dget_space(d);
    if (space < 0) GV_H5_FAIL(r->path, "cannot read the dataspace of %s", where);
    int rank = H5Sget_simple_extent_ndims(space);
    hsize_t dims[GV_MAX_DIMS];
    if (rank < 0 || rank > GV_MAX_DIMS) {
        H5Sclose(space);
        return GV_ERROR(GV_ERR_FORMAT, "%s: %s has unsupported rank %d", r->path, where, rank);
    }
    if (H5Sget_simple_extent_dims(space, dims, NULL) < 0) {
        H5Sclose(space);
        return GV_ERROR(GV_ERR_FORMAT, "%s: cannot read the shape of %s", r->path, where);
    }
    H5Sclose(space);
    memset(out, 0, sizeof *out);
    out->rank = rank;
    for (int i = 0; i < rank; ++i) out->d[i] = (int64_t)dims[i];
    return GV_OK;
}

/* Read the whole of `where` as `mem_type` after checking its class and shape. */
static gv_status read_dataset(gv_ckpt_reader *r, const char *where, H5T_class_t want_class,
                              hid_t mem_type, const gv_shape *expected, void *host) {
    hid_t d;
    GV_TRY(open_dataset(r, where, &d));
    gv_shape found;
    gv_status s = dataset_shape(r, d, where, &found);
    hid_t t = s == GV_OK ? H5Dget_type(d) : -1;
    char rs[256];
    if (s == GV_OK && (t < 0 || H5Tget_class(t) != want_class))
        s = GV_ERROR(GV_ERR_FORMAT, "%s: %s has the wrong element type (expected %s)", r->path,
                     where, want_class == H5T_FLOAT ? "float" : "integer");
    if (s == GV_OK && !gv_shape_equal(&found, expected)) {
        char e[128], f[128];
        s = GV_ERROR(GV_ERR_FORMAT, "%s: %s: expected shape %s, found %s", r->path, where,
                     gv_shape_str(expected, e, sizeof e), gv_shape_str(&found, f, sizeof f));
    }
    if (s == GV_OK && gv_shape_numel(expected) > 0 &&
        H5Dread(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, host) < 0)
        s = GV_ERROR(GV_ERR_FORMAT, "%s: cannot read %s (%s)", r->path, where,
                     h5_reason(rs, sizeof rs));
    if (t >= 0) H5Tclose(t);
    H5Dclose(d);
    return s;
}

gv_status gv_ckpt_tensor_shape(gv_ckpt_reader *r, const char *group, const char *name,
                               gv_shape *out) {
    char where[1024];
    GV_TRY(tensor_path(where, sizeof where, group, name));
    hid_t d;
    GV_TRY(open_dataset(r, where, &d));
    gv_status s = dataset_shape(r, d, where, out);
    H5Dclose(d);
    return s;
}

gv_status gv_ckpt_read_tensor(gv_ckpt_reader *r, const char *group, const char *name,
                              const gv_shape *expected, float *host) {
    char where[1024];
    GV_TRY(tensor_path(where, sizeof where, group, name));
    return read_dataset(r, where, H5T_FLOAT, H5T_NATIVE_FLOAT, expected, host);
}

typedef struct {
    char **names;
    int count, cap;
    int oom;
} name_list;

static herr_t list_cb(hid_t g, const char *name, const H5L_info_t *info, void *data) {
    (void)g;
    (void)info;
    name_list *l = data;
    if (l->count == l->cap) {
        int cap = l->cap ? 2 * l->cap : 16;
        char **n = realloc(l->names, (size_t)cap * sizeof *n);
        if (!n) {
            l->oom = 1;
            return -1;
        }
        l->names = n;
        l->cap = cap;
    }
    if (!(l->names[l->count] = dup_str(name))) {
        l->oom = 1;
        return -1;
    }
    l->count++;
    return 0;
}

gv_status gv_ckpt_list(gv_ckpt_reader *r, const char *group, char ***names, int *count) {
    *names = NULL;
    *count = 0;
    char gpath[1024];
    snprintf(gpath, sizeof gpath, "/%s", group[0] == '/' ? group + 1 : group);
    if (!h5_path_exists(r->file, gpath)) return GV_OK;
    hid_t g = H5Gopen2(r->file, gpath, H5P_DEFAULT);
    if (g < 0) {
        char rs[256];
        return GV_ERROR(GV_ERR_FORMAT, "%s: %s is not a group (%s)", r->path, gpath,
                        h5_reason(rs, sizeof rs));
    }
    name_list l = {0};
    hsize_t idx = 0;
    herr_t rc = H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &idx, list_cb, &l);
    char rs[256];
    if (rc < 0) h5_reason(rs, sizeof rs);
    H5Gclose(g);
    if (rc < 0 || l.oom) {
        gv_ckpt_names_free(l.names, l.count);
        if (l.oom) return GV_ERROR(GV_ERR_OOM, "%s: out of memory listing %s", r->path, gpath);
        return GV_ERROR(GV_ERR_FORMAT, "%s: cannot list %s (%s)", r->path, gpath, rs);
    }
    *names = l.names;
    *count = l.count;
    return GV_OK;
}

void gv_ckpt_names_free(char **names, int count) {
    for (int i = 0; i < count; ++i) free(names[i]);
    free(names);
}

/* ---- key/value reads ----------------------------------------------------------------------- */

static int has_attr(gv_ckpt_reader *r, const char *gpath, const char *key) {
    if (!h5_path_exists(r->file, gpath)) return 0;
    htri_t e = H5Aexists_by_name(r->file, gpath, key, H5P_DEFAULT);
    if (e < 0) H5Eclear2(H5E_DEFAULT);
    return e > 0;
}

int gv_ckpt_has_key(gv_ckpt_reader *r, gv_ckpt_section s, const char *key) {
    if ((unsigned)s >= GV_CKPT_SECTION_COUNT || check_key(key) != GV_OK) {
        gv_clear_error();
        return 0;
    }
    char where[1024];
    snprintf(where, sizeof where, "%s/%s", section_group[s], key);
    return has_attr(r, section_group[s], key) || h5_path_exists(r->file, where);
}

/* Open scalar attribute `key` of `gpath` and check its class is one of `classes`. */
static gv_status open_attr(gv_ckpt_reader *r, const char *gpath, const char *key,
                           const H5T_class_t *classes, int nclasses, const char *want,
                           hid_t *attr, hid_t *type) {
    GV_TRY(check_key(key));
    if (!has_attr(r, gpath, key))
        return GV_ERROR(GV_ERR_FORMAT, "%s: missing %s attribute '%s'", r->path, gpath, key);
    *attr = H5Aopen_by_name(r->file, gpath, key, H5P_DEFAULT, H5P_DEFAULT);
    if (*attr < 0) GV_H5_FAIL(r->path, "cannot open %s attribute", gpath);
    *type = H5Aget_type(*attr);
    H5T_class_t c = *type >= 0 ? H5Tget_class(*type) : H5T_NO_CLASS;
    for (int i = 0; i < nclasses; ++i)
        if (c == classes[i]) return GV_OK;
    if (*type >= 0) H5Tclose(*type);
    H5Aclose(*attr);
    return GV_ERROR(GV_ERR_FORMAT, "%s: %s attribute '%s' is not %s", r->path, gpath, key, want);
}

static gv_status get_number(gv_ckpt_reader *r, gv_ckpt_section s, const char *key,
                            int allow_float, hid_t mem_type, void *v) {
    GV_TRY(check_section(s));
    static const H5T_class_t classes[] = {H5T_INTEGER, H5T_FLOAT};
    hid_t a, t;
    GV_TRY(open_attr(r, section_group[s], key, classes, allow_float ? 2 : 1,
                     allow_float ? "a number" : "an integer", &a, &t));
    char rs[256];
    gv_status st = GV_OK;
    if (H5Aread(a, mem_type, v) < 0)
        st = GV_ERROR(GV_ERR_FORMAT, "%s: cannot read %s attribute '%s' (%s)", r->path,
                      section_group[s], key, h5_reason(rs, sizeof rs));
    H5Tclose(t);
    H5Aclose(a);
    return st;
}

gv_status gv_ckpt_get_i64(gv_ckpt_reader *r, gv_ckpt_section s, const char *key, int64_t *v) {
    return get_number(r, s, key, 0, H5T_NATIVE_INT64, v);
}

gv_status gv_ckpt_get_f64(gv_ckpt_reader *r, gv_ckpt_section s, const char *key, double *v) {
    return get_number(r, s, key, 1, H5T_NATIVE_DOUBLE, v);
}

/* Variable-length or fixed-length string attribute -> malloc()ed copy. */
static gv_status get_string(gv_ckpt_reader *r, const char *gpath, const char *key, char **v) {
    *v = NULL;
    static const H5T_class_t classes[] = {H5T_STRING};
    hid_t a, t;
    GV_TRY(open_attr(r, gpath, key, classes, 1, "a string", &a, &t));
    char rs[256];
    gv_status st = GV_OK;
    if (H5Tis_variable_str(t) > 0) {
        hid_t mt = vlen_string_type();
        char *p = NULL;
        if (mt < 0 || H5Aread(a, mt, &p) < 0)
            st = GV_ERROR(GV_ERR_FORMAT, "%s: cannot read %s attribute '%s' (%s)", r->path, gpath,
                          key, h5_reason(rs, sizeof rs));
        else if (!(*v = dup_str(p ? p : "")))
            st = GV_ERROR(GV_ERR_OOM, "%s: out of memory reading '%s'", r->path, key);
        if (p) H5free_memory(p);
        if (mt >= 0) H5Tclose(mt);
    } else {
        size_t n = H5Tget_size(t);
        char *p = calloc(n + 1, 1);
        if (!p)
            st = GV_ERROR(GV_ERR_OOM, "%s: out of memory reading '%s'", r->path, key);
        else if (H5Aread(a, t, p) < 0) {
            st = GV_ERROR(GV_ERR_FORMAT, "%s: cannot read %s attribute '%s' (%s)", r->path, gpath,
                          key, h5_reason(rs, sizeof rs));
            free(p);
        } else
            *v = p;
    }
    H5Tclose(t);
    H5Aclose(a);
    return st;
}

gv_status gv_ckpt_get_str(gv_ckpt_reader *r, gv_ckpt_section s, const char *key, char **v) {
    *v = NULL;
    GV_TRY(check_section(s));
    return get_string(r, section_group[s], key, v);
}

gv_status gv_ckpt_get_config(gv_ckpt_reader *r, char **yaml) {
    return get_string(r, "/config", "yaml", yaml);
}

static gv_status array_where(gv_ckpt_section s, const char *key, char *buf, size_t len) {
    GV_TRY(check_section(s));
    GV_TRY(check_key(key));
    snprintf(buf, len, "%s/%s", section_group[s], key);
    return GV_OK;
}

gv_status gv_ckpt_get_len(gv_ckpt_reader *r, gv_ckpt_section s, const char *key, int64_t *n) {
    char where[1024];
    GV_TRY(array_where(s, key, where, sizeof where));
    hid_t d;
    GV_TRY(open_dataset(r, where, &d));
    gv_shape sh;
    gv_status st = dataset_shape(r, d, where, &sh);
    H5Dclose(d);
    GV_TRY(st);
    if (sh.rank != 1) return GV_ERROR(GV_ERR_FORMAT, "%s: %s is not a 1-D array", r->path, where);
    *n = sh.d[0];
    return GV_OK;
}

gv_status gv_ckpt_get_f32s(gv_ckpt_reader *r, gv_ckpt_section s, const char *key, float *v,
                           int64_t n) {
    char where[1024];
    GV_TRY(array_where(s, key, where, sizeof where));
    gv_shape want = gv_shape_make(1, &n);
    return read_dataset(r, where, H5T_FLOAT, H5T_NATIVE_FLOAT, &want, v);
}

gv_status gv_ckpt_get_i64s(gv_ckpt_reader *r, gv_ckpt_section s, const char *key, int64_t *v,
                           int64_t n) {
    char where[1024];
    GV_TRY(array_where(s, key, where, sizeof where));
    gv_shape want = gv_shape_make(1, &n);
    return read_dataset(r, where, H5T_INTEGER, H5T_NATIVE_INT64, &want, v);
}
