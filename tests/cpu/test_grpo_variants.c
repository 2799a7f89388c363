/* Trained-step selection, SDE windows, shared initial noise, step weights and the chain presets
 * of `grove train` (engine/train/step_select.c; ALGORITHMS.md §3 "Trained steps", §4, §7, §9):
 *   windows      progressive positions by hand (l += 1 every τ, back to 0 once l + w > N − 1),
 *                fixed, random (in range, reproducible, moving); window steps SDE (std > 0),
 *                the others ODE (std == 0);
 *   random       random_fraction: T = floor(f·9) distinct ascending SDE steps per sample,
 *                reproducible, different across iterations and across samples;
 *   weights      noise_aware ω has mean 1 and is ∝ the ALGORITHMS.md §2 std table;
 *   system       a windowed run's rollouts.h5: the ODE step before the window is x + Δ·v with no
 *                log-prob, window steps recompute to their logp_old; ρ == 1 without updates;
 *                same_latent shares x_T within a group only; resume with a progressive window,
 *                random fraction and noise-aware weights is bit-identical;
 *   presets      flow_grpo_fast, mix_grpo, dance_grpo: 2 iterations each on the MNIST task config
 *                (configs/align/mnist-flowgrpo.yaml, the shipped unet-s) with ρ == 1 on the first
 *                minibatch; their keys are preset-owned (top level refused, overrides and --set work). */
#include "grpo_test_util.h"

/* The tiny config with `extra` sets (no model needed for the pure step-selection checks). */
static void cfg_with(gv_run_config *cfg, const char *const *extra, int n) {
    snprintf(tmpdir, sizeof tmpdir, "/nonexistent");
    snprintf(unet_path, sizeof unet_path, "/nonexistent/unet.h5");
    snprintf(gold_path, sizeof gold_path, "/nonexistent/gold.h5");
    load_cfg(cfg, "none", extra, n);
}

/* A job with just what step_select.c reads: cfg, noise, σ grid, N, the step plan. */
static void fake_job(gv_grpo_job *j, const gv_run_config *cfg, uint32_t iteration) {
    memset(j, 0, sizeof *j);
    j->cfg = cfg;
    j->N = cfg->sampler.steps;
    j->noise = (gv_noise_spec){.kind = (gv_noise_kind)cfg->sampler.noise.kind,
                               .level = cfg->sampler.noise.level};
    cr_assert_eq(gv_schedule_sigmas(j->N, cfg->sampler.shift, j->sigmas), GV_OK);
    cr_assert_eq(gv_grpo_step_plan_make(cfg, &j->noise, j->sigmas, 7, iteration, &j->step_plan),
                 GV_OK, "%s", gv_last_error());
}

Test(grpo_variants, progressive_window_positions_by_hand) {
    const char *sets[] = {"sampler.steps=10", "sampler.window.kind=progressive",
                          "sampler.window.size=4", "sampler.window.every=25"};
    gv_run_config cfg;
    cfg_with(&cfg, sets, 4);
    /* N = 10, w = 4: l in 0..5; +1 every 25 iterations; l = 6 would end past step 8 -> 0 */
    const uint32_t k[] = {0, 24, 25, 49, 50, 125, 149, 150, 175, 300};
    const int want[] = {0, 0, 1, 1, 2, 5, 5, 0, 1, 0};
    for (size_t i = 0; i < sizeof k / sizeof k[0]; ++i) {
        int l = -2;
        cr_assert_eq(gv_grpo_window_start(&cfg, 1, k[i], &l), GV_OK);
        cr_assert_eq(l, want[i], "iteration %u: l = %d, want %d", k[i], l, want[i]);
    }
    cfg.sampler.window.start = 4; /* starting later: 4, 5, then back to 0 */
    const int want4[] = {4, 4, 5, 5, 0, 3, 3, 4, 5, 4};
    for (size_t i = 0; i < sizeof k / sizeof k[0]; ++i) {
        int l;
        cr_assert_eq(gv_grpo_window_start(&cfg, 1, k[i], &l), GV_OK);
        cr_assert_eq(l, want4[i], "start 4, iteration %u: l = %d", k[i], l);
    }
    cfg.sampler.window.start = 6; /* 6 + 4 > 9: does not fit */
    int l;
    cr_assert_eq(gv_grpo_window_start(&cfg, 1, 0, &l), GV_ERR_CONFIG);
    cr_assert(strstr(gv_last_error(), "sampler.window"), "%s", gv_last_error());
    cfg.sampler.window.kind = GV_WINDOW_FIXED;
    cfg.sampler.window.start = 2;
    for (uint32_t it = 0; it < 5; ++it) {
        cr_assert_eq(gv_grpo_window_start(&cfg, 1, it, &l), GV_OK);
        cr_assert_eq(l, 2);
    }
    cfg.sampler.window.kind = GV_WINDOW_NONE;
    cr_assert_eq(gv_grpo_window_start(&cfg, 1, 3, &l), GV_OK);
    cr_assert_eq(l, -1);
    gv_run_config_free(&cfg);
}

