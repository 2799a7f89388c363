/* grove train CONFIG [--set k=v]... [--stop-after N] [--force] [--dry-run] [--device KIND]:
 * Flow-GRPO alignment into runs/<name>/ (grpo.h); a config whose model.checkpoint is an mdt goes to
 * the masked-diffusion trainer (cmd_train_mdm.c). SIGINT stops at the next iteration boundary
 * (last.h5 is then the state after the last completed iteration; a second SIGINT is the default
 * action). --dry-run prints the plan — prompts, group size, the topology's nodes, leaves, edges,
 * trained edges per leaf, rollout / training (parent reuse) / completion forwards, NFE and
 * fixed-shape forwards per iteration, parameter / latent / activation memory — and exits 0 (also
 * for a config `grove train` refuses to run yet: the counts print, memory is not measured).
 * Under `mpirun -np R` every rank runs this command (grpo.h, data parallel): rank 0 alone prints
 * and writes; a failing rank prints `rank k: <cause>` and aborts the job (gv_cli_fail_ranks). */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "grove/backend.h"
#include "grove/dist.h"
#include "grove/grpo.h"
#include "grove/mdm_train.h"

static volatile sig_atomic_t stop_requested = 0;

static void on_sigint(int sig) {
    (void)sig;
    stop_requested = 1;
    signal(SIGINT, SIG_DFL); /* a second Ctrl-C ends the process */
}

static void print_plan(const gv_run_config *cfg, const gv_grpo_plan *p) {
    printf("grove train --dry-run: %s\n", cfg->run.name);
    printf("  prompts/iteration %d, group size %d -> %d samples; N = %d steps (%d stochastic, "
           "%d trained)\n", p->prompts, p->group_size, p->samples, p->steps, p->sde_steps,
           p->trained_steps);
    const gv_window_section *w = &cfg->sampler.window;
    const int positions = p->steps - p->window_size; /* l in 0..N−1−w (ALGORITHMS.md §7) */
    if (w->kind == GV_WINDOW_FIXED)
        printf("  SDE window fixed: steps [%d, %d) SDE and trained, the other steps ODE\n",
               w->start, w->start + w->size);
    else if (w->kind == GV_WINDOW_RANDOM)
        printf("  SDE window random: w = %d, l uniform in 0..%d each iteration, the other steps "
               "ODE\n", w->size, positions - 1);
    else if (w->kind == GV_WINDOW_PROGRESSIVE)
        printf("  SDE window progressive: w = %d, l = (%d + floor(iteration / %d)) mod %d, the "
               "other steps ODE\n", w->size, w->start, w->every, positions);
    if (p->topology == GV_TOPOLOGY_CHAINS)
        printf("  trained steps per sample: %d of %d SDE (%s), step weight %s\n", p->trained_steps,
               p->sde_steps, cfg->train.random_fraction > 0 ? "random subset per sample"
                             : "the first ones in order",
               cfg->train.step_weight == GV_STEP_WEIGHT_NOISE_AWARE ? "noise_aware" : "uniform");
    printf("  pool: %lld nodes, %lld edges (%lld SDE); trained units <= %lld; %d minibatches x %d "
           "inner epochs\n", (long long)p->nodes, (long long)p->edges, (long long)p->sde_edges,
           (long long)p->trained_units, p->minibatches, cfg->train.inner_epochs);
    /* the topology's plan (grove/rollout_plan.h): rows, before CFG doubling */
    const double leaves = p->leaves > 0 ? (double)p->leaves : 1.0;
    printf("  topology %s: %lld roots, %lld nodes, %lld leaves; %lld transitions, %lld trainable "
           "edges, %lld trained (%.4g per leaf)\n",
           gv_topology_kind_names[p->topology], (long long)p->roots, (long long)p->nodes,
           (long long)p->leaves, (long long)p->edges, (long long)p->trainable_edges,
           (long long)p->trained_edges, p->trained_edges / leaves);
    printf("  forwards per iteration (rows): rollout %lld, training %lld with parent reuse (%lld "
           "without), completions %lld; NFE per iteration %lld\n", (long long)p->rows_rollout,
           (long long)p->rows_train, (long long)p->rows_train_no_reuse,
           (long long)p->rows_completion,
           (long long)(p->nfe_rollout + p->nfe_train + p->rows_completion));
    if (p->calibration_rounds > 0)
        printf("  DenseGRPO calibration (once, before iteration 1): %d rounds x %d chains, %lld "
               "rows (rollouts + completions)\n", p->calibration_rounds, p->calibration_samples,
               (long long)p->rows_calibration);
    printf("  micro-batch %d (%d rows per forward); train_cfg %s; KL reference forwards %s\n",
           p->micro_batch, p->rows, p->train_cfg ? "on" : "off", p->kl_forwards ? "on" : "off");
    printf("  NFE/iteration: rollout %lld, training %lld (incl. reference); forwards: rollout %lld, "
           "training %lld\n", (long long)p->nfe_rollout, (long long)p->nfe_train,
           (long long)p->forwards_rollout, (long long)p->forwards_train);
    if (p->refused[0]) {
        printf("  memory: not measured; `grove train` refuses this config: %s\n", p->refused);
        return;
    }
    printf("  memory: %lld parameters, %.1f MiB parameter buffers, %.1f MiB latents, %.1f MiB "
           "activation arenas\n", (long long)p->param_count, p->param_bytes / 1048576.0,
           p->latent_bytes / 1048576.0, p->activation_bytes / 1048576.0);
}

