/* Temporary dispatcher while the CLI lands. */
#include <stdio.h>

#include "cli.h"

int gv_cli_main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "grove: CLI not built yet\n");
    return 2;
}
