/* `grove train` for masked-diffusion models (engine/train/mdm_train.c) on a tiny 4x4 Sudoku setup
 * (a 1-layer mdt, 300 generated puzzles, 8 samples per iteration, seconds): the config names an
 * mdt (the dispatch peek), the first minibatch's ratio is exactly 1 in every iteration's metrics,
 * a run stopped after 2 iterations and resumed ends bit-identical to a straight run (weights, Adam
 * moments through the next iteration's rollout), and a bad config value is a one-line error.
 * The `rewards:` list: sudoku_constraints.so recomputing the built-in reward (mode reference, from
 * the tokens and from the texts) trains bitwise like the default built-in `sudoku` reward, its
 * reference-free constraints mode trains differently, the python child of the subprocess bridge
 * (rewards/plugins/bridge/sudoku_reward.py) trains bitwise alike too, and a bad entry (a missing
 * plugin, an image built-in) is one line naming rewards[k]. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "grove/checkpoint.h"
#include "grove/mdm_train.h"
#include "grove/rundir.h"
#include "grove/sudoku.h"
#include "mdm_test_util.h"
#include "test_util.h"

static char dir[256], ckpt[512], data[512], cfgpath[512];

static void write_setup(void) {
    tu_make_tmpdir(dir, sizeof dir, "mdm-train");
    snprintf(ckpt, sizeof ckpt, "%s/tiny-mdt.h5", dir);
    snprintf(data, sizeof data, "%s/sudoku4.h5", dir);
    snprintf(cfgpath, sizeof cfgpath, "%s/align.yaml", dir);
    mdm_write_tiny_task(data, ckpt, 300, 16);
    FILE *f = fopen(cfgpath, "w");
    cr_assert(f);
    fprintf(f, "run: {name: tiny, seed: 5, threads: 1}\n"
               "model: {checkpoint: tiny-mdt.h5}\n"
               "data: {dataset: sudoku4, path: sudoku4.h5, blanks_min: 6, blanks_max: 9}\n"
               "algorithm: {estimator: coupled, beta: 0.01}\n"
               "group: {size: 4, prompts_per_iteration: 2}\n"
               "train: {iterations: 4, lr: 1.0e-3, minibatch: 3, inner_epochs: 2, ema_decay: 0.5}\n"
               "eval: {puzzles: 0}\n"
               "checkpoint: {every: 1}\n");
    fclose(f);
}

/* Co-GRPO on the same tiny setup: 4 fixed steps, phases of 1 iteration (φ, θ, φ, θ), an eval of 8
   held-out puzzles at 8 blanks at the start and the end (which writes schedule.csv). */
static const char *const co_sets[] = {"co_grpo.enabled=true", "co_grpo.phase_len=1", "co_grpo.lr=0.05",
                                      "co_grpo.sigma_decay_iterations=4", "sampler.steps=4",
                                      "algorithm.advantage=zscore", "eval.puzzles=8", "eval.blanks=8",
                                      "eval.batch=4"};
static int use_co;

static void run(const char *run_dir, int64_t stop_after, gv_mdm_train_result *res) {
    char set[600];
    snprintf(set, sizeof set, "run.dir=%s", run_dir);
    const char *sets[16] = {set};
    int nsets = 1;
    for (int i = 0; use_co && i < (int)(sizeof co_sets / sizeof co_sets[0]); ++i) sets[nsets++] = co_sets[i];
    gv_mdm_train_config cfg;
    cr_assert_eq(gv_mdm_train_config_load(cfgpath, sets, nsets, &cfg), GV_OK, "%s", gv_last_error());
    gv_mdm_train_options o = {.backend = grove_backend_cpu(), .stop_after = stop_after, .result = res};
    cr_assert_eq(gv_mdm_train_run(&cfg, &o), GV_OK, "%s", gv_last_error());
    gv_mdm_train_config_free(&cfg);
}

/* The iteration records of <run_dir>/metrics.jsonl, asserting each has its first minibatch's ratio
   exactly 1 (ρ == 1 before the first update of every iteration). */
