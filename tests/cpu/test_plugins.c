/* Reward plugins (rewards/plugin.c, rewards/pairwise.c, rewards/plugins/, DESIGN.md §7) against
 * the fixtures of tests/plugins/fixture.c and the bundled examples:
 *   loader     every loader error is ONE GV_ERR_PLUGIN line with its own message (missing file,
 *              not a shared object, no symbol, another ABI version named, abi_version field,
 *              too-small table, unsupported kind, create failing with the plugin's message and the
 *              flattened config it received); `grove reward-check` exits non-zero with one line;
 *   score      values against a hand computation; FAILED and NaN items masked; a failing call is
 *              GV_ERR_PLUGIN with every item FAILED; config flattening (nested keys);
 *   win rate   hand-computed win rates (hard judge), imputed failed judgements, both orders;
 *   bridge     scores through a python child; a slow child (timeout, restart, resend), a
 *              crashing child (restart), permanent failures bounded in time; protocol errors
 *              quote the offending line; no hello; bridge.so scores only and passes reward-check,
 *              bridge_judge.so judges only (refuses a non-pairwise child), its win rates by hand,
 *              a batch whose every compare fails is GV_ERR_PLUGIN;
 *   training   masking end to end (masked_fraction), reward_failures.max_consecutive stopping the
 *              run with last.h5 intact, a bridge child crashing once, a pairwise (pref_grpo) run
 *              whose win rates lie in [0, 1] with group mean exactly 1/2, a judge failing every
 *              compare stopping a pref_grpo run, a hung bridge child stopping a run cleanly;
 *   neural     the libgrove-based example plugin agrees with the built-in classifier reward;
 *   README     the tutorial is ink_target.c verbatim and compiles with the header alone. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "grove/checkpoint.h"
#include "grove/grpo.h"
#include "grove/kernels_cpu.h"
#include "grove/reward.h"
#include "grove/rewards.h"
#include "test_util.h"

static const char *fixture(const char *variant) {
    static char path[8][1024];
    static int k;
    char *p = path[k++ % 8];
    snprintf(p, 1024, "%s/test_plugins/fixture_%s.so", GROVE_BINARY_DIR, variant);
    return p;
}

static double now_s(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + tv.tv_usec * 1e-6;
}

/* Load must fail with GV_ERR_PLUGIN, one line containing every needle. */
static void expect_load_error(const char *path, const char *config, uint32_t kind,
                              const char *n1, const char *n2) {
    gv_reward r;
    cr_assert_eq(gv_reward_load_plugin(&r, path, config, 1.0, kind), GV_ERR_PLUGIN,
                 "%s loaded", path);
    const char *m = gv_last_error();
    cr_assert(strstr(m, n1), "'%s' not in: %s", n1, m);
    if (n2) cr_assert(strstr(m, n2), "'%s' not in: %s", n2, m);
    cr_assert_null(strchr(m, '\n'), "not one line: %s", m);
    cr_assert_null(r.plugin);
    gv_reward_destroy(&r); /* safe after a failed load */
}

Test(plugins, loader_errors) {
    char junk[] = "/tmp/grove-test-notso-XXXXXX";
    int fd = mkstemp(junk);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, "not an ELF file\n", 16), 16);
    close(fd);
    expect_load_error("/nonexistent/dir/x.so", "", GROVE_SAMPLES_IMAGE,
                      "reward plugin /nonexistent/dir/x.so: No such file", NULL);
    expect_load_error(junk, "", GROVE_SAMPLES_IMAGE, "cannot load: ", junk);
    expect_load_error(fixture("nosym"), "", GROVE_SAMPLES_IMAGE, "no symbol grove_reward_plugin_v1",
                      NULL);
    expect_load_error(fixture("v2"), "", GROVE_SAMPLES_IMAGE,
                      "built for reward ABI v2, this grove speaks v1", NULL);
    expect_load_error(fixture("abi"), "", GROVE_SAMPLES_IMAGE, "abi_version 7", "speaks v1");
    char small[160];
    snprintf(small, sizeof small, "struct_size 24 is smaller than the v1 grove_reward_plugin (%zu "
             "bytes)", sizeof(grove_reward_plugin));
    expect_load_error(fixture("small"), "", GROVE_SAMPLES_IMAGE, small, NULL);
    expect_load_error(fixture("tokens"), "", GROVE_SAMPLES_IMAGE,
                      "accepts tokens batches, grove needs image batches", NULL);
    expect_load_error(fixture("good"), "create_fail=1\nnested.key=3\n", GROVE_SAMPLES_IMAGE,
                      "create failed: fixture refuses: create_fail=1|nested.key=3|", NULL);
    /* the good fixture loads, and a second instance is independent */
    gv_reward a, b;
    cr_assert_eq(gv_reward_load_plugin(&a, fixture("good"), "", 1.0, GROVE_SAMPLES_IMAGE), GV_OK,
                 "%s", gv_last_error());
    cr_assert_eq(gv_reward_load_plugin(&b, fixture("good"), "", 1.0, GROVE_SAMPLES_IMAGE), GV_OK);
    cr_assert_str_eq(a.name, "fixture");
    gv_reward_plugin_info info;
    cr_assert_eq(gv_reward_plugin_describe(&a, &info), GV_OK);
    cr_assert_eq(info.abi_version, GROVE_REWARD_ABI_VERSION);
    cr_assert_eq(info.flags, GROVE_REWARD_DETERMINISTIC | GROVE_REWARD_PAIRWISE);
    gv_reward_destroy(&a);
    gv_reward_destroy(&b);
    unlink(junk);
}

