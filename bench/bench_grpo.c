/* bench_grpo: Flow-GRPO iteration cost at a task config (default: the README's main config) —
 * seconds per iteration, rollout images/s and training units/s, with the NFE behind them. Runs
 * the trainer's own rollout and training stages (grpo.h) on a throw-away job: no run directory,
 * no checkpoints, no evals. Prints figures; never fails on time.
 *
 * usage: bench_grpo [CONFIG (default configs/align/mnist-flowgrpo.yaml)] [iterations (default 3)]
 * GROVE_BENCH_DEVICE=cuda runs it on the CUDA module (bench_device.h; scripts/gpu-check.sh).
 * Needs the config's model and reward weights (models/weights/, shipped). */
#include <stdio.h>
#include <stdlib.h>

#include "grove/grpo.h"
#include "bench_device.h"
#include "grove/paths.h"
#include "grove/rundir.h"
#include "grove/run_config.h"

#define CHECK(expr)                                                                                \
    do {                                                                                           \
        if ((expr) != GV_OK) {                                                                     \
            fprintf(stderr, "bench_grpo: %s\n", gv_last_error());                                 \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

int main(int argc, char **argv) {
    char path[4096];
    CHECK(gv_root_path(argc > 1 ? argv[1] : "configs/align/mnist-flowgrpo.yaml", path, sizeof path));
    const int iterations = argc > 2 ? atoi(argv[2]) : 3;
    if (iterations < 1) {
        fprintf(stderr, "usage: bench_grpo [CONFIG] [iterations]\n");
        return 2;
    }
    gv_run_config cfg;
    CHECK(gv_run_config_load(path, NULL, 0, NULL, &cfg, NULL));
    gv_grpo_job j;
    const gv_backend *be = bench_backend("bench_grpo");
    if (!be) return 1;
    CHECK(gv_grpo_setup(&j, &cfg, be));
    int64_t *prompt_of_slot = malloc((size_t)j.P * sizeof *prompt_of_slot);
    gv_reward_moments per_reward[64];
    if (!prompt_of_slot || cfg.n_rewards > 64) {
        fprintf(stderr, "bench_grpo: cannot set up %d prompt slots\n", j.P);
        return 1;
    }
    gv_grpo_state st = {.best_eval = -1e300};
    double t_roll = 0, t_train = 0;
    int64_t nfe_roll = 0, nfe_train = 0, units = 0, images = 0;
    for (int k = 0; k < iterations; ++k) {
        CHECK(gv_data_cursor_next(&j.cursor, j.seed, j.P, prompt_of_slot));
        gv_grpo_rollout_stats rs = {.per_reward = per_reward};
        gv_grpo_train_stats ts;
        const double t0 = gv_rundir_now();
        CHECK(gv_grpo_rollout(&j, (uint32_t)k, prompt_of_slot, &rs));
        CHECK(be->synchronize());
        const double t1 = gv_rundir_now();
        CHECK(gv_grpo_train_iteration(&j, (uint32_t)k, &st, &ts));
        CHECK(be->synchronize());
        const double t2 = gv_rundir_now();
        st.iteration++;
        t_roll += t1 - t0;
        t_train += t2 - t1;
        nfe_roll += rs.nfe;
        nfe_train += ts.nfe_train;
        units += ts.units;
        images += j.S;
        printf("iteration %d: rollout %.2f s, training %.2f s, reward mean %.4f\n", k, t1 - t0,
               t2 - t1, rs.adv.reward_mean);
    }
    char desc[256];
    be->describe(desc, sizeof desc);
    printf("bench_grpo: %s, %d iterations, %s\n", path, iterations, desc);
    printf("  seconds per iteration        %8.2f  (rollout %.2f + training %.2f)\n",
           (t_roll + t_train) / iterations, t_roll / iterations, t_train / iterations);
    printf("  rollout images/s             %8.2f  (%lld denoiser rows/s)\n", images / t_roll,
           (long long)(nfe_roll / t_roll));
    printf("  training units/s             %8.2f  (%lld NFE/s incl. KL reference forwards)\n",
           units / t_train, (long long)(nfe_train / t_train));
    printf("  (figures depend on machine load; run with OMP_WAIT_POLICY=passive on a shared machine)\n");
    free(prompt_of_slot);
    gv_grpo_teardown(&j);
    gv_run_config_free(&cfg);
    return 0;
}
