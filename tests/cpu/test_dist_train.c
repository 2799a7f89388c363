/* `grove train` of image GRPO under a real mpirun (suite dist_train, the tiny UNet of
 * grpo_test_util.h; dist_test_util.h runs the CLI): `mpirun -np 2` against one process with the
 * same run.shards for Flow-GRPO, a BranchGRPO tree (prob-weighted fusion, so the siblings'
 * log-probs cross ranks; uneven shards), a width-pruned tree and Pref-GRPO win rates of the
 * symmetry judge plugin, 3 iterations: the same parameters and the same metrics lines but for
 * timing, comm_s logged by the 2 ranks only; a resume that changes the rank count; a
 * desynchronized rank caught by the hash check; a killed rank making the other exit with last.h5
 * intact; a stalled rank timing out; the reward_failures streak counted in shard order (the
 * fixture plugin's fail_at: 1 process and 2 ranks stop at the same iteration with the same one
 * line); rank 0's slow eval waited out under dist.eval_timeout_s; the shard rules refused with
 * their messages, printed once; DenseGRPO (dense_grpo preset with 2 calibration rounds) under
 * mpirun -np 2 = one process (metrics, parameters, stored ψ), and run.shards 2 vs 1 in one process
 * equal in ψ, calibration records and the first rollout (parameters differ by summation order);
 * rollout dumps with DenseGRPO under mpirun -np 3 (uneven shards, an empty calibration shard):
 * every dataset and attribute of rollouts-<k>.h5 byte-equal to one process's (HDF5 API); a
 * calibrated DenseGRPO run resumed under 2 ranks equal to one process straight.
 * Skipped (with a message) in a build without MPI. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dist_test_util.h"
#include "grove/checkpoint.h"
#include "grpo_test_util.h"
#include "h5_compare_util.h"

/* ---- grove train ------------------------------------------------------------------------------- */

static void train_init(void) {
    make_tmp();
    write_models(); /* grpo_test_util.h: tiny UNet + gold classifier in tmpdir */
}
static void train_fini(void) {
    remove_tmp();
    remove_tree();
}
TestSuite(dist_train, .init = train_init, .fini = train_fini, .timeout = 120);

#define ALIGN GROVE_SOURCE_DIR "/tests/data/align/tiny.yaml"

/* `grove train` of the tiny config with the temp models, one thread per process, a hash check
   every iteration, `extra` appended. */
static int train(int ranks, const char *fault, const char *dir, const char *extra, double *secs) {
    char args[4096];
    snprintf(args, sizeof args,
             "--set model.checkpoint=%s --set 'eval_rewards=[{builtin: classifier, model: %s}, "
             "{builtin: ink}]' --set run.threads=1 --set train.iterations=3 "
             "--set dist.check_every=1 %s", unet_path, gold_path, extra);
    return grove_cli("train", ranks, fault, ALIGN, dir, args, secs);
}

/* metrics.jsonl of <tmp_root>/<dir> without timing fields (samples_per_s, comm_s, wall_s). */
static char *train_metrics(const char *dir) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s/metrics.jsonl", tmp_root, dir);
    char *m = slurp(path);
    strip_timing(m);
    return m;
}

/* One process and `ranks` ranks with the same run.shards: the same metrics lines (timing aside),
   the same raw and EMA weights; 3 iteration records from rank 0 alone. */
static void assert_train_n_ranks_agree(const char *name, const char *extra, int ranks) {
    char one[64], two[64], h1[17], h2[17];
    snprintf(one, sizeof one, "%s-1", name);
    snprintf(two, sizeof two, "%s-2", name);
    cr_assert_eq(train(0, NULL, one, extra, NULL), 0, "%s", err_of(one));
    cr_assert_eq(train(ranks, NULL, two, extra, NULL), 0, "%s", err_of(two));
    /* the ranks cooperated: rank 0 logs its seconds in collectives, one process has none */
    char path[512];
    snprintf(path, sizeof path, "%s/%s/metrics.jsonl", tmp_root, two);
    char *raw = slurp(path);
    cr_assert_eq(lines_with(raw, "\"comm_s\":"), 3, "2 ranks log comm_s per iteration:\n%s", raw);
    free(raw);
    snprintf(path, sizeof path, "%s/%s/metrics.jsonl", tmp_root, one);
    raw = slurp(path);
    cr_assert_null(strstr(raw, "\"comm_s\":"), "one process logs no comm_s:\n%s", raw);
    free(raw);
    char *m1 = train_metrics(one), *m2 = train_metrics(two);
    cr_assert_str_eq(m1, m2, "metrics differ:\n--- one process\n%s\n--- 2 ranks\n%s", m1, m2);
    cr_assert_eq(lines_with(m2, "\"optimizer_step\":"), 3, "%s", m2);
    cr_assert(strstr(m2, "\"ratio_first_max\":1,"), "the on-policy ratio is exactly 1:\n%s", m2);
    free(m1);
    free(m2);
    last_hash_in(tmp_root, one, h1);
    last_hash_in(tmp_root, two, h2);
    cr_assert_str_eq(h1, h2);
    assert_same_weights(one, two);
}

