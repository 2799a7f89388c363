/* Tests of data parallel training (engine/core/dist.c, engine/train/pretrain.c, the GRPO trainer's
 * shards in engine/train/rollout.c and grpo_train.c): the shard
 * partition and the shard-order sum against hand-computed values; in one process, run.shards only
 * changes rounding (step-1 loss and grad norm of 2 shards vs 1 agree to ~1e-6); and with a real
 * `mpirun -np 2` (2 ranks x 1 thread) of the grove CLI against one process x 1 thread with the
 * same run.shards: bitwise equal parameters and EMA (UNet and classifier), also across a stop and
 * an MPI resume; a desynchronized rank is caught by the hash check with one line; a rank killed
 * mid-run or stalled makes the job exit non-zero within dist.timeout_s and last.h5 stays loadable.
 * `grove train` (suite dist_train, tiny UNet of grpo_test_util.h): `mpirun -np 2` against one
 * process with the same run.shards for Flow-GRPO, a BranchGRPO tree (prob-weighted fusion, so the
 * siblings' log-probs cross ranks; uneven shards), a width-pruned tree and Pref-GRPO win rates of
 * the symmetry judge plugin, 3 iterations: the same parameters and the same metrics lines but for
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
 * `grove train` of a masked-diffusion model (suite dist_mdm, the tiny 4x4 Sudoku task of
 * mdm_test_util.h, 2 uneven shards): `mpirun -np 2` against one process with the same run.shards for
 * diffu_grpo, trajectory, coupled (balanced aggregation), Co-GRPO (φ, θ, φ phases) and a list of two rewards
 * (built-in sudoku + sudoku_constraints.so), 3 iterations: bitwise the
 * same θ, EMA, Adam moments and φ, the same metrics but for timing; a desynchronized rank caught
 * by the hash check; a Co-GRPO resume from one process to 2 ranks equal to a straight run; a
 * stalled rank timing out and a killed one ending the job (last.h5 intact);
 * the shard rules and a config refusal (an unknown reward built-in) printed once without an abort;
 * the reward_failures streak of fixture_tokens.so's fail_at counted in shard order (the same stop
 * and line in 1 process and 2 ranks, the same records with failed_batches); solved rollouts (a
 * one-blank training set) gathered; and in one process run.shards 3 vs 1 changing only rounding
 * (φ after a φ phase, θ and its gradient after a θ step, within 1e-6 relative). In one process
 * too: the shard sum's transport follows the buffers' backend (NCCL for "cuda" only).
 * The MPI tests are skipped (with a message) in a build without MPI. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "grove/dist.h"
#include "grove/image_model.h"
#include "grove/kernels_cpu.h"
#include "grove/ops.h"
#include "grove/pretrain.h"
#include "grpo_test_util.h"
#include "h5_compare_util.h"
#include "mdm_test_util.h"

#define FIXTURES GROVE_SOURCE_DIR "/tests/data/pretrain/"
#define UNET FIXTURES "tiny-unet.yaml"
#define CLASSIFIER FIXTURES "tiny-classifier.yaml"
/* 4 short steps of the tiny UNet, one thread per process, a checkpoint every step */
#define COMMON "--set train.steps=4 --set train.lr_schedule.warmup_steps=1 --set run.threads=1 " \
               "--set checkpoint.every=1 --set dist.check_every=1"

static char tmp_root[256];

static void make_tmp(void) {
    snprintf(tmp_root, sizeof tmp_root, "/tmp/grove-test-dist-XXXXXX");
    cr_assert(mkdtemp(tmp_root));
    /* Open MPI refuses root without these; harmless otherwise */
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    unsetenv("GROVE_DIST_FAULT");
}
static void remove_tmp(void) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_root);
    cr_assert_eq(system(cmd), 0);
}

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

