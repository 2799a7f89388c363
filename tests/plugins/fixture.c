/* Reward plugin fixtures for tests/cpu/test_plugins.c, one source compiled into several shared
 * objects (tests/CMakeLists.txt) by a FIX_* definition:
 *   (none)        a good plugin: score = scale * mean(p) (scale from config, default 1); config
 *                 keys fail_every=k (item i FAILED when i % k == k - 1), nan_every=k (item NaN),
 *                 fail_calls=a,b,... (score returns an error on those 1-based calls, counted per
 *                 state), create_fail=1 (create fails echoing the flattened config),
 *                 require_metadata=1 (score fails unless every sample has a rollout's metadata
 *                 JSON and groups of 3 share their id), fail_at=i:s,... (score returns an error
 *                 when the batch's first sample is the rollout of iteration i, prompt slot s:
 *                 the same batches fail whichever process scores them), sleep_eval_s=x (score
 *                 sleeps x seconds on an eval batch: a slow eval); flags
 *                 DETERMINISTIC; a pairwise judge too: p_first = [mean(a) > mean(b)] (0.5 on a
 *                 tie), FAILED where a's first pixel is > 0.9
 *   FIX_V2        exports only grove_reward_plugin_v2 (another ABI version)
 *   FIX_NOSYM     exports no grove_reward_plugin_v* at all
 *   FIX_SMALL     struct_size smaller than the v1 table
 *   FIX_ABI       abi_version 7 inside a v1-named table
 *   FIX_TOKENS    kinds = tokens only; a token batch scores scale * the fraction of tokens equal
 *                 to the reference (0 without one); fail_at and fail_calls work as above (the
 *                 masked-diffusion trainer's metadata carries iteration and slot)
 *   FIX_NONDET    claims DETERMINISTIC, scores differ on every call
 * Deliberately not here: anything grove-internal (only grove/reward.h). */
#define _POSIX_C_SOURCE 200809L /* nanosleep */
#include <grove/reward.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct fixture {
    double scale, sleep_eval_s;
    int fail_every, nan_every, calls, require_metadata;
    char fail_calls[256], fail_at[256];
} fixture;

static const char *value_of(const char *config, const char *key) {
    const size_t n = strlen(key);
    for (const char *l = config; l && *l;) {
        if (strncmp(l, key, n) == 0 && l[n] == '=') return l + n + 1;
        l = strchr(l, '\n');
        if (l) ++l;
    }
    return NULL;
}

static int create(const char *config, void **state, char *err, size_t err_len) {
    if (value_of(config, "create_fail")) {
        char flat[512];
        size_t k = 0;
        for (const char *c = config; *c && k + 2 < sizeof flat; ++c) /* newlines shown as | */
            flat[k++] = *c == '\n' ? '|' : *c;
        flat[k] = '\0';
        snprintf(err, err_len, "fixture refuses: %s", flat);
        return 1;
    }
    fixture *f = calloc(1, sizeof *f);
    if (!f) return 1;
    const char *v;
    f->scale = (v = value_of(config, "scale")) ? strtod(v, NULL) : 1.0;
    f->sleep_eval_s = (v = value_of(config, "sleep_eval_s")) ? strtod(v, NULL) : 0.0;
    f->fail_every = (v = value_of(config, "fail_every")) ? atoi(v) : 0;
    f->nan_every = (v = value_of(config, "nan_every")) ? atoi(v) : 0;
    f->require_metadata = value_of(config, "require_metadata") != NULL;
    if ((v = value_of(config, "fail_calls"))) {
        snprintf(f->fail_calls + 1, sizeof f->fail_calls - 2, "%.*s", (int)strcspn(v, "\n"), v);
        f->fail_calls[0] = ',';
        strcat(f->fail_calls, ",");
    }
    if ((v = value_of(config, "fail_at"))) {
        snprintf(f->fail_at + 1, sizeof f->fail_at - 2, "%.*s", (int)strcspn(v, "\n"), v);
        f->fail_at[0] = ',';
        strcat(f->fail_at, ",");
    }
    *state = f;
    return 0;
}

static double mean_of(const grove_reward_batch *b, int i) {
    if (b->kind == GROVE_SAMPLES_TOKENS) { /* the fraction of tokens equal to the reference */
        if (!GROVE_REWARD_BATCH_HAS(b, reference_tokens) || !b->reference_tokens) return 0.0;
        long same = 0;
        for (long e = 0; e < b->length; ++e)
            same += b->tokens[i * b->length + e] == b->reference_tokens[i * b->length + e];
        return (double)same / b->length;
    }
    const long per = (long)b->channels * b->height * b->width;
    double s = 0.0;
    for (long e = 0; e < per; ++e) s += b->images[i * per + e];
    return s / per;
}