static int first_ratios_one(const char *run_dir) {
    char mpath[400], *text = NULL;
    snprintf(mpath, sizeof mpath, "%s/metrics.jsonl", run_dir);
    cr_assert_eq(gv_rundir_slurp(mpath, &text), GV_OK);
    int lines = 0;
    for (char *p = text; (p = strstr(p, "\"iteration\":")); ++p) {
        lines++;
        char *q = strstr(p, "\"first_ratio_min\":1,\"first_ratio_max\":1,");
        char *next = strstr(p + 1, "\"iteration\":");
        cr_assert(q && (!next || q < next), "an iteration's first ratio is not exactly 1: %.200s", p);
    }
    free(text);
    return lines;
}

Test(mdm_train, stopped_and_resumed_run_is_bit_identical) {
    write_setup();
    gv_model_kind k = GV_MODEL_UNET;
    cr_assert_eq(gv_train_config_model_kind(cfgpath, NULL, 0, &k), GV_OK, "%s", gv_last_error());
    cr_assert_eq(k, GV_MODEL_MDT, "the dispatch peek does not see the mdt");
    char a[300], b[300];
    snprintf(a, sizeof a, "%s/straight", dir);
    snprintf(b, sizeof b, "%s/resumed", dir);
    gv_mdm_train_result ra, rb;
    run(a, 0, &ra);
    cr_assert(ra.finished);
    cr_assert_eq(ra.iteration, 4);
    run(b, 2, &rb);
    cr_assert(!rb.finished);
    cr_assert_eq(rb.iteration, 2);
    run(b, 0, &rb);
    cr_assert(rb.resumed && rb.finished);
    char pa[400], pb[400];
    snprintf(pa, sizeof pa, "%s/last.h5", a);
    snprintf(pb, sizeof pb, "%s/last.h5", b);
    const char *groups[] = {"params", "optim/m", "optim/v", "ema"};
    for (size_t g = 0; g < sizeof groups / sizeof groups[0]; ++g) {
        int64_t na, nb;
        float *va = mdm_read_group(pa, groups[g], &na), *vb = mdm_read_group(pb, groups[g], &nb);
        cr_assert_eq(na, nb);
        cr_assert(memcmp(va, vb, (size_t)na * sizeof(float)) == 0, "%s differs after resume", groups[g]);
        free(va), free(vb);
    }
    /* the weights moved, and every iteration's first minibatch had ratio exactly 1 */
    gv_image_model m0, m1;
    cr_assert_eq(gv_image_model_load(ckpt, grove_backend_cpu(), 0, &m0), GV_OK, "%s", gv_last_error());
    cr_assert_eq(gv_image_model_load(pa, grove_backend_cpu(), 0, &m1), GV_OK, "%s", gv_last_error());
    const int64_t n0 = m0.params.total;
    cr_assert_eq(n0, m1.params.total);
    float *v0 = malloc((size_t)n0 * sizeof(float)), *v1 = malloc((size_t)n0 * sizeof(float));
    tu_get(v0, m0.params.values, (size_t)n0 * sizeof(float));
    tu_get(v1, m1.params.values, (size_t)n0 * sizeof(float));
    cr_assert(memcmp(v0, v1, (size_t)n0 * sizeof(float)) != 0, "training did not change the weights");
    free(v0), free(v1);
    gv_image_model_free(&m0);
    gv_image_model_free(&m1);
    cr_assert_eq(first_ratios_one(b), 4, "metrics of the resumed run: 4 records expected");
}

