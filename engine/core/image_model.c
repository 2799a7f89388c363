/* Image models as files (image_model.h): build a UNet, classifier or masked-diffusion transformer
 * (mdt; the name stays "image model" for the one model-file mechanism) from its kind and config,
 * write the /meta that describes it, export EMA weights as a small model file, load any model
 * file back, and encode prompts over its vocabulary.
 *
 * The architecture travels as "key=value" lines driven by one field table per config struct, so
 * writer and reader cannot disagree. The vocabulary travels as the vocab file's text and is parsed
 * by dataset.c's own loader (through a private temporary file), never by a second parser.
 * Not here: training (engine/train/pretrain*.c), sampling. */
#include "grove/image_model.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const char *const kind_names[GV_MODEL_KIND_COUNT] = {"unet", "classifier", "mdt"};

const char *gv_model_kind_name(gv_model_kind k) {
    return (k >= 0 && k < GV_MODEL_KIND_COUNT) ? kind_names[k] : "?";
}

/* ---- model_config: key=value lines from a field table ----------------------------------------- */

typedef struct cfg_key {
    const char *key;
    size_t offset;
    int is_float;
} cfg_key;

#define K_INT(S, k) {#k, offsetof(S, k), 0}
#define K_FLOAT(S, k) {#k, offsetof(S, k), 1}

static const cfg_key unet_keys[] = {
    K_INT(gv_unet_config, in_channels), K_INT(gv_unet_config, height), K_INT(gv_unet_config, width),
    K_INT(gv_unet_config, levels),
    {"channels.0", offsetof(gv_unet_config, channels) + 0 * sizeof(int), 0},
    {"channels.1", offsetof(gv_unet_config, channels) + 1 * sizeof(int), 0},
    {"channels.2", offsetof(gv_unet_config, channels) + 2 * sizeof(int), 0},
    {"channels.3", offsetof(gv_unet_config, channels) + 3 * sizeof(int), 0},
    K_INT(gv_unet_config, mid_blocks), K_INT(gv_unet_config, emb_dim),
    K_INT(gv_unet_config, time_dim), K_FLOAT(gv_unet_config, time_scale),
    K_INT(gv_unet_config, groups), K_FLOAT(gv_unet_config, norm_eps),
    K_INT(gv_unet_config, vocab_size), K_INT(gv_unet_config, max_prompt_len),
    K_INT(gv_unet_config, zero_init_out),
};
static const cfg_key classifier_keys[] = {
    K_INT(gv_classifier_config, in_channels), K_INT(gv_classifier_config, height),
    K_INT(gv_classifier_config, width), K_INT(gv_classifier_config, width_mult),
    K_INT(gv_classifier_config, features), K_INT(gv_classifier_config, classes),
    K_INT(gv_classifier_config, groups), K_FLOAT(gv_classifier_config, norm_eps),
};

static const cfg_key mdt_keys[] = {
    K_INT(gv_mdt_config, vocab_size), K_INT(gv_mdt_config, seq_len), K_INT(gv_mdt_config, layers),
    K_INT(gv_mdt_config, width), K_INT(gv_mdt_config, heads), K_INT(gv_mdt_config, mlp_mult),
    K_FLOAT(gv_mdt_config, norm_eps), K_INT(gv_mdt_config, zero_init_out),
};

static void keys_of(gv_model_kind k, const cfg_key **keys, int *n) {
    switch (k) {
    case GV_MODEL_UNET: *keys = unet_keys, *n = COUNT(unet_keys); break;
    case GV_MODEL_MDT: *keys = mdt_keys, *n = COUNT(mdt_keys); break;
    default: *keys = classifier_keys, *n = COUNT(classifier_keys); break;
    }
}

static void *config_of(gv_image_model *m) {
    return m->kind == GV_MODEL_UNET  ? (void *)&m->unet.cfg
           : m->kind == GV_MODEL_MDT ? (void *)&m->mdt.cfg
                                     : (void *)&m->classifier.cfg;
}

/* "key=value\n" for every field; *out malloc'd. */
static gv_status config_to_text(const gv_image_model *m, char **out) {
    const cfg_key *keys;
    int n;
    keys_of(m->kind, &keys, &n);
    const char *base = (const char *)config_of((gv_image_model *)m);
    size_t cap = (size_t)n * 64 + 1, len = 0;
    char *s = malloc(cap);
    if (!s) return GV_ERROR(GV_ERR_OOM, "model_config: out of memory");
    for (int i = 0; i < n; ++i) {
        if (keys[i].is_float)
            len += (size_t)snprintf(s + len, cap - len, "%s=%.9g\n", keys[i].key,
                                    (double)*(const float *)(base + keys[i].offset));
        else
            len += (size_t)snprintf(s + len, cap - len, "%s=%d\n", keys[i].key,
                                    *(const int *)(base + keys[i].offset));
    }
    *out = s;
    return GV_OK;
}