Test(grpo_variants, random_window_in_range_reproducible_and_moving) {
    const char *sets[] = {"sampler.steps=10", "sampler.window.kind=random", "sampler.window.size=2"};
    gv_run_config cfg;
    cfg_with(&cfg, sets, 3);
    int seen[8] = {0};
    for (uint32_t it = 0; it < 64; ++it) {
        int a, b;
        cr_assert_eq(gv_grpo_window_start(&cfg, 5, it, &a), GV_OK);
        cr_assert_eq(gv_grpo_window_start(&cfg, 5, it, &b), GV_OK);
        cr_assert_eq(a, b, "iteration %u: not reproducible", it);
        cr_assert(a >= 0 && a <= 7, "l = %d outside 0..N-1-w = 0..7", a); /* N − w = 8 positions */
        seen[a]++;
    }
    int distinct = 0;
    for (int i = 0; i < 8; ++i) distinct += seen[i] > 0;
    cr_assert_geq(distinct, 6, "64 iterations visited only %d of 8 window positions", distinct);
    gv_run_config_free(&cfg);
}

Test(grpo_variants, window_steps_are_sde_and_the_others_ode) {
    const char *sets[] = {"sampler.steps=10", "sampler.window.kind=fixed", "sampler.window.size=4",
                          "sampler.window.start=3"};
    gv_run_config cfg;
    cfg_with(&cfg, sets, 4);
    gv_grpo_job j;
    fake_job(&j, &cfg, 0);
    cr_assert_eq(j.step_plan.window_start, 3);
    cr_assert_eq(j.step_plan.n_sde, 4);
    for (int i = 0; i < 10; ++i) {
        gv_step_args a;
        int sde = -1;
        cr_assert_eq(gv_grpo_step_coeffs(&j, i, &a, &sde), GV_OK);
        const int in = i >= 3 && i < 7;
        cr_assert_eq(sde, in, "step %d", i);
        cr_assert_eq(j.step_plan.sde[i], in);
        if (in) cr_assert_gt(a.std, 0.0f, "window step %d std %g", i, (double)a.std);
        else cr_assert_eq(a.std, 0.0f, "ODE step %d std %g", i, (double)a.std);
        if (!in) cr_assert_eq(a.cv, a.delta); /* the Euler step x + Δ·v */
    }
    for (int k = 0; k < 4; ++k) cr_assert_eq(j.step_plan.sde_list[k], 3 + k);
    /* timestep_fraction over the window: floor(0.5·4) = the first 2 window steps */
    cfg.train.timestep_fraction = 0.5;
    cr_assert_eq(gv_grpo_trained_step_count(&cfg), 2);
    int32_t steps[4];
    cr_assert_eq(gv_grpo_trained_steps(&cfg, &j.step_plan, 7, 0, 0, 0, 2, steps), GV_OK);
    cr_assert_eq(steps[0], 3);
    cr_assert_eq(steps[1], 4);
    gv_run_config_free(&cfg);
}

