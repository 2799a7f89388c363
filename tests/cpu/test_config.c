/* Tests of the config binder (config.h) and the task config (run_config.h): the exact one-line
 * messages for every kind of bad input (file:line + dotted key, or --set key), --set editing,
 * path resolution, defaults, map flattening, preset ownership and overrides with their origins,
 * the shipped configs, and that the resolved dump reloads to an identical struct.
 * Fixtures: tests/data/config/ (each test chdirs there, so messages name the short file names). */
#include <criterion/criterion.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "grove/config.h"
#include "grove/run_config.h"

static char src_dir[PATH_MAX], fixture_dir[PATH_MAX + 64], preset_dir[PATH_MAX + 64];

static void enter_fixtures(void) {
    const char *s = getenv("GROVE_SOURCE_DIR");
    snprintf(src_dir, sizeof src_dir, "%s", s ? s : GROVE_SOURCE_DIR);
    snprintf(fixture_dir, sizeof fixture_dir, "%s/tests/data/config", src_dir);
    snprintf(preset_dir, sizeof preset_dir, "%s/configs/algorithms", src_dir);
    cr_assert_eq(chdir(fixture_dir), 0, "cannot enter %s", fixture_dir);
}

TestSuite(config, .init = enter_fixtures);

/* Load a fixture expecting failure; check status and the exact message. */
static void expect_error(const char *file, const char *const *sets, int nsets, gv_status want,
                         const char *msg) {
    gv_run_config cfg;
    gv_clear_error();
    gv_status st = gv_run_config_load(file, sets, nsets, preset_dir, &cfg, NULL);
    cr_assert_eq(st, want, "%s: status %s, want %s (%s)", file ? file : "(none)",
                 gv_status_name(st), gv_status_name(want), gv_last_error());
    cr_assert_str_eq(gv_last_error(), msg);
    cr_assert_null(strchr(gv_last_error(), '\n'), "one line");
    cr_assert_null(cfg.rewards, "failed load leaves the struct zeroed");
}

static void load_ok(const char *file, const char *const *sets, int nsets, gv_run_config *cfg,
                    gv_config_result *res) {
    gv_status st = gv_run_config_load(file, sets, nsets, preset_dir, cfg, res);
    cr_assert_eq(st, GV_OK, "%s: %s", file, gv_last_error());
}

/* ---- file errors ----------------------------------------------------------------------------- */

Test(config, unknown_key_names_line_and_dotted_key) {
    expect_error("unknown_key.yaml", NULL, 0, GV_ERR_CONFIG,
                 "unknown_key.yaml:7: train.lrr: unknown key (did you mean 'lr'?)");
}

Test(config, wrong_type) {
    expect_error("wrong_type.yaml", NULL, 0, GV_ERR_CONFIG,
                 "wrong_type.yaml:5: train.lr: expected a number, got 'abc'");
}

Test(config, out_of_range) {
    expect_error("out_of_range.yaml", NULL, 0, GV_ERR_CONFIG,
                 "out_of_range.yaml:5: train.minibatch: 0 is out of range [1, 4096]");
}

Test(config, ints_reject_trailing_garbage_and_fractions) {
    expect_error("bad_int.yaml", NULL, 0, GV_ERR_CONFIG,
                 "bad_int.yaml:4: train.iterations: expected an integer, got '12abc'");
    expect_error("float_int.yaml", NULL, 0, GV_ERR_CONFIG,
                 "float_int.yaml:4: train.minibatch: expected an integer, got '1.5'");
}

Test(config, enum_lists_allowed_names) {
    expect_error("bad_enum.yaml", NULL, 0, GV_ERR_CONFIG,
                 "bad_enum.yaml:4: rewards_mode: expected one of sum_then_normalize, "
                 "normalize_then_sum; got 'sum'");
}

Test(config, duplicate_key_is_one_line_with_position) {
    expect_error("duplicate.yaml", NULL, 0, GV_ERR_CONFIG,
                 "duplicate.yaml:4:1: duplicate key 'run'");
}

Test(config, malformed_yaml_reports_libfyaml_position) {
    /* libfyaml's own diagnostic (0.7.12), captured, not printed: it places the error at the
       point it gave up, the end of the unclosed flow sequence. */
    expect_error("malformed.yaml", NULL, 0, GV_ERR_CONFIG,
                 "malformed.yaml:4:1: flow sequence without a closing bracket");
}

