/* `grove train` of a masked-diffusion model under a real mpirun (suite dist_mdm, the tiny 4x4
 * Sudoku task of mdm_test_util.h, 2 uneven shards; dist_test_util.h runs the CLI): `mpirun -np 2`
 * against one process with the same run.shards for diffu_grpo, trajectory, coupled (balanced
 * aggregation), Co-GRPO (φ, θ, φ phases) and a list of two rewards (built-in sudoku +
 * sudoku_constraints.so), 3 iterations: bitwise the same θ, EMA, Adam moments and φ, the same
 * metrics but for timing; a desynchronized rank caught by the hash check; a Co-GRPO resume from one
 * process to 2 ranks equal to a straight run; a stalled rank timing out and a killed one ending the
 * job (last.h5 intact); the shard rules and a config refusal (an unknown reward built-in) printed
 * once without an abort; the reward_failures streak of fixture_tokens.so's fail_at counted in
 * shard order (the same stop and line in 1 process and 2 ranks, the same records with
 * failed_batches); solved rollouts (a one-blank training set) gathered; and in one process
 * run.shards 3 vs 1 changing only rounding (φ after a φ phase, θ and its gradient after a θ step,
 * within 1e-6 relative). The MPI tests are skipped (with a message) in a build without MPI. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dist_test_util.h"
#include "grove/checkpoint.h"
#include "grove/dataset.h"
#include "grove/sudoku.h"
#include "mdm_test_util.h"

/* ---- grove train, masked diffusion (mdm_train.h) ------------------------------------------------ */

/* The tiny 4x4 Sudoku task of mdm_test_util.h in <tmp>: 3 puzzles x 4 samples per iteration, so 2
   shards are uneven (1 puzzle on rank 0, 2 on rank 1), minibatches of 5 cut across the shards; an
   eval of 8 held-out puzzles (rank 0 alone) at the start and the end; a hash check every iteration. */
static char mdm_cfg[512];

static void mdm_init(void) {
    make_tmp();
    char data[512], ckpt[512];
    snprintf(data, sizeof data, "%s/sudoku4.h5", tmp_root);
    snprintf(ckpt, sizeof ckpt, "%s/tiny-mdt.h5", tmp_root);
    mdm_write_tiny_task(data, ckpt, 300, 16);
    snprintf(mdm_cfg, sizeof mdm_cfg, "%s/mdm.yaml", tmp_root);
    FILE *f = fopen(mdm_cfg, "w");
    cr_assert(f);
    fprintf(f, "run: {name: tiny, seed: 5, threads: 1}\n"
               "model: {checkpoint: tiny-mdt.h5}\n"
               "data: {dataset: sudoku4, path: sudoku4.h5, blanks_min: 6, blanks_max: 9}\n"
               "algorithm: {beta: 0.01}\n"
               "group: {size: 4, prompts_per_iteration: 3}\n"
               "train: {iterations: 3, lr: 1.0e-3, minibatch: 5, inner_epochs: 2, ema_decay: 0.5}\n"
               "eval: {puzzles: 8, blanks: 8, batch: 4}\n"
               "checkpoint: {every: 1}\n"
               "dist: {check_every: 1}\n");
    fclose(f);
}
TestSuite(dist_mdm, .init = mdm_init, .fini = remove_tmp, .timeout = 120);

static int mdm_train(int ranks, const char *fault, const char *dir, const char *extra) {
    return grove_cli("train", ranks, fault, mdm_cfg, dir, extra, NULL);
}

/* metrics.jsonl of <tmp>/<dir> without the timing pairs (seconds, rates, comm_s). */
static char *mdm_metrics(const char *dir) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s/metrics.jsonl", tmp_root, dir);
    char *m = slurp(path);
    const char *keys[] = {"\"rollout_tokens_per_s\":", "\"train_tokens_per_s\":", "\"rollout_s\":",
                          "\"logp_old_s\":", "\"train_s\":", "\"comm_s\":", "\"seconds\":"};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; ++k)
        for (char *p; (p = strstr(m, keys[k]));) {
            char *end = p + strcspn(p, ",}");
            if (*end == ',') end++;
            memmove(p, end, strlen(end) + 1);
        }
    return m;
}