Test(mdm_train, co_grpo_alternates_phases_moves_phi_and_resumes_bit_identical) {
    write_setup();
    use_co = 1;
    char a[300], b[300];
    snprintf(a, sizeof a, "%s/co-straight", dir);
    snprintf(b, sizeof b, "%s/co-resumed", dir);
    gv_mdm_train_result ra, rb;
    run(a, 0, &ra);
    cr_assert(ra.finished && ra.iteration == 4);
    cr_assert(!isnan(ra.first_solve_rate) && !isnan(ra.last_solve_rate));
    run(b, 2, &rb);
    cr_assert(!rb.finished && rb.iteration == 2);
    run(b, 0, &rb);
    cr_assert(rb.resumed && rb.finished);
    char pa[400], pb[400];
    snprintf(pa, sizeof pa, "%s/last.h5", a);
    snprintf(pb, sizeof pb, "%s/last.h5", b);
    const char *groups[] = {"params", "optim/m", "optim/v", "ema", "schedule"};
    for (size_t g = 0; g < sizeof groups / sizeof groups[0]; ++g) {
        int64_t na, nb;
        float *va = mdm_read_group(pa, groups[g], &na), *vb = mdm_read_group(pb, groups[g], &nb);
        cr_assert_eq(na, nb);
        cr_assert(memcmp(va, vb, (size_t)na * sizeof(float)) == 0, "%s differs after resume", groups[g]);
        free(va), free(vb);
    }
    /* φ left its zero-initialized head (w2 is not all zero any more) */
    gv_ckpt_reader *r = NULL;
    cr_assert_eq(gv_ckpt_open(pa, &r), GV_OK, "%s", gv_last_error());
    int64_t phi_steps = 0;
    cr_assert_eq(gv_ckpt_get_i64(r, GV_CKPT_STATE, "schedule_adam_step", &phi_steps), GV_OK, "%s", gv_last_error());
    gv_ckpt_close(r);
    cr_assert_eq(phi_steps, 4, "2 φ iterations x 2 inner epochs: %lld φ steps", (long long)phi_steps);
    /* the exported schedules are the same file, with a header and 4 steps */
    char ca[400], cb[400], *ta = NULL, *tb = NULL;
    snprintf(ca, sizeof ca, "%s/schedule.csv", a);
    snprintf(cb, sizeof cb, "%s/schedule.csv", b);
    cr_assert_eq(gv_rundir_slurp(ca, &ta), GV_OK, "%s", gv_last_error());
    cr_assert_eq(gv_rundir_slurp(cb, &tb), GV_OK, "%s", gv_last_error());
    cr_assert_str_eq(ta, tb);
    cr_assert(strncmp(ta, "step,block_step,masked_frac,mean_conf,r,tau_s,tau_r,w\n", 52) == 0, "%s", ta);
    int rows = 0;
    for (char *p = ta; *p; ++p) rows += *p == '\n';
    cr_assert_eq(rows, 5, "%s", ta);
    /* each eval wrote its per-puzzle outcomes: 8 puzzles, solved counts that give the run's first
       and last solve rates, the same file in the resumed run */
    for (int e = 0; e < 2; ++e) {
        char pe[400], qe[400], *te = NULL, *ue = NULL;
        snprintf(pe, sizeof pe, "%s/eval-%d.csv", a, e ? 4 : 0);
        snprintf(qe, sizeof qe, "%s/eval-%d.csv", b, e ? 4 : 0);
        cr_assert_eq(gv_rundir_slurp(pe, &te), GV_OK, "%s", gv_last_error());
        cr_assert_eq(gv_rundir_slurp(qe, &ue), GV_OK, "%s", gv_last_error());
        cr_assert_str_eq(te, ue);
        cr_assert(strncmp(te, "test_row,solved,reward\n", 23) == 0, "%s", te);
        int lines = 0, solved = 0;
        for (char *q = strchr(te, '\n'); q && q[1]; q = strchr(q + 1, '\n')) {
            long row;
            int s;
            float rw;
            cr_assert_eq(sscanf(q + 1, "%ld,%d,%f", &row, &s, &rw), 3, "%s", q + 1);
            cr_assert((s == 1) == (rw >= 1.5f), "solved %d with reward %g", s, rw);
            lines++, solved += s;
        }
        cr_assert_eq(lines, 8, "%s", te);
        cr_assert_float_eq(solved / 8.0, e ? ra.last_solve_rate : ra.first_solve_rate, 1e-12);
        free(te), free(ue);
    }
    /* the phases alternate, φ first, and every iteration's first ratio is exactly 1 */
    char mpath[400], *text = NULL;
    snprintf(mpath, sizeof mpath, "%s/metrics.jsonl", b);
    cr_assert_eq(gv_rundir_slurp(mpath, &text), GV_OK);
    const char *want[] = {"\"phase\":\"phi\"", "\"phase\":\"theta\"", "\"phase\":\"phi\"", "\"phase\":\"theta\""};
    char *p = text;
    for (int it = 0; it < 4; ++it) {
        p = strstr(p, "\"first_ratio_min\":1,\"first_ratio_max\":1,");
        cr_assert(p, "iteration %d: first ratio not exactly 1", it + 1);
        char *ph = strstr(p, "\"phase\":");
        cr_assert(ph && strncmp(ph, want[it], strlen(want[it])) == 0, "iteration %d: %.40s", it + 1, ph);
        p = ph + 1;
    }
    free(ta), free(tb), free(text);
    use_co = 0;
}

