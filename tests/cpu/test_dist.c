/* Tests of data parallel training (engine/core/dist.c, engine/train/pretrain.c): the shard
 * partition and the shard-order sum against hand-computed values; the shard sum's transport follows
 * the buffers' backend (NCCL for "cuda" only); in one process, run.shards only changes rounding
 * (step-1 loss and grad norm of 2 shards vs 1 agree to ~1e-6); and with a real `mpirun -np 2`
 * (2 ranks x 1 thread) of `grove pretrain` against one process x 1 thread with the same run.shards:
 * bitwise equal parameters and EMA (UNet and classifier), also across a stop and an MPI resume; a
 * desynchronized rank is caught by the hash check with one line; a rank killed mid-run or stalled
 * makes the job exit non-zero within dist.timeout_s and last.h5 stays loadable.
 * `grove train` under mpirun: test_dist_train.c (image GRPO), test_dist_mdm.c (masked diffusion).
 * The MPI tests are skipped (with a message) in a build without MPI. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist_test_util.h"
#include "grove/dist.h"
#include "grove/image_model.h"
#include "grove/kernels_cpu.h"
#include "grove/ops.h"
#include "grove/pretrain.h"

#define FIXTURES GROVE_SOURCE_DIR "/tests/data/pretrain/"
#define UNET FIXTURES "tiny-unet.yaml"
#define CLASSIFIER FIXTURES "tiny-classifier.yaml"
/* 4 short steps of the tiny UNet, one thread per process, a checkpoint every step */
#define COMMON "--set train.steps=4 --set train.lr_schedule.warmup_steps=1 --set run.threads=1 " \
               "--set checkpoint.every=1 --set dist.check_every=1"



TestSuite(dist, .init = make_tmp, .fini = remove_tmp, .timeout = 120);

/* ---- in one process ---------------------------------------------------------------------------- */

Test(dist, shard_ranges_partition_the_shards_in_rank_order) {
    int lo, hi;
    gv_dist_shard_range(4, 0, 2, &lo, &hi);
    cr_assert(lo == 0 && hi == 2);
    gv_dist_shard_range(4, 1, 2, &lo, &hi);
    cr_assert(lo == 2 && hi == 4);
    for (int S = 1; S <= 9; ++S)
        for (int R = 1; R <= S; ++R) {
            int next = 0;
            for (int r = 0; r < R; ++r) {
                gv_dist_shard_range(S, r, R, &lo, &hi);
                cr_assert_eq(lo, next, "S=%d R=%d rank %d starts at %d", S, R, r, lo);
                cr_assert(hi - lo == S / R || hi - lo == S / R + 1, "S=%d R=%d: %d shards", S, R, hi - lo);
                next = hi;
            }
            cr_assert_eq(next, S);
        }
}

/* Floating-point addition is not associative: 1 + 1e8 rounds to 1e8, so the left fold
   ((1 + 1e8) + (-1e8)) + 3 is 3, while summing the big pair first would give 4. */
Test(dist, shard_sum_is_the_left_fold_in_shard_order) {
    const gv_backend *be = grove_backend_cpu();
    gv_ctx *ctx = NULL;
    cr_assert_eq(be->ctx_create(&(gv_ctx_options){.threads = 1}, &ctx), GV_OK);
    float g[4][2] = {{1.0f, 0.5f}, {1e8f, 2.0f}, {-1e8f, -0.25f}, {3.0f, 1.0f}};
    float *local[4] = {g[0], g[1], g[2], g[3]};
    float out[2] = {-7.0f, -7.0f};
    gv_shard_sum a = {.be = be, .ctx = ctx, .n = 2, .shards = 4, .lo = 0, .hi = 4, .local = local,
                      .out = out};
    cr_assert_eq(gv_dist_shard_sum(&a, "test"), GV_OK, "%s", gv_last_error());
    cr_assert_eq(out[0], 3.0f, "got %.9g", (double)out[0]);
    cr_assert_eq(out[1], 3.25f, "got %.9g", (double)out[1]);
    /* the inputs are untouched and the first shard may be the output buffer itself */
    cr_assert_eq(g[1][0], 1e8f);
    local[0] = out;
    out[0] = 5.0f, out[1] = 0.0f;
    cr_assert_eq(gv_dist_shard_sum(&a, "test"), GV_OK);
    /* ((5 + 1e8) - 1e8) + 3: 1e8 + 5 rounds to 1e8 + 8 (the float spacing there is 8) */
    cr_assert_eq(out[0], 11.0f, "got %.9g", (double)out[0]);
    be->ctx_destroy(ctx);
}

/* NCCL only for device buffers: a CUDA run loads NCCL, but Co-GRPO's φ gradients are host memory
   of the CPU backend (mdm_schedule.c) and must go through host staging. (The NCCL path itself has
   never run: no GPU where it was written.) */