/* `grove reward-check` on bad plugins: non-zero exit, exactly one line on stderr. */
static int run_cli(const char *args, char *err, size_t n, char *out, size_t on) {
    char cmd[4096], errf[] = "/tmp/grove-test-cli-err-XXXXXX", outf[] = "/tmp/grove-test-cli-out-XXXXXX";
    close(mkstemp(errf));
    close(mkstemp(outf));
    snprintf(cmd, sizeof cmd, "'%s/grove' reward-check %s >%s 2>%s", GROVE_BINARY_DIR, args, outf,
             errf);
    int rc = system(cmd);
    FILE *f = fopen(errf, "r");
    size_t k = fread(err, 1, n - 1, f);
    err[k] = '\0';
    fclose(f);
    f = fopen(outf, "r");
    k = fread(out, 1, on - 1, f);
    out[k] = '\0';
    fclose(f);
    unlink(errf);
    unlink(outf);
    return rc;
}

static int count_lines(const char *s) {
    int n = 0;
    for (; *s; ++s) n += *s == '\n';
    return n;
}

Test(plugins, reward_check_cli) {
    char err[4096], out[8192], args[2048];
    const struct { const char *variant, *needle; } bad[] = {
        {"v2", "built for reward ABI v2, this grove speaks v1"},
        {"tokens", "accepts tokens batches"},
        {"nondet", "claims DETERMINISTIC but scoring the same batch twice gave different results"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
        snprintf(args, sizeof args, "'%s' -n 16", fixture(bad[i].variant));
        cr_assert_neq(run_cli(args, err, sizeof err, out, sizeof out), 0, "%s", bad[i].variant);
        cr_assert(strstr(err, bad[i].needle), "%s: %s", bad[i].variant, err);
        cr_assert_eq(count_lines(err), 1, "%s: not one line: %s", bad[i].variant, err);
    }
    cr_assert_neq(run_cli("/nonexistent.so", err, sizeof err, out, sizeof out), 0);
    cr_assert_eq(count_lines(err), 1, "%s", err);
    /* a good plugin: name, flags, a real batch, determinism verified */
    snprintf(args, sizeof args, "'%s' -n 16", fixture("good"));
    cr_assert_eq(run_cli(args, err, sizeof err, out, sizeof out), 0, "%s", err);
    cr_assert(strstr(out, "name:    fixture"), "%s", out);
    cr_assert(strstr(out, "DETERMINISTIC"), "%s", out);
    cr_assert(strstr(out, "16 mnist test images"), "%s", out);
    cr_assert(strstr(out, "determinism: scored twice, bitwise equal"), "%s", out);
}

/* A batch of n images of 1x4x4 whose pixels come from an LCG. */
static void random_images(float *px, int n, uint64_t seed) {
    for (int e = 0; e < n * 16; ++e) px[e] = tu_rand_unit(&seed);
}

static double mean16(const float *p) {
    double s = 0.0;
    for (int e = 0; e < 16; ++e) s += p[e];
    return s / 16.0;
}

Test(plugins, score_values_masking_and_config) {
    /* the config comes from YAML through the run-config binder: nested keys flatten */
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/data/align/tiny.yaml", GROVE_SOURCE_DIR);
    char set[2048];
    snprintf(set, sizeof set, "rewards=[{plugin: %s, config: {scale: 2.5, fail_every: 3, "
             "nan_every: 4, fail_calls: 2, deep: {list: [a, b]}}}]", fixture("good"));
    const char *sets[] = {set};
    gv_run_config cfg;
    cr_assert_eq(gv_run_config_load(path, sets, 1, NULL, &cfg, NULL), GV_OK, "%s", gv_last_error());
    cr_assert(strstr(cfg.rewards[0].config.flat, "deep.list.1=b\n"), "%s", cfg.rewards[0].config.flat);
    gv_reward r;
    cr_assert_eq(gv_reward_load_plugin(&r, cfg.rewards[0].plugin, cfg.rewards[0].config.flat, 1.0,
                                       GROVE_SAMPLES_IMAGE), GV_OK, "%s", gv_last_error());
    enum { N = 12 };
    float px[N * 16], sc[N];
    uint8_t st[N];
    random_images(px, N, 5);
    const gv_reward_images b = {.n = N, .channels = 1, .height = 4, .width = 4, .pixels = px};
    cr_assert_eq(gv_reward_score(&r, NULL, &b, sc, st), GV_OK, "%s", gv_last_error());
    for (int i = 0; i < N; ++i) {
        const int failed = i % 3 == 2 || i % 4 == 3; /* fail_every 3; nan_every 4 -> masked */
        cr_assert_eq(st[i], failed ? GV_REWARD_ITEM_FAILED : GV_REWARD_ITEM_OK, "item %d", i);
        if (!failed) cr_assert_float_eq(sc[i], 2.5 * mean16(px + i * 16), 1e-6, "item %d", i);
    }
    /* call 2 fails as configured: GV_ERR_PLUGIN with the plugin's message, every item FAILED */
    cr_assert_eq(gv_reward_score(&r, NULL, &b, sc, st), GV_ERR_PLUGIN);
    cr_assert(strstr(gv_last_error(), "score failed: fixture: call 2 fails as configured"), "%s",
              gv_last_error());
    for (int i = 0; i < N; ++i) cr_assert_eq(st[i], GV_REWARD_ITEM_FAILED);
    cr_assert_eq(gv_reward_score(&r, NULL, &b, sc, st), GV_OK); /* call 3 is fine again */
    gv_reward_destroy(&r);
    gv_run_config_free(&cfg);
}

/* Images of 1x4x4 with constant value v each (first pixel `first` when >= 0). */
static void constant_image(float *p, float v, float first) {
    for (int e = 0; e < 16; ++e) p[e] = v;
    if (first >= 0.0f) p[0] = first;
}

Test(plugins, win_rate_by_hand) {
    gv_reward r;
    cr_assert_eq(gv_reward_load_plugin(&r, fixture("good"), "", 1.0, GROVE_SAMPLES_IMAGE), GV_OK);
    cr_assert(gv_reward_is_pairwise(&r));
    /* group 0: means 0.1, 0.3, 0.3, 0.5; group 1: 0.2, 0.8; group 2: a single sample */
    enum { N = 7 };
    float px[N * 16], win[N];
    uint8_t st[N];
    const float v[N] = {0.1f, 0.3f, 0.3f, 0.5f, 0.2f, 0.8f, 0.4f};
    const int32_t groups[N] = {0, 0, 0, 0, 1, 1, 2};
    for (int i = 0; i < N; ++i) constant_image(px + i * 16, v[i], -1.0f);
    gv_reward_images b = {.n = N, .channels = 1, .height = 4, .width = 4, .pixels = px,
                          .groups = groups};
    int64_t judged, imputed;
    /* the fixture judge is hard already: p = [mean(a) > mean(b)], 0.5 on a tie */
    gv_win_rate_options o = {0};
    cr_assert_eq(gv_reward_win_rate(&r, NULL, &b, &o, win, st, &judged, &imputed), GV_OK, "%s",
                 gv_last_error());
    const double expect[N] = {0.0, 0.5, 0.5, 1.0, 0.0, 1.0, 0.0};
    for (int i = 0; i < 6; ++i) {
        cr_assert_eq(st[i], GV_REWARD_ITEM_OK);
        cr_assert_float_eq(win[i], expect[i], 1e-7, "sample %d: %g", i, win[i]);
    }
    cr_assert_eq(st[6], GV_REWARD_ITEM_FAILED, "a group of one has no win rate");
    cr_assert_eq(judged, 7);
    cr_assert_eq(imputed, 0);
    /* sample 0's first pixel 0.95 makes the judge fail every pair where it is `a`: imputed 0.5
       (its mean stays below 0.3) */
    constant_image(px, 0.1f, 0.95f);
    cr_assert_eq(gv_reward_win_rate(&r, NULL, &b, &o, win, st, &judged, &imputed), GV_OK);
    const double e1[4] = {1.5 / 3, 1.0 / 3, 1.0 / 3, 2.5 / 3};
    for (int i = 0; i < 4; ++i) cr_assert_float_eq(win[i], e1[i], 1e-6, "sample %d: %g", i, win[i]);
    cr_assert_eq(imputed, 3);
    /* both orders: (j, 0) succeeds with p = 1, so s_0j = (0.5 + 1 - 1) / 2 = 0.25 */
    o.both_orders = 1;
    cr_assert_eq(gv_reward_win_rate(&r, NULL, &b, &o, win, st, &judged, &imputed), GV_OK);
    const double e2[4] = {0.75 / 3, 1.25 / 3, 1.25 / 3, 2.75 / 3};
    for (int i = 0; i < 4; ++i) cr_assert_float_eq(win[i], e2[i], 1e-6, "sample %d: %g", i, win[i]);
    cr_assert_eq(judged, 14);
    cr_assert_eq(imputed, 3);
    gv_reward_destroy(&r);
}

/* ---- the bridge ------------------------------------------------------------------------------ */

static char bridge_so[1024];

static gv_status open_bridge(gv_reward *r, const char *mode, const char *state, double seconds,
                             double timeout_s) {
    snprintf(bridge_so, sizeof bridge_so, "%s/plugins/bridge.so", GROVE_BINARY_DIR);
    char config[2048];
    snprintf(config, sizeof config, "command=python3 '%s/tests/plugins/bridge_child.py' %s '%s' %g\n"
             "timeout_s=%g\nstart_timeout_s=60\nretries=1\n", GROVE_SOURCE_DIR, mode, state ? state : "", seconds,
             timeout_s);
    return gv_reward_load_plugin(r, bridge_so, config, 1.0, GROVE_SAMPLES_IMAGE);
}

/* Scores of 4 random 1x4x4 images through the bridge; the expectation uses the PNG's 8 bits. */
static gv_status bridge_score(gv_reward *r, float *sc, uint8_t *st, float *expect) {
    float px[4 * 16];
    random_images(px, 4, 11);
    for (int i = 0; i < 4; ++i) {
        double s = 0.0;
        for (int e = 0; e < 16; ++e) s += lround(px[i * 16 + e] * 255.0) / 255.0;
        expect[i] = (float)(s / 16.0);
    }
    const gv_reward_images b = {.n = 4, .channels = 1, .height = 4, .width = 4, .pixels = px};
    return gv_reward_score(r, NULL, &b, sc, st);
}

static void state_path(char *out, size_t n) {
    snprintf(out, n, "/tmp/grove-test-bridge-%d-%ld", (int)getpid(), (long)(now_s() * 1e6));
}

Test(plugins, bridge_scores_and_recovers) {
    float sc[4], ex[4];
    uint8_t st[4];
    gv_reward r;
    cr_assert_eq(open_bridge(&r, "ok", NULL, 0, 5), GV_OK, "%s", gv_last_error());
    cr_assert_eq(bridge_score(&r, sc, st, ex), GV_OK, "%s", gv_last_error());
    for (int i = 0; i < 4; ++i) {
        cr_assert_eq(st[i], GV_REWARD_ITEM_OK);
        cr_assert_float_eq(sc[i], ex[i], 1e-6, "item %d: %g vs %g", i, sc[i], ex[i]);
    }
    gv_reward_destroy(&r);
    /* slow once: the first request times out (3 s), the restarted child answers */
    char state[256];
    state_path(state, sizeof state);
    cr_assert_eq(open_bridge(&r, "sleep_once", state, 60, 3), GV_OK, "%s", gv_last_error());
    double t0 = now_s();
    cr_assert_eq(bridge_score(&r, sc, st, ex), GV_OK, "%s", gv_last_error());
    cr_assert_lt(now_s() - t0, 30.0, "waited for the slow child instead of restarting it");
    for (int i = 0; i < 4; ++i) cr_assert_float_eq(sc[i], ex[i], 1e-6);
    gv_reward_destroy(&r);
    unlink(state);
    /* crash once: the dead child is restarted and the request resent */
    state_path(state, sizeof state);
    cr_assert_eq(open_bridge(&r, "crash_once", state, 0, 5), GV_OK, "%s", gv_last_error());
    cr_assert_eq(bridge_score(&r, sc, st, ex), GV_OK, "%s", gv_last_error());
    for (int i = 0; i < 4; ++i) cr_assert_float_eq(sc[i], ex[i], 1e-6);
    gv_reward_destroy(&r);
    unlink(state);
}

Test(plugins, bridge_failures_are_bounded_and_named) {
    float sc[4], ex[4];
    uint8_t st[4];
    gv_reward r;
    const struct { const char *mode, *n1, *n2; double max_s; } cases[] = {
        {"sleep", "timed out", "(2 tries)", 20.0}, /* 2 tries x 1 s, not the child's 60 s */
        {"crash", "the child exited", "(2 tries)", 20.0},
        {"bad_json", "protocol error", "this is not json {", 20.0},
        {"wrong_length", "\"scores\" must be a list of 4", NULL, 20.0},
        {"error", "model exploded", NULL, 20.0},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; ++c) {
        cr_assert_eq(open_bridge(&r, cases[c].mode, NULL, 60, 1), GV_OK, "%s", gv_last_error());
        const double t0 = now_s();
        cr_assert_eq(bridge_score(&r, sc, st, ex), GV_ERR_PLUGIN, "%s", cases[c].mode);
        const double dt = now_s() - t0;
        const char *m = gv_last_error();
        cr_assert(strstr(m, cases[c].n1), "%s: %s", cases[c].mode, m);
        if (cases[c].n2) cr_assert(strstr(m, cases[c].n2), "%s: %s", cases[c].mode, m);
        cr_assert_null(strchr(m, '\n'));
        cr_assert_lt(dt, cases[c].max_s, "%s took %.2f s", cases[c].mode, dt);
        for (int i = 0; i < 4; ++i) cr_assert_eq(st[i], GV_REWARD_ITEM_FAILED);
        const double t1 = now_s();
        gv_reward_destroy(&r); /* a sleeping child is killed, not waited for */
        cr_assert_lt(now_s() - t1, 1.0);
    }
    /* a child that never says hello */
    snprintf(bridge_so, sizeof bridge_so, "%s/plugins/bridge.so", GROVE_BINARY_DIR);
    cr_assert_eq(gv_reward_load_plugin(&r, bridge_so, "command=sleep 30\nstart_timeout_s=0.5\n", 1.0,
                                       GROVE_SAMPLES_IMAGE), GV_ERR_PLUGIN);
    cr_assert(strstr(gv_last_error(), "no hello from `sleep 30` within 0.5 s: timed out"), "%s",
              gv_last_error());
    cr_assert_eq(gv_reward_load_plugin(&r, bridge_so, "timeout_s=1\n", 1.0, GROVE_SAMPLES_IMAGE),
                 GV_ERR_PLUGIN);
    cr_assert(strstr(gv_last_error(), "config needs `command"), "%s", gv_last_error());
}

/* bridge.so only scores and bridge_judge.so only judges, each declaring just that: a scoring child
   passes `grove reward-check` through bridge.so and is refused by bridge_judge.so at create; the
   judge's win rates match the hand computation of win_rate_by_hand (the PNG's 8 bits keep the
   order of the means and the tie); a judge whose EVERY compare call fails fails the batch
   (GV_ERR_PLUGIN, so the failure policy counts it) instead of returning 0.5 everywhere. */
static gv_status open_bridge_so(gv_reward *r, const char *so, const char *mode) {
    char path[1024], config[2048];
    snprintf(path, sizeof path, "%s/plugins/%s", GROVE_BINARY_DIR, so);
    snprintf(config, sizeof config, "command=python3 '%s/tests/plugins/bridge_child.py' %s\n"
             "timeout_s=20\nretries=0\n", GROVE_SOURCE_DIR, mode);
    return gv_reward_load_plugin(r, path, config, 1.0, GROVE_SAMPLES_IMAGE);
}

Test(plugins, bridge_scores_and_bridge_judge_compares) {
    gv_reward r;
    cr_assert_eq(open_bridge_so(&r, "bridge.so", "ok"), GV_OK, "%s", gv_last_error());
    cr_assert(!gv_reward_is_pairwise(&r) && gv_reward_can_score(&r));
    gv_reward_destroy(&r);
    cr_assert_eq(open_bridge_so(&r, "bridge_judge.so", "ok"), GV_ERR_PLUGIN);
    cr_assert(strstr(gv_last_error(), "is not a pairwise judge (its hello needs \"pairwise\": true)"),
              "%s", gv_last_error());
    cr_assert_null(strchr(gv_last_error(), '\n'));
    cr_assert_eq(open_bridge_so(&r, "bridge_judge.so", "judge"), GV_OK, "%s", gv_last_error());
    cr_assert(gv_reward_is_pairwise(&r) && !gv_reward_can_score(&r));
    enum { N = 7 };
    float px[N * 16], win[N];
    uint8_t st[N];
    const float v[N] = {0.1f, 0.3f, 0.3f, 0.5f, 0.2f, 0.8f, 0.4f};
    const int32_t groups[N] = {0, 0, 0, 0, 1, 1, 2};
    for (int i = 0; i < N; ++i) constant_image(px + i * 16, v[i], -1.0f);
    const gv_reward_images b = {.n = N, .channels = 1, .height = 4, .width = 4, .pixels = px,
                                .groups = groups};
    int64_t judged, imputed;
    gv_win_rate_options o = {.both_orders = 1};
    cr_assert_eq(gv_reward_win_rate(&r, NULL, &b, &o, win, st, &judged, &imputed), GV_OK, "%s",
                 gv_last_error());
    const double expect[N - 1] = {0.0, 0.5, 0.5, 1.0, 0.0, 1.0};
    for (int i = 0; i < N - 1; ++i) {
        cr_assert_eq(st[i], GV_REWARD_ITEM_OK);
        cr_assert_float_eq(win[i], expect[i], 1e-7, "sample %d: %g", i, win[i]);
    }
    cr_assert_eq(st[N - 1], GV_REWARD_ITEM_FAILED, "a group of one has no win rate");
    cr_assert_eq(judged, 14);
    cr_assert_eq(imputed, 0);
    gv_reward_destroy(&r);
    /* every compare call fails: the batch fails with the child's message, all items FAILED */
    cr_assert_eq(open_bridge_so(&r, "bridge_judge.so", "judge_error"), GV_OK, "%s", gv_last_error());
    for (int orders = 1; orders <= 2; ++orders) {
        o.both_orders = orders == 2;
        cr_assert_eq(gv_reward_win_rate(&r, NULL, &b, &o, win, st, &judged, &imputed),
                     GV_ERR_PLUGIN);
        char want[64];
        snprintf(want, sizeof want, "every compare call of the batch failed (%d of %d)", orders,
                 orders);
        cr_assert(strstr(gv_last_error(), want), "%s", gv_last_error());
        cr_assert(strstr(gv_last_error(), "judge refuses request"), "%s", gv_last_error());
        for (int i = 0; i < N; ++i) cr_assert_eq(st[i], GV_REWARD_ITEM_FAILED);
    }
    gv_reward_destroy(&r);
    /* grove reward-check: the scoring bridge and the judge bridge both pass */
    char cfg[256], args[2048], err[8192], out[8192];
    snprintf(cfg, sizeof cfg, "/tmp/grove-test-bridge-cfg-%d.yaml", (int)getpid());
    const struct { const char *so, *mode, *needle; } ok[] = {
        {"bridge.so", "ok", "scores: 16 scored, 0 failed"},
        {"bridge_judge.so", "judge", "win rates: 16 scored, 0 failed"}};
    for (size_t c = 0; c < sizeof ok / sizeof ok[0]; ++c) {
        FILE *f = fopen(cfg, "w");
        cr_assert_not_null(f);
        fprintf(f, "command: \"python3 '%s/tests/plugins/bridge_child.py' %s\"\n", GROVE_SOURCE_DIR,
                ok[c].mode);
        fclose(f);
        snprintf(args, sizeof args, "'%s/plugins/%s' --config '%s' -n 16", GROVE_BINARY_DIR,
                 ok[c].so, cfg);
        cr_assert_eq(run_cli(args, err, sizeof err, out, sizeof out), 0, "%s: %s", ok[c].so, err);
        cr_assert(strstr(out, ok[c].needle), "%s: %s", ok[c].so, out);
    }
    unlink(cfg);
}

/* ---- training ---------------------------------------------------------------------------------- */

static char tmpdir[256], unet_path[512];

static void write_unet(void) {
    tu_make_tmpdir(tmpdir, sizeof tmpdir, "plugins");
    snprintf(unet_path, sizeof unet_path, "%s/unet.h5", tmpdir);
    tu_export_tiny_unet(unet_path, 9, NULL);
}

static void remove_tree(void) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    cr_assert_eq(system(cmd), 0);
}

