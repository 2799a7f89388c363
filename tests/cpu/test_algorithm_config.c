/* Tests of the algorithm config keys (run_config.h topology / branch / credit / dense;
 * grove/algorithm_config.h): the number-list binder (GV_CFG_NUMBERS), the tree presets' values,
 * preset ownership of the new keys (top level refused, algorithm.overrides and --set work, with
 * origins), the load-time rules with their exact one-line messages (split / branch steps beyond
 * N-2, scheme vs topology), the resolved dump round trip, and the ALGORITHMS.md §6 plan numbers
 * computed from a config (N = 20, P = {0,3,6,9}, K = 2). */
#include <criterion/criterion.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grove/algorithm_config.h"
#include "grove/config.h"
#include "grove/run_config.h"

static char src[PATH_MAX], task[PATH_MAX + 64], presets[PATH_MAX + 64];

static void init(void) {
    const char *s = getenv("GROVE_SOURCE_DIR");
    snprintf(src, sizeof src, "%s", s ? s : GROVE_SOURCE_DIR);
    snprintf(task, sizeof task, "%s/configs/align/mnist-flowgrpo.yaml", src);
    snprintf(presets, sizeof presets, "%s/configs/algorithms", src);
}
TestSuite(algorithm_config, .init = init);

/* Load the MNIST task with `preset` (a draft name or a shipped one) and extra --set edits; the task's
   own algorithm.overrides (its velocity KL) are cleared, so the preset is seen as it is. */
static gv_status load(const char *preset, const char *const *extra, int n, gv_run_config *cfg,
                      gv_config_result *res) {
    char p[PATH_MAX + 128];
    if (strchr(preset, '/')) snprintf(p, sizeof p, "algorithm.preset=%s/configs/algorithms/%s.yaml",
                                      src, preset);
    else snprintf(p, sizeof p, "algorithm.preset=%s", preset);
    const char *sets[16] = {p, "algorithm.overrides={}"};
    for (int i = 0; i < n; ++i) sets[2 + i] = extra[i];
    gv_clear_error();
    return gv_run_config_load(task, sets, 2 + n, presets, cfg, res);
}

static void load_ok(const char *preset, const char *const *extra, int n, gv_run_config *cfg) {
    cr_assert_eq(load(preset, extra, n, cfg, NULL), GV_OK, "%s: %s", preset, gv_last_error());
}

/* ---- the binder ------------------------------------------------------------------------------- */

typedef struct nums {
    double *v;
    int n;
} nums;
static const gv_field nums_fields[] = {
    {.key = "v", .type = GV_CFG_NUMBERS, .offset = offsetof(nums, v),
     .count_offset = offsetof(nums, n), .def = "[1, 2.5]", .min = 0, .max = 10, .help = "numbers"},
};
static const gv_schema nums_schema = {"nums", sizeof(nums), nums_fields, 1, NULL};

static gv_status nums_load(const char *set, nums *out) {
    const char *sets[] = {set};
    gv_config_request req = {.schema = &nums_schema, .sets = sets, .nsets = set ? 1 : 0};
    gv_clear_error();
    return gv_config_load(&req, out, NULL);
}

Test(algorithm_config, number_lists_bind_check_each_item_and_dump) {
    nums a;
    cr_assert_eq(nums_load(NULL, &a), GV_OK, "%s", gv_last_error());
    cr_assert_eq(a.n, 2);
    cr_assert_eq(a.v[0], 1.0);
    cr_assert_eq(a.v[1], 2.5);
    char *text;
    cr_assert_eq(gv_config_dump(&nums_schema, &a, NULL, &text), GV_OK);
    cr_assert_str_eq(text, "v: [1.0, 2.5]\n");
    free(text);
    gv_config_free(&nums_schema, &a);
    cr_assert_null(a.v);
    cr_assert_eq(nums_load("v=[]", &a), GV_OK);
    cr_assert_eq(a.n, 0);
    gv_config_free(&nums_schema, &a);
    cr_assert_eq(nums_load("v=[1, 11]", &a), GV_ERR_CONFIG);
    cr_assert_str_eq(gv_last_error(), "--set v: v.1: 11 is out of range [0, 10]");
    cr_assert_eq(nums_load("v=[1, x]", &a), GV_ERR_CONFIG);
    cr_assert_str_eq(gv_last_error(), "--set v: v.1: expected a number, got 'x'");
    cr_assert_eq(nums_load("v=3", &a), GV_ERR_CONFIG);
    cr_assert_str_eq(gv_last_error(), "--set v: expected a list of numbers, got a scalar");
    cr_assert_eq(nums_load("v=[[1]]", &a), GV_ERR_CONFIG);
    cr_assert_str_eq(gv_last_error(), "--set v: v.0: expected a number, got a list");
}

