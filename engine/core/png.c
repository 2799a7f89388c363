/* Sample grids and PNG files (see image.h for the contracts).
 *
 * libpng reports errors by calling an error callback that must not return; ours copies libpng's
 * message into a per-call context and longjmps back to the one setjmp in write_core / read_core,
 * which turns it into a one-line gv_status naming the file. Everything those functions allocate is
 * stored in the caller's context (not in their own locals), so nothing is lost across the longjmp
 * and the caller frees it on every path. libpng warnings are dropped: library code never prints.
 *
 * Not here: alpha, 16-bit output, interlaced output, colour-space chunks. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "grove/image.h"

/* ---- grid ------------------------------------------------------------------------------------ */

static uint8_t unit_to_byte(float v) {
    /* round(clamp(v, 0, 1) * 255); written so that NaN fails both comparisons and maps to 0 */
    if (!(v > 0.0f)) return 0;
    if (!(v < 1.0f)) return 255;
    return (uint8_t)roundf(v * 255.0f);
}

gv_status gv_image_grid(const float *p, int n, int c, int h, int w, int cols, int pad,
                        uint8_t *out, int *out_h, int *out_w) {
    if (n < 1 || h < 1 || w < 1 || cols < 1 || pad < 0)
        return GV_ERROR(GV_ERR_INVALID,
                        "image grid: need n, h, w, cols >= 1 and pad >= 0 (got n=%d h=%d w=%d "
                        "cols=%d pad=%d)",
                        n, h, w, cols, pad);
    if (c != 1 && c != 3)
        return GV_ERROR(GV_ERR_INVALID, "image grid: channels must be 1 or 3 (got %d)", c);
    int rows = (n + cols - 1) / cols;
    int64_t gh = (int64_t)rows * h + (int64_t)(rows + 1) * pad;
    int64_t gw = (int64_t)cols * w + (int64_t)(cols + 1) * pad;
    if (gh > INT_MAX || gw > INT_MAX || gh * gw > INT_MAX / c)
        return GV_ERROR(GV_ERR_INVALID, "image grid: %d x %d cells of %dx%d is too large", rows,
                        cols, h, w);
    if (out_h) *out_h = (int)gh;
    if (out_w) *out_w = (int)gw;
    if (!out) return GV_OK;
    if (!p) return GV_ERROR(GV_ERR_INVALID, "image grid: no input pixels");

    memset(out, GV_IMAGE_GRID_PAD_VALUE, (size_t)(gh * gw * c));
    for (int k = 0; k < n; ++k) {
        int64_t y0 = pad + (int64_t)(k / cols) * (h + pad);
        int64_t x0 = pad + (int64_t)(k % cols) * (w + pad);
        const float *img = p + (size_t)k * c * h * w; /* (c, h, w) */
        for (int y = 0; y < h; ++y)
            for (int x = 0; x < w; ++x)
                for (int ch = 0; ch < c; ++ch)
                    out[((y0 + y) * gw + (x0 + x)) * c + ch] =
                        unit_to_byte(img[((size_t)ch * h + y) * w + x]);
    }
    return GV_OK;
}

/* ---- libpng error plumbing ------------------------------------------------------------------- */

typedef struct png_call {
    const char *path;
    char msg[256]; /* libpng's error message */
    png_structp png;
    png_infop info;
    png_bytep *rows;  /* row pointers (h) */
    png_text *ptext;  /* write: the text chunks handed to libpng */
    FILE *f;
} png_call;

static void on_png_error(png_structp png, png_const_charp msg) {
    png_call *call = (png_call *)png_get_error_ptr(png);
    snprintf(call->msg, sizeof call->msg, "%s", msg ? msg : "unknown error");
    /* keep the message one line */
    for (char *q = call->msg; *q; ++q)
        if (*q == '\n' || *q == '\r') *q = ' ';
    longjmp(png_jmpbuf(png), 1);
}

static void on_png_warning(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg; /* library code never prints; warnings (e.g. a bad ancillary CRC) are ignored */
}

/* ---- writing --------------------------------------------------------------------------------- */

static int is_ascii(const char *s) {
    for (; *s; ++s)
        if ((unsigned char)*s >= 0x80) return 0;
    return 1;
}

/* PNG spec 11.3.4.3: keyword of 1-79 Latin-1 printable characters (32-126, 161-255), no leading,
   trailing or consecutive spaces. */