static int run_train(const gv_command *cmd, const gv_cli_args *args);

int gv_cmd_train(const gv_command *cmd, const gv_cli_args *args) {
    if (gv_dist_init() != GV_OK) return gv_cli_fail(cmd);
    int mdm = 0; /* a masked-diffusion model has its own trainer (mdm_train.h) */
    if (gv_train_config_is_mdm(args->positional[0], args->sets, args->nsets, &mdm) != GV_OK)
        return gv_cli_fail(cmd);
    int code = mdm ? gv_cmd_train_mdm(cmd, args) /* data parallel too (mdm_train.h) */
                   : run_train(cmd, args);
    if (code == GV_EXIT_OK) gv_dist_finalize();
    return code;
}

static int run_train(const gv_command *cmd, const gv_cli_args *args) {
    const int lead = gv_dist_rank() == 0;
    const char *stop = gv_cli_option_value(cmd, args, "stop-after");
    const char *device = gv_cli_option_value(cmd, args, "device");
    gv_grpo_result res;
    gv_grpo_options opt = {.force = gv_cli_option_value(cmd, args, "force") != NULL,
                           .dry_run = gv_cli_option_value(cmd, args, "dry-run") != NULL,
                           .progress = lead ? stderr : NULL, .stop_flag = &stop_requested,
                           .result = &res};
    if (stop) {
        long n = 0;
        if (gv_cli_parse_long("stop-after", stop, 1, 2147483647L, &n) != GV_OK)
            return gv_cli_fail_ranks(cmd);
        opt.stop_after = n;
    }
    gv_run_config cfg;
    if (gv_run_config_load(args->positional[0], args->sets, args->nsets, NULL, &cfg, NULL) != GV_OK)
        return gv_cli_fail_ranks(cmd);
    const char *kind = device ? device
                              : cfg.run.device == GV_DEVICE_CPU ? "cpu"
                              : cfg.run.device == GV_DEVICE_CUDA ? "cuda" : "auto";
    if (gv_cli_find_backend(kind, &opt.backend) != GV_OK) {
        gv_run_config_free(&cfg);
        return gv_cli_fail_ranks(cmd);
    }
    if (!opt.dry_run) signal(SIGINT, on_sigint);
    gv_status s = gv_grpo_run(&cfg, &opt);
    signal(SIGINT, SIG_DFL);
    if (s == GV_OK && opt.dry_run && lead) print_plan(&cfg, &res.plan);
    gv_run_config_free(&cfg);
    if (s != GV_OK) return gv_cli_fail_ranks(cmd);
    if (opt.dry_run || !lead) return GV_EXIT_OK;
    if (gv_dist_size() > 1)
        printf("grove train: %d ranks, %.2f s in collectives (rank 0)\n", gv_dist_size(),
               gv_dist_comm_seconds());
    printf("grove train: run directory %s (iteration %lld%s)\n", res.run_dir,
           (long long)res.iteration, res.resumed ? ", resumed" : "");
    if (!isnan(res.last_eval)) printf("grove train: last eval reward %.4f\n", res.last_eval);
    if (!res.finished)
        printf("grove train: stopped before the last iteration; run the same command to continue\n");
    return GV_EXIT_OK;
}
