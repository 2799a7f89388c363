/* grove config FILE [--set k=v]...: print the fully resolved task config — every key, defaults
 * included — with the origin of each value (default / preset / config / override / --set). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "grove/config.h"
#include "grove/run_config.h"

/* Presets: $GROVE_PRESET_DIR, else <config dir>/../algorithms (the repository layout), else the
   configs/algorithms of the source tree grove was built from. */
static const char *preset_dir_for(const char *config_path, char *buf, size_t len) {
    if (getenv("GROVE_PRESET_DIR")) return NULL; /* the loader reads it */
    const char *slash = strrchr(config_path, '/');
    int dirlen = slash ? (int)(slash - config_path) : 1;
    snprintf(buf, len, "%.*s/../algorithms", dirlen, slash ? config_path : ".");
    struct stat st;
    if (stat(buf, &st) == 0 && S_ISDIR(st.st_mode)) return buf;
    snprintf(buf, len, "%s/configs/algorithms", GROVE_SOURCE_DIR);
    return buf;
}

int gv_cmd_config(const gv_command *cmd, const gv_cli_args *args) {
    const char *path = args->positional[0];
    char preset_dir[4096];
    gv_run_config cfg;
    gv_config_result res;
    memset(&res, 0, sizeof res);
    if (gv_run_config_load(path, args->sets, args->nsets,
                           preset_dir_for(path, preset_dir, sizeof preset_dir), &cfg,
                           &res) != GV_OK) {
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