/* ---- presets ---------------------------------------------------------------------------------- */

Test(algorithm_config, chain_presets_keep_chains_and_terminal_credit) {
    const char *names[] = {"flow_grpo", "flow_grpo_fast", "mix_grpo", "dance_grpo"};
    for (int k = 0; k < 4; ++k) {
        gv_run_config cfg;
        load_ok(names[k], NULL, 0, &cfg);
        cr_assert_eq(cfg.topology.kind, GV_TOPOLOGY_CHAINS, "%s", names[k]);
        cr_assert_eq(cfg.credit.kind, GV_CREDIT_KIND_TERMINAL, "%s", names[k]);
        gv_run_config_free(&cfg);
    }
}

Test(algorithm_config, tree_presets_have_the_section_9_values) {
    gv_run_config cfg;
    int steps[GV_TOPOLOGY_MAX_STEPS], n;
    load_ok("tempflow", NULL, 0, &cfg); /* N = 10: B = even stochastic steps */
    cr_assert_eq(cfg.topology.kind, GV_TOPOLOGY_BRANCH_POINTS);
    cr_assert_eq(cfg.topology.K, 6);
    cr_assert_eq(cfg.group.size, 2);
    cr_assert_eq(cfg.credit.kind, GV_CREDIT_KIND_TEMPFLOW);
    cr_assert_eq(cfg.train.step_weight, GV_STEP_WEIGHT_NOISE_AWARE);
    cr_assert_eq(cfg.kl.kind, GV_KL_GAUSSIAN);
    cr_assert_eq(gv_run_config_branch_steps(&cfg, steps, &n), GV_OK);
    cr_assert_eq(n, 5);
    for (int j = 0; j < n; ++j) cr_assert_eq(steps[j], 2 * j);
    gv_credit_opts o = gv_run_config_credit_opts(&cfg);
    cr_assert_eq(o.weighting, GV_CREDIT_WEIGHT_NOISE_AWARE);
    cr_assert_eq(o.std_eps, 1e-4);
    gv_run_config_free(&cfg);

    load_ok("branch_grpo", NULL, 0, &cfg); /* N = 10: {0, 2, 3, 5} (ALGORITHMS.md §9) */
    cr_assert_eq(cfg.topology.kind, GV_TOPOLOGY_TREE);
    cr_assert_eq(cfg.credit.kind, GV_CREDIT_KIND_BRANCH);
    cr_assert_eq(cfg.branch.split_scale, 4.0);
    cr_assert_eq(cfg.sampler.noise.kind, GV_NOISE_CONSTANT);
    cr_assert_eq(gv_run_config_splits(&cfg, steps, &n), GV_OK);
    const int want10[] = {0, 2, 3, 5};
    cr_assert_eq(n, 4);
    for (int j = 0; j < n; ++j) cr_assert_eq(steps[j], want10[j]);
    gv_run_config_free(&cfg);
    const char *n20[] = {"sampler.steps=20"};
    load_ok("branch_grpo", n20, 1, &cfg);
    const int want20[] = {0, 3, 6, 9};
    cr_assert_eq(gv_run_config_splits(&cfg, steps, &n), GV_OK);
    for (int j = 0; j < n; ++j) cr_assert_eq(steps[j], want20[j]);
    gv_run_config_free(&cfg);

    load_ok("branch_grpo_mix", NULL, 0, &cfg);
    cr_assert_eq(cfg.sampler.window.kind, GV_WINDOW_FIXED);
    gv_topology t;
    cr_assert_eq(gv_run_config_topology(&cfg, NULL, &t), GV_OK, "%s", gv_last_error());
    for (int i = 0; i < 10; ++i) /* the window [0, 4) is SDE, the rest ODE besides the splits */
        cr_assert_eq(t.sde[i], i < 4, "step %d", i);
    gv_run_config_free(&cfg);

    load_ok("dense_grpo", NULL, 0, &cfg);
    cr_assert_eq(cfg.credit.kind, GV_CREDIT_KIND_DENSE);
    cr_assert_eq(cfg.sampler.noise.kind, GV_NOISE_CALIBRATED);
    cr_assert(cfg.dense.calibrate);
    cr_assert_eq(cfg.dense.rounds, 20);
    cr_assert_eq(gv_run_config_dense_completion(&cfg), GV_DENSE_COMPLETION_ALL);
    gv_run_config_free(&cfg);
}

