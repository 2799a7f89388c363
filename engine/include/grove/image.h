/* Images on disk: sample grids and 8-bit PNG files with text metadata (png.c).
 *
 * gv_image_grid turns a batch of float images (N, C, H, W) with values in [0, 1] into one 8-bit,
 * channel-interleaved (H', W', C) picture; gv_png_write stores such pixels as a grayscale or RGB
 * PNG with text chunks (prompt, seed, steps, sampler, cfg, checkpoint hash, scores...), atomically
 * and with deterministic bytes; gv_png_read loads a PNG back with its text chunks (tests, gallery).
 *
 * Deliberately not here: colour management, alpha, 16-bit output, interlacing, and any image
 * processing beyond the grid layout. Host memory only (callers copy tensors to the host first). */
#ifndef GROVE_IMAGE_H
#define GROVE_IMAGE_H

#include <stdint.h>

#include "grove/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Value of padding pixels and of empty grid cells: 0.5 gray, i.e. round(0.5 * 255) = 128, so the
   cell borders stay visible on both black-background (MNIST) and white-background images. */
#define GV_IMAGE_GRID_PAD_VALUE 128

/* Lay out n images into a grid of `cols` columns (rows = ceil(n / cols)), images in row-major
 * order, with `pad` pixels of GV_IMAGE_GRID_PAD_VALUE between cells and around the border:
 *     out_h = rows * h + (rows + 1) * pad,   out_w = cols * w + (cols + 1) * pad.
 * Image k's top-left pixel lands at (pad + (k / cols) * (h + pad), pad + (k % cols) * (w + pad)).
 * Cells after the last image are filled with the pad value.
 *   p:   (n, c, h, w) floats; c = 1 (gray) or 3 (RGB)
 *   out: (out_h, out_w, c) bytes, byte = round(clamp(p, 0, 1) * 255); NaN -> 0.
 *        out may be NULL: then only *out_h and *out_w are computed (size query).
 * GV_ERR_INVALID for n, h, w, cols < 1, pad < 0, c not 1 or 3, or a grid over 2^31 - 1 bytes. */
gv_status gv_image_grid(const float *p, int n, int c, int h, int w, int cols, int pad,
                        uint8_t *out, int *out_h, int *out_w);

/* One text chunk. Key: 1-79 printable Latin-1 characters (PNG spec), no leading, trailing or
   consecutive spaces. Value: any NUL-terminated string; written as tEXt when it is pure ASCII, as
   an uncompressed iTXt chunk (UTF-8) otherwise, so a prompt with non-ASCII words survives. */
typedef struct gv_png_text {
    const char *key;
    const char *value;
} gv_png_text;

/* Write an 8-bit PNG, grayscale (channels 1) or RGB (channels 3), pixels (h, w, channels) row-major.
 * Text chunks are written in the given order, before the image data.
 * Atomic: the bytes go to "<path>.tmp-<pid>-<k>" in the same directory, which is fsynced, renamed
 * over `path`, and the directory fsynced; on any failure the temp file is removed and an existing
 * file at `path` is left untouched.
 * Deterministic: no tIME (or any other time- or host-dependent) chunk, no interlacing, zlib level 9
 * with default strategy / window / memory level, and the fixed filter set PNG_ALL_FILTERS (libpng's
 * deterministic per-row heuristic). The same pixels and texts therefore give identical bytes (with
 * the same libpng and zlib builds).
 * Errors: GV_ERR_INVALID (bad size, channels or text key), GV_ERR_IO (create / write / fsync /
 * rename failed, or libpng reported an error while writing: its message is quoted), GV_ERR_OOM.
 * Every message is one line naming `path`. */
gv_status gv_png_write(const char *path, const uint8_t *pixels, int h, int w, int channels,
                       const gv_png_text *texts, int ntexts);

/* A PNG read back. All memory is owned by the struct; release it with gv_png_image_free. */
typedef struct gv_png_image {
    uint8_t *pixels;   /* (h, w, channels) */
    int h, w, channels; /* channels: 1 (gray) or 3 (RGB) */
    gv_png_text *texts; /* ntexts entries, in file order (tEXt, zTXt and iTXt alike) */
    int ntexts;
    char *text_storage; /* the keys and values `texts` points into */
} gv_png_image;

/* Read a PNG as 8-bit gray or RGB: palette images become RGB, 16-bit samples are reduced to 8,
 * sub-byte gray is expanded, and an alpha channel is dropped (grove never writes one).
 * Errors, one line naming the path: GV_ERR_IO when the file cannot be opened or read,
 * GV_ERR_FORMAT when it is not a PNG ("not a PNG file") or is corrupt or truncated (libpng's
 * reason quoted), GV_ERR_OOM. On failure *img is left empty (safe to free). */
gv_status gv_png_read(const char *path, gv_png_image *img);

/* Free what gv_png_read allocated and zero the struct; NULL and an empty struct are fine. */
void gv_png_image_free(gv_png_image *img);

/* Value of the first text chunk named `key`, or NULL. */
const char *gv_png_text_get(const gv_png_image *img, const char *key);

#ifdef __cplusplus
}
#endif
#endif