static void assert_train_ranks_agree(const char *name, const char *extra) {
    assert_train_n_ranks_agree(name, extra, 2);
}

Test(dist_train, flow_grpo_two_ranks_equal_one_process_bit_for_bit) {
    NEED_MPI();
    assert_train_ranks_agree("flow", "--set run.shards=2");
}

/* A BranchGRPO tree with prob-weighted fusion (credit.c reads the children's log-probs, computed
   on the rank owning them), 4 prompts in 3 uneven shards (rank 0 one shard, rank 1 two). */
Test(dist_train, branch_tree_two_ranks_equal_one_process_bit_for_bit) {
    NEED_MPI();
    assert_train_ranks_agree("tree", "--set algorithm.preset=branch_grpo --set sampler.steps=6 "
                                     "--set 'algorithm.overrides={branch: {fusion: prob_weighted}}' "
                                     "--set group.prompts_per_iteration=4 --set run.shards=3");
}

/* A BranchGRPO tree with per-branch width pruning (N = 10: splits {0, 2, 3, 5}, so there are tail
   edges to prune; at N = 6 there are none): the pruned edge set is computed on every rank from
   the gathered rewards, and fewer edges than the tree has are trained. */
Test(dist_train, pruned_tree_two_ranks_equal_one_process_bit_for_bit) {
    NEED_MPI();
    assert_train_ranks_agree("pruned", "--set algorithm.preset=branch_grpo --set sampler.steps=10 "
                                       "--set 'algorithm.overrides={branch: {prune: {width: "
                                       "per_branch, ratio: 0.5}}}' --set run.shards=2");
    char *m = train_metrics("pruned-2");
    const char *e = strstr(m, "\"edges\":"), *t = strstr(m, "\"edges_trained\":");
    cr_assert(e && t, "%s", m);
    const long edges = strtol(e + 8, NULL, 10), trained = strtol(t + 16, NULL, 10);
    cr_assert(trained > 0 && trained < edges, "pruning trains fewer edges: %ld of %ld", trained, edges);
    free(m);
}

/* Pref-GRPO: win rates of a pairwise judge plugin within each group (a group lies in one shard),
   judgement counts summed over the ranks. */
Test(dist_train, win_rate_two_ranks_equal_one_process_bit_for_bit) {
    NEED_MPI();
    char extra[1024];
    snprintf(extra, sizeof extra, "--set algorithm.preset=pref_grpo --set 'rewards=[{plugin: "
             "%s/plugins/symmetry_judge.so, config: {stat: ink, temperature: 0.002, bias: 0.3}}]' "
             "--set run.shards=2", GROVE_BINARY_DIR);
    assert_train_ranks_agree("pref", extra);
    char *m = train_metrics("pref-2");
    const char *p = strstr(m, "\"pairwise_judged\":");
    cr_assert(p && strtol(p + 18, NULL, 10) > 0, "win rates were judged:\n%s", m);
    free(m);
}



/* reward_failures.max_consecutive counts the batches in shard order over the whole job: the
   fixture plugin fails the batches of (iteration 1, slot 1) and (iteration 2, slot 0) —
   consecutive in shard order, but on different ranks under mpirun -np 2 (shard 1 on rank 1,
   shard 0 on rank 0). With max_consecutive 2 one process and 2 ranks both stop in iteration 2
   (two iteration records) with the same message, printed once. */
