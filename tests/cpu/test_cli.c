/* The grove CLI as a user meets it: runs the real binary and checks exit codes and the one-line
 * messages (DESIGN.md §1: --help everywhere, `grove config`, `grove version`, honest
 * not-implemented subcommands, usage errors). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

typedef struct {
    int rc;
    char out[65536];
} run_result;

/* Runs `grove <args>` from the source tree with stdout+stderr captured. */
static run_result run_grove(const char *args) {
    run_result r;
    memset(&r, 0, sizeof r);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s/grove' %s 2>&1", GROVE_SOURCE_DIR, GROVE_BINARY_DIR,
             args);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p, "popen failed");
    size_t n = fread(r.out, 1, sizeof r.out - 1, p);
    r.out[n] = '\0';
    int st = pclose(p);
    r.rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return r;
}

static int count_lines(const char *s) {
    int n = 0;
    for (; *s; ++s) n += *s == '\n';
    return n;
}

Test(cli, overview_lists_every_command) {
    run_result r = run_grove("--help");
    cr_assert_eq(r.rc, 0, "%s", r.out);
    const char *commands[] = {"pretrain", "train", "sample", "gallery", "eval", "reward-check",
                              "config", "version"};
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; ++i)
        cr_expect(strstr(r.out, commands[i]) != NULL, "missing %s in:\n%s", commands[i], r.out);
}

Test(cli, every_command_has_help) {
    const char *commands[] = {"pretrain", "train", "sample", "gallery", "eval", "reward-check",
                              "config", "version"};
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; ++i) {
        char args[128];
        snprintf(args, sizeof args, "%s --help", commands[i]);
        run_result r = run_grove(args);
        cr_expect_eq(r.rc, 0, "%s: rc %d", commands[i], r.rc);
        cr_expect(strncmp(r.out, "usage: grove ", 13) == 0, "%s:\n%s", commands[i], r.out);
    }
}

Test(cli, no_arguments_is_a_usage_error) {
    run_result r = run_grove("");
    cr_assert_eq(r.rc, 2);
}

Test(cli, unknown_command_and_option) {
    run_result r = run_grove("frobnicate");
    cr_assert_eq(r.rc, 2);
    cr_assert_str_eq(r.out, "grove: unknown command 'frobnicate' (see grove --help)\n");
    r = run_grove("config configs/align/mnist-flowgrpo.yaml --bogus");
    cr_assert_eq(r.rc, 2);
    cr_assert_str_eq(r.out, "grove config: unknown option '--bogus' (see grove config --help)\n");
}

Test(cli, version_names_commit_and_cpu_backend) {
    run_result r = run_grove("version");
    cr_assert_eq(r.rc, 0, "%s", r.out);
    cr_assert(strncmp(r.out, "grove 0.", 8) == 0, "%s", r.out);
    cr_assert(strstr(r.out, "(commit ") != NULL, "%s", r.out);
#if GROVE_HAVE_ONEDNN /* tests/CMakeLists.txt: the build's GROVE_ONEDNN */
    cr_assert(strstr(r.out, "\n  cpu   reference C kernels + oneDNN") != NULL, "%s", r.out);
#else
    cr_assert(strstr(r.out, "\n  cpu   reference C kernels + no oneDNN") != NULL, "%s", r.out);
#endif
    /* Without a GPU the CUDA line says why, instead of failing. */
    cr_assert(strstr(r.out, "  cuda  ") != NULL, "%s", r.out);
}

/* `grove <args>` succeeds and prints each of the NULL-terminated `lines` (each a whole line). */
static void expect_output_lines(const char *args, const char *const *lines) {
    run_result r = run_grove(args);
    cr_assert_eq(r.rc, 0, "%s", r.out);
    for (; *lines; ++lines) {
        char want[256];
        snprintf(want, sizeof want, "\n%s\n", *lines);
        cr_expect(strstr(r.out, want) != NULL, "missing '%s' in:\n%s", *lines, r.out);
    }
}

Test(cli, config_prints_resolved_values_with_origins) {
    const char *const lines[] = {"  lr: 0.0001  # --set", "  size: 8  # preset",
                                 "  weight_decay: 0.0001  # default", "  iterations: 20  # config",
                                 NULL};
    expect_output_lines("config configs/align/mnist-flowgrpo.yaml --set train.lr=1e-4", lines);
}

Test(cli, config_error_names_file_line_and_key) {
    run_result r = run_grove("config tests/data/config/unknown_key.yaml");
    cr_assert_eq(r.rc, 1);
    cr_assert_str_eq(r.out, "grove config: tests/data/config/unknown_key.yaml:7: train.lrr: "
                            "unknown key (did you mean 'lr'?)\n");
    r = run_grove("config configs/align/mnist-flowgrpo.yaml --set train.lr=abc");
    cr_assert_eq(r.rc, 1);
    cr_assert_str_eq(r.out, "grove config: --set train.lr: expected a number, got 'abc'\n");
}

/* A config whose model is a masked-diffusion model is bound by the mdm trainer's schema, as
   `grove train` binds it: its own keys with their origins, its own errors. */