/* Every tensor of `group` in <tmp>/<dir>/last.h5, concatenated (*n floats). */
static float *mdm_group(const char *dir, const char *group, int64_t *n) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s/last.h5", tmp_root, dir);
    return mdm_read_group(path, group, n);
}

/* One process and 2 ranks, both with run.shards 2: bitwise the same θ (raw, EMA, Adam moments),
   φ (with Co-GRPO: /schedule values and moments) and metrics (timing aside); θ moved. */
static void assert_mdm_ranks_agree(const char *name, const char *extra, int co) {
    char one[64], two[64], args[1024];
    snprintf(one, sizeof one, "%s-1", name);
    snprintf(two, sizeof two, "%s-2", name);
    snprintf(args, sizeof args, "--set run.shards=2 %s", extra);
    cr_assert_eq(mdm_train(0, NULL, one, args), 0, "%s", err_of(one));
    cr_assert_eq(mdm_train(2, NULL, two, args), 0, "%s", err_of(two));
    const char *groups[] = {"params", "ema", "optim/m", "optim/v", "schedule"};
    for (int g = 0; g < (co ? 5 : 4); ++g) {
        int64_t n1, n2;
        float *a = mdm_group(one, groups[g], &n1), *b = mdm_group(two, groups[g], &n2);
        cr_assert_eq(n1, n2);
        cr_assert_eq(memcmp(a, b, (size_t)n1 * sizeof(float)), 0, "%s: /%s of one process and 2 ranks "
                     "differ", name, groups[g]);
        free(a);
        free(b);
    }
    char *m1 = mdm_metrics(one), *m2 = mdm_metrics(two);
    cr_assert_str_eq(m1, m2, "metrics differ:\n--- one process\n%s\n--- 2 ranks\n%s", m1, m2);
    cr_assert_eq(lines_with(m2, "\"reward_mean\":"), 3, "3 iteration records from rank 0:\n%s", m2);
    cr_assert_eq(lines_with(m2, "\"eval\":{"), 2, "evals at the start and the end:\n%s", m2);
    free(m1);
    free(m2);
    /* the run trained θ: the weights left the initial checkpoint */
    char path[2][512];
    snprintf(path[0], sizeof path[0], "%s/tiny-mdt.h5", tmp_root);
    snprintf(path[1], sizeof path[1], "%s/%s/last.h5", tmp_root, two);
    gv_image_model m[2];
    for (int i = 0; i < 2; ++i)
        cr_assert_eq(gv_image_model_load(path[i], grove_backend_cpu(), 0, &m[i]), GV_OK, "%s",
                     gv_last_error());
    cr_assert_eq(m[0].params.total, m[1].params.total);
    cr_assert_neq(memcmp(m[0].params.values, m[1].params.values,
                         (size_t)m[0].params.total * sizeof(float)), 0, "θ did not move");
    gv_image_model_free(&m[0]);
    gv_image_model_free(&m[1]);
}

/* Every tensor of `group` in <tmp>/<a>/last.h5 and <tmp>/<b>/last.h5 agrees to `tol` relative,
   tensor by tensor (||x_a − x_b|| <= tol ||x_a||), so a small tensor such as an Adam moment is not
   drowned by a large one; a tensor below 1e-3 of the group's norm is held to tol x 1e-3 of the
   group's norm instead (a gradient that is zero in exact arithmetic, e.g. the attention keys' bias,
   which the softmax ignores, is rounding noise alone). With `grad` (a group of a holding the same
   tensor names, Adam's m): the tensors whose `grad` tensor is such noise are skipped, as Adam turns
   noise into steps of ±lr. Returns the group's squared norm in a. */