Test(dist_train, reward_failure_streak_is_counted_in_shard_order) {
    NEED_MPI();
    char extra[1024];
    snprintf(extra, sizeof extra, "--set run.shards=2 --set reward_failures.max_consecutive=2 "
             "--set 'rewards=[{plugin: %s/test_plugins/fixture_good.so, config: {fail_at: "
             "\"1:1,2:0\"}}]'", GROVE_BINARY_DIR);
    cr_assert_neq(train(0, NULL, "streak-1", extra, NULL), 0, "%s", err_of("streak-1"));
    cr_assert_neq(train(2, NULL, "streak-2", extra, NULL), 0, "%s", err_of("streak-2"));
    assert_streak_stops_alike(3);
    char *m1 = train_metrics("streak-1"), *m2 = train_metrics("streak-2");
    cr_assert_eq(lines_with(m1, "\"optimizer_step\":"), 2, "stopped in iteration 2:\n%s", m1);
    cr_assert_str_eq(m1, m2);
    free(m1);
    free(m2);
}

/* Rank 0 evaluates alone (2 s of eval, sleep_eval_s of the fixture) while rank 1 waits at the
   iteration boundary: dist.timeout_s = 1 does not abort it (dist.eval_timeout_s does, when set
   below the eval time). */
Test(dist_train, slow_eval_on_rank_0_is_waited_out_under_eval_timeout_s) {
    NEED_MPI();
    char extra[1024];
    const char *fmt = "--set run.shards=2 --set dist.timeout_s=1 --set eval.every=3 "
                      "--set 'eval_rewards=[{plugin: %s/test_plugins/fixture_good.so, config: "
                      "{sleep_eval_s: 2}}]' %s";
    snprintf(extra, sizeof extra, fmt, GROVE_BINARY_DIR, "");
    cr_assert_eq(train(2, NULL, "slow", extra, NULL), 0, "%s", err_of("slow"));
    char *m = train_metrics("slow");
    cr_assert_eq(lines_with(m, "\"eval\":{"), 2, "evals at start and end:\n%s", m);
    free(m);
    snprintf(extra, sizeof extra, fmt, GROVE_BINARY_DIR, "--set dist.eval_timeout_s=0.5");
    cr_assert_neq(train(2, NULL, "slow-short", extra, NULL), 0);
    char *err = err_of("slow-short");
    cr_assert(strstr(err, "rank 1: dist: stop request (the iteration boundary): not every rank "
                          "arrived within dist.eval_timeout_s = 0.5 s"), "%s", err);
    free(err);
}

/* A rank that hangs (GROVE_DIST_FAULT stall: alive, so mpirun does not end the job) makes rank 0
   fail within dist.timeout_s with a rank-tagged line; the job exits non-zero. */
Test(dist_train, stalled_rank_times_out_with_a_rank_tagged_error) {
    NEED_MPI();
    double secs = 0;
    int rc = train(2, "stall:1:2", "stalled", "--set run.shards=2 --set dist.timeout_s=1.5", &secs);
    char *err = err_of("stalled");
    cr_assert_neq(rc, 0, "%s", err);
    cr_assert(secs < 1.5 + 10.0, "the job took %.1f s", secs);
    cr_assert(strstr(err, "rank 0: dist: "), "%s", err);
    cr_assert(strstr(err, "not every rank arrived within dist.timeout_s = 1.5 s"), "%s", err);
    free(err);
}

/* Every rank reads last.h5: 1 iteration in one process, the other 2 under mpirun -np 2 = 3
   iterations in one process straight. */
Test(dist_train, resume_across_rank_counts_equals_one_process_straight) {
    NEED_MPI();
    const char *sh = "--set run.shards=2";
    cr_assert_eq(train(0, NULL, "straight", sh, NULL), 0, "%s", err_of("straight"));
    cr_assert_eq(train(0, NULL, "resumed", "--set run.shards=2 --stop-after 1", NULL), 0, "%s",
                 err_of("resumed"));
    cr_assert_eq(train(2, NULL, "resumed", sh, NULL), 0, "%s", err_of("resumed"));
    assert_same_weights("straight", "resumed");
    char *a = train_metrics("straight"), *b = train_metrics("resumed");
    cr_assert_str_eq(a, b);
    free(a);
    free(b);
}

