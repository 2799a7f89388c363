/* Where grove's own files are: the tree it was built from (datasets, shipped weights, presets).
 * $GROVE_ROOT overrides the compiled-in source directory (an installed or moved tree). */
#ifndef GROVE_PATHS_H
#define GROVE_PATHS_H

#include <stddef.h>

#include "grove/status.h"

/* The root: $GROVE_ROOT if set, else the source directory grove was built from. */
const char *gv_root_dir(void);
/* `rel` under the root into buf ("data/mnist.h5" -> "/src/grove/data/mnist.h5"); an absolute
   `rel` is copied as is. GV_ERR_INVALID when it does not fit. */
gv_status gv_root_path(const char *rel, char *buf, size_t n);

#endif