static gv_status check_text_key(const char *path, const char *key, int index) {
    if (!key) return GV_ERROR(GV_ERR_INVALID, "%s: text chunk %d has no key", path, index);
    size_t len = strlen(key);
    if (len < 1 || len > 79)
        return GV_ERROR(GV_ERR_INVALID, "%s: text key \"%.40s\" must be 1-79 characters (has %zu)",
                        path, key, len);
    for (size_t i = 0; i < len; ++i) {
        unsigned char ch = (unsigned char)key[i];
        int printable = (ch >= 32 && ch <= 126) || ch >= 161;
        int bad_space = ch == ' ' && (i == 0 || i + 1 == len || key[i + 1] == ' ');
        if (!printable || bad_space)
            return GV_ERROR(GV_ERR_INVALID,
                            "%s: text key \"%s\" has a forbidden character or space at offset %zu",
                            path, key, i);
    }
    return GV_OK;
}

/* Everything between creating the libpng struct and the last byte; the only setjmp on the write
   path. Locals are not touched after the longjmp: state lives in *call. */
static gv_status write_core(png_call *call, int h, int w, int channels, int ntexts) {
    call->png = png_create_write_struct(PNG_LIBPNG_VER_STRING, call, on_png_error, on_png_warning);
    if (!call->png) return GV_ERROR(GV_ERR_OOM, "%s: cannot create a libpng writer", call->path);
    call->info = png_create_info_struct(call->png);
    if (!call->info) return GV_ERROR(GV_ERR_OOM, "%s: cannot create a libpng info", call->path);
    if (setjmp(png_jmpbuf(call->png)))
        return GV_ERROR(GV_ERR_IO, "%s: cannot write PNG (libpng: %s)", call->path, call->msg);

    png_init_io(call->png, call->f);
    png_set_IHDR(call->png, call->info, (png_uint_32)w, (png_uint_32)h, 8,
                 channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    /* Fixed encoder settings: the bytes depend only on pixels, texts and the libpng/zlib build. */
    png_set_compression_level(call->png, 9);
    png_set_compression_mem_level(call->png, 8);
    png_set_compression_strategy(call->png, Z_DEFAULT_STRATEGY);
    png_set_compression_window_bits(call->png, 15);
    png_set_filter(call->png, PNG_FILTER_TYPE_BASE, PNG_ALL_FILTERS);
    if (ntexts > 0) png_set_text(call->png, call->info, call->ptext, ntexts);
    png_write_info(call->png, call->info);
    png_write_image(call->png, call->rows);
    png_write_end(call->png, NULL); /* NULL: no chunks after IDAT (and never a tIME) */
    return GV_OK;
}

static gv_status fsync_dir_of(const char *path) {
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else if ((size_t)(slash - path) < sizeof dir)
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    else
        return GV_ERROR(GV_ERR_IO, "%s: directory name too long", path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return GV_ERROR(GV_ERR_IO, "%s: cannot open directory %s for fsync (%s)", path, dir,
                        strerror(errno));
    int rc = fsync(fd);
    int err = errno;
    close(fd);
    if (rc != 0)
        return GV_ERROR(GV_ERR_IO, "%s: fsync of directory %s failed (%s)", path, dir,
                        strerror(err));
    return GV_OK;
}

gv_status gv_png_write(const char *path, const uint8_t *pixels, int h, int w, int channels,
                       const gv_png_text *texts, int ntexts) {
    if (!path || !*path) return GV_ERROR(GV_ERR_INVALID, "PNG write: empty path");
    if (!pixels || h < 1 || w < 1 || (channels != 1 && channels != 3) || ntexts < 0 ||
        (ntexts > 0 && !texts))
        return GV_ERROR(GV_ERR_INVALID,
                        "%s: cannot write a PNG of %dx%d with %d channels and %d texts", path, h,
                        w, channels, ntexts);
    if ((int64_t)w * channels > INT_MAX || h > 0x7fffffff / 2)
        return GV_ERROR(GV_ERR_INVALID, "%s: image of %dx%d is too large for a PNG", path, h, w);
    for (int i = 0; i < ntexts; ++i) {
        GV_TRY(check_text_key(path, texts[i].key, i));
        if (!texts[i].value)
            return GV_ERROR(GV_ERR_INVALID, "%s: text \"%s\" has no value", path, texts[i].key);
    }

    png_call call = {.path = path};
    gv_status s = GV_OK;
    call.rows = malloc((size_t)h * sizeof *call.rows);
    call.ptext = calloc((size_t)(ntexts > 0 ? ntexts : 1), sizeof *call.ptext);
    if (!call.rows || !call.ptext) {
        free(call.rows);
        free(call.ptext);
        return GV_ERROR(GV_ERR_OOM, "%s: out of memory for %d PNG rows", path, h);
    }
    for (int y = 0; y < h; ++y) /* libpng takes non-const rows but does not write them */
        call.rows[y] = (png_bytep)(pixels + (size_t)y * w * channels);
    for (int i = 0; i < ntexts; ++i) {
        int ascii = is_ascii(texts[i].value);
        call.ptext[i].compression = ascii ? PNG_TEXT_COMPRESSION_NONE : PNG_ITXT_COMPRESSION_NONE;
        call.ptext[i].key = (png_charp)texts[i].key;
        call.ptext[i].text = (png_charp)texts[i].value;
        call.ptext[i].text_length = strlen(texts[i].value);
    }

    /* temp file next to the target, unique per process and call */
    static atomic_uint temp_counter;
    size_t tlen = strlen(path) + 64;
    char *tmp = malloc(tlen);
    if (!tmp) {
        free(call.rows);
        free(call.ptext);
        return GV_ERROR(GV_ERR_OOM, "%s: out of memory", path);
    }
    snprintf(tmp, tlen, "%s.tmp-%ld-%u", path, (long)getpid(),
             atomic_fetch_add(&temp_counter, 1u));
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0) {
        s = GV_ERROR(GV_ERR_IO, "%s: cannot create temp file %s (%s)", path, tmp, strerror(errno));
        free(tmp);
        free(call.rows);
        free(call.ptext);
        return s;
    }
    call.f = fdopen(fd, "wb");
    if (!call.f) {
        s = GV_ERROR(GV_ERR_IO, "%s: cannot open temp file %s as a stream (%s)", path, tmp,
                     strerror(errno));
        close(fd);
    }

    if (s == GV_OK) s = write_core(&call, h, w, channels, ntexts);
    if (call.png) png_destroy_write_struct(&call.png, call.info ? &call.info : NULL);
    if (call.f) {
        if (s == GV_OK && fflush(call.f) != 0)
            s = GV_ERROR(GV_ERR_IO, "%s: cannot write temp file %s (%s)", path, tmp,
                         strerror(errno));
        if (s == GV_OK && fsync(fileno(call.f)) != 0)
            s = GV_ERROR(GV_ERR_IO, "%s: fsync of temp file %s failed (%s)", path, tmp,
                         strerror(errno));
        if (fclose(call.f) != 0 && s == GV_OK)
            s = GV_ERROR(GV_ERR_IO, "%s: cannot close temp file %s (%s)", path, tmp,
                         strerror(errno));
    }
    if (s == GV_OK && rename(tmp, path) != 0)
        s = GV_ERROR(GV_ERR_IO, "%s: cannot rename %s over it (%s)", path, tmp, strerror(errno));
    if (s != GV_OK) unlink(tmp);
    free(tmp);
    free(call.rows);
    free(call.ptext);
    GV_TRY(s);
    return fsync_dir_of(path);
}

/* ---- reading --------------------------------------------------------------------------------- */

/* Copy libpng's text chunks into one owned block. */
static gv_status copy_texts(png_call *call, gv_png_image *img) {
    png_textp tp = NULL;
    int nt = 0;
    png_get_text(call->png, call->info, &tp, &nt);
    if (nt <= 0) return GV_OK;
    size_t bytes = 0;
    for (int i = 0; i < nt; ++i)
        bytes += strlen(tp[i].key) + 1 + (tp[i].text ? strlen(tp[i].text) : 0) + 1;
    img->texts = calloc((size_t)nt, sizeof *img->texts);
    img->text_storage = malloc(bytes);
    if (!img->texts || !img->text_storage)
        return GV_ERROR(GV_ERR_OOM, "%s: out of memory for %d text chunks", call->path, nt);
    char *q = img->text_storage;
    for (int i = 0; i < nt; ++i) {
        size_t kl = strlen(tp[i].key), vl = tp[i].text ? strlen(tp[i].text) : 0;
        memcpy(q, tp[i].key, kl + 1);
        img->texts[i].key = q;
        q += kl + 1;
        if (vl) memcpy(q, tp[i].text, vl);
        q[vl] = '\0';
        img->texts[i].value = q;
        q += vl + 1;
    }
    img->ntexts = nt;
    return GV_OK;
}

/* The only setjmp on the read path; results go to *img, scratch to *call. */
static gv_status read_core(png_call *call, gv_png_image *img) {
    call->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, call, on_png_error, on_png_warning);
    if (!call->png) return GV_ERROR(GV_ERR_OOM, "%s: cannot create a libpng reader", call->path);
    call->info = png_create_info_struct(call->png);
    if (!call->info) return GV_ERROR(GV_ERR_OOM, "%s: cannot create a libpng info", call->path);
    if (setjmp(png_jmpbuf(call->png)))
        return GV_ERROR(GV_ERR_FORMAT, "%s: corrupt or truncated PNG (libpng: %s)", call->path,
                        call->msg);

    png_init_io(call->png, call->f);
    png_set_sig_bytes(call->png, 8);
    png_read_info(call->png, call->info);
    png_uint_32 w = png_get_image_width(call->png, call->info);
    png_uint_32 h = png_get_image_height(call->png, call->info);
    int depth = png_get_bit_depth(call->png, call->info);
    int ctype = png_get_color_type(call->png, call->info);
    if (ctype == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(call->png);
    if (ctype == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(call->png);
    if (depth == 16) png_set_strip_16(call->png);
    if (ctype & PNG_COLOR_MASK_ALPHA) png_set_strip_alpha(call->png);
    png_set_interlace_handling(call->png);
    png_read_update_info(call->png, call->info);

    int channels = png_get_channels(call->png, call->info);
    size_t rowbytes = png_get_rowbytes(call->png, call->info);
    if ((channels != 1 && channels != 3) || rowbytes != (size_t)w * (size_t)channels)
        return GV_ERROR(GV_ERR_FORMAT, "%s: unsupported PNG layout (%d channels, %zu bytes a row)",
                        call->path, channels, rowbytes);
    img->pixels = malloc((size_t)h * rowbytes);
    call->rows = malloc((size_t)h * sizeof *call->rows);
    if (!img->pixels || !call->rows)
        return GV_ERROR(GV_ERR_OOM, "%s: out of memory for a %ux%u image", call->path, h, w);
    for (png_uint_32 y = 0; y < h; ++y) call->rows[y] = img->pixels + (size_t)y * rowbytes;
    png_read_image(call->png, call->rows);
    png_read_end(call->png, call->info); /* collects text chunks after IDAT too */
    img->h = (int)h;
    img->w = (int)w;
    img->channels = channels;
    return copy_texts(call, img);
}

gv_status gv_png_read(const char *path, gv_png_image *img) {
    if (!img) return GV_ERROR(GV_ERR_INVALID, "PNG read: no output image");
    memset(img, 0, sizeof *img);
    if (!path || !*path) return GV_ERROR(GV_ERR_INVALID, "PNG read: empty path");
    png_call call = {.path = path};
    call.f = fopen(path, "rb");
    if (!call.f) return GV_ERROR(GV_ERR_IO, "%s: cannot open PNG (%s)", path, strerror(errno));

    gv_status s = GV_OK;
    unsigned char sig[8];
    size_t got = fread(sig, 1, sizeof sig, call.f);
    if (got < sizeof sig && ferror(call.f))
        s = GV_ERROR(GV_ERR_IO, "%s: cannot read (%s)", path, strerror(errno));
    else if (got < sizeof sig || png_sig_cmp(sig, 0, sizeof sig) != 0)
        s = GV_ERROR(GV_ERR_FORMAT, "%s: not a PNG file (bad signature)", path);
    if (s == GV_OK) s = read_core(&call, img);
    if (call.png) png_destroy_read_struct(&call.png, call.info ? &call.info : NULL, NULL);
    fclose(call.f); /* read-only stream: nothing to lose on close */
    free(call.rows);
    if (s != GV_OK) gv_png_image_free(img);
    return s;
}

void gv_png_image_free(gv_png_image *img) {
    if (!img) return;
    free(img->pixels);
    free(img->texts);
    free(img->text_storage);
    memset(img, 0, sizeof *img);
}

const char *gv_png_text_get(const gv_png_image *img, const char *key) {
    if (!img || !key) return NULL;
    for (int i = 0; i < img->ntexts; ++i)
        if (strcmp(img->texts[i].key, key) == 0) return img->texts[i].value;
    return NULL;
}