/* Parse the lines into the kind's config struct: every key exactly once, nothing else. */
static gv_status config_from_text(gv_image_model *m, const char *text, const char *file) {
    const cfg_key *keys;
    int n;
    keys_of(m->kind, &keys, &n);
    char *base = config_of(m);
    int seen[32] = {0};
    int line = 0;
    for (const char *p = text; *p;) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        ++line;
        char buf[160];
        if (len >= sizeof buf)
            return GV_ERROR(GV_ERR_FORMAT, "%s: /meta model_config line %d too long", file, line);
        memcpy(buf, p, len);
        buf[len] = 0;
        p += len + (eol ? 1 : 0);
        if (!buf[0]) continue;
        char *eq = strchr(buf, '=');
        if (!eq)
            return GV_ERROR(GV_ERR_FORMAT, "%s: /meta model_config line %d '%s' is not key=value",
                            file, line, buf);
        *eq = 0;
        int i = 0;
        while (i < n && strcmp(keys[i].key, buf) != 0) ++i;
        if (i == n)
            return GV_ERROR(GV_ERR_FORMAT, "%s: /meta model_config line %d: unknown key '%s' for a %s",
                            file, line, buf, kind_names[m->kind]);
        char *end = NULL;
        if (keys[i].is_float) {
            double v = strtod(eq + 1, &end);
            if (end == eq + 1 || *end || !isfinite(v))
                return GV_ERROR(GV_ERR_FORMAT, "%s: /meta model_config %s: bad number '%s'", file,
                                buf, eq + 1);
            *(float *)(base + keys[i].offset) = (float)v;
        } else {
            long v = strtol(eq + 1, &end, 10);
            if (end == eq + 1 || *end)
                return GV_ERROR(GV_ERR_FORMAT, "%s: /meta model_config %s: bad integer '%s'", file,
                                buf, eq + 1);
            *(int *)(base + keys[i].offset) = (int)v;
        }
        seen[i]++;
    }
    for (int i = 0; i < n; ++i)
        if (seen[i] != 1)
            return GV_ERROR(GV_ERR_FORMAT, "%s: /meta model_config: key '%s' %s", file, keys[i].key,
                            seen[i] ? "given twice" : "missing");
    return GV_OK;
}

/* ---- vocabulary from text --------------------------------------------------------------------- */

static gv_status vocab_from_text(const char *text, const char *file, gv_vocab *v) {
    const char *dir = getenv("TMPDIR");
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s/grove-vocab-XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(tmp);
    if (fd < 0) return GV_ERROR(GV_ERR_IO, "%s: cannot create a temporary vocabulary file %s", file, tmp);
    FILE *f = fdopen(fd, "w");
    size_t len = strlen(text);
    int ok = f && fwrite(text, 1, len, f) == len;
    if (f) ok = (fclose(f) == 0) && ok;
    else close(fd);
    gv_status s = ok ? gv_vocab_load(tmp, v) : GV_ERROR(GV_ERR_IO, "%s: writing %s failed", file, tmp);
    unlink(tmp);
    if (s != GV_OK) gv_error_prefix("%s: /meta vocab: ", file);
    return s;
}

/* ---- building --------------------------------------------------------------------------------- */

gv_status gv_image_model_create(gv_image_model *m, gv_model_kind kind, const void *config,
                                const gv_backend *backend, int with_ema) {
    memset(m, 0, sizeof *m);
    m->kind = kind;
    m->null_id = -1;
    gv_params_init(&m->params, backend);
    gv_status s;
    if (kind == GV_MODEL_UNET)
        s = gv_unet_declare(&m->unet, (const gv_unet_config *)config, &m->params, "unet");
    else if (kind == GV_MODEL_CLASSIFIER)
        s = gv_classifier_declare(&m->classifier, (const gv_classifier_config *)config, &m->params,
                                  "classifier");
    else if (kind == GV_MODEL_MDT)
        s = gv_mdt_declare(&m->mdt, (const gv_mdt_config *)config, &m->params, "mdt");
    else
        s = GV_ERROR(GV_ERR_INVALID, "image model: unknown kind %d", (int)kind);
    if (s == GV_OK) s = gv_params_allocate(&m->params, with_ema);
    if (s != GV_OK) gv_image_model_free(m);
    return s;
}

