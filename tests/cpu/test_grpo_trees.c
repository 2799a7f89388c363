/* `grove train` over trees and branch points (rollout.c rollout_topology, grpo_train.c; DESIGN.md
 * §4; ALGORITHMS.md §3, §4, §6, §9), on tests/data/align/tiny.yaml (N = 6 here, so the §9 split
 * fractions give distinct steps {0, 1, 2, 3}) with a tiny random UNet:
 *   every preset   1 iteration: ρ == 1 exactly on the first minibatch (the same fixed-shape forward
 *                  in rollout and training, for chains, trees and branch points alike); the
 *                  rollout's NFE equals the plan's rollout forwards (one row per frontier node per
 *                  step), and the training NFE is one forward per distinct kept parent (x2 with the
 *                  KL reference) — parent reuse — when every planned edge trains;
 *   pruning        per_branch / global width pruning (N = 10) train exactly the plan's pruned
 *                  edge count, fewer than unpruned;
 *   dry run        the plan of branch_grpo at N = 20 (ALGORITHMS.md §6 numbers, fixed-shape
 *                  calls per step); a refused config (a tree with dumps) still gets its counts;
 *   dense          DenseGRPO's calibration phase logs every round, /state psi holds the last
 *                  round's ψ, and a calibrated run resumes bit-identically (ψ from last.h5);
 *                  a calibration batch is dense.calibration_prompts x group.size samples, capped
 *                  at an iteration's prompts (the preset's 4 on tiny.yaml's 2), and its
 *                  NFE per round is its chains x (N + the completions' steps), as --dry-run
 *                  counts it;
 *   resume         a tree run of 2 iterations straight == 1 + resume to 2 (same parameter hash):
 *                  the tree's noise is addressed by (seed, iteration, slot, node id, step).
 * Presets are read from configs/algorithms/. */
#include "grpo_test_util.h"

#include "grove/algorithm_config.h"

static void preset_set(char *out, size_t n, const char *preset) {
    snprintf(out, n, "algorithm.preset=%s/configs/algorithms/%s.yaml", GROVE_SOURCE_DIR, preset);
}

/* One run of `preset` on the tiny config (N = 6) with `extra` sets; metrics text and the plan. */
static char *run_preset(const char *preset, const char *name, const char *const *extra, int n_extra,
                        int iterations, gv_rollout_plan *plan, int *kl_on) {
    char s_preset[4200], s_iter[64];
    preset_set(s_preset, sizeof s_preset, preset);
    snprintf(s_iter, sizeof s_iter, "train.iterations=%d", iterations);
    const char *sets[12] = {s_preset, s_iter, "sampler.steps=6", "eval.every=0"};
    int n = 4;
    for (int i = 0; i < n_extra; ++i) sets[n++] = extra[i];
    gv_run_config cfg;
    load_cfg(&cfg, name, sets, n);
    if (plan) cr_assert_eq(gv_run_config_rollout_plan(&cfg, plan), GV_OK, "%s", gv_last_error());
    if (kl_on) *kl_on = cfg.kl.kind != GV_KL_NONE && cfg.kl.beta > 0;
    gv_grpo_result res;
    gv_grpo_options opt = {.backend = be(), .result = &res};
    cr_assert_eq(gv_grpo_run(&cfg, &opt), GV_OK, "%s: %s", preset, gv_last_error());
    gv_run_config_free(&cfg);
    cr_assert(res.finished, "%s", preset);
    return slurp_run(name, "metrics.jsonl");
}

