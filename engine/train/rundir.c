/* Run-directory helpers shared by the pretraining and alignment loops (rundir.h; DESIGN.md §1):
 * atomic text files, resume-time metrics truncation and config comparison, and the epoch-shuffled
 * data cursor (DESIGN.md §3, RNG). No training policy lives here. */
#include "grove/rundir.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "grove/rng.h"

double gv_rundir_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int gv_rundir_exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0;
}

gv_status gv_rundir_mkdir_p(const char *dir) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", dir);
    for (char *p = buf + 1;; ++p) {
        if (*p == '/' || !*p) {
            char c = *p;
            *p = 0;
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return GV_ERROR(GV_ERR_IO, "%s: cannot create directory: %s", buf, strerror(errno));
            *p = c;
            if (!c) break;
        }
    }
    return GV_OK;
}

gv_status gv_rundir_slurp(const char *path, char **out) {
    FILE *f = fopen(path, "rb");
    if (!f) return GV_ERROR(GV_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)(n < 0 ? 0 : n) + 1);
    size_t got = s && n > 0 ? fread(s, 1, (size_t)n, f) : 0;
    fclose(f);
    if (!s) return GV_ERROR(GV_ERR_OOM, "%s: out of memory", path);
    s[got] = 0;
    *out = s;
    return GV_OK;
}

/* Write `text` to `path` through a temp file and rename. */
gv_status gv_rundir_write_atomic(const char *path, const char *text) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return GV_ERROR(GV_ERR_IO, "%s: cannot write: %s", tmp, strerror(errno));
    size_t n = strlen(text);
    int ok = fwrite(text, 1, n, f) == n;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        remove(tmp);
        return GV_ERROR(GV_ERR_IO, "%s: write failed", path);
    }
    return GV_OK;
}

gv_status gv_rundir_metrics_truncate(const char *path, const char *key, int64_t last) {
    if (!gv_rundir_exists(path)) return GV_OK;
    char *text = NULL;
    GV_TRY(gv_rundir_slurp(path, &text));
    size_t keep = 0;
    for (char *p = text; *p;) {
        char *eol = strchr(p, '\n');
        char tag[80];
        snprintf(tag, sizeof tag, "{\"%s\":", key);
        if (!eol || strncmp(p, tag, strlen(tag)) != 0 || strtoll(p + strlen(tag), NULL, 10) > last)
            break;
        keep = (size_t)(eol + 1 - text);
        p = eol + 1;
    }
    text[keep] = 0;
    gv_status s = gv_rundir_write_atomic(path, text);
    free(text);
    return s;
}

/* First key whose line differs between two canonical dumps: "train.lr: 0.001 (run) vs 0.002". */
void gv_rundir_dump_difference(const char *a, const char *b, char *out, size_t len) {
    char stack[8][64] = {{0}};
    snprintf(out, len, "(layout differs)");
    while (*a && *b) {
        const char *ea = strchr(a, '\n'), *eb = strchr(b, '\n');
        size_t la = ea ? (size_t)(ea - a) : strlen(a), lb = eb ? (size_t)(eb - b) : strlen(b);
        int ind = 0;
        while (a[ind] == ' ') ++ind;
        int depth = ind / 2 < 7 ? ind / 2 : 7;
        const char *colon = memchr(a, ':', la);
        if (colon) snprintf(stack[depth], sizeof stack[depth], "%.*s", (int)(colon - a - ind), a + ind);
        if (la != lb || memcmp(a, b, la) != 0) {
            char key[512] = "";
            for (int d = 0; d <= depth; ++d)
                snprintf(key + strlen(key), sizeof key - strlen(key), "%s%s", d ? "." : "", stack[d]);
            const char *cb = memchr(b, ':', lb);
            int va = colon ? (int)(la - (size_t)(colon + 1 - a)) : 0;
            int vb = cb ? (int)(lb - (size_t)(cb + 1 - b)) : 0;
            snprintf(out, len, "%s:%.*s (run) vs%.*s (now)", key, va, colon ? colon + 1 : "", vb,
                     cb ? cb + 1 : "");
            return;
        }
        a += la + (ea ? 1 : 0);
        b += lb + (eb ? 1 : 0);
    }
}

/* ---- the data cursor -------------------------------------------------------------------------- */

/* Fisher–Yates over Philox words at (seed, DATA, iteration = epoch, node 1, SHUFFLE). */
gv_status gv_data_cursor_shuffle(gv_data_cursor *c, uint32_t seed) {
    uint32_t key[2], hi[3];
    gv_rng_key(seed, GV_RNG_STREAM_DATA, key);
    gv_rng_addr a = {.iteration = (uint32_t)c->epoch, .node = 1, .purpose = GV_RNG_PURPOSE_SHUFFLE};
    GV_TRY(gv_rng_addr_pack(&a, hi));
    for (int64_t i = 0; i < c->n; ++i) c->perm[i] = i;
    for (int64_t i = c->n - 1; i > 0; --i) {
        int64_t k = (int64_t)(gv_rng_u32_at(key, hi, (uint64_t)i) % (uint64_t)(i + 1));
        int64_t t = c->perm[i];
        c->perm[i] = c->perm[k];
        c->perm[k] = t;
    }
    return GV_OK;
}

gv_status gv_data_cursor_next(gv_data_cursor *c, uint32_t seed, int B, int64_t *rows) {
    for (int b = 0; b < B; ++b) {
        if (c->pos == c->n) {
            c->epoch++;
            c->pos = 0;
            GV_TRY(gv_data_cursor_shuffle(c, seed));
        }
        rows[b] = c->lo + c->perm[c->pos++];
    }
    return GV_OK;
}