#ifdef GROVE_MPIEXEC
#define NEED_MPI() ((void)0)
#else
#define GROVE_MPIEXEC ""
#define NEED_MPI() cr_skip_test("this build has no MPI (GROVE_MPI off or MPI not found)")
#endif

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Run `grove <command>` (ranks 0 = one plain process, else under mpirun) with run.dir =
   <tmp>/<dir> and `args`; stderr into <tmp>/<dir>.err. Returns the exit status (128 + signal if
   killed). */
static int grove_cli(const char *command, int ranks, const char *fault, const char *fixture,
                     const char *dir, const char *args, double *seconds) {
    char launcher[512] = "", full[8192];
    if (ranks)
        snprintf(launcher, sizeof launcher, "%s --oversubscribe --bind-to none -np %d ",
                 GROVE_MPIEXEC, ranks);
    /* GROVE_DIST_FAULT before mpirun reaches every rank */
    snprintf(full, sizeof full, "%s%s%s%s%s/grove %s %s --set run.dir=%s/%s %s >/dev/null 2>%s/%s.err",
             fault ? "GROVE_DIST_FAULT=" : "", fault ? fault : "", fault ? " " : "", launcher,
             GROVE_BINARY_DIR, command, fixture, tmp_root, dir, args, tmp_root, dir);
    double t0 = now_s();
    int st = system(full);
    if (seconds) *seconds = now_s() - t0;
    cr_assert(st != -1);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int pretrain(int ranks, const char *fault, const char *fixture, const char *dir,
                    const char *args, double *seconds) {
    return grove_cli("pretrain", ranks, fault, fixture, dir, args, seconds);
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    cr_assert(f, "cannot open %s", path);
    char *s = calloc(1, 1 << 16);
    cr_assert(s);
    size_t n = fread(s, 1, (1 << 16) - 1, f);
    s[n] = 0;
    fclose(f);
    return s;
}

static char *err_of(const char *dir) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s.err", tmp_root, dir);
    return slurp(path);
}

