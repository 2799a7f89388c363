/* System tests of `grove train` (engine/train/{rollout,grpo_train,grpo_setup,grpo_loop}.c) on a
 * tiny exported UNet (channels 8/8, random init) and a tiny gold classifier in a temp dir, with
 * tests/data/align/tiny.yaml (2 prompts x 3 chains, N = 4, micro-batch 4):
 *   ratio      ρ == 1 exactly for every unit when no update happens (lr 0), and for the first
 *              minibatch of every iteration with real updates (with and without CFG rows);
 *   resume     4 iterations straight == 2 (--stop-after) + resume to 4: the same parameter hash
 *              and the same metrics lines apart from timing fields;
 *   reward     the ink reward of the EMA model on fixed eval seeds rises with a high lr;
 *   guard      NaN gradients from iteration 2 on: skips logged, train.max_skips stops with the
 *              message, last.h5 is iteration 2's state and loads;
 *   dry_run    the plan's counts equal a hand count;
 *   dump       rollouts-<k>.h5 (dump.every 1): the stored logp_old recomputes from x_i, x_{i+1},
 *              μ, std; μ from cx·x_i + cv·v; dump.keep 1 leaves only the newest file. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "grove/checkpoint.h"
#include "grove/grpo.h"
#include "grove/kernels_cpu.h"
#include "grpo_test_util.h"

static int count(const char *text, const char *pat) {
    int n = 0;
    for (const char *p = text; (p = strstr(p, pat)); p += strlen(pat)) n++;
    return n;
}

Test(grpo, ratio_is_exactly_one_before_an_update) {
    write_models();
    gv_grpo_result res;
    const char *no_update[] = {"train.lr=0", "eval.every=0", "train.iterations=2"};
    cr_assert_eq(run("lr0", no_update, 3, 0, &res), GV_OK, "%s", gv_last_error());
    char *m = slurp_run("lr0", "metrics.jsonl");
    for (int it = 0; it < 2; ++it) { /* every unit of every minibatch */
        cr_assert_eq(metric(m, "ratio_min", it), 1.0, "iteration %d ratio_min %.9g", it,
                     metric(m, "ratio_min", it));
        cr_assert_eq(metric(m, "ratio_max", it), 1.0);
        cr_assert_eq(metric(m, "units", it), 18.0); /* 6 samples x 3 trained steps */
    }
    free(m);
    /* real updates, with and without CFG rows: the first minibatch of each iteration is exact,
       and later minibatches do move (so the check can fail) */
    const char *upd[] = {"train.lr=0.01", "eval.every=0", "train.iterations=3"};
    const char *cfg[] = {"train.lr=0.01", "eval.every=0", "train.iterations=3",
                         "sampler.guidance=2.0"};
    const char *names[] = {"upd", "cfg"};
    for (int v = 0; v < 2; ++v) {
        cr_assert_eq(run(names[v], v ? cfg : upd, v ? 4 : 3, 0, &res), GV_OK, "%s", gv_last_error());
        m = slurp_run(names[v], "metrics.jsonl");
        int moved = 0;
        for (int it = 0; it < 3; ++it) {
            cr_assert_eq(metric(m, "ratio_first_min", it), 1.0, "%s iteration %d: %.9g", names[v],
                         it, metric(m, "ratio_first_min", it));
            cr_assert_eq(metric(m, "ratio_first_max", it), 1.0);
            moved |= metric(m, "ratio_max", it) != 1.0 || metric(m, "ratio_min", it) != 1.0;
        }
        cr_assert(moved, "%s: no minibatch after an update changed the ratio", names[v]);
        free(m);
    }
    remove_tree();
}

