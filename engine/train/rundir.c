/* Run-directory helpers shared by the pretraining and alignment loops (rundir.h; DESIGN.md §1):
 * atomic text files, resume-time metrics truncation and config comparison, and the epoch-shuffled
 * data cursor (DESIGN.md §3, RNG), and the run checkpoint both loops write and resume from. No
 * training policy lives here. */
#include "grove/rundir.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "grove/image_model.h"
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

/* ---- run checkpoints -------------------------------------------------------------------------- */

static gv_status put_state(gv_ckpt_writer *w, const gv_run_checkpoint *c) {
    const struct { const char *k; int64_t v; } common[] = {
        {"data_epoch", c->cursor->epoch}, {"data_position", c->cursor->pos}, {"seed", c->seed}};
    gv_status s = GV_OK;
    for (size_t i = 0; s == GV_OK && i < sizeof common / sizeof common[0]; ++i)
        s = gv_ckpt_put_i64(w, GV_CKPT_STATE, common[i].k, common[i].v);
    for (size_t i = 0; s == GV_OK && i < c->n_state; ++i)
        s = c->state[i].i64 ? gv_ckpt_put_i64(w, GV_CKPT_STATE, c->state[i].key, *c->state[i].i64)
                            : gv_ckpt_put_f64(w, GV_CKPT_STATE, c->state[i].key, *c->state[i].f64);
    return s;
}

gv_status gv_rundir_save_checkpoint(const gv_run_checkpoint *c, const char *yaml, const char *path) {
    gv_ckpt_writer *w = NULL;
    GV_TRY(gv_ckpt_writer_begin(path, &w));
    gv_status s = gv_params_save(w, &c->model->params, 1, 1);
    if (s == GV_OK) s = put_state(w, c);
    if (s == GV_OK) s = gv_image_model_put_meta(w, c->model);
    if (s == GV_OK) s = gv_ckpt_put_i64(w, GV_CKPT_META, "threads", c->threads);
    if (s == GV_OK && c->put_meta) s = c->put_meta(w, c->user);
    if (s == GV_OK) s = gv_ckpt_put_config(w, yaml);
    if (s != GV_OK) {
        gv_ckpt_writer_abort(w);
        return s;
    }
    return gv_ckpt_writer_commit(w);
}

gv_status gv_rundir_load_checkpoint(const gv_run_checkpoint *c, const char *path) {
    gv_ckpt_reader *r = NULL;
    GV_TRY(gv_ckpt_open(path, &r));
    gv_status s = gv_params_load(r, &c->model->params, 1, 1);
    int64_t seed = 0;
    gv_data_cursor *cur = c->cursor;
    const struct { const char *k; int64_t *v; } common[] = {
        {"data_epoch", &cur->epoch}, {"data_position", &cur->pos}, {"seed", &seed}};
    for (size_t i = 0; s == GV_OK && i < sizeof common / sizeof common[0]; ++i)
        s = gv_ckpt_get_i64(r, GV_CKPT_STATE, common[i].k, common[i].v);
    for (size_t i = 0; s == GV_OK && i < c->n_state; ++i)
        s = c->state[i].i64 ? gv_ckpt_get_i64(r, GV_CKPT_STATE, c->state[i].key, c->state[i].i64)
                            : gv_ckpt_get_f64(r, GV_CKPT_STATE, c->state[i].key, c->state[i].f64);
    if (s == GV_OK && c->check) s = c->check(r, path, c->user);
    gv_ckpt_close(r);
    GV_TRY(s);
    if ((uint32_t)seed != c->seed || cur->pos < 0 || cur->pos > cur->n)
        return GV_ERROR(GV_ERR_FORMAT, "%s: /state does not match this run (seed %lld, data "
                        "position %lld of %lld)", path, (long long)seed, (long long)cur->pos,
                        (long long)cur->n);
    return gv_data_cursor_shuffle(cur, c->seed);
}

gv_status gv_rundir_refuse_changed_config(const char *dir, const char *run_dump,
                                          const char *now_dump, int force) {
    if (force || strcmp(run_dump, now_dump) == 0) return GV_OK;
    char diff[1024];
    gv_rundir_dump_difference(run_dump, now_dump, diff, sizeof diff);
    return GV_ERROR(GV_ERR_CONFIG, "%s: the run was created with a different config: %s; use "
                    "--force to resume anyway", dir, diff);
}