/* The config with `sets` (and run.dir <dir>/<run>) loads, and gv_mdm_train_run refuses it with
   GV_ERR_CONFIG naming `needle` (gv_last_error() keeps the message for further checks). */
static void assert_refused(const char *const *sets, int n, const char *run, const char *needle) {
    gv_mdm_train_config cfg;
    cr_assert_eq(gv_mdm_train_config_load(cfgpath, sets, n, &cfg), GV_OK, "%s", gv_last_error());
    char rd[400];
    snprintf(rd, sizeof rd, "%s/%s", dir, run);
    free(cfg.run.dir);
    cfg.run.dir = strdup(rd);
    gv_mdm_train_options o = {.backend = grove_backend_cpu()};
    cr_assert_eq(gv_mdm_train_run(&cfg, &o), GV_ERR_CONFIG);
    cr_assert(strstr(gv_last_error(), needle), "%s", gv_last_error());
    gv_mdm_train_config_free(&cfg);
}

Test(mdm_train, co_grpo_needs_fixed_steps) {
    write_setup();
    const char *sets[1] = {"co_grpo.enabled=true"};
    assert_refused(sets, 1, "co-bad", "sampler.steps");
}

Test(mdm_train, bad_config_value_is_a_one_line_error) {
    write_setup();
    const char *sets[1] = {"algorithm.estimator=triple"};
    gv_mdm_train_config cfg;
    cr_assert_neq(gv_mdm_train_config_load(cfgpath, sets, 1, &cfg), GV_OK);
    const char *e = gv_last_error();
    cr_assert(strstr(e, "algorithm.estimator") && !strchr(e, '\n'), "error: %s", e);
}

/* A straight run of `iterations` with run.dir = <dir>/<name> and one more --set (may be NULL). */
static gv_status run_rewards(const char *name, const char *set, int iterations) {
    char rd[600], it[64];
    snprintf(rd, sizeof rd, "run.dir=%s/%s", dir, name);
    snprintf(it, sizeof it, "train.iterations=%d", iterations);
    const char *sets[3] = {rd, it, set};
    gv_mdm_train_config cfg;
    gv_status s = gv_mdm_train_config_load(cfgpath, sets, set ? 3 : 2, &cfg);
    if (s != GV_OK) return s;
    gv_mdm_train_options o = {.backend = grove_backend_cpu()};
    s = gv_mdm_train_run(&cfg, &o);
    gv_mdm_train_config_free(&cfg);
    return s;
}

static const char *plugin_rewards(const char *config) {
    static char set[1024];
    snprintf(set, sizeof set, "rewards=[{plugin: %s/plugins/sudoku_constraints.so, config: %s}]",
             GROVE_BINARY_DIR, config);
    return set;
}

/* 1 when /group of <dir>/<a>/last.h5 and <dir>/<b>/last.h5 are bitwise equal. */
static int same_group(const char *a, const char *b, const char *group) {
    char pa[700], pb[700];
    snprintf(pa, sizeof pa, "%s/%s/last.h5", dir, a);
    snprintf(pb, sizeof pb, "%s/%s/last.h5", dir, b);
    int64_t na, nb;
    float *va = mdm_read_group(pa, group, &na), *vb = mdm_read_group(pb, group, &nb);
    const int same = na == nb && memcmp(va, vb, (size_t)na * sizeof(float)) == 0;
    free(va), free(vb);
    return same;
}

