/* Tests of the sample grid and the PNG writer/reader (image.h): write -> read round trips of pixels
 * and text chunks (ASCII tEXt and non-ASCII iTXt), byte-identical output for identical input, no
 * tIME chunk and no temp file left behind, grid size and pixel placement, rounding and clamping,
 * and the one-line errors for a missing file, a text file named .png, a truncated PNG, a missing
 * directory and a bad text key. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "grove/image.h"

static char g_dir[64];

static void make_dir(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/gv_png_XXXXXX");
    cr_assert_not_null(mkdtemp(g_dir), "mkdtemp failed");
}

static void remove_dir(void) {
    DIR *d = opendir(g_dir);
    if (!d) return;
    struct dirent *e;
    char p[512];
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(p, sizeof p, "%s/%s", g_dir, e->d_name);
            unlink(p);
        }
    closedir(d);
    rmdir(g_dir);
}

TestSuite(png, .init = make_dir, .fini = remove_dir);

static char *path_in_dir(const char *name) {
    static char p[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", g_dir, name);
    return p[k];
}

static uint8_t *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n + 1);
    cr_assert_eq(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

static void fill_pattern(uint8_t *px, int h, int w, int c, unsigned seed) {
    uint32_t s = seed * 2654435761u + 12345u;
    for (int i = 0; i < h * w * c; ++i) {
        s = s * 1664525u + 1013904223u;
        px[i] = (uint8_t)(s >> 24);
    }
}

static const gv_png_text k_texts[] = {
    {"prompt", "a handwritten seven"}, {"seed", "1234"},      {"steps", "10"},
    {"sampler", "ode"},                {"cfg", "4.5"},        {"checkpoint", "sha256:0123abcd"},
    {"comment", ""},                   {"prompt_utf8", "ein Schäfer läuft — ✓"},
};
#define NTEXTS ((int)(sizeof k_texts / sizeof k_texts[0]))

static void roundtrip(int channels) {
    const int h = 13, w = 17;
    uint8_t px[13 * 17 * 3];
    fill_pattern(px, h, w, channels, (unsigned)channels);
    const char *p = path_in_dir(channels == 1 ? "gray.png" : "rgb.png");
    cr_assert_eq(gv_png_write(p, px, h, w, channels, k_texts, NTEXTS), GV_OK, "%s",
                 gv_last_error());
    gv_png_image img;
    cr_assert_eq(gv_png_read(p, &img), GV_OK, "%s", gv_last_error());
    cr_assert_eq(img.h, h);
    cr_assert_eq(img.w, w);
    cr_assert_eq(img.channels, channels);
    for (int i = 0; i < h * w * channels; ++i)
        cr_assert_eq(img.pixels[i], px[i], "pixel byte %d: %d != %d", i, img.pixels[i], px[i]);
    cr_assert_eq(img.ntexts, NTEXTS);
    for (int i = 0; i < NTEXTS; ++i) {
        cr_assert_str_eq(img.texts[i].key, k_texts[i].key, "text %d key", i);
        cr_assert_str_eq(img.texts[i].value, k_texts[i].value, "text %d value", i);
    }
    cr_assert_str_eq(gv_png_text_get(&img, "seed"), "1234");
    cr_assert_null(gv_png_text_get(&img, "missing"));
    gv_png_image_free(&img);
    cr_assert_null(img.pixels);
}

Test(png, roundtrip_gray_with_texts) { roundtrip(1); }
Test(png, roundtrip_rgb_with_texts) { roundtrip(3); }

/* Chunk types of a PNG file in order, as 4-char strings joined by ','. */
static void chunk_list(const uint8_t *b, size_t n, char *out, size_t cap) {
    out[0] = '\0';
    size_t off = 8;
    while (off + 12 <= n) {
        uint32_t len = ((uint32_t)b[off] << 24) | ((uint32_t)b[off + 1] << 16) |
                       ((uint32_t)b[off + 2] << 8) | b[off + 3];
        size_t used = strlen(out);
        snprintf(out + used, cap - used, "%s%.4s", used ? "," : "", (const char *)b + off + 4);
        off += 12 + (size_t)len;
    }
    cr_assert_eq(off, n, "chunk walk ended at %zu of %zu bytes", off, n);
}