static int score(void *state, const grove_reward_batch *b, float *scores, uint8_t *status,
                 char *err, size_t err_len) {
    fixture *f = state;
    char call[32];
    snprintf(call, sizeof call, ",%d,", ++f->calls);
    if (strstr(f->fail_calls, call))
        return snprintf(err, err_len, "fixture: call %d fails as configured", f->calls), 1;
    if (f->sleep_eval_s > 0 && b->n > 0 && b->metadata && b->metadata[0] &&
        strncmp(b->metadata[0], "{\"eval\": true,", 14) == 0) {
        const struct timespec t = {(time_t)f->sleep_eval_s,
                                   (long)((f->sleep_eval_s - (double)(time_t)f->sleep_eval_s) * 1e9)};
        nanosleep(&t, NULL);
    }
    unsigned iteration = 0;
    int slot = 0;
    if (f->fail_at[0] && b->n > 0 && b->metadata && b->metadata[0] &&
        sscanf(b->metadata[0], "{\"iteration\": %u, \"seed\": %*u, \"slot\": %d", &iteration,
               &slot) == 2) {
        snprintf(call, sizeof call, ",%u:%d,", iteration, slot);
        if (strstr(f->fail_at, call))
            return snprintf(err, err_len, "fixture: iteration %u slot %d fails as configured",
                            iteration, slot), 1;
    }
    for (int i = 0; f->require_metadata && i < b->n; ++i) /* a rollout's per-sample JSON */
        if (!b->metadata || !b->metadata[i] || strncmp(b->metadata[i], "{\"iteration\": ", 14) ||
            !strstr(b->metadata[i], "\"checkpoint\": \"") || b->groups[i] != b->groups[i - i % 3])
            return snprintf(err, err_len, "fixture: sample %d lacks its metadata / group", i), 1;
    for (int i = 0; i < b->n; ++i) {
        scores[i] = (float)(f->scale * mean_of(b, i));
#ifdef FIX_NONDET
        scores[i] += (float)f->calls * 1e-3f;
#endif
        status[i] = f->fail_every && i % f->fail_every == f->fail_every - 1 ? GROVE_REWARD_FAILED
                                                                            : GROVE_REWARD_OK;
        if (f->nan_every && i % f->nan_every == f->nan_every - 1) scores[i] = NAN;
    }
    return 0;
}

static int compare(void *state, const grove_reward_batch *a, const grove_reward_batch *b,
                   float *p_first, uint8_t *status, char *err, size_t err_len) {
    (void)state, (void)err, (void)err_len;
    for (int i = 0; i < a->n; ++i) {
        const double ma = mean_of(a, i), mb = mean_of(b, i);
        p_first[i] = ma > mb ? 1.0f : ma < mb ? 0.0f : 0.5f;
        const long per = (long)a->channels * a->height * a->width;
        status[i] = a->images[i * per] > 0.9f ? GROVE_REWARD_FAILED : GROVE_REWARD_OK;
    }
    return 0;
}

static void destroy(void *state) { free(state); }

#if defined(FIX_V2)
#define SYMBOL grove_reward_plugin_v2
#elif defined(FIX_NOSYM)
#define SYMBOL some_other_symbol
#else
#define SYMBOL grove_reward_plugin_v1
#endif

GROVE_REWARD_EXPORT const grove_reward_plugin *SYMBOL(void);
GROVE_REWARD_EXPORT const grove_reward_plugin *SYMBOL(void) {
    static const grove_reward_plugin plugin = {
#ifdef FIX_ABI
        .abi_version = 7,
#else
        .abi_version = GROVE_REWARD_ABI_VERSION,
#endif
#ifdef FIX_SMALL
        .struct_size = 24,
#else
        .struct_size = sizeof(grove_reward_plugin),
#endif
        .name = "fixture", .version = "test",
        .flags = GROVE_REWARD_DETERMINISTIC | GROVE_REWARD_PAIRWISE,
#ifdef FIX_TOKENS
        .kinds = GROVE_SAMPLES_TOKENS,
#else
        .kinds = GROVE_SAMPLES_IMAGE,
#endif
        .create = create, .score = score, .compare = compare, .destroy = destroy};
    return &plugin;
}