gv_status gv_image_model_set_vocab(gv_image_model *m, const char *vocab_text, const char *label) {
    if (m->kind != GV_MODEL_UNET) return GV_OK;
    gv_vocab_free(&m->vocab);
    free(m->vocab_text);
    m->vocab_text = NULL;
    GV_TRY(vocab_from_text(vocab_text, label, &m->vocab));
    m->null_id = m->vocab.n;
    if (m->unet.cfg.vocab_size != m->vocab.n + 1)
        return GV_ERROR(GV_ERR_FORMAT, "%s: the vocabulary has %d words (+ %s) but the UNet expects "
                        "vocab_size %d", label, m->vocab.n, GV_NULL_WORD, m->unet.cfg.vocab_size);
    m->vocab_text = strdup(vocab_text);
    if (!m->vocab_text) return GV_ERROR(GV_ERR_OOM, "vocabulary text: out of memory");
    return GV_OK;
}

gv_status gv_image_model_put_meta(gv_ckpt_writer *w, const gv_image_model *m) {
    char *text = NULL;
    GV_TRY(config_to_text(m, &text));
    gv_status s = gv_ckpt_put_str(w, GV_CKPT_META, "model_kind", kind_names[m->kind]);
    if (s == GV_OK) s = gv_ckpt_put_str(w, GV_CKPT_META, "model_config", text);
    if (s == GV_OK) s = gv_ckpt_put_str(w, GV_CKPT_META, "dataset", m->dataset);
    if (s == GV_OK && m->kind == GV_MODEL_UNET)
        s = gv_ckpt_put_str(w, GV_CKPT_META, "vocab", m->vocab_text ? m->vocab_text : "");
    free(text);
    return s;
}

gv_status gv_image_model_save_export(const gv_image_model *m, const float *weights,
                                     const char *config_yaml, const char *path) {
    const gv_params *ps = &m->params;
    float *host = malloc((size_t)ps->total * sizeof(float));
    if (!host) return GV_ERROR(GV_ERR_OOM, "export %s: out of memory", path);
    gv_status s = ps->backend->copy_to_host(host, weights, (size_t)ps->total * sizeof(float));
    gv_ckpt_writer *w = NULL;
    if (s == GV_OK) s = gv_ckpt_writer_begin(path, &w);
    for (int i = 0; s == GV_OK && i < ps->count; ++i) {
        const gv_param *p = &ps->items[i];
        s = gv_ckpt_write_tensor(w, GV_CKPT_PARAMS, p->name, &p->shape, host + p->offset);
    }
    uint64_t hash = 0;
    if (s == GV_OK) s = gv_params_hash_host(ps, host, &hash);
    char hex[17];
    snprintf(hex, sizeof hex, "%016" PRIx64, hash);
    if (s == GV_OK) s = gv_ckpt_put_str(w, GV_CKPT_META, "model_hash", hex);
    if (s == GV_OK) s = gv_ckpt_put_i64(w, GV_CKPT_META, "param_count", ps->count);
    if (s == GV_OK) s = gv_image_model_put_meta(w, m);
    if (s == GV_OK && config_yaml) s = gv_ckpt_put_config(w, config_yaml);
    free(host);
    if (s != GV_OK) {
        gv_ckpt_writer_abort(w);
        return s;
    }
    return gv_ckpt_writer_commit(w);
}

/* ---- loading ---------------------------------------------------------------------------------- */

