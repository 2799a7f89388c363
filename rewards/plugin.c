/* The reward plugin loader (DESIGN.md §7): a shared object speaking rewards/include/grove/reward.h
 * becomes one more kind of gv_reward, scored through gv_reward_score like a built-in.
 *
 * Load: stat, dlopen(RTLD_NOW | RTLD_LOCAL), dlsym("grove_reward_plugin_v1") — when it is absent
 * the other grove_reward_plugin_v<N> names are tried so a version mismatch is named, not reported
 * as a missing symbol —, then abi_version, struct_size, the function pointers, kinds, and create.
 * Each failure is ONE GV_ERR_PLUGIN line starting "reward plugin <path>: " (STYLE.md 10; dlerror
 * verbatim). Score: the host batch becomes a grove_reward_batch (struct_size = grove's sizeof;
 * prompts "" and groups 0..n-1 when the caller gives none; a token batch — host tokens set — is
 * GROVE_SAMPLES_TOKENS with tokens, texts, prompt_tokens, reference_tokens and mask_id, the
 * fields of ABI v1 revision 2, and is refused for a plugin whose kinds lack tokens, as an image
 * batch is for a tokens-only plugin); a non-zero return is GV_ERR_PLUGIN
 * with the plugin's message, and any item the plugin marks FAILED or scores non-finite stays
 * FAILED (masked by advantage.h, never a silent zero).
 * Deliberately not here: the failure policy (consecutive failures, logging: engine/train), the
 * win-rate transform (pairwise.c) and the example plugins (rewards/plugins/). */
#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "grove/reward.h"
#include "grove/rewards.h"
#include "plugin_internal.h"

#define GV_PLUGIN_SYMBOL "grove_reward_plugin_v1"
#define GV_PLUGIN_MAX_OTHER_ABI 64 /* v0 .. v64 are probed to name a mismatch */

struct gv_reward_plugin_instance {
    void *handle;
    const grove_reward_plugin *table;
    void *state;
    int created;
    char path[4096];
    char name[128];
    /* host staging for the defaults of a batch (grown, never shrunk) */
    int cap;
    const char **empty_prompts;
    int32_t *own_groups;
    /* scratch for the win-rate transform (plugin_internal.h; grown, never shrunk) */
    void *scratch;
    size_t scratch_cap;
};

/* Size of the v1 table: a plugin must cover every field up to and including destroy. */
static const size_t v1_table_size = offsetof(grove_reward_plugin, destroy) +
                                    sizeof(((grove_reward_plugin *)0)->destroy);

static const char *kinds_text(uint32_t kinds, char *buf, size_t n) {
    snprintf(buf, n, "%s%s%s%s", kinds & GROVE_SAMPLES_IMAGE ? "image" : "",
             (kinds & GROVE_SAMPLES_IMAGE) && (kinds & GROVE_SAMPLES_TOKENS) ? ", " : "",
             kinds & GROVE_SAMPLES_TOKENS ? "tokens" : "",
             kinds & (GROVE_SAMPLES_IMAGE | GROVE_SAMPLES_TOKENS) ? "" : "none");
    return buf;
}

/* The ABI version another grove_reward_plugin_v<N> symbol names, or -1. */
static int other_abi_version(void *handle) {
    for (int v = 0; v <= GV_PLUGIN_MAX_OTHER_ABI; ++v) {
        if (v == (int)GROVE_REWARD_ABI_VERSION) continue;
        char sym[64];
        snprintf(sym, sizeof sym, "grove_reward_plugin_v%d", v);
        dlerror();
        if (dlsym(handle, sym) && !dlerror()) return v;
    }
    return -1;
}

