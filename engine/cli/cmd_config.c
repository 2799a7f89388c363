/* grove config FILE [--set k=v]...: print the fully resolved task config — every key, defaults
 * included — with the origin of each value (default / preset / config / override / --set). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "grove/config.h"
#include "grove/run_config.h"

int gv_cmd_config(const gv_command *cmd, const gv_cli_args *args) {
    const char *path = args->positional[0];
    gv_run_config cfg;
    gv_config_result res;
    memset(&res, 0, sizeof res);
    if (gv_run_config_load(path, args->sets, args->nsets, NULL, &cfg, &res) != GV_OK) {
        gv_config_result_free(&res);
        return gv_cli_fail(cmd);
    }
    char *text = NULL;
    gv_status s = gv_run_config_dump(&cfg, &res, &text);
    if (s == GV_OK) fputs(text, stdout);
    free(text);
    gv_run_config_free(&cfg);
    gv_config_result_free(&res);
    return s == GV_OK ? GV_EXIT_OK : gv_cli_fail(cmd);
}