Test(grpo_variants, random_fraction_reproducible_and_different) {
    const char *sets[] = {"sampler.steps=10", "train.random_fraction=0.6"};
    gv_run_config cfg;
    cfg_with(&cfg, sets, 2);
    cr_assert_eq(gv_grpo_trained_step_count(&cfg), 5); /* floor(0.6·9) */
    gv_grpo_job j;
    fake_job(&j, &cfg, 0);
    cr_assert_eq(j.step_plan.n_sde, 9);
    int32_t a[5], b[5], prev[5] = {0};
    int iter_diff = 0, sample_diff = 0, used[9] = {0};
    for (uint32_t it = 0; it < 20; ++it) {
        for (int s = 0; s < 4; ++s) {
            cr_assert_eq(gv_grpo_trained_steps(&cfg, &j.step_plan, 7, it, s / 2, s % 2, 5, a), GV_OK);
            cr_assert_eq(gv_grpo_trained_steps(&cfg, &j.step_plan, 7, it, s / 2, s % 2, 5, b), GV_OK);
            cr_assert_eq(memcmp(a, b, sizeof a), 0, "iteration %u sample %d not reproducible", it, s);
            for (int k = 0; k < 5; ++k) {
                cr_assert(a[k] >= 0 && a[k] <= 8, "step %d is not stochastic", a[k]);
                if (k) cr_assert_lt(a[k - 1], a[k], "not ascending and distinct");
                used[a[k]]++;
            }
            if (s == 0 && it > 0) iter_diff += memcmp(a, prev, sizeof a) != 0;
            if (s == 0) memcpy(prev, a, sizeof a);
            if (s == 1) {
                int32_t first[5];
                cr_assert_eq(gv_grpo_trained_steps(&cfg, &j.step_plan, 7, it, 0, 0, 5, first), GV_OK);
                sample_diff += memcmp(a, first, sizeof a) != 0;
            }
        }
    }
    cr_assert_geq(iter_diff, 15, "the subset changed in only %d of 19 iterations", iter_diff);
    cr_assert_geq(sample_diff, 15, "members 0 and 1 differed in only %d of 20 iterations", sample_diff);
    for (int i = 0; i < 9; ++i) cr_assert_gt(used[i], 0, "step %d never chosen", i);
    gv_run_config_free(&cfg);
}

Test(grpo_variants, noise_aware_weights_mean_one_and_proportional_to_std) {
    const char *sets[] = {"sampler.steps=10", "sampler.shift=3.0", "train.step_weight=noise_aware"};
    gv_run_config cfg;
    cfg_with(&cfg, sets, 3);
    gv_grpo_job j;
    fake_job(&j, &cfg, 0);
    /* ALGORITHMS.md §2: flow_grpo std, N=10, S=3, a=0.7, steps 0..8 */
    const double table[] = {.700, .738, .532, .441, .388, .350, .320, .290, .256};
    const int32_t sets_of_steps[][4] = {{0, 1, 2, 3}, {2, 4, 6, 8}, {5, 6, 7, 8}};
    for (int c = 0; c < 3; ++c) {
        float w[4];
        cr_assert_eq(gv_grpo_step_weights(&j, sets_of_steps[c], 4, w), GV_OK);
        double mean = 0.0, tmean = 0.0;
        for (int k = 0; k < 4; ++k) mean += w[k] / 4.0, tmean += table[sets_of_steps[c][k]] / 4.0;
        cr_assert_lt(fabs(mean - 1.0), 1e-6, "mean weight %.9g", mean);
        for (int k = 0; k < 4; ++k) {
            const double want = table[sets_of_steps[c][k]] / tmean;
            cr_assert_lt(fabs(w[k] - want), 5e-3, "step %d: w %.6f want %.6f", sets_of_steps[c][k],
                         (double)w[k], want);
        }
    }
    cfg.train.step_weight = GV_STEP_WEIGHT_UNIFORM;
    float w[4];
    cr_assert_eq(gv_grpo_step_weights(&j, sets_of_steps[1], 4, w), GV_OK);
    for (int k = 0; k < 4; ++k) cr_assert_eq(w[k], 1.0f);
    gv_run_config_free(&cfg);
}

