/* grove pretrain CONFIG [--set k=v]... [--stop-after N] [--force] [--device KIND]: train a base
 * image model (pretrain.h) into its run directory and export its EMA weights. Prints where the
 * run directory and the export are, and the final EMA test accuracy of a classifier.
 *
 * Under `mpirun -np R` every rank runs this command (dist.h): rank 0 alone prints and writes; a
 * rank that fails prints `rank k: <cause>` and aborts the job, so no rank waits forever. An error
 * every rank agrees on (a parameter-hash mismatch) is printed once, by rank 0, and the ranks leave
 * cleanly. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "grove/backend.h"
#include "grove/dist.h"
#include "grove/pretrain.h"

static int run_pretrain(const gv_command *cmd, const gv_cli_args *args);

int gv_cmd_pretrain(const gv_command *cmd, const gv_cli_args *args) {
    if (gv_dist_init() != GV_OK) return gv_cli_fail(cmd);
    int code = run_pretrain(cmd, args);
    if (code == GV_EXIT_OK) gv_dist_finalize();
    return code;
}

static int run_pretrain(const gv_command *cmd, const gv_cli_args *args) {
    const char *stop = gv_cli_option_value(cmd, args, "stop-after");
    const char *device = gv_cli_option_value(cmd, args, "device");
    const int lead = gv_dist_rank() == 0;
    gv_pretrain_options opt = {.force = gv_cli_option_value(cmd, args, "force") != NULL,
                               .progress = lead ? stderr : NULL};
    if (stop) {
        char *end = NULL;
        errno = 0;
        long long n = strtoll(stop, &end, 10);
        if (errno || end == stop || *end || n < 1) {
            GV_ERROR(GV_ERR_INVALID, "--stop-after %s: expected a positive integer", stop);
            return gv_cli_fail_ranks(cmd);
        }
        opt.stop_after = n;
    }
    gv_pretrain_config cfg;
    if (gv_pretrain_config_load(args->positional[0], args->sets, args->nsets, &cfg, NULL) != GV_OK)
        return gv_cli_fail_ranks(cmd);
    const char *kind = device ? device : (cfg.run.device == 1 ? "cuda" : "cpu");
    if (gv_cli_find_backend(kind, &opt.backend) != GV_OK) {
        gv_pretrain_config_free(&cfg);
        return gv_cli_fail_ranks(cmd);
    }
    gv_pretrain_result res;
    opt.result = &res;
    gv_status s = gv_pretrain_run(&cfg, &opt);
    const int cfg_kind = cfg.model.kind;
    gv_pretrain_config_free(&cfg);
    if (s != GV_OK) return gv_cli_fail_ranks(cmd);
    if (!lead) return GV_EXIT_OK;
    if (gv_dist_size() > 1)
        printf("grove pretrain: %d ranks, %.2f s in collectives (rank 0)\n", gv_dist_size(),
               gv_dist_comm_seconds());
    printf("grove pretrain: run directory %s (step %lld%s)\n", res.run_dir, (long long)res.step,
           res.resumed ? ", resumed" : "");
    if (!res.finished) {
        printf("grove pretrain: stopped before the last step; run the same command to continue\n");
        return GV_EXIT_OK;
    }
    if (!isnan(res.eval_accuracy))
        printf("grove pretrain: EMA test %s %.2f%%\n",
               cfg_kind == GV_MODEL_MDT ? "solve rate (eval.puzzles at eval.blanks)" : "accuracy",
               100.0 * res.eval_accuracy);
    if (!isnan(res.eval_loss) && isnan(res.eval_accuracy))
        printf("grove pretrain: EMA test flow loss %.5f\n", (double)res.eval_loss);
    if (res.export_path[0]) printf("grove pretrain: exported %s\n", res.export_path);
    return GV_EXIT_OK;
}