Test(config, empty_and_missing_files) {
    expect_error("empty.yaml", NULL, 0, GV_ERR_CONFIG, "empty.yaml: empty config file");
    expect_error("no_such.yaml", NULL, 0, GV_ERR_IO,
                 "no_such.yaml: cannot read config: No such file or directory");
}

Test(config, required_key_missing) {
    expect_error("missing_required.yaml", NULL, 0, GV_ERR_CONFIG,
                 "missing_required.yaml: model.checkpoint: required key is missing");
}

Test(config, struct_check_names_the_list_item) {
    expect_error("reward_both.yaml", NULL, 0, GV_ERR_CONFIG,
                 "reward_both.yaml:5: rewards.1: give exactly one of 'builtin' and 'plugin'");
}

/* classifier `score:` (rewards.h gv_classifier_score): an unknown mode, and a mode on a reward
   that has no probability to take the log of. */
Test(config, reward_score_values_and_owner) {
    expect_error("bad_score.yaml", NULL, 0, GV_ERR_CONFIG,
                 "bad_score.yaml:5: rewards.1.score: expected one of prob, log_prob, correct; got 'logprob'");
    const char *ink[] = {"rewards=[{builtin: ink, score: log_prob}]"};
    expect_error("base.yaml", ink, 1, GV_ERR_CONFIG,
                 "--set rewards: rewards.0: 'score' applies to the classifier reward only");
    const char *plugin[] = {"rewards=[{plugin: p/x.so, score: log_prob}]"};
    expect_error("base.yaml", plugin, 1, GV_ERR_CONFIG,
                 "--set rewards: rewards.0: 'score' applies to the classifier reward only");
    gv_run_config cfg;
    load_ok("base.yaml", NULL, 0, &cfg, NULL);
    cr_expect_eq(cfg.rewards[0].score, 0, "default prob");
    gv_run_config_free(&cfg);
    const char *lp[] = {"rewards.0.score=log_prob"};
    load_ok("base.yaml", lp, 1, &cfg, NULL);
    cr_expect_eq(cfg.rewards[0].score, 1, "log_prob");
    gv_run_config_free(&cfg);
    const char *cor[] = {"rewards.0.score=correct"};
    load_ok("base.yaml", cor, 1, &cfg, NULL);
    cr_expect_eq(cfg.rewards[0].score, 2, "correct");
    gv_run_config_free(&cfg);
}

/* ---- --set ----------------------------------------------------------------------------------- */

Test(config, set_unknown_key) {
    const char *sets[] = {"train.lrr=0.1"};
    expect_error("base.yaml", sets, 1, GV_ERR_CONFIG,
                 "--set train.lrr: unknown key (did you mean 'lr'?)");
}

Test(config, set_wrong_type_and_range) {
    const char *sets[] = {"train.lr=abc"};
    expect_error("base.yaml", sets, 1, GV_ERR_CONFIG, "--set train.lr: expected a number, got 'abc'");
    const char *sets2[] = {"train.minibatch=0"};
    expect_error("base.yaml", sets2, 1, GV_ERR_CONFIG,
                 "--set train.minibatch: 0 is out of range [1, 4096]");
    const char *sets3[] = {"train"};
    expect_error("base.yaml", sets3, 1, GV_ERR_CONFIG, "--set train: expected key.path=value");
}

Test(config, set_values_are_yaml_lists) {
    const char *sets[] = {"rewards=[{builtin: ink, weight: 2.5}, {plugin: p/x.so}]"};
    gv_run_config cfg;
    gv_config_result res;
    load_ok("base.yaml", sets, 1, &cfg, &res);
    cr_assert_eq(cfg.n_rewards, 2);
    cr_assert_str_eq(cfg.rewards[0].builtin, "ink");
    cr_assert_eq(cfg.rewards[0].weight, 2.5);
    cr_assert_eq(cfg.rewards[1].weight, 1.0, "default inside a --set list item");
    char want[3 * PATH_MAX], cwd[PATH_MAX];
    cr_assert_not_null(getcwd(cwd, sizeof cwd));
    snprintf(want, sizeof want, "%s/p/x.so", cwd);
    cr_assert_str_eq(cfg.rewards[1].plugin, want, "--set paths are cwd-relative");
    cr_assert_eq(gv_config_origin_of(&res, "rewards.0.weight"), GV_ORIGIN_SET);
    cr_assert_eq(gv_config_origin_of(&res, "rewards.1.weight"), GV_ORIGIN_DEFAULT);
    gv_run_config_free(&cfg);
    gv_config_result_free(&res);

    const char *bad[] = {"rewards=[{builtin: ink, weight: x}]"};
    expect_error("base.yaml", bad, 1, GV_ERR_CONFIG,
                 "--set rewards: rewards.0.weight: expected a number, got 'x'");
}

