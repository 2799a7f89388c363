/* The `dist` config section of data-parallel runs (dist.h): its struct and schema, alone in a
 * header so that config structs (run_config.h, pretrain.h) can embed it without pulling in the
 * backend headers (run_config.h is itself reached from ops.h through samplers/schedule.h).
 * Deliberately not here: the collectives (dist.h). */
#ifndef GROVE_DIST_CONFIG_H
#define GROVE_DIST_CONFIG_H

#include "grove/config.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The `dist` config section (shared by every trainer's schema: gv_dist_schema). */
typedef struct gv_dist_section {
    double timeout_s;  /* a collective waiting longer than this fails (a rank died or hangs) */
    double eval_timeout_s; /* the deadline of the wait at an iteration boundary, where the other
                              ranks wait out rank 0's eval and checkpoint writes */
    int check_every;   /* parameter-hash comparison every N steps / iterations (and at start);
                          0 = start only */
} gv_dist_section;

extern const gv_schema gv_dist_schema;

#ifdef __cplusplus
}
#endif
#endif