/* ---- ownership, overrides, --set, origins ----------------------------------------------------- */

static const char *write_task(const char *name, const char *extra) {
    static char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/build-test-%s.yaml", P_tmpdir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f, "model: { checkpoint: %s/models/weights/mnist-unet-s.h5 }\n"
               "data: { prompts: %s/configs/prompts/mnist-train.txt }\n"
               "rewards: [ { builtin: classifier } ]\n%s", src, src, extra);
    fclose(f);
    return path;
}

Test(algorithm_config, new_keys_are_preset_owned) {
    gv_run_config cfg;
    gv_config_result res;
    const char *p = write_task("own", "algorithm: { preset: flow_grpo }\nbranch: { split_scale: 2 }\n");
    cr_assert_eq(gv_run_config_load(p, NULL, 0, presets, &cfg, NULL), GV_ERR_CONFIG);
    cr_assert(strstr(gv_last_error(), "branch") && strstr(gv_last_error(), "flow_grpo"), "%s",
              gv_last_error());
    p = write_task("own2", "algorithm: { preset: flow_grpo }\ntopology: { kind: tree }\n");
    cr_assert_eq(gv_run_config_load(p, NULL, 0, presets, &cfg, NULL), GV_ERR_CONFIG);
    cr_assert(strstr(gv_last_error(), "topology"), "%s", gv_last_error());
    /* overrides change them (split steps at N = 10 via the draft preset path) */
    char text[PATH_MAX + 300];
    snprintf(text, sizeof text, "algorithm: { preset: %s/configs/algorithms/branch_grpo.yaml, "
             "overrides: { branch: { splits: [1, 4] }, topology: { K: 3 } } }\n", src);
    p = write_task("ovr", text);
    cr_assert_eq(gv_run_config_load(p, NULL, 0, presets, &cfg, &res), GV_OK, "%s", gv_last_error());
    cr_assert_eq(cfg.topology.K, 3);
    cr_assert_eq(cfg.branch.n_splits, 2);
    cr_assert_eq(cfg.branch.splits[1], 4.0);
    cr_assert_eq(gv_config_origin_of(&res, "branch.splits"), GV_ORIGIN_OVERRIDE);
    cr_assert_eq(gv_config_origin_of(&res, "branch.split_scale"), GV_ORIGIN_PRESET);
    cr_assert_eq(gv_config_origin_of(&res, "topology.K"), GV_ORIGIN_OVERRIDE);
    gv_run_config_free(&cfg);
    gv_config_result_free(&res);
    /* --set beats the override */
    const char *set[] = {"branch.splits=[2]"};
    cr_assert_eq(gv_run_config_load(p, set, 1, presets, &cfg, &res), GV_OK, "%s", gv_last_error());
    cr_assert_eq(cfg.branch.n_splits, 1);
    cr_assert_eq(cfg.branch.splits[0], 2.0);
    cr_assert_eq(gv_config_origin_of(&res, "branch.splits"), GV_ORIGIN_SET);
    gv_run_config_free(&cfg);
    gv_config_result_free(&res);
}