Test(config, set_creates_mappings_and_indexes_lists) {
    const char *sets[] = {"train.ema.every=3", "rewards.0.config.scale=2", "run.seed=7"};
    gv_run_config cfg;
    gv_config_result res;
    load_ok("base.yaml", sets, 3, &cfg, &res);
    cr_assert_eq(cfg.train.ema.every, 3);
    cr_assert_eq(cfg.train.ema.decay, 0.9, "sibling keeps its default");
    cr_assert_str_eq(cfg.rewards[0].config.flat, "scale=2\n");
    cr_assert_eq(cfg.run.seed, 7);
    cr_assert_eq(gv_config_origin_of(&res, "run.seed"), GV_ORIGIN_SET);
    cr_assert_eq(gv_config_origin_of(&res, "rewards.0.builtin"), GV_ORIGIN_CONFIG);
    gv_run_config_free(&cfg);
    gv_config_result_free(&res);

    const char *bad[] = {"rewards.3.weight=1"};
    expect_error("base.yaml", bad, 1, GV_ERR_CONFIG,
                 "--set rewards.3.weight: '3' is not an index of a list of 1");
}

/* ---- values ---------------------------------------------------------------------------------- */

Test(config, paths_resolve_against_the_file_directory) {
    gv_run_config cfg;
    gv_config_result res;
    enter_fixtures();
    cr_assert_eq(chdir(src_dir), 0);
    load_ok("tests/data/config/base.yaml", NULL, 0, &cfg, &res);
    char want[3 * PATH_MAX];
    snprintf(want, sizeof want, "%s/weights/base.h5", fixture_dir);
    cr_assert_str_eq(cfg.model.checkpoint, want);
    cr_assert_str_eq(cfg.data.eval_prompts, "", "an unset path stays empty");
    gv_run_config_free(&cfg);
    gv_config_result_free(&res);

    const char *sets[] = {"model.checkpoint=../x/./y.h5"};
    load_ok("tests/data/config/base.yaml", sets, 1, &cfg, NULL);
    char cwd[PATH_MAX], *up;
    cr_assert_not_null(getcwd(cwd, sizeof cwd));
    up = strrchr(cwd, '/');
    *up = '\0';
    snprintf(want, sizeof want, "%s/x/y.h5", cwd);
    cr_assert_str_eq(cfg.model.checkpoint, want, "--set: relative to the current directory");
    gv_run_config_free(&cfg);
}

Test(config, defaults_are_filled) {
    gv_run_config cfg;
    gv_config_result res;
    load_ok("base.yaml", NULL, 0, &cfg, &res);
    cr_assert_str_eq(cfg.run.name, "run");
    cr_assert_eq(cfg.run.micro_batch, 32);
    cr_assert_eq(cfg.run.device, GV_DEVICE_AUTO);
    cr_assert_eq(cfg.sampler.steps, 10);
    cr_assert_eq(cfg.sampler.shift, 3.0);
    cr_assert_eq(cfg.train.lr, 3e-4);
    cr_assert_eq(cfg.train.lr_schedule.kind, GV_LR_SCHED_CONSTANT);
    cr_assert_eq(cfg.train.ema.every, 8);
    cr_assert_eq(cfg.rewards_mode, GV_REWARDS_SUM_THEN_NORMALIZE);
    cr_assert_eq(cfg.n_eval_rewards, 0);
    cr_assert_eq(cfg.rewards[0].weight, 1.0);
    cr_assert_str_eq(cfg.rewards[0].plugin, "");
    cr_assert_str_eq(cfg.algorithm.preset, "flow_grpo");
    cr_assert_eq(gv_config_origin_of(&res, "train.lr"), GV_ORIGIN_DEFAULT);
    cr_assert_eq(gv_config_origin_of(&res, "model.checkpoint"), GV_ORIGIN_CONFIG);
    /* Preset values for keys the file does not mention. */
    cr_assert_eq(cfg.group.size, 8);
    cr_assert_eq(cfg.kl.beta, 0.04);
    cr_assert_eq(gv_config_origin_of(&res, "group.size"), GV_ORIGIN_PRESET);
    cr_assert_str_eq(res.preset, "flow_grpo");
    gv_run_config_free(&cfg);
    gv_config_result_free(&res);
}

