/* Small shared helpers of the CLI: number options with ranges (cli.h). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "cli.h"

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