/* tests/data/align/tiny.yaml (2 prompts x 3 chains, N = 4), eval off, with `extra` sets. */
static gv_status train(const char *run, const char *const *extra, int nextra, gv_grpo_result *res) {
    static char s_model[600], s_dir[600];
    snprintf(s_model, sizeof s_model, "model.checkpoint=%s", unet_path);
    snprintf(s_dir, sizeof s_dir, "run.dir=%s/%s", tmpdir, run);
    const char *sets[16] = {s_model, s_dir, "eval.every=0", "eval_rewards=[{builtin: ink}]",
                            "checkpoint.every=0"};
    int n = 5;
    for (int i = 0; i < nextra; ++i) sets[n++] = extra[i];
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/data/align/tiny.yaml", GROVE_SOURCE_DIR);
    gv_run_config cfg;
    cr_assert_eq(gv_run_config_load(path, sets, n, NULL, &cfg, NULL), GV_OK, "%s", gv_last_error());
    gv_grpo_options opt = {.backend = grove_backend_cpu(), .result = res};
    gv_status s = gv_grpo_run(&cfg, &opt);
    gv_run_config_free(&cfg);
    return s;
}

static char *slurp(const char *run, const char *file) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s/%s", tmpdir, run, file);
    char *text = NULL;
    cr_assert_eq(gv_rundir_slurp(path, &text), GV_OK, "%s", gv_last_error());
    return text;
}