Test(cli, config_prints_a_masked_diffusion_config) {
    const char *const lines[] = {"  estimator: diffu_grpo  # config", "  tau_r: 0.0  # --set",
                                 "  order_logp: false  # default", NULL};
    expect_output_lines("config configs/align/sudoku-diffu-grpo.yaml --set sampler.tau_r=0", lines);
    run_result r = run_grove("config configs/align/sudoku-diffu-grpo.yaml --set algorithm.estimatr=x");
    cr_assert_eq(r.rc, 1, "%s", r.out);
    cr_expect_eq(count_lines(r.out), 1, "%s", r.out);
    cr_expect(strstr(r.out, "algorithm.estimatr: unknown key") != NULL, "%s", r.out);
    /* one line naming what is wrong, from config and train alike (no libfyaml diagnostic
       besides): a missing config file, a named checkpoint that does not exist (not an image
       schema error about a key the mdm config does not have) */
    const struct { const char *args, *says; } bad[] = {
        {"config tests/data/config/no_such.yaml", "no_such.yaml: cannot read config"},
        {"train tests/data/config/no_such.yaml", "no_such.yaml: cannot read config"},
        {"config configs/align/sudoku-diffu-grpo.yaml --set model.checkpoint=no_such.h5",
         "no_such.h5: cannot open checkpoint"},
        {"train configs/align/sudoku-diffu-grpo.yaml --set model.checkpoint=no_such.h5",
         "no_such.h5: cannot open checkpoint"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
        r = run_grove(bad[i].args);
        cr_expect_eq(r.rc, 1, "%s: %s", bad[i].args, r.out);
        cr_expect_eq(count_lines(r.out), 1, "%s: %s", bad[i].args, r.out);
        cr_expect(strstr(r.out, bad[i].says) != NULL, "%s: %s", bad[i].args, r.out);
    }
}

Test(cli, set_needs_key_and_value) {
    run_result r = run_grove("config configs/align/mnist-flowgrpo.yaml --set train.lr");
    cr_assert_eq(r.rc, 2);
    cr_assert_str_eq(r.out, "grove config: --set 'train.lr': expected KEY.PATH=VALUE\n");
}

/* The "solved" count of a `grove sudoku` JSON line. */
static int solved_of(const char *out) {
    const char *p = strstr(out, "\"solved\": ");
    cr_assert_not_null(p, "%s", out);
    return atoi(p + 10);
}

/* --tau-r fixes the commit order's Gumbel scale (the trainer's sampler.tau_r). The shipped model
   solves 511 of 512 held-out puzzles at 35 blanks with the greedy order (bench/mdm/README.md, "The
   commit order"), about half at scale 0.25 and a tenth at a random order: on the first 16
   puzzles, fixed seeds, the greedy order solves all, and the count falls as the scale grows (so a
   scale is neither ignored nor treated as greedy); the default schedule solves fewer than 16 and
   reports "tau_r": null. A negative scale is refused. */
Test(cli, sudoku_tau_r_fixes_the_commit_order, .timeout = 120) {
    const char *base = "sudoku --ckpt models/weights/sudoku-mdt-s.h5 --blanks 35 --steps 12 -n 16 --seed 1";
    const char *scales[] = {"0", "0.25", "1000"};
    int solved[3];
    for (int i = 0; i < 3; ++i) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "%s --tau-r %s", base, scales[i]);
        run_result r = run_grove(cmd);
        cr_assert_eq(r.rc, 0, "%s", r.out);
        char field[40];
        snprintf(field, sizeof field, "\"tau_r\": %s,", scales[i]);
        cr_expect(strstr(r.out, field) != NULL, "%s", r.out);
        solved[i] = solved_of(r.out);
    }
    cr_expect_eq(solved[0], 16);
    cr_expect(solved[1] < solved[0] && solved[2] < solved[1], "solved %d / %d / %d", solved[0],
              solved[1], solved[2]);
    run_result r = run_grove(base);
    cr_assert_eq(r.rc, 0, "%s", r.out);
    cr_expect(strstr(r.out, "\"tau_r\": null,") != NULL, "%s", r.out);
    cr_expect(solved_of(r.out) < 16, "%s", r.out);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "%s --tau-r -1", base);
    r = run_grove(cmd);
    cr_assert_eq(r.rc, 2, "%s", r.out);
    cr_expect(strstr(r.out, "--tau-r") != NULL, "%s", r.out);
}

Test(cli, sudoku_refuses_a_model_that_is_not_an_mdt) {
    run_result r = run_grove("sudoku --ckpt models/weights/mnist-classifier.h5 -n 4");
    cr_assert_eq(r.rc, 1, "%s", r.out);
    cr_expect_eq(count_lines(r.out), 1, "%s", r.out);
    cr_expect(strstr(r.out, "not a masked-diffusion model") != NULL, "%s", r.out);
    r = run_grove("sudoku -n 4");
    cr_assert_eq(r.rc, 2, "%s", r.out);
    cr_expect(strstr(r.out, "--ckpt is required") != NULL, "%s", r.out);
}