Test(grpo_trees, every_preset_has_ratio_one_before_the_first_update, .timeout = 300) {
    write_models();
    const char *presets[] = {"flow_grpo", "flow_grpo_fast", "mix_grpo",        "dance_grpo",
                             "tempflow",  "branch_grpo",    "branch_grpo_mix", "dense_grpo"};
    const char *rounds[] = {"dense.rounds=2"}; /* the calibration phase, short */
    for (size_t p = 0; p < sizeof presets / sizeof presets[0]; ++p) {
        gv_rollout_plan plan;
        int kl = 0;
        char *m = run_preset(presets[p], presets[p], rounds, 1, 1, &plan, &kl);
        cr_assert_eq(metric(m, "ratio_first_min", 0), 1.0, "%s: %s", presets[p], m);
        cr_assert_eq(metric(m, "ratio_first_max", 0), 1.0, "%s: %s", presets[p], m);
        cr_assert_eq(metric(m, "nfe_rollout", 0), (double)plan.rollout_forwards, "%s: %s",
                     presets[p], m);
        const double units = metric(m, "units", 0);
        cr_assert(units > 0 && units <= plan.trained_edges, "%s: %g units, plan %lld", presets[p],
                  units, (long long)plan.trained_edges);
        if (units == plan.trained_edges) /* one forward per kept parent (+ the KL reference's) */
            cr_assert_eq(metric(m, "nfe_train", 0), (double)plan.training_forwards * (kl ? 2 : 1),
                         "%s: %s", presets[p], m);
        if (p == 5 || p == 6) /* trees: parent reuse saves forwards */
            cr_assert_lt(plan.training_forwards, plan.trained_edges, "%s", presets[p]);
        if (p == 7) /* DenseGRPO: the ODE completions of the trained steps' x_i */
            cr_assert_eq(metric(m, "nfe_completion", 0), (double)plan.completion_forwards, "%s", m);
        cr_assert_eq(metric(m, "skipped", 0), 0.0);
        cr_assert(isfinite(metric(m, "loss", 0)), "%s", presets[p]);
        free(m);
    }
    remove_tree();
}

Test(grpo_trees, width_pruning_trains_the_planned_edges, .timeout = 120) {
    write_models();
    const char *widths[] = {"branch.prune.width=per_branch", "branch.prune.width=global"};
    for (int w = 0; w < 2; ++w) {
        gv_rollout_plan plan, full;
        char name[32];
        snprintf(name, sizeof name, "prune%d", w);
        /* N = 10: splits {0, 2, 3, 5}, tail chains of 3 trainable edges (steps 6..8) */
        const char *extra[] = {"sampler.steps=10", widths[w], "branch.prune.ratio=0.5"};
        char *m = run_preset("branch_grpo", name, extra, 3, 1, &plan, NULL);
        snprintf(name, sizeof name, "full%d", w);
        free(run_preset("branch_grpo", name, extra, 1, 1, &full, NULL));
        cr_assert_lt(plan.trained_edges, full.trained_edges, "%s prunes", widths[w]);
        cr_assert_eq(metric(m, "units", 0), (double)plan.trained_edges, "%s: %s", widths[w], m);
        cr_assert_eq(metric(m, "ratio_first_max", 0), 1.0);
        free(m);
    }
    remove_tree();
}

Test(grpo_trees, tree_resume_is_bit_identical, .timeout = 120) {
    write_models();
    char s_preset[4200];
    preset_set(s_preset, sizeof s_preset, "branch_grpo");
    const char *sets[] = {s_preset, "sampler.steps=6", "eval.every=0", "train.iterations=2"};
    gv_grpo_result res;
    cr_assert_eq(run("straight", sets, 4, 0, &res), GV_OK, "%s", gv_last_error());
    cr_assert_eq(run("split", sets, 4, 1, &res), GV_OK, "%s", gv_last_error());
    cr_assert_not(res.finished);
    cr_assert_eq(run("split", sets, 4, 0, &res), GV_OK, "%s", gv_last_error());
    cr_assert(res.resumed && res.finished);
    char a[17], b[17];
    last_hash("straight", a);
    last_hash("split", b);
    cr_assert_str_eq(a, b);
    remove_tree();
}

/* --dry-run (gv_grpo_plan): the ALGORITHMS.md §6 numbers for branch_grpo at N = 20, one prompt,
   and a refused config (dense_grpo: credit dense) still gets its counts, with the reason. */
