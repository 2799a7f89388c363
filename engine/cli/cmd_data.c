/* grove data mnist|fashion|sudoku4|sudoku9 [--out PATH] [--from DIR]: convert a dataset source (or,
 * for Sudoku, generate the puzzles) into grove's HDF5 layout (data/README.md). Always rewrites the
 * output, atomically. */
#include <stdio.h>

#include "cli.h"
#include "grove/dataset.h"
#include "grove/paths.h"

int gv_cmd_data(const gv_command *cmd, const gv_cli_args *args) {
    gv_dataset_kind kind;
    if (gv_dataset_kind_by_name(args->positional[0], &kind) != GV_OK) return gv_cli_fail(cmd);
    const gv_dataset_kind_info *info = gv_dataset_kind_get(kind);
    const char *out = gv_cli_option_value(cmd, args, "out");
    const char *from = gv_cli_option_value(cmd, args, "from");
    char out_buf[4096], from_buf[4096];
    if (!out) {
        if (gv_root_path(info->default_path, out_buf, sizeof out_buf) != GV_OK)
            return gv_cli_fail(cmd);
        out = out_buf;
    }
    if (!from && *info->default_source) {
        if (gv_root_path(info->default_source, from_buf, sizeof from_buf) != GV_OK)
            return gv_cli_fail(cmd);
        from = from_buf;
    }
    gv_status s = gv_dataset_prepare(kind, from, out);
    if (s != GV_OK) return gv_cli_fail(cmd);
    printf("grove data: wrote %s\n", out);
    return GV_EXIT_OK;
}