Test(png, identical_bytes_no_time_chunk_no_temp_left) {
    const int h = 28, w = 28;
    uint8_t px[28 * 28];
    fill_pattern(px, h, w, 1, 7);
    const char *a = path_in_dir("a.png"), *b = path_in_dir("b.png");
    cr_assert_eq(gv_png_write(a, px, h, w, 1, k_texts, NTEXTS), GV_OK, "%s", gv_last_error());
    cr_assert_eq(gv_png_write(b, px, h, w, 1, k_texts, NTEXTS), GV_OK, "%s", gv_last_error());
    size_t na, nb;
    uint8_t *ba = slurp(a, &na), *bb = slurp(b, &nb);
    cr_assert_eq(na, nb, "sizes differ: %zu vs %zu", na, nb);
    cr_assert_eq(memcmp(ba, bb, na), 0, "bytes differ");

    /* rewriting over an existing file replaces it, with the same bytes */
    cr_assert_eq(gv_png_write(a, px, h, w, 1, k_texts, NTEXTS), GV_OK, "%s", gv_last_error());
    size_t na2;
    uint8_t *ba2 = slurp(a, &na2);
    cr_assert_eq(na2, na);
    cr_assert_eq(memcmp(ba, ba2, na), 0, "rewrite changed the bytes");

    char chunks[1024];
    chunk_list(ba, na, chunks, sizeof chunks);
    cr_assert_str_eq(chunks, "IHDR,tEXt,tEXt,tEXt,tEXt,tEXt,tEXt,tEXt,iTXt,IDAT,IEND", "%s",
                     chunks);
    cr_assert_null(strstr(chunks, "tIME"));

    /* a different pixel changes the bytes (the comparison above can fail) */
    px[100] ^= 1;
    cr_assert_eq(gv_png_write(b, px, h, w, 1, k_texts, NTEXTS), GV_OK, "%s", gv_last_error());
    size_t nb2;
    uint8_t *bb2 = slurp(b, &nb2);
    cr_assert(nb2 != na || memcmp(ba, bb2, na) != 0, "different pixels gave the same file");
    free(ba);
    free(bb);
    free(ba2);
    free(bb2);

    DIR *d = opendir(g_dir);
    struct dirent *e;
    int files = 0;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        cr_assert_null(strstr(e->d_name, ".tmp"), "temp file left behind: %s", e->d_name);
        ++files;
    }
    closedir(d);
    cr_assert_eq(files, 2);
}

Test(png, grid_layout_of_three_images_in_two_columns) {
    const int n = 3, c = 3, h = 3, w = 4, cols = 2, pad = 2;
    float p[3 * 3 * 3 * 4];
    /* value encodes (image, channel, y, x); all distinct multiples of 1/255 */
    for (int k = 0; k < n; ++k)
        for (int ch = 0; ch < c; ++ch)
            for (int y = 0; y < h; ++y)
                for (int x = 0; x < w; ++x)
                    p[((k * c + ch) * h + y) * w + x] =
                        (float)(1 + k * 60 + ch * 20 + y * 5 + x) / 255.0f;
    int gh = 0, gw = 0;
    cr_assert_eq(gv_image_grid(p, n, c, h, w, cols, pad, NULL, &gh, &gw), GV_OK);
    cr_assert_eq(gh, 2 * h + 3 * pad, "height %d", gh); /* 12 */
    cr_assert_eq(gw, 2 * w + 3 * pad, "width %d", gw);  /* 14 */
    uint8_t *out = malloc((size_t)gh * gw * c);
    cr_assert_eq(gv_image_grid(p, n, c, h, w, cols, pad, out, &gh, &gw), GV_OK, "%s",
                 gv_last_error());
    /* expected: owner image of each grid pixel, or -1 for padding / the empty 4th cell */
    int checked_img = 0, checked_pad = 0;
    for (int Y = 0; Y < gh; ++Y)
        for (int X = 0; X < gw; ++X) {
            int k = -1, y = -1, x = -1;
            int row = (Y - pad) / (h + pad), col = (X - pad) / (w + pad);
            int yy = (Y - pad) % (h + pad), xx = (X - pad) % (w + pad);
            if (Y >= pad && X >= pad && yy < h && xx < w && row < 2 && col < cols &&
                row * cols + col < n) {
                k = row * cols + col;
                y = yy;
                x = xx;
            }
            for (int ch = 0; ch < c; ++ch) {
                int got = out[((size_t)Y * gw + X) * c + ch];
                int want = k < 0 ? GV_IMAGE_GRID_PAD_VALUE : 1 + k * 60 + ch * 20 + y * 5 + x;
                cr_assert_eq(got, want, "grid (%d,%d) ch %d: got %d want %d", Y, X, ch, got, want);
                if (k < 0) ++checked_pad;
                else ++checked_img;
            }
        }
    cr_assert_eq(checked_img, n * c * h * w);
    /* spot checks by hand: image 2 starts at row 1, column 0 */
    cr_assert_eq(out[((size_t)(pad + h + pad) * gw + pad) * c + 0], 1 + 2 * 60);
    cr_assert_eq(out[((size_t)(pad + h + pad) * gw + pad + w + pad) * c], 128, "empty cell");
    free(out);
}