static gv_status open_table(gv_reward_plugin_instance *p, uint32_t kind) {
    const char *path = p->path;
    struct stat st;
    if (stat(path, &st) != 0)
        return GV_ERROR(GV_ERR_PLUGIN, "reward plugin %s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return GV_ERROR(GV_ERR_PLUGIN, "reward plugin %s: not a regular file", path);
    dlerror();
    p->handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!p->handle) {
        const char *why = dlerror();
        return GV_ERROR(GV_ERR_PLUGIN, "reward plugin %s: cannot load: %s", path,
                        why ? why : "unknown dlopen error");
    }
    dlerror();
    void *sym = dlsym(p->handle, GV_PLUGIN_SYMBOL);
    if (!sym || dlerror()) {
        const int other = other_abi_version(p->handle);
        if (other >= 0)
            return GV_ERROR(GV_ERR_PLUGIN, "reward plugin %s: built for reward ABI v%d, this grove "
                            "speaks v%u", path, other, GROVE_REWARD_ABI_VERSION);
        return GV_ERROR(GV_ERR_PLUGIN, "reward plugin %s: no symbol %s (not a grove reward plugin, "
                        "or not exported: see GROVE_REWARD_EXPORT)", path, GV_PLUGIN_SYMBOL);
    }
    const grove_reward_plugin *(*get)(void);
    memcpy(&get, &sym, sizeof get); /* POSIX: dlsym result to a function pointer */
    const grove_reward_plugin *t = get();
    if (!t) return GV_ERROR(GV_ERR_PLUGIN, "reward plugin %s: %s() returned NULL", path,
                            GV_PLUGIN_SYMBOL);
    if (t->abi_version != GROVE_REWARD_ABI_VERSION)
        return GV_ERROR(GV_ERR_PLUGIN, "reward plugin %s: abi_version %u in its table, this grove "
                        "speaks v%u", path, t->abi_version, GROVE_REWARD_ABI_VERSION);
    if (t->struct_size < v1_table_size)
        return GV_ERROR(GV_ERR_PLUGIN, "reward plugin %s: struct_size %u is smaller than the v1 "
                        "grove_reward_plugin (%zu bytes)", path, t->struct_size, v1_table_size);
    snprintf(p->name, sizeof p->name, "%s", t->name && *t->name ? t->name : "plugin");
    if (!t->create)
        return GV_ERROR(GV_ERR_PLUGIN, "reward plugin %s ('%s'): create is NULL", path, p->name);
    const int pairwise = (t->flags & GROVE_REWARD_PAIRWISE) != 0;
    if (!t->score && !(pairwise && t->compare))
        return GV_ERROR(GV_ERR_PLUGIN, "reward plugin %s ('%s'): score is NULL and it is not a "
                        "pairwise judge with compare", path, p->name);
    if (pairwise && !t->compare)
        return GV_ERROR(GV_ERR_PLUGIN, "reward plugin %s ('%s'): flags PAIRWISE but compare is NULL",
                        path, p->name);
    if (!(t->kinds & kind)) {
        char have[32], want[32];
        return GV_ERROR(GV_ERR_PLUGIN, "reward plugin %s ('%s'): accepts %s batches, grove needs "
                        "%s batches", path, p->name, kinds_text(t->kinds, have, sizeof have),
                        kinds_text(kind, want, sizeof want));
    }
    p->table = t;
    return GV_OK;
}

gv_status gv_reward_load_plugin(gv_reward *r, const char *path, const char *config, double weight,
                                uint32_t kind) {
    memset(r, 0, sizeof *r);
    r->id = GV_BUILTIN_REWARD_COUNT;
    r->weight = weight;
    gv_reward_plugin_instance *p = calloc(1, sizeof *p);
    if (!p) return GV_ERROR(GV_ERR_OOM, "reward plugin %s: out of memory", path);
    r->plugin = p;
    r->name = p->name;
    if (strlen(path) >= sizeof p->path) {
        gv_reward_plugin_close(r);
        return GV_ERROR(GV_ERR_PLUGIN, "reward plugin path too long (%zu bytes)", strlen(path));
    }
    snprintf(p->path, sizeof p->path, "%s", path);
    gv_status s = open_table(p, kind);
    if (s == GV_OK) {
        char err[1024] = "";
        if (p->table->create(config ? config : "", &p->state, err, sizeof err) != 0) {
            err[sizeof err - 1] = '\0';
            s = GV_ERROR(GV_ERR_PLUGIN, "reward plugin %s ('%s'): create failed: %s", path,
                         p->name, err[0] ? err : "(no message)");
        } else {
            p->created = 1;
        }
    }
    if (s != GV_OK) gv_reward_plugin_close(r);
    return s;
}

