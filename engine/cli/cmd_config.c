/* grove config FILE [--set k=v]...: print the fully resolved task config — every key, defaults
 * included — with the origin of each value (default / preset / config / override / --set). A config
 * whose model.checkpoint is a masked-diffusion model (mdt) is bound by the masked-diffusion
 * trainer's schema (mdm_train.h), as `grove train` does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "grove/config.h"
#include "grove/mdm_train.h"
#include "grove/run_config.h"

static gv_status dump_mdm(const gv_cli_args *args, char **text) {
    gv_mdm_train_config cfg;
    gv_config_result res;
    memset(&res, 0, sizeof res);
    gv_status s = gv_mdm_train_config_load_origins(args->positional[0], args->sets, args->nsets,
                                                   &cfg, &res);
    if (s == GV_OK) {
        s = gv_mdm_train_config_dump_origins(&cfg, &res, text);
        gv_mdm_train_config_free(&cfg);
    }
    gv_config_result_free(&res);
    return s;
}

static gv_status dump_image(const gv_cli_args *args, char **text) {
    gv_run_config cfg;
    gv_config_result res;
    memset(&res, 0, sizeof res);
    gv_status s = gv_run_config_load(args->positional[0], args->sets, args->nsets, NULL, &cfg, &res);
    if (s == GV_OK) {
        s = gv_run_config_dump(&cfg, &res, text);
        gv_run_config_free(&cfg);
    }
    gv_config_result_free(&res);
    return s;
}

int gv_cmd_config(const gv_command *cmd, const gv_cli_args *args) {
    int mdm = 0;
    char *text = NULL;
    gv_status s = gv_train_config_is_mdm(args->positional[0], args->sets, args->nsets, &mdm);
    if (s == GV_OK) s = mdm ? dump_mdm(args, &text) : dump_image(args, &text);
    if (s == GV_OK) fputs(text, stdout);
    free(text);
    return s == GV_OK ? GV_EXIT_OK : gv_cli_fail(cmd);
}