Test(png, grid_rounds_and_clamps) {
    float p[6] = {-0.3f, 0.5f, 1.7f, NAN, 0.2f, 1.0f / 255.0f * 0.49f};
    int gh, gw;
    uint8_t out[6];
    cr_assert_eq(gv_image_grid(p, 1, 1, 1, 6, 1, 0, out, &gh, &gw), GV_OK);
    cr_assert_eq(gh, 1);
    cr_assert_eq(gw, 6);
    cr_assert_eq(out[0], 0);
    cr_assert_eq(out[1], 128); /* round(127.5) */
    cr_assert_eq(out[2], 255);
    cr_assert_eq(out[3], 0);
    cr_assert_eq(out[4], 51);
    cr_assert_eq(out[5], 0);
    cr_assert_eq(gv_image_grid(p, 1, 2, 1, 6, 1, 0, out, &gh, &gw), GV_ERR_INVALID);
    cr_assert_eq(gv_image_grid(p, 1, 1, 1, 6, 0, 0, out, &gh, &gw), GV_ERR_INVALID);
}

Test(png, missing_file_error) {
    gv_png_image img;
    const char *p = path_in_dir("nope.png");
    cr_assert_eq(gv_png_read(p, &img), GV_ERR_IO);
    cr_assert_not_null(strstr(gv_last_error(), p), "%s", gv_last_error());
    cr_assert_not_null(strstr(gv_last_error(), "No such file"), "%s", gv_last_error());
    cr_assert_null(strchr(gv_last_error(), '\n'));
    cr_assert_null(img.pixels);
}

Test(png, text_file_named_png_error) {
    const char *p = path_in_dir("notes.png");
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    fputs("this is not an image\n", f);
    fclose(f);
    gv_png_image img;
    cr_assert_eq(gv_png_read(p, &img), GV_ERR_FORMAT);
    cr_assert_not_null(strstr(gv_last_error(), p), "%s", gv_last_error());
    cr_assert_not_null(strstr(gv_last_error(), "not a PNG"), "%s", gv_last_error());
    cr_assert_null(strchr(gv_last_error(), '\n'));
}

Test(png, truncated_png_error_via_libpng) {
    uint8_t px[32 * 32 * 3];
    fill_pattern(px, 32, 32, 3, 3);
    const char *p = path_in_dir("cut.png");
    cr_assert_eq(gv_png_write(p, px, 32, 32, 3, NULL, 0), GV_OK, "%s", gv_last_error());
    size_t n;
    uint8_t *b = slurp(p, &n);
    FILE *f = fopen(p, "wb");
    cr_assert_eq(fwrite(b, 1, n / 2, f), n / 2);
    fclose(f);
    free(b);
    gv_png_image img;
    cr_assert_eq(gv_png_read(p, &img), GV_ERR_FORMAT);
    cr_assert_not_null(strstr(gv_last_error(), p), "%s", gv_last_error());
    cr_assert_not_null(strstr(gv_last_error(), "libpng:"), "%s", gv_last_error());
    cr_assert_null(img.pixels);
}

Test(png, write_errors) {
    uint8_t px[4] = {0, 1, 2, 3};
    char p[300];
    snprintf(p, sizeof p, "%s/no/such/dir/x.png", g_dir);
    cr_assert_eq(gv_png_write(p, px, 2, 2, 1, NULL, 0), GV_ERR_IO);
    cr_assert_not_null(strstr(gv_last_error(), p), "%s", gv_last_error());

    const char *q = path_in_dir("keys.png");
    gv_png_text bad[] = {{" lead", "x"}};
    cr_assert_eq(gv_png_write(q, px, 2, 2, 1, bad, 1), GV_ERR_INVALID);
    gv_png_text empty[] = {{"", "x"}};
    cr_assert_eq(gv_png_write(q, px, 2, 2, 1, empty, 1), GV_ERR_INVALID);
    char longkey[100];
    memset(longkey, 'k', 80);
    longkey[80] = '\0';
    gv_png_text lk[] = {{longkey, "x"}};
    cr_assert_eq(gv_png_write(q, px, 2, 2, 1, lk, 1), GV_ERR_INVALID);
    cr_assert_not_null(strstr(gv_last_error(), "1-79"), "%s", gv_last_error());
    cr_assert_eq(gv_png_write(q, px, 2, 2, 2, NULL, 0), GV_ERR_INVALID);
    cr_assert_eq(access(q, F_OK), -1, "a failed write left a file");
}