Test(mdm_train, sudoku_plugin_recomputing_the_builtin_trains_bitwise_alike) {
    write_setup();
    cr_assert_eq(run_rewards("builtin", NULL, 3), GV_OK, "%s", gv_last_error());
    cr_assert_eq(run_rewards("explicit", "rewards=[{builtin: sudoku, weight: 1.0}]", 3), GV_OK, "%s",
                 gv_last_error());
    cr_assert_eq(run_rewards("ref", plugin_rewards("{mode: reference}"), 3), GV_OK, "%s", gv_last_error());
    cr_assert_eq(run_rewards("ref-text", plugin_rewards("{mode: reference, input: text}"), 3), GV_OK,
                 "%s", gv_last_error());
    cr_assert_eq(run_rewards("cons", plugin_rewards("{mode: constraints}"), 3), GV_OK, "%s",
                 gv_last_error());
    const char *groups[] = {"params", "optim/m", "optim/v", "ema"};
    for (size_t g = 0; g < sizeof groups / sizeof groups[0]; ++g) {
        cr_assert(same_group("builtin", "explicit", groups[g]), "%s: [{builtin: sudoku}] differs", groups[g]);
        cr_assert(same_group("builtin", "ref", groups[g]), "%s: the plugin (reference) differs", groups[g]);
        cr_assert(same_group("builtin", "ref-text", groups[g]), "%s: the plugin (text) differs", groups[g]);
    }
    cr_assert(!same_group("builtin", "cons", "params"), "the constraints reward trained the same weights");
    /* the same rewards logged: metrics records equal up to the timing fields' first key and the
       plugin's failed_batches (0 in each of the 3 records; the built-in logs none) */
    char *text[2];
    const char *runs[2] = {"builtin", "ref"};
    for (int i = 0; i < 2; ++i) {
        char path[700];
        snprintf(path, sizeof path, "%s/%s/metrics.jsonl", dir, runs[i]);
        cr_assert_eq(gv_rundir_slurp(path, &text[i]), GV_OK, "%s", gv_last_error());
        for (char *p = text[i]; (p = strstr(p, ",\"rollout_tokens_per_s\":"));) /* cut timing */
            memmove(p, p + strcspn(p, "\n"), strlen(p + strcspn(p, "\n")) + 1);
    }
    const char *fb = ",\"reward\":{\"sudoku_constraints\":{\"failed_batches\":0}}";
    int cut = 0;
    for (char *p; (p = strstr(text[1], fb)); ++cut) memmove(p, p + strlen(fb), strlen(p + strlen(fb)) + 1);
    cr_assert_eq(cut, 3, "failed_batches in every record of the plugin run");
    cr_assert_null(strstr(text[0], "failed_batches"), "%s", text[0]);
    cr_assert_str_eq(text[0], text[1]);
    cr_assert(strstr(text[0], "\"reward_mean\":"), "%s", text[0]);
    free(text[0]), free(text[1]);
}

/* The same through the subprocess bridge: the python child rewards/plugins/bridge/sudoku_reward.py
   scores every rollout's token batch like the built-in, so 2 iterations train bitwise alike; an
   image-only child stops the run with the bridge's one line. */
Test(mdm_train, bridge_child_recomputing_the_builtin_trains_bitwise_alike) {
    write_setup();
    cr_assert_eq(run_rewards("builtin", NULL, 2), GV_OK, "%s", gv_last_error());
    cr_assert_eq(run_rewards("bridge", "rewards=[{plugin: " GROVE_BINARY_DIR "/plugins/bridge.so, config: "
                             "{command: \"python3 '" GROVE_SOURCE_DIR "/rewards/plugins/bridge/sudoku_reward.py'\", "
                             "retries: 0}}]", 2), GV_OK, "%s", gv_last_error());
    const char *groups[] = {"params", "optim/m", "optim/v", "ema"};
    for (size_t g = 0; g < sizeof groups / sizeof groups[0]; ++g)
        cr_assert(same_group("builtin", "bridge", groups[g]), "%s: the bridge child differs", groups[g]);
    /* and it was the child that scored: the plugin's counter is in every record */
    char path[700], *text = NULL;
    snprintf(path, sizeof path, "%s/bridge/metrics.jsonl", dir);
    cr_assert_eq(gv_rundir_slurp(path, &text), GV_OK, "%s", gv_last_error());
    int records = 0;
    for (char *p = text; (p = strstr(p, "\"reward\":{\"bridge\":{\"failed_batches\":0}}")); ++p) ++records;
    cr_assert_eq(records, 2, "%s", text);
    free(text);
    /* an image-only child: every rollout's batch fails with the bridge's one line, and the default
       reward_failures.max_consecutive (3) stops the run at the third */
    gv_status s = run_rewards("bridge-image", "rewards=[{plugin: " GROVE_BINARY_DIR "/plugins/bridge.so, "
                              "config: {command: \"python3 '" GROVE_SOURCE_DIR "/tests/plugins/bridge_child.py' "
                              "ok\"}}]", 4);
    cr_assert_eq(s, GV_ERR_PLUGIN);
    const char *e = gv_last_error();
    cr_assert(strstr(e, "3 consecutive failed batches of reward 'bridge'") &&
              strstr(e, "a tokens batch, but the child 'child_ok' announced \"kinds\": [\"image\"] in its hello") &&
              !strchr(e, '\n'), "%s", e);
}

