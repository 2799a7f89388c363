/* Small shared helpers of the CLI: number options with ranges, the failure exit of a command
 * that may run as one of several MPI ranks (cli.h). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "grove/dist.h"

gv_status gv_cli_parse_long(const char *opt, const char *text, long lo, long hi, long *out) {
    char *end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < lo || v > hi)
        return GV_ERROR(GV_ERR_INVALID, "--%s %s: expected an integer in [%ld, %ld]", opt, text, lo,
                        hi);
    *out = v;
    return GV_OK;
}

gv_status gv_cli_parse_double(const char *opt, const char *text, double lo, double hi,
                              double *out) {
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end || !isfinite(v) || v < lo || v > hi)
        return GV_ERROR(GV_ERR_INVALID, "--%s %s: expected a number in [%g, %g]", opt, text, lo,
                        hi);
    *out = v;
    return GV_OK;
}

int gv_cli_fail_ranks(const gv_command *cmd) {
    if (gv_dist_size() == 1) {
        gv_dist_finalize();
        return gv_cli_fail(cmd);
    }
    if (gv_dist_error_is_agreed()) {
        int code = gv_dist_rank() == 0 ? gv_cli_fail(cmd) : GV_EXIT_FAILURE;
        gv_dist_finalize();
        return code;
    }
    gv_error_prefix("rank %d", gv_dist_rank());
    int code = gv_cli_fail(cmd);
    fflush(stdout);
    fflush(stderr);
    gv_dist_abort(code);
    return code;
}