Test(config, map_values_are_flattened) {
    gv_run_config cfg;
    load_ok("map.yaml", NULL, 0, &cfg, NULL);
    cr_assert_eq(cfg.n_rewards, 2);
    cr_assert_str_eq(cfg.rewards[0].config.flat, "");
    cr_assert_str_eq(cfg.rewards[0].config.yaml, "{}");
    cr_assert_str_eq(cfg.rewards[1].config.flat,
                     "scale=2.0\nlabels.0=cat\nlabels.1=dog\nname=a b\n");
    cr_assert_str_eq(cfg.rewards[1].config.yaml, "{scale: 2.0, labels: [cat, dog], name: \"a b\"}");
    gv_run_config_free(&cfg);
}

/* ---- presets (ALGORITHMS.md §9) -------------------------------------------------------------- */

Test(config, preset_owned_key_at_top_level_is_an_error) {
    expect_error("owned.yaml", NULL, 0, GV_ERR_CONFIG,
                 "owned.yaml:7: group.size: set by preset 'flow_grpo'; change it under "
                 "algorithm.overrides or with --set");
}

Test(config, overrides_and_set_change_owned_keys_with_origins) {
    gv_run_config cfg;
    gv_config_result res;
    const char *sets[] = {"kl.beta=0.5", "train.timestep_fraction=0.5"};
    load_ok("overrides.yaml", sets, 2, &cfg, &res);
    cr_assert_eq(cfg.group.size, 4);
    cr_assert_eq(cfg.kl.kind, GV_KL_NONE);
    cr_assert_eq(cfg.kl.beta, 0.5);
    cr_assert_eq(cfg.train.clip_range, 2e-4);
    cr_assert_eq(cfg.train.timestep_fraction, 0.5);
    cr_assert_eq(cfg.train.adv_clip, 5.0);
    cr_assert_eq(cfg.train.lr, 1e-3);
    cr_assert_eq(gv_config_origin_of(&res, "group.size"), GV_ORIGIN_OVERRIDE);
    cr_assert_eq(gv_config_origin_of(&res, "kl.kind"), GV_ORIGIN_OVERRIDE);
    cr_assert_eq(gv_config_origin_of(&res, "kl.beta"), GV_ORIGIN_SET);
    cr_assert_eq(gv_config_origin_of(&res, "train.timestep_fraction"), GV_ORIGIN_SET);
    cr_assert_eq(gv_config_origin_of(&res, "train.adv_clip"), GV_ORIGIN_PRESET);
    cr_assert_eq(gv_config_origin_of(&res, "train.lr"), GV_ORIGIN_CONFIG);
    cr_assert_eq(gv_config_origin_of(&res, "train.minibatch"), GV_ORIGIN_DEFAULT);
    cr_assert_eq(gv_config_origin_of(&res, "group.prompts_per_iteration"), GV_ORIGIN_DEFAULT);

    char *text = NULL;
    cr_assert_eq(gv_run_config_dump(&cfg, &res, &text), GV_OK);
    cr_assert_not_null(strstr(text, "\n  lr: 0.001  # config\n"), "%s", text);
    cr_assert_not_null(strstr(text, "\n  size: 4  # override\n"), "%s", text);
    cr_assert_not_null(strstr(text, "\n  beta: 0.5  # --set\n"), "%s", text);
    cr_assert_not_null(strstr(text, "\n  adv_clip: 5.0  # preset\n"), "%s", text);
    cr_assert_not_null(strstr(text, "\n  minibatch: 4  # default\n"), "%s", text);
    free(text);
    gv_run_config_free(&cfg);
    gv_config_result_free(&res);
}

