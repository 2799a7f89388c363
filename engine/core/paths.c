/* grove's own files: the root directory and paths under it (see paths.h). */
#include "grove/paths.h"

#include <stdio.h>
#include <stdlib.h>

const char *gv_root_dir(void) {
    const char *env = getenv("GROVE_ROOT");
    return env && *env ? env : GROVE_SOURCE_DIR;
}

gv_status gv_root_path(const char *rel, char *buf, size_t n) {
    int len = rel[0] == '/' ? snprintf(buf, n, "%s", rel)
                            : snprintf(buf, n, "%s/%s", gv_root_dir(), rel);
    if (len < 0 || (size_t)len >= n)
        return GV_ERROR(GV_ERR_INVALID, "path too long: %s/%s", gv_root_dir(), rel);
    return GV_OK;
}