Test(mdm_train, bad_rewards_entry_is_one_line_naming_the_key) {
    write_setup();
    cr_assert_eq(run_rewards("missing", "rewards=[{builtin: sudoku}, {plugin: /nonexistent/nope.so}]", 1),
                 GV_ERR_PLUGIN);
    const char *e = gv_last_error();
    cr_assert(strstr(e, "rewards[1]") && strstr(e, "/nonexistent/nope.so") && !strchr(e, '\n'), "%s", e);
    cr_assert_eq(run_rewards("image", "rewards=[{builtin: ink}]", 1), GV_ERR_CONFIG);
    e = gv_last_error();
    cr_assert(strstr(e, "rewards[0]: builtin 'ink' scores images") && !strchr(e, '\n'), "%s", e);
    cr_assert_eq(run_rewards("image-plugin", "rewards=[{plugin: " GROVE_BINARY_DIR "/plugins/ink_target.so}]", 1),
                 GV_ERR_PLUGIN);
    e = gv_last_error();
    cr_assert(strstr(e, "rewards[0]") && !strchr(e, '\n'), "%s", e);
    /* a refused config writes nothing: no run directory was made for any of the three */
    const char *names[] = {"missing", "image", "image-plugin"};
    for (int i = 0; i < 3; ++i) {
        char path[700];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        cr_assert_neq(access(path, F_OK), 0, "a refused config made %s", path);
    }
}

/* credit cell: one advantage per token, scored against the solution, so aggregation balanced (split
   by a sample's sign) and a rewards: list it would ignore are refused, writing nothing; with
   the built-in sudoku reward alone it trains */
Test(mdm_train, cell_credit_refusals_and_a_run) {
    write_setup();
    cr_assert_eq(run_rewards("cell-bal", "algorithm={estimator: diffu_grpo, credit: cell, aggregation: balanced}", 1),
                 GV_ERR_CONFIG);
    const char *e = gv_last_error();
    cr_assert(strstr(e, "algorithm.credit cell with aggregation balanced") && !strchr(e, '\n'), "%s", e);
    const char *list = "rewards=[{builtin: sudoku}, {plugin: " GROVE_BINARY_DIR "/plugins/sudoku_constraints.so}]";
    const char *sets[2] = {"algorithm.credit=cell", list};
    assert_refused(sets, 2, "cell-list", "algorithm.credit cell");
    e = gv_last_error();
    cr_assert(strstr(e, "rewards") && !strchr(e, '\n'), "%s", e);
    const char *names[] = {"cell-bal", "cell-list"};
    for (int i = 0; i < 2; ++i) {
        char path[700];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        cr_assert_neq(access(path, F_OK), 0, "a refused config made %s", path);
    }
    /* it trains, and the per-cell advantages reach the loss: other weights than sequence credit's
       from the same rollout */
    cr_assert_eq(run_rewards("cell-ok", "algorithm.credit=cell", 1), GV_OK, "%s", gv_last_error());
    cr_assert_eq(run_rewards("seq-ok", "algorithm.credit=sequence", 1), GV_OK, "%s", gv_last_error());
    cr_assert(!same_group("cell-ok", "seq-ok", "params"), "credit cell trained the weights of credit sequence");
}

/* trajectory scores at τ_s = 1; Co-GRPO's sampler draws other temperatures: the pair is refused */
Test(mdm_train, trajectory_with_co_grpo_is_refused) {
    write_setup();
    const char *sets[3] = {"co_grpo.enabled=true", "sampler.steps=4", "algorithm.estimator=trajectory"};
    assert_refused(sets, 3, "co-trajectory", "algorithm.estimator trajectory");
}

/* sampler.tau_r reaches the rollouts: a random commit order (1e3) trains other weights than the
   default schedule from the same puzzles and draws; with Co-GRPO learning tau_r it is refused. */
Test(mdm_train, fixed_tau_r_drives_the_rollouts) {
    write_setup();
    cr_assert_eq(run_rewards("tau-default", NULL, 1), GV_OK, "%s", gv_last_error());
    cr_assert_eq(run_rewards("tau-fixed", "sampler.tau_r=1000", 1), GV_OK, "%s", gv_last_error());
    cr_assert(!same_group("tau-default", "tau-fixed", "params"), "sampler.tau_r changed nothing");
    const char *sets[3] = {"co_grpo.enabled=true", "sampler.steps=4", "sampler.tau_r=0"};
    assert_refused(sets, 3, "co-tau", "sampler.tau_r");
}