Test(dist_train, desynchronized_rank_is_caught_by_the_hash_check) {
    NEED_MPI();
    int rc = train(2, "desync:1:1", "desync", "--set run.shards=2", NULL);
    char *err = err_of("desync");
    cr_assert_neq(rc, 0, "a desynchronized run must fail");
    cr_assert_eq(lines_with(err, "parameters differ across ranks"), 1, "one line expected:\n%s", err);
    cr_assert(strstr(err, "parameters differ across ranks after iteration 2: rank 1 ("), "%s", err);
    free(err);
}

Test(dist_train, killed_rank_stops_the_job_and_last_h5_survives) {
    NEED_MPI();
    double secs = 0;
    int rc = train(2, "kill:1:2", "killed", "--set run.shards=2 --set dist.timeout_s=10", &secs);
    char *err = err_of("killed");
    cr_assert_neq(rc, 0, "%s", err);
    cr_assert(secs < 10.0, "the job took %.1f s, beyond dist.timeout_s", secs);
    free(err);
    /* last.h5 (iteration 1 or 2: rank 0 passed iteration 1's collectives after writing it) is
       complete: it loads and resumes in one process */
    assert_last_h5_loads("killed");
    cr_assert_eq(train(0, NULL, "killed", "--set run.shards=2", NULL), 0, "%s", err_of("killed"));
    char *text = train_metrics("killed");
    cr_assert_eq(lines_with(text, "\"optimizer_step\":"), 3, "resumed to 3 iterations:\n%s", text);
    free(text);
}

/* ψ (float32, N - 1 = 3 at sampler.steps 4) of <tmp_root>/<dir>/last.h5, after psi_rounds rounds. */
static void stored_psi(const char *dir, float *psi, int64_t rounds) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s/last.h5", tmp_root, dir);
    gv_ckpt_reader *r = NULL;
    cr_assert_eq(gv_ckpt_open(path, &r), GV_OK, "%s", gv_last_error());
    int64_t n = 0, done = 0;
    cr_assert_eq(gv_ckpt_get_len(r, GV_CKPT_STATE, "psi", &n), GV_OK, "%s", gv_last_error());
    cr_assert_eq(n, 3);
    cr_assert_eq(gv_ckpt_get_f32s(r, GV_CKPT_STATE, "psi", psi, 3), GV_OK);
    cr_assert_eq(gv_ckpt_get_i64(r, GV_CKPT_STATE, "psi_rounds", &done), GV_OK);
    cr_assert_eq(done, rounds);
    gv_ckpt_close(r);
}

/* The metrics lines of `text` that contain `needle`, concatenated (caller frees). */
static char *lines_containing(const char *text, const char *needle) {
    char *out = calloc(1, strlen(text) + 1), *o = out;
    cr_assert(out);
    for (const char *p = text; *p;) {
        const size_t len = strcspn(p, "\n");
        const char *hit = strstr(p, needle);
        if (hit && hit < p + len) {
            memcpy(o, p, len);
            o += len;
            *o++ = '\n';
        }
        p += len + (p[len] == '\n');
    }
    return out;
}

/* DenseGRPO (dense_grpo preset: step gains from ODE completions, calibrated ψ) under shards:
   4 prompts x 3 chains in 2 shards, 3 iterations, after 2 calibration rounds of 3 prompts
   (9 chains: n_i <= 9 gains per step, >= 8 needed for ψ(i) to move; the batch's own shards
   split its slots 1 | 2, unlike an iteration's 2 | 2, which catches a calibration that keeps
   the iteration's shards). Each shard completes its own chains; the completion rewards are
   gathered, so both ranks count the same signs and hold the same ψ. mpirun -np 2 = one process with run.shards 2: the same metrics (calibration records
   included), parameters and stored ψ.
   run.shards 1 vs 2 in one process: a sample's denoiser output does not depend on the other rows
   of its call (the fixed micro-batch, ALGORITHMS.md §3), so the rollouts, completions, gains, the
   calibration counts and ψ, and the first iteration's rewards and advantages are bitwise the
   same; only the gradient differs in rounding — with 2 shards it is (g_0 + g_1), with one the
   chunks accumulate into one buffer — so parameters are not compared there. */