static gv_status load_from(gv_ckpt_reader *r, const char *path, const gv_backend *backend,
                           int use_ema, gv_image_model *m) {
    char *kind = NULL, *config = NULL, *dataset = NULL, *vocab = NULL, *hash = NULL;
    gv_status s = gv_ckpt_get_str(r, GV_CKPT_META, "model_kind", &kind);
    gv_model_kind k = GV_MODEL_KIND_COUNT;
    for (int i = 0; s == GV_OK && i < GV_MODEL_KIND_COUNT; ++i)
        if (strcmp(kind, kind_names[i]) == 0) k = (gv_model_kind)i;
    if (s == GV_OK && k == GV_MODEL_KIND_COUNT)
        s = GV_ERROR(GV_ERR_FORMAT, "%s: unknown /meta model_kind '%s' (unet | classifier | mdt)", path, kind);
    if (s == GV_OK) s = gv_ckpt_get_str(r, GV_CKPT_META, "model_config", &config);
    if (s == GV_OK) s = gv_ckpt_get_str(r, GV_CKPT_META, "dataset", &dataset);
    if (s == GV_OK && k == GV_MODEL_UNET) s = gv_ckpt_get_str(r, GV_CKPT_META, "vocab", &vocab);
    gv_image_model probe;
    memset(&probe, 0, sizeof probe);
    probe.kind = k;
    if (s == GV_OK) s = config_from_text(&probe, config, path);
    int has_ema = 0;
    if (s == GV_OK && use_ema) {
        char **names = NULL;
        int n = 0;
        s = gv_ckpt_list(r, GV_CKPT_EMA, &names, &n);
        gv_ckpt_names_free(names, n);
        has_ema = n > 0;
    }
    if (s == GV_OK) s = gv_image_model_create(m, k, config_of(&probe), backend, has_ema);
    if (s == GV_OK) {
        snprintf(m->dataset, sizeof m->dataset, "%s", dataset);
        snprintf(m->path, sizeof m->path, "%s", path);
        if (vocab) s = gv_image_model_set_vocab(m, vocab, path);
    }
    if (s == GV_OK) s = gv_params_load(r, &m->params, 0, has_ema);
    if (s == GV_OK && has_ema) /* the weights in use are the EMA copy */
        s = backend->copy(m->params.values, m->params.ema, (size_t)m->params.total * sizeof(float));
    if (s == GV_OK && gv_ckpt_has_key(r, GV_CKPT_META, "model_hash")) {
        s = gv_ckpt_get_str(r, GV_CKPT_META, "model_hash", &hash);
        if (s == GV_OK) snprintf(m->hash, sizeof m->hash, "%s", hash);
    }
    free(kind);
    free(config);
    free(dataset);
    free(vocab);
    free(hash);
    return s;
}

gv_status gv_image_model_load(const char *path, const gv_backend *backend, int use_ema,
                              gv_image_model *m) {
    memset(m, 0, sizeof *m);
    gv_ckpt_reader *r = NULL;
    GV_TRY(gv_ckpt_open(path, &r));
    gv_status s = load_from(r, path, backend, use_ema, m);
    gv_ckpt_close(r);
    if (s != GV_OK) gv_image_model_free(m);
    return s;
}

void gv_image_model_free(gv_image_model *m) {
    if (!m) return;
    gv_params_free(&m->params);
    gv_vocab_free(&m->vocab);
    free(m->vocab_text);
    memset(m, 0, sizeof *m);
}

/* ---- prompts ---------------------------------------------------------------------------------- */

gv_status gv_image_model_encode_prompt(const gv_image_model *m, const char *prompt, int32_t *ids,
                                       int *label) {
    if (m->kind != GV_MODEL_UNET)
        return GV_ERROR(GV_ERR_INVALID, "%s: a %s takes no prompt", m->path[0] ? m->path : "model",
                        kind_names[m->kind]);
    const int L = m->unet.cfg.max_prompt_len;
    for (int i = 0; i < L; ++i) ids[i] = -1;
    int n = 0, lab = -1;
    for (const char *p = prompt; *p;) {
        while (*p && isspace((unsigned char)*p)) ++p;
        if (!*p) break;
        const char *e = p;
        while (*e && !isspace((unsigned char)*e)) ++e;
        char word[128];
        snprintf(word, sizeof word, "%.*s", (int)(e - p), p);
        p = e;
        int id = strcmp(word, GV_NULL_WORD) == 0 ? m->null_id : gv_vocab_find(&m->vocab, word);
        if (id < 0)
            return GV_ERROR(GV_ERR_INVALID, "prompt \"%s\": unknown word '%s' (not in the "
                            "vocabulary of %s)", prompt, word, m->path[0] ? m->path : "the model");
        if (n >= L)
            return GV_ERROR(GV_ERR_INVALID, "prompt \"%s\": more than %d words", prompt, L);
        ids[n++] = id;
        int wl = id < m->vocab.n ? m->vocab.labels[id] : -1;
        if (wl >= 0) {
            if (lab >= 0 && lab != wl)
                return GV_ERROR(GV_ERR_INVALID, "prompt \"%s\": two class words", prompt);
            lab = wl;
        }
    }
    if (n == 0) ids[n++] = m->null_id; /* the empty prompt is the null prompt */
    if (label) *label = lab;
    return GV_OK;
}
