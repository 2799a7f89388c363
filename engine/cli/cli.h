/* The CLI's internal interface: the subcommand table, option parsing and shared helpers.
 *
 * Each subcommand is a gv_command: its name, one-line summary, usage text, option table and a run
 * function.
 * engine/cli is the only place in grove that exits or decides exit codes. */
#ifndef GROVE_CLI_H
#define GROVE_CLI_H

#include <stddef.h>

#include "grove/status.h"

/* Exit codes. */
enum { GV_EXIT_OK = 0, GV_EXIT_FAILURE = 1, GV_EXIT_USAGE = 2 };

#define GV_CLI_MAX_SETS 64
#define GV_CLI_MAX_POSITIONAL 8
#define GV_CLI_MAX_OPTIONS 24

typedef struct gv_cli_option {
    const char *name;  /* long name without dashes: "ckpt"                        */
    char short_name;   /* single-dash alias ('n' for -n), 0 for none              */
    const char *arg;   /* argument placeholder ("FILE"), NULL for a flag          */
    const char *help;
} gv_cli_option;

/* Parsed command line of one subcommand. */
typedef struct gv_cli_args {
    const char *positional[GV_CLI_MAX_POSITIONAL];
    int npositional;
    const char *sets[GV_CLI_MAX_SETS]; /* "key.path=value" from --set, in order */
    int nsets;
    const char *values[GV_CLI_MAX_OPTIONS]; /* per option of the command's table; flags get "1" */
} gv_cli_args;

typedef struct gv_command {
    const char *name;
    const char *summary;
    const char *usage;       /* "grove config FILE [--set key=value]..." */
    const char *details;     /* extra help text, may be NULL             */
    gv_cli_option options[GV_CLI_MAX_OPTIONS]; /* terminated by a NULL name */
    int takes_set;           /* accepts --set                            */
    int min_positional, max_positional;
    int (*run)(const struct gv_command *cmd, const gv_cli_args *args);
} gv_command;

/* The table (commands.c). */
extern const gv_command gv_commands[];
extern const int gv_command_count;

int gv_cli_main(int argc, char **argv);

/* Value of option `name` of `cmd` in `args`, or NULL when not given. */
const char *gv_cli_option_value(const gv_command *cmd, const gv_cli_args *args, const char *name);

/* Print "grove: <cmd>: <last error>" to stderr and return GV_EXIT_FAILURE. */
int gv_cli_fail(const gv_command *cmd);
/* gv_cli_fail for a command that may run as one rank of several (dist.h): one process prints
   and finalizes; an error every rank agrees on (a parameter-hash mismatch) is printed once, by
   rank 0, and the ranks leave cleanly; any other error is printed as `rank k: <cause>` and the
   job is aborted, so no rank waits forever. */
int gv_cli_fail_ranks(const gv_command *cmd);

/* Register the backends present: the CPU backend always, the CUDA module when `want_cuda` and it
   loads. Returns the message explaining why CUDA is absent in `cuda_note` (may be ""). */
void gv_cli_register_backends(int want_cuda, char *cuda_note, size_t note_len);
struct gv_backend;
/* The backend for a training command's device ("cpu", "cuda" or "auto": CUDA when it loads),
   registering the backends first when none are; errors name --device and why CUDA is absent. */
gv_status gv_cli_find_backend(const char *kind, const struct gv_backend **out);

/* Subcommand entry points. */
int gv_cmd_version(const gv_command *cmd, const gv_cli_args *args);
int gv_cmd_config(const gv_command *cmd, const gv_cli_args *args);
int gv_cmd_data(const gv_command *cmd, const gv_cli_args *args);
int gv_cmd_pretrain(const gv_command *cmd, const gv_cli_args *args);
int gv_cmd_train(const gv_command *cmd, const gv_cli_args *args);
/* grove train for a masked-diffusion model (cmd_train_mdm.c; gv_cmd_train dispatches to it). */
int gv_cmd_train_mdm(const gv_command *cmd, const gv_cli_args *args);
int gv_cmd_sample(const gv_command *cmd, const gv_cli_args *args);
int gv_cmd_eval(const gv_command *cmd, const gv_cli_args *args);
int gv_cmd_gallery(const gv_command *cmd, const gv_cli_args *args);
int gv_cmd_reward_check(const gv_command *cmd, const gv_cli_args *args);
int gv_cmd_sudoku(const gv_command *cmd, const gv_cli_args *args);

/* Helpers of the model commands (cmd_sample.c). Numbers: "--<opt> <text>: expected ..." errors. */
gv_status gv_cli_parse_long(const char *opt, const char *text, long lo, long hi, long *out);
gv_status gv_cli_parse_double(const char *opt, const char *text, double lo, double hi,
                              double *out);
struct gv_ctx;
/* Register the backends (once) and create a context on `device` ("cpu" | "cuda" | "auto"; NULL =
   cpu; auto falls back to the CPU), with `threads` as gv_ctx_options.threads. */
gv_status gv_cli_open_device(const char *device, int threads, struct gv_ctx **out);

#endif