Test(dist, nccl_is_chosen_by_the_buffers_backend) {
    const gv_backend *cpu = grove_backend_cpu();
    gv_backend cuda = *cpu; /* only the name matters to the choice */
    cuda.name = "cuda";
    cr_assert_eq(gv_dist_sum_on_device(&cuda, 1), 1, "device buffers with NCCL loaded: NCCL");
    cr_assert_eq(gv_dist_sum_on_device(cpu, 1), 0, "host buffers (φ) in a run with NCCL: staging");
    cr_assert_eq(gv_dist_sum_on_device(&cuda, 0), 0, "no NCCL loaded: staging");
    cr_assert_eq(gv_dist_sum_on_device(cpu, 0), 0);
}

static void load(const char *fixture, const char *dir, const char *extra, gv_pretrain_config *cfg) {
    char set_dir[512];
    snprintf(set_dir, sizeof set_dir, "run.dir=%s/%s", tmp_root, dir);
    const char *sets[4] = {set_dir, "train.steps=8", "run.threads=1", extra};
    cr_assert_eq(gv_pretrain_config_load(fixture, sets, extra ? 4 : 3, cfg, NULL), GV_OK, "%s",
                 gv_last_error());
}

/* The number after "key": in the first line of <tmp>/<dir>/metrics.jsonl. */
static double first_record(const char *dir, const char *key) {
    char path[512], line[4096], pat[64];
    snprintf(path, sizeof path, "%s/%s/metrics.jsonl", tmp_root, dir);
    FILE *f = fopen(path, "r");
    cr_assert(f, "cannot open %s", path);
    cr_assert(fgets(line, sizeof line, f));
    fclose(f);
    snprintf(pat, sizeof pat, "\"%s\":", key);
    char *p = strstr(line, pat);
    cr_assert(p, "no %s in %s", key, line);
    return strtod(p + strlen(pat), NULL);
}

/* Shards split the batch, not the math: the step-1 loss (mean over the same 16 images, same noise,
   addressed by batch slot) and gradient norm agree with one shard up to float rounding. */
Test(dist, shards_change_only_rounding_in_one_process) {
    const char *dirs[2] = {"s1", "s4"};
    const char *sets[2] = {"run.shards=1", "run.shards=4"};
    for (int i = 0; i < 2; ++i) {
        gv_pretrain_config cfg;
        load(UNET, dirs[i], sets[i], &cfg);
        gv_pretrain_options opt = {.stop_after = 1, .backend = grove_backend_cpu()};
        cr_assert_eq(gv_pretrain_run(&cfg, &opt), GV_OK, "%s", gv_last_error());
        gv_pretrain_config_free(&cfg);
    }
    double l1 = first_record("s1", "loss"), l4 = first_record("s4", "loss");
    double n1 = first_record("s1", "grad_norm"), n4 = first_record("s4", "grad_norm");
    cr_assert(fabs(l1 - l4) <= 1e-5 * fabs(l1), "loss %.9g (1 shard) vs %.9g (4 shards)", l1, l4);
    cr_assert(fabs(n1 - n4) <= 1e-5 * fabs(n1), "grad norm %.9g vs %.9g", n1, n4);
    cr_assert(l1 > 0.1 && n1 > 0.1, "a real step: loss %g, grad norm %g", l1, n1);
}

Test(dist, shards_must_divide_the_batch) {
    gv_pretrain_config cfg;
    char set_dir[512];
    snprintf(set_dir, sizeof set_dir, "run.dir=%s/bad", tmp_root);
    const char *sets[2] = {set_dir, "run.shards=3"};
    cr_assert_neq(gv_pretrain_config_load(UNET, sets, 2, &cfg, NULL), GV_OK);
    cr_assert(strstr(gv_last_error(), "run.shards must divide train.batch"), "%s", gv_last_error());
    cr_assert(strstr(gv_last_error(), "tiny-unet.yaml"), "%s", gv_last_error());
}

/* ---- mpirun ------------------------------------------------------------------------------------ */




static int pretrain(int ranks, const char *fault, const char *fixture, const char *dir,
                    const char *args, double *seconds) {
    return grove_cli("pretrain", ranks, fault, fixture, dir, args, seconds);
}




/* Step records in <tmp>/<dir>/metrics.jsonl. */
static int step_count(const char *dir) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s/metrics.jsonl", tmp_root, dir);
    char *m = slurp(path);
    int n = 0;
    for (char *p = m; (p = strstr(p, "\"optimizer_step\":")); ++p) n++;
    free(m);
    return n;
}

