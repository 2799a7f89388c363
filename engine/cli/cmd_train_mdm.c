/* `grove train CONFIG` for a masked-diffusion model (grove/mdm_train.h): reached from gv_cmd_train
 * when CONFIG's model.checkpoint is an mdt. Options as `grove train`: --set, --stop-after, --force,
 * --device, --dry-run (the plan of gv_mdm_train_plan: nothing is written). SIGINT stops at the
 * next iteration boundary. Prints the run directory, the iteration reached and the solve rates of this call.
 * Under `mpirun -np R` every rank runs this (mdm_train.h, data parallel): rank 0 alone prints; a
 * failing rank prints `rank k: <cause>` and aborts the job (gv_cli_fail_ranks); gv_cmd_train has
 * joined the job (gv_dist_init) and leaves it after a success. */
#include <math.h>
#include <signal.h>
#include <stdio.h>

#include "cli.h"
#include "grove/dist.h"
#include "grove/mdm_train.h"

static volatile sig_atomic_t stop_requested = 0;

static void on_sigint(int sig) {
    (void)sig;
    stop_requested = 1;
    signal(SIGINT, SIG_DFL);
}

static void print_plan(const char *config, const gv_mdm_train_plan *p) {
    printf("grove train --dry-run: %s (masked-diffusion model)\n", config);
    printf("  puzzles/iteration %d, group size %d -> %d samples of %d tokens (vocabulary %d); "
           "%lld training puzzles\n", p->puzzles, p->group, p->samples, p->T, p->vocab,
           (long long)p->train_puzzles);
    printf("  sampler %d steps%s; estimator views per sequence %d; %d inner epochs x minibatch %d "
           "-> %d AdamW steps per iteration; run.shards %d\n", p->steps,
           p->co_grpo ? " (Co-GRPO: learned schedule)" : "", p->views, p->inner_epochs, p->minibatch,
           p->optimizer_steps, p->shards);
    printf("  sequence forwards per iteration: rollout %lld, logp_old %lld, reference %lld, "
           "training %lld (+ backward); per eval %lld\n", (long long)p->rollout_rows,
           (long long)p->logp_old_rows, (long long)p->ref_rows, (long long)p->train_rows,
           (long long)p->eval_rows);
    printf("  memory: %lld parameters, %.1f MiB parameter buffers, %.1f MiB stored views\n",
           (long long)p->params, p->param_mib, p->views_mib);
}

int gv_cmd_train_mdm(const gv_command *cmd, const gv_cli_args *args) {
    const int lead = gv_dist_rank() == 0;
    gv_mdm_train_result res;
    gv_mdm_train_options opt = {.force = gv_cli_option_value(cmd, args, "force") != NULL,
                                .dry_run = gv_cli_option_value(cmd, args, "dry-run") != NULL,
                                .progress = lead ? stderr : NULL, .stop_flag = &stop_requested,
                                .result = &res};
    const char *stop = gv_cli_option_value(cmd, args, "stop-after");
    if (stop) {
        long n = 0;
        if (gv_cli_parse_long("stop-after", stop, 1, 2147483647L, &n) != GV_OK)
            return gv_cli_fail_ranks(cmd);
        opt.stop_after = n;
    }
    gv_mdm_train_config cfg;
    if (gv_mdm_train_config_load(args->positional[0], args->sets, args->nsets, &cfg) != GV_OK)
        return gv_cli_fail_ranks(cmd);
    const char *device = gv_cli_option_value(cmd, args, "device");
    const char *kind = device ? device : cfg.run.device == 1 ? "cuda" : "cpu";
    if (gv_cli_find_backend(kind, &opt.backend) != GV_OK) {
        gv_mdm_train_config_free(&cfg);
        return gv_cli_fail_ranks(cmd);
    }
    if (!opt.dry_run) signal(SIGINT, on_sigint);
    gv_status s = gv_mdm_train_run(&cfg, &opt);
    signal(SIGINT, SIG_DFL);
    gv_mdm_train_config_free(&cfg);
    if (s != GV_OK) return gv_cli_fail_ranks(cmd);
    if (!lead) return GV_EXIT_OK;
    if (opt.dry_run) {
        print_plan(args->positional[0], &res.plan);
        return GV_EXIT_OK;
    }
    if (gv_dist_size() > 1)
        printf("grove train: %d ranks, %.2f s in collectives (rank 0)\n", gv_dist_size(),
               gv_dist_comm_seconds());
    printf("grove train: run directory %s (iteration %lld%s)\n", res.run_dir, (long long)res.iteration,
           res.resumed ? ", resumed" : "");
    if (!isnan(res.first_solve_rate) && !isnan(res.last_solve_rate))
        printf("grove train: held-out solve rate %.4f -> %.4f\n", res.first_solve_rate, res.last_solve_rate);
    if (!res.finished)
        printf("grove train: stopped before the last iteration; run the same command to continue\n");
    return GV_EXIT_OK;
}