Test(config, set_beats_overrides_and_may_set_owned_keys) {
    gv_run_config cfg;
    gv_config_result res;
    const char *sets[] = {"group.size=2", "algorithm.overrides.group.same_latent=true"};
    load_ok("overrides.yaml", sets, 2, &cfg, &res);
    cr_assert_eq(cfg.group.size, 2, "--set wins over algorithm.overrides");
    cr_assert(cfg.group.same_latent);
    cr_assert_eq(gv_config_origin_of(&res, "group.size"), GV_ORIGIN_SET);
    cr_assert_eq(gv_config_origin_of(&res, "group.same_latent"), GV_ORIGIN_SET);
    gv_run_config_free(&cfg);
    gv_config_result_free(&res);
}

Test(config, overrides_only_touch_owned_keys) {
    expect_error("override_unowned.yaml", NULL, 0, GV_ERR_CONFIG,
                 "override_unowned.yaml:6: algorithm.overrides.train.lr: not set by the preset; "
                 "set it at the top level instead");
    expect_error("override_unknown.yaml", NULL, 0, GV_ERR_CONFIG,
                 "override_unknown.yaml:6: algorithm.overrides.group.siz: unknown key (did you "
                 "mean 'size'?)");
}

Test(config, preset_may_only_set_owned_keys) {
    expect_error("uses_bad_preset.yaml", NULL, 0, GV_ERR_CONFIG,
                 "bad_preset.yaml:3: train.lr: not an algorithm key; a preset may only set keys "
                 "the preset owns");
}

Test(config, unknown_preset_lists_available) {
    gv_run_config cfg;
    cr_assert_eq(gv_run_config_load("unknown_preset.yaml", NULL, 0, preset_dir, &cfg, NULL),
                 GV_ERR_CONFIG);
    const char *m = gv_last_error();
    cr_assert(strncmp(m, "unknown_preset.yaml:4: algorithm.preset: unknown preset "
                         "'no_such_preset' (no ", 75) == 0, "got: %s", m);
    cr_assert_not_null(strstr(m, "available: "), "%s", m);
    cr_assert_not_null(strstr(m, "flow_grpo"), "%s", m);
}

/* ---- shipped configs and round trip ---------------------------------------------------------- */

static void load_shipped(gv_run_config *cfg, gv_config_result *res) {
    char path[3 * PATH_MAX];
    snprintf(path, sizeof path, "%s/configs/align/mnist-flowgrpo.yaml", src_dir);
    /* preset_dir NULL: found next to the task config, as the CLI does. */
    cr_assert_eq(gv_run_config_load(path, NULL, 0, NULL, cfg, res), GV_OK, "%s",
                 gv_last_error());
}

Test(config, shipped_mnist_flowgrpo_loads_with_flow_grpo_values) {
    gv_run_config cfg;
    gv_config_result res;
    load_shipped(&cfg, &res);
    char want[3 * PATH_MAX];
    snprintf(want, sizeof want, "%s/models/weights/mnist-unet-s.h5", src_dir);
    cr_assert_str_eq(cfg.model.checkpoint, want);
    snprintf(want, sizeof want, "%s/configs/algorithms/flow_grpo.yaml", src_dir);
    cr_assert_str_eq(res.preset_path + strlen(res.preset_path) - 15, "/flow_grpo.yaml");
    cr_assert_eq(cfg.sampler.guidance, 1.0);
    cr_assert_eq(cfg.group.size, 8);
    cr_assert_not(cfg.group.same_latent);
    cr_assert_eq(cfg.sampler.noise.kind, GV_NOISE_FLOW_GRPO);
    cr_assert_eq(cfg.sampler.noise.level, 0.7);
    /* the task config overrides the preset's KL (velocity KL without CFG; README) */
    cr_assert_eq(cfg.kl.kind, GV_KL_VELOCITY);
    cr_assert_eq(cfg.kl.beta, 0.01);
    cr_assert_eq(gv_config_origin_of(&res, "kl.kind"), GV_ORIGIN_OVERRIDE);
    cr_assert_eq(cfg.train.clip_range, 1e-4);
    cr_assert_eq(cfg.train.adv_clip, 5.0);
    cr_assert(cfg.train.global_std);
    cr_assert_eq(cfg.train.timestep_fraction, 1.0);
    cr_assert_eq(cfg.n_rewards, 1);
    cr_assert_str_eq(cfg.rewards[0].builtin, "classifier");
    cr_assert_eq(cfg.n_eval_rewards, 1);
    cr_assert_str_eq(cfg.eval_rewards[0].model, "gold");
    cr_assert_eq(gv_config_origin_of(&res, "sampler.noise.level"), GV_ORIGIN_PRESET);
    gv_run_config_free(&cfg);
    gv_config_result_free(&res);
}