Test(grpo, resume_is_bit_identical) {
    write_models();
    gv_grpo_result res;
    cr_assert_eq(run("straight", NULL, 0, 0, &res), GV_OK, "%s", gv_last_error());
    cr_assert(res.finished);
    cr_assert_eq(run("split", NULL, 0, 2, &res), GV_OK, "%s", gv_last_error());
    cr_assert(!res.finished);
    cr_assert_eq(res.iteration, 2);
    cr_assert_eq(run("split", NULL, 0, 0, &res), GV_OK, "%s", gv_last_error());
    cr_assert(res.resumed && res.finished);
    cr_assert_eq(res.iteration, 4);
    char a[17], b[17];
    last_hash("straight", a);
    last_hash("split", b);
    cr_assert_str_eq(a, b);
    char *ma = slurp_run("straight", "metrics.jsonl"), *mb = slurp_run("split", "metrics.jsonl");
    cr_assert_eq(count(ma, "\n"), 4 + 3, "4 iterations + evals at 0, 2, 4:\n%s", ma);
    strip_timing(ma);
    strip_timing(mb);
    cr_assert_str_eq(ma, mb);
    free(ma);
    free(mb);
    /* checkpoints: iter-2, iter-4, best.h5 */
    char *x = slurp_run("split", "config.yaml");
    free(x);
    char p[1024];
    snprintf(p, sizeof p, "%s/split/iter-2.h5", tmpdir);
    cr_assert(gv_rundir_exists(p));
    snprintf(p, sizeof p, "%s/split/iter-4.h5", tmpdir);
    cr_assert(gv_rundir_exists(p));
    snprintf(p, sizeof p, "%s/split/best.h5", tmpdir);
    cr_assert(gv_rundir_exists(p));
    /* a changed config is refused, naming the key */
    const char *changed[] = {"train.lr=0.5"};
    cr_assert_eq(run("split", changed, 1, 0, &res), GV_ERR_CONFIG);
    cr_assert(strstr(gv_last_error(), "train.lr"), "%s", gv_last_error());
    remove_tree();
}

Test(grpo, ink_reward_rises) {
    write_models();
    gv_grpo_result res;
    const char *sets[] = {"train.lr=0.01", "train.iterations=6", "eval.every=0",
                          "train.ema.decay=0", "group.prompts_per_iteration=4",
                          "train.minibatch=12", "eval.seeds=1", "algorithm.overrides.kl.beta=0"};
    cr_assert_eq(run("ink", sets, 8, 0, &res), GV_OK, "%s", gv_last_error());
    char *m = slurp_run("ink", "metrics.jsonl");
    /* eval records: iteration 0 (base) and 6 (end); "ink" is the second eval reward */
    const double before = metric_in(m, "ink", 0, 1), after = metric_in(m, "ink", 1, 1);
    cr_assert(isfinite(before) && isfinite(after));
    cr_assert_gt(after, before + 0.01, "eval ink %.5f -> %.5f\n%s", before, after, m);
    free(m);
    remove_tree();
}

Test(grpo, nonfinite_guard_stops_and_keeps_last) {
    write_models();
    setenv("GROVE_TEST_GRPO_NAN_FROM_ITER", "2", 1);
    gv_grpo_result res;
    const char *sets[] = {"train.max_skips=2", "eval.every=0", "train.minibatch=3"};
    cr_assert_eq(run("nan", sets, 3, 0, &res), GV_ERR_NUMERIC);
    cr_assert(strstr(gv_last_error(), "2 consecutive"), "%s", gv_last_error());
    char *m = slurp_run("nan", "metrics.jsonl");
    cr_assert_eq(metric(m, "skipped", 0), 0.0);
    cr_assert_eq(metric(m, "skipped", 2), 2.0, "%s", m); /* iteration index 2: both minibatches */
    free(m);
    char path[1024];
    snprintf(path, sizeof path, "%s/nan/last.h5", tmpdir);
    gv_ckpt_reader *r = NULL;
    cr_assert_eq(gv_ckpt_open(path, &r), GV_OK);
    int64_t it = 0;
    cr_assert_eq(gv_ckpt_get_i64(r, GV_CKPT_STATE, "iteration", &it), GV_OK);
    gv_ckpt_close(r);
    cr_assert_eq(it, 2);
    gv_image_model mm; /* loads: every tensor present and the model hash matches */
    cr_assert_eq(gv_image_model_load(path, be(), 0, &mm), GV_OK, "%s", gv_last_error());
    float *h = malloc((size_t)mm.params.total * sizeof(float));
    cr_assert_eq(be()->copy_to_host(h, mm.params.values, (size_t)mm.params.total * 4), GV_OK);
    for (int64_t i = 0; i < mm.params.total; ++i) cr_assert(isfinite(h[i]));
    free(h);
    gv_image_model_free(&mm);
    unsetenv("GROVE_TEST_GRPO_NAN_FROM_ITER");
    remove_tree();
}