Test(grpo_trees, dry_run_prints_the_tree_plan, .timeout = 60) {
    write_models();
    char s_preset[4200];
    preset_set(s_preset, sizeof s_preset, "branch_grpo");
    const char *sets[] = {s_preset, "sampler.steps=20", "group.prompts_per_iteration=1",
                          "algorithm.overrides={}"};
    gv_run_config cfg;
    load_cfg(&cfg, "dry", sets, 4);
    gv_grpo_result res;
    gv_grpo_options opt = {.backend = be(), .dry_run = 1, .result = &res};
    cr_assert_eq(gv_grpo_run(&cfg, &opt), GV_OK, "%s", gv_last_error());
    gv_run_config_free(&cfg);
    const gv_grpo_plan *p = &res.plan;
    cr_assert_eq(p->topology, GV_TOPOLOGY_TREE);
    cr_assert_eq(p->leaves, 16);
    cr_assert_eq(p->rows_rollout, 203);
    cr_assert_eq(p->edges, 218);
    cr_assert_eq(p->trainable_edges, 202);
    cr_assert_eq(p->rows_train, 187);
    cr_assert_eq(p->rows_train_no_reuse, 202);
    /* fixed-shape calls, micro_batch 4: frontiers 1, 2, 2, 2, 4, 4, 4, 8, 8, 8, then 16 x 10 */
    cr_assert_eq(p->forwards_rollout, 1 + 1 + 1 + 1 + 1 + 1 + 1 + 2 + 2 + 2 + 4 * 10);
    cr_assert_str_eq(p->refused, "");
    cr_assert_gt(p->activation_bytes, 0);
    const char *refused[] = {s_preset, "sampler.steps=20", "dump.every=1"}; /* trees: no dumps */
    load_cfg(&cfg, "dry2", refused, 3);
    cr_assert_eq(gv_grpo_run(&cfg, &opt), GV_OK, "%s", gv_last_error());
    gv_run_config_free(&cfg);
    cr_assert(strstr(res.plan.refused, "dump.every"), "%s", res.plan.refused);
    cr_assert_eq(res.plan.rows_rollout, 2 * 3 * 203); /* tiny.yaml: 2 prompts x 3 trees */
    remove_tree();
}

/* The "psi" array of calibration round `round` in metrics text. */
__attribute__((noinline)) static void logged_psi(const char *text, int round, float *out, int n) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"round\":%d,", round);
    const char *at = strstr(text, pat);
    cr_assert_not_null(at, "no calibration round %d", round);
    at = strstr(at, "\"psi\":[");
    cr_assert_not_null(at);
    at += 7;
    for (int i = 0; i < n; ++i) {
        char *end;
        out[i] = strtof(at, &end);
        cr_assert(end != at, "psi[%d] unreadable", i);
        at = end + 1;
    }
}

/* DenseGRPO: rounds logged, ψ in the checkpoint, resume restores it (the same parameters). */
Test(grpo_trees, dense_calibration_is_logged_stored_and_resumed, .timeout = 120) {
    write_models();
    char s_preset[4200];
    preset_set(s_preset, sizeof s_preset, "dense_grpo");
    const char *sets[] = {s_preset, "sampler.steps=6", "eval.every=0", "train.iterations=2",
                          "dense.rounds=3"};
    gv_grpo_result res;
    cr_assert_eq(run("straight", sets, 5, 0, &res), GV_OK, "%s", gv_last_error());
    cr_assert_eq(run("split", sets, 5, 1, &res), GV_OK, "%s", gv_last_error());
    cr_assert_eq(run("split", sets, 5, 0, &res), GV_OK, "%s", gv_last_error());
    cr_assert(res.resumed && res.finished);
    char a[17], b[17];
    last_hash("straight", a);
    last_hash("split", b);
    cr_assert_str_eq(a, b);
    char *m = slurp_run("straight", "metrics.jsonl");
    cr_assert_eq(metric(m, "round", 2), 3.0, "%s", m);
    cr_assert(isnan(metric(m, "round", 3)), "three rounds only");
    float logged[5];
    logged_psi(m, 3, logged, 5);
    char path[1024];
    snprintf(path, sizeof path, "%s/straight/last.h5", tmpdir);
    gv_ckpt_reader *r = NULL;
    cr_assert_eq(gv_ckpt_open(path, &r), GV_OK, "%s", gv_last_error());
    int64_t n = 0, rounds = 0;
    cr_assert_eq(gv_ckpt_get_len(r, GV_CKPT_STATE, "psi", &n), GV_OK);
    cr_assert_eq(n, 5); /* N - 1 stochastic steps */
    float psi[5];
    cr_assert_eq(gv_ckpt_get_f32s(r, GV_CKPT_STATE, "psi", psi, 5), GV_OK);
    cr_assert_eq(gv_ckpt_get_i64(r, GV_CKPT_STATE, "psi_rounds", &rounds), GV_OK);
    cr_assert_eq(rounds, 3);
    gv_ckpt_close(r);
    for (int i = 0; i < 5; ++i) /* the logged ψ of the last round is the stored one */
        cr_assert(fabs(logged[i] - psi[i]) <= 1e-6 * fabs(psi[i]), "psi[%d] logged %g stored %g",
                  i, (double)logged[i], (double)psi[i]);
    free(m);
    remove_tree();
}