/* Parameters and EMA of <tmp>/<a>/last.h5 and <tmp>/<b>/last.h5 are bitwise equal. */
static void assert_same_weights(const char *a, const char *b) {
    gv_image_model m[2][2];
    const char *dirs[2] = {a, b};
    for (int r = 0; r < 2; ++r)
        for (int e = 0; e < 2; ++e) {
            char path[512];
            snprintf(path, sizeof path, "%s/%s/last.h5", tmp_root, dirs[r]);
            cr_assert_eq(gv_image_model_load(path, grove_backend_cpu(), e, &m[r][e]), GV_OK, "%s",
                         gv_last_error());
        }
    for (int e = 0; e < 2; ++e) {
        size_t bytes = (size_t)m[0][e].params.total * sizeof(float);
        cr_assert_eq(m[0][e].params.total, m[1][e].params.total);
        cr_assert_eq(memcmp(m[0][e].params.values, m[1][e].params.values, bytes), 0,
                     "%s weights of %s and %s differ", e ? "EMA" : "raw", a, b);
    }
    cr_assert_str_eq(m[0][0].hash, m[1][0].hash);
    for (int r = 0; r < 2; ++r)
        for (int e = 0; e < 2; ++e) gv_image_model_free(&m[r][e]);
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

/* The lines of `text` that contain `needle`. */
static int lines_with(const char *text, const char *needle) {
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
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
    char path[512];
    snprintf(path, sizeof path, "%s/killed/last.h5", tmp_root);
    gv_image_model m;
    cr_assert_eq(gv_image_model_load(path, grove_backend_cpu(), 0, &m), GV_OK,
                 "last.h5 after a killed rank: %s", gv_last_error());
    gv_image_model_free(&m);
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

/* The /meta model_hash of <tmp_root>/<dir>/last.h5 (17 bytes). */
static void train_hash(const char *dir, char *hash) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s/last.h5", tmp_root, dir);
    gv_ckpt_reader *r = NULL;
    cr_assert_eq(gv_ckpt_open(path, &r), GV_OK, "%s", gv_last_error());
    char *h = NULL;
    cr_assert_eq(gv_ckpt_get_str(r, GV_CKPT_META, "model_hash", &h), GV_OK);
    snprintf(hash, 17, "%s", h);
    free(h);
    gv_ckpt_close(r);
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
    train_hash(one, h1);
    train_hash(two, h2);
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

/* The line of `text` from `needle` to its end (static buffer). */
static const char *line_from(const char *text, const char *needle) {
    static char buf[2][1024];
    static int k;
    const char *p = strstr(text, needle);
    cr_assert(p, "no \"%s\" in:\n%s", needle, text);
    char *b = buf[k++ % 2];
    snprintf(b, sizeof buf[0], "%.*s", (int)strcspn(p, "\n"), p);
    return b;
}

/* The fixture's fail_at "1:1,2:0" with reward_failures.max_consecutive 2, in one process
   (<tmp>/streak-1) and under 2 ranks (streak-2): the same stop line, printed once, no abort; the
   masked batch of iteration 1 (`batch` samples) noted once by each. */
static void assert_streak_stops_alike(int batch) {
    char *e1 = err_of("streak-1"), *e2 = err_of("streak-2");
    const char *stop = "2 consecutive failed batches of reward 'fixture' "
                       "(reward_failures.max_consecutive 2); last: ";
    const char *l1 = line_from(e1, stop);
    cr_assert(strstr(l1, "fixture: iteration 2 slot 0 fails as configured"), "%s", l1);
    cr_assert_str_eq(l1, line_from(e2, stop));
    cr_assert_eq(lines_with(e2, "consecutive failed batches"), 1, "printed once:\n%s", e2);
    char note[160];
    snprintf(note, sizeof note, "fixture: iteration 1 slot 1 fails as configured (batch of %d masked; "
             "1 in a row)", batch);
    cr_assert_eq(lines_with(e1, note), 1, "%s", e1);
    cr_assert_eq(lines_with(e2, note), 1, "rank 0 notes every masked batch once:\n%s", e2);
    cr_assert_null(strstr(e2, "MPI_ABORT"), "an agreed error ends the job cleanly:\n%s", e2);
    free(e1);
    free(e2);
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
    char path[512];
    snprintf(path, sizeof path, "%s/killed/last.h5", tmp_root);
    gv_image_model m;
    cr_assert_eq(gv_image_model_load(path, grove_backend_cpu(), 0, &m), GV_OK,
                 "last.h5 after a killed rank: %s", gv_last_error());
    gv_image_model_free(&m);
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
    snprintf(args, sizeof args, "--set run.shards=1 %s", theta);
    cr_assert_eq(mdm_train(0, NULL, "theta-1", args), 0, "%s", err_of("theta-1"));
    snprintf(args, sizeof args, "--set run.shards=3 %s", theta);
    cr_assert_eq(mdm_train(0, NULL, "theta-3", args), 0, "%s", err_of("theta-3"));
    cr_assert(mdm_assert_group_close("theta-1", "theta-3", "optim/m", 1e-6, NULL) > 0.0, "θ had a gradient");
    mdm_assert_group_close("theta-1", "theta-3", "params", 1e-6, "optim/m");
}

Test(dist_mdm, diffu_grpo_two_ranks_equal_one_process_bit_for_bit) {
    NEED_MPI();
    assert_mdm_ranks_agree("diffu", "--set algorithm.estimator=diffu_grpo "
                                    "--set algorithm.advantage=group_mean", 0);
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
    char path[512];
    snprintf(path, sizeof path, "%s/killed/last.h5", tmp_root);
    gv_image_model m;
    cr_assert_eq(gv_image_model_load(path, grove_backend_cpu(), 0, &m), GV_OK, "%s", gv_last_error());
    gv_image_model_free(&m);
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