Test(dist_train, dense_grpo_two_ranks_equal_one_process_bit_for_bit) {
    NEED_MPI();
    const char *dense = "--set algorithm.preset=dense_grpo --set group.prompts_per_iteration=4 "
                        "--set dense.rounds=2 --set dense.calibration_prompts=3";
    char extra[512];
    snprintf(extra, sizeof extra, "%s --set run.shards=2", dense);
    assert_train_ranks_agree("dense", extra);
    float psi1[3], psi2[3], psi_s1[3];
    stored_psi("dense-1", psi1, 2);
    stored_psi("dense-2", psi2, 2);
    cr_assert_eq(memcmp(psi1, psi2, sizeof psi1), 0, "psi %g %g %g (1 process) vs %g %g %g (2 ranks)",
                 (double)psi1[0], (double)psi1[1], (double)psi1[2], (double)psi2[0],
                 (double)psi2[1], (double)psi2[2]);
    char *m = train_metrics("dense-2");
    cr_assert_eq(lines_with(m, "\"calibration\":{"), 2, "%s", m);
    double moved = 0;
    for (int r = 0; r < 2; ++r) moved += metric(m, "up", r) + metric(m, "down", r);
    cr_assert(moved > 0, "the calibration moved psi (n_i >= 8 gains):\n%s", m);
    cr_assert(strstr(m, "\"nfe_completion\":"), "%s", m);
    /* one process, run.shards 1: the same ψ and calibration records, the same first rollout */
    snprintf(extra, sizeof extra, "%s --set run.shards=1", dense);
    cr_assert_eq(train(0, NULL, "dense-s1", extra, NULL), 0, "%s", err_of("dense-s1"));
    stored_psi("dense-s1", psi_s1, 2);
    cr_assert_eq(memcmp(psi1, psi_s1, sizeof psi1), 0, "psi of run.shards 1 and 2 differ");
    char *s1 = train_metrics("dense-s1");
    char *c1 = lines_containing(s1, "\"calibration\":{"), *c2 = lines_containing(m, "\"calibration\":{");
    cr_assert_str_eq(c1, c2);
    /* iteration 1's record up to the training statistics: rewards, reward stats, advantages */
    const char *it1 = "{\"iteration\":1,", *train_part = ",\"ratio_mean\":";
    const char *r1 = strstr(s1, it1), *r2 = strstr(m, it1);
    cr_assert(r1 && r2 && strstr(r1, train_part) && strstr(r2, train_part), "%s", s1);
    const int n1 = (int)(strstr(r1, train_part) - r1), n2 = (int)(strstr(r2, train_part) - r2);
    cr_assert(n1 == n2 && strncmp(r1, r2, (size_t)n1) == 0, "iteration 1 rollout:\n%.*s (1 shard)"
              "\n%.*s (2 shards)", n1, r1, n2, r2);
    const char *keys[] = {"nfe_rollout", "nfe_completion", "edges", "edges_trained"};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; ++k) {
        const double a = metric(s1, keys[k], 0), b = metric(m, keys[k], 0);
        cr_assert(a > 0 && a == b, "iteration 1 %s: %.17g (1 shard) vs %.17g (2 shards)", keys[k],
                  a, b);
    }
    free(c1);
    free(c2);
    free(s1);
    free(m);
}

/* Rollout dumps under mpirun -np 3, together with DenseGRPO: rank 0 gathers the other ranks'
   chains (latents, velocities, logp_old; one gather per level) at the dump iterations (0 and 2 of
   3) and writes rollouts-<k>.h5 equal, dataset by dataset and byte by byte, to one process's with
   the same run.shards (the resolved config differs only in run.dir); the other ranks write
   nothing. 3 shards of 4 prompts are uneven (1 | 1 | 2), and the calibration batch of 2 prompts
   leaves shard 0 — all of rank 0's share — empty: its gathers carry empty blocks. */