static double mdm_assert_group_close(const char *a, const char *b, const char *group, double tol,
                                     const char *grad) {
    int64_t all_n;
    float *all = mdm_group(a, group, &all_n);
    double group_norm = 0.0;
    for (int64_t e = 0; e < all_n; ++e) group_norm += (double)all[e] * all[e];
    group_norm = sqrt(group_norm);
    free(all);
    double grad_norm = 0.0;
    if (grad) {
        all = mdm_group(a, grad, &all_n);
        for (int64_t e = 0; e < all_n; ++e) grad_norm += (double)all[e] * all[e];
        grad_norm = sqrt(grad_norm);
        free(all);
    }
    char pa[512], pb[512];
    snprintf(pa, sizeof pa, "%s/%s/last.h5", tmp_root, a);
    snprintf(pb, sizeof pb, "%s/%s/last.h5", tmp_root, b);
    gv_ckpt_reader *r[2] = {NULL, NULL};
    cr_assert_eq(gv_ckpt_open(pa, &r[0]), GV_OK, "%s", gv_last_error());
    cr_assert_eq(gv_ckpt_open(pb, &r[1]), GV_OK, "%s", gv_last_error());
    char **names = NULL;
    int count = 0;
    cr_assert_eq(gv_ckpt_list(r[0], group, &names, &count), GV_OK, "%s", gv_last_error());
    cr_assert(count > 0, "%s: nothing in /%s", pa, group);
    double total = 0.0;
    for (int i = 0; i < count; ++i) {
        gv_shape sh;
        cr_assert_eq(gv_ckpt_tensor_shape(r[0], group, names[i], &sh), GV_OK, "%s", gv_last_error());
        int64_t n = 1;
        for (int d = 0; d < sh.rank; ++d) n *= sh.d[d];
        if (grad) {
            float *gt = malloc((size_t)n * sizeof(float));
            cr_assert_eq(gv_ckpt_read_tensor(r[0], grad, names[i], &sh, gt), GV_OK, "%s", gv_last_error());
            double gn = 0.0;
            for (int64_t e = 0; e < n; ++e) gn += (double)gt[e] * gt[e];
            free(gt);
            if (sqrt(gn) < 1e-3 * grad_norm) continue;
        }
        float *x[2];
        for (int k = 0; k < 2; ++k) {
            x[k] = malloc((size_t)n * sizeof(float));
            cr_assert_eq(gv_ckpt_read_tensor(r[k], group, names[i], &sh, x[k]), GV_OK, "%s",
                         gv_last_error());
        }
        double diff = 0.0, norm = 0.0;
        for (int64_t e = 0; e < n; ++e) {
            diff += ((double)x[0][e] - x[1][e]) * ((double)x[0][e] - x[1][e]);
            norm += (double)x[0][e] * x[0][e];
        }
        const double scale = fmax(sqrt(norm), 1e-3 * group_norm);
        cr_assert(sqrt(diff) <= tol * scale, "/%s/%s: |%s − %s| = %.3g, |%s| = %.3g (tolerance %g "
                  "relative; group norm %.3g)", group, names[i], a, b, sqrt(diff), a, sqrt(norm), tol,
                  group_norm);
        total += norm;
        free(x[0]);
        free(x[1]);
    }
    gv_ckpt_names_free(names, count);
    gv_ckpt_close(r[0]);
    gv_ckpt_close(r[1]);
    return total;
}

/* One θ step (`theta`: the settings) with 1 shard and with 3 (runs <name>-1, <name>-3): the Adam
   moments (a gradient there) and the weights agree to 1e-6. */
static void theta_step_shards_agree(const char *name, const char *theta) {
    char args[1024], r1[64], r3[64];
    snprintf(r1, sizeof r1, "%s-1", name);
    snprintf(r3, sizeof r3, "%s-3", name);
    snprintf(args, sizeof args, "--set run.shards=1 %s", theta);
    cr_assert_eq(mdm_train(0, NULL, r1, args), 0, "%s", err_of(r1));
    snprintf(args, sizeof args, "--set run.shards=3 %s", theta);
    cr_assert_eq(mdm_train(0, NULL, r3, args), 0, "%s", err_of(r3));
    cr_assert(mdm_assert_group_close(r1, r3, "optim/m", 1e-6, NULL) > 0.0, "θ had a gradient");
    mdm_assert_group_close(r1, r3, "params", 1e-6, "optim/m");
}

