/* grove's entry point: parses the subcommand and its options, then runs it.
 * The only place in grove that exits (DESIGN.md §1): library code returns gv_status and main maps
 * it to an exit code (0 ok, 1 failure, 2 usage). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static void print_overview(FILE *out) {
    fprintf(out,
            "grove — align diffusion and flow-matching models with GRPO-family RL\n\n"
            "usage: grove <command> [options]\n\n"
            "commands:\n");
    for (int i = 0; i < gv_command_count; ++i)
        fprintf(out, "  %-13s %s%s\n", gv_commands[i].name, gv_commands[i].summary,
                gv_commands[i].run ? "" : " (not implemented yet)");
    fprintf(out, "\nEvery command takes --help. Commands that read a config take --set key.path=value"
                 "\n(repeatable; the value is YAML and is validated like the file).\n");
}

static void print_command_help(const gv_command *cmd, FILE *out) {
    fprintf(out, "usage: %s\n\n%s\n", cmd->usage, cmd->summary);
    if (cmd->details) fprintf(out, "\n%s\n", cmd->details);
    int any = cmd->takes_set || cmd->options[0].name;
    if (any) fprintf(out, "\noptions:\n");
    for (int i = 0; cmd->options[i].name; ++i) {
        char left[64];
        char alias[8] = "";
        if (cmd->options[i].short_name) snprintf(alias, sizeof alias, "-%c, ", cmd->options[i].short_name);
        snprintf(left, sizeof left, "%s--%s%s%s", alias, cmd->options[i].name,
                 cmd->options[i].arg ? " " : "", cmd->options[i].arg ? cmd->options[i].arg : "");
        fprintf(out, "  %-24s %s\n", left, cmd->options[i].help);
    }
    if (cmd->takes_set)
        fprintf(out, "  %-24s %s\n", "--set KEY.PATH=VALUE",
                "override a config value (YAML; repeatable; validated like the file)");
    fprintf(out, "  %-24s %s\n", "--help", "show this help");
}

static const gv_command *find_command(const char *name) {
    for (int i = 0; i < gv_command_count; ++i)
        if (strcmp(gv_commands[i].name, name) == 0) return &gv_commands[i];
    return NULL;
}

static int option_index(const gv_command *cmd, const char *name, size_t len) {
    for (int i = 0; cmd->options[i].name; ++i)
        if (strlen(cmd->options[i].name) == len && strncmp(cmd->options[i].name, name, len) == 0)
            return i;
    return -1;
}

/* Parses argv (after the command name). Returns -1 on success, else the exit code to use. */
static int parse_args(const gv_command *cmd, int argc, char **argv, gv_cli_args *a) {
    memset(a, 0, sizeof *a);
    for (int i = 0; i < argc; ++i) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            print_command_help(cmd, stdout);
            return GV_EXIT_OK;
        }
        if (arg[0] == '-' && arg[1] && arg[1] != '-' && arg[2] == '\0') {
            int k = -1;
            for (int j = 0; cmd->options[j].name; ++j)
                if (cmd->options[j].short_name == arg[1]) k = j;
            if (k < 0) {
                fprintf(stderr, "grove %s: unknown option '%s' (see grove %s --help)\n", cmd->name,
                        arg, cmd->name);
                return GV_EXIT_USAGE;
            }
            if (!cmd->options[k].arg) {
                a->values[k] = "1";
                continue;
            }
            if (i + 1 >= argc) {
                fprintf(stderr, "grove %s: option '%s' needs %s\n", cmd->name, arg,
                        cmd->options[k].arg);
                return GV_EXIT_USAGE;
            }
            a->values[k] = argv[++i];
            continue;
        }
        if (strncmp(arg, "--", 2) != 0 || strcmp(arg, "--") == 0) {
            if (strcmp(arg, "--") == 0) continue;
            if (a->npositional == GV_CLI_MAX_POSITIONAL || a->npositional == cmd->max_positional) {
                fprintf(stderr, "grove %s: unexpected argument '%s' (see grove %s --help)\n",
                        cmd->name, arg, cmd->name);
                return GV_EXIT_USAGE;
            }
            a->positional[a->npositional++] = arg;
            continue;
        }
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const char *value = eq ? eq + 1 : NULL;
        if (len == 3 && strncmp(name, "set", 3) == 0 && cmd->takes_set) {
            if (!value) {
                if (i + 1 >= argc) {
                    fprintf(stderr, "grove %s: --set needs KEY.PATH=VALUE\n", cmd->name);
                    return GV_EXIT_USAGE;
                }
                value = argv[++i];
            }
            if (!strchr(value, '=')) {
                fprintf(stderr, "grove %s: --set '%s': expected KEY.PATH=VALUE\n", cmd->name,
                        value);
                return GV_EXIT_USAGE;
            }
            if (a->nsets == GV_CLI_MAX_SETS) {
                fprintf(stderr, "grove %s: too many --set (max %d)\n", cmd->name,
                        GV_CLI_MAX_SETS);
                return GV_EXIT_USAGE;
            }
            a->sets[a->nsets++] = value;
            continue;
        }
        int k = option_index(cmd, name, len);
        if (k < 0) {
            fprintf(stderr, "grove %s: unknown option '--%.*s' (see grove %s --help)\n", cmd->name,
                    (int)len, name, cmd->name);
            return GV_EXIT_USAGE;
        }
        if (!cmd->options[k].arg) {
            if (value) {
                fprintf(stderr, "grove %s: option '--%s' takes no value\n", cmd->name,
                        cmd->options[k].name);
                return GV_EXIT_USAGE;
            }
            a->values[k] = "1";
            continue;
        }
        if (!value) {
            if (i + 1 >= argc) {
                fprintf(stderr, "grove %s: option '--%s' needs %s\n", cmd->name,
                        cmd->options[k].name, cmd->options[k].arg);
                return GV_EXIT_USAGE;
            }
            value = argv[++i];
        }
        a->values[k] = value;
    }
    if (a->npositional < cmd->min_positional) {
        fprintf(stderr, "grove %s: missing argument (usage: %s)\n", cmd->name, cmd->usage);
        return GV_EXIT_USAGE;
    }
    return -1;
}

