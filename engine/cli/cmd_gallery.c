/* grove gallery CONFIG [--set key=value]... [--device KIND]
 * grove gallery --run DIR [--set key=value]...      (the default gallery of a run directory)
 * grove gallery --summarize preferences.jsonl       (human win rates from the page's labels)
 * Renders base vs aligned from identical noise, scores every image and writes a self-contained
 * index.html (gallery.h); prints where it is. The config schema is gallery/gallery_config.c. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "grove/gallery.h"

static const char *device_name(int kind) {
    return kind == 1 ? "cpu" : kind == 2 ? "cuda" : "auto";
}

static int summarize(const gv_command *cmd, const char *path) {
    gv_gallery_summary s;
    if (gv_gallery_summarize(path, &s) != GV_OK) return gv_cli_fail(cmd);
    gv_gallery_summary_print(&s, path, stdout);
    gv_gallery_summary_free(&s);
    return GV_EXIT_OK;
}

/* The command line, for the manifest. */
static void command_line(const gv_cli_args *args, const char *config, const char *run, char *out,
                         size_t n) {
    size_t k = (size_t)snprintf(out, n, "grove gallery");
    if (config && k < n) k += (size_t)snprintf(out + k, n - k, " %s", config);
    if (run && k < n) k += (size_t)snprintf(out + k, n - k, " --run %s", run);
    for (int i = 0; i < args->nsets && k < n; ++i)
        k += (size_t)snprintf(out + k, n - k, " --set '%s'", args->sets[i]);
}

int gv_cmd_gallery(const gv_command *cmd, const gv_cli_args *args) {
    const char *sum = gv_cli_option_value(cmd, args, "summarize");
    const char *run = gv_cli_option_value(cmd, args, "run");
    const char *config = args->npositional ? args->positional[0] : NULL;
    if (sum) {
        if (run || config || args->nsets) {
            fprintf(stderr, "grove gallery: --summarize takes no config, --run or --set\n");
            return GV_EXIT_USAGE;
        }
        return summarize(cmd, sum);
    }
    if (!!run == !!config) {
        fprintf(stderr, "grove gallery: give a CONFIG or --run DIR (usage: %s)\n", cmd->usage);
        return GV_EXIT_USAGE;
    }
    /* --run DIR = the defaults with run: DIR, before the user's --set edits */
    const char *sets[GV_CLI_MAX_SETS + 1];
    char run_set[4200];
    int nsets = 0;
    if (run) {
        snprintf(run_set, sizeof run_set, "run=%s", run);
        sets[nsets++] = run_set;
    }
    for (int i = 0; i < args->nsets; ++i) sets[nsets++] = args->sets[i];
    gv_gallery_config cfg;
    if (gv_gallery_config_load(config, sets, nsets, &cfg, NULL) != GV_OK) return gv_cli_fail(cmd);
    const char *device = gv_cli_option_value(cmd, args, "device");
    gv_ctx *c = NULL;
    gv_status s = gv_cli_open_device(device ? device : device_name(cfg.device), cfg.threads, &c);
    gv_gallery_result res;
    char line[8192];
    command_line(args, config, run, line, sizeof line);
    if (s == GV_OK) {
        s = gv_gallery_run(&cfg, c, &(gv_gallery_options){.command = line, .progress = stderr},
                           &res);
        c->backend->ctx_destroy(c);
    }
    gv_gallery_config_free(&cfg);
    if (s != GV_OK) return gv_cli_fail(cmd);
    printf("grove gallery: %d images (%d prompts x %d seeds x %d models, %d rewards) in %.1f s\n",
           res.images, res.prompts, res.seeds, res.models, res.rewards, res.seconds);
    printf("gallery: %s\n", res.index);
    return GV_EXIT_OK;
}