/* In one process, run.shards only changes rounding (as dist/shards_change_only_rounding_in_one_
   process for pretraining): 3 shards of 1 puzzle each against 1 shard. φ after one φ phase of
   Co-GRPO (2 φ steps: values and Adam moments — m holds 0.1 × the first gradient, so a φ
   normaliser that used each shard's own acted units instead of all shards' scales the shards'
   gradients unevenly and fails here), and θ after one θ step (the whole batch in one minibatch:
   the values, and optim/m = 0.1 × the gradient summed over the shards). */
Test(dist_mdm, one_or_three_shards_differ_only_in_rounding) {
    const char *co = "--set co_grpo.enabled=true --set co_grpo.phase_len=1 --set co_grpo.lr=0.05 "
                     "--set sampler.steps=4 --set algorithm.advantage=zscore --set eval.puzzles=0 "
                     "--stop-after 1";
    const char *theta = "--set train.inner_epochs=1 --set train.minibatch=12 --set eval.puzzles=0 "
                        "--set algorithm.advantage=zscore --stop-after 1";
    char args[1024];
    snprintf(args, sizeof args, "--set run.shards=1 %s", co);
    cr_assert_eq(mdm_train(0, NULL, "phi-1", args), 0, "%s", err_of("phi-1"));
    snprintf(args, sizeof args, "--set run.shards=3 %s", co);
    cr_assert_eq(mdm_train(0, NULL, "phi-3", args), 0, "%s", err_of("phi-3"));
    char *m = mdm_metrics("phi-3");
    cr_assert(strstr(m, "\"phase\":\"phi\"") && strstr(m, "\"phi_step\":2"), "a φ phase:\n%s", m);
    free(m);
    cr_assert(mdm_assert_group_close("phi-1", "phi-3", "schedule", 1e-6, NULL) > 0.0);
    theta_step_shards_agree("theta", theta);
}

/* algorithm.order_logp: the sampler's order record is written per shard at the shard's rows (and
   gathered per minibatch row): one shard and three shards train the same θ step up to rounding, and
   2 ranks equal one process bit for bit. */
Test(dist_mdm, order_logp_one_or_three_shards_and_two_ranks) {
    theta_step_shards_agree("ordsh", "--set train.inner_epochs=1 --set train.minibatch=12 "
                            "--set eval.puzzles=0 --set algorithm.advantage=zscore "
                            "--set algorithm.estimator=trajectory --set sampler.steps=4 "
                            "--set algorithm.order_logp=true --stop-after 1");
    NEED_MPI();
    assert_mdm_ranks_agree("order", "--set algorithm.estimator=trajectory --set algorithm.order_logp=true "
                                    "--set algorithm.advantage=group_mean --set sampler.steps=4", 0);
}

Test(dist_mdm, diffu_grpo_two_ranks_equal_one_process_bit_for_bit) {
    NEED_MPI();
    assert_mdm_ranks_agree("diffu", "--set algorithm.estimator=diffu_grpo "
                                    "--set algorithm.advantage=group_mean", 0);
}

/* credit cell: each rank scores the cells of its own shards' groups (mdm_train.h) */
Test(dist_mdm, cell_credit_two_ranks_equal_one_process_bit_for_bit) {
    NEED_MPI();
    assert_mdm_ranks_agree("cell", "--set algorithm.estimator=diffu_grpo --set algorithm.credit=cell", 0);
}

/* trajectory: each rank's views come from its own shards' commit records */
Test(dist_mdm, trajectory_two_ranks_equal_one_process_bit_for_bit) {
    NEED_MPI();
    assert_mdm_ranks_agree("trajectory", "--set algorithm.estimator=trajectory "
                                         "--set algorithm.advantage=group_mean --set sampler.steps=4", 0);
}