/* The n-th iteration record (1-based) of metrics.jsonl, or NULL. */
static const char *iteration_line(const char *metrics, int k, char *buf, size_t n) {
    char key[64];
    snprintf(key, sizeof key, "{\"iteration\":%d,\"reward\"", k);
    const char *p = strstr(metrics, key);
    if (!p) return NULL;
    const char *e = strchr(p, '\n');
    snprintf(buf, n, "%.*s", (int)(e ? e - p : (long)strlen(p)), p);
    return buf;
}

static double number_after(const char *line, const char *key) {
    const char *p = strstr(line, key);
    cr_assert(p, "no %s in %s", key, line);
    return strtod(p + strlen(key), NULL);
}

Test(plugins, training_masks_and_stops, .init = write_unet, .fini = remove_tree) {
    char set[1200], line[8192];
    gv_grpo_result res;
    /* fail_every 3: samples 2 and 5 of the 6 are FAILED every iteration; the fixture also checks
       each sample's metadata and group id (groups of 3) */
    snprintf(set, sizeof set, "rewards=[{plugin: %s, config: {fail_every: 3, require_metadata: 1}}]",
             fixture("good"));
    const char *a[] = {set, "train.iterations=2"};
    cr_assert_eq(train("mask", a, 2, &res), GV_OK, "%s", gv_last_error());
    char *m = slurp("mask", "metrics.jsonl");
    for (int k = 1; k <= 2; ++k) {
        cr_assert(iteration_line(m, k, line, sizeof line), "%s", m);
        cr_assert_float_eq(number_after(line, "\"masked_fraction\":"), 2.0 / 6.0, 1e-12, "%s", line);
        cr_assert(strstr(line, "\"fixture\":{"), "%s", line);
    }
    free(m);
    /* calls 2 and 3 fail, max_consecutive 2: iteration 2 masked and logged, iteration 3 stops */
    snprintf(set, sizeof set, "rewards=[{plugin: %s, config: {fail_calls: \"2,3\"}}]",
             fixture("good"));
    const char *b[] = {set, "train.iterations=4", "reward_failures.max_consecutive=2"};
    cr_assert_eq(train("stop", b, 3, &res), GV_ERR_PLUGIN);
    cr_assert(strstr(gv_last_error(), "2 consecutive failed batches of reward 'fixture' "
                                      "(reward_failures.max_consecutive 2)"), "%s", gv_last_error());
    cr_assert(strstr(gv_last_error(), "fixture: call 3 fails as configured"), "%s", gv_last_error());
    m = slurp("stop", "metrics.jsonl");
    cr_assert(iteration_line(m, 2, line, sizeof line), "%s", m);
    cr_assert_float_eq(number_after(line, "\"masked_fraction\":"), 1.0, 0.0, "%s", line);
    cr_assert_float_eq(number_after(line, "\"failed_batches\":"), 1.0, 0.0, "%s", line);
    cr_assert_null(iteration_line(m, 3, line, sizeof line), "iteration 3 was logged");
    free(m);
    char last[1024];
    snprintf(last, sizeof last, "%s/stop/last.h5", tmpdir);
    gv_ckpt_reader *rd = NULL;
    cr_assert_eq(gv_ckpt_open(last, &rd), GV_OK, "%s", gv_last_error());
    int64_t it = -1;
    cr_assert_eq(gv_ckpt_get_i64(rd, GV_CKPT_STATE, "iteration", &it), GV_OK, "%s", gv_last_error());
    cr_assert_eq(it, 2);
    gv_ckpt_close(rd);
}