/* ---- load-time rules -------------------------------------------------------------------------- */

static void expect(const char *preset, const char *set, const char *msg) {
    gv_run_config cfg;
    const char *sets[] = {set};
    cr_assert_eq(load(preset, sets, set ? 1 : 0, &cfg, NULL), GV_ERR_CONFIG, "%s %s: loaded",
                 preset, set);
    char want[PATH_MAX + 600];
    snprintf(want, sizeof want, "%s: %s", task, msg);
    cr_assert_str_eq(gv_last_error(), want);
    cr_assert_null(cfg.rewards, "a refused config is zeroed");
}

Test(algorithm_config, steps_beyond_n_minus_2_are_load_errors) {
    expect("branch_grpo", "branch.splits=[0, 9]",
           "branch.splits.1: step 9 is beyond the stochastic steps 0..8 (sampler.steps N = 10; "
           "the last step N-1 is ODE) (from --set)");
    expect("branch_grpo", "branch.splits=[0, 1.5]",
           "branch.splits.1: 1.5 is not an integer step (from --set)");
    expect("branch_grpo", "branch.splits=[3, 3]",
           "branch.splits.1: step 3 is listed twice (from --set)");
    expect("branch_grpo", "branch.splits_frac=[0, 0.95]",
           "branch.splits_frac.1: step 10 is beyond the stochastic steps 0..8 (sampler.steps N = "
           "10; the last step N-1 is ODE) (from --set)");
    expect("tempflow", "topology.branch_steps=[0, 9]",
           "topology.branch_steps.1: step 9 is beyond the stochastic steps 0..8 (sampler.steps N "
           "= 10; the last step N-1 is ODE) (from --set)");
    /* the edge itself loads: N-2 = 8 */
    gv_run_config cfg;
    const char *ok[] = {"topology.branch_steps=[0, 8]"};
    load_ok("tempflow", ok, 1, &cfg);
    int steps[GV_TOPOLOGY_MAX_STEPS], n;
    cr_assert_eq(gv_run_config_branch_steps(&cfg, steps, &n), GV_OK);
    cr_assert_eq(n, 2);
    cr_assert_eq(steps[1], 8);
    gv_run_config_free(&cfg);
}

Test(algorithm_config, scheme_topology_and_selection_rules) {
    expect("flow_grpo", "credit.kind=branch", "credit.kind: branch needs topology.kind tree, not "
           "chains (from --set)");
    expect("tempflow", "credit.kind=terminal", "credit.kind: terminal needs topology.kind "
           "chains, not branch_points (from --set)");
    expect("branch_grpo", "train.timestep_fraction=0.5", "train.timestep_fraction: 0.5: "
           "tree select their trained edges themselves (ALGORITHMS.md §3); keep 1 (from --set)");
    expect("branch_grpo", "topology.K=1", "topology.K: a tree splits into K >= 2 children, "
           "got 1 (from --set)");
    expect("branch_grpo", "branch.splits_frac=[]", "branch.splits: a tree needs at least "
           "one split step (branch.splits or branch.splits_frac)");
    expect("flow_grpo", "branch.prune.width=global", "branch.prune.width: pruning applies to trees only "
           "(topology.kind chains) (from --set)");
    expect("dense_grpo", "dense.completion_steps=0", "dense.completion_steps: '0': "
           "expected all or an integer 1..255 (from --set)");
    expect("flow_grpo", "dense.calibrate=true", "dense.calibrate: calibrates psi(i) of "
           "sampler.noise.kind calibrated; the noise here is not calibrated (from --set)");
    gv_run_config cfg;
    /* a tree with calibrated noise runs (psi = psi0); calibrating it is refused: the rounds are
       chain rollouts */
    const char *cal[] = {"sampler.noise.kind=calibrated", "dense.calibrate=true"};
    load_ok("branch_grpo", cal, 1, &cfg);
    gv_run_config_free(&cfg);
    cr_assert_eq(load("branch_grpo", cal, 2, &cfg, NULL), GV_ERR_CONFIG);
    cr_assert(strstr(gv_last_error(), "dense.calibrate: the calibration rounds are chain "
                     "rollouts"), "%s", gv_last_error());
    const char *n4[] = {"dense.completion_steps=4"};
    load_ok("dense_grpo", n4, 1, &cfg);
    cr_assert_eq(gv_run_config_dense_completion(&cfg), 4);
    gv_run_config_free(&cfg);
}