/* The /state psi_batch_samples of run `name`'s last.h5. */
static int64_t stored_batch_samples(const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s/last.h5", tmpdir, name);
    gv_ckpt_reader *r = NULL;
    cr_assert_eq(gv_ckpt_open(path, &r), GV_OK, "%s", gv_last_error());
    int64_t n = 0;
    cr_assert_eq(gv_ckpt_get_i64(r, GV_CKPT_STATE, "psi_batch_samples", &n), GV_OK);
    gv_ckpt_close(r);
    return n;
}

/* dense.calibration_prompts: 1 prompt x G = 3 chains per round (logged and stored), vs the
   preset's 4 capped at tiny.yaml's 2 prompts (6 chains). A round's NFE (denoiser rows, padding
   not counted) at N = 6: the rollout's 6 steps plus the completions of x_0..x_4 with the
   remaining 6 + 5 + 4 + 3 + 2 = 20 steps (x_5's completion is x_N), 26 rows per chain. */
Test(grpo_trees, dense_calibration_batch_is_its_prompts_times_the_group, .timeout = 120) {
    write_models();
    char s_preset[4200];
    preset_set(s_preset, sizeof s_preset, "dense_grpo");
    const char *one[] = {s_preset, "sampler.steps=6", "eval.every=0", "train.iterations=1",
                         "dense.rounds=2", "dense.calibration_prompts=1"};
    gv_grpo_result res;
    cr_assert_eq(run("one", one, 6, 0, &res), GV_OK, "%s", gv_last_error());
    cr_assert_eq(run("all", one, 5, 0, &res), GV_OK, "%s", gv_last_error()); /* preset: 4 -> 2 */
    char *m1 = slurp_run("one", "metrics.jsonl"), *m2 = slurp_run("all", "metrics.jsonl");
    for (int round = 0; round < 2; ++round) {
        cr_assert_eq(metric(m1, "samples", round), 3.0, "%s", m1);
        cr_assert_eq(metric(m2, "samples", round), 6.0, "%s", m2);
        cr_assert_eq(metric(m1, "nfe", round), 3.0 * 26, "%s", m1);
        cr_assert_eq(metric(m2, "nfe", round), 6.0 * 26, "%s", m2);
    }
    cr_assert(isnan(metric(m1, "samples", 2)), "two rounds only: %s", m1);
    gv_run_config cfg; /* --dry-run's count of the phase: 2 rounds x 3 chains x 26 rows */
    gv_grpo_plan plan;
    load_cfg(&cfg, "one", one, 6);
    cr_assert_eq(gv_grpo_plan_count(&cfg, &plan), GV_OK, "%s", gv_last_error());
    gv_run_config_free(&cfg);
    cr_assert_eq(plan.calibration_rounds, 2);
    cr_assert_eq(plan.calibration_samples, 3);
    cr_assert_eq(plan.rows_calibration, 2 * 3 * 26);
    cr_assert_eq(stored_batch_samples("one"), 3);
    cr_assert_eq(stored_batch_samples("all"), 6);
    /* the training iteration after it still rolls out every prompt: 2 x 3 chains x 6 steps */
    cr_assert_eq(metric(m1, "nfe_rollout", 0), 36.0, "%s", m1);
    cr_assert_eq(metric(m2, "nfe_rollout", 0), 36.0, "%s", m2);
    free(m1);
    free(m2);
    remove_tree();
}
