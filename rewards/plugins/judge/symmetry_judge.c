/* An example pairwise judge (Pref-GRPO, ALGORITHMS.md §8): compare() says how likely image a is
 * "better" than image b, P = sigmoid((f(a) - f(b)) / temperature + bias), where f is the image's
 * left-right symmetry 1 - mean|p - mirror(p)| (or its ink, `stat: ink`). It has no score(): used
 * through `reward_transform: win_rate` (preset pref_grpo) it turns into win rates in [0, 1].
 * Config: {stat: symmetry | ink, temperature: 0.01, bias: 0.0}; a non-zero bias simulates a judge
 * with position bias (what `pairwise.both_orders` cancels). Needs only grove/reward.h and the
 * bundled plugins' config reader (../plugin_config.h).
 * Deliberately not here: a learned judge (see rewards/plugins/neural for grove's kernels). */
#include <grove/reward.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../plugin_config.h"

typedef struct judge {
    int ink;             /* 1: f = mean(p); 0: f = symmetry */
    double temperature, bias;
} judge;

static int create(const char *config, void **state, char *err, size_t err_len) {
    judge *j = calloc(1, sizeof *j);
    if (!j) return snprintf(err, err_len, "out of memory"), 1;
    j->temperature = 0.01;
    char v[64];
    if (plugin_config_value(config, "stat", v, sizeof v)) {
        if (strcmp(v, "ink") == 0) j->ink = 1;
        else if (strcmp(v, "symmetry") != 0) {
            snprintf(err, err_len, "stat: expected symmetry or ink");
            return free(j), 1;
        }
    }
    if (plugin_config_value(config, "temperature", v, sizeof v)) j->temperature = strtod(v, NULL);
    if (plugin_config_value(config, "bias", v, sizeof v)) j->bias = strtod(v, NULL);
    if (!(j->temperature > 0.0)) {
        snprintf(err, err_len, "temperature: expected a positive number");
        return free(j), 1;
    }
    *state = j;
    return 0;
}

static double feature(const judge *j, const grove_reward_batch *b, int i) {
    const int W = b->width, rows = b->channels * b->height;
    const float *p = b->images + (long)i * rows * W;
    double s = 0.0;
    for (int y = 0; y < rows; ++y)
        for (int x = 0; x < W; ++x)
            s += j->ink ? p[y * W + x] : fabs((double)p[y * W + x] - p[y * W + W - 1 - x]);
    return j->ink ? s / ((double)rows * W) : 1.0 - s / ((double)rows * W);
}

static int compare(void *state, const grove_reward_batch *a, const grove_reward_batch *b,
                   float *p_first, uint8_t *status, char *err, size_t err_len) {
    const judge *j = state;
    if (a->n != b->n || a->width != b->width || a->height != b->height)
        return snprintf(err, err_len, "batches differ in shape"), 1;
    for (int i = 0; i < a->n; ++i) {
        const double z = (feature(j, a, i) - feature(j, b, i)) / j->temperature + j->bias;
        p_first[i] = (float)(1.0 / (1.0 + exp(-z)));
        status[i] = GROVE_REWARD_OK;
    }
    return 0;
}

static void destroy(void *state) { free(state); }

GROVE_REWARD_EXPORT const grove_reward_plugin *grove_reward_plugin_v1(void) {
    static const grove_reward_plugin plugin = {
        .abi_version = GROVE_REWARD_ABI_VERSION, .struct_size = sizeof(grove_reward_plugin),
        .name = "symmetry_judge", .version = "1.0",
        .flags = GROVE_REWARD_PAIRWISE | GROVE_REWARD_DETERMINISTIC | GROVE_REWARD_THREAD_SAFE,
        .kinds = GROVE_SAMPLES_IMAGE,
        .create = create, .compare = compare, .destroy = destroy};
    return &plugin;
}