Test(config, resolved_dump_reloads_to_an_identical_struct) {
    gv_run_config a, b;
    gv_config_result res;
    const char *sets[] = {"rewards=[{builtin: classifier}, {plugin: p.so, weight: -0.25, "
                          "config: {scale: 2.0, labels: [cat, dog], msg: 'a: b'}}]",
                          "train.lr=1e-5", "run.name=\"12\""};
    char path[3 * PATH_MAX];
    snprintf(path, sizeof path, "%s/configs/align/mnist-flowgrpo.yaml", src_dir);
    cr_assert_eq(gv_run_config_load(path, sets, 3, NULL, &a, &res), GV_OK, "%s", gv_last_error());
    char *text = NULL, *again = NULL;
    cr_assert_eq(gv_run_config_dump(&a, NULL, &text), GV_OK);
    cr_assert_eq(gv_run_config_load_resolved(text, "dump.yaml", &b), GV_OK, "%s\n%s",
                 gv_last_error(), text);
    cr_assert_eq(gv_run_config_dump(&b, NULL, &again), GV_OK);
    cr_assert_str_eq(again, text);
    /* Field by field on what text equality could hide. */
    cr_assert_eq(b.train.lr, a.train.lr);
    cr_assert_str_eq(b.run.name, "12");
    cr_assert_str_eq(b.model.checkpoint, a.model.checkpoint);
    cr_assert_eq(b.n_rewards, 2);
    cr_assert_eq(b.rewards[1].weight, -0.25);
    cr_assert_str_eq(b.rewards[1].plugin, a.rewards[1].plugin);
    cr_assert_str_eq(b.rewards[1].config.flat, a.rewards[1].config.flat);
    cr_assert_str_eq(b.rewards[1].config.flat, "scale=2.0\nlabels.0=cat\nlabels.1=dog\nmsg=a: b\n");
    uint64_t ha, hb;
    cr_assert_eq(gv_run_config_hash(&a, &ha), GV_OK);
    cr_assert_eq(gv_run_config_hash(&b, &hb), GV_OK);
    cr_assert_eq(ha, hb);
    b.train.iterations += 1;
    cr_assert_eq(gv_run_config_hash(&b, &hb), GV_OK);
    cr_assert_neq(ha, hb, "a changed value changes the hash");
    free(text);
    free(again);
    gv_run_config_free(&a);
    gv_run_config_free(&b);
    gv_config_result_free(&res);
}

/* ---- the generic binder on a schema of its own ----------------------------------------------- */

typedef struct toy_item { char *name; int n; } toy_item;
typedef struct toy {
    bool flag;
    int64_t big;
    int color;
    double x;
    toy_item *items;
    int n_items;
} toy;

static const char *const toy_colors[] = {"red", "green", NULL};
static const gv_field toy_item_fields[] = {
    {.key = "name", .type = GV_CFG_STRING, .offset = offsetof(toy_item, name), .flags = GV_CFG_REQUIRED},
    {.key = "n", .type = GV_CFG_INT, .offset = offsetof(toy_item, n), .def = "1"},
};
static const gv_schema toy_item_schema = {"toy_item", sizeof(toy_item), toy_item_fields, 2, NULL};
static const gv_field toy_fields[] = {
    {.key = "flag", .type = GV_CFG_BOOL, .offset = offsetof(toy, flag), .def = "true"},
    {.key = "big", .type = GV_CFG_I64, .offset = offsetof(toy, big), .def = "5000000000"},
    {.key = "color", .type = GV_CFG_ENUM, .offset = offsetof(toy, color), .names = toy_colors,
     .def = "green"},
    {.key = "x", .type = GV_CFG_FLOAT, .offset = offsetof(toy, x), .def = "0.5", .min = 0,
     .max = INFINITY},
    {.key = "items", .type = GV_CFG_LIST, .offset = offsetof(toy, items),
     .count_offset = offsetof(toy, n_items), .sub = &toy_item_schema,
     .def = "[{name: a}, {name: b, n: 3}]"},
};
static const gv_schema toy_schema = {"toy", sizeof(toy), toy_fields, 5, NULL};

