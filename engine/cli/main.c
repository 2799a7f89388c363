/* grove's entry point: registers the backends that are present and dispatches a subcommand.
 * The only place in grove that exits (DESIGN.md §1). */
#include <stdio.h>
#include <string.h>

#include "cli.h"

int main(int argc, char **argv) { return gv_cli_main(argc, argv); }
