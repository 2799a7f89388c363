/* Fashion-MNIST from the gzipped IDX files of Debian's dataset-fashion-mnist (DESIGN.md §6).
 *
 * IDX (big-endian): images = magic 2051, count, rows, cols, then count*rows*cols bytes; labels =
 * magic 2049, count, then count bytes. Both files of a split must agree on the count; the official
 * counts (60,000 train, 10,000 t10k), 28 x 28 images and labels < 10 are required, and nothing may
 * follow the data. Files are read with zlib's gzopen/gzread; every zlib call is checked and a
 * failure names the file. The official split is kept in file order (split_seed 0, source_index =
 * position in the IDX file). This file does not write HDF5 (dataset.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "grove/dataset.h"

#define FASHION_CLASSES 10
#define FASHION_SIDE 28
#define IDX_IMAGES_MAGIC 2051u
#define IDX_LABELS_MAGIC 2049u

static const char *const fashion_class_names[FASHION_CLASSES] = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

static const char *gz_reason(gzFile f) {
    int errnum = 0;
    const char *m = gzerror(f, &errnum);
    if (errnum == Z_ERRNO) return strerror(errno);
    return m && m[0] ? m : "unexpected end of file";
}

/* Read exactly n bytes (gzread takes an unsigned int count: read in pieces). */
static gv_status gz_read_exact(gzFile f, const char *path, void *buf, size_t n, const char *what) {
    unsigned char *p = buf;
    size_t done = 0;
    while (done < n) {
        size_t want = n - done > (1u << 30) ? (1u << 30) : n - done;
        int got = gzread(f, p + done, (unsigned)want);
        if (got < 0) return GV_ERROR(GV_ERR_FORMAT, "%s: cannot read %s (%s)", path, what, gz_reason(f));
        if (got == 0)
            return GV_ERROR(GV_ERR_FORMAT, "%s: truncated: %zu of %zu bytes of %s (%s)", path, done,
                            n, what, gz_reason(f));
        done += (size_t)got;
    }
    return GV_OK;
}

static uint32_t be32(const unsigned char *b) {
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | (uint32_t)b[3];
}

/* Read one IDX file: header (magic, count[, rows, cols]) checked against the expectations, then
   `count * item` bytes into dst (exactly), then end of file. */
static gv_status read_idx(const char *dir, const char *name, uint32_t magic, uint32_t count,
                          uint8_t *dst) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    const int is_images = magic == IDX_IMAGES_MAGIC;
    gzFile f = gzopen(path, "rb");
    if (!f)
        return GV_ERROR(GV_ERR_IO, "%s: cannot open (%s)%s", path,
                        errno ? strerror(errno) : "out of memory",
                        errno == ENOENT ? "; install Debian's dataset-fashion-mnist (scripts/setup.sh)"
                                        : "");
    unsigned char hdr[16];
    size_t hlen = is_images ? 16 : 8;
    gv_status s = gz_read_exact(f, path, hdr, hlen, "the IDX header");
    if (s == GV_OK && be32(hdr) != magic)
        s = GV_ERROR(GV_ERR_FORMAT, "%s: bad magic number %u (expected %u for IDX %s)", path,
                     be32(hdr), magic, is_images ? "images" : "labels");
    if (s == GV_OK && be32(hdr + 4) != count)
        s = GV_ERROR(GV_ERR_FORMAT, "%s: %u items, expected %u", path, be32(hdr + 4), count);
    if (s == GV_OK && is_images && (be32(hdr + 8) != FASHION_SIDE || be32(hdr + 12) != FASHION_SIDE))
        s = GV_ERROR(GV_ERR_FORMAT, "%s: images are %u x %u, expected %d x %d", path, be32(hdr + 8),
                     be32(hdr + 12), FASHION_SIDE, FASHION_SIDE);
    size_t item = is_images ? (size_t)FASHION_SIDE * FASHION_SIDE : 1;
    if (s == GV_OK) s = gz_read_exact(f, path, dst, (size_t)count * item, "the data");
    if (s == GV_OK) {
        unsigned char extra;
        int got = gzread(f, &extra, 1);
        if (got < 0)
            s = GV_ERROR(GV_ERR_FORMAT, "%s: cannot read (%s)", path, gz_reason(f));
        else if (got > 0)
            s = GV_ERROR(GV_ERR_FORMAT, "%s: trailing bytes after %u items", path, count);
    }
    if (s == GV_OK && !is_images)
        for (uint32_t i = 0; i < count; ++i)
            if (dst[i] >= FASHION_CLASSES) {
                s = GV_ERROR(GV_ERR_FORMAT, "%s: label %u of item %u is not below %d", path, dst[i],
                             i, FASHION_CLASSES);
                break;
            }
    int rc = gzclose(f);
    if (rc != Z_OK && s == GV_OK)
        s = GV_ERROR(GV_ERR_FORMAT, "%s: gzclose failed (%s)", path,
                     rc == Z_BUF_ERROR ? "truncated gzip stream" : rc == Z_ERRNO ? strerror(errno)
                                                                             : "corrupt gzip stream");
    return s;
}

gv_status gv_dataset_from_fashion_idx(const char *dir, gv_dataset *ds) {
    static const struct {
        const char *images, *labels;
        uint32_t count;
    } files[2] = {{"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", 60000},
                  {"t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", 10000}};
    GV_TRY(gv_dataset_alloc(ds, GV_DATASET_FASHION, files[0].count, files[1].count, 1, FASHION_SIDE,
                            FASHION_SIDE));
    gv_status s = GV_OK;
    uint8_t *labels8 = malloc(files[0].count);
    if (!labels8) s = GV_ERROR(GV_ERR_OOM, "%s: out of memory", dir);
    for (int k = 0; k < 2 && s == GV_OK; ++k) {
        const gv_dataset_split *sp = k == 0 ? &ds->train : &ds->test;
        int64_t row0 = k == 0 ? 0 : ds->n_train;
        s = read_idx(dir, files[k].images, IDX_IMAGES_MAGIC, files[k].count, (uint8_t *)sp->images);
        if (s == GV_OK) s = read_idx(dir, files[k].labels, IDX_LABELS_MAGIC, files[k].count, labels8);
        for (uint32_t i = 0; s == GV_OK && i < files[k].count; ++i) {
            ds->labels[row0 + i] = labels8[i];
            ds->source_index[row0 + i] = (int32_t)i;
        }
    }
    free(labels8);
    if (s != GV_OK) {
        gv_dataset_free(ds);
        return s;
    }
    ds->n_classes = FASHION_CLASSES;
    for (int c = 0; c < FASHION_CLASSES; ++c)
        snprintf(ds->class_names[c], GV_DATASET_NAME_MAX, "%s", fashion_class_names[c]);
    snprintf(ds->source, sizeof ds->source, "Debian dataset-fashion-mnist: {train,t10k}-{images-"
             "idx3,labels-idx1}-ubyte.gz; source_index = position in the IDX file");
    snprintf(ds->split, sizeof ds->split, "official: train = train-*.gz (60,000), test = t10k-*.gz "
             "(10,000), file order");
    return GV_OK;
}