Test(algorithm_config, resolved_dump_reloads_with_the_lists) {
    gv_run_config a, b;
    const char *sets[] = {"branch.splits=[0, 2, 7]", "branch.prune.depth=fixed",
                          "branch.prune.depths=[3, 4]"};
    load_ok("branch_grpo", sets, 3, &a);
    char *t1, *t2;
    cr_assert_eq(gv_run_config_dump(&a, NULL, &t1), GV_OK);
    cr_assert_not_null(strstr(t1, "splits: [0.0, 2.0, 7.0]"), "%s", t1);
    cr_assert_eq(gv_run_config_load_resolved(t1, "dump", &b), GV_OK, "%s", gv_last_error());
    cr_assert_eq(gv_run_config_dump(&b, NULL, &t2), GV_OK);
    cr_assert_str_eq(t1, t2);
    cr_assert_eq(b.branch.prune.n_depths, 2);
    free(t1);
    free(t2);
    gv_run_config_free(&a);
    gv_run_config_free(&b);
}

/* ---- ALGORITHMS.md §6 plan numbers from a config ---------------------------------------------- */

static void plan_of(const char *width, gv_rollout_plan *p) {
    gv_run_config cfg;
    char w[64];
    snprintf(w, sizeof w, "branch.prune.width=%s", width);
    const char *sets[] = {"sampler.steps=20", "group.prompts_per_iteration=1", w};
    load_ok("branch_grpo", sets, 3, &cfg);
    cr_assert_eq(gv_run_config_rollout_plan(&cfg, p), GV_OK, "%s", gv_last_error());
    gv_run_config_free(&cfg);
}

Test(algorithm_config, branch_grpo_plan_numbers_of_section_6) {
    gv_rollout_plan p;
    plan_of("none", &p);
    cr_assert_eq(p.leaves, 16);
    cr_assert_eq(p.rollout_forwards, 203);
    cr_assert_eq(p.transitions, 218);
    cr_assert_eq(p.trainable_edges, 202);
    cr_assert_eq(p.trained_edges, 202);
    cr_assert_eq(p.training_forwards, 187);
    plan_of("per_branch", &p);
    cr_assert_eq(p.trained_edges, 122);
    cr_assert_eq(p.training_forwards, 107);
    plan_of("global", &p);
    cr_assert_eq(p.trained_edges, 130);
}

Test(algorithm_config, chain_and_tempflow_plans) {
    gv_run_config cfg;
    gv_rollout_plan p;
    load_ok("flow_grpo", NULL, 0, &cfg); /* 8 prompts x 8 chains x 10 steps, 9 SDE steps each */
    cr_assert_eq(gv_run_config_rollout_plan(&cfg, &p), GV_OK, "%s", gv_last_error());
    cr_assert_eq(p.rollout_forwards, 640);
    cr_assert_eq(p.trained_edges, 64 * 9);
    cr_assert_eq(p.training_forwards, 64 * 9);
    gv_run_config_free(&cfg);
    /* TempFlow, one prompt: 2 trunks x (10 trunk rows + sum_{i in B} (N-1-i) K completion rows) */
    const char *one[] = {"group.prompts_per_iteration=1"};
    load_ok("tempflow", one, 1, &cfg);
    cr_assert_eq(gv_run_config_rollout_plan(&cfg, &p), GV_OK, "%s", gv_last_error());
    int64_t completion = 0;
    for (int i = 0; i <= 8; i += 2) completion += (int64_t)(10 - 1 - i) * 6;
    cr_assert_eq(p.rollout_forwards, 2 * (10 + completion));
    cr_assert_eq(p.trained_edges, 2 * 5 * 6); /* one SDE edge per branch */
    gv_run_config_free(&cfg);
}