/* algorithm.order_logp: a trajectory run whose log-prob includes the commit order trains (ρ == 1
   before every iteration's first update, other weights than plain trajectory's from the same
   rollouts); refused with another estimator or without a fixed sampler.steps. */
Test(mdm_train, order_logp_trains_and_is_refused_elsewhere) {
    write_setup();
    char rd[600], it[64];
    snprintf(it, sizeof it, "train.iterations=%d", 2);
    const char *sets[5] = {rd, it, "algorithm.estimator=trajectory", "sampler.steps=4", "algorithm.order_logp=true"};
    gv_mdm_train_config cfg;
    gv_mdm_train_options o = {.backend = grove_backend_cpu()};
    for (int order = 0; order < 2; ++order) { /* plain trajectory, then with the order */
        snprintf(rd, sizeof rd, "run.dir=%s/traj%s", dir, order ? "-order" : "");
        cr_assert_eq(gv_mdm_train_config_load(cfgpath, sets, 4 + order, &cfg), GV_OK, "%s", gv_last_error());
        cr_assert_eq(gv_mdm_train_run(&cfg, &o), GV_OK, "%s", gv_last_error());
        gv_mdm_train_config_free(&cfg);
    }
    char run_dir[600];
    snprintf(run_dir, sizeof run_dir, "%s/traj-order", dir);
    cr_assert_eq(first_ratios_one(run_dir), 2);
    cr_assert(!same_group("traj", "traj-order", "params"), "order_logp trained plain trajectory's weights");
    const char *bad[2] = {"algorithm.estimator=diffu_grpo", "algorithm.order_logp=true"};
    assert_refused(bad, 2, "order-diffu", "algorithm.order_logp");
    const char *nosteps[3] = {"algorithm.estimator=trajectory", "algorithm.order_logp=true", "sampler.steps=0"};
    assert_refused(nosteps, 3, "order-steps", "algorithm.order_logp");
}

/* --dry-run: the plan's counts by hand for the tiny setup (P 2 x G 4 = 8 samples of 16 tokens,
   sampler steps = blanks_max 9, coupled: 3 views, 2 epochs of ceil(8/3) = 3 minibatches, the KL's
   reference on), then trajectory at 4 steps (4 views); nothing is written, not even the run dir. */
Test(mdm_train, dry_run_plans_by_hand_and_writes_nothing) {
    write_setup();
    char rd[600];
    snprintf(rd, sizeof rd, "run.dir=%s/dry", dir);
    const char *sets[3] = {rd, "algorithm.estimator=trajectory", "sampler.steps=4"};
    for (int variant = 0; variant < 2; ++variant) {
        gv_mdm_train_config cfg;
        cr_assert_eq(gv_mdm_train_config_load(cfgpath, sets, variant ? 3 : 1, &cfg), GV_OK, "%s",
                     gv_last_error());
        gv_mdm_train_result res;
        gv_mdm_train_options o = {.backend = grove_backend_cpu(), .dry_run = 1, .result = &res};
        cr_assert_eq(gv_mdm_train_run(&cfg, &o), GV_OK, "%s", gv_last_error());
        gv_mdm_train_config_free(&cfg);
        const gv_mdm_train_plan *p = &res.plan;
        const int steps = variant ? 4 : 9, views = variant ? 4 : 3;
        cr_assert(p->puzzles == 2 && p->group == 4 && p->samples == 8 && p->T == 16 &&
                  p->vocab == GV_SUDOKU_VOCAB(4));
        cr_assert(p->steps == steps && p->views == views && p->inner_epochs == 2 && p->minibatch == 3);
        cr_assert_eq(p->optimizer_steps, 6);
        cr_assert_eq(p->rollout_rows, 8 * steps);
        cr_assert_eq(p->logp_old_rows, 2 * 8 * views);
        cr_assert_eq(p->ref_rows, 2 * 8 * views);
        cr_assert_eq(p->train_rows, 2 * 8 * views);
        cr_assert_eq(p->eval_rows, 0);
        cr_assert(p->params > 0 && p->train_puzzles > 0 && p->shards == 1);
        char path[700];
        snprintf(path, sizeof path, "%s/dry", dir);
        cr_assert_neq(access(path, F_OK), 0, "a dry run made %s", path);
    }
}
