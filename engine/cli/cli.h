/* The CLI's internal interface: the subcommand table and shared helpers. */
#ifndef GROVE_CLI_H
#define GROVE_CLI_H

int gv_cli_main(int argc, char **argv);

#endif