void gv_reward_plugin_close(gv_reward *r) {
    gv_reward_plugin_instance *p = r->plugin;
    if (!p) return;
    if (p->created && p->table->destroy) p->table->destroy(p->state);
    if (p->handle) dlclose(p->handle);
    free(p->empty_prompts);
    free(p->own_groups);
    free(p->scratch);
    free(p);
    r->plugin = NULL;
    r->name = "plugin (closed)";
}

gv_status gv_reward_plugin_describe(const gv_reward *r, gv_reward_plugin_info *out) {
    if (!r->plugin) return GV_ERROR(GV_ERR_INVALID, "reward '%s' is not a plugin", r->name);
    const grove_reward_plugin *t = r->plugin->table;
    *out = (gv_reward_plugin_info){.path = r->plugin->path, .name = r->plugin->name,
                                   .version = t->version ? t->version : "",
                                   .abi_version = t->abi_version, .struct_size = t->struct_size,
                                   .flags = t->flags, .kinds = t->kinds};
    return GV_OK;
}

int gv_reward_is_pairwise(const gv_reward *r) {
    return r->plugin && (r->plugin->table->flags & GROVE_REWARD_PAIRWISE) && r->plugin->table->compare;
}

int gv_reward_can_score(const gv_reward *r) { return !r->plugin || r->plugin->table->score; }

void *gv_reward_plugin_scratch(gv_reward *r, size_t bytes) {
    gv_reward_plugin_instance *p = r->plugin;
    if (!p) return NULL;
    if (bytes > p->scratch_cap) {
        void *m = realloc(p->scratch, bytes); /* malloc's alignment suits any type */
        if (!m) return NULL;
        p->scratch = m, p->scratch_cap = bytes;
    }
    return p->scratch;
}

/* The ABI view of a host batch; defaults for absent prompts / groups from the instance's staging. */
static gv_status to_batch(gv_reward_plugin_instance *p, const gv_reward_images *b,
                          grove_reward_batch *out) {
    if (b->n > p->cap) {
        const char **pr = realloc(p->empty_prompts, (size_t)b->n * sizeof *pr);
        if (pr) p->empty_prompts = pr;
        int32_t *g = realloc(p->own_groups, (size_t)b->n * sizeof *g);
        if (g) p->own_groups = g;
        if (!pr || !g) return GV_ERROR(GV_ERR_OOM, "reward plugin %s: batch of %d", p->path, b->n);
        for (int i = 0; i < b->n; ++i) p->empty_prompts[i] = "", p->own_groups[i] = i;
        p->cap = b->n;
    }
    const int tokens = b->tokens != NULL;
    if (tokens && !(p->table->kinds & GROVE_SAMPLES_TOKENS))
        return GV_ERROR(GV_ERR_PLUGIN, "reward plugin %s ('%s'): a token batch, but the plugin "
                        "accepts only image batches", p->path, p->name);
    if (!tokens && !(p->table->kinds & GROVE_SAMPLES_IMAGE))
        return GV_ERROR(GV_ERR_PLUGIN, "reward plugin %s ('%s'): an image batch, but the plugin "
                        "accepts only token batches", p->path, p->name);
    *out = (grove_reward_batch){.struct_size = (uint32_t)sizeof(grove_reward_batch),
                                .kind = tokens ? GROVE_SAMPLES_TOKENS : GROVE_SAMPLES_IMAGE,
                                .n = b->n,
                                .prompts = b->prompts ? b->prompts : p->empty_prompts,
                                .groups = b->groups ? b->groups : p->own_groups,
                                .metadata = b->metadata};
    if (tokens) { /* ABI v1 revision 2: the canvas, the reference and [MASK] travel too */
        out->length = b->seq_len;
        out->tokens = b->tokens;
        out->texts = b->texts;
        out->prompt_tokens = b->prompt;
        out->reference_tokens = b->reference;
        out->mask_id = b->mask_id;
    } else {
        out->channels = b->channels;
        out->height = b->height;
        out->width = b->width;
        out->images = b->pixels;
    }
    return GV_OK;
}