Test(grpo, dry_run_counts) {
    write_models();
    gv_run_config cfg;
    load_cfg(&cfg, "dry", NULL, 0);
    gv_grpo_result res;
    gv_grpo_options opt = {.backend = be(), .dry_run = 1, .result = &res};
    cr_assert_eq(gv_grpo_run(&cfg, &opt), GV_OK, "%s", gv_last_error());
    gv_run_config_free(&cfg);
    const gv_grpo_plan *p = &res.plan;
    /* hand count: P 2, G 3 -> 6 chains; N 4 -> 30 nodes, 24 edges, 18 SDE edges, T = 3 trained
       steps -> 18 units; minibatch 2 roots -> 3 minibatches of 6 units = chunks of 4 + 2 (mb 4),
       each with a reference forward (beta 0.04): 3 x 2 x 2 = 12 training forwards, 36 NFE;
       rollout: 4 steps x ceil(6/4) = 8 forwards, 24 NFE */
    cr_assert_eq(p->samples, 6);
    cr_assert_eq(p->nodes, 30);
    cr_assert_eq(p->edges, 24);
    cr_assert_eq(p->sde_edges, 18);
    cr_assert_eq(p->trained_steps, 3);
    cr_assert_eq(p->trained_units, 18);
    cr_assert_eq(p->minibatches, 3);
    cr_assert_eq(p->forwards_train, 12);
    cr_assert_eq(p->nfe_train, 36);
    cr_assert_eq(p->forwards_rollout, 8);
    cr_assert_eq(p->nfe_rollout, 24);
    cr_assert_gt(p->param_count, 0);
    cr_assert_gt(p->activation_bytes, 0);
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/dry", tmpdir);
    cr_assert(!gv_rundir_exists(dir), "--dry-run created the run directory");
    remove_tree();
}

/* rollouts.h5: the stored log-probs recompute from the stored x_i, x_{i+1}, μ and std with the
   ALGORITHMS.md §2 formula (in double), μ recomputes from x_i and v, dump.keep rotates. */
