/* grove sudoku --ckpt FILE [--blanks B] [-n N] [--steps S] [--seed S] [--tau-r T] [--batch B]
 *              [--data FILE] [--raw] [--per-puzzle FILE] [--device KIND]
 * Solve-rate evaluation of a masked-diffusion model (kind mdt) on held-out Sudoku puzzles with the
 * hand-made default schedule of ALGORITHMS.md §10 (grove/mdm.h). Takes the first n test puzzles at
 * exactly B blanks (a test level of the model's dataset) and prints ONE JSON line:
 *   {"checkpoint", "dataset", "blanks", "n", "steps", "seed", "tau_r" (null: the schedule's),
 *    "solved", "solve_rate", "solve_rate_ci95": [lo, hi] (Wilson), "mean_reward", "cell_accuracy",
 *    "nfe", "seconds"}
 * Defaults: B = the middle test level, n = every puzzle of that level, steps = B (one commit per
 * blank), seed 0, batch 64, EMA weights, the dataset file under the grove root. --tau-r T fixes the
 * Gumbel scale of the commit order at every step (the trainer's sampler.tau_r: 0 = greedy order).
 * --per-puzzle FILE also writes one CSV line per puzzle (test_row, solved, reward), the format of
 * the trainer's <run dir>/eval-<iteration>.csv, for paired before/after comparisons
 * (bench/mdm/paired_gain.py). */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "grove/mdm.h"
#include "grove/paths.h"
#include "grove/sudoku.h"

typedef struct sudoku_args {
    const char *ckpt, *data, *device, *per_puzzle;
    long blanks, n, steps, seed, batch;
    double tau_r; /* < 0: the schedule's default */
    int raw;
} sudoku_args;

static gv_status sudoku_parse(const gv_command *cmd, const gv_cli_args *args, sudoku_args *a) {
    *a = (sudoku_args){.batch = 64, .tau_r = -1.0};
    a->ckpt = gv_cli_option_value(cmd, args, "ckpt");
    a->data = gv_cli_option_value(cmd, args, "data");
    a->device = gv_cli_option_value(cmd, args, "device");
    a->per_puzzle = gv_cli_option_value(cmd, args, "per-puzzle");
    a->raw = gv_cli_option_value(cmd, args, "raw") != NULL;
    if (!a->ckpt) return GV_ERROR(GV_ERR_INVALID, "--ckpt is required");
    const char *v;
    if ((v = gv_cli_option_value(cmd, args, "blanks"))) GV_TRY(gv_cli_parse_long("blanks", v, 1, 81, &a->blanks));
    if ((v = gv_cli_option_value(cmd, args, "n"))) GV_TRY(gv_cli_parse_long("n", v, 1, 65536, &a->n));
    if ((v = gv_cli_option_value(cmd, args, "steps")))
        GV_TRY(gv_cli_parse_long("steps", v, 1, GV_MASKED_MAX_STEPS, &a->steps));
    if ((v = gv_cli_option_value(cmd, args, "seed"))) GV_TRY(gv_cli_parse_long("seed", v, 0, 4294967295L, &a->seed));
    if ((v = gv_cli_option_value(cmd, args, "tau-r"))) GV_TRY(gv_cli_parse_double("tau-r", v, 0.0, 1e6, &a->tau_r));
    if ((v = gv_cli_option_value(cmd, args, "batch"))) GV_TRY(gv_cli_parse_long("batch", v, 1, 4096, &a->batch));
    return GV_OK;
}