/* After a call: anything not OK or not finite is FAILED (score 0 is never a silent stand-in). */
static void normalize_status(int n, float *v, uint8_t *status) {
    for (int i = 0; i < n; ++i)
        if (status[i] != GROVE_REWARD_OK || !isfinite(v[i])) status[i] = GV_REWARD_ITEM_FAILED;
}

gv_status gv_reward_plugin_score(gv_reward *r, const gv_reward_images *b, float *scores,
                                 uint8_t *status) {
    gv_reward_plugin_instance *p = r->plugin;
    if (!p->table->score)
        return GV_ERROR(GV_ERR_INVALID, "reward plugin %s ('%s'): a pairwise judge without score: "
                        "use it with reward_transform: win_rate", p->path, p->name);
    grove_reward_batch batch;
    GV_TRY(to_batch(p, b, &batch));
    for (int i = 0; i < b->n; ++i) scores[i] = NAN, status[i] = GROVE_REWARD_FAILED;
    char err[1024] = "";
    if (p->table->score(p->state, &batch, scores, status, err, sizeof err) != 0) {
        err[sizeof err - 1] = '\0';
        for (int i = 0; i < b->n; ++i) status[i] = GV_REWARD_ITEM_FAILED;
        return GV_ERROR(GV_ERR_PLUGIN, "reward plugin %s ('%s'): score failed: %s", p->path,
                        p->name, err[0] ? err : "(no message)");
    }
    normalize_status(b->n, scores, status);
    return GV_OK;
}

gv_status gv_reward_compare(gv_reward *r, gv_ctx *ctx, const gv_reward_images *a,
                            const gv_reward_images *b, float *p_first, uint8_t *status) {
    (void)ctx;
    if (!gv_reward_is_pairwise(r))
        return GV_ERROR(GV_ERR_INVALID, "reward '%s' is not a pairwise judge (no compare)", r->name);
    gv_reward_plugin_instance *p = r->plugin;
    if (a->n != b->n || a->channels != b->channels || a->height != b->height ||
        a->width != b->width || a->n <= 0)
        return GV_ERROR(GV_ERR_INVALID, "reward '%s': compare of mismatched batches", r->name);
    grove_reward_batch ba, bb;
    GV_TRY(to_batch(p, a, &ba));
    /* both may share the constant default staging ("" prompts, groups 0..n-1): read-only */
    GV_TRY(to_batch(p, b, &bb));
    for (int i = 0; i < a->n; ++i) p_first[i] = NAN, status[i] = GROVE_REWARD_FAILED;
    char err[1024] = "";
    if (p->table->compare(p->state, &ba, &bb, p_first, status, err, sizeof err) != 0) {
        err[sizeof err - 1] = '\0';
        for (int i = 0; i < a->n; ++i) status[i] = GV_REWARD_ITEM_FAILED;
        return GV_ERROR(GV_ERR_PLUGIN, "reward plugin %s ('%s'): compare failed: %s", p->path,
                        p->name, err[0] ? err : "(no message)");
    }
    normalize_status(a->n, p_first, status);
    for (int i = 0; i < a->n; ++i) /* a probability outside [0, 1] is a plugin bug: masked */
        if (status[i] == GV_REWARD_ITEM_OK && !(p_first[i] >= 0.0f && p_first[i] <= 1.0f))
            status[i] = GV_REWARD_ITEM_FAILED;
    return GV_OK;
}