/* N = 6, fixed window [1, 3): the rollouts.h5 of iteration 0 and the metrics, without updates. */
Test(grpo_variants, windowed_run_ode_outside_and_ratio_one) {
    write_models();
    gv_grpo_result res;
    const char *sets[] = {"sampler.steps=6", "sampler.window.kind=fixed", "sampler.window.size=2",
                          "sampler.window.start=1", "train.lr=0", "eval.every=0",
                          "train.iterations=2", "dump.every=1", "dump.keep=0"};
    cr_assert_eq(run("win", sets, 9, 0, &res), GV_OK, "%s", gv_last_error());
    char *m = slurp_run("win", "metrics.jsonl");
    for (int it = 0; it < 2; ++it) {
        cr_assert_eq(metric(m, "ratio_min", it), 1.0, "%s", m);
        cr_assert_eq(metric(m, "ratio_max", it), 1.0);
        cr_assert_eq(metric(m, "units", it), 12.0); /* 6 chains x 2 window steps */
        cr_assert_eq(metric(m, "window_start", it), 1.0);
    }
    free(m);
    char path[1024];
    snprintf(path, sizeof path, "%s/win/rollouts-0.h5", tmpdir);
    gv_ckpt_reader *r = NULL;
    cr_assert_eq(gv_ckpt_open(path, &r), GV_OK, "%s", gv_last_error());
    int64_t S, K, D;
    cr_assert_eq(gv_ckpt_get_i64(r, GV_CKPT_STATE, "samples", &S), GV_OK);
    cr_assert_eq(gv_ckpt_get_i64(r, GV_CKPT_STATE, "stored_steps", &K), GV_OK);
    cr_assert_eq(gv_ckpt_get_i64(r, GV_CKPT_STATE, "elements", &D), GV_OK);
    cr_assert_eq(K, 3); /* steps 0..2: the ODE step 0 and the window 1, 2 */
    const int64_t skd[] = {S, K, D}, sk[] = {S, K}, k1[] = {K};
    float *x = read_steps(r, "x", 3, skd), *xn = read_steps(r, "x_next", 3, skd);
    float *v = read_steps(r, "v", 3, skd), *mu = read_steps(r, "mu", 3, skd);
    float *lp = read_steps(r, "logp_old", 2, sk), *sd = read_steps(r, "std", 1, k1);
    float *sde = read_steps(r, "sde", 1, k1), *sig = read_steps(r, "sigma", 1, k1);
    float *sig1 = read_steps(r, "sigma_next", 1, k1);
    cr_assert_eq(sde[0], 0.0f);
    cr_assert_eq(sd[0], 0.0f);
    cr_assert(sde[1] == 1.0f && sde[2] == 1.0f);
    cr_assert(sd[1] > 0.0f && sd[2] > 0.0f);
    for (int64_t s = 0; s < S; ++s) {
        cr_assert_eq(lp[s * K], 0.0f, "an ODE step has no log-prob");
        const float delta = sig1[0] - sig[0];
        for (int64_t d = 0; d < D; ++d) { /* ALGORITHMS.md §2: the Euler step, no noise */
            const int64_t o = (s * K) * D + d;
            cr_assert_eq(xn[o], x[o] + delta * v[o], "sample %lld element %lld", (long long)s,
                         (long long)d);
        }
        for (int64_t i = 1; i < K; ++i) { /* window steps: the stored logp_old recomputes */
            const int64_t o = (s * K + i) * D;
            double acc = 0.0;
            for (int64_t d = 0; d < D; ++d) {
                const double r2 = (double)xn[o + d] - mu[o + d];
                acc += -r2 * r2 / (2.0 * sd[i] * sd[i]) - log(sd[i]) - 0.5 * log(2.0 * 3.14159265358979323846);
            }
            cr_assert_lt(fabs(acc / (double)D - lp[s * K + i]), 1e-5);
        }
    }
    gv_ckpt_close(r);
    float *all[] = {x, xn, v, mu, lp, sd, sde, sig, sig1};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i) free(all[i]);
    remove_tree();
}