Test(dist_mdm, coupled_two_ranks_equal_one_process_bit_for_bit) {
    NEED_MPI();
    assert_mdm_ranks_agree("coupled", "--set algorithm.estimator=coupled "
                                      "--set algorithm.aggregation=balanced", 0);
}

/* Co-GRPO in phases of 1 iteration: φ, θ, φ. φ's gradient is summed over the shards (acted units
   of both counted), θ's as above; 4 φ steps in all (2 inner epochs per φ iteration). */
Test(dist_mdm, co_grpo_two_ranks_equal_one_process_bit_for_bit) {
    NEED_MPI();
    assert_mdm_ranks_agree("co", "--set co_grpo.enabled=true --set co_grpo.phase_len=1 "
                                 "--set co_grpo.lr=0.05 --set co_grpo.sigma_decay_iterations=4 "
                                 "--set sampler.steps=4 --set algorithm.advantage=zscore", 1);
    char *m = mdm_metrics("co-2");
    cr_assert_eq(lines_with(m, "\"phase\":\"phi\""), 2, "%s", m);
    cr_assert_eq(lines_with(m, "\"phase\":\"theta\""), 1, "%s", m);
    cr_assert(strstr(m, "\"phi_step\":4"), "4 φ steps:\n%s", m);
    free(m);
}

/* Two rewards (the built-in sudoku and sudoku_constraints.so, reference-free), normalized then
   summed: both columns and their statuses scored per shard and gathered. */
Test(dist_mdm, reward_list_two_ranks_equal_one_process_bit_for_bit) {
    NEED_MPI();
    char extra[1024];
    snprintf(extra, sizeof extra, "--set rewards_mode=normalize_then_sum --set 'rewards=[{builtin: "
             "sudoku, weight: 0.5}, {plugin: %s/plugins/sudoku_constraints.so, weight: 1.0}]' "
             "--set algorithm.advantage=zscore", GROVE_BINARY_DIR);
    assert_mdm_ranks_agree("rewards", extra, 0);
}

/* The reward_failures streak in shard order (as dist_train/reward_failure_streak_is_counted_in_
   shard_order): fixture_tokens.so fails the token batches of (rollout 1, slot 1) — shard 1, rank 1
   under mpirun -np 2 — and (rollout 2, slot 0) — shard 0, rank 0; with max_consecutive 2 one process
   and 2 ranks both stop in the third iteration with the same line, printed once, without an abort;
   rank 0 notes the masked batch of rank 1 once; the records before the stop are equal (the masked
   batch leaves the same rewards and advantages; failed_batches 0 then 1). */
Test(dist_mdm, reward_failure_streak_is_counted_in_shard_order) {
    NEED_MPI();
    char extra[1024];
    snprintf(extra, sizeof extra, "--set run.shards=2 --set reward_failures.max_consecutive=2 "
             "--set eval.puzzles=0 --set 'rewards=[{builtin: sudoku}, {plugin: "
             "%s/test_plugins/fixture_tokens.so, config: {fail_at: \"1:1,2:0\"}}]'", GROVE_BINARY_DIR);
    cr_assert_neq(mdm_train(0, NULL, "streak-1", extra), 0, "%s", err_of("streak-1"));
    cr_assert_neq(mdm_train(2, NULL, "streak-2", extra), 0, "%s", err_of("streak-2"));
    assert_streak_stops_alike(8);
    char *m1 = mdm_metrics("streak-1"), *m2 = mdm_metrics("streak-2");
    cr_assert_eq(lines_with(m1, "\"optimizer_step\":"), 2, "stopped in the third iteration:\n%s", m1);
    cr_assert_eq(lines_with(m1, "\"fixture\":{\"failed_batches\":0}"), 1, "%s", m1);
    cr_assert_eq(lines_with(m1, "\"fixture\":{\"failed_batches\":1}"), 1, "%s", m1);
    cr_assert_str_eq(m1, m2);
    free(m1);
    free(m2);
}

/* A training set of easy puzzles (one blank each; the rest of the tiny task's dataset unchanged):
   the random tiny mdt fills the blank right about one time in four, so rollouts get solved. */