const char *gv_cli_option_value(const gv_command *cmd, const gv_cli_args *args, const char *name) {
    int k = option_index(cmd, name, strlen(name));
    return k < 0 ? NULL : args->values[k];
}

int gv_cli_fail(const gv_command *cmd) {
    fprintf(stderr, "grove %s: %s\n", cmd->name, gv_last_error());
    return GV_EXIT_FAILURE;
}

int gv_cli_main(int argc, char **argv) {
    if (argc < 2) {
        print_overview(stderr);
        return GV_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
        print_overview(stdout);
        return GV_EXIT_OK;
    }
    if (strcmp(name, "help") == 0) {
        if (argc < 3) {
            print_overview(stdout);
            return GV_EXIT_OK;
        }
        name = argv[2];
        const gv_command *cmd = find_command(name);
        if (!cmd) {
            fprintf(stderr, "grove: unknown command '%s' (see grove --help)\n", name);
            return GV_EXIT_USAGE;
        }
        print_command_help(cmd, stdout);
        return GV_EXIT_OK;
    }
    if (strcmp(name, "--version") == 0) name = "version";
    const gv_command *cmd = find_command(name);
    if (!cmd) {
        fprintf(stderr, "grove: unknown command '%s' (see grove --help)\n", name);
        return GV_EXIT_USAGE;
    }
    gv_cli_args args;
    int rc = parse_args(cmd, argc - 2, argv + 2, &args);
    if (rc >= 0) return rc;
    return cmd->run(cmd, &args);
}

/* OpenMP threads that spin at barriers starve each other as soon as the machine is shared (two
   cores running a build, a test and a training): unet-s ran 3.4x slower under active waiting
   (bench/bench_unet). libgomp reads OMP_WAIT_POLICY when it is loaded, before main, so main
   re-executes itself once with the passive policy unless the user chose a policy. */
static void prefer_passive_openmp(char **argv) {
    if (getenv("OMP_WAIT_POLICY")) return;
    if (setenv("OMP_WAIT_POLICY", "passive", 1) != 0) return;
    execv("/proc/self/exe", argv); /* returns only on failure: then run as we are */
}

int main(int argc, char **argv) {
    prefer_passive_openmp(argv);
    return gv_cli_main(argc, argv);
}