Test(grpo_variants, same_latent_shares_x_T_within_a_group_only) {
    write_models();
    gv_grpo_result res;
    const char *sets[] = {"group.same_latent=true", "eval.every=0", "train.iterations=1",
                          "dump.every=1"};
    cr_assert_eq(run("same", sets, 4, 0, &res), GV_OK, "%s", gv_last_error());
    char path[1024];
    snprintf(path, sizeof path, "%s/same/rollouts-0.h5", tmpdir);
    gv_ckpt_reader *r = NULL;
    cr_assert_eq(gv_ckpt_open(path, &r), GV_OK, "%s", gv_last_error());
    int64_t S, K, D;
    cr_assert_eq(gv_ckpt_get_i64(r, GV_CKPT_STATE, "samples", &S), GV_OK);
    cr_assert_eq(gv_ckpt_get_i64(r, GV_CKPT_STATE, "stored_steps", &K), GV_OK);
    cr_assert_eq(gv_ckpt_get_i64(r, GV_CKPT_STATE, "elements", &D), GV_OK);
    const int64_t skd[] = {S, K, D};
    float *x = read_steps(r, "x", 3, skd), *xn = read_steps(r, "x_next", 3, skd);
    const size_t img = (size_t)D * sizeof(float);
    for (int64_t s = 0; s < S; ++s) { /* 2 prompts x 3 chains; x_T at step 0 of each chain */
        const int64_t first = (s / 3) * 3;
        cr_assert_eq(memcmp(x + s * K * D, x + first * K * D, img), 0, "chain %lld", (long long)s);
        if (s != first) /* the SDE steps still differ within the group */
            cr_assert_neq(memcmp(xn + s * K * D, xn + first * K * D, img), 0);
    }
    cr_assert_neq(memcmp(x, x + 3 * K * D, img), 0, "two groups share x_T");
    gv_ckpt_close(r);
    free(x);
    free(xn);
    remove_tree();
}

Test(grpo_variants, resume_bit_identical_with_moving_window_and_random_steps) {
    write_models();
    gv_grpo_result res;
    /* N = 6: l = floor(k / 1) mod 3 moves every iteration; 2 random steps of the 3-step window */
    const char *sets[] = {"sampler.steps=6", "sampler.window.kind=progressive",
                          "sampler.window.size=3", "sampler.window.every=1",
                          "train.random_fraction=0.67", "train.step_weight=noise_aware",
                          "eval.every=0"};
    cr_assert_eq(run("straight", sets, 7, 0, &res), GV_OK, "%s", gv_last_error());
    cr_assert_eq(run("split", sets, 7, 2, &res), GV_OK, "%s", gv_last_error());
    cr_assert_eq(res.iteration, 2);
    cr_assert_eq(run("split", sets, 7, 0, &res), GV_OK, "%s", gv_last_error());
    cr_assert(res.resumed && res.finished);
    char a[17], b[17];
    last_hash("straight", a);
    last_hash("split", b);
    cr_assert_str_eq(a, b);
    char *ma = slurp_run("straight", "metrics.jsonl"), *mb = slurp_run("split", "metrics.jsonl");
    for (int it = 0; it < 4; ++it) {
        cr_assert_eq(metric(ma, "window_start", it), (double)(it % 3), "%s", ma);
        cr_assert_eq(metric(ma, "units", it), 12.0); /* 6 chains x floor(0.67·3) = 2 steps */
        cr_assert_eq(metric(ma, "ratio_first_max", it), 1.0);
        cr_assert_eq(metric(ma, "ratio_first_min", it), 1.0);
    }
    strip_timing(ma);
    strip_timing(mb);
    cr_assert_str_eq(ma, mb);
    free(ma);
    free(mb);
    remove_tree();
}

/* ---- presets on the MNIST task config ---------------------------------------------------------- */