static void mdm_write_easy_data(const char *path) {
    gv_dataset ds;
    cr_assert_eq(gv_dataset_from_sudoku(GV_DATASET_SUDOKU4, 300, 16, &ds), GV_OK, "%s", gv_last_error());
    for (int64_t r = 0; r < ds.train.n; ++r) {
        uint8_t *puz = (uint8_t *)gv_sudoku_puzzle(&ds.train, r);
        const uint8_t *sol = gv_sudoku_solution(&ds.train, r);
        int first = -1;
        for (int c = 0; c < 16; ++c) {
            if (puz[c] == 0 && first < 0) first = c;
            puz[c] = sol[c];
        }
        cr_assert(first >= 0);
        puz[first] = 0;
    }
    cr_assert_eq(gv_dataset_save(&ds, path), GV_OK, "%s", gv_last_error());
    gv_dataset_free(&ds);
}

/* Solved flags are scored per shard and gathered: with one-blank puzzles some rollouts are solved,
   and rollout_solved (rank 0's count over all shards) and everything else equal one process's. */
Test(dist_mdm, solved_rollouts_are_gathered) {
    NEED_MPI();
    char data[512], extra[1024];
    snprintf(data, sizeof data, "%s/easy.h5", tmp_root);
    mdm_write_easy_data(data);
    snprintf(extra, sizeof extra, "--set run.shards=2 --set data.path=%s --set data.blanks_min=1 "
             "--set data.blanks_max=1 --set eval.puzzles=0", data);
    cr_assert_eq(mdm_train(0, NULL, "easy-1", extra), 0, "%s", err_of("easy-1"));
    cr_assert_eq(mdm_train(2, NULL, "easy-2", extra), 0, "%s", err_of("easy-2"));
    char *m1 = mdm_metrics("easy-1"), *m2 = mdm_metrics("easy-2");
    cr_assert_str_eq(m1, m2, "metrics differ:\n--- one process\n%s\n--- 2 ranks\n%s", m1, m2);
    int records = 0, solved_on_both = 0;
    for (const char *p = m1; (p = strstr(p, "\"rollout_solved\":")); ++records) {
        p += strlen("\"rollout_solved\":");
        solved_on_both += strtod(p, NULL) > 0.0;
    }
    cr_assert_eq(records, 3, "%s", m1);
    cr_assert(solved_on_both > 0, "no rollout solved:\n%s", m1);
    free(m1);
    free(m2);
}

Test(dist_mdm, desynchronized_rank_is_caught_by_the_hash_check) {
    NEED_MPI();
    int rc = mdm_train(2, "desync:1:1", "desync", "--set run.shards=2");
    char *err = err_of("desync");
    cr_assert_neq(rc, 0, "a desynchronized run must fail");
    cr_assert_eq(lines_with(err, "parameters differ across ranks"), 1, "one line expected:\n%s", err);
    cr_assert(strstr(err, "parameters differ across ranks (model) after iteration 2: rank 1 ("),
              "%s", err);
    free(err);
}

/* Every rank reads last.h5 (θ, Adam, the cursor and, with Co-GRPO, φ): 1 iteration in one process,
   the other 2 under mpirun -np 2 = 3 iterations in one process straight. */
Test(dist_mdm, resume_across_rank_counts_equals_one_process_straight) {
    NEED_MPI();
    const char *co = "--set run.shards=2 --set co_grpo.enabled=true --set co_grpo.phase_len=1 "
                     "--set sampler.steps=4 --set algorithm.advantage=zscore";
    char stop[512];
    snprintf(stop, sizeof stop, "%s --stop-after 1", co);
    cr_assert_eq(mdm_train(0, NULL, "straight", co), 0, "%s", err_of("straight"));
    cr_assert_eq(mdm_train(0, NULL, "resumed", stop), 0, "%s", err_of("resumed"));
    cr_assert_eq(mdm_train(2, NULL, "resumed", co), 0, "%s", err_of("resumed"));
    const char *groups[] = {"params", "ema", "optim/m", "optim/v", "schedule"};
    for (int g = 0; g < 5; ++g) {
        int64_t n1, n2;
        float *a = mdm_group("straight", groups[g], &n1), *b = mdm_group("resumed", groups[g], &n2);
        cr_assert_eq(n1, n2);
        cr_assert_eq(memcmp(a, b, (size_t)n1 * sizeof(float)), 0, "/%s differs after the resume", groups[g]);
        free(a);
        free(b);
    }
    char *a = mdm_metrics("straight"), *b = mdm_metrics("resumed");
    cr_assert_str_eq(a, b);
    free(a);
    free(b);
}