Test(plugins, training_with_bridge_and_pairwise, .init = write_unet, .fini = remove_tree) {
    char set[2048], line[8192], state[256];
    gv_grpo_result res;
    /* a bridge child that crashes on its first request: restarted, the run completes */
    state_path(state, sizeof state);
    snprintf(set, sizeof set, "rewards=[{plugin: %s/plugins/bridge.so, config: {command: \"python3 "
             "'%s/tests/plugins/bridge_child.py' crash_once '%s'\", timeout_s: 10, retries: 1}}]",
             GROVE_BINARY_DIR, GROVE_SOURCE_DIR, state);
    const char *a[] = {set, "train.iterations=2"};
    cr_assert_eq(train("bridge", a, 2, &res), GV_OK, "%s", gv_last_error());
    char *m = slurp("bridge", "metrics.jsonl");
    cr_assert(iteration_line(m, 2, line, sizeof line), "%s", m);
    cr_assert_float_eq(number_after(line, "\"masked_fraction\":"), 0.0, 0.0, "%s", line);
    cr_assert_float_eq(number_after(line, "\"failed_batches\":"), 0.0, 0.0, "%s", line);
    free(m);
    unlink(state);
    /* Pref-GRPO: the symmetry judge's win rates, soft and both orders: in [0, 1], and within each
       group s_ij + s_ji = 1 makes the mean win rate exactly 1/2 */
    snprintf(set, sizeof set, "rewards=[{plugin: %s/plugins/symmetry_judge.so, config: {stat: ink, "
             "temperature: 0.002, bias: 0.3}}]", GROVE_BINARY_DIR);
    const char *b[] = {set, "train.iterations=2", "algorithm.preset=pref_grpo",
                       "pairwise.both_orders=true"};
    cr_assert_eq(train("pref", b, 4, &res), GV_OK, "%s", gv_last_error());
    m = slurp("pref", "metrics.jsonl");
    for (int k = 1; k <= 2; ++k) {
        cr_assert(iteration_line(m, k, line, sizeof line), "%s", m);
        const char *r = strstr(line, "\"symmetry_judge\":{");
        cr_assert(r, "%s", line);
        cr_assert_float_eq(number_after(r, "\"raw_mean\":"), 0.5, 1e-6, "%s", line);
        const double sd = number_after(r, "\"raw_std\":");
        cr_assert(sd > 0.0 && sd <= 0.5, "%s", line); /* values in [0, 1] around 1/2 */
        /* 2 prompts x C(3, 2) pairs x 2 orders */
        cr_assert_float_eq(number_after(line, "\"pairwise_judged\":"), 12.0, 0.0, "%s", line);
        cr_assert_float_eq(number_after(line, "\"pairwise_imputed\":"), 0.0, 0.0, "%s", line);
    }
    free(m);
    /* win_rate without a pairwise judge is a setup error naming the preset */
    const char *c[] = {"rewards=[{builtin: ink}]", "algorithm.preset=pref_grpo"};
    cr_assert_eq(train("pref_bad", c, 2, &res), GV_ERR_CONFIG);
    cr_assert(strstr(gv_last_error(), "reward_transform win_rate (preset pref_grpo): no training "
                                      "reward is a pairwise judge"), "%s", gv_last_error());
    /* a judge whose every compare fails: counted by reward_failures, not trained on 0.5s */
    snprintf(set, sizeof set, "rewards=[{plugin: %s/plugins/bridge_judge.so, config: {command: "
             "\"python3 '%s/tests/plugins/bridge_child.py' judge_error\", retries: 0}}]",
             GROVE_BINARY_DIR, GROVE_SOURCE_DIR);
    const char *d[] = {set, "train.iterations=2", "algorithm.preset=pref_grpo",
                       "reward_failures.max_consecutive=1"};
    cr_assert_eq(train("pref_fail", d, 4, &res), GV_ERR_PLUGIN);
    cr_assert(strstr(gv_last_error(), "1 consecutive failed batches of reward 'bridge_judge'"), "%s",
              gv_last_error());
    cr_assert(strstr(gv_last_error(), "every compare call of the batch failed"), "%s",
              gv_last_error());
}