static gv_status sudoku_run(sudoku_args *a, gv_ctx *c, gv_image_model *m, gv_dataset *ds,
                            gv_mdm_runner *r, gv_sudoku_eval_result *res) {
    GV_TRY(gv_image_model_load(a->ckpt, c->backend, !a->raw, m));
    if (m->kind != GV_MODEL_MDT)
        return GV_ERROR(GV_ERR_INVALID, "%s: a %s, not a masked-diffusion model (mdt)", a->ckpt,
                        gv_model_kind_name(m->kind));
    gv_dataset_kind kind;
    GV_TRY(gv_dataset_kind_by_name(m->dataset, &kind));
    char path[4096];
    if (a->data) snprintf(path, sizeof path, "%s", a->data);
    else GV_TRY(gv_root_path(gv_dataset_kind_get(kind)->default_path, path, sizeof path));
    GV_TRY(gv_dataset_ensure(kind, path, NULL, NULL));
    GV_TRY(gv_dataset_load_as(path, kind, ds));
    const gv_sudoku_plan *pl = gv_sudoku_plan_of(kind);
    if (!a->blanks) a->blanks = pl->test_blanks_first + (pl->test_levels / 2) * pl->test_blanks_step;
    int64_t first, count;
    GV_TRY(gv_sudoku_test_level(ds, (int)a->blanks, &first, &count));
    if (!a->n || a->n > count) a->n = count;
    int64_t *rows = malloc((size_t)a->n * sizeof *rows);
    if (!rows) return GV_ERROR(GV_ERR_OOM, "grove sudoku: out of memory");
    for (long i = 0; i < a->n; ++i) rows[i] = first + i;
    const int batch = (int)(a->batch < a->n ? a->batch : a->n);
    uint8_t *solved = calloc((size_t)a->n, 1);
    float *reward = calloc((size_t)a->n, sizeof *reward);
    gv_status s = solved && reward ? gv_mdm_runner_init(r, m, c, batch)
                                   : GV_ERROR(GV_ERR_OOM, "grove sudoku: out of memory");
    gv_masked_knobs fixed = {.fixed_mask = 1u << GV_KNOB_TAU_R, .fixed[GV_KNOB_TAU_R] = (float)a->tau_r};
    gv_sudoku_eval_options o = {.steps = (int)a->steps, .batch = batch, .seed = (uint32_t)a->seed,
                                .knobs = a->tau_r >= 0.0 ? &fixed : NULL,
                                .solved_each = solved, .reward_each = reward};
    if (s == GV_OK) s = gv_sudoku_evaluate(r, &ds->test, rows, a->n, &o, res);
    if (s == GV_OK && a->per_puzzle) {
        FILE *f = fopen(a->per_puzzle, "w");
        if (!f) s = GV_ERROR(GV_ERR_IO, "%s: cannot write", a->per_puzzle);
        for (long i = 0; f && i < a->n; ++i) {
            if (i == 0) fprintf(f, "test_row,solved,reward\n");
            fprintf(f, "%lld,%d,%.6f\n", (long long)rows[i], solved[i], (double)reward[i]);
        }
        if (f && (ferror(f) | fclose(f))) s = GV_ERROR(GV_ERR_IO, "%s: write failed", a->per_puzzle);
    }
    free(solved);
    free(reward);
    free(rows);
    return s;
}

int gv_cmd_sudoku(const gv_command *cmd, const gv_cli_args *args) {
    sudoku_args a;
    if (sudoku_parse(cmd, args, &a) != GV_OK) {
        fprintf(stderr, "grove: %s: %s\n", cmd->name, gv_last_error());
        return GV_EXIT_USAGE;
    }
    gv_ctx *c = NULL;
    gv_image_model m = {0};
    gv_dataset ds = {0};
    gv_mdm_runner r = {0};
    gv_sudoku_eval_result res;
    gv_status s = gv_cli_open_device(a.device, 0, &c);
    if (s == GV_OK) s = sudoku_run(&a, c, &m, &ds, &r, &res);
    char tau_r[32] = "null";
    if (a.tau_r >= 0.0) snprintf(tau_r, sizeof tau_r, "%g", a.tau_r);
    if (s == GV_OK)
        printf("{\"checkpoint\": \"%s\", \"dataset\": \"%s\", \"blanks\": %ld, \"n\": %lld, "
               "\"steps\": %d, \"seed\": %ld, \"tau_r\": %s, \"solved\": %lld, \"solve_rate\": %.6f, "
               "\"solve_rate_ci95\": [%.6f, %.6f], \"mean_reward\": %.6f, \"cell_accuracy\": %.6f, "
               "\"nfe\": %lld, \"seconds\": %.3f}\n",
               m.hash, m.dataset, a.blanks, (long long)res.n, res.steps, a.seed, tau_r,
               (long long)res.solved, res.solve_rate, res.ci_lo, res.ci_hi, res.mean_reward,
               res.cell_accuracy, (long long)res.nfe, res.seconds);
    gv_mdm_runner_free(&r);
    gv_dataset_free(&ds);
    gv_image_model_free(&m);
    if (c) c->backend->ctx_destroy(c);
    return s == GV_OK ? GV_EXIT_OK : gv_cli_fail(cmd);
}