Test(grpo, rollouts_dump_recomputes_logp) {
    write_models();
    gv_grpo_result res;
    const char *sets[] = {"dump.every=1", "dump.keep=1", "train.iterations=2", "eval.every=0",
                          "train.lr=0.01"};
    cr_assert_eq(run("dump", sets, 5, 0, &res), GV_OK, "%s", gv_last_error());
    char path[1024];
    snprintf(path, sizeof path, "%s/dump/rollouts-0.h5", tmpdir);
    cr_assert(!gv_rundir_exists(path), "dump.keep=1 left rollouts-0.h5");
    snprintf(path, sizeof path, "%s/dump/rollouts-1.h5", tmpdir);
    cr_assert(gv_rundir_exists(path));
    gv_ckpt_reader *r = NULL;
    cr_assert_eq(gv_ckpt_open(path, &r), GV_OK, "%s", gv_last_error());
    int64_t it, S, K, D, N, G, R, kind;
    cr_assert_eq(gv_ckpt_get_i64(r, GV_CKPT_STATE, "iteration", &it), GV_OK);
    cr_assert_eq(gv_ckpt_get_i64(r, GV_CKPT_STATE, "samples", &S), GV_OK);
    cr_assert_eq(gv_ckpt_get_i64(r, GV_CKPT_STATE, "stored_steps", &K), GV_OK);
    cr_assert_eq(gv_ckpt_get_i64(r, GV_CKPT_STATE, "elements", &D), GV_OK);
    cr_assert_eq(gv_ckpt_get_i64(r, GV_CKPT_STATE, "steps", &N), GV_OK);
    cr_assert_eq(gv_ckpt_get_i64(r, GV_CKPT_STATE, "group_size", &G), GV_OK);
    cr_assert_eq(gv_ckpt_get_i64(r, GV_CKPT_STATE, "n_rewards", &R), GV_OK);
    cr_assert_eq(gv_ckpt_get_i64(r, GV_CKPT_STATE, "logp_kind", &kind), GV_OK);
    cr_assert_eq(it, 1);
    cr_assert_eq(S, 6);
    cr_assert_eq(N, 4);
    cr_assert_eq(K, 3); /* SDE steps 0..N-2 */
    cr_assert_eq(G, 3);
    cr_assert_eq(R, 1);
    cr_assert_eq(kind, GV_LOGP_GAUSSIAN);
    const int64_t skd[] = {S, K, D}, sk[] = {S, K}, k1[] = {K};
    float *x = read_steps(r, "x", 3, skd), *xn = read_steps(r, "x_next", 3, skd);
    float *v = read_steps(r, "v", 3, skd), *mu = read_steps(r, "mu", 3, skd);
    float *lp = read_steps(r, "logp_old", 2, sk), *sd = read_steps(r, "std", 1, k1);
    float *cx = read_steps(r, "cx", 1, k1), *cv = read_steps(r, "cv", 1, k1);
    float *sig = read_steps(r, "sigma", 1, k1), *sig1 = read_steps(r, "sigma_next", 1, k1);
    int checked = 0;
    for (int64_t s = 0; s < S; ++s)
        for (int64_t i = 0; i < K; ++i) {
            cr_assert_gt(sd[i], 0.0f);
            cr_assert_gt(sig[i], sig1[i]);
            if (i + 1 < K) cr_assert_eq(sig1[i], sig[i + 1]);
            const int64_t o = (s * K + i) * D;
            /* the chain: x_next of step i is x of step i + 1 */
            if (i + 1 < K) cr_assert_eq(memcmp(xn + o, x + o + D, (size_t)D * sizeof(float)), 0);
            double acc = 0.0, mu_err = 0.0;
            const double st = sd[i];
            for (int64_t d = 0; d < D; ++d) {
                const double m = (double)cx[i] * x[o + d] + (double)cv[i] * v[o + d];
                mu_err = fmax(mu_err, fabs(m - mu[o + d]));
                const double r2 = (double)xn[o + d] - mu[o + d];
                acc += -r2 * r2 / (2.0 * st * st) - log(st) - 0.5 * log(2.0 * 3.14159265358979323846);
            }
            const double logp = acc / (double)D;
            cr_assert_lt(mu_err, 1e-5, "sample %lld step %lld: mu differs by %g", (long long)s,
                         (long long)i, mu_err);
            cr_assert_lt(fabs(logp - lp[s * K + i]), 1e-5, "sample %lld step %lld: logp %.9g "
                         "stored %.9g", (long long)s, (long long)i, logp, lp[s * K + i]);
            checked++;
        }
    cr_assert_eq(checked, 18);
    /* per sample: prompt slot = group, member, valid, rewards, advantage */
    int64_t slot[6], member[6], valid[6], prompt[6];
    float adv[6], rew[6];
    cr_assert_eq(gv_ckpt_get_i64s(r, GV_CKPT_STATE, "slot", slot, 6), GV_OK);
    cr_assert_eq(gv_ckpt_get_i64s(r, GV_CKPT_STATE, "member", member, 6), GV_OK);
    cr_assert_eq(gv_ckpt_get_i64s(r, GV_CKPT_STATE, "valid", valid, 6), GV_OK);
    cr_assert_eq(gv_ckpt_get_i64s(r, GV_CKPT_STATE, "prompt", prompt, 6), GV_OK);
    cr_assert_eq(gv_ckpt_get_f32s(r, GV_CKPT_STATE, "advantage", adv, 6), GV_OK);
    cr_assert_eq(gv_ckpt_get_f32s(r, GV_CKPT_STATE, "rewards", rew, 6), GV_OK);
    for (int s = 0; s < 6; ++s) {
        cr_assert_eq(slot[s], s / 3);
        cr_assert_eq(member[s], s % 3);
        cr_assert(valid[s] == 0 || valid[s] == 1);
        cr_assert_geq(prompt[s], 0);
        cr_assert_eq(prompt[s], prompt[slot[s] * 3]);
        cr_assert(isfinite(adv[s]) && isfinite(rew[s]));
    }
    for (int p = 0; p < 2; ++p) { /* group-normalised advantages sum to ~0 per group */
        double sum = 0.0;
        for (int g = 0; g < 3; ++g) sum += adv[p * 3 + g];
        cr_assert_lt(fabs(sum), 1e-3, "group %d advantages sum to %g", p, sum);
    }
    char *yaml = NULL;
    cr_assert_eq(gv_ckpt_get_config(r, &yaml), GV_OK);
    cr_assert(strstr(yaml, "every: 1"), "%s", yaml);
    free(yaml);
    gv_ckpt_close(r);
    float *all[] = {x, xn, v, mu, lp, sd, cx, cv, sig, sig1};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i) free(all[i]);
    remove_tree();
}
