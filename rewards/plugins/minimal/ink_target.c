/* A minimal grove reward plugin (README "Write a reward plugin"): -|mean(p) - target| per image,
 * target from `config: {target: 0.2}` (default 0.2). Needs only grove/reward.h:
 *   cc -shared -fPIC -O2 -I<grove>/rewards/include ink_target.c -o ink_target.so */
#include <grove/reward.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { double target; } ink_target;

static int create(const char *config, void **state, char *err, size_t err_len) {
    ink_target *s = malloc(sizeof *s);
    if (!s) return snprintf(err, err_len, "out of memory"), 1;
    s->target = 0.2;
    const char *line = strstr(config, "target="); /* config is "key=value\n" lines */
    if (line && (line == config || line[-1] == '\n')) {
        char *end;
        s->target = strtod(line + 7, &end);
        if (end == line + 7 || !(s->target >= 0.0 && s->target <= 1.0)) {
            snprintf(err, err_len, "target: expected a number in [0, 1]");
            return free(s), 1;
        }
    }
    *state = s;
    return 0;
}

static int score(void *state, const grove_reward_batch *b, float *scores, uint8_t *status,
                 char *err, size_t err_len) {
    const ink_target *s = state;
    const long per = (long)b->channels * b->height * b->width;
    (void)err, (void)err_len;
    for (int i = 0; i < b->n; ++i) {
        double sum = 0.0;
        for (long e = 0; e < per; ++e) sum += b->images[i * per + e];
        scores[i] = (float)-fabs(sum / per - s->target);
        status[i] = GROVE_REWARD_OK;
    }
    return 0;
}

static void destroy(void *state) { free(state); }

GROVE_REWARD_EXPORT const grove_reward_plugin *grove_reward_plugin_v1(void) {
    static const grove_reward_plugin plugin = {
        .abi_version = GROVE_REWARD_ABI_VERSION, .struct_size = sizeof(grove_reward_plugin),
        .name = "ink_target", .version = "1.0",
        .flags = GROVE_REWARD_DETERMINISTIC | GROVE_REWARD_THREAD_SAFE,
        .kinds = GROVE_SAMPLES_IMAGE,
        .create = create, .score = score, .destroy = destroy};
    return &plugin;
}