Test(dist_train, rollout_dumps_and_dense_three_ranks_equal_one_process_bit_for_bit, .timeout = 300) {
    NEED_MPI();
    assert_train_n_ranks_agree("dump",
                               "--set run.shards=3 --set dump.every=2 --set algorithm.preset=dense_grpo "
                               "--set group.prompts_per_iteration=4 --set dense.rounds=2 "
                               "--set dense.calibration_prompts=2 "
                               "--set 'algorithm.overrides={group: {size: 4}}'",
                               3);
    float psi1[3], psi3[3];
    stored_psi("dump-1", psi1, 2);
    stored_psi("dump-2", psi3, 2);
    cr_assert_eq(memcmp(psi1, psi3, sizeof psi1), 0, "psi of 1 process and 3 ranks differ");
    const char *files[] = {"rollouts-0.h5", "rollouts-2.h5"};
    for (int f = 0; f < 2; ++f) {
        /* /steps: x, x_next, v, mu, logp_old, sigma, sigma_next, std, cx, cv, sde; /state: 8 */
        char pa[600], pb[600], dir_a[512], dir_b[512];
        snprintf(dir_a, sizeof dir_a, "%s/dump-1", tmp_root);
        snprintf(dir_b, sizeof dir_b, "%s/dump-2", tmp_root);
        snprintf(pa, sizeof pa, "%s/%s", dir_a, files[f]);
        snprintf(pb, sizeof pb, "%s/%s", dir_b, files[f]);
        const int n = assert_same_h5(pa, pb, dir_a, dir_b);
        cr_assert_eq(n, 19, "%s: %d datasets compared", files[f], n);
    }
    char path[512];
    snprintf(path, sizeof path, "%s/dump-2/rollouts-1.h5", tmp_root);
    cr_assert_neq(access(path, F_OK), 0, "no dump at iteration 1 (dump.every 2)");
}

/* A calibrated DenseGRPO run stopped after iteration 1 and resumed, both under mpirun -np 2,
   equals one process run straight through: metrics, weights, the stored ψ, and the dumps. */
Test(dist_train, dense_resume_under_two_ranks_equals_one_process_straight, .timeout = 300) {
    NEED_MPI();
    const char *x = "--set algorithm.preset=dense_grpo --set group.prompts_per_iteration=4 "
                    "--set dense.rounds=2 --set dense.calibration_prompts=3 --set run.shards=2 "
                    "--set dump.every=1";
    cr_assert_eq(train(0, NULL, "dres-straight", x, NULL), 0, "%s", err_of("dres-straight"));
    char part[1024];
    snprintf(part, sizeof part, "%s --stop-after 1", x);
    cr_assert_eq(train(2, NULL, "dres", part, NULL), 0, "%s", err_of("dres"));
    cr_assert_eq(train(2, NULL, "dres", x, NULL), 0, "%s", err_of("dres"));
    char *m1 = train_metrics("dres-straight"), *m2 = train_metrics("dres");
    cr_assert_str_eq(m1, m2, "straight:\n%s\nresumed:\n%s", m1, m2);
    assert_same_weights("dres-straight", "dres");
    float p1[3], p2[3];
    stored_psi("dres-straight", p1, 2);
    stored_psi("dres", p2, 2);
    cr_assert_eq(memcmp(p1, p2, sizeof p1), 0, "psi after resume differs");
    for (int f = 1; f < 3; ++f) { /* the dumps written after the resume */
        char pa[600], pb[600], dir_a[512], dir_b[512];
        snprintf(dir_a, sizeof dir_a, "%s/dres-straight", tmp_root);
        snprintf(dir_b, sizeof dir_b, "%s/dres", tmp_root);
        snprintf(pa, sizeof pa, "%s/rollouts-%d.h5", dir_a, f);
        snprintf(pb, sizeof pb, "%s/rollouts-%d.h5", dir_b, f);
        cr_assert_eq(assert_same_h5(pa, pb, dir_a, dir_b), 19, "rollouts-%d.h5", f);
    }
    free(m1);
    free(m2);
}

Test(dist_train, shard_rules_are_refused_with_their_reason) {
    cr_assert_neq(train(0, NULL, "wide", "--set run.shards=3", NULL), 0);
    char *err = err_of("wide");
    cr_assert(strstr(err, "run.shards 3: at most group.prompts_per_iteration (2)"), "%s", err);
    free(err);
    NEED_MPI();
    cr_assert_neq(train(2, NULL, "few", "--set run.shards=1", NULL), 0);
    err = err_of("few");
    cr_assert(strstr(err, "run.shards = 1 but 2 ranks run: every rank needs a shard"), "%s", err);
    /* every rank refuses alike: rank 0 alone prints it, and the job ends without an abort */
    cr_assert_eq(lines_with(err, "every rank needs a shard"), 1, "%s", err);
    cr_assert_null(strstr(err, "MPI_ABORT"), "%s", err);
    free(err);
}