/* A rank that hangs at iteration 2 makes rank 0 fail within dist.timeout_s with a rank-tagged
   line; a killed rank ends the job non-zero with last.h5 intact (it loads). */
Test(dist_mdm, stalled_or_killed_rank_stops_the_job) {
    NEED_MPI();
    double t0 = now_s();
    int rc = mdm_train(2, "stall:1:2", "stalled", "--set run.shards=2 --set dist.timeout_s=1.5");
    const double secs = now_s() - t0;
    char *err = err_of("stalled");
    cr_assert_neq(rc, 0, "%s", err);
    cr_assert(secs < 1.5 + 10.0, "the job took %.1f s", secs);
    cr_assert(strstr(err, "rank 0: dist: "), "%s", err);
    cr_assert(strstr(err, "not every rank arrived within dist.timeout_s = 1.5 s"), "%s", err);
    free(err);
    t0 = now_s();
    rc = mdm_train(2, "kill:1:2", "killed", "--set run.shards=2 --set dist.timeout_s=10");
    cr_assert_neq(rc, 0, "a killed rank must fail the job");
    cr_assert(now_s() - t0 < 10.0, "the job took %.1f s, beyond dist.timeout_s", now_s() - t0);
    assert_last_h5_loads("killed");
}

Test(dist_mdm, shard_rules_are_refused_with_their_reason) {
    cr_assert_neq(mdm_train(0, NULL, "wide", "--set run.shards=4"), 0);
    char *err = err_of("wide");
    cr_assert(strstr(err, "run.shards 4: at most group.prompts_per_iteration (3); a shard holds "
                          "whole puzzle groups"), "%s", err);
    free(err);
    NEED_MPI();
    cr_assert_neq(mdm_train(2, NULL, "few", "--set run.shards=1"), 0);
    err = err_of("few");
    cr_assert(strstr(err, "run.shards = 1 but 2 ranks run: every rank needs a shard"), "%s", err);
    cr_assert_eq(lines_with(err, "every rank needs a shard"), 1, "printed once:\n%s", err);
    cr_assert_null(strstr(err, "MPI_ABORT"), "%s", err);
    free(err);
    /* a refusal of the config (mdm_setup.c check_supported) is raised alike on every rank: rank 0
       alone prints its one line, naming the entry and what the Sudoku trainer takes; no abort */
    cr_assert_neq(mdm_train(2, NULL, "sudok", "--set run.shards=2 --set 'rewards=[{builtin: sudok}]'"), 0);
    err = err_of("sudok");
    cr_assert(strstr(err, "rewards[0]: builtin 'sudok' is unknown; the Sudoku trainer takes "
                          "{builtin: sudoku} or a token-batch plugin"), "%s", err);
    cr_assert_eq(lines_with(err, "rewards[0]"), 1, "printed once:\n%s", err);
    cr_assert_null(strstr(err, "known:"), "no list of the image built-ins:\n%s", err);
    cr_assert_null(strstr(err, "MPI_ABORT"), "%s", err);
    free(err);
    cr_assert_neq(mdm_train(2, NULL, "wide2", "--set run.shards=4"), 0);
    err = err_of("wide2");
    cr_assert_eq(lines_with(err, "run.shards 4: at most group.prompts_per_iteration (3)"), 1,
                 "printed once:\n%s", err);
    cr_assert_null(strstr(err, "MPI_ABORT"), "%s", err);
    free(err);
}