Test(grpo_variants, chain_presets_train_on_the_mnist_config, .timeout = 300) {
    tu_make_tmpdir(tmpdir, sizeof tmpdir, "presets");
    char cfg_path[4096];
    snprintf(cfg_path, sizeof cfg_path, "%s/configs/align/mnist-flowgrpo.yaml", GROVE_SOURCE_DIR);
    const char *presets[] = {"flow_grpo_fast", "mix_grpo", "dance_grpo"};
    const double units[] = {2 * 4 * 2, 2 * 4 * 4, 2 * 4 * 5}; /* P·G x trained steps (w, w, 5) */
    for (int p = 0; p < 3; ++p) {
        char s_preset[128], s_dir[600];
        snprintf(s_preset, sizeof s_preset, "algorithm.preset=%s", presets[p]);
        snprintf(s_dir, sizeof s_dir, "run.dir=%s/%s", tmpdir, presets[p]);
        const char *sets[] = {s_preset, s_dir, "train.iterations=2", "eval.every=0",
                              "group.prompts_per_iteration=2", "group.size=4",
                              "run.micro_batch=8", "train.minibatch=4", "eval_rewards=[]",
                              "algorithm.overrides={}"}; /* the preset as it is */
        gv_run_config cfg;
        cr_assert_eq(gv_run_config_load(cfg_path, sets, 10, NULL, &cfg, NULL), GV_OK, "%s",
                     gv_last_error());
        gv_grpo_result res;
        gv_grpo_options opt = {.backend = be(), .result = &res};
        cr_assert_eq(gv_grpo_run(&cfg, &opt), GV_OK, "%s: %s", presets[p], gv_last_error());
        gv_run_config_free(&cfg);
        cr_assert(res.finished);
        char *m = slurp_run(presets[p], "metrics.jsonl");
        for (int it = 0; it < 2; ++it) {
            cr_assert_eq(metric(m, "ratio_first_min", it), 1.0, "%s: %s", presets[p], m);
            cr_assert_eq(metric(m, "ratio_first_max", it), 1.0, "%s", presets[p]);
            cr_assert_eq(metric(m, "units", it), units[p], "%s: %s", presets[p], m);
            cr_assert_eq(metric(m, "skipped", it), 0.0);
            cr_assert(isfinite(metric(m, "loss", it)));
        }
        cr_assert_eq(isnan(metric(m, "window_start", 0)), p == 2, "%s", presets[p]);
        free(m);
    }
    remove_tree();
}

Test(grpo_variants, preset_owns_the_new_keys) {
    tu_make_tmpdir(tmpdir, sizeof tmpdir, "owned");
    char path[600], base[4096];
    snprintf(base, sizeof base,
             "model: { checkpoint: m.h5 }\n"
             "data: { prompts: %s/configs/prompts/mnist-train.txt }\n"
             "rewards: [ { builtin: ink } ]\n",
             GROVE_SOURCE_DIR);
    snprintf(path, sizeof path, "%s/task.yaml", tmpdir);
    const char *bodies[] = {
        "algorithm: { preset: mix_grpo }\ntrain: { random_fraction: 0.5 }\n",
        "algorithm: { preset: mix_grpo }\nsampler: { window: { size: 2 } }\n",
        "algorithm: { preset: mix_grpo, overrides: { sampler: { window: { every: 5 } }, "
        "train: { step_weight: noise_aware, std_eps: 1.0e-6 } } }\n"};
    const char *key[] = {"train.random_fraction", "sampler.window", NULL};
    for (int b = 0; b < 3; ++b) {
        FILE *f = fopen(path, "w");
        cr_assert(f);
        fprintf(f, "%s%s", base, bodies[b]);
        fclose(f);
        gv_run_config cfg;
        gv_config_result cres;
        const char *set[] = {"train.random_fraction=0.5"};
        gv_status s = gv_run_config_load(path, set, b == 2 ? 1 : 0, GROVE_SOURCE_DIR "/configs/algorithms",
                                         &cfg, &cres);
        if (key[b]) {
            cr_assert_eq(s, GV_ERR_CONFIG, "body %d loaded", b);
            cr_assert(strstr(gv_last_error(), key[b]) && strstr(gv_last_error(), "mix_grpo"), "%s",
                      gv_last_error());
            continue;
        }
        cr_assert_eq(s, GV_OK, "%s", gv_last_error());
        cr_assert_eq(cfg.sampler.window.kind, GV_WINDOW_PROGRESSIVE); /* preset */
        cr_assert_eq(cfg.sampler.window.size, 4);
        cr_assert_eq(cfg.sampler.window.every, 5);                     /* override */
        cr_assert_eq(cfg.train.step_weight, GV_STEP_WEIGHT_NOISE_AWARE);
        cr_assert_eq(cfg.train.std_eps, 1e-6);
        cr_assert_eq(cfg.train.random_fraction, 0.5);                  /* --set */
        cr_assert_eq(gv_config_origin_of(&cres, "sampler.window.every"), GV_ORIGIN_OVERRIDE);
        cr_assert_eq(gv_config_origin_of(&cres, "sampler.window.size"), GV_ORIGIN_PRESET);
        cr_assert_eq(gv_config_origin_of(&cres, "train.random_fraction"), GV_ORIGIN_SET);
        gv_run_config_free(&cfg);
        gv_config_result_free(&cres);
    }
    remove_tree();
}