/* The README's tutorial is rewards/plugins/minimal/ink_target.c verbatim, and it builds with the
   plugin header alone (-I rewards/include, strict C11) into a plugin that loads and scores. */
Test(plugins, readme_tutorial_compiles_alone) {
    char path[4096];
    snprintf(path, sizeof path, "%s/README.md", GROVE_SOURCE_DIR);
    char *readme = NULL, *source = NULL;
    cr_assert_eq(gv_rundir_slurp(path, &readme), GV_OK, "%s", gv_last_error());
    snprintf(path, sizeof path, "%s/rewards/plugins/minimal/ink_target.c", GROVE_SOURCE_DIR);
    cr_assert_eq(gv_rundir_slurp(path, &source), GV_OK, "%s", gv_last_error());
    const char *begin = strstr(readme, "<!-- ink_target.c begin -->\n```c\n");
    const char *end = strstr(readme, "```\n<!-- ink_target.c end -->");
    cr_assert(begin && end && end > begin, "README markers of the tutorial are missing");
    begin += strlen("<!-- ink_target.c begin -->\n```c\n");
    cr_assert_eq((size_t)(end - begin), strlen(source), "README tutorial differs from ink_target.c");
    cr_assert_eq(memcmp(begin, source, strlen(source)), 0, "README tutorial differs from ink_target.c");
    char dir[256], cmd[8192], so[512];
    tu_make_tmpdir(dir, sizeof dir, "tutorial");
    snprintf(so, sizeof so, "%s/ink_target.so", dir);
    snprintf(cmd, sizeof cmd, "cc -std=c11 -pedantic -Wall -Wextra -Werror -shared -fPIC -O2 "
             "-I'%s/rewards/include' -x c '%s/rewards/plugins/minimal/ink_target.c' -o '%s' -lm",
             GROVE_SOURCE_DIR, GROVE_SOURCE_DIR, so);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    gv_reward r;
    cr_assert_eq(gv_reward_load_plugin(&r, so, "target=0.25\n", 1.0, GROVE_SAMPLES_IMAGE), GV_OK,
                 "%s", gv_last_error());
    float px[2 * 16], sc[2];
    uint8_t st[2];
    constant_image(px, 0.1f, -1.0f);
    constant_image(px + 16, 0.5f, -1.0f);
    const gv_reward_images b = {.n = 2, .channels = 1, .height = 4, .width = 4, .pixels = px};
    cr_assert_eq(gv_reward_score(&r, NULL, &b, sc, st), GV_OK, "%s", gv_last_error());
    cr_assert_float_eq(sc[0], -0.15f, 1e-6); /* -|0.1 - 0.25| */
    cr_assert_float_eq(sc[1], -0.25f, 1e-6); /* -|0.5 - 0.25| */
    gv_reward_destroy(&r);
    free(readme);
    free(source);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

/* A bridge child that never answers during training, max_consecutive 1: the run stops at the first
   rollout with the bridge's message, within the timeout, leaving no temp files behind. */
Test(plugins, training_stops_on_a_hung_bridge, .init = write_unet, .fini = remove_tree) {
    char set[2048];
    gv_grpo_result res;
    snprintf(set, sizeof set, "rewards=[{plugin: %s/plugins/bridge.so, config: {command: \"python3 "
             "'%s/tests/plugins/bridge_child.py' sleep '' 60\", timeout_s: 0.5, retries: 0}}]",
             GROVE_BINARY_DIR, GROVE_SOURCE_DIR);
    const char *a[] = {set, "train.iterations=2", "reward_failures.max_consecutive=1"};
    const double t0 = now_s();
    cr_assert_eq(train("hung", a, 3, &res), GV_ERR_PLUGIN);
    cr_assert_lt(now_s() - t0, 30.0);
    cr_assert(strstr(gv_last_error(), "1 consecutive failed batches of reward 'bridge'"), "%s",
              gv_last_error());
    cr_assert(strstr(gv_last_error(), "timed out after 0.5 s"), "%s", gv_last_error());
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "test -f '%s/hung/config.yaml' && ! ls '%s/hung' | grep -q tmp",
             tmpdir, tmpdir);
    cr_assert_eq(system(cmd), 0, "run directory: config.yaml missing or temp files left");
}