Test(dist, two_ranks_equal_one_process_bit_for_bit) {
    NEED_MPI();
    cr_assert_eq(pretrain(0, NULL, UNET, "one", COMMON " --set run.shards=2", NULL), 0, "%s", err_of("one"));
    cr_assert_eq(pretrain(2, NULL, UNET, "two", COMMON " --set run.shards=2", NULL), 0, "%s", err_of("two"));
    assert_same_weights("one", "two");
    cr_assert_eq(step_count("two"), 4, "rank 0 alone writes metrics: 4 step records");
    /* two shards per rank (the chain adds two local shards), classifier kind, 3 steps */
    const char *cls = "--set run.threads=1 --set run.shards=4 --stop-after 3";
    cr_assert_eq(pretrain(0, NULL, CLASSIFIER, "c1", cls, NULL), 0, "%s", err_of("c1"));
    cr_assert_eq(pretrain(2, NULL, CLASSIFIER, "c2", cls, NULL), 0, "%s", err_of("c2"));
    assert_same_weights("c1", "c2");
}

/* Every rank reads last.h5 on resume, and the rank count is not part of the result: 1 step in
   one process, 2 more under mpirun -np 2 (resumed), the last in one process = one process straight. */
Test(dist, resume_across_rank_counts_equals_one_process_straight) {
    NEED_MPI();
    const char *args = COMMON " --set run.shards=4";
    char part[512];
    cr_assert_eq(pretrain(0, NULL, UNET, "straight", args, NULL), 0, "%s", err_of("straight"));
    snprintf(part, sizeof part, "%s --stop-after 1", args);
    cr_assert_eq(pretrain(0, NULL, UNET, "resumed", part, NULL), 0, "%s", err_of("resumed"));
    snprintf(part, sizeof part, "%s --stop-after 2", args);
    cr_assert_eq(pretrain(2, NULL, UNET, "resumed", part, NULL), 0, "%s", err_of("resumed"));
    cr_assert_eq(pretrain(0, NULL, UNET, "resumed", args, NULL), 0, "%s", err_of("resumed"));
    assert_same_weights("straight", "resumed");
    cr_assert_eq(step_count("resumed"), 4, "metrics: one record per step across the three parts");
}


Test(dist, every_rank_needs_a_shard) {
    NEED_MPI();
    cr_assert_neq(pretrain(2, NULL, UNET, "few", COMMON " --set run.shards=1", NULL), 0);
    char *err = err_of("few");
    cr_assert(strstr(err, "run.shards = 1 but 2 ranks run: every rank needs a shard"), "%s", err);
    /* every rank refuses alike: rank 0 alone prints it, and the job ends without an abort */
    cr_assert_eq(lines_with(err, "every rank needs a shard"), 1, "%s", err);
    cr_assert_null(strstr(err, "MPI_ABORT"), "%s", err);
    free(err);
}

Test(dist, desynchronized_rank_is_caught_by_the_hash_check) {
    NEED_MPI();
    int rc = pretrain(2, "desync:1:1", UNET, "desync", COMMON " --set run.shards=2", NULL);
    char *err = err_of("desync");
    cr_assert_neq(rc, 0, "a desynchronized run must fail");
    cr_assert_eq(lines_with(err, "parameters differ across ranks"), 1, "one line expected:\n%s", err);
    cr_assert(strstr(err, "parameters differ across ranks after step 2: rank 1 ("), "%s", err);
    cr_assert(strstr(err, "differs from rank 0 ("), "%s", err);
    free(err);
}

Test(dist, killed_rank_stops_the_job_and_last_h5_survives) {
    NEED_MPI();
    double secs = 0;
    int rc = pretrain(2, "kill:1:2", UNET, "killed",
                      COMMON " --set run.shards=2 --set dist.timeout_s=10", &secs);
    char *err = err_of("killed");
    cr_assert_neq(rc, 0, "%s", err);
    cr_assert(secs < 10.0, "the job took %.1f s, beyond dist.timeout_s", secs);
    free(err);
    assert_last_h5_loads("killed");
}

Test(dist, stalled_rank_times_out_with_a_rank_tagged_error) {
    NEED_MPI();
    double secs = 0;
    int rc = pretrain(2, "stall:1:2", UNET, "stalled",
                      COMMON " --set run.shards=2 --set dist.timeout_s=1.5", &secs);
    char *err = err_of("stalled");
    cr_assert_neq(rc, 0, "%s", err);
    cr_assert(secs < 1.5 + 8.0, "the job took %.1f s", secs);
    cr_assert(strstr(err, "rank 0: dist: shard losses: not every rank arrived within dist.timeout_s = 1.5 s"),
              "%s", err);
    free(err);
    char path[512];
    snprintf(path, sizeof path, "%s/stalled/last.h5", tmp_root);
    gv_image_model m;
    cr_assert_eq(gv_image_model_load(path, grove_backend_cpu(), 0, &m), GV_OK, "%s", gv_last_error());
    gv_image_model_free(&m);
}