static gv_status toy_load(const char *const *sets, int nsets, toy *t) {
    gv_config_request req = {.schema = &toy_schema, .sets = sets, .nsets = nsets};
    return gv_config_load(&req, t, NULL);
}

Test(config, generic_defaults_from_yaml_text) {
    toy t;
    cr_assert_eq(toy_load(NULL, 0, &t), GV_OK, "%s", gv_last_error());
    cr_assert(t.flag);
    cr_assert_eq(t.big, 5000000000LL);
    cr_assert_eq(t.color, 1);
    cr_assert_eq(t.n_items, 2);
    cr_assert_str_eq(t.items[1].name, "b");
    cr_assert_eq(t.items[1].n, 3);
    cr_assert_eq(t.items[0].n, 1);
    gv_config_free(&toy_schema, &t);
    cr_assert_null(t.items);
}

Test(config, generic_strict_scalars) {
    toy t;
    const char *yes[] = {"flag=yes"};
    cr_assert_eq(toy_load(yes, 1, &t), GV_ERR_CONFIG);
    cr_assert_str_eq(gv_last_error(), "--set flag: expected true or false, got 'yes'");
    const char *quoted[] = {"x=\"1.0\""};
    cr_assert_eq(toy_load(quoted, 1, &t), GV_ERR_CONFIG);
    cr_assert_str_eq(gv_last_error(), "--set x: expected a number, got '1.0'");
    const char *neg[] = {"x=-1"};
    cr_assert_eq(toy_load(neg, 1, &t), GV_ERR_CONFIG);
    cr_assert_str_eq(gv_last_error(), "--set x: -1 is out of range [0, inf]");
    const char *inf[] = {"x=.inf"};
    cr_assert_eq(toy_load(inf, 1, &t), GV_ERR_CONFIG);
    const char *col[] = {"color=blue"};
    cr_assert_eq(toy_load(col, 1, &t), GV_ERR_CONFIG);
    cr_assert_str_eq(gv_last_error(), "--set color: expected one of red, green; got 'blue'");
    const char *req[] = {"items=[{n: 2}]"};
    cr_assert_eq(toy_load(req, 1, &t), GV_ERR_CONFIG);
    cr_assert_str_eq(gv_last_error(), "--set items: items.0.name: required key is missing");
    const char *notlist[] = {"items=3"};
    cr_assert_eq(toy_load(notlist, 1, &t), GV_ERR_CONFIG);
    cr_assert_str_eq(gv_last_error(), "--set items: expected a list, got a scalar");
    const char *ok[] = {"flag=false", "big=-9000000000", "items=[]"};
    cr_assert_eq(toy_load(ok, 3, &t), GV_OK, "%s", gv_last_error());
    cr_assert_not(t.flag);
    cr_assert_eq(t.big, -9000000000LL);
    cr_assert_eq(t.n_items, 0);
    gv_config_free(&toy_schema, &t);
}

/* A plugin config longer than any fixed formatting buffer survives the dump and reload whole. */
Test(config, long_map_round_trips) {
    char set[4096] = "rewards.0.config={";
    size_t at = strlen(set);
    for (int k = 0; k < 120; ++k)
        at += (size_t)snprintf(set + at, sizeof set - at, "%sk%d: %d", k ? ", " : "", k, k);
    snprintf(set + at, sizeof set - at, "}");
    const char *sets[] = {set};
    char path[3 * PATH_MAX];
    snprintf(path, sizeof path, "%s/configs/align/mnist-flowgrpo.yaml", src_dir);
    gv_run_config a, b;
    cr_assert_eq(gv_run_config_load(path, sets, 1, NULL, &a, NULL), GV_OK, "%s", gv_last_error());
    char *text = NULL;
    cr_assert_eq(gv_run_config_dump(&a, NULL, &text), GV_OK);
    cr_assert(strstr(text, "k119: 119}") != NULL, "map cut short in the dump");
    cr_assert_eq(gv_run_config_load_resolved(text, "dump.yaml", &b), GV_OK, "%s", gv_last_error());
    cr_assert_str_eq(b.rewards[0].config.flat, a.rewards[0].config.flat);
    cr_assert(strstr(b.rewards[0].config.flat, "k119=119\n") != NULL);
    free(text);
    gv_run_config_free(&a);
    gv_run_config_free(&b);
}