/* The neural example plugin (libgrove's classifier forward through gv_judge) agrees with the
   built-in `classifier` reward (its own forward + host softmax) on P(class 3). */
Test(plugins, neural_plugin_matches_builtin_classifier, .init = write_unet, .fini = remove_tree) {
    char clf[600], so[1024], config[1400];
    snprintf(clf, sizeof clf, "%s/clf.h5", tmpdir);
    gv_classifier_config cc = gv_classifier_config_default(4);
    cc.features = 16;
    gv_image_model m;
    cr_assert_eq(gv_image_model_create(&m, GV_MODEL_CLASSIFIER, &cc, grove_backend_cpu(), 0), GV_OK);
    snprintf(m.dataset, sizeof m.dataset, "mnist");
    cr_assert_eq(gv_params_initialize(&m.params, 21), GV_OK);
    cr_assert_eq(gv_image_model_save_export(&m, m.params.values, NULL, clf), GV_OK, "%s",
                 gv_last_error());
    enum { N = 5 };
    float px[N * 784], want[N], got[N];
    uint8_t st[N];
    int32_t labels[N] = {3, 3, 3, 3, 3};
    uint64_t seed = 77;
    for (int e = 0; e < N * 784; ++e) px[e] = tu_rand_unit(&seed);
    const gv_reward_images b = {.n = N, .channels = 1, .height = 28, .width = 28, .pixels = px,
                                .labels = labels};
    gv_ctx *ctx = tu_make_ctx(1, 1);
    gv_reward builtin;
    cr_assert_eq(gv_reward_create(&builtin, "classifier", 1.0, &m, 4, ctx), GV_OK, "%s",
                 gv_last_error());
    cr_assert_eq(gv_reward_score(&builtin, ctx, &b, want, st), GV_OK, "%s", gv_last_error());
    snprintf(so, sizeof so, "%s/plugins/classifier_reward.so", GROVE_BINARY_DIR);
    snprintf(config, sizeof config, "checkpoint=%s\nclass=3\nmicro_batch=4\n", clf);
    gv_reward plugin;
    cr_assert_eq(gv_reward_load_plugin(&plugin, so, config, 1.0, GROVE_SAMPLES_IMAGE), GV_OK, "%s",
                 gv_last_error());
    cr_assert_eq(gv_reward_score(&plugin, NULL, &b, got, st), GV_OK, "%s", gv_last_error());
    for (int i = 0; i < N; ++i) {
        cr_assert_eq(st[i], GV_REWARD_ITEM_OK);
        cr_assert_float_eq(got[i], want[i], 1e-5, "image %d: plugin %g, built-in %g", i, got[i],
                           want[i]);
    }
    /* classifier_judge.so, the same source as a pairwise judge: f = P(the prompt's class), the
       class read from the prompt's class word ("three" = 3 in configs/prompts/mnist-vocab.txt);
       P(a better than b) = sigmoid((f(a) - f(b)) / temperature), so the win rate of sample i is the
       mean over its group's others j of sigmoid((want_i - want_j) / 0.1). */
    const char *prompts[N] = {"a handwritten three", "three", "the digit three", "a three", "three"};
    const int32_t groups[N] = {0, 0, 0, 1, 1};
    const gv_reward_images bp = {.n = N, .channels = 1, .height = 28, .width = 28, .pixels = px,
                                 .labels = labels, .prompts = prompts, .groups = groups};
    snprintf(so, sizeof so, "%s/plugins/classifier_judge.so", GROVE_BINARY_DIR);
    snprintf(config, sizeof config, "checkpoint=%s\ntemperature=0.1\nmicro_batch=4\n", clf);
    gv_reward judge;
    cr_assert_eq(gv_reward_load_plugin(&judge, so, config, 1.0, GROVE_SAMPLES_IMAGE), GV_OK, "%s",
                 gv_last_error());
    cr_assert(gv_reward_is_pairwise(&judge) && !gv_reward_can_score(&judge));
    float win[N];
    int64_t judged, imputed;
    const gv_win_rate_options wo = {.both_orders = 1};
    cr_assert_eq(gv_reward_win_rate(&judge, NULL, &bp, &wo, win, st, &judged, &imputed), GV_OK,
                 "%s", gv_last_error());
    cr_assert_eq(judged, 2 * (3 + 1));
    cr_assert_eq(imputed, 0);
    for (int i = 0; i < N; ++i) {
        double w = 0.0;
        int others = 0;
        for (int j = 0; j < N; ++j)
            if (j != i && groups[j] == groups[i])
                w += 1.0 / (1.0 + exp(-((double)want[i] - want[j]) / 0.1)), ++others;
        cr_assert_eq(st[i], GV_REWARD_ITEM_OK);
        cr_assert_float_eq(win[i], w / others, 1e-4, "sample %d: win %g, by hand %g", i, win[i],
                           w / others);
    }
    gv_reward_destroy(&judge);
    snprintf(config, sizeof config, "checkpoint=%s\nclass=11\n", clf);
    gv_reward bad;
    cr_assert_eq(gv_reward_load_plugin(&bad, so, config, 1.0, GROVE_SAMPLES_IMAGE), GV_ERR_PLUGIN);
    cr_assert(strstr(gv_last_error(), "create failed: class 11: the classifier has 10 classes"), "%s",
              gv_last_error());
    gv_reward_destroy(&plugin);
    gv_reward_destroy(&builtin);
    gv_image_model_free(&m);
    ctx->backend->ctx_destroy(ctx);
}
